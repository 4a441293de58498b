/* Counters of the agent, /_phc/health and /_phc/metrics (Prometheus text format 0.0.4). The
 * library's own counters (handshakes, signatures, reopens) come from phc_client_stats. */
#define _GNU_SOURCE
#include "phc_agent.h"

#include <stdarg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static const char *const classes[] = {"trust",   "hsm",  "pin",    "policy",
                                      "network", "auth", "config", "internal"};
#define N_CLASSES (sizeof(classes) / sizeof(classes[0]))

struct phc_agent_metrics {
    unsigned long long by_status[6]; /* index status / 100; 0: anything else */
    unsigned long long by_class[N_CLASSES];
    unsigned long long bucket[N_BUCKETS + 1];
    unsigned long long sum_us, count;
};

int phc_agent_metrics_new(phc_agent_metrics **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -1;
}

void phc_agent_metrics_free(phc_agent_metrics *m)
{
    free(m);
}

static void add(unsigned long long *n, unsigned long long v)
{
    __atomic_add_fetch(n, v, __ATOMIC_RELAXED);
}

static unsigned long long get(const unsigned long long *n)
{
    return __atomic_load_n(n, __ATOMIC_RELAXED);
}

void phc_agent_metrics_request(phc_agent_metrics *m, unsigned status, const char *err_class,
                               double upstream_seconds)
{
    add(&m->by_status[status >= 100 && status < 600 ? status / 100 : 0], 1);
    if (err_class)
        for (size_t i = 0; i < N_CLASSES; i++)
            if (strcmp(err_class, classes[i]) == 0)
                add(&m->by_class[i], 1);
    if (upstream_seconds >= 0) {
        size_t b = 0;
        while (b < N_BUCKETS && upstream_seconds > buckets[b])
            b++;
        add(&m->bucket[b], 1);
        add(&m->sum_us, (unsigned long long)(upstream_seconds * 1e6));
        add(&m->count, 1);
    }
}

/* Days from now until t (negative when past). */
static long days_left(long long t)
{
    long long d = t - (long long)time(NULL);
    return (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
}

/* credential_expires (ISO-8601 date) as Unix time at 00:00 UTC, or 0. */
static long long credential_expiry(const phc_config *cfg)
{
    const char *v = phc_config_get(cfg, "credential_expires");
    struct tm tm = {0};
    if (!v || sscanf(v, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

char *phc_agent_health(phc_agent *a, unsigned *status)
{
    phc_stats st = PHC_STATS_INIT;
    phc_errbuf err = {0};
    int ok = phc_client_stats(a->client, &st, &err) == PHC_OK;
    int has_cert = ok && st.cert_serial[0];
    long days = has_cert ? days_left(st.cert_not_after) : 0;
    /* Usable: the token is open and the certificate (when one is used) still valid. */
    int usable = ok && st.token_ok && (!has_cert || st.cert_not_after > (long long)time(NULL));
    long long cred = credential_expiry(a->cfg);
    char *body = NULL;
    char certpart[160] = "\"certificate_serial\": null, \"certificate_days_left\": null";
    char credpart[64] = "null";
    if (has_cert)
        snprintf(certpart, sizeof(certpart),
                 "\"certificate_serial\": \"%s\", \"certificate_days_left\": %ld", st.cert_serial,
                 days);
    if (cred)
        snprintf(credpart, sizeof(credpart), "%ld", days_left(cred));
    if (asprintf(&body, "{\"status\": \"%s\", \"token\": %s, %s, \"credential_days_left\": %s}\n",
                 usable ? "ok" : "unavailable", ok && st.token_ok ? "true" : "false", certpart,
                 credpart) < 0)
        body = NULL;
    *status = usable ? 200 : 503;
    return body;
}

/* A growing text buffer; on out of memory the text is dropped and NULL returned at the end. */
struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

char *phc_agent_metrics_text(phc_agent *a, unsigned connections_open)
{
    phc_agent_metrics *m = a->metrics;
    struct buf b = {0};
    put(&b, "# HELP phc_agent_requests_total Requests answered by the agent, by status class.\n"
            "# TYPE phc_agent_requests_total counter\n");
    for (int i = 1; i < 6; i++)
        put(&b, "phc_agent_requests_total{code=\"%dxx\"} %llu\n", i, get(&m->by_status[i]));
    put(&b, "# HELP phc_agent_errors_total The agent's own failures (Phc-Error), by class.\n"
            "# TYPE phc_agent_errors_total counter\n");
    for (size_t i = 0; i < N_CLASSES; i++)
        put(&b, "phc_agent_errors_total{class=\"%s\"} %llu\n", classes[i], get(&m->by_class[i]));
    put(&b, "# HELP phc_agent_upstream_duration_seconds Time of the upstream request.\n"
            "# TYPE phc_agent_upstream_duration_seconds histogram\n");
    unsigned long long cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += get(&m->bucket[i]);
        put(&b, "phc_agent_upstream_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i], cum);
    }
    cum += get(&m->bucket[N_BUCKETS]);
    put(&b, "phc_agent_upstream_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    put(&b, "phc_agent_upstream_duration_seconds_sum %.6f\n", (double)get(&m->sum_us) / 1e6);
    put(&b, "phc_agent_upstream_duration_seconds_count %llu\n", get(&m->count));

    phc_stats st = PHC_STATS_INIT;
    phc_errbuf err = {0};
    if (phc_client_stats(a->client, &st, &err) == PHC_OK) {
        put(&b,
            "# HELP phc_tls_handshakes_total New upstream connections, by TLS handshake kind.\n"
            "# TYPE phc_tls_handshakes_total counter\n"
            "phc_tls_handshakes_total{kind=\"full\"} %llu\n"
            "phc_tls_handshakes_total{kind=\"resumed\"} %llu\n"
            "# HELP phc_upstream_connections_reused_total Requests sent on a kept-alive "
            "connection.\n"
            "# TYPE phc_upstream_connections_reused_total counter\n"
            "phc_upstream_connections_reused_total %llu\n"
            "# HELP phc_token_signatures_total Private-key operations asked of the token.\n"
            "# TYPE phc_token_signatures_total counter\n"
            "phc_token_signatures_total %llu\n"
            "# HELP phc_token_reopens_total Times a lost token was opened again.\n"
            "# TYPE phc_token_reopens_total counter\n"
            "phc_token_reopens_total %llu\n"
            "# HELP phc_token_up 1 when the token is open and a key/certificate pair selected.\n"
            "# TYPE phc_token_up gauge\n"
            "phc_token_up %d\n",
            st.handshakes_full, st.handshakes_resumed, st.connections_reused, st.token_signatures,
            st.token_reopens, st.token_ok);
        if (st.cert_serial[0])
            put(&b,
                "# HELP phc_client_certificate_days_left Days until the client certificate "
                "in use expires.\n"
                "# TYPE phc_client_certificate_days_left gauge\n"
                "phc_client_certificate_days_left{serial=\"%s\"} %ld\n",
                st.cert_serial, days_left(st.cert_not_after));
    }
    long long cred = credential_expiry(a->cfg);
    if (cred)
        put(&b,
            "# HELP phc_client_credential_days_left Days until the client credential expires.\n"
            "# TYPE phc_client_credential_days_left gauge\n"
            "phc_client_credential_days_left %ld\n",
            days_left(cred));
    put(&b,
        "# HELP phc_agent_connections_open Client connections open on the agent.\n"
        "# TYPE phc_agent_connections_open gauge\n"
        "phc_agent_connections_open %u\n"
        "# HELP phc_agent_requests_in_flight Requests being worked on.\n"
        "# TYPE phc_agent_requests_in_flight gauge\n"
        "phc_agent_requests_in_flight %ld\n",
        connections_open, __atomic_load_n(&a->in_flight, __ATOMIC_RELAXED));
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
