/* Unit tests for lib/config_keys.c: every key's validation, through the file and through
 * phc_config_set alike (one validation path, the same words). */
#include "configtest.h"

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
    c = good_with("cert", "/etc/client.pem");
    if (c)
        CHECK(strcmp(c->cert, "/etc/client.pem") == 0);
    phc_config_free(c);
}

static void test_secret_sources(void)
{
    const char *pin_msg = "pin must be file:PATH or env:NAME";
    phc_errbuf e = {0};
    phc_config *c = NULL;

    /* a literal PIN is refused and never echoed, from the file or programmatically */
    CHECK_ERR(parse_with(&c, "pin", "4711", &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 11: key 'pin': pin must be file:PATH or env:NAME");
    CHECK(strstr(e.msg, "4711") == NULL);
    CHECK_ERR(set_one("pin", "4711", &e), e, PHC_ERR_CONFIG, pin_msg);
    CHECK(strstr(e.msg, "4711") == NULL);
    BAD("pin", "file:", pin_msg);
    BAD("pin", "file:/", pin_msg);
    BAD("pin", "env:1BAD", pin_msg);
    BAD("pin", "env:", pin_msg);
    BAD("pin", "env:A-B", pin_msg);
    BAD("pin", "pkcs11:token=t;object=pin", pin_msg);

    CHECK_ERR(parse_with(&c, "client_secret", "s3cr3t-value", &e), e, PHC_ERR_CONFIG,
              "line 13: key 'client_secret': client_secret must be file:PATH, env:NAME or a "
              "pkcs11: URI");
    CHECK(strstr(e.msg, "s3cr3t") == NULL);
    BAD("client_secret", "file:", "client_secret must be file:PATH, env:NAME");

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

int main(void)
{
    if (config_test_begin())
        return 1;
    test_url();
    test_fingerprints();
    test_addresses();
    test_uris();
    test_secret_sources();
    test_token_path_and_date();
    test_numbers();
    test_rotation_keys();
    test_empty_values();
    config_test_end();
    TEST_MAIN_END();
}
