/* Unit tests for lib/auth.c: the Basic header encoding, the token endpoint's JSON shapes
 * (and every refusal, none of which may quote the body), the refresh arithmetic, Retry-After
 * parsing and the checks phc__auth_new makes. The token flow itself (cache, refresh, 401,
 * 429, threads) is tested against the mock Powerhub in tests/integration/t_auth*.sh. */
#include "auth.h"
#include "auth_internal.h"
#include "config.h"
#include "log.h"
#include "secret.h"
#include "testutil.h"

#include <phconnect/phconnect.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TOKEN "tok-3f9c2a71b5e04d8e"

static void expect_basic(const char *id, const char *secret, const char *want_b64)
{
    phc_errbuf e = {0};
    char *h = NULL;
    size_t len = 0;
    int rc = phc__auth_basic_header(&h, &len, id, secret, strlen(secret), &e);
    CHECK(rc == PHC_OK);
    char want[256];
    snprintf(want, sizeof(want), "Authorization: Basic %s", want_b64);
    CHECK(h && strcmp(h, want) == 0 && len == strlen(want));
    if (h && strcmp(h, want) != 0)
        fprintf(stderr, "  got '%s', want '%s'\n", h, want);
    phc__secret_free(h, len);
}

static void test_basic(void)
{
    /* RFC 7617 section 2's example, then every padding length. */
    expect_basic("Aladdin", "open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    expect_basic("a", "b", "YTpi");
    expect_basic("ab", "c", "YWI6Yw==");
    expect_basic("ab", "cd", "YWI6Y2Q=");
    /* The password may contain a colon: the server splits at the first one. */
    expect_basic("client-1", "s3:cr:et", "Y2xpZW50LTE6czM6Y3I6ZXQ=");

    phc_errbuf e = {0};
    char *h = (char *)"untouched";
    size_t len = 7;
    CHECK_ERR(phc__auth_basic_header(&h, &len, "bad:id", "secret", 6, &e), e, PHC_ERR_CONFIG,
              "must not contain ':'");
    CHECK(h == NULL && len == 0);
    CHECK(strstr(e.msg, "secret") == NULL);
}

/* Parses body and expects success with token TOKEN and the given lifetime. */
static void expect_parse(const char *body, long long want_lifetime)
{
    phc_errbuf e = {0};
    char *t = NULL;
    size_t len = 0;
    long long life = -7;
    int rc = phc__access_parse(&t, &len, &life, body, strlen(body), &e);
    CHECK(rc == PHC_OK);
    if (rc != PHC_OK)
        fprintf(stderr, "  %s: %s\n", body, e.msg);
    CHECK(t && len == strlen(TOKEN) && strcmp(t, TOKEN) == 0);
    CHECK(life == want_lifetime);
    if (life != want_lifetime)
        fprintf(stderr, "  %s: lifetime %lld, want %lld\n", body, life, want_lifetime);
    phc__secret_free(t, len);
}

/* Parses body and expects PHC_ERR_AUTH with text in the message, which must not quote the
 * body's token. */
static void expect_parse_fail(const char *body, size_t len, const char *text)
{
    phc_errbuf e = {0};
    char *t = (char *)"untouched";
    size_t tlen = 9;
    long long life = 9;
    int rc = phc__access_parse(&t, &tlen, &life, body, len, &e);
    CHECK_ERR(rc, e, PHC_ERR_AUTH, text);
    CHECK(t == NULL && tlen == 0);
    CHECK(strstr(e.msg, TOKEN) == NULL && strstr(e.msg, "tok-") == NULL);
}

static void test_parse(void)
{
    expect_parse("{\"access_token\":\"" TOKEN "\",\"token_type\":\"Bearer\",\"expires_in\":3600}",
                 3600);
    /* The vendor wraps answers in "data" elsewhere in its API. */
    expect_parse("{\"data\":{\"access_token\":\"" TOKEN "\",\"expires_in\":600}}", 600);
    expect_parse("{\"access_token\":\"" TOKEN "\"}", PHC_ACCESS_DEFAULT_LIFETIME);
    expect_parse("{\"access_token\":\"" TOKEN "\",\"expires_in\":\"120\"}", 120);
    expect_parse("{\"access_token\":\"" TOKEN "\",\"expires_in\":90.7}", 90);
    expect_parse("{\"access_token\":\"" TOKEN "\",\"expires_in\":0}", 0);
    expect_parse("{\"access_token\":\"" TOKEN "\",\"token_type\":\"bearer\",\"expires_in\":5}", 5);
    expect_parse("{\"access_token\":\"" TOKEN "\",\"expires_in\":99999999999}",
                 PHC_ACCESS_MAX_LIFETIME);
    /* The top level wins over "data", and unknown fields are ignored. */
    expect_parse("{\"scope\":\"x\",\"access_token\":\"" TOKEN
                 "\",\"expires_in\":7,\"data\":{\"access_token\":\"other\"}}",
                 7);
    /* Escapes are decoded like any JSON string. */
    expect_parse("{\"access_token\":\"tok-3f9c2a71b5e04d8\\u0065\",\"expires_in\":1}", 1);

    const char *mal = "token endpoint answered with malformed JSON";
    expect_parse_fail("", 0, mal);
    expect_parse_fail("not json " TOKEN, strlen("not json " TOKEN), mal);
    expect_parse_fail("[\"" TOKEN "\"]", strlen("[\"" TOKEN "\"]"), mal);
    expect_parse_fail("{\"access_token\":\"" TOKEN "\"", strlen("{\"access_token\":\"" TOKEN "\""),
                      mal);
    const char *dup = "{\"access_token\":\"" TOKEN "\",\"access_token\":\"" TOKEN "\"}";
    expect_parse_fail(dup, strlen(dup), mal);
    /* A NUL inside the body or escaped in the token ends nothing silently. */
    const char nul[] = "{\"access_token\":\"" TOKEN "\"}\0junk";
    expect_parse_fail(nul, sizeof(nul) - 1, mal);
    const char *esc_nul = "{\"access_token\":\"tok-\\u0000" TOKEN "\"}";
    expect_parse_fail(esc_nul, strlen(esc_nul), mal);
    expect_parse_fail(NULL, 0, mal);

    const char *s;
    s = "{\"token\":\"" TOKEN "\"}";
    expect_parse_fail(s, strlen(s), "without an access_token");
    s = "{\"data\":{\"token\":\"" TOKEN "\"}}";
    expect_parse_fail(s, strlen(s), "without an access_token");
    s = "{\"data\":\"" TOKEN "\"}";
    expect_parse_fail(s, strlen(s), "without an access_token");
    const char *ascii = "not printable ASCII without spaces";
    s = "{\"access_token\":42}";
    expect_parse_fail(s, strlen(s), ascii);
    s = "{\"access_token\":\"\"}";
    expect_parse_fail(s, strlen(s), ascii);
    /* Header injection: a token with CRLF, a space or non-ASCII is never sent. */
    s = "{\"access_token\":\"" TOKEN "\\r\\nX-Evil: 1\"}";
    expect_parse_fail(s, strlen(s), ascii);
    s = "{\"access_token\":\"" TOKEN " x\"}";
    expect_parse_fail(s, strlen(s), ascii);
    s = "{\"access_token\":\"" TOKEN "\\u00e9\"}";
    expect_parse_fail(s, strlen(s), ascii);
    static char big[PHC_ACCESS_MAX_LEN + 64];
    int n = snprintf(big, sizeof(big), "{\"access_token\":\"");
    memset(big + n, 'a', PHC_ACCESS_MAX_LEN + 1);
    snprintf(big + n + PHC_ACCESS_MAX_LEN + 1, sizeof(big) - (size_t)n - PHC_ACCESS_MAX_LEN - 1,
             "\"}");
    expect_parse_fail(big, strlen(big), ascii);
    s = "{\"access_token\":\"" TOKEN "\",\"token_type\":\"mac\"}";
    expect_parse_fail(s, strlen(s), "of type 'mac', not Bearer");
    s = "{\"access_token\":\"" TOKEN "\",\"token_type\":\"a b\\r\\nc\"}";
    expect_parse_fail(s, strlen(s), "of type '?', not Bearer");
    s = "{\"access_token\":\"" TOKEN "\",\"token_type\":7}";
    expect_parse_fail(s, strlen(s), "not Bearer");
    const char *expn = "expires_in that is not a number";
    s = "{\"access_token\":\"" TOKEN "\",\"expires_in\":-5}";
    expect_parse_fail(s, strlen(s), expn);
    s = "{\"access_token\":\"" TOKEN "\",\"expires_in\":\"soon\"}";
    expect_parse_fail(s, strlen(s), expn);
    s = "{\"access_token\":\"" TOKEN "\",\"expires_in\":null}";
    expect_parse_fail(s, strlen(s), expn);
}

static void expect_schedule(long long life, int64_t want_refresh, int64_t want_usable)
{
    int64_t r = -1, u = -1;
    phc__access_schedule(life, &r, &u);
    CHECK(r == want_refresh && u == want_usable);
    if (r != want_refresh || u != want_usable)
        fprintf(stderr, "  lifetime %lld: refresh %lld usable %lld, want %lld %lld\n", life,
                (long long)r, (long long)u, (long long)want_refresh, (long long)want_usable);
}

static void test_schedule(void)
{
    /* 10% of the lifetime when that is more than 30 s ... */
    expect_schedule(3600, 3240000, 3599000);
    expect_schedule(86400, 77760000, 86399000);
    expect_schedule(600, 540000, 599000);
    /* ... else 30 s ... */
    expect_schedule(300, 270000, 299000);
    expect_schedule(60, 30000, 59000);
    /* ... but never before half-way, so test-sized lifetimes still cache. */
    expect_schedule(40, 20000, 39000);
    expect_schedule(6, 3000, 5000);
    expect_schedule(4, 2000, 3000);
    expect_schedule(2, 1000, 1500);
    expect_schedule(1, 500, 750);
    expect_schedule(0, 0, 0);
    expect_schedule(-3, 0, 0);
    int64_t r, u;
    phc__access_schedule(PHC_ACCESS_MAX_LIFETIME * 1000, &r, &u);
    CHECK(r == PHC_ACCESS_MAX_LIFETIME * 900 && u == PHC_ACCESS_MAX_LIFETIME * 1000 - 1000);
    /* Always: refreshed before it stops being usable, never usable past its expiry. */
    for (long long l = 0; l < 5000; l += 7) {
        phc__access_schedule(l, &r, &u);
        CHECK(r <= u && u <= l * 1000 && r >= l * 500);
    }
}

static int warned;
static char last_log[1024];

static void capture(void *ud, phc_log_level level, const char *msg)
{
    if (level == PHC_LOG_WARN)
        warned++;
    snprintf(last_log, sizeof(last_log), "%s", msg);
}

static phc_config *creds_config(const char *id, const char *expires)
{
    phc_errbuf e = {0};
    phc_config *cfg = NULL;
    CHECK(phc_config_new(&cfg, &e) == PHC_OK);
    CHECK(phc_config_set(cfg, "client_id", id, &e) == PHC_OK);
    CHECK(phc_config_set(cfg, "client_secret", "env:PHC_AUTH_TEST_SECRET", &e) == PHC_OK);
    if (expires)
        CHECK(phc_config_set(cfg, "credential_expires", expires, &e) == PHC_OK);
    return cfg;
}

static void test_new(void)
{
    phc_log log = {.fn = capture, .level = PHC_LOG_DEBUG};
    phc_errbuf e = {0};
    phc_auth *a = NULL;

    phc_config *cfg = creds_config("svc:1", NULL);
    CHECK_ERR(phc__auth_new(&a, cfg, &log, &e), e, PHC_ERR_CONFIG,
              "config key 'client_id': 'svc:1' must not contain ':'");
    CHECK(a == NULL);
    phc_config_free(cfg);

    /* An expired credential is only a warning: the server decides. */
    warned = 0;
    cfg = creds_config("svc-1", "2001-02-03");
    CHECK(phc__auth_new(&a, cfg, &log, &e) == PHC_OK && a);
    CHECK(warned == 1 && strstr(last_log, "client credential 'svc-1' expired on 2001-02-03"));
    phc__auth_free(a);
    phc_config_free(cfg);

    warned = 0;
    cfg = creds_config("svc-1", "2999-01-01");
    CHECK(phc__auth_new(&a, cfg, &log, &e) == PHC_OK && a);
    CHECK(warned == 0 && strstr(last_log, "expires on 2999-01-01 ("));
    phc__auth_free(a);
    phc_config_free(cfg);

    cfg = creds_config("svc-1", NULL);
    CHECK(phc__auth_new(&a, cfg, NULL, &e) == PHC_OK && a);
    phc__auth_free(a);
    phc_config_free(cfg);
    phc__auth_free(NULL);
}

int main(void)
{
    test_basic();
    test_parse();
    test_schedule();
    test_new();
    TEST_MAIN_END();
}
