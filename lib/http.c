#include "http.h"

#include "alert.h"
#include "err.h"
#include "http_headers.h"
#include "http_trace.h"
#include "tls_describe.h"
#include "stats.h"
#include "wait.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_HEADER_BYTES (64 * 1024)

struct phc_response {
    long status;
    char *headers; /* raw block, NUL-terminated */
    size_t headers_len;
    char *body; /* NUL-terminated for convenience */
    size_t body_len;
    phc_http_fields fields; /* the header block, parsed */
};

struct pinned_addr {
    int family;
    unsigned char addr[16];
};

/* Per-transfer state the callbacks fill in; reset at the start of every request. */
struct xfer_state {
    char *body;
    size_t body_len, body_cap;
    char *headers;
    size_t headers_len, headers_cap;
    int too_large; /* body over max_response_bytes */
    int headers_too_large;
    int blocked;     /* the socket guard refused an address */
    char tried[200]; /* addresses connected to, in order, for messages */
    char blocked_addr[INET6_ADDRSTRLEN];
    int tls_err; /* tls.c refused to configure the context */
    phc_errbuf tls_errbuf;
    int described; /* the connection was logged for this transfer */
    phc_tls_report report;
    phc_alert_seen alert; /* what the server said with TLS alerts */
    phc_stats_last last;  /* how it reached the server (stats.c), published when it ends */
};

/* A socket of the multi and what libcurl waits for on it (CURL_POLL_*), from
 * CURLMOPT_SOCKETFUNCTION: with a wait hook (wait.h) the hook is handed these to wait on. */
struct xfer_sock {
    curl_socket_t fd;
    int what;
};

/* Each transfer runs on a fresh copy of tmpl, so that nothing one response leaves in an easy
 * handle can reach the next: libcurl before 8.1.0 (Debian 12: 7.88.1) keeps a pointer to
 * the last stored header of a transfer after freeing it, and a response that opens with a
 * folded header line is appended to that freed header (curl commit cd1c611, issue 11101).
 * The connection lives in multi, between transfers. */
struct phc_xfer {
    CURL *tmpl;   /* configured once, never performed */
    CURLM *multi; /* keeps the connection alive between transfers */
    CURL *curl;   /* the copy of tmpl running the current transfer, else NULL */
    const phc_http_setup *setup;
    struct curl_slist *resolve;
    struct pinned_addr pinned[PHC_MAX_PINNED];
    size_t npinned;
    char curl_err[CURL_ERROR_SIZE];
    struct xfer_state st;
    int unsent;              /* see phc__xfer_unsent */
    struct xfer_sock *socks; /* the sockets of multi (on_socket) */
    size_t nsocks, socks_cap;
    /* phc__xfer_on_session: told once when this transfer's connection stores a TLS session */
    void (*on_session)(void *ud);
    void *on_session_ud;
    int (*curl_new_session)(SSL *ssl, SSL_SESSION *sess); /* libcurl's, which we wrap */
};

/* The receive buffers may hold an access token (the token endpoint's answer) or a cookie:
 * the old block is wiped when it is replaced (libtls: wipe at the point of replacement). */
static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 1;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    char *p = OPENSSL_clear_realloc(*buf, *cap, n);
    if (!p)
        return 0;
    *buf = p;
    *cap = n;
    return 1;
}

/* Appends n bytes of data to *buf (kept NUL-terminated); n, or 0 when out of memory (which
 * makes libcurl end the transfer). */
static size_t append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (!grow(buf, cap, *len + n + 1))
        return 0;
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    phc_xfer *x = ud;
    size_t n = size * nmemb;
    if (x->st.body_len + n > x->setup->cfg->max_response_bytes) {
        x->st.too_large = 1;
        return 0;
    }
    return append(&x->st.body, &x->st.body_len, &x->st.body_cap, data, n);
}

/* The connection, once per transfer, for the -v log (tls_describe.c words it). */
static void describe_connection(phc_xfer *x)
{
    const phc_log *log = x->setup->log;
    if (x->st.described || !log || !log->fn || log->level < PHC_LOG_INFO)
        return;
    x->st.described = 1;
    char *ip = NULL;
    long port = 0, connects = 0;
    struct curl_tlssessioninfo *ti = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(x->curl, CURLINFO_PRIMARY_PORT, &port);
    curl_easy_getinfo(x->curl, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(x->curl, CURLINFO_TLS_SSL_PTR, &ti);
    const SSL *ssl = (ti && ti->backend == CURLSSLBACKEND_OPENSSL) ? ti->internals : NULL;
    char line[1024];
    phc__tls_describe(line, sizeof(line), ssl, ip, port, connects != 0,
                      phc__tls_client_subject(x->setup->tls));
    phc__log(log, PHC_LOG_INFO, "%s", line);
}

/* -vv: the connection line first, then the request it carries. */
static int on_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *ud)
{
    phc_xfer *x = ud;
    if (type == CURLINFO_HEADER_OUT)
        describe_connection(x);
    return phc__trace_debug(curl, type, data, size, (void *)x->setup->log);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    phc_xfer *x = ud;
    size_t n = size * nmemb;
    phc__stats_transfer(x->curl, &x->st.last);
    describe_connection(x);
    /* A new status line starts a new block (after 100 Continue, say): keep the final one. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        x->st.headers_len = 0;
    if (x->st.headers_len + n > MAX_HEADER_BYTES) {
        x->st.headers_too_large = 1;
        return 0;
    }
    return append(&x->st.headers, &x->st.headers_len, &x->st.headers_cap, data, n);
}

static int addr_pinned(const phc_xfer *x, const struct sockaddr *sa, char *text, size_t textlen)
{
    const void *bytes = NULL;
    size_t len = 0;
    if (sa->sa_family == AF_INET) {
        bytes = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        len = 4;
    } else if (sa->sa_family == AF_INET6) {
        bytes = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        len = 16;
    }
    text[0] = '\0';
    if (bytes)
        inet_ntop(sa->sa_family, bytes, text, (socklen_t)textlen);
    /* Whether the policy is on comes from the configuration, not from how many of its
     * addresses parsed: a list none of which parsed allows nothing. */
    if (x->setup->cfg->n_pinned_ips == 0)
        return bytes != NULL;
    for (size_t i = 0; i < x->npinned; i++)
        if (bytes && x->pinned[i].family == sa->sa_family &&
            memcmp(x->pinned[i].addr, bytes, len) == 0)
            return 1;
    return 0;
}

/* The last line of the address policy: whatever libcurl resolved or was told, no socket is
 * opened to an address outside pinned_ips. */
static curl_socket_t on_opensocket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    phc_xfer *x = ud;
    char text[INET6_ADDRSTRLEN] = "";
    if (purpose != CURLSOCKTYPE_IPCXN || !addr_pinned(x, &a->addr, text, sizeof(text))) {
        x->st.blocked = 1;
        snprintf(x->st.blocked_addr, sizeof(x->st.blocked_addr), "%s", text[0] ? text : "?");
        phc__log(x->setup->log, PHC_LOG_WARN, "refused to connect to %s: not in pinned_ips",
                 x->st.blocked_addr);
        return CURL_SOCKET_BAD;
    }
    size_t used = strlen(x->st.tried);
    if (!strstr(x->st.tried, text) && used + strlen(text) + 3 < sizeof(x->st.tried))
        snprintf(x->st.tried + used, sizeof(x->st.tried) - used, "%s%s", used ? ", " : "", text);
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* The new-session hook: libcurl stores each TLS session the server gives a connection through
 * the SSL_CTX's new-session callback; ours calls libcurl's, then tells the transfer's
 * on_session (conn_gate.h: the next new connection can now resume). */
static int session_index = -1;
static pthread_once_t session_once = PTHREAD_ONCE_INIT;

static void session_index_init(void)
{
    session_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    phc_xfer *x = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), session_index);
    int kept = x && x->curl_new_session ? x->curl_new_session(ssl, sess) : 0;
    if (x && x->on_session) {
        void (*fn)(void *) = x->on_session;
        x->on_session = NULL;
        fn(x->on_session_ud);
    }
    return kept;
}

/* Wraps libcurl's new-session callback, which it sets before ours runs. Without one (the
 * session cache off) there is nothing to tell: the gate is left when the transfer ends. */
static void watch_sessions(phc_xfer *x, SSL_CTX *ctx)
{
    pthread_once(&session_once, session_index_init);
    int (*cb)(SSL *, SSL_SESSION *) = SSL_CTX_sess_get_new_cb(ctx);
    if (!cb || cb == on_new_session || session_index < 0 ||
        !SSL_CTX_set_ex_data(ctx, session_index, x))
        return;
    x->curl_new_session = cb;
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
}

void phc__xfer_on_session(phc_xfer *x, void (*fn)(void *ud), void *ud)
{
    x->on_session = fn;
    x->on_session_ud = fn ? ud : NULL;
}

static CURLcode on_ssl_ctx(CURL *curl, void *sslctx, void *ud)
{
    phc_xfer *x = ud;
    watch_sessions(x, sslctx);
    if (phc__tls_configure(x->setup->tls, sslctx, &x->st.report, &x->st.tls_errbuf) != PHC_OK ||
        phc__alert_watch(sslctx, &x->st.alert, &x->st.tls_errbuf) != PHC_OK) {
        x->st.tls_err = 1;
        return CURLE_SSL_CERTPROBLEM;
    }
    return CURLE_OK;
}

static int build_resolve(phc_xfer *x, phc_errbuf *err)
{
    const phc_config *cfg = x->setup->cfg;
    /* libcurl 7.88 cannot parse an IPv6 literal as the host of a CURLOPT_RESOLVE entry
     * ("::1:443:..." and "[::1]:443:..." are both refused, and the transfer then fails).
     * Such a URL names its one address, which config validation requires to be in
     * pinned_ips; libcurl connects to it without resolving, and the socket guard
     * (on_opensocket) still refuses every address outside pinned_ips. */
    if (strchr(cfg->host, ':'))
        return PHC_OK;
    char line[64 + PHC_MAX_PINNED * (INET6_ADDRSTRLEN + 3) + 256];
    int off = snprintf(line, sizeof(line), "%s:%d:", cfg->host, cfg->port);
    for (size_t i = 0; i < cfg->n_pinned_ips && off > 0 && (size_t)off < sizeof(line); i++) {
        int ipv6 = strchr(cfg->pinned_ips[i], ':') != NULL;
        off += snprintf(line + off, sizeof(line) - (size_t)off, "%s%s%s%s", i ? "," : "",
                        ipv6 ? "[" : "", cfg->pinned_ips[i], ipv6 ? "]" : "");
    }
    if (off <= 0 || (size_t)off >= sizeof(line))
        return phc__err(err, PHC_ERR_CONFIG, "pinned_ips list too long");
    x->resolve = curl_slist_append(NULL, line);
    return x->resolve ? PHC_OK : phc__err(err, PHC_ERR_INTERNAL, "out of memory");
}

/* libcurl's word on which sockets of the multi it waits for and how (CURLMOPT_SOCKETFUNCTION,
 * set on every multi; libcurl calls it from curl_multi_socket_action, which run() uses only
 * when the thread has a wait hook). Out of memory leaves a socket untracked:
 * the hook's wait then ends at libcurl's timer (PHC_WAIT_MAX_MS at most), which is slower,
 * never wrong. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    phc_xfer *x = ud;
    size_t i = 0;
    while (i < x->nsocks && x->socks[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < x->nsocks)
            x->socks[i] = x->socks[--x->nsocks];
        return 0;
    }
    if (i == x->nsocks) {
        if (x->nsocks == x->socks_cap) {
            size_t cap = x->socks_cap ? x->socks_cap * 2 : 4;
            struct xfer_sock *p = realloc(x->socks, cap * sizeof(*p));
            if (!p)
                return 0;
            x->socks = p;
            x->socks_cap = cap;
        }
        x->socks[x->nsocks++].fd = fd;
    }
    x->socks[i].what = what;
    return 0;
}

/* A multi for x, its sockets tracked by on_socket; NULL when out of memory. */
static CURLM *new_multi(phc_xfer *x)
{
    x->nsocks = 0; /* the previous multi's sockets are closed with it */
    CURLM *m = curl_multi_init();
    if (m && (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
              curl_multi_setopt(m, CURLMOPT_SOCKETDATA, x) != CURLM_OK)) {
        curl_multi_cleanup(m);
        m = NULL;
    }
    return m;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(x->curl, opt, val) != CURLE_OK) {                                     \
            rc = phc__err(err, PHC_ERR_INTERNAL, "libcurl refused option " #opt);                  \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

int phc__xfer_new(phc_xfer **out, const phc_http_setup *setup, phc_errbuf *err)
{
    *out = NULL;
    int rc = PHC_ERR_INTERNAL;
    const phc_config *cfg = setup->cfg;
    phc_xfer *x = calloc(1, sizeof(*x));
    if (!x || !(x->curl = curl_easy_init())) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    x->setup = setup;
    for (size_t i = 0; i < cfg->n_pinned_ips; i++) {
        struct pinned_addr *p = &x->pinned[x->npinned];
        if (inet_pton(AF_INET, cfg->pinned_ips[i], p->addr) == 1)
            p->family = AF_INET;
        else if (inet_pton(AF_INET6, cfg->pinned_ips[i], p->addr) == 1)
            p->family = AF_INET6;
        else
            continue;
        x->npinned++;
    }
    if (cfg->n_pinned_ips > 0 && (rc = build_resolve(x, err)) != PHC_OK)
        goto out;

    SETOPT(CURLOPT_PRIVATE, x);
    SETOPT(CURLOPT_ERRORBUFFER, x->curl_err);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    /* An empty proxy string overrides https_proxy/all_proxy from the environment. */
    SETOPT(CURLOPT_PROXY, "");
    SETOPT(CURLOPT_NOPROXY, "*");
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    /* tls.c checks the host name inside the pinned verification, and refuses first. libcurl's
     * own check after the handshake stays on: it costs nothing, and it is not a subset of
     * ours - it refuses a certificate that has subjectAltNames but none for the host even
     * when OpenSSL's check falls back to the subject CN (a certificate with only an
     * iPAddress SAN and CN=host). Its refusal is reported like ours (host_check_err). */
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    /* No CA file, no CA path, no CA cache: libcurl's built-in defaults (Debian: the whole
     * system store) must not reach the connection. tls.c verifies against the pinned store. */
    SETOPT(CURLOPT_CAINFO, NULL);
    SETOPT(CURLOPT_CAPATH, NULL);
    SETOPT(CURLOPT_CA_CACHE_TIMEOUT, 0L);
    SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SETOPT(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    SETOPT(CURLOPT_SSL_CTX_DATA, x);
    SETOPT(CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    SETOPT(CURLOPT_OPENSOCKETDATA, x);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, x);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, x);
    if (setup->log && setup->log->fn && setup->log->level >= PHC_LOG_DEBUG) {
        /* -vv: the header lines, redacted by http_trace.c before the log sees them */
        SETOPT(CURLOPT_DEBUGFUNCTION, on_debug);
        SETOPT(CURLOPT_DEBUGDATA, x);
        SETOPT(CURLOPT_VERBOSE, 1L);
    }
    SETOPT(CURLOPT_CONNECTTIMEOUT, cfg->connect_timeout);
    SETOPT(CURLOPT_TIMEOUT, cfg->timeout);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cfg->max_response_bytes);
    /* libcurl copies every HTTPS request through its upload buffer (64 KiB by default),
     * allocated with each handle, and every request runs on a fresh handle: the smallest
     * size libcurl takes (16 KiB, a TLS record) saves allocating and wiping 48 KiB per
     * request; a larger body is sent in more writes. */
    SETOPT(CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_USERAGENT, "phconnect/" PHC_VERSION_STRING);
    if (setup->share)
        SETOPT(CURLOPT_SHARE, setup->share);
    if (x->resolve)
        SETOPT(CURLOPT_RESOLVE, x->resolve);
    if (cfg->source_address) {
        char iface[INET6_ADDRSTRLEN + 8];
        snprintf(iface, sizeof(iface), "host!%s", cfg->source_address);
        SETOPT(CURLOPT_INTERFACE, iface);
    }
    x->tmpl = x->curl;
    x->curl = NULL;
    if (!(x->multi = new_multi(x))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    *out = x;
    x = NULL;
    rc = PHC_OK;
out:
    phc__xfer_free(x);
    return rc;
}

/* One wait through the thread's hook, then libcurl's work on what became ready: the multi's
 * sockets as libcurl wants them (on_socket) and the time until libcurl's next timer (at most
 * PHC_WAIT_MAX_MS) go to the hook. The hook need not say what is ready (and may return early):
 * when it sets no revents, a zero-timeout poll(2) asks; libcurl then runs the transfer on each
 * ready socket and on its timers. */
static CURLMcode step_hooked(phc_xfer *x, int *running)
{
    long timeout = -1;
    CURLMcode mc = curl_multi_timeout(x->multi, &timeout);
    if (mc != CURLM_OK)
        return mc;
    if (timeout < 0 || timeout > PHC_WAIT_MAX_MS)
        timeout = PHC_WAIT_MAX_MS;
    /* One transfer at a time per multi: one connection, two sockets while happy eyeballs
     * tries both families; 16 is room to spare. */
    struct pollfd fds[16];
    nfds_t n = 0;
    for (size_t i = 0; i < x->nsocks && n < sizeof(fds) / sizeof(fds[0]); i++) {
        short ev = (short)(((x->socks[i].what & CURL_POLL_IN) ? POLLIN : 0) |
                           ((x->socks[i].what & CURL_POLL_OUT) ? POLLOUT : 0));
        if (ev)
            fds[n++] = (struct pollfd){.fd = x->socks[i].fd, .events = ev};
    }
    int told = 0;
    if (timeout > 0) {
        /* The hook may run other transfers on this thread (each on its own xfer and multi);
         * nothing of this one is touched until it returns. */
        phc__wait_call(fds, (unsigned int)n, (int)timeout);
        for (nfds_t i = 0; i < n; i++)
            told |= fds[i].revents != 0;
    }
    /* A hook that said what is ready (an event loop that polled these sockets) spares a
     * system call; one that did not is asked after. */
    if (!told && n > 0 && poll(fds, n, 0) < 0)
        n = 0; /* EINTR: the timers below still run; the sockets are asked again next time */
    for (nfds_t i = 0; i < n && mc == CURLM_OK; i++) {
        short re = fds[i].revents;
        int mask = ((re & POLLIN) ? CURL_CSELECT_IN : 0) | ((re & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                   ((re & (POLLERR | POLLHUP | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
        if (mask)
            mc = curl_multi_socket_action(x->multi, fds[i].fd, mask, running);
    }
    if (mc == CURLM_OK)
        mc = curl_multi_socket_action(x->multi, CURL_SOCKET_TIMEOUT, 0, running);
    return mc;
}

/* curl_easy_perform on x->curl, with the connection cache of x->multi. Without a wait hook:
 * curl_multi_perform and curl_multi_poll. With one (wait.h): libcurl's socket interface
 * (curl_multi_socket_action), since libcurl (7.88) tells CURLMOPT_SOCKETFUNCTION which sockets
 * it waits for only there, not from curl_multi_perform; a transfer starts with its timer
 * (curl_multi_add_handle sets it due) and ends with curl_multi_remove_handle, which leaves
 * no socket of it tracked, so the next transfer on this multi may use either interface. */
static CURLcode run(phc_xfer *x)
{
    if (!x->multi && !(x->multi = new_multi(x))) {
        snprintf(x->curl_err, sizeof(x->curl_err), "libcurl: out of memory");
        return CURLE_OUT_OF_MEMORY;
    }
    CURLMcode mc = curl_multi_add_handle(x->multi, x->curl);
    CURLcode cc = CURLE_GOT_NOTHING;
    int running = 1, left = 0;
    if (phc__wait_hooked()) {
        if (mc == CURLM_OK)
            mc = curl_multi_socket_action(x->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        while (mc == CURLM_OK && running)
            mc = step_hooked(x, &running);
    }
    while (mc == CURLM_OK && running) {
        mc = curl_multi_perform(x->multi, &running);
        if (mc == CURLM_OK && running)
            mc = curl_multi_poll(x->multi, NULL, 0, 1000, NULL);
    }
    for (CURLMsg *m; (m = curl_multi_info_read(x->multi, &left));)
        if (m->msg == CURLMSG_DONE && m->easy_handle == x->curl)
            cc = m->data.result;
    curl_multi_remove_handle(x->multi, x->curl);
    if (mc != CURLM_OK) {
        snprintf(x->curl_err, sizeof(x->curl_err), "libcurl: %s", curl_multi_strerror(mc));
        cc = CURLE_FAILED_INIT;
    }
    return cc;
}

/* Closes the handle's connections after a failed transfer; the next one connects afresh.
 * The connection is of no further use, and closing it is what makes a TLS 1.3 refusal
 * visible: the server's alert arrives after our request went out, and when the server has
 * already reset the connection libcurl fails on the send without reading it. Its close reads
 * what the server sent last (to spare the server a RST), which passes the alert through
 * alert.c's callback before the failure is described. Without this the connection lingers
 * in the cache, unread, and one refusal in five was reported as a reset. */
static void drop_connections(phc_xfer *x)
{
    curl_multi_cleanup(x->multi);
    x->multi = new_multi(x); /* NULL is retried (and reported) by run() */
}

static void reset_state(struct xfer_state *st)
{
    st->body_len = 0;
    st->headers_len = 0;
    st->too_large = st->headers_too_large = 0;
    st->blocked = 0;
    st->blocked_addr[0] = '\0';
    st->tried[0] = '\0';
    st->tls_err = 0;
    st->described = 0;
    phc__stats_last_init(&st->last);
    memset(&st->tls_errbuf, 0, sizeof(st->tls_errbuf));
    memset(&st->report, 0, sizeof(st->report));
    phc__alert_reset(&st->alert);
}

static const char *alert_word(int desc)
{
    const char *name = phc__alert_name(desc);
    return name ? name : "-";
}

/* A certificate name for a message: an empty one is said to be empty when the certificate
 * was seen, unknown when it was not. */
static const char *name_or(const char *name, int seen, const char *empty)
{
    return name[0] ? name : seen ? empty : "(not seen)";
}

/* libcurl's host name check refused the server (see the VERIFYHOST comment in
 * phc__xfer_new), in the same words as tls.c's own refusal, naming the certificate. */
static int host_check_err(phc_xfer *x, phc_errbuf *err)
{
    /* The alert record names the certificate of every handshake, resumed ones included;
     * tls.c's report only those it verified. */
    const phc_alert_seen *a = &x->st.alert;
    const phc_tls_report *r = &x->st.report;
    char peer_subj[256], peer_iss[256];
    int seen = phc__alert_peer_names(a, peer_subj, sizeof(peer_subj), peer_iss, sizeof(peer_iss));
    const char *subj = seen ? peer_subj : r->v.subject;
    const char *iss = seen ? peer_iss : r->v.issuer;
    int known = seen || r->v.subject[0] || r->v.issuer[0];
    return phc__err(err, PHC_ERR_TRUST,
                    "server certificate '%s' issued by '%s' refused: not valid for host '%s' "
                    "(libcurl's host name check)",
                    name_or(subj, known, "(empty subject)"), name_or(iss, known, "(empty issuer)"),
                    x->setup->cfg->host);
}

/* libcurl's codes translated, once, into the operator's classes. libcurl's own text goes to
 * the debug log only: for TLS failures it is OpenSSL's error string ("OpenSSL SSL_read:
 * error:0A000418:SSL routines::tlsv1 alert unknown ca, errno 0"), which names no
 * certificate and no cause an operator can act on. The TLS cases are described from what
 * the callbacks saw (tls.c's report, alert.c's record) instead. */
static int map_curl_error(phc_xfer *x, CURLcode cc, phc_errbuf *err)
{
    const phc_config *cfg = x->setup->cfg;
    const char *detail = x->curl_err[0] ? x->curl_err : curl_easy_strerror(cc);
    phc__log(x->setup->log, PHC_LOG_DEBUG, "libcurl: %s (CURLcode %d)", detail, (int)cc);
    if (x->st.alert.received >= 0 || x->st.alert.sent >= 0)
        phc__log(x->setup->log, PHC_LOG_DEBUG,
                 "TLS alerts: from the server %d (%s), from phc %d (%s); the server %s a client "
                 "certificate",
                 x->st.alert.received, alert_word(x->st.alert.received), x->st.alert.sent,
                 alert_word(x->st.alert.sent),
                 x->st.alert.cert_requested ? "asked for" : "did not ask for");
    if (x->st.tls_err)
        return phc__err_copy(err, &x->st.tls_errbuf);
    if (x->st.blocked)
        return phc__err(err, PHC_ERR_POLICY,
                        "connection to %s refused by policy: the address is not in pinned_ips",
                        x->st.blocked_addr);
    if (x->st.report.failed)
        return phc__tls_report_err(x->setup->tls, &x->st.report, err);
    /* Before the CURLcode: libcurl files a certificate_expired alert about our certificate
     * under CURLE_PEER_FAILED_VERIFICATION, and a TLS 1.3 refusal under CURLE_RECV_ERROR. */
    int rc =
        phc__alert_refusal_err(&x->st.alert, phc__tls_client_cert(x->setup->tls), cfg->url, err);
    if (rc != PHC_OK)
        return rc;
    if (x->st.too_large || cc == CURLE_FILESIZE_EXCEEDED)
        return phc__err(err, PHC_ERR_POLICY,
                        "response from %s is larger than max_response_bytes (%zu bytes)", cfg->url,
                        cfg->max_response_bytes);
    if (x->st.headers_too_large)
        return phc__err(err, PHC_ERR_POLICY, "response headers from %s exceed %d bytes", cfg->url,
                        MAX_HEADER_BYTES);
    const char *addr = x->st.tried[0] ? x->st.tried : "none reached";
    char why[160];
    phc__alert_describe(why, sizeof(why), &x->st.alert);
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* The URL is https by construction (config_keys.c): this is the answer, not HTTP/1.x. */
        return phc__err(err, PHC_ERR_NETWORK, "%s did not answer with HTTP/1.x: %s", cfg->url,
                        detail);
    case CURLE_OPERATION_TIMEDOUT:
        return phc__err(err, PHC_ERR_NETWORK, "request to %s timed out (address %s): %s", cfg->url,
                        addr, detail);
    case CURLE_COULDNT_RESOLVE_HOST:
        return phc__err(err, PHC_ERR_NETWORK, "cannot resolve host '%s': %s", cfg->host, detail);
    case CURLE_COULDNT_CONNECT:
        return phc__err(err, PHC_ERR_NETWORK, "cannot connect to %s (addresses tried: %s): %s",
                        cfg->url, x->st.tried[0] ? x->st.tried : "none", detail);
    case CURLE_PEER_FAILED_VERIFICATION:
        /* Our verifier passed (no report), so this is libcurl's own check after the
         * handshake: with CURLOPT_PINNEDPUBLICKEY and OCSP stapling unused, the host name
         * check is the one that remains. */
        return host_check_err(x, err);
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
        return phc__err(err, PHC_ERR_HSM,
                        "client key or certificate '%s' not usable for TLS (the debug log "
                        "has the detail)",
                        x->setup->tls ? phc__tls_client_subject(x->setup->tls) : "?");
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CLIENTCERT:
        return phc__err(err, PHC_ERR_NETWORK, "TLS handshake with %s (address %s) failed: %s",
                        cfg->url, addr, why);
    case CURLE_RECV_ERROR:
        return phc__err(err, PHC_ERR_NETWORK,
                        "connection to %s (address %s) failed while reading the response: %s",
                        cfg->url, addr, why);
    case CURLE_SEND_ERROR:
        return phc__err(err, PHC_ERR_NETWORK,
                        "connection to %s (address %s) failed while sending the request: %s",
                        cfg->url, addr, why);
    default:
        /* curl_easy_strerror is libcurl's fixed text for the code, never OpenSSL's. */
        return phc__err(err, PHC_ERR_NETWORK, "request to %s (address %s) failed: %s", cfg->url,
                        addr, curl_easy_strerror(cc));
    }
}

static int take_response(phc_xfer *x, phc_response **out, phc_errbuf *err)
{
    phc_response *r = calloc(1, sizeof(*r));
    if (!r)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &r->status);
    r->body = OPENSSL_malloc(x->st.body_len + 1);
    r->headers = OPENSSL_malloc(x->st.headers_len + 1);
    if (!r->body || !r->headers) {
        phc_response_free(r);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    if (x->st.body_len)
        memcpy(r->body, x->st.body, x->st.body_len);
    r->body[x->st.body_len] = '\0';
    r->body_len = x->st.body_len;
    if (x->st.headers_len)
        memcpy(r->headers, x->st.headers, x->st.headers_len);
    r->headers[x->st.headers_len] = '\0';
    r->headers_len = x->st.headers_len;
    phc_errbuf why = {0};
    int rc = phc__http_fields_parse(&r->fields, r->headers, &why);
    if (rc != PHC_OK) {
        phc_response_free(r);
        return phc__err(err, rc, "response from %s refused: %s", x->setup->cfg->url, why.msg);
    }
    *out = r;
    return PHC_OK;
}

/* A request header is an HTTP token name, ':' and a value without control characters other
 * than tab: CR or LF would add a header (or a request) of the caller's making, and other
 * control characters are read differently by different servers. Host is refused: the
 * request goes to the host in url, for which the server certificate was checked, and a
 * second name would reach another virtual host behind the same front end. */
static int check_header(const char *h, phc_errbuf *err)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return phc__err(err, PHC_ERR_CONFIG, "header must be 'Name: value' on one line");
    int nlen = (int)(colon - h);
    for (const char *p = h; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(tchar, *p)))
            return phc__err(err, PHC_ERR_CONFIG,
                            "header name is not an HTTP token (a space or a control character "
                            "before ':'); a header is 'Name: value' on one line");
    for (const char *p = colon + 1; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return phc__err(err, PHC_ERR_CONFIG,
                            "header '%.*s' contains a control character (CR, LF or another "
                            "below 0x20): a header is 'Name: value' on one line",
                            nlen, h);
    if (nlen == 4 && strncasecmp(h, "Host", 4) == 0)
        return phc__err(err, PHC_ERR_CONFIG,
                        "header 'Host' is refused: the request goes to the host in url, the "
                        "one the server certificate is checked for");
    return PHC_OK;
}

int phc__request_idempotent(const phc_request *req)
{
    const char *m = req->method ? req->method : (req->body ? "POST" : "GET");
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
        if (strcmp(m, safe[i]) == 0)
            return 1;
    return 0;
}

int phc__xfer_unsent(const phc_xfer *x)
{
    return x->unsent;
}

static int check_request(const phc_request *req, phc_errbuf *err)
{
    if (!req || !req->path || req->path[0] != '/')
        return phc__err(err, PHC_ERR_CONFIG, "request path must start with '/'");
    for (const char *p = req->path; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return phc__err(err, PHC_ERR_CONFIG,
                            "request path contains a space or control character");
    if (req->method)
        for (const char *p = req->method; *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || *p == '-'))
                return phc__err(err, PHC_ERR_CONFIG, "invalid HTTP method '%s'", req->method);
    int rc = PHC_OK;
    for (const char *const *h = req->headers; h && *h && rc == PHC_OK; h++)
        rc = check_header(*h, err);
    return rc;
}

int phc__xfer_perform(phc_xfer *x, const phc_request *req, phc_response **out, phc_errbuf *err)
{
    *out = NULL;
    x->unsent = 0;
    int rc = check_request(req, err);
    if (rc != PHC_OK)
        return rc;
    struct curl_slist *hdrs = NULL;
    char *url = NULL;
    size_t ulen = strlen(x->setup->cfg->url) + strlen(req->path) + 1;
    if (!(url = malloc(ulen))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    snprintf(url, ulen, "%s%s", x->setup->cfg->url, req->path);
    /* libcurl adds "Expect: 100-continue" to large bodies; the wait it causes buys nothing. */
    if (!(hdrs = curl_slist_append(hdrs, "Expect:"))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (const char *const *h = req->headers; h && *h; h++) {
        struct curl_slist *n = curl_slist_append(hdrs, *h);
        if (!n) {
            rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
            goto out;
        }
        hdrs = n;
    }
    if (!(x->curl = curl_easy_duphandle(x->tmpl)) ||
        (x->setup->share && curl_easy_setopt(x->curl, CURLOPT_SHARE, x->setup->share))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    reset_state(&x->st);
    x->curl_err[0] = '\0';
    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
    curl_easy_setopt(x->curl, CURLOPT_URL, url);
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, hdrs);
    if (req->body) {
        curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(x->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else {
        curl_easy_setopt(x->curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(x->curl, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(x->curl, CURLOPT_CUSTOMREQUEST,
                     (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
                      (req->body && strcmp(method, "POST") == 0))
                         ? NULL
                         : method);
    int fresh = (req->flags & PHC_REQ_FRESH_CONNECTION) != 0;
    /* libcurl sends a request again on a new connection by itself when a reused one gives no
     * answer - the server may have acted on it. A request that must not be sent twice
     * therefore never goes on a reused connection (the new one may resume the TLS session:
     * no token signature). */
    curl_easy_setopt(x->curl, CURLOPT_FRESH_CONNECT,
                     fresh || !phc__request_idempotent(req) ? 1L : 0L);
    curl_easy_setopt(x->curl, CURLOPT_FORBID_REUSE, fresh ? 1L : 0L);
    curl_easy_setopt(x->curl, CURLOPT_SSL_SESSIONID_CACHE,
                     (req->flags & PHC_REQ_NO_SESSION_REUSE) ? 0L : 1L);
    CURLcode cc = run(x);
    phc__trace_timings(x->setup->log, x->curl);
    if (cc != CURLE_OK) {
        long nconn = 0;
        curl_off_t tls_done = 0;
        curl_easy_getinfo(x->curl, CURLINFO_NUM_CONNECTS, &nconn);
        curl_easy_getinfo(x->curl, CURLINFO_APPCONNECT_TIME_T, &tls_done);
        x->unsent = nconn > 0 && tls_done == 0;
        drop_connections(x);
    }
    /* The transfer's last wait is behind it: from here to the caller nothing else runs on
     * this thread, so the thread's last-connection facts are this transfer's even when other
     * requests ran during its waits (wait.h). */
    phc__stats_publish(&x->st.last);
    if (cc != CURLE_OK) {
        rc = map_curl_error(x, cc, err);
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    /* 304 Not Modified answers a conditional request: not a redirect, an ordinary non-2xx. */
    if (status >= 300 && status < 400 && status != 304) {
        phc_http_fields f;
        phc_errbuf why = {0};
        if ((rc = phc__http_fields_parse(&f, x->st.headers, &why)) != PHC_OK) {
            rc = phc__err(err, rc, "response from %s refused: %s", x->setup->cfg->url, why.msg);
            goto out;
        }
        const char *loc = phc__http_fields_get(&f, "Location");
        rc = phc__err(err, PHC_ERR_POLICY,
                      "server answered %ld redirecting to '%.200s'; redirects are never followed",
                      status, loc ? loc : "none");
        phc__http_fields_free(&f);
        goto out;
    }
    rc = take_response(x, out, err);
    /* The body may hold a bearer token (the token endpoint's answer): the handle's receive
     * buffer outlives the request; the caller's copy is wiped by its owner. */
    if (x->st.body)
        OPENSSL_cleanse(x->st.body, x->st.body_len);
    if (rc != PHC_OK)
        goto out;
    if (status < 200 || status > 299)
        rc = phc__err(err, PHC_ERR_HTTP, "server answered HTTP %ld for %s %s", status, method,
                      req->path);
out:
    curl_easy_cleanup(x->curl);
    x->curl = NULL;
    /* Header lines may carry "Authorization: Basic/Bearer ...": wiped before they are freed. */
    for (struct curl_slist *h = hdrs; h; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(hdrs);
    free(url);
    return rc;
}

void phc__xfer_free(phc_xfer *x)
{
    if (!x)
        return;
    /* the connection first, while the handles' settings it may use still exist */
    if (x->multi)
        curl_multi_cleanup(x->multi);
    if (x->curl)
        curl_easy_cleanup(x->curl);
    if (x->tmpl)
        curl_easy_cleanup(x->tmpl);
    curl_slist_free_all(x->resolve);
    free(x->socks);
    phc__alert_reset(&x->st.alert);
    OPENSSL_clear_free(x->st.body, x->st.body_cap);
    OPENSSL_clear_free(x->st.headers, x->st.headers_cap);
    free(x);
}

long phc_response_status(const phc_response *resp)
{
    return resp ? resp->status : 0;
}

const char *phc_response_body(const phc_response *resp, size_t *len)
{
    if (len)
        *len = resp ? resp->body_len : 0;
    return resp ? resp->body : NULL;
}

const char *phc_response_headers(const phc_response *resp, size_t *len)
{
    if (len)
        *len = resp ? resp->headers_len : 0;
    return resp ? resp->headers : NULL;
}

const char *phc_response_header(const phc_response *resp, const char *name)
{
    return resp ? phc__http_fields_get(&resp->fields, name) : NULL;
}

void phc_response_free(phc_response *resp)
{
    if (!resp)
        return;
    /* The body may be the token endpoint's answer (an access token), the headers may carry
     * cookies: always wiped, whoever asked for the response. */
    if (resp->body)
        OPENSSL_clear_free(resp->body, resp->body_len + 1);
    if (resp->headers)
        OPENSSL_clear_free(resp->headers, resp->headers_len + 1);
    phc__http_fields_free(&resp->fields);
    free(resp);
}
