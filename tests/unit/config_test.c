/* Unit tests for lib/config.c: the object (defaults, get/set, freezing, references), the
 * checks across keys (required keys, combinations) and the default path. */
#include "configtest.h"

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
    if (config_test_begin())
        return 1;
    test_good();
    test_defaults();
    test_required();
    test_cross_checks();
    test_programmatic();
    test_default_path();
    config_test_end();
    TEST_MAIN_END();
}
