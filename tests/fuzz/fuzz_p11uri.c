/* PKCS#11 URI handling: the config values that hold URIs (key, cert, client_secret) through
 * phc_config_set, and the key URI as lib/hsm.c parses it when it opens the token (reached
 * through phc__hsm_open with a module path that does not exist, so the run stops right
 * after the URI was taken apart, before anything is loaded).
 * Promises checked beyond memory safety:
 *  - refusals are PHC_ERR_CONFIG with a one-line message;
 *  - a PIN inside a URI is never accepted, and its value never appears in a message;
 *  - config and hsm agree: a key URI the config accepts is accepted by hsm.c too, so a
 *    config that validates cannot fail later with a URI error. */
#define _GNU_SOURCE /* strcasestr */
#include "fuzz.h"

#include "hsm.h"

#include <strings.h>
#include <unistd.h>

#define NO_MODULE "/nonexistent/phc-fuzz/no-such-module.so"

#define MARK "PinLeakMark"

/* The URI with the value of its first pin-value= replaced by MARK, or NULL when it has none.
 * MARK cannot come from a message template, so finding it in a message is a leak. */
static char *marked(const char *uri)
{
    const char *p = strcasestr(uri, "pin-value=");
    if (!p || strstr(uri, MARK))
        return NULL;
    p += strlen("pin-value=");
    size_t head = (size_t)(p - uri), n = strcspn(p, ";?&");
    char *out = malloc(strlen(uri) + sizeof(MARK));
    if (!out)
        abort();
    memcpy(out, uri, head);
    strcpy(out + head, MARK);
    strcat(out, p + n);
    return out;
}

static void check_no_pin(const char *key, const char *uri)
{
    char *m = marked(uri);
    if (!m)
        return;
    phc_errbuf err = {0};
    int rc;
    if (key) {
        phc_config *cfg = NULL;
        FUZZ_CHECK(phc_config_new(&cfg, &err) == PHC_OK);
        rc = phc_config_set(cfg, key, m, &err);
        phc_config_free(cfg);
    } else {
        phc_hsm *h = NULL;
        rc = phc__hsm_open(&h, NO_MODULE, m, "env:PHC_FUZZ_NO_PIN", NULL, &err);
        FUZZ_CHECK(h == NULL);
    }
    if (rc != PHC_OK && strstr(err.msg, MARK)) {
        fprintf(stderr, "message shows the pin-value: %s\n", err.msg);
        FUZZ_CHECK(!"no PIN in messages");
    }
    free(m);
}

/* A pin-value or pin-source attribute where an attribute name stands (after the scheme or a
 * separator); inside a value such as object=pin-value=x it is only a label. */
static int pin_attr(const char *uri)
{
    if (strncasecmp(uri, "pkcs11:", 7) != 0)
        return 0;
    for (const char *p = uri + 6; *p; p++)
        if (strchr(":;?&", *p) && (strncasecmp(p + 1, "pin-value=", 10) == 0 ||
                                   strncasecmp(p + 1, "pin-source=", 11) == 0))
            return 1;
    return 0;
}

/* A cert that is a relative file path, or a client_secret = file: with one, is kept made
 * absolute against the working directory (a config without a file): still the value given. */
static int resolved_from(const char *key, const char *got, const char *value)
{
    char cwd[4096], want[8400];
    size_t pre = strcmp(key, "client_secret") == 0 && strncmp(value, "file:", 5) == 0 ? 5 : 0;
    const char *rel = value + pre;
    if (!*rel || *rel == '/' || !getcwd(cwd, sizeof(cwd)))
        return 0;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    snprintf(want, sizeof(want), "%.*s%s%s%s", (int)pre, value, cwd,
             cwd[strlen(cwd) - 1] == '/' ? "" : "/", rel);
    return strcmp(got, want) == 0;
}

static int set_one(const char *key, const char *value)
{
    phc_config *cfg = NULL;
    phc_errbuf err = {0};
    FUZZ_CHECK(phc_config_new(&cfg, &err) == PHC_OK);
    int rc = phc_config_set(cfg, key, value, &err);
    fuzz_check_err(rc, &err);
    if (rc != PHC_OK) {
        FUZZ_CHECK(rc == PHC_ERR_CONFIG);
        check_no_pin(key, value);
    } else {
        const char *got = phc_config_get(cfg, key);
        FUZZ_CHECK(got && (strcmp(got, value) == 0 || resolved_from(key, got, value)));
    }
    phc_config_free(cfg);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *uri = fuzz_strdup(data, size);
    int key_rc = set_one("key", uri);
    int cert_rc = set_one("cert", uri);
    int secret_rc = set_one("client_secret", uri);
    if (pin_attr(uri)) {
        FUZZ_CHECK(key_rc != PHC_OK);
        FUZZ_CHECK(cert_rc != PHC_OK);
        FUZZ_CHECK(secret_rc != PHC_OK);
    }

    phc_hsm *h = NULL;
    phc_errbuf err = {0};
    int rc = phc__hsm_open(&h, NO_MODULE, uri, "env:PHC_FUZZ_NO_PIN", NULL, &err);
    fuzz_check_err(rc, &err);
    FUZZ_CHECK(rc != PHC_OK && h == NULL);
    check_no_pin(NULL, uri);
    if (key_rc == PHC_OK && rc != PHC_ERR_HSM) {
        fprintf(stderr, "config accepted the key URI, hsm.c refused it: %s\n", err.msg);
        FUZZ_CHECK(!"config and hsm agree on key URIs");
    }
    free(uri);
    return 0;
}
