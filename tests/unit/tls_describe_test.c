/* The connection line of the -v log (lib/tls_describe.c): without a TLS object, with one
 * before its handshake, and after a real in-memory handshake with the test PKI's server. */
#include "tls_describe.h"
#include "testutil.h"
#include "trust.h"

#include <openssl/pem.h>

static void test_no_ssl(void)
{
    char out[512];
    phc__tls_describe(out, sizeof(out), NULL, "127.0.0.1", 8443, 1, "CN=client");
    CHECK(strcmp(out, "new connection to 127.0.0.1 port 8443, ? ?, TLS session resumed: no, "
                      "server '?' issued by '?', client certificate 'CN=client'") == 0);
    phc__tls_describe(out, sizeof(out), NULL, NULL, 0, 0, NULL);
    CHECK(strncmp(out, "reused connection to ? port 0,", 30) == 0);
    char small[8] = "xxxxxxx";
    phc__tls_describe(small, sizeof(small), NULL, "127.0.0.1", 1, 1, "c");
    CHECK(strcmp(small, "new con") == 0);
    phc__tls_describe(small, 0, NULL, "127.0.0.1", 1, 1, "c"); /* writes nothing */
    CHECK(strcmp(small, "new con") == 0);
}

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return k;
}

/* Runs the handshake between two SSL objects joined by a BIO pair. */
static int handshake(SSL *c, SSL *s)
{
    for (int i = 0; i < 100; i++) {
        int rc = SSL_do_handshake(c), rs = SSL_do_handshake(s);
        if (rc == 1 && rs == 1)
            return 1;
        if ((rc != 1 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ) ||
            (rs != 1 && SSL_get_error(s, rs) != SSL_ERROR_WANT_READ))
            return 0;
    }
    return 0;
}

static void test_handshake(void)
{
    const char *pki = getenv("PHC_PKI");
    char cert_path[1024], key_path[1024];
    snprintf(cert_path, sizeof(cert_path), "%s/server.pem", pki ? pki : ".");
    snprintf(key_path, sizeof(key_path), "%s/server.key", pki ? pki : ".");
    X509 *cert = load_cert(cert_path);
    EVP_PKEY *key = load_key(key_path);
    CHECK(cert && key);
    if (!cert || !key) {
        fprintf(stderr, "no server certificate in %s\n", pki ? pki : "(PHC_PKI unset)");
        X509_free(cert);
        EVP_PKEY_free(key);
        return;
    }
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
    CHECK(SSL_CTX_use_certificate(sctx, cert) == 1 && SSL_CTX_use_PrivateKey(sctx, key) == 1);
    SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    char out[1024];
    /* before the handshake: no peer yet */
    phc__tls_describe(out, sizeof(out), c, "::1", 443, 1, "CN=me");
    CHECK(strstr(out, "server '?' issued by '?'") != NULL);
    CHECK(strstr(out, "TLS session resumed: no") != NULL);
    BIO *cb = NULL, *sb = NULL;
    CHECK(BIO_new_bio_pair(&cb, 0, &sb, 0) == 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    CHECK(handshake(c, s));
    phc__tls_describe(out, sizeof(out), c, "127.0.0.1", 8443, 0, "CN=me");
    char subj[256];
    phc__name_str(subj, sizeof(subj), X509_get_subject_name(cert));
    char want[600];
    snprintf(want, sizeof(want), "server '%s' issued by '", subj);
    CHECK(strncmp(out, "reused connection to 127.0.0.1 port 8443, TLSv1.3 TLS_", 54) == 0);
    CHECK(strstr(out, want) != NULL);
    CHECK(strstr(out, "client certificate 'CN=me'") != NULL);
    if (t_fail)
        fprintf(stderr, "got: %s\n", out);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    X509_free(cert);
    EVP_PKEY_free(key);
}

int main(void)
{
    test_no_ssl();
    test_handshake();
    TEST_MAIN_END();
}
