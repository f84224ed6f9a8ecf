/* bench/cgi-launch: time a CGI program the way a web server starts it, with nothing in between.

       cgi-launch RUNS WARMUP BODY_FILE PROGRAM

   Each run forks, points stdin at BODY_FILE and stdout/stderr at /dev/null, and execs PROGRAM
   with this process's environment (the caller exports the CGI variables); the time is taken
   from just before fork to the end of waitpid, as Apache's mod_cgi pays it. A shell wrapper
   (hyperfine's only way to give a program stdin in Debian 12's 1.15) adds its own exec and start,
   about 0.9 ms here, to every run, which this leaves out. Any run that does not exit 0 stops
   the benchmark. Prints "mean MS median MS max MS cpu MS" over RUNS, after WARMUP untimed
   runs: wall-clock times, then the median CPU time (user + system, from wait4) of one run,
   which moves less with other load on the machine than the wall clock does. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double run_once(const char *body, const char *program, double *cpu_ms) {
    double start = now_ms();
    pid_t pid = fork();
    if (pid < 0) { perror("cgi-launch: fork"); exit(1); }
    if (pid == 0) {
        int in = open(body, O_RDONLY), out = open("/dev/null", O_WRONLY);
        if (in < 0 || out < 0) _exit(126);
        dup2(in, 0); dup2(out, 1); dup2(out, 2);
        close(in); close(out);
        execl(program, program, (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage usage;
    while (wait4(pid, &status, 0, &usage) < 0)
        if (errno != EINTR) { perror("cgi-launch: wait4"); exit(1); }
    double elapsed = now_ms() - start;
    *cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3
            + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "cgi-launch: %s did not exit 0 (status %d)\n", program, status);
        exit(1);
    }
    return elapsed;
}

static int by_value(const void *a, const void *b);

static double median_of(double *values, int n) {
    qsort(values, n, sizeof(double), by_value);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: cgi-launch RUNS WARMUP BODY_FILE PROGRAM\n"); return 2; }
    int runs = atoi(argv[1]), warmup = atoi(argv[2]);
    if (runs < 1 || warmup < 0) { fprintf(stderr, "cgi-launch: RUNS must be >= 1, WARMUP >= 0\n"); return 2; }
    double cpu;
    for (int i = 0; i < warmup; i++) run_once(argv[3], argv[4], &cpu);
    double *times = malloc(sizeof(double) * runs), *cpus = malloc(sizeof(double) * runs), sum = 0;
    if (!times || !cpus) return 1;
    for (int i = 0; i < runs; i++) { times[i] = run_once(argv[3], argv[4], &cpus[i]); sum += times[i]; }
    double median = median_of(times, runs);
    printf("mean %.2f median %.2f max %.2f cpu %.2f\n", sum / runs, median, times[runs - 1], median_of(cpus, runs));
    return 0;
}
