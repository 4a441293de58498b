/* Concurrency harness: one client shared by THREADS threads, each making at least PER_THREAD
 * requests for PATH, through the public API only. Every FRESH_EVERY-th request of a thread
 * opens a new connection (PHC_REQ_FRESH_CONNECTION), every fifth of those also without TLS
 * session resumption (a full handshake: one signature on the token); the others reuse
 * kept-alive connections.
 *
 * With SYNC_DIR the identity is rotated in the middle of the load: once half of the
 * THREADS x PER_THREAD requests are done, the harness creates SYNC_DIR/half, waits (at most
 * 60 s) for the test to put a new certificate on the token and create SYNC_DIR/go, and
 * calls phc_client_reload, which must report a change. The threads do not pause for any of
 * this; a thread that has made its PER_THREAD requests before the reload returns keeps
 * going, and every thread makes at least PER_THREAD / 4 more once it has, so the new
 * identity carries the same load. When PATH is /echo, the mock's answer names the client
 * certificate's serial: a request started after the reload returned that still presents
 * the old serial (a reused connection or TLS session of the old identity) is counted stale.
 *
 * Usage: concurrency CONFIG PATH THREADS PER_THREAD FRESH_EVERY [SYNC_DIR]
 * Prints "sample <when> fds <n> rss_kb <n>" at warm (a quarter of the requests done),
 * rotated (right after the reload) and end (every thread finished, the client not yet
 * freed): open file descriptors from /proc/self/fd and VmRSS from /proc/self/status. Then
 * "requests <n> failures <n> stale <n> changed <0|1> sanitized <0|1>". Exit 0 when every
 * request returned 2xx, none was stale and the rotation (if asked for) changed the identity;
 * else the first failure's exit class, or 9. */
#include <phconnect/phconnect.h>

#include "driver.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define SERIAL_MAX 128

/* Sanitizers keep freed memory in quarantine: the test judges resident memory only without. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

struct shared {
    phc_client *client;
    const char *path;
    int per_thread, fresh_every, rotating;
    atomic_int done; /* requests finished, successful or not */
    atomic_int failures;
    atomic_int stale;
    atomic_int rotated;  /* set once phc_client_reload has returned */
    atomic_int first_rc; /* first failure's code, 0 until then */
    pthread_mutex_t mu;  /* guards first_err */
    phc_errbuf first_err;
    char old_serial[SERIAL_MAX]; /* written before rotated is set, read after */
};

/* The client certificate serial in a /echo answer, or "" when there is none. */
static void echo_serial(const phc_response *resp, char *out, size_t outlen)
{
    static const char key[] = "\"client_serial\":\"";
    const char *body = phc_response_body(resp, NULL);
    const char *p = body ? strstr(body, key) : NULL;
    size_t n = p ? strcspn(p + sizeof(key) - 1, "\"") : 0;
    snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), p ? p + sizeof(key) - 1 : "");
}

static void fail(struct shared *s, int rc, const phc_errbuf *err)
{
    atomic_fetch_add(&s->failures, 1);
    int expected = 0;
    if (atomic_compare_exchange_strong(&s->first_rc, &expected, rc)) {
        pthread_mutex_lock(&s->mu);
        s->first_err = *err;
        pthread_mutex_unlock(&s->mu);
    }
}

static void *worker(void *arg)
{
    struct shared *s = arg;
    int since_rotation = 0;
    for (int i = 1;; i++) {
        int after = atomic_load(&s->rotated);
        if (i > s->per_thread && (!s->rotating || (after && since_rotation >= s->per_thread / 4)))
            break;
        phc_request req = {.version = PHC_REQUEST_VERSION, .path = s->path};
        if (s->fresh_every > 0 && i % s->fresh_every == 0) {
            req.flags |= PHC_REQ_FRESH_CONNECTION;
            if (i % (s->fresh_every * 5) == 0)
                req.flags |= PHC_REQ_NO_SESSION_REUSE;
        }
        phc_response *resp = NULL;
        phc_errbuf err = {0};
        int rc = phc_client_request(s->client, &resp, &req, &err);
        size_t len = 0;
        if (rc == PHC_OK && (!phc_response_body(resp, &len) || len == 0)) {
            rc = PHC_ERR_INTERNAL;
            snprintf(err.msg, sizeof(err.msg), "2xx with an empty body for %s", s->path);
        }
        if (rc == PHC_OK && after) {
            char serial[SERIAL_MAX];
            echo_serial(resp, serial, sizeof(serial));
            if (serial[0] && strcmp(serial, s->old_serial) == 0)
                atomic_fetch_add(&s->stale, 1);
        }
        phc_response_free(resp);
        if (rc != PHC_OK)
            fail(s, rc, &err);
        since_rotation += after;
        atomic_fetch_add(&s->done, 1);
    }
    return NULL;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void sample(const char *when)
{
    printf("sample %s fds %d rss_kb %ld\n", when, count_fds(), rss_kb());
    fflush(stdout);
}

static void nap_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void wait_done(struct shared *s, int n)
{
    while (atomic_load(&s->done) < n)
        nap_ms(2);
}

/* The serial the client presents now, by one request of its own. */
static int current_serial(struct shared *s, char *out, size_t outlen)
{
    phc_request req = {.version = PHC_REQUEST_VERSION, .path = s->path};
    phc_response *resp = NULL;
    phc_errbuf err = {0};
    int rc = phc_client_request(s->client, &resp, &req, &err);
    if (rc == PHC_OK)
        echo_serial(resp, out, outlen);
    else
        fail(s, rc, &err);
    phc_response_free(resp);
    return rc;
}

/* The rotation, on the main thread while the workers run. Returns 1 when the identity
 * changed, 0 when it did not, -1 on an error (printed). */
static int rotate(struct shared *s, const char *dir)
{
    char p[4096];
    if (current_serial(s, s->old_serial, sizeof(s->old_serial)) != PHC_OK)
        return -1;
    snprintf(p, sizeof(p), "%s/half", dir);
    FILE *f = fopen(p, "w");
    if (!f || fclose(f) != 0) {
        fprintf(stderr, "concurrency: cannot create %s\n", p);
        return -1;
    }
    snprintf(p, sizeof(p), "%s/go", dir);
    for (int waited = 0; access(p, F_OK) != 0; waited += 10) {
        if (waited >= 60000) {
            fprintf(stderr, "concurrency: %s did not appear within 60 s\n", p);
            return -1;
        }
        nap_ms(10);
    }
    int changed = 0;
    phc_errbuf err = {0};
    if (phc_client_reload(s->client, &changed, &err) != PHC_OK) {
        fprintf(stderr, "phc: reload: %s\n", err.msg);
        return -1;
    }
    return changed;
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s CONFIG PATH THREADS PER_THREAD FRESH_EVERY [SYNC_DIR]\n",
                argv[0]);
        return 2;
    }
    int threads = atoi(argv[3]), per_thread = atoi(argv[4]), fresh_every = atoi(argv[5]);
    const char *sync_dir = argc == 7 ? argv[6] : NULL;
    if (threads < 1 || threads > MAX_THREADS || per_thread < 4 || fresh_every < 0) {
        fprintf(stderr, "concurrency: THREADS 1..%d, PER_THREAD >= 4, FRESH_EVERY >= 0\n",
                MAX_THREADS);
        return 2;
    }
    struct shared s = {.path = argv[2],
                       .per_thread = per_thread,
                       .fresh_every = fresh_every,
                       .rotating = sync_dir != NULL};
    pthread_mutex_init(&s.mu, NULL);
    int code = 0;
    if (!(s.client = driver_client(argv[1], NULL, &code)))
        return code;

    pthread_t tids[MAX_THREADS];
    int started = 0, exit_code = 0, changed = 0;
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, worker, &s) != 0) {
            fprintf(stderr, "concurrency: cannot start thread %d\n", started + 1);
            exit_code = 9;
            /* the threads already running would never see a rotation */
            atomic_store(&s.rotated, 1);
            break;
        }
    const int nominal = started * per_thread;
    wait_done(&s, nominal / 4);
    sample("warm");
    if (sync_dir && started == threads) {
        wait_done(&s, nominal / 2);
        changed = rotate(&s, sync_dir);
        atomic_store(&s.rotated, 1);
        sample("rotated");
        if (changed != 1) {
            if (changed == 0)
                fprintf(stderr, "concurrency: the reload did not change the identity\n");
            exit_code = 9;
        }
    }
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    sample("end");

    int failures = atomic_load(&s.failures), stale = atomic_load(&s.stale);
    printf("requests %d failures %d stale %d changed %d sanitized %d\n", atomic_load(&s.done),
           failures, stale, changed == 1, SANITIZED);
    /* LeakSanitizer ends the process without flushing stdio */
    fflush(stdout);
    if (failures) {
        fprintf(stderr, "phc: %s\n", s.first_err.msg);
        exit_code = phc_err_exit_code(atomic_load(&s.first_rc));
    } else if (stale) {
        fprintf(stderr, "concurrency: %d requests after the reload presented the old serial %s\n",
                stale, s.old_serial);
        exit_code = 9;
    }
    phc_client_free(s.client);
    pthread_mutex_destroy(&s.mu);
    phc_global_cleanup();
    return exit_code;
}
