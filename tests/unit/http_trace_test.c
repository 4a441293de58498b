/* Unit tests for lib/http_trace.c: what the -vv trace shows of each header and request line,
 * and that nothing secret survives redaction, whatever the name's case or the line's shape. */
#include "http_trace.h"
#include "testutil.h"

#include <string.h>

static void expect_line(const char *in, const char *want)
{
    char out[256];
    phc__trace_redact(out, sizeof(out), in, strlen(in));
    CHECK(strcmp(out, want) == 0);
    if (strcmp(out, want) != 0)
        fprintf(stderr, "  '%s' -> '%s', wanted '%s'\n", in, out, want);
}

static void test_headers(void)
{
    expect_line("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer [redacted]");
    expect_line("authorization:Basic Y2lkOnNlY3JldA==", "authorization: Basic [redacted]");
    expect_line("Authorization: eyJhbGciOi", "Authorization: [redacted]"); /* no scheme */
    expect_line("Proxy-Authorization: Basic abc", "Proxy-Authorization: Basic [redacted]");
    expect_line("Cookie: sid=1; theme=dark", "Cookie: [redacted]");
    expect_line("Set-Cookie: sid=1; Secure; HttpOnly", "Set-Cookie: [redacted]");
    expect_line("X-Api-Key: k", "X-Api-Key: [redacted]");
    expect_line("X-Auth-Token: t", "X-Auth-Token: [redacted]");
    expect_line("X-Amz-Security-Token: t", "X-Amz-Security-Token: [redacted]");
    expect_line("X-Session-Id: s", "X-Session-Id: [redacted]");
    expect_line("X-Client-Secret: s", "X-Client-Secret: [redacted]");
    expect_line("X-Signature: s", "X-Signature: [redacted]");
    /* not secret: shown as they are */
    expect_line("Host: api.powerhub.test:443", "Host: api.powerhub.test:443");
    expect_line("Content-Type: application/json", "Content-Type: application/json");
    expect_line("Keep-Alive: timeout=5", "Keep-Alive: timeout=5");
    expect_line("WWW-Authenticate: Bearer error=\"invalid_token\"",
                "WWW-Authenticate: Bearer error=\"invalid_token\"");
    expect_line("HTTP/1.1 401 Unauthorized", "HTTP/1.1 401 Unauthorized");
    /* a folded line may continue a secret value */
    expect_line(" continued-secret", "  [continuation line redacted]");
    expect_line("\tcontinued-secret", "  [continuation line redacted]");
    /* control bytes from the server cannot forge a line or reach a terminal */
    expect_line("X-Evil: a\rphc: [error] forged", "X-Evil: a?phc: [error] forged");
    expect_line("X-Esc: \x1b[31mred\x7f", "X-Esc: ?[31mred?");
    expect_line("X-Tab: a\tb", "X-Tab: a\tb");
    /* not a header line (a space in the name): shown as is */
    expect_line("Not a: header", "Not a: header");
}

static void test_request_lines(void)
{
    expect_line("GET /v2/asset/sites HTTP/1.1", "GET /v2/asset/sites HTTP/1.1");
    expect_line("GET /x?site=1&access_token=abc&n=2 HTTP/1.1",
                "GET /x?site=1&access_token=[redacted]&n=2 HTTP/1.1");
    expect_line("POST /x?API_KEY=abc HTTP/1.1", "POST /x?API_KEY=[redacted] HTTP/1.1");
    expect_line("GET /x?token HTTP/1.1", "GET /x?token HTTP/1.1"); /* no value */
    expect_line("GET /x? HTTP/1.1", "GET /x? HTTP/1.1");
    expect_line("GET /x?a=1&&secret=2 HTTP/1.1", "GET /x?a=1&&secret=[redacted] HTTP/1.1");
    expect_line("DELETE /x?password=p HTTP/2", "DELETE /x?password=[redacted] HTTP/2");
}

static void test_bounds(void)
{
    /* a long secret value is never partly copied; a short buffer stays terminated */
    char big[3000];
    memset(big, 'S', sizeof(big));
    memcpy(big, "Cookie: ", 8);
    char out[64];
    phc__trace_redact(out, sizeof(out), big, sizeof(big));
    CHECK(strcmp(out, "Cookie: [redacted]") == 0);
    char tiny[8];
    phc__trace_redact(tiny, sizeof(tiny), "Authorization: Bearer x", 23);
    CHECK(strlen(tiny) == 7 && strncmp(tiny, "Authori", 7) == 0);
    phc__trace_redact(tiny, 1, "Host: h", 7);
    CHECK(tiny[0] == '\0');
    memset(big, 'a', sizeof(big));
    phc__trace_redact(out, sizeof(out), big, sizeof(big)); /* plain, truncated */
    CHECK(strlen(out) == sizeof(out) - 1);
    CHECK(phc__trace_sensitive("TOKEN", 5) && !phc__trace_sensitive("tok", 3));
}

int main(void)
{
    test_headers();
    test_request_lines();
    test_bounds();
    TEST_MAIN_END();
}
