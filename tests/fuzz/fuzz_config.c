/* The configuration file parser (phc_config_parse: NCONF plus phconnect's own line scanner
 * and per-key validation). Promises checked beyond memory safety:
 *  - a refusal is PHC_ERR_CONFIG with a one-line message and no config handed out;
 *  - an accepted file validates, and each raw value it reports passes phc_config_set on a
 *    fresh config (one validation path for files and programs, config.c's header says; the file
 * reader is config_file.c);
 *  - an accepted file means what it shows (issue 13): read line by line as grep would, with
 *    no knowledge of OpenSSL's syntax beyond "key = value", every key is on exactly one
 *    line, the connector's value for it is what OpenSSL reads from that line alone, and
 *    OpenSSL read as many keys from the whole file as there are such lines. */
#include "fuzz.h"

#include <openssl/conf.h>
#include <openssl/err.h>

#include <unistd.h>

static const char *const keys[] = {
    "url",
    "ca_file",
    "ca_sha256",
    "pinned_ips",
    "source_address",
    "pkcs11_module",
    "key",
    "cert",
    "pin",
    "client_id",
    "client_secret",
    "token_path",
    "credential_expires",
    "connect_timeout",
    "timeout",
    "max_response_bytes",
};

static void replay(const phc_config *cfg)
{
    phc_config *copy = NULL;
    phc_errbuf err = {0};
    FUZZ_CHECK(phc_config_new(&copy, &err) == PHC_OK);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = phc_config_get(cfg, keys[i]);
        if (!v)
            continue;
        int rc = phc_config_set(copy, keys[i], v, &err);
        if (rc != PHC_OK) {
            fprintf(stderr, "file accepted %s but phc_config_set refused it: %s\n", keys[i],
                    err.msg);
            FUZZ_CHECK(!"same validation for file and phc_config_set");
        }
    }
    int rc = phc_config_validate(copy, &err);
    if (rc != PHC_OK)
        fprintf(stderr, "replayed config does not validate: %s\n", err.msg);
    FUZZ_CHECK(rc == PHC_OK);
    phc_config_free(copy);
}

/* The value OpenSSL reads from one line on its own under [phconnect] (malloc'd), or NULL. */
static char *nconf_line(const char *b, size_t n, const char *key)
{
    char *val = NULL;
    char *buf = malloc(n + 16);
    FUZZ_CHECK(buf != NULL);
    int len = snprintf(buf, 16, "[phconnect]\n");
    memcpy(buf + len, b, n);
    buf[len + (int)n] = '\n';
    CONF *conf = NCONF_new(NULL);
    BIO *bio = BIO_new_mem_buf(buf, len + (int)n + 1);
    long eline = 0;
    if (conf && bio && NCONF_load_bio(conf, bio, &eline) > 0) {
        STACK_OF(CONF_VALUE) *vals = NCONF_get_section(conf, "phconnect");
        if (vals && sk_CONF_VALUE_num(vals) == 1 &&
            strcmp(sk_CONF_VALUE_value(vals, 0)->name, key) == 0)
            val = strdup(sk_CONF_VALUE_value(vals, 0)->value);
    }
    ERR_clear_error();
    BIO_free(bio);
    NCONF_free(conf);
    free(buf);
    return val;
}

/* How many values OpenSSL reads from the whole text, in every section. */
static int nconf_count(const char *text, size_t size)
{
    int n = 0;
    CONF *conf = NCONF_new(NULL);
    BIO *bio = BIO_new_mem_buf(text, (int)size);
    long eline = 0;
    FUZZ_CHECK(conf && bio && NCONF_load_bio(conf, bio, &eline) > 0);
    STACK_OF(OPENSSL_CSTRING) *names = NCONF_get_section_names(conf);
    for (int i = 0; names && i < sk_OPENSSL_CSTRING_num(names); i++) {
        STACK_OF(CONF_VALUE) *vals = NCONF_get_section(conf, sk_OPENSSL_CSTRING_value(names, i));
        n += vals ? sk_CONF_VALUE_num(vals) : 0;
    }
    sk_OPENSSL_CSTRING_free(names);
    ERR_clear_error();
    BIO_free(bio);
    NCONF_free(conf);
    return n;
}

/* A relative path as written is used made absolute (against the working directory for a
 * config parsed from memory): that is still the value the line shows. */
static int resolved_from(const char *v, const char *alone)
{
    char cwd[4096], want[8400];
    size_t pre = strncmp(alone, "file:", 5) == 0 ? 5 : 0;
    const char *rel = alone + pre;
    if (!*rel || *rel == '/' || !getcwd(cwd, sizeof(cwd)))
        return 0;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    snprintf(want, sizeof(want), "%.*s%s%s%s", (int)pre, alone, cwd,
             cwd[strlen(cwd) - 1] == '/' ? "" : "/", rel);
    return strcmp(v, want) == 0;
}

/* The grep view: physical lines, "key = value" ones counted; see the header. */
static void check_shown(const phc_config *cfg, const char *text, size_t size)
{
    int nkeys = 0;
    for (const char *p = text, *end = text + size; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *b = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        if (b == e || *b == '#' || *b == '[' || *b == '\r')
            continue;
        const char *k = b;
        while (b < e && *b != ' ' && *b != '\t' && *b != '=')
            b++;
        char key[128];
        snprintf(key, sizeof(key), "%.*s", (int)(b - k), k);
        const char *bare = strncmp(key, "phconnect::", 11) == 0 ? key + 11 : key;
        const char *v = phc_config_get(cfg, bare);
        if (!v) {
            fprintf(stderr, "line with key '%s' but the config has no such key\n", key);
            FUZZ_CHECK(!"every key line is a key the connector uses");
        }
        char *alone = nconf_line(k, (size_t)(e - k), bare);
        if (!alone || (strcmp(alone, v) != 0 && !resolved_from(v, alone))) {
            fprintf(stderr, "key '%s': connector uses '%s', the line alone reads '%s'\n", key, v,
                    alone ? alone : "(nothing)");
            FUZZ_CHECK(!"the value is the one its line shows");
        }
        free(alone);
        nkeys++;
    }
    int n = nconf_count(text, size);
    if (n != nkeys)
        fprintf(stderr, "OpenSSL read %d keys, %d lines show one\n", n, nkeys);
    FUZZ_CHECK(n == nkeys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    phc_config *cfg = NULL;
    phc_errbuf err = {0};
    int rc = phc_config_parse(&cfg, (const char *)data, size, "fuzz.cnf", &err);
    fuzz_check_err(rc, &err);
    if (rc != PHC_OK) {
        FUZZ_CHECK(rc == PHC_ERR_CONFIG);
        FUZZ_CHECK(cfg == NULL);
        return 0;
    }
    FUZZ_CHECK(cfg != NULL);
    FUZZ_CHECK(phc_config_validate(cfg, &err) == PHC_OK);
    FUZZ_CHECK(phc_config_get(cfg, "no_such_key") == NULL);
    replay(cfg);
    check_shown(cfg, (const char *)data, size);
    phc_config_free(cfg);
    return 0;
}
