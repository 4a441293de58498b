/* The agent's pure rules (tools/phc_agent_filter.c) with exact expectations: which request
 * headers go upstream, which response headers come back, which targets, methods and paths are
 * refused. The fuzzer (fuzz_agent_headers) checks the same promises on arbitrary input. */
#include "phc_agent.h"

#include "testutil.h"

static int has(char **h, const char *line)
{
    for (; h && *h; h++)
        if (strcmp(*h, line) == 0)
            return 1;
    return 0;
}

static size_t count(char **h)
{
    size_t n = 0;
    while (h && h[n])
        n++;
    return n;
}

struct got {
    char names[32][64];
    size_t n;
};

static void collect(void *ud, const char *name, const char *value)
{
    struct got *g = ud;
    (void)value;
    if (g->n < 32)
        snprintf(g->names[g->n++], sizeof(g->names[0]), "%s", name);
}

static int got_has(const struct got *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->names[i], name) == 0)
            return 1;
    return 0;
}

int main(void)
{
    const phc_agent_hdr in[] = {
        {"Host", "evil.example"},
        {"Connection", "keep-alive, X-Hop"},
        {"X-Hop", "1"},
        {"X-Keep", "2"},
        {"Keep-Alive", "timeout=5"},
        {"Proxy-Authorization", "Basic eA=="},
        {"TE", "trailers"},
        {"Trailer", "X-T"},
        {"Transfer-Encoding", "chunked"},
        {"Upgrade", "h2c"},
        {"Content-Length", "5"},
        {"Expect", "100-continue"},
        {"Phc-Error", "fake"},
        {"Authorization", "Bearer mine"},
        {"Accept", "application/json"},
        {"Bad Name", "x"},
        {"X-Ctl", "a\rb"},
        {"X-Tab", "a\tb"},
    };
    size_t n = sizeof(in) / sizeof(in[0]);
    char **out = NULL;
    CHECK(phc_agent_filter_request(&out, in, n, 0) == 0);
    CHECK(has(out, "X-Keep: 2"));
    CHECK(has(out, "Accept: application/json"));
    CHECK(has(out, "Authorization: Bearer mine")); /* no client credentials: kept */
    CHECK(has(out, "X-Tab: a\tb"));
    CHECK(count(out) == 4);
    phc_agent_headers_free(out);
    CHECK(phc_agent_filter_request(&out, in, n, 1) == 0);
    CHECK(!has(out, "Authorization: Bearer mine")); /* the agent injects its own */
    CHECK(count(out) == 3);
    phc_agent_headers_free(out);
    CHECK(phc_agent_filter_request(&out, in, 0, 0) == 0 && out && !out[0]);
    phc_agent_headers_free(out);

    const char block[] = "HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n"
                         "HTTP/1.1 201 Created\r\nDate: Sun, 29 Nov 2026 08:00:00 GMT\r\n"
                         "Content-Length: 5\r\nConnection: close, X-Up\r\nX-Up: 1\r\n"
                         "Content-Type: application/json\r\nLocation: /v2/x\r\n"
                         "Transfer-Encoding: chunked\r\nnot a header\r\nX-Spaced:   v  \r\n\r\n";
    struct got g = {.n = 0};
    size_t kept = phc_agent_filter_response(block, strlen(block), collect, &g);
    CHECK(kept == 3);
    CHECK(got_has(&g, "Content-Type") && got_has(&g, "Location") && got_has(&g, "X-Spaced"));
    CHECK(!got_has(&g, "X-Early")); /* only the last block */
    CHECK(!got_has(&g, "X-Up") && !got_has(&g, "Date") && !got_has(&g, "Content-Length"));
    CHECK(phc_agent_filter_response(NULL, 0, collect, &g) == 0);

    CHECK(phc_agent_target_ok("/v2/asset/sites?a=b%20c") == 0);
    CHECK(phc_agent_target_ok("http://evil.example/x") != 0);
    CHECK(phc_agent_target_ok("evil.example:443") != 0);
    CHECK(phc_agent_target_ok("*") != 0);
    CHECK(phc_agent_target_ok("/a b") != 0);
    CHECK(phc_agent_target_ok("/a#frag") != 0);
    CHECK(phc_agent_target_ok("/a\\b") != 0);
    CHECK(phc_agent_target_ok("") != 0);
    CHECK(phc_agent_method_ok("GET") && phc_agent_method_ok("PATCH") &&
          phc_agent_method_ok("M-SEARCH"));
    CHECK(!phc_agent_method_ok("CONNECT") && !phc_agent_method_ok("TRACE") &&
          !phc_agent_method_ok("get") && !phc_agent_method_ok(""));

    phc_agent_rules *r = NULL;
    CHECK(phc_agent_rules_parse(&r, "GET /v2/asset/, POST /v2/asset/tokens,* /open/") == 0);
    CHECK(phc_agent_rules_allow(r, "GET", "/v2/asset/sites"));
    CHECK(!phc_agent_rules_allow(r, "POST", "/v2/asset/sites"));
    CHECK(phc_agent_rules_allow(r, "POST", "/v2/asset/tokens"));
    CHECK(phc_agent_rules_allow(r, "DELETE", "/open/x"));
    CHECK(!phc_agent_rules_allow(r, "GET", "/v2/other"));
    CHECK(!phc_agent_rules_allow(r, "GET", "/v2/asset/../../echo"));
    CHECK(!phc_agent_rules_allow(r, "GET", "/v2/asset/%2e%2e/echo"));
    CHECK(!phc_agent_rules_allow(r, "GET", "/v2/asset/.."));
    phc_agent_rules_free(r);
    CHECK(phc_agent_rules_parse(&r, NULL) == 0 && r == NULL);
    CHECK(phc_agent_rules_allow(NULL, "DELETE", "/anything"));

    char esc[64];
    phc_agent_json_escape(esc, sizeof(esc), "a \"q\" \\ \n");
    CHECK(strcmp(esc, "a \\\"q\\\" \\\\ \\u000a") == 0);
    phc_agent_json_escape(esc, 8, "0123456789");
    CHECK(strlen(esc) < 8);
    TEST_MAIN_END();
}
