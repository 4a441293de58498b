/* The HTTP side of the agent: libmicrohttpd with one thread per client connection. That
 * thread parses the request, forwards it through the one phc_client and writes the answer,
 * with no hand-off between threads on the way: a request costs the agent two wake-ups (the
 * client's bytes, upstream's answer). Handing each request from one epoll thread to a worker
 * and back cost two more context switches and a suspend/resume per request: a quarter to a
 * third of the agent's CPU per request against a loopback upstream (docs/agent.md,
 * "Performance").
 * An idle connection costs a sleeping thread with a small stack. At most agent_max_clients
 * requests are forwarded at once; the others wait for a slot. */
#define _GNU_SOURCE
#include "phc_agent.h"

#include <errno.h>
#include <microhttpd.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Idle connections are closed after this many seconds without a byte. */
#define IDLE_TIMEOUT 60
/* Open connections at most: each has its thread (a sleeping one while idle). */
#define CONNECTION_MAX 4096
/* A connection thread's stack: libcurl, OpenSSL and the PKCS#11 module run on it. */
#define THREAD_STACK ((size_t)256 * 1024)

struct phc_agent_req {
    phc_agent *a;
    char *target; /* as the client sent it: path and query */
    char method[17];
    long uid, pid;
    int peer_ok;
    int started;    /* the first call of the access handler happened */
    int forwarded;  /* went upstream (forward counted it in the metrics) */
    char **headers; /* filtered, for upstream */
    char *body;
    size_t body_len, body_cap;
    struct MHD_Response *resp;
    unsigned status;
    size_t resp_bytes;
    double t0, upstream_s;
    int reused, resumed;
    char serial[72];
    const char *err_class;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- building answers ----------------------------------------------------------------- */

static struct MHD_Response *text_response(const char *body, const char *type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return r;
}

/* The agent's own failure: Phc-Error: <class> and {"error", "message"}. */
static void fail(struct phc_agent_req *r, unsigned status, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct phc_agent_req *r, unsigned status, const char *cls, const char *fmt, ...)
{
    char msg[PHC_ERRMSG_MAX + 64], esc[2 * sizeof(msg)], body[sizeof(esc) + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    phc_agent_json_escape(esc, sizeof(esc), msg);
    snprintf(body, sizeof(body), "{\"error\": \"%s\", \"message\": \"%s\"}\n", cls, esc);
    r->resp = text_response(body, "application/json");
    if (r->resp)
        MHD_add_response_header(r->resp, "Phc-Error", cls);
    r->status = status;
    r->resp_bytes = strlen(body);
    r->err_class = cls;
}

/* The HTTP status of each failure class: 503 while the token cannot be used, 504 for a
 * timeout, 502 for everything else upstream. */
static unsigned status_for(const phc_errbuf *e)
{
    switch (e->code) {
    case PHC_ERR_HSM:
    case PHC_ERR_PIN:
        return 503;
    case PHC_ERR_NETWORK:
        return strstr(e->msg, "timed out") ? 504 : 502;
    default:
        return 502;
    }
}

static void add_header_cb(void *ud, const char *name, const char *value)
{
    MHD_add_response_header(ud, name, value);
}

/* ---- forwarding ----------------------------------------------------------------------- */

/* New upstream connections are made one at a time. Each needs a TLS handshake; the first is
 * a full one (the one token signature) and leaves a TLS session that the next resumes (and
 * replaces: a TLS 1.3 session is for one use). Made at the same instant, a burst of new
 * connections would all find the same session, and all but one would fall back to a full
 * handshake - one token signature each. A request that finds as many requests in flight as
 * connections made goes through the handshake gate; the others reuse a pooled connection. */
static int forward_upstream(phc_agent *a, const phc_request *q, phc_response **resp,
                            phc_errbuf *err, int *reused, int *resumed)
{
    pthread_mutex_lock(&a->up_mu);
    int may_connect = a->up_busy >= a->up_pool;
    a->up_busy++;
    pthread_mutex_unlock(&a->up_mu);
    if (may_connect)
        pthread_mutex_lock(&a->hs_mu);
    int rc = phc_client_request(a->client, resp, q, err);
    phc_client_last_connection(reused, resumed);
    pthread_mutex_lock(&a->up_mu);
    a->up_busy--;
    if (may_connect && *reused == 0)
        a->up_pool++;
    pthread_mutex_unlock(&a->up_mu);
    if (may_connect)
        pthread_mutex_unlock(&a->hs_mu);
    return rc;
}

static void forward(struct phc_agent_req *r)
{
    phc_agent *a = r->a;
    phc_request q = {
        .version = PHC_REQUEST_VERSION,
        .method = r->method,
        .path = r->target,
        .headers = (const char *const *)r->headers,
        .body = r->body_len ? r->body : NULL,
        .body_len = r->body_len,
    };
    phc_response *resp = NULL;
    phc_errbuf err = {0};
    double t = now_s();
    int rc = forward_upstream(a, &q, &resp, &err, &r->reused, &r->resumed);
    r->upstream_s = now_s() - t;
    phc_stats st = PHC_STATS_INIT;
    phc_errbuf ignored = {0};
    if (phc_client_stats(a->client, &st, &ignored) == PHC_OK)
        memcpy(r->serial, st.cert_serial, sizeof(r->serial));
    if (resp) {
        size_t blen = 0, hlen = 0;
        const char *body = phc_response_body(resp, &blen);
        const char *head = phc_response_headers(resp, &hlen);
        r->resp = MHD_create_response_from_buffer(blen, (void *)body, MHD_RESPMEM_MUST_COPY);
        if (r->resp) {
            phc_agent_filter_response(head, hlen, add_header_cb, r->resp);
            r->status = (unsigned)phc_response_status(resp);
            r->resp_bytes = blen;
        }
        phc_response_free(resp);
        if (!r->resp)
            fail(r, 502, "internal", "out of memory");
    } else {
        (void)rc;
        fail(r, status_for(&err), phc_err_name(err.code), "%s",
             err.msg[0] ? err.msg : phc_err_name(err.code));
    }
    phc_agent_metrics_request(a->metrics, r->status, r->err_class, r->upstream_s);
}

/* Forwards r on the calling connection thread, holding one of agent_max_clients slots. */
static void forward_in_slot(phc_agent *a, struct phc_agent_req *r)
{
    while (sem_wait(&a->slots) != 0 && errno == EINTR)
        ;
    forward(r);
    sem_post(&a->slots);
}

/* ---- the libmicrohttpd side (the connection's thread) --------------------------------- */

/* The peer of a connection, checked once when it is accepted: SO_PEERCRED is the
 * credentials of the process that connected, the same for every request on it. */
struct peer {
    long uid, pid;
    int ok;
};

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct peer *p = malloc(sizeof(*p));
        if (p) {
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            p->ok = phc_agent_peer_check(cls, ci ? ci->connect_fd : -1, &p->uid, &p->pid);
        }
        *socket_context = p; /* NULL (out of memory): its requests are refused */
    } else {
        free(*socket_context);
        *socket_context = NULL;
    }
}

/* Called once per request before its headers are parsed: the request's context, with the
 * target exactly as sent (libmicrohttpd's url argument has the query removed and decoded). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct phc_agent_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->a = cls;
    r->t0 = now_s();
    r->upstream_s = -1;
    r->reused = r->resumed = -1;
    r->target = strdup(uri ? uri : "");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const struct peer *p = ci ? ci->socket_context : NULL;
    if (p) {
        r->peer_ok = p->ok;
        r->uid = p->uid;
        r->pid = p->pid;
    } else {
        r->peer_ok = 0;
        r->uid = r->pid = -1;
    }
    __atomic_add_fetch(&r->a->in_flight, 1, __ATOMIC_RELAXED);
    return r;
}

struct hdr_list {
    phc_agent_hdr h[PHC_AGENT_MAX_HEADERS];
    size_t n;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct hdr_list *l = cls;
    if (l->n < PHC_AGENT_MAX_HEADERS) {
        l->h[l->n].name = key;
        l->h[l->n].value = value;
        l->n++;
    }
    return MHD_YES;
}

static enum MHD_Result answer(struct MHD_Connection *conn, struct phc_agent_req *r)
{
    if (!r->resp)
        return MHD_NO;
    if (__atomic_load_n(&r->a->draining, __ATOMIC_RELAXED))
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(conn, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ok;
}

/* Answers GET /_phc/health and /_phc/metrics locally; every other /_phc/ path is 404. */
static void local(phc_agent *a, struct phc_agent_req *r, const char *path)
{
    char *body = NULL;
    unsigned status = 200;
    const char *type = "application/json";
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        fail(r, 405, "policy", "only GET is answered under /_phc/");
        return;
    }
    if (strcmp(path, "/_phc/health") == 0) {
        body = phc_agent_health(a, &status);
    } else if (strcmp(path, "/_phc/metrics") == 0) {
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        body = phc_agent_metrics_text(a, di ? di->num_connections : 0);
        type = "text/plain; version=0.0.4";
    } else {
        fail(r, 404, "policy",
             "no such agent path %s (the agent answers /_phc/health and "
             "/_phc/metrics)",
             path);
        return;
    }
    if (!body) {
        fail(r, 500, "internal", "out of memory");
        return;
    }
    r->resp = text_response(body, type);
    r->status = status;
    r->resp_bytes = strlen(body);
    free(body);
}

/* First call for a request (headers parsed, no body yet): everything that can be refused
 * without the body is refused here, so a refused request is never read further. Returns 1
 * when an answer is ready. */
static int first_call(phc_agent *a, struct phc_agent_req *r, struct MHD_Connection *conn,
                      const char *method)
{
    snprintf(r->method, sizeof(r->method), "%s", method);
    if (!r->peer_ok) {
        if (r->uid >= 0)
            fail(r, 403, "policy", "user %ld is not in agent_allow_users of this agent", r->uid);
        else
            fail(r, 403, "policy", "the agent cannot tell who is calling; refused");
        return 1;
    }
    if (!phc_agent_method_ok(method)) {
        fail(r, 405, "policy", "method %.16s is not forwarded by the agent", method);
        return 1;
    }
    if (!r->target || phc_agent_target_ok(r->target) != 0) {
        fail(r, 400, "policy",
             "the agent takes origin-form paths only (GET /v2/...), never a host or an "
             "absolute URL");
        return 1;
    }
    char path[2048];
    snprintf(path, sizeof(path), "%.*s", (int)strcspn(r->target, "?"), r->target);
    if (strncmp(path, "/_phc/", 6) == 0) {
        local(a, r, path);
        return 1;
    }
    if (!phc_agent_rules_allow(a->rules, r->method, path)) {
        fail(r, 403, "policy", "%s %.200s is not in agent_paths of this agent", r->method, path);
        return 1;
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > a->max_body) {
        fail(r, 413, "policy", "request body of %s bytes is over agent_max_request_bytes (%zu)", cl,
             a->max_body);
        return 1;
    }
    struct hdr_list l = {.n = 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &l);
    if (phc_agent_filter_request(&r->headers, l.h, l.n, a->drop_auth) != 0) {
        fail(r, 500, "internal", "out of memory");
        return 1;
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)url;
    (void)version;
    phc_agent *a = cls;
    struct phc_agent_req *r = *req_cls;
    if (!r)
        return MHD_NO; /* out of memory in on_uri */
    if (!r->started) {
        r->started = 1;
        if (first_call(a, r, conn, method))
            return answer(conn, r);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (n > a->max_body - r->body_len)
            return MHD_NO; /* a chunked body over the limit: close the connection */
        if (r->body_len + n > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 16384;
            while (cap < r->body_len + n)
                cap *= 2;
            char *nb = realloc(r->body, cap);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        return MHD_YES;
    }
    if (r->forwarded)
        return MHD_YES; /* answered already */
    r->forwarded = 1;
    forward_in_slot(a, r);
    return answer(conn, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    phc_agent *a = cls;
    struct phc_agent_req *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    if (r->started) {
        phc_agent_access x = {
            .uid = r->uid,
            .pid = r->pid,
            .method = r->method,
            .target = r->target,
            .status = r->status,
            .bytes = r->resp_bytes,
            .ms = (now_s() - r->t0) * 1000,
            .reused = r->reused,
            .resumed = r->resumed,
            .cert_serial = r->serial,
            .err_class = r->err_class,
            .aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK,
        };
        phc_agent_log_access(&x);
        if (!r->forwarded && r->status)
            phc_agent_metrics_request(a->metrics, r->status, r->err_class, -1);
    }
    if (r->resp)
        MHD_destroy_response(r->resp);
    phc_agent_headers_free(r->headers);
    if (r->body)
        memset(r->body, 0, r->body_len); /* a request body may carry a secret */
    free(r->body);
    free(r->target);
    free(r);
    __atomic_sub_fetch(&a->in_flight, 1, __ATOMIC_RELAXED);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    phc_agent_logf("http: %s", line);
}

/* Open connections allowed: what the file descriptor limit leaves after the upstream
 * connections (one per forwarding slot at most) and a margin, and at most CONNECTION_MAX
 * (each open connection is a thread). */
static unsigned connection_limit(unsigned max_clients)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    long fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur
                   : 1024;
    long limit = fds - 2L * (long)max_clients - 64;
    if (limit > CONNECTION_MAX)
        limit = CONNECTION_MAX;
    return limit < 16 ? 16 : (unsigned)limit;
}

int phc_agent_serve(phc_agent *a)
{
    /* MHD_USE_ITC: MHD_quiesce_daemon needs it with an internal thread. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    unsigned limit = connection_limit(a->max_clients);
    if (sem_init(&a->slots, 0, a->max_clients ? a->max_clients : 1) != 0) {
        fprintf(stderr, "phc: agent: cannot make the request slots: %s\n", strerror(errno));
        return 9;
    }
    a->slots_ok = 1;
    a->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, a->listen_fd, MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        a, MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_THREAD_STACK_SIZE, THREAD_STACK, MHD_OPTION_END);
    if (!a->daemon) {
        fprintf(stderr, "phc: agent: cannot start the HTTP server on %s\n", a->listen);
        return 7;
    }
    return 0;
}

void phc_agent_stop_accepting(phc_agent *a)
{
    __atomic_store_n(&a->draining, 1, __ATOMIC_RELAXED);
    if (a->daemon) {
        int fd = MHD_quiesce_daemon(a->daemon);
        (void)fd; /* closed by phc_agent_listen_close: it is a->listen_fd */
    }
}

/* MHD_stop_daemon joins every connection thread: when it returns no thread of ours runs,
 * and OpenSSL's per-thread state of each (its DRBGs, its error queue) has been freed by that
 * thread's exit handler - so the client can be freed and nothing is left for
 * LeakSanitizer. */
void phc_agent_shutdown(phc_agent *a)
{
    if (a->daemon)
        MHD_stop_daemon(a->daemon);
    a->daemon = NULL;
    if (a->slots_ok)
        sem_destroy(&a->slots);
    a->slots_ok = 0;
}
