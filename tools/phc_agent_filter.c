/* What the agent lets through, as pure functions: no I/O, no global state, so the fuzzer
 * (tests/fuzz/fuzz_agent_headers.c) can drive them with arbitrary input. The rules are those
 * of RFC 9110 section 7.6.1 (hop-by-hop fields) plus the agent's own: the upstream host, the
 * body length and the credentials are the agent's business, never the caller's. */
#include "phc_agent.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Hop-by-hop by definition, or set by the library for the upstream request. */
static const char *const never_forwarded[] = {
    "Connection",        "Keep-Alive", "Proxy-Connection", "TE",     "Trailer", "Upgrade",
    "Transfer-Encoding", "Host",       "Content-Length",   "Expect",
};

static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int token_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* Field values: visible ASCII, obs-text, SP and HTAB; never CR, LF or NUL. */
static int value_ok(const char *s)
{
    if (!s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* 1 when name appears as a token in the comma-separated Connection value list. */
static int named_in(const char *name, const char *list)
{
    size_t nl = strlen(name);
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == nl && strncasecmp(p, name, nl) == 0)
            return 1;
        p = e;
    }
    return 0;
}

static int dropped(const char *name, const phc_agent_hdr *in, size_t n, int drop_auth)
{
    for (size_t i = 0; i < sizeof(never_forwarded) / sizeof(never_forwarded[0]); i++)
        if (strcasecmp(name, never_forwarded[i]) == 0)
            return 1;
    if (strncasecmp(name, "Proxy-", 6) == 0 || strncasecmp(name, "Phc-", 4) == 0)
        return 1;
    if (drop_auth && strcasecmp(name, "Authorization") == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (in[i].name && strcasecmp(in[i].name, "Connection") == 0 && in[i].value &&
            named_in(name, in[i].value))
            return 1;
    return 0;
}

void phc_agent_headers_free(char **h)
{
    if (!h)
        return;
    for (char **p = h; *p; p++)
        free(*p);
    free(h);
}

int phc_agent_filter_request(char ***out, const phc_agent_hdr *in, size_t n, int drop_auth)
{
    *out = NULL;
    size_t cap = n < PHC_AGENT_MAX_HEADERS ? n : PHC_AGENT_MAX_HEADERS, k = 0;
    char **h = calloc(cap + 1, sizeof(*h));
    if (!h)
        return -1;
    for (size_t i = 0; i < n && k < cap; i++) {
        const char *name = in[i].name, *value = in[i].value ? in[i].value : "";
        if (!token_ok(name) || !value_ok(value) || dropped(name, in, n, drop_auth))
            continue;
        size_t len = strlen(name) + strlen(value) + 3;
        if (!(h[k] = malloc(len))) {
            phc_agent_headers_free(h);
            return -1;
        }
        snprintf(h[k++], len, "%s: %s", name, value);
    }
    *out = h;
    return 0;
}

/* The start of the last header block: libcurl keeps every block it read (100 Continue,
 * retried attempts); only the final one describes the body. */
static const char *last_block(const char *block, size_t len)
{
    const char *start = block;
    for (const char *p = block; p < block + len; p++)
        if ((p == block || p[-1] == '\n') && (size_t)(block + len - p) >= 5 &&
            memcmp(p, "HTTP/", 5) == 0)
            start = p;
    return start;
}

size_t phc_agent_filter_response(const char *block, size_t len,
                                 void (*add)(void *ud, const char *name, const char *value),
                                 void *ud)
{
    if (!block || !len)
        return 0;
    const char *end = block + len, *p = last_block(block, len);
    /* Skip the status line. */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return 0;
    p = nl + 1;
    /* The names this block's Connection header lists are hop-by-hop too. */
    char conn[512] = "";
    size_t kept = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (const char *q = p; q < end;) {
            const char *e = memchr(q, '\n', (size_t)(end - q));
            size_t ll = e ? (size_t)(e - q) : (size_t)(end - q);
            const char *next = e ? e + 1 : end;
            if (ll && q[ll - 1] == '\r')
                ll--;
            if (ll == 0)
                break; /* end of the block */
            const char *colon = memchr(q, ':', ll);
            char name[128], value[8192];
            size_t nlen = colon ? (size_t)(colon - q) : 0;
            if (colon && nlen > 0 && nlen < sizeof(name)) {
                memcpy(name, q, nlen);
                name[nlen] = '\0';
                const char *v = colon + 1, *ve = q + ll;
                while (v < ve && (*v == ' ' || *v == '\t'))
                    v++;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                size_t vlen = (size_t)(ve - v);
                if (vlen < sizeof(value)) {
                    memcpy(value, v, vlen);
                    value[vlen] = '\0';
                    if (pass == 0) {
                        if (strcasecmp(name, "Connection") == 0 &&
                            strlen(conn) + vlen + 2 < sizeof(conn)) {
                            strcat(conn, ",");
                            strcat(conn, value);
                        }
                    } else if (token_ok(name) && value_ok(value) && strcasecmp(name, "Date") != 0 &&
                               strncasecmp(name, "Phc-", 4) != 0 && !named_in(name, conn)) {
                        phc_agent_hdr self = {name, value};
                        /* Host and Expect are request-only; in a response they are
                         * meaningless but harmless, and dropping them keeps one list. */
                        if (!dropped(name, &self, 0, 0)) {
                            add(ud, name, value);
                            kept++;
                        }
                    }
                }
            }
            q = next;
        }
    }
    return kept;
}

int phc_agent_target_ok(const char *t)
{
    if (!t || t[0] != '/')
        return -1;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '#' || *p == '\\')
            return -1;
    return 0;
}

int phc_agent_method_ok(const char *m)
{
    if (!m || !*m || strlen(m) > 16 || strcmp(m, "CONNECT") == 0 || strcmp(m, "TRACE") == 0)
        return 0;
    for (const char *p = m; *p; p++)
        if (!isupper((unsigned char)*p) && *p != '-')
            return 0;
    return 1;
}

struct rule {
    char method[17]; /* "*" matches any */
    char *prefix;
};

struct phc_agent_rules {
    struct rule *r;
    size_t n;
};

void phc_agent_rules_free(phc_agent_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->r[i].prefix);
    free(r->r);
    free(r);
}

/* The library checked the syntax when the config was loaded (config_agent.c); this only
 * splits it. */
int phc_agent_rules_parse(phc_agent_rules **out, const char *spec)
{
    *out = NULL;
    if (!spec)
        return 0;
    phc_agent_rules *r = calloc(1, sizeof(*r));
    char *copy = strdup(spec);
    if (!r || !copy)
        goto fail;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char m[17] = "", *p = item;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t ml = strcspn(p, " \t");
        if (ml == 0 || ml >= sizeof(m))
            goto fail;
        memcpy(m, p, ml);
        p += ml;
        p += strspn(p, " \t");
        size_t pl = strcspn(p, " \t");
        if (pl == 0 || p[0] != '/')
            goto fail;
        struct rule *nr = realloc(r->r, (r->n + 1) * sizeof(*nr));
        if (!nr)
            goto fail;
        r->r = nr;
        memcpy(r->r[r->n].method, m, sizeof(m));
        if (!(r->r[r->n].prefix = strndup(p, pl)))
            goto fail;
        r->n++;
    }
    free(copy);
    *out = r;
    return 0;
fail:
    free(copy);
    phc_agent_rules_free(r);
    return -1;
}

int phc_agent_rules_allow(const phc_agent_rules *r, const char *method, const char *path)
{
    if (!r)
        return 1;
    /* A dot segment could climb out of an allowed prefix once the server normalises it. */
    if (strstr(path, "/../") || strstr(path, "/./") || strstr(path, "%2e") || strstr(path, "%2E") ||
        (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0))
        return 0;
    for (size_t i = 0; i < r->n; i++)
        if ((strcmp(r->r[i].method, "*") == 0 || strcmp(r->r[i].method, method) == 0) &&
            strncmp(path, r->r[i].prefix, strlen(r->r[i].prefix)) == 0)
            return 1;
    return 0;
}

void phc_agent_json_escape(char *buf, size_t len, const char *s)
{
    size_t k = 0;
    for (; s && *s && k + 7 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[k++] = '\\';
            buf[k++] = (char)c;
        } else if (c < 0x20) {
            k += (size_t)snprintf(buf + k, len - k, "\\u%04x", c);
        } else {
            buf[k++] = (char)c;
        }
    }
    if (len)
        buf[k < len ? k : len - 1] = '\0';
}
