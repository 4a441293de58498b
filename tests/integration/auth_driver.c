/* Test driver for client credentials: requests over one client from several threads, spread
 * out in time, through the public API only, with the library's log on stderr.
 * Usage: auth_driver [-v] [-i INTERVAL_MS] [-r K] CONFIG PATH N THREADS
 *   -v  log at debug level (default: warnings)
 *   -i  pause between a thread's requests
 *   -r  after the K-th request of thread 0, POST /_revoke_tokens (the mock forgets every
 *       token it issued, as the vendor does when a token is revoked)
 * Prints one line per request, "req THREAD.I t=MS exit=E status=S[ message]", then
 * "ok N fail M"; exits 0, or with the exit class of the first failure. */
#include <phconnect/phconnect.h>

#include "driver.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct job {
    phc_client *client;
    const char *path;
    int thread, n, interval_ms, revoke_after;
    int ok, failed, first_rc;
};

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static struct timespec start;

static long elapsed_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000L;
}

static void log_stderr(void *ud, phc_log_level level, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    pthread_mutex_lock(&out_mu);
    fprintf(stderr, "t=%ld [%s] %s\n", elapsed_ms(), names[level <= 3 ? level : 3], msg);
    pthread_mutex_unlock(&out_mu);
}

static void revoke_tokens(phc_client *client)
{
    phc_response *resp = NULL;
    phc_errbuf err = {0};
    phc_request req = {.version = PHC_REQUEST_VERSION,
                       .method = "POST",
                       .path = "/_revoke_tokens",
                       .body = "",
                       .body_len = 0};
    int rc = phc_client_request(client, &resp, &req, &err);
    pthread_mutex_lock(&out_mu);
    printf("revoke t=%ld exit=%d\n", elapsed_ms(), phc_err_exit_code(rc));
    pthread_mutex_unlock(&out_mu);
    phc_response_free(resp);
}

static void *run(void *arg)
{
    struct job *j = arg;
    for (int i = 0; i < j->n; i++) {
        if (i > 0 && j->interval_ms > 0) {
            struct timespec ts = {j->interval_ms / 1000, (j->interval_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        phc_response *resp = NULL;
        phc_errbuf err = {0};
        phc_request req = {.version = PHC_REQUEST_VERSION, .path = j->path};
        int rc = phc_client_request(j->client, &resp, &req, &err);
        pthread_mutex_lock(&out_mu);
        printf("req %d.%d t=%ld exit=%d status=%ld%s%s\n", j->thread, i, elapsed_ms(),
               phc_err_exit_code(rc), phc_response_status(resp), rc ? " " : "", rc ? err.msg : "");
        pthread_mutex_unlock(&out_mu);
        phc_response_free(resp);
        if (rc == PHC_OK) {
            j->ok++;
        } else if (j->failed++ == 0) {
            j->first_rc = rc;
        }
        if (j->thread == 0 && i + 1 == j->revoke_after)
            revoke_tokens(j->client);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int verbose = 0, interval_ms = 0, revoke_after = 0, opt;
    while ((opt = getopt(argc, argv, "vi:r:")) != -1) {
        if (opt == 'v')
            verbose = 1;
        else if (opt == 'i')
            interval_ms = atoi(optarg);
        else if (opt == 'r')
            revoke_after = atoi(optarg);
        else
            return 2;
    }
    if (argc - optind != 4) {
        fprintf(stderr, "usage: %s [-v] [-i INTERVAL_MS] [-r K] CONFIG PATH N THREADS\n", argv[0]);
        return 2;
    }
    const char *config = argv[optind], *path = argv[optind + 1];
    int n = atoi(argv[optind + 2]), threads = atoi(argv[optind + 3]);
    if (n < 1 || threads < 1 || threads > 64 || interval_ms < 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    clock_gettime(CLOCK_MONOTONIC, &start);
    phc_client_opts opts = {.version = PHC_CLIENT_OPTS_VERSION,
                            .log = log_stderr,
                            .level = verbose ? PHC_LOG_DEBUG : PHC_LOG_WARN};
    int code = 0;
    phc_client *client = driver_client(config, &opts, &code);
    if (!client)
        return code;
    struct job jobs[64];
    pthread_t tids[64];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct job){.client = client,
                               .path = path,
                               .thread = t,
                               .n = n / threads,
                               .interval_ms = interval_ms,
                               .revoke_after = revoke_after};
        pthread_create(&tids[t], NULL, run, &jobs[t]);
    }
    int ok = 0, failed = 0, exit_code = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        ok += jobs[t].ok;
        failed += jobs[t].failed;
        if (jobs[t].first_rc && !exit_code)
            exit_code = phc_err_exit_code(jobs[t].first_rc);
    }
    printf("ok %d fail %d\n", ok, failed);
    phc_client_free(client);
    phc_global_cleanup();
    return exit_code;
}
