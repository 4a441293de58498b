/* The response header-block parser (lib/http_headers.c), without a server: the field rules,
 * the lookup, and the limit on the number of fields. */
#include "http_headers.h"
#include "testutil.h"

#include <openssl/crypto.h>

static void test_fields(void)
{
    phc_http_fields f;
    phc_errbuf e = {0};
    CHECK(phc__http_fields_parse(&f,
                                 "HTTP/1.1 429 Too Many Requests\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Retry-After: \t 7 \t\r\n"
                                 "X-Empty:\r\n"
                                 "no colon on this line\r\n"
                                 "\r\n"
                                 "x-dup: first\r\n"
                                 "X-Dup: second\r\n"
                                 "Link: <https://a.test/x?y=1>; rel=next\r\n\r\n",
                                 &e) == PHC_OK);
    CHECK(f.n == 6);
    CHECK(strcmp(phc__http_fields_get(&f, "content-type"), "application/json") == 0);
    CHECK(strcmp(phc__http_fields_get(&f, "RETRY-AFTER"), "7") == 0);
    CHECK(strcmp(phc__http_fields_get(&f, "X-Empty"), "") == 0);
    CHECK(strcmp(phc__http_fields_get(&f, "X-DUP"), "first") == 0);
    /* the value is everything after the first ':' */
    CHECK(strcmp(phc__http_fields_get(&f, "Link"), "<https://a.test/x?y=1>; rel=next") == 0);
    CHECK(phc__http_fields_get(&f, "no colon on this line") == NULL);
    CHECK(phc__http_fields_get(&f, "HTTP/1.1 429 Too Many Requests") == NULL);
    CHECK(phc__http_fields_get(&f, "Retry") == NULL);
    CHECK(phc__http_fields_get(&f, NULL) == NULL);
    CHECK(phc__http_fields_get(NULL, "X") == NULL);
    phc__http_fields_free(&f);
    CHECK(f.buf == NULL && f.n == 0);
    phc__http_fields_free(&f); /* twice is harmless */
    phc__http_fields_free(NULL);
}

/* Bare LF, no status line content, an empty and a NULL block. */
static void test_odd_blocks(void)
{
    phc_http_fields f;
    phc_errbuf e = {0};
    CHECK(phc__http_fields_parse(&f, "HTTP/1.1 200 OK\nA: 1\nB:2\n\n", &e) == PHC_OK);
    CHECK(f.n == 2 && strcmp(phc__http_fields_get(&f, "b"), "2") == 0);
    phc__http_fields_free(&f);
    CHECK(phc__http_fields_parse(&f, "", &e) == PHC_OK && f.n == 0);
    phc__http_fields_free(&f);
    CHECK(phc__http_fields_parse(&f, NULL, &e) == PHC_OK && f.n == 0);
    phc__http_fields_free(&f);
    /* the first line is the status line, whatever it holds */
    CHECK(phc__http_fields_parse(&f, "A: 1\r\nB: 2\r\n", &e) == PHC_OK && f.n == 1);
    CHECK(phc__http_fields_get(&f, "A") == NULL);
    phc__http_fields_free(&f);
}

static char *block_with(int n, const char *last)
{
    size_t cap = 64 + (size_t)n * 32 + strlen(last);
    char *b = malloc(cap);
    size_t o = (size_t)snprintf(b, cap, "HTTP/1.1 503 Busy\r\n");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(b + o, cap - o, "X-Field-%d: %d\r\n", i, i);
    snprintf(b + o, cap - o, "%s\r\n", last);
    return b;
}

/* PHC_MAX_HEADERS fields are read; one more is a refusal naming the limit, not a drop of the
 * field past it (here a Retry-After, which would change the retry). */
static void test_limit(void)
{
    phc_http_fields f;
    phc_errbuf e = {0};
    char *b = block_with(PHC_MAX_HEADERS - 1, "Retry-After: 3\r\nno colon\r\n");
    CHECK(phc__http_fields_parse(&f, b, &e) == PHC_OK);
    CHECK(f.n == PHC_MAX_HEADERS);
    CHECK(strcmp(phc__http_fields_get(&f, "Retry-After"), "3") == 0);
    phc__http_fields_free(&f);
    free(b);

    b = block_with(PHC_MAX_HEADERS, "Retry-After: 3\r\n");
    memset(&e, 0, sizeof(e));
    CHECK_ERR(phc__http_fields_parse(&f, b, &e), e, PHC_ERR_POLICY,
              "the response has more than 128 header fields, the most the connector reads");
    CHECK(f.buf == NULL && f.n == 0);
    phc__http_fields_free(&f);
    free(b);
}

/* OpenSSL's allocator, watched: a block freed while it still holds MARK is a field the
 * parser did not wipe. */
#define MARK "SecretCookieMark"
#define WATCH_MAX 64
static struct {
    void *p;
    size_t n;
} watched[WATCH_MAX];
static int unwiped;

static void *w_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    void *p = malloc(n);
    for (size_t i = 0; p && i < WATCH_MAX; i++)
        if (!watched[i].p) {
            watched[i].p = p;
            watched[i].n = n;
            break;
        }
    return p;
}

static void *w_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return realloc(p, n); /* not used by the parser */
}

static void w_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    for (size_t i = 0; p && i < WATCH_MAX; i++)
        if (watched[i].p == p) {
            for (size_t j = 0; j + sizeof(MARK) - 1 <= watched[i].n; j++)
                if (memcmp((char *)p + j, MARK, sizeof(MARK) - 1) == 0)
                    unwiped++;
            watched[i].p = NULL;
        }
    free(p);
}

/* The fields may be cookies: what the parser copied is wiped before it is freed, also when
 * it refuses the block. */
static void test_wiped(void)
{
    phc_http_fields f;
    phc_errbuf e = {0};
    CHECK(phc__http_fields_parse(&f, "HTTP/1.1 200 OK\r\nSet-Cookie: s=" MARK "\r\n\r\n", &e) ==
          PHC_OK);
    CHECK(strstr(phc__http_fields_get(&f, "set-cookie"), MARK) != NULL);
    phc__http_fields_free(&f);
    char *b = block_with(PHC_MAX_HEADERS, "Set-Cookie: s=" MARK);
    CHECK(phc__http_fields_parse(&f, b, &e) == PHC_ERR_POLICY);
    free(b);
    CHECK(unwiped == 0);
}

int main(void)
{
    /* before anything is allocated through OpenSSL */
    int watching = CRYPTO_set_mem_functions(w_malloc, w_realloc, w_free);
    CHECK(watching);
    if (watching)
        test_wiped();
    test_fields();
    test_odd_blocks();
    test_limit();
    TEST_MAIN_END();
}
