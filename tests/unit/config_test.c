/* Unit tests for lib/config.c, config_keys.c and config_file.c: the file parser (NCONF + line
 * numbers), every key's validation through both entry points, cross-key validation, freezing and
 * loading. */
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

static char tmpdir[64];

static int line_of(const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < N_BASE; i++)
        if (strncmp(base_lines[i], key, kl) == 0 && base_lines[i][kl] == ' ')
            return (int)i + 1;
    return (int)N_BASE + 1; /* appended */
}

/* The base text with key's line replaced by "key = value" (value NULL: line left empty, so
 * line numbers stay put), or appended when key is not in the base. Caller frees. */
static char *text_with(const char *key, const char *value)
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

static int parse_str(phc_config **out, const char *text, phc_errbuf *e)
{
    return phc_config_parse(out, text, strlen(text), "test.cnf", e);
}

static int parse_with(phc_config **out, const char *key, const char *value, phc_errbuf *e)
{
    char *t = text_with(key, value);
    int rc = parse_str(out, t, e);
    free(t);
    return rc;
}

static int set_one(const char *key, const char *value, phc_errbuf *e)
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
static phc_config *good_with(const char *key, const char *value)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    int rc = parse_with(&c, key, value, &e);
    CHECK(rc == PHC_OK);
    if (rc != PHC_OK)
        fprintf(stderr, "  %s = %s: %s\n", key, value ? value : "(none)", e.msg);
    return c;
}

static void test_good(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    char *t = text_with(NULL, NULL);
    int rc = parse_str(&c, t, &e);
    free(t);
    CHECK(rc == PHC_OK);
    if (rc != PHC_OK) {
        fprintf(stderr, "  good config refused: %s\n", e.msg);
        return;
    }
    CHECK(strcmp(c->name, "test.cnf") == 0);
    CHECK(strcmp(c->url, "https://api.example.com:8443") == 0);
    CHECK(strcmp(c->host, "api.example.com") == 0);
    CHECK(c->port == 8443);
    CHECK(strcmp(c->ca_file, "/etc/phconnect/ca.pem") == 0);
    CHECK(c->n_ca_sha256 == 2);
    static const unsigned char fp1[32] = {0xca, 0x97, 0x81, 0x12, 0xca, 0x1b, 0xbd, 0xca,
                                          0xfa, 0xc2, 0x31, 0xb3, 0x9a, 0x23, 0xdc, 0x4d,
                                          0xa7, 0x86, 0xef, 0xf8, 0x14, 0x7c, 0x4e, 0x72,
                                          0xb9, 0x80, 0x77, 0x85, 0xaf, 0xee, 0x48, 0xbb};
    CHECK(c->ca_sha256 && memcmp(c->ca_sha256[0], fp1, 32) == 0);
    CHECK(c->ca_sha256 && c->ca_sha256[1][0] == 0x3e && c->ca_sha256[1][31] == 0x9d);
    CHECK(c->n_pinned_ips == 2);
    CHECK(c->pinned_ips[0] && strcmp(c->pinned_ips[0], "192.0.2.10") == 0);
    CHECK(c->pinned_ips[1] && strcmp(c->pinned_ips[1], "2001:db8::1") == 0);
    CHECK(strcmp(c->source_address, "192.0.2.99") == 0);
    CHECK(strcmp(c->pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so") == 0);
    /* %-escapes and ';' survive NCONF unchanged */
    CHECK(strcmp(c->key, KEY_URI) == 0);
    CHECK(strcmp(c->cert, "/etc/phconnect/client.pem") == 0);
    CHECK(strcmp(c->pin, "file:/etc/phconnect/pin") == 0);
    CHECK(strcmp(c->client_id, "plant-42") == 0);
    CHECK(strcmp(c->client_secret, "env:PHC_SECRET") == 0);
    CHECK(strcmp(c->token_path, "/v2/token") == 0);
    CHECK(strcmp(c->credential_expires, "2027-03-01T12:00:00+02:00") == 0);
    CHECK(c->credential_expires_epoch == 1803895200LL); /* 2027-03-01T10:00:00Z */
    CHECK(c->connect_timeout == 5);
    CHECK(c->timeout == 60);
    CHECK(c->max_response_bytes == 4u * 1024 * 1024);

    /* raw values as written; NULL for unset and unknown keys */
    CHECK(strcmp(phc_config_get(c, "url"), "https://API.Example.com:8443/") == 0);
    CHECK(strcmp(phc_config_get(c, "pinned_ips"), "192.0.2.10, 2001:DB8:0::1") == 0);
    CHECK(strcmp(phc_config_get(c, "max_response_bytes"), "4M") == 0);
    CHECK(strcmp(phc_config_get(c, "key"), KEY_URI) == 0);
    CHECK(phc_config_get(c, "nonsense") == NULL);
    CHECK(phc_config_get(NULL, "url") == NULL);
    CHECK(phc_config_validate(c, &e) == PHC_OK);
    CHECK(ERR_peek_error() == 0); /* nothing left on OpenSSL's queue */
    phc_config_free(c);
}

static void test_defaults(void)
{
    const char *text = "[phconnect]\n"
                       "url = https://powerhub.example\n"
                       "ca_file = ca.pem\n"
                       "client_id = x\n"
                       "client_secret = file:/run/secret\n";
    phc_errbuf e = {0};
    phc_config *c = NULL;
    CHECK(parse_str(&c, text, &e) == PHC_OK);
    if (!c)
        return;
    CHECK(strcmp(c->url, "https://powerhub.example:443") == 0);
    CHECK(c->port == 443);
    CHECK(c->connect_timeout == 10);
    CHECK(c->timeout == 30);
    CHECK(c->max_response_bytes == 16u * 1024 * 1024);
    CHECK(strcmp(c->token_path, "/v1/auth/token") == 0);
    CHECK(phc_config_get(c, "token_path") == NULL); /* a default is not "as written" */
    CHECK(c->n_pinned_ips == 0 && c->n_ca_sha256 == 0 && c->ca_sha256 == NULL);
    CHECK(c->key == NULL && c->cert == NULL && c->pin == NULL && c->source_address == NULL);
    CHECK(c->credential_expires == NULL && c->credential_expires_epoch == 0);
    phc_config_free(c);

    /* an empty programmatic config has the same defaults and nothing else */
    CHECK(phc_config_new(&c, &e) == PHC_OK);
    CHECK(c->refs == 1 && c->frozen == 0 && c->name == NULL && c->url == NULL);
    CHECK(c->timeout == 30 && strcmp(c->token_path, "/v1/auth/token") == 0);
    phc_config_free(c);
}

static void test_url(void)
{
    BAD("url", "http://api.example.com", "only https is allowed, not 'http'");
    BAD("url", "HTTP://api.example.com", "only https is allowed, not 'HTTP'");
    BAD("url", "ftp://api.example.com", "only https is allowed, not 'ftp'");
    BAD("url", "api.example.com", "must be https://host[:port]");
    BAD("url", "https://api.example.com/v1", "must not have a path ('/v1')");
    BAD("url", "https://api.example.com//", "must not have a path");
    BAD("url", "https://api.example.com/?a=b", "must not have a query or fragment");
    /* '#' starts a comment in OpenSSL's syntax unless the value is quoted */
    BAD("url", "https://api.example.com?x", "must not have a query or fragment");
    {
        phc_errbuf e = {0};
        phc_config *c = NULL;
        CHECK_ERR(parse_with(&c, "url", "\"https://api.example.com#frag\"", &e), e, PHC_ERR_CONFIG,
                  "line 3: key 'url': must not have a query or fragment");
        CHECK_ERR(set_one("url", "https://api.example.com#frag", &e), e, PHC_ERR_CONFIG,
                  "config key 'url': must not have a query or fragment");
    }
    BAD("url", "https://api.example.com:0", "port must be a number from 1 to 65535");
    BAD("url", "https://api.example.com:65536", "port must be a number from 1 to 65535");
    BAD("url", "https://api.example.com:99999999999999999999", "port must be a number");
    BAD("url", "https://api.example.com:https", "port must be a number from 1 to 65535");
    BAD("url", "https://api.example.com:", "port must be a number from 1 to 65535");
    BAD("url", "https://:443", "has no host");
    BAD("url", "https://", "has no host");
    BAD("url", "https://exa_mple.com", "'exa_mple.com' is not a valid host name");
    BAD("url", "https://-bad.example.com", "is not a valid host name");
    BAD("url", "https://a..b", "is not a valid host name");
    BAD("url", "https://256.1.1.1", "'256.1.1.1' is not a valid IPv4 address");
    BAD("url", "https://2001:db8::1", "an IPv6 address must be in brackets");
    BAD("url", "https://[2001:db8::zz]", "'[2001:db8::zz]' is not an IPv6 address");
    BAD("url", "https://[2001:db8::1", "missing its closing ']'");
    BAD("url", "https://[2001:db8::1]x", "unexpected characters after ']'");

    /* userinfo may carry a password: refused without quoting it */
    phc_errbuf e = {0};
    phc_config *c = NULL;
    CHECK_ERR(parse_with(&c, "url", "https://bob:hunter2@api.example.com", &e), e, PHC_ERR_CONFIG,
              "line 3: key 'url': must not contain user information");
    CHECK(strstr(e.msg, "hunter2") == NULL);

    /* IPv6 literal: brackets kept in url, not in host; normalised */
    c = good_with("url", "https://[2001:DB8:0::1]/");
    if (c) {
        CHECK(strcmp(c->url, "https://[2001:db8::1]:443") == 0);
        CHECK(strcmp(c->host, "2001:db8::1") == 0);
        CHECK(c->port == 443);
    }
    phc_config_free(c);
    c = good_with("url", "HTTPS://192.0.2.10:1");
    if (c)
        CHECK(strcmp(c->url, "https://192.0.2.10:1") == 0 && c->port == 1);
    phc_config_free(c);
    c = good_with("url", "https://h:65535");
    if (c)
        CHECK(c->port == 65535);
    phc_config_free(c);
}

static void test_fingerprints(void)
{
    BAD("ca_sha256", FP2 "00", "fingerprint 1 has 66 hex digits; a SHA-256 fingerprint has 64");
    BAD("ca_sha256", FP1 "," FP2 "0", "fingerprint 2 has 65 hex digits");
    BAD("ca_sha256", "abcd", "fingerprint 1 has 4 hex digits");
    BAD("ca_sha256", "g" FP2 "", "fingerprint 1: 'g' is not a hex digit");
    BAD("ca_sha256", FP2 ",", "fingerprint 2 is empty");
    BAD("ca_sha256", FP2 ", " FP2, "fingerprint 2 repeats fingerprint 1");
    BAD("ca_sha256",
        "CA97:81:12:CA:1B:BD:CA:FA:C2:31:B3:9A:23:DC:4D:A7:86:EF:F8:14:7C:4E:72:B9:80:"
        "77:85:AF:EE:48:BB",
        "fingerprint 1: colons must separate every pair of hex digits");
    BAD("ca_sha256", "C:A97", "fingerprint 1 has 4 hex digits");

    phc_config *c = good_with("ca_sha256", FP2);
    if (c)
        CHECK(c->n_ca_sha256 == 1);
    phc_config_free(c);
}

static void test_addresses(void)
{
    BAD("pinned_ips", "192.0.2.10, api.example.com", "'api.example.com' is not an IP address");
    BAD("pinned_ips", "192.0.2.10, 2001:db8::1, 2001:DB8:0:0::1",
        "address 2001:db8::1 is listed twice");
    BAD("pinned_ips", "192.0.2.10,,192.0.2.11", "address 2 is empty");
    BAD("pinned_ips", "192.0.2.10/32", "'192.0.2.10/32' is not an IP address");
    BAD("pinned_ips", "[2001:db8::1]", "is not an IP address");
    BAD("pinned_ips",
        "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,10.0.0.6,10.0.0.7,10.0.0.8,10.0.0.9,"
        "10.0.0.10,10.0.0.11,10.0.0.12,10.0.0.13,10.0.0.14,10.0.0.15,10.0.0.16,10.0.0.17",
        "more than 16 addresses");
    BAD("source_address", "myhost.example", "'myhost.example' is not an IP address");
    BAD("source_address", "192.0.2.1, 192.0.2.2", "is not an IP address");

    phc_config *c = good_with("source_address", "2001:DB8::99");
    if (c)
        CHECK(strcmp(c->source_address, "2001:db8::99") == 0);
    phc_config_free(c);
}

static void test_uris(void)
{
    const char *pin_msg = "PIN must not be inside the URI; use the pin key";
    BAD("key", "pkcs11:token=t;object=k?pin-value=1234", pin_msg);
    BAD("key", "pkcs11:token=t;object=k?pin-source=file:/x", pin_msg);
    BAD("key", "pkcs11:token=t;object=k;pin-value=1234", pin_msg); /* path form (libp11) */
    BAD("key", "pkcs11:token=t;object=k;PIN-VALUE=1234", pin_msg);
    BAD("key", "pkcs11:token=t", "the PKCS#11 URI must name the private key (object= or id=)");
    BAD("key", "pkcs11:token=t;object=k;type=cert",
        "type=cert does not name a private key; use type=private");
    BAD("key", "/etc/phconnect/key.pem", "must be a PKCS#11 URI");
    BAD("key", "pkcs11:token=t;objetc=k", "unknown attribute 'objetc' in the PKCS#11 URI");
    BAD("key", "pkcs11:token=t;object=%zz", "not a valid PKCS#11 URI:");
    BAD("cert", "pkcs11:token=t;object=k;type=private",
        "type=private does not name a certificate; use type=cert");
    BAD("cert", "pkcs11:token=t;object=k?pin-value=1234", pin_msg);
    BAD("client_secret", "pkcs11:token=t;object=s?pin-value=1234", pin_msg);
    BAD("client_secret", "pkcs11:token=t;object=s;type=private",
        "type=private does not name a data object");

    /* none of the refusals above quote the PIN */
    phc_errbuf e = {0};
    CHECK_ERR(set_one("key", "pkcs11:token=t;object=k?pin-value=98765", &e), e, PHC_ERR_CONFIG,
              pin_msg);
    CHECK(strstr(e.msg, "98765") == NULL);

    phc_config *c = good_with("key", "pkcs11:token=t;id=%01%02");
    phc_config_free(c);
    c = good_with("cert", "pkcs11:token=Power%20Hub;object=client;type=cert");
    if (c)
        CHECK(strcmp(c->cert, "pkcs11:token=Power%20Hub;object=client;type=cert") == 0);
    phc_config_free(c);
    c = good_with("cert", "client.pem");
    if (c)
        CHECK(strcmp(c->cert, "client.pem") == 0);
    phc_config_free(c);
}

static void test_secret_sources(void)
{
    const char *pin_msg = "pin must be file:/path or env:NAME";
    phc_errbuf e = {0};
    phc_config *c = NULL;

    /* a literal PIN is refused and never echoed, from the file or programmatically */
    CHECK_ERR(parse_with(&c, "pin", "4711", &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 11: key 'pin': pin must be file:/path or env:NAME");
    CHECK(strstr(e.msg, "4711") == NULL);
    CHECK_ERR(set_one("pin", "4711", &e), e, PHC_ERR_CONFIG, pin_msg);
    CHECK(strstr(e.msg, "4711") == NULL);
    BAD("pin", "file:relative/pin", pin_msg);
    BAD("pin", "file:/", pin_msg);
    BAD("pin", "env:1BAD", pin_msg);
    BAD("pin", "env:", pin_msg);
    BAD("pin", "env:A-B", pin_msg);
    BAD("pin", "pkcs11:token=t;object=pin", pin_msg);

    CHECK_ERR(parse_with(&c, "client_secret", "s3cr3t-value", &e), e, PHC_ERR_CONFIG,
              "line 13: key 'client_secret': client_secret must be file:/path, env:NAME or a "
              "pkcs11: URI");
    CHECK(strstr(e.msg, "s3cr3t") == NULL);
    BAD("client_secret", "file:secret", "client_secret must be file:/path, env:NAME");

    c = good_with("pin", "env:PHC_PIN_2");
    phc_config_free(c);
    c = good_with("client_secret", "pkcs11:token=t;object=secret;type=data");
    phc_config_free(c);

    /* client_id: printable ASCII, not echoed either */
    CHECK_ERR(set_one("client_id", "ab\tc", &e), e, PHC_ERR_CONFIG,
              "config key 'client_id': must be printable ASCII");
    CHECK_ERR(set_one("client_id", "caf\xc3\xa9", &e), e, PHC_ERR_CONFIG,
              "must be printable ASCII");
}

static void test_token_path_and_date(void)
{
    BAD("token_path", "v1/token", "must start with '/'");
    BAD("token_path", "/v1/auth token", "must not contain spaces");
    CHECK(set_one("token_path", "/v1/\x01", &(phc_errbuf){0}) == PHC_ERR_CONFIG);

    BAD("credential_expires", "2026-02-30", "'2026-02-30' is not a valid date");
    BAD("credential_expires", "2027-02-29", "'2027-02-29' is not a valid date");
    BAD("credential_expires", "2026-13-01", "is not a valid date");
    BAD("credential_expires", "2026-00-10", "is not a valid date");
    BAD("credential_expires", "1999-12-31",
        "'1999-12-31' is not a valid date (years 2000 to 9999)");
    BAD("credential_expires", "2026-01-01T24:00:00Z",
        "'2026-01-01T24:00:00Z' is not a valid date and time");
    BAD("credential_expires", "2026-01-01T10:00:00+25:00", "is not a valid date and time");
    BAD("credential_expires", "tomorrow", "must be an ISO-8601 date YYYY-MM-DD");
    BAD("credential_expires", "2026-1-01", "must be an ISO-8601 date");
    BAD("credential_expires", "2026-01-01T10:00", "must be an ISO-8601 date");
    BAD("credential_expires", "2026-01-01T10:00:00+0200", "must be an ISO-8601 date");
    BAD("credential_expires", "2026-01-01Z", "must be an ISO-8601 date");
    BAD("credential_expires", "01/03/2027", "must be an ISO-8601 date");

    phc_config *c = good_with("credential_expires", "2027-03-01");
    if (c)
        CHECK(c->credential_expires_epoch == 1803859200LL);
    phc_config_free(c);
    c = good_with("credential_expires", "2028-02-29");
    if (c)
        CHECK(c->credential_expires_epoch == 1835395200LL);
    phc_config_free(c);
    c = good_with("credential_expires", "2027-03-01T12:00:00-03:30");
    if (c)
        CHECK(c->credential_expires_epoch == 1803915000LL);
    phc_config_free(c);
    c = good_with("credential_expires", "2027-03-01T10:00:00Z");
    if (c)
        CHECK(c->credential_expires_epoch == 1803895200LL);
    phc_config_free(c);
    c = good_with("credential_expires", "2027-03-01T10:00:00");
    if (c)
        CHECK(c->credential_expires_epoch == 1803895200LL); /* no zone: UTC */
    phc_config_free(c);
}

static void test_numbers(void)
{
    const char *secs = "must be a whole number of seconds from 1 to 3600";
    BAD("timeout", "0", secs);
    BAD("timeout", "3601", secs);
    BAD("timeout", "99999999999999999999999", secs);
    BAD("timeout", "ten", secs);
    BAD("timeout", "-5", secs);
    BAD("timeout", "+5", secs);
    BAD("timeout", "10s", secs);
    BAD("timeout", "1.5", secs);
    BAD("connect_timeout", "0", secs);
    BAD("connect_timeout", "0x10", secs);

    const char *size = "must be a size from 1 byte to 1G";
    BAD("max_response_bytes", "0", size);
    BAD("max_response_bytes", "2G", size);
    BAD("max_response_bytes", "1025M", size);
    BAD("max_response_bytes", "1073741825", size);
    BAD("max_response_bytes", "1T", size);
    BAD("max_response_bytes", "5MB", size);
    BAD("max_response_bytes", "k", size);
    BAD("max_response_bytes", "-1", size);
    BAD("max_response_bytes", "99999999999999999999k", size);
    BAD("max_response_bytes", "9223372036854775807k", size);

    static const struct {
        const char *v;
        size_t want;
    } ok[] = {
        {"1", 1},         {"1k", 1024},     {"64K", 65536},           {"3m", 3u << 20},
        {"1G", 1u << 30}, {"1g", 1u << 30}, {"1073741824", 1u << 30},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        phc_config *c = good_with("max_response_bytes", ok[i].v);
        if (c)
            CHECK(c->max_response_bytes == ok[i].want);
        phc_config_free(c);
    }
    phc_config *c = good_with("timeout", "3600");
    if (c)
        CHECK(c->timeout == 3600);
    phc_config_free(c);
    c = good_with("connect_timeout", "1");
    if (c)
        CHECK(c->connect_timeout == 1);
    phc_config_free(c);
}

/* phconnect's own keys: min_rsa_bits (phc install) and reload_interval (running clients). */
static void test_rotation_keys(void)
{
    const char *bits = "must be a number of bits from 2048 to 4096";
    BAD("min_rsa_bits", "1024", bits);
    BAD("min_rsa_bits", "2047", bits);
    BAD("min_rsa_bits", "4097", bits);
    BAD("min_rsa_bits", "8192", bits);
    BAD("min_rsa_bits", "3k", bits);
    BAD("min_rsa_bits", "-2048", bits);
    BAD("min_rsa_bits", "", "must not be empty");
    const char *secs = "must be a whole number of seconds from 0 (off) to 86400";
    BAD("reload_interval", "86401", secs);
    BAD("reload_interval", "-1", secs);
    BAD("reload_interval", "1m", secs);
    BAD("reload_interval", "99999999999999999999", secs);
    BAD("reload_interval", "", "must not be empty");

    /* A typo is named with the key it was meant to be. */
    BAD_TEXT("[phconnect]\nurl = https://x.example\nca_file = c\nclient_id = i\n"
             "client_secret = env:S\nmin_rsa_bit = 3072\n",
             "config test.cnf line 6: unknown key 'min_rsa_bit' (did you mean 'min_rsa_bits'?)");

    phc_config *c = good_with("min_rsa_bits", "3072");
    if (c) {
        CHECK(c->min_rsa_bits == 3072);
        CHECK(c->reload_interval == 60);
        CHECK(strcmp(phc_config_get(c, "min_rsa_bits"), "3072") == 0);
    }
    phc_config_free(c);
    c = good_with("reload_interval", "0");
    if (c) {
        CHECK(c->reload_interval == 0);
        CHECK(c->min_rsa_bits == 2048);
    }
    phc_config_free(c);
    c = good_with("reload_interval", "86400");
    if (c)
        CHECK(c->reload_interval == 86400);
    phc_config_free(c);

    /* Defaults without the keys, from the file and programmatically. */
    c = good_with(NULL, NULL);
    if (c)
        CHECK(c->min_rsa_bits == 2048 && c->reload_interval == 60 &&
              phc_config_get(c, "reload_interval") == NULL);
    phc_config_free(c);
    phc_errbuf e = {0};
    CHECK(phc_config_new(&c, &e) == PHC_OK);
    if (c) {
        CHECK(c->min_rsa_bits == 2048 && c->reload_interval == 60);
        CHECK(phc_config_set(c, "min_rsa_bits", "4096", &e) == PHC_OK && c->min_rsa_bits == 4096);
        CHECK(phc_config_set(c, "reload_interval", "5", &e) == PHC_OK && c->reload_interval == 5);
        /* a refused value leaves the old one */
        CHECK(phc_config_set(c, "reload_interval", "x", &e) == PHC_ERR_CONFIG &&
              c->reload_interval == 5);
    }
    phc_config_free(c);
}

static void test_empty_values(void)
{
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
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        BAD(keys[i], "", "must not be empty");
    phc_errbuf e = {0};
    CHECK_ERR(set_one("url", NULL, &e), e, PHC_ERR_CONFIG, "config key 'url': has no value");
}

static void test_keys_and_sections(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;

    /* unknown keys, with a suggestion when close */
    CHECK_ERR(parse_with(&c, "pinned_ip", "192.0.2.10", &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 19: unknown key 'pinned_ip' (did you mean 'pinned_ips'?)");
    CHECK_ERR(parse_with(&c, "URL", "https://x", &e), e, PHC_ERR_CONFIG,
              "line 19: unknown key 'URL' (did you mean 'url'?)");
    CHECK_ERR(parse_with(&c, "frobnicate", "1", &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 19: unknown key 'frobnicate'");
    CHECK(strstr(e.msg, "did you mean") == NULL);
    CHECK_ERR(set_one("ca-file", "/x", &e), e, PHC_ERR_CONFIG,
              "config: unknown key 'ca-file' (did you mean 'ca_file'?)");

    /* a key given twice: both lines named */
    char *t = text_with(NULL, NULL);
    char buf[8192];
    snprintf(buf, sizeof(buf), "%s\n# again\ntimeout = 20\n", t);
    BAD_TEXT(buf, "config test.cnf line 21: key 'timeout' is given twice (lines 17 and 21)");

    /* a key before any section, or under a misspelt header */
    snprintf(buf, sizeof(buf), "timeout = 5\n%s", t);
    BAD_TEXT(buf, "config test.cnf line 1: key 'timeout' is outside the [phconnect] section");
    snprintf(buf, sizeof(buf), "%s[phconect]\nurl = https://x\n", t);
    BAD_TEXT(buf, "config test.cnf line 20: key 'url' is in section [phconect]; phconnect reads "
                  "only [phconnect]");
    snprintf(buf, sizeof(buf), "%s[ other ]\n\n  pin = env:X\n", t);
    BAD_TEXT(buf, "config test.cnf line 21: key 'pin' is in section [other]");
    snprintf(buf, sizeof(buf), "%sother::pin = env:X\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: key 'pin' is in section [other]");
    /* ... but an empty section is harmless */
    snprintf(buf, sizeof(buf), "%s[empty]\n", t);
    CHECK(parse_str(&c, buf, &e) == PHC_OK);
    phc_config_free(c);
    c = NULL;
    /* phconnect::key from elsewhere lands in [phconnect] and is numbered */
    snprintf(buf, sizeof(buf), "%s[x]\nphconnect::timeout = 0\n", t);
    CHECK_ERR(parse_str(&c, buf, &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 20: key 'timeout' is given twice (lines 17 and 20)");
    free(t);

    BAD_TEXT("# nothing here\n", "config test.cnf: no [phconnect] section");
    BAD_TEXT("", "config test.cnf: no [phconnect] section");
    BAD_TEXT("[phconnect]\n", "config test.cnf: missing required key 'url'");
}

/* Lines that mean something other than what they show: each is refused with its line. */
static void test_hidden_keys(void)
{
    char *t = text_with(NULL, NULL);
    char buf[8192];
    /* OpenSSL treats any name beginning with ".include" as an include */
    snprintf(buf, sizeof(buf), "%s.include_local = /etc/other.cnf\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: .include is not supported");
    snprintf(buf, sizeof(buf), "%s  .includedir=/etc/other.d\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: .include is not supported");
    snprintf(buf, sizeof(buf), "%s.pragma = dollarid:true\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: key '.pragma': keys beginning with '.' are OpenSSL "
                  "directives and are not supported");
    snprintf(buf, sizeof(buf), "%sphconnect::.x = 1\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: key '.x': keys beginning with '.'");
    /* a key name split over two lines: grep '^ca_file' would not show the second one */
    snprintf(buf, sizeof(buf), "%sca_file\\\n = /tmp/other.pem\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: ends in a backslash (a line continuation); write each "
                  "key with its value on one line");
    /* ... or a value, or a comment that swallows the next line */
    snprintf(buf, sizeof(buf), "%stimeout = 5\\\r\n0\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: ends in a backslash");
    snprintf(buf, sizeof(buf), "# note \\\n%s", t);
    BAD_TEXT(buf, "config test.cnf line 1: ends in a backslash");
    /* an escaped backslash at the end is a value, not a continuation: it passes the scanner
     * and the value is then checked like any other */
    free(t);
    phc_config *c = NULL;
    phc_errbuf e = {0};
    t = text_with("client_id", "a\\\\");
    CHECK(parse_str(&c, t, &e) == PHC_OK);
    CHECK(c && strcmp(phc_config_get(c, "client_id"), "a\\") == 0);
    phc_config_free(c);
    free(t);
    /* a reference to another key: the line alone does not say what the value is */
    t = text_with("cert", "${ca_file}");
    BAD_TEXT(t, "config test.cnf line 10: key 'cert': OpenSSL cannot read this line on its own");
    free(t);
}

static void test_syntax(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;

    BAD_TEXT("[phconnect]\nurl = https://x\nca_file /etc/ca.pem\n",
             "config test.cnf line 3: missing equal sign");
    BAD_TEXT("# c\n[phconnect\nurl = https://x\n", "config test.cnf line 2: missing close square");
    BAD_TEXT("[phconnect]\n\nca_file = /etc/$nothere/ca.pem\n",
             "config test.cnf line 3: variable has no value");
    BAD_TEXT("[phconnect]\n.include /etc/other.cnf\n",
             "config test.cnf line 2: .include is not supported");
    BAD_TEXT("[phconnect]\n  .include=/etc/other.cnf\n", "line 2: .include is not supported");
    {
        static const char nul[] = "[phconnect]\nurl = https://x\0y\n";
        CHECK_ERR(phc_config_parse(&c, nul, sizeof(nul) - 1, "test.cnf", &e), e, PHC_ERR_CONFIG,
                  "config test.cnf line 2: contains a NUL byte");
    }

    /* OpenSSL syntax: comments, quotes, escapes, CRLF; line numbers follow physical lines */
    const char *text = "[phconnect]\r\n"
                       "url = https://x.example # the vendor endpoint\r\n"
                       "ca_file = \"/etc/ph conn/ca.pem\"\r\n"
                       "\r\n"
                       "ca_sha256 = " FP2 ", " FP1 "\r\n"
                       "pkcs11_module = /usr/lib/p\\$11.so\r\n"
                       "key = " KEY_URI "\r\n"
                       "pin = env:PHC_PIN\r\n"
                       "timeout = 0\r\n";
    CHECK_ERR(parse_str(&c, text, &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 9: key 'timeout': must be a whole number");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", text);
    char *p = strstr(buf, "timeout = 0");
    if (p)
        p[10] = '9';
    CHECK(parse_str(&c, buf, &e) == PHC_OK);
    if (c) {
        CHECK(strcmp(c->url, "https://x.example:443") == 0);
        CHECK(strcmp(c->ca_file, "/etc/ph conn/ca.pem") == 0);
        CHECK(c->n_ca_sha256 == 2);
        CHECK(strcmp(c->pkcs11_module, "/usr/lib/p$11.so") == 0); /* escaped '$' */
        CHECK(strcmp(c->key, KEY_URI) == 0);
        CHECK(c->timeout == 9);
    }
    phc_config_free(c);
    c = NULL;

    /* syntax errors leave nothing on OpenSSL's queue */
    BAD_TEXT("[phconnect]\nurl\n", "line 2: missing equal sign");
    CHECK(ERR_peek_error() == 0);

    /* a single-quoted '$' is literal */
    CHECK(parse_str(&c,
                    "[phconnect]\nurl = https://x\nca_file = '/srv/a$b/ca.pem'\n"
                    "client_id = a\nclient_secret = env:S\n",
                    &e) == PHC_OK);
    if (c)
        CHECK(strcmp(c->ca_file, "/srv/a$b/ca.pem") == 0);
    phc_config_free(c);
    c = NULL;

    /* $ENV:: expansion is OpenSSL's, and works */
    setenv("PHC_TEST_DIR", "/srv/phc", 1);
    CHECK(parse_str(&c,
                    "[phconnect]\nurl = https://x\nca_file = $ENV::PHC_TEST_DIR/ca.pem\n"
                    "client_id = a\nclient_secret = env:S\n",
                    &e) == PHC_OK);
    if (c)
        CHECK(strcmp(c->ca_file, "/srv/phc/ca.pem") == 0);
    phc_config_free(c);
    unsetenv("PHC_TEST_DIR");

    /* What the file shows is what the connector uses (issue 13, item 2) */
    test_hidden_keys();

    /* too large */
    size_t big = 1024 * 1024 + 1;
    char *huge = malloc(big);
    memset(huge, '#', big);
    CHECK_ERR(phc_config_parse(&c, huge, big, "test.cnf", &e), e, PHC_ERR_CONFIG,
              "config test.cnf: larger than 1048576 bytes");
    free(huge);
}

static void test_required(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    char *t;

#define MISSING(txt, want)                                                                         \
    do {                                                                                           \
        t = (txt);                                                                                 \
        CHECK_ERR(parse_str(&c, t, &e), e, PHC_ERR_CONFIG, (want));                                \
        CHECK(c == NULL);                                                                          \
        free(t);                                                                                   \
    } while (0)

    MISSING(text_with("url", NULL), "config test.cnf: missing required key 'url'");
    MISSING(text_with("ca_file", NULL), "config test.cnf: missing required key 'ca_file'");
    MISSING(text_with("pin", NULL), "config test.cnf: missing required key 'pin' (a client key");
    MISSING(text_with("pkcs11_module", NULL),
            "config test.cnf: missing required key 'pkcs11_module'");
    MISSING(text_with("client_secret", NULL),
            "config test.cnf: missing required key 'client_secret' (client_id is set)");
    MISSING(text_with("client_id", NULL),
            "config test.cnf: missing required key 'client_id' (client_secret is set)");
    /* key removed: cert has no key, then module/pin have nothing to serve */
    MISSING(text_with("key", NULL), "config test.cnf: missing required key 'key'");

    /* the same checks programmatically */
    const char *minimal[][2] = {
        {"url", "https://x"},
        {"ca_file", "/ca.pem"},
    };
    CHECK(phc_config_new(&c, &e) == PHC_OK);
    CHECK_ERR(phc_config_validate(c, &e), e, PHC_ERR_CONFIG, "config: missing required key 'url'");
    for (size_t i = 0; i < 2; i++)
        CHECK(phc_config_set(c, minimal[i][0], minimal[i][1], &e) == PHC_OK);
    CHECK_ERR(phc_config_validate(c, &e), e, PHC_ERR_CONFIG,
              "config: missing required key 'key': set 'pkcs11_module', 'key' and 'pin'");
    CHECK(phc_config_set(c, "key", "pkcs11:object=k", &e) == PHC_OK);
    CHECK_ERR(phc_config_validate(c, &e), e, PHC_ERR_CONFIG,
              "missing required key 'pkcs11_module'");
    CHECK(phc_config_set(c, "pkcs11_module", "/m.so", &e) == PHC_OK);
    CHECK_ERR(phc_config_validate(c, &e), e, PHC_ERR_CONFIG, "missing required key 'pin'");
    CHECK(phc_config_set(c, "pin", "env:P", &e) == PHC_OK);
    CHECK(phc_config_validate(c, &e) == PHC_OK);
    phc_config_free(c);

    /* a client secret on the token needs module and PIN; a PIN alone needs a use */
    CHECK(phc_config_new(&c, &e) == PHC_OK);
    CHECK(phc_config_set(c, "url", "https://x", &e) == PHC_OK);
    CHECK(phc_config_set(c, "ca_file", "/ca.pem", &e) == PHC_OK);
    CHECK(phc_config_set(c, "client_id", "id", &e) == PHC_OK);
    CHECK(phc_config_set(c, "client_secret", "pkcs11:object=s", &e) == PHC_OK);
    CHECK_ERR(phc_config_validate(c, &e), e, PHC_ERR_CONFIG,
              "missing required key 'pkcs11_module' (client_secret is a PKCS#11 URI");
    CHECK(phc_config_set(c, "pkcs11_module", "/m.so", &e) == PHC_OK);
    CHECK_ERR(phc_config_validate(c, &e), e, PHC_ERR_CONFIG, "missing required key 'pin'");
    CHECK(phc_config_set(c, "pin", "env:P", &e) == PHC_OK);
    CHECK(phc_config_validate(c, &e) == PHC_OK);
    CHECK(phc_config_set(c, "client_secret", "env:S", &e) == PHC_OK);
    CHECK_ERR(phc_config_validate(c, &e), e, PHC_ERR_CONFIG,
              "missing required key 'key' ('pkcs11_module'/'pin' are set");
    CHECK(phc_config_set(c, "cert", "/c.pem", &e) == PHC_OK);
    CHECK_ERR(phc_config_validate(c, &e), e, PHC_ERR_CONFIG,
              "missing required key 'key' ('cert' is set");
    phc_config_free(c);
#undef MISSING
}

static void test_cross_checks(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    char *t = text_with("url", "https://192.0.2.55");
    CHECK_ERR(parse_str(&c, t, &e), e, PHC_ERR_CONFIG,
              "config test.cnf: the address 192.0.2.55 in 'url' is not one of 'pinned_ips'");
    free(t);
    c = good_with("url", "https://192.0.2.10");
    phc_config_free(c);
    c = good_with("url", "https://[2001:0db8::1]:8443");
    phc_config_free(c);

    t = text_with("pinned_ips", "2001:db8::1");
    CHECK_ERR(parse_str(&c, t, &e), e, PHC_ERR_CONFIG,
              "'source_address' 192.0.2.99 is IPv4 but no address in 'pinned_ips' is");
    free(t);
    c = good_with("source_address", "2001:db8::5");
    phc_config_free(c);

    CHECK(phc_config_new(&c, &e) == PHC_OK);
    CHECK(phc_config_set(c, "url", "https://[2001:db8::1]", &e) == PHC_OK);
    CHECK(phc_config_set(c, "ca_file", "/ca.pem", &e) == PHC_OK);
    CHECK(phc_config_set(c, "client_id", "id", &e) == PHC_OK);
    CHECK(phc_config_set(c, "client_secret", "env:S", &e) == PHC_OK);
    CHECK(phc_config_set(c, "source_address", "10.1.1.1", &e) == PHC_OK);
    CHECK_ERR(phc_config_validate(c, &e), e, PHC_ERR_CONFIG,
              "config: 'source_address' 10.1.1.1 is IPv4 but the address in 'url' is not");
    phc_config_free(c);
}

static void test_programmatic(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    CHECK(phc_config_new(&c, &e) == PHC_OK);
    if (!c)
        return;

    /* setting twice replaces; a refused value leaves the old one */
    CHECK(phc_config_set(c, "timeout", "5", &e) == PHC_OK);
    CHECK(phc_config_set(c, "timeout", "7", &e) == PHC_OK);
    CHECK(c->timeout == 7 && strcmp(phc_config_get(c, "timeout"), "7") == 0);
    CHECK_ERR(phc_config_set(c, "timeout", "0", &e), e, PHC_ERR_CONFIG, "config key 'timeout'");
    CHECK(c->timeout == 7 && strcmp(phc_config_get(c, "timeout"), "7") == 0);
    CHECK(phc_config_set(c, "pinned_ips", "192.0.2.1, 192.0.2.2", &e) == PHC_OK);
    CHECK(phc_config_set(c, "pinned_ips", "192.0.2.3", &e) == PHC_OK);
    CHECK(c->n_pinned_ips == 1 && strcmp(c->pinned_ips[0], "192.0.2.3") == 0);
    CHECK_ERR(phc_config_set(c, "pinned_ips", "192.0.2.4, nope", &e), e, PHC_ERR_CONFIG,
              "'nope' is not an IP address");
    CHECK(c->n_pinned_ips == 1 && strcmp(c->pinned_ips[0], "192.0.2.3") == 0);
    CHECK(phc_config_set(c, "ca_sha256", FP1, &e) == PHC_OK);
    CHECK(phc_config_set(c, "ca_sha256", FP1 "," FP2, &e) == PHC_OK);
    CHECK(c->n_ca_sha256 == 2);
    CHECK(phc_config_set(c, "url", "https://a.example", &e) == PHC_OK);
    CHECK(phc_config_set(c, "url", "https://b.example:444", &e) == PHC_OK);
    CHECK(strcmp(c->host, "b.example") == 0 && c->port == 444);
    CHECK(phc_config_set(c, "credential_expires", "2027-03-01", &e) == PHC_OK);

    /* frozen once a client holds it */
    phc_config *ref = phc__config_ref(c);
    CHECK(ref == c && c->refs == 2 && c->frozen == 1);
    CHECK_ERR(phc_config_set(c, "timeout", "9", &e), e, PHC_ERR_CONFIG,
              "config is in use by a client and cannot change");
    CHECK(c->timeout == 7);
    phc_config_free(c); /* the caller's reference */
    CHECK(ref->refs == 1);
    CHECK(strcmp(phc_config_get(ref, "timeout"), "7") == 0);
    phc_config_free(ref); /* the client's */
    phc_config_free(NULL);
    CHECK(phc__config_ref(NULL) == NULL);

    CHECK_ERR(phc_config_set(NULL, "url", "https://x", &e), e, PHC_ERR_INTERNAL, "NULL");
}

static char *write_file(const char *name, const char *content, size_t len)
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

static void test_load(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    char missing_path[128];
    snprintf(missing_path, sizeof(missing_path), "%s/nope.cnf", tmpdir);
    CHECK_ERR(phc_config_load(&c, missing_path, &e), e, PHC_ERR_CONFIG, missing_path);
    CHECK(strstr(e.msg, "No such file or directory") != NULL);
    CHECK(c == NULL);

    CHECK_ERR(phc_config_load(&c, tmpdir, &e), e, PHC_ERR_CONFIG, "not a regular file");

    char *t = text_with(NULL, NULL);
    char *good = write_file("good.cnf", t, strlen(t));
    free(t);
    CHECK(phc_config_load(&c, good, &e) == PHC_OK);
    if (c) {
        CHECK(strcmp(c->name, good) == 0);
        CHECK(c->port == 8443);
        /* A running client re-reads its trust keys from this file (issue 13, item 3). */
        CHECK(phc__config_path(c) && strcmp(phc__config_path(c), good) == 0);
        phc_config *src = NULL, *mixed = NULL;
        t = text_with("ca_file", "/etc/phconnect/new-ca.pem");
        CHECK(parse_str(&src, t, &e) == PHC_OK);
        free(t);
        CHECK(src && phc__config_path(src) == NULL); /* parsed from memory: no file */
        if (src) {
            phc_config *prog = NULL;
            CHECK(phc_config_new(&prog, &e) == PHC_OK);
            CHECK(prog && phc__config_path(prog) == NULL);
            phc_config_free(prog);
            CHECK(phc_config_set(src, "pinned_ips", "192.0.2.77", &e) == PHC_OK);
            CHECK(phc_config_set(src, "timeout", "7", &e) == PHC_OK);
            CHECK(phc__config_with_trust(&mixed, c, src, &e) == PHC_OK);
        }
        if (mixed) {
            CHECK(strcmp(mixed->ca_file, "/etc/phconnect/new-ca.pem") == 0); /* from src */
            CHECK(mixed->n_pinned_ips == 1 && strcmp(mixed->pinned_ips[0], "192.0.2.77") == 0);
            CHECK(mixed->n_ca_sha256 == 2);
            CHECK(mixed->timeout == 60); /* not a trust key: from the base */
            CHECK(strcmp(phc__config_path(mixed), good) == 0);
        }
        phc_config_free(mixed);
        mixed = NULL;
        /* a trust key the new file does not have is unset */
        t = text_with("pinned_ips", NULL);
        phc_config_free(src);
        src = NULL;
        CHECK(parse_str(&src, t, &e) == PHC_OK);
        free(t);
        CHECK(src && phc__config_with_trust(&mixed, c, src, &e) == PHC_OK);
        CHECK(mixed && mixed->n_pinned_ips == 0);
        phc_config_free(mixed);
        phc_config_free(src);
    }
    phc_config_free(c);
    c = NULL;

    t = text_with("timeout", "forever");
    char *bad = write_file("bad.cnf", t, strlen(t));
    free(t);
    char want[256];
    snprintf(want, sizeof(want), "config %s line 17: key 'timeout': must be a whole number", bad);
    CHECK_ERR(phc_config_load(&c, bad, &e), e, PHC_ERR_CONFIG, want);

    size_t big = 1024 * 1024 + 10;
    char *huge = malloc(big);
    memset(huge, '\n', big);
    char *hugep = write_file("huge.cnf", huge, big);
    free(huge);
    CHECK_ERR(phc_config_load(&c, hugep, &e), e, PHC_ERR_CONFIG, "larger than 1048576 bytes");

    unlink(good);
    unlink(bad);
    unlink(hugep);
    free(good);
    free(bad);
    free(hugep);
}

static void test_default_path(void)
{
    unsetenv("PHC_CONFIG");
    CHECK(strcmp(phc_config_default_path(), "/etc/phconnect/phconnect.cnf") == 0);
    setenv("PHC_CONFIG", "", 1);
    CHECK(strcmp(phc_config_default_path(), "/etc/phconnect/phconnect.cnf") == 0);
    setenv("PHC_CONFIG", "/tmp/other.cnf", 1);
    CHECK(strcmp(phc_config_default_path(), "/tmp/other.cnf") == 0);
    unsetenv("PHC_CONFIG");
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/phc_config_test.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_good();
    test_defaults();
    test_url();
    test_fingerprints();
    test_addresses();
    test_uris();
    test_secret_sources();
    test_token_path_and_date();
    test_numbers();
    test_rotation_keys();
    test_empty_values();
    test_keys_and_sections();
    test_syntax();
    test_required();
    test_cross_checks();
    test_programmatic();
    test_load();
    test_default_path();
    rmdir(tmpdir);
    TEST_MAIN_END();
}
