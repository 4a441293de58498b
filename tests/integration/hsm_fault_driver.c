/* Test driver for token faults: one client makes a request every INTERVAL_MS for SECONDS,
 * each on a new connection with a full handshake (so every request needs the token to
 * sign), and prints one line per request: "<ms since start> <exit class> <duration ms>
 * <client serial or error message>". The test moves the token away and back meanwhile.
 * It stops after SECONDS, or earlier once STOPFILE exists (so a slow machine only makes the
 * run longer, never the test's phases shorter).
 * While PAUSEFILE exists it sends nothing (the client stays open): a maintenance window.
 * Usage: hsm_fault_driver CONFIG SECONDS INTERVAL_MS [STOPFILE [PAUSEFILE]] */
#include <phconnect/phconnect.h>

#include "driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s CONFIG SECONDS INTERVAL_MS [STOPFILE [PAUSEFILE]]\n", argv[0]);
        return 2;
    }
    int seconds = atoi(argv[2]), interval = atoi(argv[3]);
    phc_errbuf err = {0};
    int rc, code = 0;
    phc_client *client = driver_client(argv[1], NULL, &code);
    if (!client)
        return code;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *stopfile = argc >= 5 ? argv[4] : NULL;
    const char *pausefile = argc == 6 ? argv[5] : NULL;
    while (ms_since(&t0) < seconds * 1000.0 && !(stopfile && access(stopfile, F_OK) == 0)) {
        if (pausefile && access(pausefile, F_OK) == 0) {
            usleep((useconds_t)interval * 1000);
            continue;
        }
        phc_request req = {.version = PHC_REQUEST_VERSION,
                           .path = "/echo",
                           .flags = PHC_REQ_FRESH_CONNECTION | PHC_REQ_NO_SESSION_REUSE};
        phc_response *resp = NULL;
        double start = ms_since(&t0);
        rc = phc_client_request(client, &resp, &req, &err);
        double took = ms_since(&t0) - start;
        const char *what = err.msg;
        char serial[80] = "";
        if (rc == PHC_OK) {
            const char *p = strstr(phc_response_body(resp, NULL), "\"client_serial\":\"");
            if (p)
                sscanf(p + 17, "%79[0-9A-F]", serial);
            what = serial;
        }
        printf("%.0f %d %.0f %s\n", start, phc_err_exit_code(rc), took, what);
        fflush(stdout);
        phc_response_free(resp);
        usleep((useconds_t)interval * 1000);
    }
    phc_client_free(client);
    phc_global_cleanup();
    return 0;
}
