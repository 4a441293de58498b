/* The client side of the agent (phc_agent_client.h). One request per connection
 * (Connection: close): a phc process makes one request, and reading to EOF needs no body
 * framing beyond Content-Length. */
#include "phc_agent_client.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The agent answers within its own timeouts (connect, transfer, retries); this only keeps a
 * wedged agent from holding the caller forever. */
#define ANSWER_TIMEOUT_MS (10 * 60 * 1000)
#define MAX_ANSWER ((size_t)1024 * 1024 * 1024 + 65536)

static int set_err(phc_errbuf *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_err(phc_errbuf *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

/* The same check as the config key 'agent' (unix: and an absolute path). */
static int checked(const char *what, const char *v, char **path)
{
    phc_config *probe = NULL;
    phc_errbuf err = {0};
    if (phc_config_new(&probe, &err) != PHC_OK)
        return phc_tool_fail(&err);
    int rc = phc_config_set(probe, "agent", v, &err);
    phc_config_free(probe);
    if (rc != PHC_OK) {
        const char *why = strstr(err.msg, "': ");
        return phc_tool_usage("%s %s: %s", what, v, why ? why + 3 : err.msg);
    }
    if (!(*path = strdup(v + 5)))
        return 9;
    return 0;
}

int phc_agent_client_want(const phc_globals *g, const char *flag, char **path)
{
    *path = NULL;
    if (flag)
        return checked("--agent", flag, path);
    const char *env = getenv("PHC_AGENT");
    if (env && *env)
        return checked("PHC_AGENT", env, path);
    /* A config that cannot be loaded is direct mode's to report. */
    phc_config *cfg = NULL;
    phc_errbuf err = {0};
    if (phc_config_load(&cfg, g->config_path, &err) != PHC_OK)
        return 0;
    const char *v = phc_config_get(cfg, "agent");
    int rc = 0;
    if (v && !(*path = strdup(v + 5)))
        rc = 9;
    phc_config_free(cfg);
    return rc;
}

struct out {
    char *p;
    size_t len, cap;
};

static int put(struct out *o, const void *d, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *np = realloc(o->p, cap);
        if (!np)
            return -1;
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, d, n);
    o->len += n;
    o->p[o->len] = '\0';
    return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int build(struct out *o, const phc_request *req, const char *method)
{
    static const char fixed[] = " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    char line[256];
    int bad = put(o, method, strlen(method)) || put(o, " ", 1) ||
              put(o, req->path, strlen(req->path)) || put(o, fixed, sizeof(fixed) - 1);
    for (const char *const *h = req->headers; !bad && h && *h; h++)
        bad = put(o, *h, strlen(*h)) || put(o, "\r\n", 2);
    if (req->body) {
        snprintf(line, sizeof(line), "Content-Length: %zu\r\n", req->body_len);
        bad = bad || put(o, line, strlen(line));
    }
    return bad || put(o, "\r\n", 2);
}

/* The value of header name in head (status line first), or NULL; copied into buf. */
static const char *header(const char *head, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2] && !(p[2] == '\r');
         p = strstr(p + 2, "\r\n")) {
        const char *l = p + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = strcspn(v, "\r\n");
            snprintf(buf, len, "%.*s", (int)vl, v);
            return buf;
        }
    }
    return NULL;
}

/* "message" of the agent's JSON error body (it writes it itself: simple escapes only). */
static void json_message(const char *body, char *buf, size_t len)
{
    buf[0] = '\0';
    const char *p = body ? strstr(body, "\"message\": \"") : NULL;
    if (!p)
        return;
    p += 12;
    size_t k = 0;
    for (; *p && *p != '"' && k + 1 < len; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            if (*p == 'u' && strlen(p) >= 5) {
                buf[k++] = '?';
                p += 4;
                continue;
            }
        }
        buf[k++] = *p;
    }
    buf[k] = '\0';
}

static int class_code(const char *name)
{
    static const struct {
        const char *name;
        int code;
    } classes[] = {
        {"config", PHC_ERR_CONFIG}, {"hsm", PHC_ERR_HSM},           {"pin", PHC_ERR_PIN},
        {"trust", PHC_ERR_TRUST},   {"policy", PHC_ERR_POLICY},     {"network", PHC_ERR_NETWORK},
        {"auth", PHC_ERR_AUTH},     {"internal", PHC_ERR_INTERNAL},
    };
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
        if (strcmp(name, classes[i].name) == 0)
            return classes[i].code;
    return PHC_ERR_INTERNAL;
}

static int connect_agent(const char *path, phc_errbuf *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        set_err(err, PHC_ERR_CONFIG, "agent socket path %s is too long", path);
        return -1;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        set_err(err, PHC_ERR_NETWORK, "cannot reach the phconnect agent at %s: %s%s", path,
                strerror(saved),
                saved == ENOENT || saved == ECONNREFUSED ? " (is phc agent running?)" : "");
        return -1;
    }
    return fd;
}

int phc_agent_client_request(const char *path, const phc_request *req, phc_agent_reply *out,
                             phc_errbuf *err)
{
    memset(out, 0, sizeof(*out));
    const char *method = req->method ? req->method : req->body ? "POST" : "GET";
    struct out q = {0}, a = {0};
    int rc = PHC_ERR_INTERNAL, fd = -1;
    for (const char *const *h = req->headers; h && *h; h++)
        if (!strchr(*h, ':') || strpbrk(*h, "\r\n")) {
            rc = set_err(err, PHC_ERR_CONFIG, "header must be 'Name: value' on one line");
            goto out;
        }
    if (build(&q, req, method) != 0) {
        rc = set_err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if ((fd = connect_agent(path, err)) < 0) {
        rc = err->code;
        goto out;
    }
    if (send_all(fd, q.p, q.len) != 0 ||
        (req->body_len && send_all(fd, req->body, req->body_len) != 0)) {
        /* The agent may have answered (413, 403) and closed: read what it said. */
        if (errno != EPIPE && errno != ECONNRESET) {
            rc = set_err(err, PHC_ERR_NETWORK, "phconnect agent at %s: cannot send: %s", path,
                         strerror(errno));
            goto out;
        }
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, ANSWER_TIMEOUT_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            rc = set_err(err, PHC_ERR_NETWORK, "phconnect agent at %s did not answer", path);
            goto out;
        }
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != ECONNRESET) {
            rc = set_err(err, PHC_ERR_NETWORK, "phconnect agent at %s: %s", path, strerror(errno));
            goto out;
        }
        if (n <= 0)
            break;
        if (a.len + (size_t)n > MAX_ANSWER || put(&a, buf, (size_t)n) != 0) {
            rc = set_err(err, PHC_ERR_INTERNAL, "the agent's answer is too large");
            goto out;
        }
    }
    char *end = a.p ? strstr(a.p, "\r\n\r\n") : NULL;
    long status = 0;
    if (!end || sscanf(a.p, "HTTP/1.%*d %ld", &status) != 1 || status < 100 || status > 999) {
        rc = set_err(err, PHC_ERR_NETWORK,
                     "phconnect agent at %s closed the connection without an answer", path);
        goto out;
    }
    size_t hlen = (size_t)(end + 4 - a.p), blen = a.len - hlen;
    char v[64];
    if (header(a.p, "Content-Length", v, sizeof(v))) {
        unsigned long long cl = strtoull(v, NULL, 10);
        if (cl < blen)
            blen = (size_t)cl;
    }
    if (strcasecmp(method, "HEAD") == 0)
        blen = 0;
    if (header(a.p, "Phc-Error", v, sizeof(v))) {
        char msg[PHC_ERRMSG_MAX];
        json_message(end + 4, msg, sizeof(msg));
        rc = set_err(err, class_code(v), "%s", msg[0] ? msg : v);
        goto out;
    }
    out->status = status;
    out->hlen = hlen;
    out->blen = blen;
    if (!(out->head = malloc(hlen + 1)) || !(out->body = malloc(blen + 1))) {
        phc_agent_reply_free(out);
        rc = set_err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(out->head, a.p, hlen);
    out->head[hlen] = '\0';
    memcpy(out->body, a.p + hlen, blen);
    out->body[blen] = '\0';
    rc = PHC_OK;
    if (status < 200 || status > 299)
        rc = set_err(err, PHC_ERR_HTTP, "server answered HTTP %ld for %s %s", status, method,
                     req->path);
out:
    if (fd >= 0)
        close(fd);
    free(q.p);
    free(a.p);
    return rc;
}

void phc_agent_reply_free(phc_agent_reply *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}
