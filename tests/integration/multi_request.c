/* Test driver: N requests over one client from T threads, through the public API only.
 * Usage: multi_request CONFIG PATH N THREADS
 * Prints "ok <requests>" and exits 0, or the first failure's message and its exit class. */
#include <phconnect/phconnect.h>

#include "driver.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct job {
    phc_client *client;
    const char *path;
    int n;
    atomic_int *failures;
    int first_rc;
    phc_errbuf err;
};

static void *run(void *arg)
{
    struct job *j = arg;
    for (int i = 0; i < j->n; i++) {
        phc_response *resp = NULL;
        phc_errbuf err = {0};
        phc_request req = {.version = PHC_REQUEST_VERSION, .path = j->path};
        int rc = phc_client_request(j->client, &resp, &req, &err);
        phc_response_free(resp);
        if (rc != PHC_OK) {
            if (atomic_fetch_add(j->failures, 1) == 0) {
                j->first_rc = rc;
                j->err = err;
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s CONFIG PATH N THREADS\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[3]), threads = atoi(argv[4]);
    if (n < 1 || threads < 1 || threads > 64)
        return 2;
    int code = 0;
    phc_client *client = driver_client(argv[1], NULL, &code);
    if (!client)
        return code;
    atomic_int failures = 0;
    struct job jobs[64];
    pthread_t tids[64];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct job){
            .client = client, .path = argv[2], .n = n / threads, .failures = &failures};
        pthread_create(&tids[t], NULL, run, &jobs[t]);
    }
    int exit_code = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        if (jobs[t].first_rc && !exit_code) {
            fprintf(stderr, "phc: %s\n", jobs[t].err.msg);
            exit_code = phc_err_exit_code(jobs[t].first_rc);
        }
    }
    if (!exit_code)
        printf("ok %d\n", (n / threads) * threads);
    phc_client_free(client);
    phc_global_cleanup();
    return exit_code;
}
