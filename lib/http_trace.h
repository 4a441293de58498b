/* The -vv trace of a transfer: the request and response header lines as they went over the
 * wire and the time each phase took, at PHC_LOG_DEBUG. Secrets are redacted here, before the
 * log callback sees a line: the value of Authorization, Proxy-Authorization, Cookie,
 * Set-Cookie and of any header whose name says it carries a token, a key, a secret, a
 * password, a session or a signature; the values of such query parameters in the request
 * line; every folded continuation line. Bodies are never traced. */
#ifndef PHC_HTTP_TRACE_H
#define PHC_HTTP_TRACE_H

#include "log.h"

#include <curl/curl.h>
#include <stddef.h>

/* 1 when a header or query parameter called name (len bytes, any case) may carry a secret. */
int phc__trace_sensitive(const char *name, size_t len);

/* One line (len bytes, no line end) as the trace shows it, into out (always NUL-terminated
 * when outlen > 0): header values and query values that may be secret replaced by
 * "[redacted]" (an Authorization header keeps its scheme: "Bearer [redacted]"), and every
 * control byte but a tab shown as '?'. */
void phc__trace_redact(char *out, size_t outlen, const char *line, size_t len);

/* A CURLOPT_DEBUGFUNCTION: header lines out ("> ") and in ("< "), redacted, to the log given
 * as CURLOPT_DEBUGDATA (a const phc_log *); libcurl's own text and all data are dropped. */
int phc__trace_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *log);

/* One line with the phases of the transfer curl just made (libcurl's CURLINFO_*_TIME_T):
 * connect, TLS, first byte (request sent until the first response byte) and total. */
void phc__trace_timings(const phc_log *log, CURL *curl);

#endif
