import GatewaySupport

/// What a stage calls to hand the exchange to the rest of the path.
public typealias Next = (inout Exchange) -> HTTPResponse

/// One step of the request path (in the spirit of Hummingbird's middleware and
/// swift-nio's handlers): it looks at the exchange, and either answers or hands it to
/// `next`, and may look at or change the answer that comes back. A stage has one job.
public protocol Stage: Sendable {
    func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse
}

/// The last step of a path: it always answers.
public protocol Responder: Sendable {
    func respond(_ exchange: inout Exchange) -> HTTPResponse
}

/// Stages in order, ending in a responder; the chain is linked once, at start-up.
public struct Pipeline: Sendable {
    public let stages: [any Stage]
    private let run: @Sendable (inout Exchange) -> HTTPResponse

    public init(_ stages: [any Stage], then responder: any Responder) {
        self.stages = stages
        var next: @Sendable (inout Exchange) -> HTTPResponse = { responder.respond(&$0) }
        for stage in stages.reversed() {
            let rest = next
            next = { stage.handle(&$0, next: rest) }
        }
        run = next
    }

    public func callAsFunction(_ exchange: inout Exchange) -> HTTPResponse { run(&exchange) }
}
