/* The response header-block parser (lib/http_headers.c: phc__http_fields_parse), alone: the
 * input is the block as libcurl hands it over (status line first).
 * Promises checked beyond memory safety:
 *  - the block is accepted exactly when it has at most PHC_MAX_HEADERS fields (non-empty
 *    lines after the first that contain ':'), counted here independently; a refusal is
 *    PHC_ERR_POLICY naming the limit;
 *  - an accepted block gives one field per such line, in order: names without ':', CR or LF,
 *    values without CR or LF and without blanks at either end;
 *  - phc__http_fields_get finds every name (case-insensitively), returning its first value. */
#include "fuzz.h"

#include "http_headers.h"

#include <strings.h>

/* Fields in block by the documented rule, without strtok. */
static size_t count_fields(const char *block)
{
    size_t n = 0, line = 0;
    for (const char *p = block; *p;) {
        size_t len = strcspn(p, "\r\n");
        if (len > 0) {
            if (line > 0 && memchr(p, ':', len))
                n++;
            line++;
        }
        p += len;
        p += strspn(p, "\r\n");
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *block = fuzz_strdup(data, size); /* stops at the first NUL, as the library does */
    size_t want = count_fields(block);
    phc_http_fields f;
    phc_errbuf err = {0};
    int rc = phc__http_fields_parse(&f, block, &err);
    fuzz_check_err(rc, &err);
    if (want > PHC_MAX_HEADERS) {
        FUZZ_CHECK(rc == PHC_ERR_POLICY);
        char limit[16];
        snprintf(limit, sizeof(limit), "%d", PHC_MAX_HEADERS);
        FUZZ_CHECK(strstr(err.msg, limit) != NULL);
        FUZZ_CHECK(f.n == 0 && f.buf == NULL);
    } else {
        FUZZ_CHECK(rc == PHC_OK);
        FUZZ_CHECK(f.n == want);
        for (size_t i = 0; i < f.n; i++) {
            const char *nm = f.names[i], *v = f.values[i];
            FUZZ_CHECK(strpbrk(nm, ":\r\n") == NULL);
            FUZZ_CHECK(strpbrk(v, "\r\n") == NULL);
            size_t vl = strlen(v);
            FUZZ_CHECK(vl == 0 ||
                       (v[0] != ' ' && v[0] != '\t' && v[vl - 1] != ' ' && v[vl - 1] != '\t'));
            const char *got = phc__http_fields_get(&f, nm);
            size_t first = 0;
            while (strcasecmp(f.names[first], nm) != 0)
                first++;
            FUZZ_CHECK(got == f.values[first]);
        }
    }
    phc__http_fields_free(&f);
    FUZZ_CHECK(f.buf == NULL && f.n == 0);
    free(block);
    return 0;
}
