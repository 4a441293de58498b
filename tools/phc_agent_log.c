/* The agent's output on stderr (journald under systemd): one access line per request and its
 * own messages. The access line carries the path without its query (a query may hold what
 * only the caller may see) and never a header value. */
#include "phc_agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void phc_agent_logf(const char *fmt, ...)
{
    static const char prefix[] = "phc: agent: ";
    char line[sizeof(prefix) - 1 + 1024 + 1];
    memcpy(line, prefix, sizeof(prefix) - 1);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + sizeof(prefix) - 1, 1024, fmt, ap);
    va_end(ap);
    size_t len = sizeof(prefix) - 1 + (n < 0 ? 0 : n > 1023 ? 1023 : (size_t)n);
    line[len++] = '\n';
    /* One write(2) per line, so lines of concurrent requests never interleave; formatted
     * once, and without stderr's stream lock (this runs once per request). stderr is
     * unbuffered, so the order with stdio writes elsewhere is kept. A failed write (a closed
     * stderr) is not the request's failure. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static const char *tri(int v, const char *yes, const char *no)
{
    return v < 0 ? "-" : v ? yes : no;
}

void phc_agent_log_access(const phc_agent_access *x)
{
    const char *t = x->target ? x->target : "-";
    size_t plen = strcspn(t, "?");
    char who[64];
    if (x->uid >= 0)
        snprintf(who, sizeof(who), "uid=%ld pid=%ld", x->uid, x->pid);
    else
        snprintf(who, sizeof(who), "uid=- pid=-");
    phc_agent_logf(
        "%s %s %.*s%s %u %zuB %.1fms conn=%s tls=%s cert=%s%s%s%s", who,
        x->method ? x->method : "-", (int)(plen > 300 ? 300 : plen), t, t[plen] ? "?..." : "",
        x->status, x->bytes, x->ms, tri(x->reused, "reused", "new"),
        x->reused == 1 ? "-" : tri(x->resumed, "resumed", "full"),
        x->cert_serial && *x->cert_serial ? x->cert_serial : "-", x->err_class ? " error=" : "",
        x->err_class ? x->err_class : "", x->aborted ? " aborted" : "");
}
