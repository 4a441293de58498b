#include "testutil.h"
#include "trust.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char *pki;

static char *path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", pki, name);
    return p;
}

static X509 *load_cert(const char *name)
{
    FILE *f = fopen(path(name), "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return x;
}

static int read_pin(const char *name, unsigned char out[32])
{
    FILE *f = fopen(path(name), "r");
    char hex[128] = "";
    if (!f || !fgets(hex, sizeof(hex), f)) {
        if (f)
            fclose(f);
        return 0;
    }
    fclose(f);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return 0;
        out[i] = (unsigned char)v;
    }
    return 1;
}

static void test_load(void)
{
    phc_trust *t = NULL;
    phc_errbuf e = {0};
    CHECK(phc__trust_load(&t, path("ca.pem"), NULL, 0, &e) == PHC_OK);
    CHECK(t && phc__trust_store(t) != NULL);
    X509 *ca = load_cert("ca.pem"), *other = load_cert("other-ca.pem");
    CHECK(ca && other);
    CHECK(phc__trust_is_pinned(t, ca) == 1);
    CHECK(phc__trust_is_pinned(t, other) == 0);
    CHECK(phc__trust_earliest_expiry(t) > (long long)time(NULL));
    X509_free(ca);
    X509_free(other);
    phc__trust_free(t);

    t = NULL;
    CHECK_ERR(phc__trust_load(&t, "/nonexistent/ca.pem", NULL, 0, &e), e, PHC_ERR_CONFIG,
              "/nonexistent/ca.pem");
    CHECK(t == NULL);

    char tmpl[] = "/tmp/phc-trust-XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    CHECK_ERR(phc__trust_load(&t, tmpl, NULL, 0, &e), e, PHC_ERR_CONFIG, "holds no PEM");
    FILE *f = fopen(tmpl, "w");
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    CHECK_ERR(phc__trust_load(&t, tmpl, NULL, 0, &e), e, PHC_ERR_CONFIG, "malformed");
    close(fd);
    unlink(tmpl);
    phc__trust_free(NULL);
}

static void test_pins(void)
{
    unsigned char pins[2][32];
    phc_errbuf e = {0};
    phc_trust *t = NULL;
    CHECK(read_pin("ca-sha256.txt", pins[0]) && read_pin("int-sha256.txt", pins[1]));
    CHECK(phc__trust_load(&t, path("ca.pem"), (const unsigned char(*)[32])pins, 1, &e) == PHC_OK);
    phc__trust_free(t);
    t = NULL;
    CHECK_ERR(phc__trust_load(&t, path("ca.pem"), (const unsigned char(*)[32])pins + 1, 1, &e), e,
              PHC_ERR_CONFIG, "not listed in ca_sha256");
    CHECK(strstr(e.msg, "Powerhub Test Root CA") != NULL);
    CHECK_ERR(phc__trust_load(&t, path("ca.pem"), (const unsigned char(*)[32])pins, 2, &e), e,
              PHC_ERR_CONFIG, "matches no certificate");
    CHECK_ERR(phc__trust_load(&t, path("ca-both.pem"), (const unsigned char(*)[32])pins, 1, &e), e,
              PHC_ERR_CONFIG, "Public Test CA");
    CHECK(t == NULL);
}

static void test_verify(void)
{
    phc_trust *t = NULL;
    phc_errbuf e = {0};
    CHECK(phc__trust_load(&t, path("ca.pem"), NULL, 0, &e) == PHC_OK);
    long long now = (long long)time(NULL);
    X509 *client = load_cert("client-file.pem"), *other = load_cert("client-other.pem");
    X509 *server = load_cert("server.pem"), *expired = load_cert("server-expired.pem");
    CHECK(client && other && server && expired);
    CHECK(phc__trust_verify(t, client, NULL, X509_PURPOSE_SSL_CLIENT, now, &e) == PHC_OK);
    CHECK_ERR(phc__trust_verify(t, other, NULL, X509_PURPOSE_SSL_CLIENT, now, &e), e, PHC_ERR_TRUST,
              "Public Test CA");
    CHECK_ERR(phc__trust_verify(t, server, NULL, X509_PURPOSE_SSL_CLIENT, now, &e), e,
              PHC_ERR_TRUST, "purpose");
    CHECK(phc__trust_verify(t, server, NULL, X509_PURPOSE_SSL_SERVER, now, &e) == PHC_OK);
    CHECK_ERR(phc__trust_verify(t, expired, NULL, X509_PURPOSE_SSL_SERVER, now, &e), e,
              PHC_ERR_TRUST, "expired");
    /* Time is the caller's: the server certificate is already expired a year from now. */
    CHECK_ERR(phc__trust_verify(t, server, NULL, X509_PURPOSE_SSL_SERVER, now + 400LL * 86400, &e),
              e, PHC_ERR_TRUST, "expired");
    X509_free(client);
    X509_free(other);
    X509_free(server);
    X509_free(expired);
    phc__trust_free(t);
}

int main(void)
{
    pki = getenv("PHC_PKI");
    if (!pki) {
        fprintf(stderr, "PHC_PKI not set: run through ctest\n");
        return 2;
    }
    test_load();
    test_pins();
    test_verify();
    TEST_MAIN_END();
}
