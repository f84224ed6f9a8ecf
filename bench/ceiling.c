/* The ceiling for the FastCGI rows of bench/run: the least a libfcgi responder can do.
 * Built like mcp-fcgi's front end (worker threads, each with its own FCGX_Request, all of
 * them waiting in accept() at once, which libfcgi on Linux does without a lock), it reads the
 * request and answers a fixed small JSON document, so the difference to mcp-fcgi is the
 * gateway's own work.
 *
 *   gcc -O2 -pthread -o ceiling bench/ceiling.c -lfcgi
 *   ./ceiling /path/to.sock [workers]
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int listen_fd;

static const char body[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ceiling\"}],\"isError\":false}}";

static void *worker(void *unused) {
    (void)unused;
    FCGX_Request request;
    if (FCGX_InitRequest(&request, listen_fd, 0) != 0) return NULL;
    char buffer[16384];
    for (;;) {
        int rc = FCGX_Accept_r(&request);
        if (rc < 0) continue;
        while (FCGX_GetStr(buffer, sizeof buffer, request.in) > 0) {}
        FCGX_FPrintF(request.out, "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     (int)(sizeof body - 1), body);  /* libfcgi's printf knows no %zu */
        FCGX_Finish_r(&request);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s SOCKET [WORKERS]\n", argv[0]); return 64; }
    int workers = argc > 2 ? atoi(argv[2]) : 4;
    if (workers < 1 || workers > 256) { fprintf(stderr, "workers must be 1 to 256\n"); return 64; }
    if (FCGX_Init() != 0) return 71;
    listen_fd = FCGX_OpenSocket(argv[1], 128);
    if (listen_fd < 0) { perror("FCGX_OpenSocket"); return 71; }
    chmod(argv[1], 0666);
    pthread_t threads[256];
    for (int i = 0; i < workers; i++) pthread_create(&threads[i], NULL, worker, NULL);
    for (int i = 0; i < workers; i++) pthread_join(threads[i], NULL);
    return 0;
}
