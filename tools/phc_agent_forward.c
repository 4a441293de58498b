/* The agent's event loop: one thread runs libmicrohttpd (external epoll mode) and every
 * forwarded request, each on a fiber of its own (phc_agent_fiber.c). A request's
 * phc_client_request runs on its fiber; where the library would wait for the network it calls
 * the thread's wait hook (phc_set_thread_wait), which parks the fiber with the sockets it
 * waits for and returns to the loop. One poll(2) then waits for libmicrohttpd's epoll
 * descriptor and every parked fiber's sockets together, and under load finds several ready at
 * once: the agent rarely sleeps between requests, where a thread per connection paid two
 * wake-ups for each (docs/agent.md, "Performance").
 * Token operations (a full handshake's signature, reopening the token) still block the loop
 * while they run; they are rare (TLS sessions are resumed, and the library makes new
 * connections one at a time) and time-bounded by the library.
 * At most agent_max_clients requests are forwarded at once; the others wait, suspended, for a
 * slot, in the order they arrived. */
#define _GNU_SOURCE
#include "phc_agent.h"
#include "phc_agent_fiber.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Idle connections are closed after this many seconds without a byte. */
#define IDLE_TIMEOUT 60
/* Open connections at most; an idle one costs its buffers and a descriptor. */
#define CONNECTION_MAX 16384

/* The event loop. Everything here is touched by its thread alone, but quiesced (read by the
 * main thread). */
struct phc_agent_loop {
    phc_agent *a;
    struct MHD_Daemon *daemon;
    pthread_t thread;
    int started;
    int wake_fd;  /* eventfd: the main thread's nudge to look at draining and stop */
    int quiesced; /* atomic: the daemon accepts no new connection any more */
    struct phc_agent_req *active; /* requests whose fiber has started and not ended */
    struct phc_agent_req *queued; /* waiting for a slot, in order of arrival */
    struct phc_agent_req **queued_end;
    unsigned n_active, max_active;
    struct phc_agent_req *running; /* the request whose fiber runs now */
    int resumed;                   /* a connection was resumed since the daemon last ran */
};

struct phc_agent_req {
    phc_agent *a;
    struct phc_agent_loop *l;
    struct MHD_Connection *conn;
    phc_fiber *fiber;
    struct phc_agent_req *next, *prev; /* in l->active, or next in l->queued */
    int parked;                        /* the fiber waits for wfds or deadline_ms */
    struct pollfd *wfds;               /* the library's, on the fiber's stack */
    unsigned nwfds;
    long long deadline_ms; /* when to run it again even without an event */
    size_t poll_at;        /* its first descriptor in this round's poll set */
    int done;              /* the fiber has ended: resp is the answer */
    char *target;          /* as the client sent it: path and query */
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

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* The library's wait hook on the loop thread: a request's fiber parks on the descriptors the
 * library waits for and gives the thread back to the loop, which runs it again when one is
 * ready or timeout_ms has passed. Called off a fiber (the loop's own stack), it waits in
 * place. */
static void park_io(void *ud, struct pollfd *fds, unsigned int nfds, int timeout_ms)
{
    struct phc_agent_loop *l = ud;
    struct phc_agent_req *r = l->running;
    if (!r || !phc_fiber_self()) {
        if (poll(fds, nfds, timeout_ms) < 0 && errno != EINTR)
            phc_agent_logf("poll: %s", strerror(errno));
        return;
    }
    r->parked = 1;
    r->wfds = fds;
    r->nwfds = nfds;
    r->deadline_ms = timeout_ms < 0 ? LLONG_MAX : now_ms() + timeout_ms;
    phc_fiber_yield();
    r->parked = 0;
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
    int rc = phc_client_request(a->client, &resp, &q, &err);
    /* Read at once: the next wait may run other requests on this thread. */
    phc_client_last_connection(&r->reused, &r->resumed);
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

static void fiber_main(void *arg)
{
    forward(arg);
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
    struct phc_agent_loop *l = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        __atomic_add_fetch(&l->a->connections, 1, __ATOMIC_RELAXED);
        struct peer *p = malloc(sizeof(*p));
        if (p) {
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            p->ok = phc_agent_peer_check(l->a, ci ? ci->connect_fd : -1, &p->uid, &p->pid);
        }
        *socket_context = p; /* NULL (out of memory): its requests are refused */
    } else {
        __atomic_sub_fetch(&l->a->connections, 1, __ATOMIC_RELAXED);
        free(*socket_context);
        *socket_context = NULL;
    }
}

/* Called once per request before its headers are parsed: the request's context, with the
 * target exactly as sent (libmicrohttpd's url argument has the query removed and decoded). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct phc_agent_loop *l = cls;
    struct phc_agent_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->a = l->a;
    r->l = l;
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
        long open = __atomic_load_n(&a->connections, __ATOMIC_RELAXED);
        body = phc_agent_metrics_text(a, open > 0 ? (unsigned)open : 0);
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
    struct phc_agent_loop *l = cls;
    phc_agent *a = l->a;
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
        return r->done ? answer(conn, r) : MHD_YES; /* the fiber's answer, once resumed */
    /* The whole request is here: it waits, suspended, for the loop to start its fiber (after
     * this libmicrohttpd round) and for the fiber to end. */
    r->forwarded = 1;
    r->conn = conn;
    MHD_suspend_connection(conn);
    r->next = NULL;
    *l->queued_end = r;
    l->queued_end = &r->next;
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    phc_agent *a = ((struct phc_agent_loop *)cls)->a;
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
 * connections (one per forwarding slot at most) and a margin, and at most CONNECTION_MAX. */
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

/* ---- the loop ------------------------------------------------------------------------- */

/* Gives an answered request's connection back to libmicrohttpd, which sends the answer in
 * its next round. */
static void resume(struct phc_agent_loop *l, struct phc_agent_req *r)
{
    r->done = 1;
    MHD_resume_connection(r->conn);
    l->resumed = 1;
}

/* Runs r's fiber until it parks or ends; an ended request gives its slot back. */
static void run_fiber(struct phc_agent_loop *l, struct phc_agent_req *r)
{
    l->running = r;
    int ended = phc_fiber_resume(r->fiber);
    l->running = NULL;
    if (!ended)
        return;
    phc_fiber_free(r->fiber);
    r->fiber = NULL;
    if (r->prev)
        r->prev->next = r->next;
    else
        l->active = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
    l->n_active--;
    resume(l, r);
}

/* Starts queued requests while slots are free. A request whose fiber cannot be made is
 * answered at once. */
static void start_queued(struct phc_agent_loop *l)
{
    while (l->queued && l->n_active < l->max_active) {
        struct phc_agent_req *r = l->queued;
        l->queued = r->next;
        if (!l->queued)
            l->queued_end = &l->queued;
        r->next = NULL;
        if (!(r->fiber = phc_fiber_new(fiber_main, r))) {
            fail(r, 500, "internal", "out of memory (no stack for the request)");
            resume(l, r);
            continue;
        }
        r->next = l->active;
        r->prev = NULL;
        if (l->active)
            l->active->prev = r;
        l->active = r;
        l->n_active++;
        run_fiber(l, r);
    }
}

/* Runs every parked fiber that is due: one of its descriptors is ready or its time has
 * come. */
static void run_due(struct phc_agent_loop *l, const struct pollfd *pfd, long long now)
{
    struct phc_agent_req *r = l->active, *next;
    for (; r; r = next) {
        next = r->next; /* r may end (and leave the list); the others stay put */
        if (!r->parked)
            continue;
        int due = now >= r->deadline_ms;
        /* What is ready goes back to the library (wait.h): it need not poll again. */
        for (unsigned i = 0; i < r->nwfds; i++) {
            r->wfds[i].revents = pfd[r->poll_at + i].revents;
            due |= r->wfds[i].revents != 0;
        }
        if (due)
            run_fiber(l, r);
    }
}

struct pollset {
    struct pollfd *fd;
    size_t n, cap;
};

static int pollset_add(struct pollset *ps, int fd, short events)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        struct pollfd *nfd = realloc(ps->fd, cap * sizeof(*nfd));
        if (!nfd)
            return -1;
        ps->fd = nfd;
        ps->cap = cap;
    }
    ps->fd[ps->n++] = (struct pollfd){.fd = fd, .events = events, .revents = 0};
    return 0;
}

/* This round's poll set (the nudge, libmicrohttpd's epoll descriptor, every parked fiber's
 * sockets) and how long it may wait. */
static int build_round(struct phc_agent_loop *l, struct pollset *ps, int mhd_fd, long long now,
                       int *timeout)
{
    ps->n = 0;
    if (pollset_add(ps, l->wake_fd, POLLIN) != 0 || pollset_add(ps, mhd_fd, POLLIN) != 0)
        return -1;
    long long wait = l->resumed ? 0 : 1000; /* draining and stop are looked at by the clock */
    MHD_UNSIGNED_LONG_LONG mt = 0;
    if (MHD_get_timeout(l->daemon, &mt) == MHD_YES && (long long)mt < wait)
        wait = (long long)mt;
    for (struct phc_agent_req *r = l->active; r; r = r->next) {
        if (!r->parked)
            continue;
        if (r->deadline_ms - now < wait)
            wait = r->deadline_ms - now < 0 ? 0 : r->deadline_ms - now;
        r->poll_at = ps->n;
        for (unsigned i = 0; i < r->nwfds; i++)
            if (pollset_add(ps, r->wfds[i].fd, r->wfds[i].events) != 0)
                return -1;
    }
    *timeout = (int)wait;
    return 0;
}

static void *loop_main(void *arg)
{
    struct phc_agent_loop *l = arg;
    phc_agent *a = l->a;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    int mhd_fd = di ? di->epoll_fd : -1;
    struct pollset ps = {0};
    phc_set_thread_wait(park_io, l);
    phc_agent_log_batch(1);
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        if (__atomic_load_n(&a->draining, __ATOMIC_ACQUIRE) &&
            !__atomic_load_n(&l->quiesced, __ATOMIC_RELAXED)) {
            MHD_quiesce_daemon(l->daemon); /* the listening socket is closed by the main thread */
            __atomic_store_n(&l->quiesced, 1, __ATOMIC_RELEASE);
        }
        int timeout = 0;
        if (build_round(l, &ps, mhd_fd, now_ms(), &timeout) != 0) {
            phc_agent_logf("out of memory in the event loop; retrying in 10 ms");
            poll(NULL, 0, 10);
            continue;
        }
        phc_agent_log_flush(); /* the round's access lines, before the loop may sleep */
        if (poll(ps.fd, ps.n, timeout) < 0 && errno != EINTR) {
            phc_agent_logf("poll: %s", strerror(errno));
            poll(NULL, 0, 10);
            continue;
        }
        if (ps.fd[0].revents) {
            uint64_t n;
            if (read(l->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                phc_agent_logf("wake: %s", strerror(errno));
        }
        run_due(l, ps.fd, now_ms());
        /* libmicrohttpd takes a resumed connection back at the end of a round and answers it
         * in the next one, which no descriptor would start: that round is run here. */
        int resumed = l->resumed;
        l->resumed = 0;
        MHD_run(l->daemon); /* new requests are queued; ended ones are answered */
        if (resumed)
            MHD_run(l->daemon);
        start_queued(l);
    }
    phc_agent_log_batch(0);
    phc_set_thread_wait(NULL, NULL);
    free(ps.fd);
    phc_fiber_release_cache();
    return NULL;
}

/* One loop: on the 2-core machine a second loop (its own daemon on the same listening
 * socket) cost more than it gained - 13-23k against 25k requests/s with 8 clients, and
 * uneven: connections land on whichever daemon accepts first (docs/agent.md). */
int phc_agent_serve(phc_agent *a)
{
    struct phc_agent_loop *l = calloc(1, sizeof(*l));
    if (!l)
        return 9;
    a->loop = l;
    l->a = a;
    l->wake_fd = -1;
    l->queued_end = &l->queued;
    l->max_active = a->max_clients ? a->max_clients : 1;
    /* The daemon accepts when poll says the socket is readable; it must never block. */
    int fl = fcntl(a->listen_fd, F_GETFL);
    if (fl < 0 || fcntl(a->listen_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        fprintf(stderr, "phc: agent: cannot make the listening socket non-blocking: %s\n",
                strerror(errno));
        return 9;
    }
    if ((l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        fprintf(stderr, "phc: agent: cannot make the event loop's nudge: %s\n", strerror(errno));
        return 9;
    }
    /* External epoll mode: the loop thread drives libmicrohttpd (MHD_run) from its poll. */
    l->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, l,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, a->listen_fd,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, l, MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, l, MHD_OPTION_CONNECTION_LIMIT,
        connection_limit(a->max_clients), MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_END);
    if (!l->daemon) {
        fprintf(stderr, "phc: agent: cannot start the HTTP server on %s\n", a->listen);
        return 7;
    }
    int rc = pthread_create(&l->thread, NULL, loop_main, l);
    if (rc != 0) {
        fprintf(stderr, "phc: agent: cannot start the event loop: %s\n", strerror(rc));
        return 9;
    }
    l->started = 1;
    return 0;
}

static void nudge(struct phc_agent_loop *l)
{
    uint64_t one = 1;
    if (l->wake_fd >= 0 && write(l->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        phc_agent_logf("wake: %s", strerror(errno));
}

/* Returns once the loop has stopped accepting: the listening socket may then be closed. */
void phc_agent_stop_accepting(phc_agent *a)
{
    __atomic_store_n(&a->draining, 1, __ATOMIC_RELEASE);
    struct phc_agent_loop *l = a->loop;
    if (!l || !l->started)
        return;
    nudge(l);
    while (!__atomic_load_n(&l->quiesced, __ATOMIC_ACQUIRE)) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Ends the loop and frees the daemon. Called when nothing is in flight (or after a failed
 * start): no fiber is parked, no connection suspended. The daemon is quiesced first, so that
 * it leaves the listening socket to phc_agent_listen_close. */
void phc_agent_shutdown(phc_agent *a)
{
    struct phc_agent_loop *l = a->loop;
    if (!l)
        return;
    __atomic_store_n(&a->draining, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
    if (l->started) {
        nudge(l);
        pthread_join(l->thread, NULL);
    }
    if (l->daemon) {
        MHD_quiesce_daemon(l->daemon);
        MHD_stop_daemon(l->daemon);
    }
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    free(l);
    a->loop = NULL;
}
