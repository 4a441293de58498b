/* The library's side of phconnect/stats.h: hooks the transfer, signing and reopening code
 * calls, one line each. */
#ifndef PHC_STATS_H
#define PHC_STATS_H

#include <phconnect/phconnect.h>

#include <curl/curl.h>

/* How one transfer reached the server, kept with the transfer (http.c's per-transfer state):
 * with a wait hook (wait.h) several transfers run interleaved on one thread, so nothing about
 * a transfer under way may live in thread-local state. */
typedef struct phc_stats_last {
    int counted; /* the transfer has been counted (the hook runs on each header line) */
    int reused;  /* -1: it never reached the server */
    int resumed;
} phc_stats_last;

/* Before a transfer: not counted, never reached the server. */
void phc__stats_last_init(phc_stats_last *last);

/* While a transfer receives its answer (called for each header line; only the first counts):
 * counts it and records in *last whether its connection was reused or its TLS session
 * resumed. Called while the connection is still attached to the handle. */
void phc__stats_transfer(CURL *curl, phc_stats_last *last);

/* After a transfer's last wait: its facts become the calling thread's last-connection facts
 * (phc_client_last_connection), whatever other transfers ran on the thread meanwhile. */
void phc__stats_publish(const phc_stats_last *last);

/* The thread's last-connection facts no longer apply (both -1). */
void phc__stats_reset_last(void);

/* One private-key operation asked of the token. */
void phc__stats_signature(void);

/* A lost token was opened again. */
void phc__stats_reopen(void);

#endif
