/* The agent's output on stderr (journald under systemd): one access line per request and its
 * own messages. The access line carries the path without its query (a query may hold what
 * only the caller may see) and never a header value. */
#include "phc_agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void phc_agent_logf(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line, so lines of concurrent requests never interleave. */
    fprintf(stderr, "phc: agent: %s\n", line);
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
