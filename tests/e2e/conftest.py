"""End-to-end fixtures: real nginx / Apache in front of the real mcp-fcgi binary.

Every web server is brought up once per test session with scripts/stack, on its own
loopback port and run dir, and torn down at the end (and its logs tailed on failure).

Environment knobs:
  MCP_FCGI_BINARY   binary to test (default: .build-e2e/release/mcp-fcgi, built if missing)
  E2E_SERVERS       comma list to restrict servers, e.g. "nginx" or "nginx,apache-fcgid"
  E2E_BASE_PORT     first port (default 18080); servers use base+0..3, the SIGTERM test base+10
  E2E_KEEP_STACKS   "1" leaves the stacks running after the session for poking around
  MCP_TEST_TOKEN    bearer token sent on every request instead of a minted one (bearer_token_for)
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mcp_http import Endpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "scripts" / "stack"
BASE_PORT = int(os.environ.get("E2E_BASE_PORT", "18080"))

# The servers the full suite runs against, and the smaller CGI smoke set.
MAIN_SERVERS = ["nginx", "apache-proxy", "apache-fcgid"]
ALL_SERVERS = MAIN_SERVERS + ["apache-cgi"]
PORTS = {name: BASE_PORT + i for i, name in enumerate(ALL_SERVERS)}
SHUTDOWN_PORT = BASE_PORT + 10

# Limits the tests rely on. max_body_bytes is small (the web servers allow 2 MiB, so the
# app itself answers 413); tools_page_size 1 forces legacy pagination across pages.
MAX_BODY_BYTES = 65536
MAX_JSON_DEPTH = 32
SHUTDOWN_GRACE_SECONDS = 10


def selected(servers: list[str]) -> list[str]:
    wanted = os.environ.get("E2E_SERVERS")
    if not wanted:
        return servers
    names = {s.strip() for s in wanted.split(",") if s.strip()}
    return [s for s in servers if s in names]


# ------------------------------------------------------------------ the token (ONE place)

# The test instances run auth.mode "development": they accept only tokens minted by
# `mcp-fcgi dev-token` from their own state dir (scripts/stack token does that).
DEV_TENANT = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
DEV_CLIENT_ID = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"


def mint_token(stack: "Stack", *dev_token_args: str) -> str:
    """A development token for this stack (extra args go to `mcp-fcgi dev-token`)."""
    proc = stack_cmd("token", "--run-dir", str(stack.run_dir), "--port", str(stack.port), "--", *dev_token_args)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"scripts/stack token failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1]


def bearer_token_for(stack: "Stack") -> str | None:
    """The bearer token every client and raw request to `stack` sends.

    MCP_TEST_TOKEN overrides (e.g. a real Entra token against an entra-mode config);
    otherwise a development token minted for the stack. The only place tokens are chosen.
    """
    return os.environ.get("MCP_TEST_TOKEN") or mint_token(stack)


# ------------------------------------------------------------------ configs and binary


def e2e_config(port: int, grace: int = SHUTDOWN_GRACE_SECONDS, workers: int = 4) -> dict:
    """The config every stack runs with. state_dir is replaced by scripts/stack."""
    return {
        "server": {
            "name": "mcp-fcgi-e2e",
            "mcp_path": "/mcp",
            "public_url": f"http://127.0.0.1:{port}/mcp",
            "instructions": "End-to-end test instance.",
            "workers": workers,
            "shutdown_grace_seconds": grace,
        },
        "limits": {
            "max_body_bytes": MAX_BODY_BYTES,
            "max_json_depth": MAX_JSON_DEPTH,
            "tools_page_size": 1,
        },
        "origins": {"allowed": [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]},
        "state_dir": "/tmp/mcp-fcgi-e2e-state",
        "logging": {"level": "debug"},
        # The suite sends hundreds of requests as one user; limits have their own unit tests.
        "rate_limits": {"user_per_minute": 0, "tenant_per_minute": 0},
        # Its refusals before authentication are looked up in the trail; sampling has its own unit tests.
        "audit": {"unauthenticated_per_minute": 100000},
        "auth": {
            "mode": "development",
            "tenant_id": DEV_TENANT,
            "client_id": DEV_CLIENT_ID,
            "audiences": [f"http://127.0.0.1:{port}/mcp"],
            "scopes_supported": ["mcp.tools"],
        },
    }


@pytest.fixture(scope="session")
def binary() -> Path:
    """The binary under test; built once (by scripts/stack's rules) if missing."""
    path = Path(os.environ.get("MCP_FCGI_BINARY", REPO / ".build-e2e" / "release" / "mcp-fcgi"))
    if not path.exists():
        proc = subprocess.run(
            ["swift", "build", "-c", "release", "--static-swift-stdlib", "--scratch-path", str(REPO / ".build-e2e")],
            cwd=REPO, capture_output=True, text=True, timeout=1800,
        )
        if proc.returncode != 0 or not path.exists():
            pytest.exit(f"cannot build {path}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}", returncode=1)
    return path


# ------------------------------------------------------------------ stacks


@dataclass
class Stack:
    server: str
    port: int
    run_dir: Path
    token: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self, lines: int = 40) -> str:
        out = []
        for f in sorted((self.run_dir / "logs").glob("*.log")):
            text = f.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"----- {f} -----\n" + "\n".join(text))
        return "\n".join(out)


def stack_cmd(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(STACK), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def stack_up(server: str, port: int, binary: Path, tmp_root: Path, config: dict,
             mcp_path: str = "/mcp", mint: bool = True) -> Stack:
    """A fresh stack: whatever an earlier session left on this port is stopped and its
    run dir (state dir and dev signing key included) removed first."""
    run_dir = Path(f"/tmp/mcp-fcgi-e2e-{port}")
    stack_cmd("down", "--run-dir", str(run_dir), "--port", str(port), timeout=120)
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg_path = tmp_root / f"config-{server}-{port}.json"
    cfg_path.write_text(json.dumps(config, indent=2))
    proc = stack_cmd("up", "--server", server, "--port", str(port), "--run-dir", str(run_dir),
                     "--binary", str(binary), "--config", str(cfg_path))
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/stack up --server {server} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    last = proc.stdout.strip().splitlines()[-1]
    assert last == f"http://127.0.0.1:{port}{mcp_path}", f"unexpected last line from stack up: {last!r}"
    stack = Stack(server, port, run_dir)
    try:
        stack.token = bearer_token_for(stack) if mint else None
    except Exception:
        stack_down(stack)  # nobody else knows about this stack yet
        raise
    return stack


def stack_down(stack: Stack) -> subprocess.CompletedProcess:
    return stack_cmd("down", "--run-dir", str(stack.run_dir), "--port", str(stack.port), timeout=120)


class StackManager:
    """Starts each server on first use and keeps it for the whole session."""

    def __init__(self, binary: Path, tmp_root: Path):
        self.binary = binary
        self.tmp_root = tmp_root
        self.stacks: dict[str, Stack] = {}
        self.failed: dict[str, str] = {}

    def get(self, server: str) -> Stack:
        if server in self.failed:
            first_line = self.failed[server].splitlines()[0]
            pytest.fail(f"{server} stack did not come up ({first_line} …; full log at the first error)",
                        pytrace=False)
        if server not in self.stacks:
            port = PORTS[server]
            try:
                self.stacks[server] = stack_up(server, port, self.binary, self.tmp_root, e2e_config(port))
            except Exception as exc:  # keep the reason for every later test of this server
                self.failed[server] = str(exc)
                pytest.fail(str(exc), pytrace=False)
        return self.stacks[server]

    def down_all(self) -> list[str]:
        problems = []
        for stack in self.stacks.values():
            proc = stack_down(stack)
            if proc.returncode != 0:
                problems.append(f"{stack.server}: {proc.stderr}")
        return problems


@pytest.fixture(scope="session")
def stacks(binary, tmp_path_factory):
    manager = StackManager(binary, tmp_path_factory.mktemp("e2e"))
    yield manager
    if os.environ.get("E2E_KEEP_STACKS") == "1":
        return
    problems = manager.down_all()
    # A responder that does not exit 0 on SIGTERM is a failure worth seeing.
    assert not problems, "stack down reported problems:\n" + "\n".join(problems)


def _endpoint(stacks: StackManager, server: str) -> Endpoint:
    stack = stacks.get(server)
    return Endpoint(server=server, base_url=stack.base_url, mcp_path="/mcp", token=stack.token, stack=stack)


@pytest.fixture(params=selected(MAIN_SERVERS))
def endpoint(request, stacks) -> Endpoint:
    """The MCP endpoint through each main web server (nginx, mod_proxy_fcgi, mod_fcgid)."""
    return _endpoint(stacks, request.param)


@pytest.fixture(params=selected(["apache-cgi"]))
def cgi_endpoint(request, stacks) -> Endpoint:
    return _endpoint(stacks, request.param)


# Show the stack logs next to a failing test: most failures are explained there.


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    ep = item.funcargs.get("endpoint") or item.funcargs.get("cgi_endpoint")
    if ep is not None and ep.stack is not None:
        report.sections.append((f"{ep.server} logs", ep.stack.logs(15)))

def private_file(directory: Path, name: str, content: str) -> str:
    """A 0600 file the responder's user (www-data when run as root) can read."""
    directory.mkdir(mode=0o711, parents=True, exist_ok=True)
    os.chmod(directory, 0o711)
    path = directory / name
    path.write_text(content)
    os.chmod(path, 0o600)
    if os.geteuid() == 0:
        user = pwd.getpwnam("www-data")
        os.chown(path, user.pw_uid, user.pw_gid)
    return str(path)


def responder_config(tmp_path: Path, cfg: dict) -> Path:
    """Writes `cfg` for a responder the test runs itself (no web server in front): its own state
    directory under tmp_path and info logging, so the test can read what it logged."""
    cfg["state_dir"] = str(tmp_path / "state")
    cfg["logging"] = {"level": "info"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path
