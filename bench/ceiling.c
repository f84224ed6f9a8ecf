/* The ceiling for the FastCGI rows of bench/run: the least a libfcgi responder can do.
 * Built like mcp-fcgi's front end (worker threads, each with its own FCGX_Request, all of
 * them waiting in accept() at once, which libfcgi on Linux does without a lock), it reads the
 * request and answers a fixed small JSON document, so the difference to mcp-fcgi is the
 * gateway's own work. With `serialised` it takes a mutex around each fresh accept, as
 * libfcgi's threaded example does (and mcp-fcgi did until it measured the cost): the reference
 * the earlier benchmark rows were measured against. With `close-at-once` it closes a connection
 * the web server does not keep as soon as its input has ended (FCGX_Detach), instead of
 * libfcgi's close, which waits for the web server to close first; mcp-fcgi does the same.
 *
 *   gcc -O2 -pthread -o ceiling bench/ceiling.c -lfcgi
 *   ./ceiling /path/to.sock [workers] [serialised|close-at-once]
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int listen_fd;
static int serialised;
static int close_at_once;
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;

static const char body[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ceiling\"}],\"isError\":false}}";

static void *worker(void *unused) {
    (void)unused;
    FCGX_Request request;
    if (FCGX_InitRequest(&request, listen_fd, 0) != 0) return NULL;
    char buffer[16384];
    for (;;) {
        int locked = serialised && request.ipcFd < 0;
        if (locked) pthread_mutex_lock(&accept_lock);
        int rc = FCGX_Accept_r(&request);
        if (locked) pthread_mutex_unlock(&accept_lock);
        if (rc < 0) continue;
        while (FCGX_GetStr(buffer, sizeof buffer, request.in) > 0) {}
        if (close_at_once && !request.keepConnection && FCGX_HasSeenEOF(request.in) == EOF
            && FCGX_GetError(request.in) == 0)
            FCGX_Detach(&request);
        FCGX_FPrintF(request.out, "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     (int)(sizeof body - 1), body);  /* libfcgi's printf knows no %zu */
        FCGX_Finish_r(&request);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s SOCKET|- [WORKERS] [serialised|close-at-once]\n", argv[0]); return 64; }
    int workers = argc > 2 ? atoi(argv[2]) : 4;
    serialised = argc > 3 && strcmp(argv[3], "serialised") == 0;
    close_at_once = argc > 3 && strcmp(argv[3], "close-at-once") == 0;
    if (argc > 3 && !serialised && !close_at_once) { fprintf(stderr, "unknown mode %s\n", argv[3]); return 64; }
    if (workers < 1 || workers > 256) { fprintf(stderr, "workers must be 1 to 256\n"); return 64; }
    if (FCGX_Init() != 0) return 71;
    if (strcmp(argv[1], "-") == 0) {
        listen_fd = 0;  /* the listening socket a spawner (mod_fcgid, spawn-fcgi) passed as fd 0 */
    } else {
        listen_fd = FCGX_OpenSocket(argv[1], 128);
        if (listen_fd < 0) { perror("FCGX_OpenSocket"); return 71; }
        chmod(argv[1], 0666);
    }
    pthread_t threads[256];
    for (int i = 0; i < workers; i++) pthread_create(&threads[i], NULL, worker, NULL);
    for (int i = 0; i < workers; i++) pthread_join(threads[i], NULL);
    return 0;
}
