/* One HTTP transfer over libcurl under phconnect's policy: https only, never a proxy, never
 * a redirect, only to pinned addresses (when configured), TLS set up by tls.c, bounded time
 * and size. A phc_xfer is a reusable easy handle; it keeps its connection between requests
 * and is used by one thread at a time (the client pools them). */
#ifndef PHC_HTTP_H
#define PHC_HTTP_H

#include "config.h"
#include "log.h"
#include "tls.h"

#include <curl/curl.h>

typedef struct phc_http_setup {
    const phc_config *cfg; /* borrowed: url, pinned_ips, source_address, limits */
    const phc_tls *tls;    /* borrowed: the identity and pinned trust for this generation */
    CURLSH *share;         /* borrowed: TLS session cache shared by the client's handles */
    const phc_log *log;    /* borrowed, may be NULL */
} phc_http_setup;

typedef struct phc_xfer phc_xfer;

/* setup and everything it points to must outlive the handle. */
PHC_WUR int phc__xfer_new(phc_xfer **out, const phc_http_setup *setup, phc_errbuf *err);

/* Performs req. On PHC_OK or PHC_ERR_HTTP *out holds the response (owned by the caller). */
PHC_WUR int phc__xfer_perform(phc_xfer *x, const phc_request *req, phc_response **out,
                              phc_errbuf *err);

/* Until called again with fn NULL, fn(ud) is called once when a connection of x stores a TLS
 * session the server gave it (from inside libcurl: fn must only take a short lock). */
void phc__xfer_on_session(phc_xfer *x, void (*fn)(void *ud), void *ud);

/* 1 when the last phc__xfer_perform on x failed on a new connection whose TLS handshake
 * never completed: no byte of the request can have reached the server, so it may be sent
 * again whatever its method. 0 otherwise (also when unsure). */
int phc__xfer_unsent(const phc_xfer *x);

/* 1 when sending req twice cannot do something twice (RFC 9110 idempotent methods); POST,
 * PATCH and unknown methods are not. */
int phc__request_idempotent(const phc_request *req);

void phc__xfer_free(phc_xfer *x);

#endif
