/* Test driver for rotation under load: T threads make requests on one client for SECONDS
 * while another thread calls phc_client_reload every RELOAD_MS (0: never; the client's
 * periodic check may still run). Each response of /echo names the client certificate serial
 * the server saw; the driver prints, per thread, the sequence of distinct serials in order, so
 * the test can assert that a thread never goes back to an old certificate after the switch.
 * It stops after SECONDS or once the file STOPFILE exists, whichever comes first.
 * Usage: rotate_driver CONFIG THREADS SECONDS RELOAD_MS STOPFILE [fresh]
 * Output: "seen THREAD SERIAL" whenever a thread sees a new serial, then at the end
 * "requests N failures F ..." and one line per thread: "serials S1 S2 ...". */
#include <phconnect/phconnect.h>

#include "driver.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERIALS 8

struct worker {
    phc_client *client;
    int index;
    int fresh;
    char serials[MAX_SERIALS][80];
    int nserials;
    long requests, failures;
    char first_error[PHC_ERRMSG_MAX];
};

static atomic_int stop;
static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;

static void note_serial(struct worker *w, const char *body)
{
    const char *p = strstr(body, "\"client_serial\":\"");
    if (!p)
        return;
    p += strlen("\"client_serial\":\"");
    size_t n = strcspn(p, "\"");
    if (n >= sizeof(w->serials[0]))
        return;
    if (w->nserials > 0 && strlen(w->serials[w->nserials - 1]) == n &&
        strncmp(w->serials[w->nserials - 1], p, n) == 0)
        return;
    if (w->nserials < MAX_SERIALS) {
        memcpy(w->serials[w->nserials], p, n);
        w->serials[w->nserials][n] = '\0';
        /* Progress as it happens, so the test can wait for the switch instead of guessing. */
        pthread_mutex_lock(&print_mu);
        printf("seen %d %s\n", w->index, w->serials[w->nserials]);
        fflush(stdout);
        pthread_mutex_unlock(&print_mu);
        w->nserials++;
    }
}

static void *run(void *arg)
{
    struct worker *w = arg;
    unsigned i = 0;
    while (!atomic_load(&stop)) {
        phc_request req = {.version = PHC_REQUEST_VERSION, .path = "/echo"};
        /* Every third request on a new connection, when asked: rotation must hold for both
         * kept-alive and freshly made connections. */
        if (w->fresh && (i++ % 3) == 0)
            req.flags = PHC_REQ_FRESH_CONNECTION;
        phc_response *resp = NULL;
        phc_errbuf err = {0};
        int rc = phc_client_request(w->client, &resp, &req, &err);
        w->requests++;
        if (rc != PHC_OK) {
            if (w->failures++ == 0)
                snprintf(w->first_error, sizeof(w->first_error), "%s", err.msg);
        } else {
            note_serial(w, phc_response_body(resp, NULL));
        }
        phc_response_free(resp);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s CONFIG THREADS SECONDS RELOAD_MS STOPFILE [fresh]\n", argv[0]);
        return 2;
    }
    const char *stopfile = argv[5];
    int threads = atoi(argv[2]), seconds = atoi(argv[3]), reload_ms = atoi(argv[4]);
    int fresh = argc > 6 && strcmp(argv[6], "fresh") == 0;
    if (threads < 1 || threads > 32 || seconds < 1 || seconds > 120)
        return 2;
    phc_errbuf err = {0};
    int code = 0;
    phc_client *client = driver_client(argv[1], NULL, &code);
    if (!client)
        return code;
    struct worker *w = calloc((size_t)threads, sizeof(*w));
    pthread_t *tids = calloc((size_t)threads, sizeof(*tids));
    for (int t = 0; t < threads; t++) {
        w[t].client = client;
        w[t].index = t;
        w[t].fresh = fresh;
        pthread_create(&tids[t], NULL, run, &w[t]);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int reloads = 0, changes = 0, reload_failures = 0;
    do {
        usleep(reload_ms > 0 ? (useconds_t)reload_ms * 1000 : 100000);
        if (reload_ms > 0) {
            int changed = 0;
            reloads++;
            if (phc_client_reload(client, &changed, &err) != PHC_OK) {
                if (reload_failures++ == 0)
                    fprintf(stderr, "reload failed: %s\n", err.msg);
            }
            changes += changed;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - start.tv_sec < seconds && access(stopfile, F_OK) != 0);
    atomic_store(&stop, 1);
    long requests = 0, failures = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        requests += w[t].requests;
        failures += w[t].failures;
        if (w[t].failures)
            fprintf(stderr, "thread %d: %ld failures, first: %s\n", t, w[t].failures,
                    w[t].first_error);
    }
    printf("requests %ld failures %ld reloads %d changes %d reload_failures %d\n", requests,
           failures, reloads, changes, reload_failures);
    for (int t = 0; t < threads; t++) {
        printf("serials");
        for (int s = 0; s < w[t].nserials; s++)
            printf(" %s", w[t].serials[s]);
        printf("\n");
    }
    phc_client_free(client);
    phc_global_cleanup();
    free(w);
    free(tids);
    return failures ? 1 : 0;
}
