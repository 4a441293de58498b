/* The agent's output on stderr (journald under systemd): one access line per request and its
 * own messages. The access line carries the path without its query (a query may hold what
 * only the caller may see) and never a header value. */
#include "phc_agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* An event loop's lines are gathered and written together before it waits (one write(2) a
 * round instead of one a request); every other thread writes each line at once. */
#define BATCH_MAX 16384
static __thread char *t_batch;
static __thread size_t t_batch_len;
static __thread char t_batch_buf[BATCH_MAX];

void phc_agent_log_batch(int on)
{
    phc_agent_log_flush();
    t_batch = on ? t_batch_buf : NULL;
}

void phc_agent_log_flush(void)
{
    size_t off = 0;
    while (t_batch && off < t_batch_len) {
        ssize_t w = write(STDERR_FILENO, t_batch + off, t_batch_len - off);
        if (w <= 0)
            break; /* a closed stderr is not the requests' failure */
        off += (size_t)w;
    }
    t_batch_len = 0;
}

static void emit(const char *line, size_t len)
{
    if (t_batch) {
        if (t_batch_len + len > BATCH_MAX)
            phc_agent_log_flush();
        memcpy(t_batch + t_batch_len, line, len);
        t_batch_len += len;
        return;
    }
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

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
    /* Whole lines per write(2), so lines of concurrent threads never interleave; formatted
     * once, and without stderr's stream lock (this runs once per request). A failed write (a
     * closed stderr) is not the request's failure. */
    emit(line, len);
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
