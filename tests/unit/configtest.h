/* Shared by the configuration unit tests (config_test.c: the object and the checks across
 * keys; config_keys_test.c: every key's validation through both entry points;
 * config_file_test.c: the file reader): a good configuration file and the helpers that vary
 * one key of it. Each test is its own executable, so everything here is static. */
#ifndef PHC_CONFIGTEST_H
#define PHC_CONFIGTEST_H

#include "config.h"
#include "testutil.h"

#include <phconnect/phconnect.h>

#include <openssl/err.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FP1                                                                                        \
    "CA:97:81:12:CA:1B:BD:CA:FA:C2:31:B3:9A:23:DC:4D:A7:86:EF:F8:14:7C:4E:72:B9:80:77:85:AF:EE:"   \
    "48:BB"
#define FP2 "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
#define KEY_URI "pkcs11:token=Power%20Hub;object=client%3Bkey;type=private"

/* The good configuration; line i+1 of the file is base_lines[i]. */
static const char *const base_lines[] = {
    "# phconnect test configuration",
    "[phconnect]",
    "url = https://API.Example.com:8443/",
    "ca_file = /etc/phconnect/ca.pem",
    ("ca_sha256 = " FP1 " , " FP2),
    "pinned_ips = 192.0.2.10, 2001:DB8:0::1",
    "source_address = 192.0.2.99",
    "pkcs11_module = /usr/lib/softhsm/libsofthsm2.so",
    ("key = " KEY_URI),
    "cert = /etc/phconnect/client.pem",
    "pin = file:/etc/phconnect/pin",
    "client_id = plant-42",
    "client_secret = env:PHC_SECRET",
    "token_path = /v2/token",
    "credential_expires = 2027-03-01T12:00:00+02:00",
    "connect_timeout = 5",
    "timeout = 60",
    "max_response_bytes = 4M",
};
#define N_BASE (sizeof(base_lines) / sizeof(base_lines[0]))

__attribute__((unused)) static char tmpdir[64];

__attribute__((unused)) static int line_of(const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < N_BASE; i++)
        if (strncmp(base_lines[i], key, kl) == 0 && base_lines[i][kl] == ' ')
            return (int)i + 1;
    return (int)N_BASE + 1; /* appended */
}

/* The base text with key's line replaced by "key = value" (value NULL: line left empty, so
 * line numbers stay put), or appended when key is not in the base. Caller frees. */
__attribute__((unused)) static char *text_with(const char *key, const char *value)
{
    size_t cap = 8192;
    char *t = calloc(1, cap);
    size_t off = 0;
    int found = 0;
    size_t kl = key ? strlen(key) : 0;
    for (size_t i = 0; i < N_BASE; i++) {
        const char *l = base_lines[i];
        if (key && strncmp(l, key, kl) == 0 && l[kl] == ' ') {
            found = 1;
            if (value)
                off += (size_t)snprintf(t + off, cap - off, "%s = %s\n", key, value);
            else
                off += (size_t)snprintf(t + off, cap - off, "\n");
        } else {
            off += (size_t)snprintf(t + off, cap - off, "%s\n", l);
        }
    }
    if (key && !found && value)
        snprintf(t + off, cap - off, "%s = %s\n", key, value);
    return t;
}

__attribute__((unused)) static int parse_str(phc_config **out, const char *text, phc_errbuf *e)
{
    return phc_config_parse(out, text, strlen(text), "test.cnf", e);
}

__attribute__((unused)) static int parse_with(phc_config **out, const char *key, const char *value,
                                              phc_errbuf *e)
{
    char *t = text_with(key, value);
    int rc = parse_str(out, t, e);
    free(t);
    return rc;
}

__attribute__((unused)) static int set_one(const char *key, const char *value, phc_errbuf *e)
{
    phc_config *c = NULL;
    int rc = phc_config_new(&c, e);
    if (rc == PHC_OK)
        rc = phc_config_set(c, key, value, e);
    phc_config_free(c);
    return rc;
}

/* A value refused from the file (with its line) and programmatically (no line): the message
 * starts with the location and key and contains reason. */
#define BAD(key, value, reason)                                                                    \
    do {                                                                                           \
        phc_errbuf e_ = {0};                                                                       \
        phc_config *c_ = NULL;                                                                     \
        char want_[PHC_ERRMSG_MAX];                                                                \
        int brc_ = parse_with(&c_, (key), (value), &e_);                                           \
        snprintf(want_, sizeof(want_), "config test.cnf line %d: key '%s': ", line_of(key),        \
                 (key));                                                                           \
        CHECK_ERR(brc_, e_, PHC_ERR_CONFIG, want_);                                                \
        CHECK_ERR(brc_, e_, PHC_ERR_CONFIG, (reason));                                             \
        CHECK(c_ == NULL);                                                                         \
        phc_config_free(c_);                                                                       \
        memset(&e_, 0, sizeof(e_));                                                                \
        brc_ = set_one((key), (value), &e_);                                                       \
        snprintf(want_, sizeof(want_), "config key '%s': ", (key));                                \
        CHECK_ERR(brc_, e_, PHC_ERR_CONFIG, want_);                                                \
        CHECK_ERR(brc_, e_, PHC_ERR_CONFIG, (reason));                                             \
    } while (0)

/* Parse text, expect failure with a message containing want. */
#define BAD_TEXT(text, want)                                                                       \
    do {                                                                                           \
        phc_errbuf e_ = {0};                                                                       \
        phc_config *c_ = NULL;                                                                     \
        CHECK_ERR(parse_str(&c_, (text), &e_), e_, PHC_ERR_CONFIG, (want));                        \
        CHECK(c_ == NULL);                                                                         \
        phc_config_free(c_);                                                                       \
    } while (0)

/* A value accepted from the file; returns the config (caller frees). */
__attribute__((unused)) static phc_config *good_with(const char *key, const char *value)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    int rc = parse_with(&c, key, value, &e);
    CHECK(rc == PHC_OK);
    if (rc != PHC_OK)
        fprintf(stderr, "  %s = %s: %s\n", key, value ? value : "(none)", e.msg);
    return c;
}

__attribute__((unused)) static char *write_file(const char *name, const char *content, size_t len)
{
    char *path = malloc(strlen(tmpdir) + strlen(name) + 2);
    sprintf(path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(content, 1, len, f);
        fclose(f);
    }
    return path;
}

/* A private directory for the files a test writes (removed by config_test_end). */
__attribute__((unused)) static int config_test_begin(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/phc_config_test.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

__attribute__((unused)) static void config_test_end(void)
{
    rmdir(tmpdir);
}

#endif
