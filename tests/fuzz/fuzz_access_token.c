/* The token endpoint's answer (lib/auth.c: phc__access_parse, JSON through jansson) and
 * the Retry-After value it may come with (phc__retry_after), on the same bytes.
 * Promises checked beyond memory safety:
 *  - an accepted token is printable ASCII without spaces, NUL-terminated, at most
 *    PHC_ACCESS_MAX_LEN bytes, with a lifetime in [0, PHC_ACCESS_MAX_LIFETIME];
 *  - a refusal is PHC_ERR_AUTH with a one-line message that never quotes the token the
 *    body carried (checked by planting a recognisable token in the same body);
 *  - a Retry-After wait is within [0, 86400] seconds. */
#define _GNU_SOURCE /* memmem */
#include "fuzz.h"

#include "auth_internal.h"
#include "util_retry.h"
#include "secret.h"

#include <jansson.h>

#define MARK "TokLeakMark"

/* Parses body with its access_token (at the top level or under "data") replaced by value, a
 * string that contains MARK; MARK cannot come from a message template, so finding it in the
 * message is a leak. Bodies without an access_token are left alone. */
static void check_marked(const uint8_t *data, size_t size, const char *value)
{
    /* the fuzzer learns MARK from the comparison below and plants it elsewhere */
    if (memmem(data, size, MARK, strlen(MARK)))
        return;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size, 0, &jerr);
    json_t *obj = root;
    if (json_is_object(root) && !json_object_get(root, "access_token") &&
        json_is_object(json_object_get(root, "data")))
        obj = json_object_get(root, "data");
    char *text = NULL;
    if (json_is_object(obj) && json_object_get(obj, "access_token") &&
        json_object_set_new(obj, "access_token", json_string(value)) == 0)
        text = json_dumps(root, 0);
    json_decref(root);
    if (!text)
        return;
    char *token = NULL;
    size_t token_len = 0;
    long long lifetime = 0;
    phc_errbuf err = {0};
    int rc = phc__access_parse(&token, &token_len, &lifetime, text, strlen(text), &err);
    if (rc == PHC_OK)
        phc__secret_free(token, token_len);
    else if (strstr(err.msg, MARK)) {
        fprintf(stderr, "message quotes the token: %s\n", err.msg);
        FUZZ_CHECK(!"no token in messages");
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = NULL;
    size_t token_len = 0;
    long long lifetime = -1;
    phc_errbuf err = {0};
    int rc = phc__access_parse(&token, &token_len, &lifetime, (const char *)data, size, &err);
    fuzz_check_err(rc, &err);
    if (rc == PHC_OK) {
        FUZZ_CHECK(token && token[token_len] == '\0' && strlen(token) == token_len);
        FUZZ_CHECK(token_len > 0 && token_len <= PHC_ACCESS_MAX_LEN);
        for (size_t i = 0; i < token_len; i++)
            FUZZ_CHECK(token[i] > ' ' && token[i] < 0x7f);
        FUZZ_CHECK(lifetime >= 0 && lifetime <= PHC_ACCESS_MAX_LIFETIME);
        phc__secret_free(token, token_len);
    } else {
        FUZZ_CHECK(rc == PHC_ERR_AUTH);
        FUZZ_CHECK(token == NULL && token_len == 0);
        /* the same body with a recognisable token, valid and not */
        check_marked(data, size, MARK "0123456789abcdef");
        check_marked(data, size, MARK " with\x01controls");
    }

    char *value = fuzz_strdup(data, size);
    long wait = phc__retry_after(value);
    FUZZ_CHECK(wait >= 0 && wait <= 86400);
    free(value);
    return 0;
}
