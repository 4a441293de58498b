/* The library's side of phconnect/stats.h: hooks the transfer, signing and reopening code
 * calls, one line each. */
#ifndef PHC_STATS_H
#define PHC_STATS_H

#include <phconnect/phconnect.h>

#include <curl/curl.h>

/* While a transfer receives its answer (called for each header line; only the first counts):
 * counts it and remembers, for the calling thread, whether its connection was reused or its
 * TLS session resumed. Called while the connection is still attached to the handle. */
void phc__stats_transfer(CURL *curl);

/* Before a request: the thread's last-connection facts no longer apply. */
void phc__stats_reset_last(void);

/* One private-key operation asked of the token. */
void phc__stats_signature(void);

/* A lost token was opened again. */
void phc__stats_reopen(void);

#endif
