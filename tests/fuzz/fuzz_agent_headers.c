/* The agent's request path (tools/phc_agent_filter.c): the input is what a local client
 * controls - a request target, a method and a header block - plus an upstream response
 * header block, split at the first NUL bytes: TARGET \0 METHOD \0 REQUEST-HEADERS \0
 * RESPONSE-HEADERS. The functions are pure; the target checks the agent's promises:
 *  - a forwarded header is "Name: value" on one line, its name an HTTP token;
 *  - no hop-by-hop header, no header named in Connection, no Host, Content-Length, Expect,
 *    Phc-* or Proxy-* is ever forwarded, and Authorization is not when the agent injects its
 *    own;
 *  - every forwarded header was one the client sent (nothing is made up);
 *  - a target the agent accepts starts with '/' and holds no blank, control byte, '#' or
 *    '\' (so it cannot name another host), and CONNECT/TRACE are never accepted;
 *  - the agent_paths check never allows a dot segment;
 *  - a response header passed back is a token name with a one-line value, never a hop-by-hop
 *    one. */
#include "fuzz.h"

#include "phc_agent.h"

#include <strings.h>

static const char *const banned[] = {
    "connection",        "keep-alive", "proxy-connection", "te",     "trailer", "upgrade",
    "transfer-encoding", "host",       "content-length",   "expect",
};

static int is_banned(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
        if (strlen(banned[i]) == len && strncasecmp(name, banned[i], len) == 0)
            return 1;
    return (len >= 4 && strncasecmp(name, "phc-", 4) == 0) ||
           (len >= 6 && strncasecmp(name, "proxy-", 6) == 0);
}

static int token_name(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c)))
            return 0;
    }
    return 1;
}

static int one_line(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return 0;
    return 1;
}

static void on_response_header(void *ud, const char *name, const char *value)
{
    (void)ud;
    FUZZ_CHECK(token_name(name, strlen(name)));
    FUZZ_CHECK(one_line(value));
    FUZZ_CHECK(!is_banned(name, strlen(name)) || strncasecmp(name, "host", 4) == 0);
    FUZZ_CHECK(strcasecmp(name, "date") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *buf = malloc(size + 4);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    memset(buf + size, 0, 4);
    /* TARGET \0 METHOD \0 REQUEST-HEADERS \0 RESPONSE-HEADERS (missing parts: empty). */
    char *part[4];
    char *p = buf, *end = buf + size;
    for (int i = 0; i < 4; i++) {
        part[i] = p;
        size_t l = strlen(p);
        p = p + l < end ? p + l + 1 : end;
        if (p > end)
            p = end;
    }
    const char *target = part[0], *method = part[1];

    if (phc_agent_target_ok(target) == 0) {
        FUZZ_CHECK(target[0] == '/');
        for (const char *t = target; *t; t++)
            FUZZ_CHECK((unsigned char)*t > 0x20 && (unsigned char)*t < 0x7f && *t != '#' &&
                       *t != '\\');
    }
    if (phc_agent_method_ok(method))
        FUZZ_CHECK(strcmp(method, "CONNECT") != 0 && strcmp(method, "TRACE") != 0 && *method);
    static phc_agent_rules *rules;
    if (!rules)
        FUZZ_CHECK(phc_agent_rules_parse(&rules, "GET /v2/asset/, POST /v2/asset/tokens, * /x") ==
                   0);
    char path[4096];
    snprintf(path, sizeof(path), "%.*s", (int)strcspn(target, "?"), target);
    if (phc_agent_rules_allow(rules, method, path))
        FUZZ_CHECK(!strstr(path, "/../") && !strstr(path, "/./"));

    /* The request header block, one "Name: value" per line. */
    phc_agent_hdr h[PHC_AGENT_MAX_HEADERS + 8];
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(part[2], "\n", &save); line && n < sizeof(h) / sizeof(h[0]);
         line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        h[n].name = line;
        h[n].value = v;
        n++;
    }
    for (int drop_auth = 0; drop_auth < 2; drop_auth++) {
        char **out = NULL;
        if (phc_agent_filter_request(&out, h, n, drop_auth) != 0)
            continue;
        size_t k = 0;
        for (char **o = out; *o; o++, k++) {
            const char *sep = strstr(*o, ": ");
            FUZZ_CHECK(sep);
            size_t nl = (size_t)(sep - *o);
            FUZZ_CHECK(token_name(*o, nl));
            FUZZ_CHECK(one_line(*o));
            FUZZ_CHECK(!is_banned(*o, nl));
            FUZZ_CHECK(!(drop_auth && nl == 13 && strncasecmp(*o, "authorization", 13) == 0));
            int sent = 0, named = 0;
            for (size_t i = 0; i < n; i++) {
                if (strlen(h[i].name) == nl && strncmp(h[i].name, *o, nl) == 0 &&
                    strcmp(h[i].value, sep + 2) == 0)
                    sent = 1;
                if (strcasecmp(h[i].name, "Connection") == 0) {
                    /* The name must not be listed in any Connection header. */
                    const char *c = h[i].value;
                    while (*c) {
                        c += strspn(c, " \t,");
                        size_t tl = strcspn(c, ",");
                        size_t tt = tl;
                        while (tt && (c[tt - 1] == ' ' || c[tt - 1] == '\t'))
                            tt--;
                        if (tt == nl && strncasecmp(c, *o, nl) == 0)
                            named = 1;
                        c += tl;
                    }
                }
            }
            FUZZ_CHECK(sent);
            FUZZ_CHECK(!named);
        }
        FUZZ_CHECK(k <= PHC_AGENT_MAX_HEADERS);
        phc_agent_headers_free(out);
    }

    /* The upstream response header block. */
    phc_agent_filter_response(part[3], strlen(part[3]), on_response_header, NULL);
    free(buf);
    return 0;
}
