/* phc bench, in this process: T threads sharing one client (keep-alive, full handshakes,
 * resumed handshakes) and the token's own signing rate; plus the measuring helpers. */
#include "phc_bench.h"

#include <phconnect/bench.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Warm-up requests per thread before the clock starts: the first opens the thread's
 * connection (or fills the session cache), the others give every thread a chance to hold a
 * pooled handle of its own while the other threads are busy. */
#define WARMUP_REQUESTS 3

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Writing 5 to clear_refs resets VmHWM (Linux 4.0+), so each mode reports its own peak
 * rather than the highest of all modes run before it in this process. */
void bench_reset_peak_rss(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "5", 1) != 1) {
            /* Older kernel: the peak stays the process's lifetime peak, still an upper bound. */
        }
        close(fd);
    }
}

long bench_peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    if (kb == 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return kb;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_percentiles(bench_result *r, double *lat_ms, size_t n)
{
    r->p50_ms = r->p99_ms = 0;
    if (n == 0)
        return;
    qsort(lat_ms, n, sizeof(*lat_ms), cmp_double);
    /* Nearest rank: the smallest value with at least q of the samples at or below it. */
    size_t i50 = (n * 50 + 99) / 100, i99 = (n * 99 + 99) / 100;
    r->p50_ms = lat_ms[i50 ? i50 - 1 : 0];
    r->p99_ms = lat_ms[i99 ? i99 - 1 : 0];
}

/* The start line: workers report ready after their warm-up and wait; the clock starts when
 * all are ready, then the gate opens. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready, open;
};

struct worker {
    const bench_env *env;
    struct gate *gate;
    unsigned flags;
    int n;
    double *lat; /* n slots */
    int attempted, failures, first_exit;
    char first_msg[PHC_ERRMSG_MAX];
    double deadline;
};

static void fail(struct worker *w, int exit_code, const char *msg)
{
    w->failures++;
    if (!w->first_exit) {
        w->first_exit = exit_code;
        snprintf(w->first_msg, sizeof(w->first_msg), "%s", msg);
    }
}

static void one_request(struct worker *w, double *ms)
{
    phc_request req = {.version = PHC_REQUEST_VERSION, .path = w->env->path, .flags = w->flags};
    phc_response *resp = NULL;
    phc_errbuf err = {0};
    double t0 = bench_now();
    int rc = phc_client_request(w->env->client, &resp, &req, &err);
    if (ms)
        *ms = (bench_now() - t0) * 1000.0;
    phc_response_free(resp);
    if (rc != PHC_OK)
        fail(w, phc_err_exit_code(rc), err.msg[0] ? err.msg : phc_err_name(rc));
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* Warm-up as measured: resumed mode thereby fills the session cache. Its failures do
     * not count (the measured requests will show the same cause). */
    for (int i = 0; i < WARMUP_REQUESTS; i++)
        one_request(w, NULL);
    w->failures = w->first_exit = 0;
    w->first_msg[0] = '\0';
    pthread_mutex_lock(&w->gate->mu);
    w->gate->ready++;
    pthread_cond_broadcast(&w->gate->cv);
    while (!w->gate->open)
        pthread_cond_wait(&w->gate->cv, &w->gate->mu);
    pthread_mutex_unlock(&w->gate->mu);
    for (int i = 0; i < w->n; i++) {
        if (bench_now() > w->deadline) {
            w->failures += w->n - i;
            if (!w->first_exit) {
                w->first_exit = 7;
                snprintf(w->first_msg, sizeof(w->first_msg),
                         "measurement stopped by --timeout after %d of %d requests", i, w->n);
            }
            break;
        }
        one_request(w, &w->lat[w->attempted++]);
    }
    return NULL;
}

int bench_run_inproc(const bench_env *env, const char *mode, int threads, bench_result *out)
{
    unsigned flags = 0;
    if (strcmp(mode, "full") == 0)
        flags = PHC_REQ_FRESH_CONNECTION | PHC_REQ_NO_SESSION_REUSE;
    else if (strcmp(mode, "resumed") == 0)
        flags = PHC_REQ_FRESH_CONNECTION;
    memset(out, 0, sizeof(*out));
    snprintf(out->mode, sizeof(out->mode), "%s", mode);
    out->requests = env->requests;
    out->threads = threads;

    int rc = 0, started = 0;
    struct gate gate = {.ready = 0, .open = 0};
    pthread_mutex_init(&gate.mu, NULL);
    pthread_cond_init(&gate.cv, NULL);
    double *lat = calloc((size_t)env->requests + 1, sizeof(*lat));
    struct worker *w = calloc((size_t)threads, sizeof(*w));
    pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
    if (!lat || !w || !tid) {
        fprintf(stderr, "phc: out of memory\n");
        rc = 9;
        goto out;
    }
    /* The deadline covers the warm-up too: a server that hangs must not hang the bench. */
    double deadline = bench_now() + env->timeout;
    for (int i = 0, off = 0; i < threads; i++) {
        w[i].env = env;
        w[i].gate = &gate;
        w[i].flags = flags;
        w[i].n = env->requests / threads + (i < env->requests % threads);
        w[i].lat = lat + off;
        w[i].deadline = deadline;
        off += w[i].n;
    }
    for (; started < threads; started++) {
        if (pthread_create(&tid[started], NULL, worker_main, &w[started]) != 0) {
            fprintf(stderr, "phc: cannot start benchmark thread %d of %d\n", started + 1, threads);
            rc = 9;
            for (int i = 0; i < started; i++)
                w[i].n = 0;
            break;
        }
    }
    pthread_mutex_lock(&gate.mu);
    while (gate.ready < started)
        pthread_cond_wait(&gate.cv, &gate.mu);
    bench_reset_peak_rss();
    double cpu0 = bench_cpu_self(), t0 = bench_now();
    gate.open = 1;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    out->seconds = bench_now() - t0;
    double cpu = bench_cpu_self() - cpu0;
    out->peak_rss_kb = bench_peak_rss_kb();

    size_t nlat = 0;
    for (int i = 0; i < started; i++) {
        /* Each worker's latencies sit at the start of its slice: pack them. */
        memmove(lat + nlat, w[i].lat, (size_t)w[i].attempted * sizeof(*lat));
        nlat += (size_t)w[i].attempted;
        out->failures += w[i].failures;
        if (!out->first_exit && w[i].first_exit) {
            out->first_exit = w[i].first_exit;
            snprintf(out->first_msg, sizeof(out->first_msg), "%s", w[i].first_msg);
        }
    }
    bench_percentiles(out, lat, nlat);
    out->cpu_ms_per_request = env->requests ? cpu * 1000.0 / env->requests : 0;
out:
    pthread_mutex_destroy(&gate.mu);
    pthread_cond_destroy(&gate.cv);
    free(lat);
    free(w);
    free(tid);
    return rc;
}

int bench_run_sign(const bench_env *env, int n, bench_result *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->mode, sizeof(out->mode), "sign");
    out->requests = n;
    out->threads = 1;
    double *lat = calloc((size_t)n + 1, sizeof(*lat));
    if (!lat) {
        fprintf(stderr, "phc: out of memory\n");
        return 9;
    }
    phc_errbuf err = {0};
    double one = 0;
    /* One untimed signature: the first may set up the token session's operation state. */
    if (phc_client_sign_test(env->client, 1, &one, &err) != PHC_OK) {
        out->failures = n;
        out->first_exit = phc_err_exit_code(err.code);
        snprintf(out->first_msg, sizeof(out->first_msg), "%s", err.msg);
        free(lat);
        return 0;
    }
    bench_reset_peak_rss();
    double deadline = bench_now() + env->timeout;
    double cpu0 = bench_cpu_self(), t0 = bench_now();
    int done = 0;
    for (; done < n && bench_now() <= deadline; done++) {
        if (phc_client_sign_test(env->client, 1, &one, &err) != PHC_OK) {
            out->failures = n - done;
            out->first_exit = phc_err_exit_code(err.code);
            snprintf(out->first_msg, sizeof(out->first_msg), "%s", err.msg);
            break;
        }
        lat[done] = one * 1000.0;
    }
    if (done < n && !out->failures) {
        out->failures = n - done;
        out->first_exit = 7;
        snprintf(out->first_msg, sizeof(out->first_msg),
                 "signing stopped by --timeout after %d of %d signatures", done, n);
    }
    out->seconds = bench_now() - t0;
    out->cpu_ms_per_request = (bench_cpu_self() - cpu0) * 1000.0 / n;
    out->peak_rss_kb = bench_peak_rss_kb();
    bench_percentiles(out, lat, (size_t)done);
    free(lat);
    return 0;
}
