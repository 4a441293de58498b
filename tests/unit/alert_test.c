/* alert.c: the alert -> message mapping for every refusal alert, with and without a client
 * certificate, and the capture itself, driven by real in-memory handshakes (TLS 1.2 and 1.3)
 * against an OpenSSL server that refuses the client in each of the ways a vendor's would. */
#include "alert.h"
#include "testutil.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <time.h>

/* A certificate made in memory: subject CN=unit-client,O=Unit Energy, issuer CN=Unit CA,
 * serial 0A1B2C. */
static X509 *make_cert(int empty_subject)
{
    X509 *x = X509_new();
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509_NAME *subj = X509_NAME_new(), *iss = X509_NAME_new();
    BIGNUM *bn = NULL;
    BN_hex2bn(&bn, "0A1B2C");
    int ok = x && k && subj && iss && bn && X509_set_version(x, 2) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
             (empty_subject ||
              (X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_ASC,
                                          (const unsigned char *)"Unit Energy", -1, -1, 0) &&
               X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
                                          (const unsigned char *)"unit-client", -1, -1, 0))) &&
             X509_NAME_add_entry_by_txt(iss, "CN", MBSTRING_ASC, (const unsigned char *)"Unit CA",
                                        -1, -1, 0) &&
             X509_set_subject_name(x, subj) && X509_set_issuer_name(x, iss) &&
             X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, k) &&
             X509_sign(x, k, EVP_sha256()) > 0;
    BN_free(bn);
    X509_NAME_free(subj);
    X509_NAME_free(iss);
    EVP_PKEY_free(k);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static phc_alert_seen seen(int received, int cert_requested)
{
    phc_alert_seen a;
    phc__alert_init(&a);
    a.received = received;
    a.cert_requested = cert_requested;
    return a;
}

static void test_names(void)
{
    CHECK(strcmp(phc__alert_name(48), "unknown_ca") == 0);
    CHECK(strcmp(phc__alert_name(116), "certificate_required") == 0);
    CHECK(strcmp(phc__alert_name(0), "close_notify") == 0);
    CHECK(phc__alert_name(255) == NULL);
}

static void test_is_refusal(void)
{
    static const int refusals[] = {42, 43, 44, 45, 46, 48, 49, 116};
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        CHECK(phc__alert_is_refusal(refusals[i], 1, 1));
        CHECK(phc__alert_is_refusal(refusals[i], 0, 0));
    }
    /* handshake_failure is a refusal only for a missing certificate the server asked for. */
    CHECK(phc__alert_is_refusal(40, 0, 1));
    CHECK(!phc__alert_is_refusal(40, 1, 1));
    CHECK(!phc__alert_is_refusal(40, 0, 0));
    static const int others[] = {0, 10, 20, 47, 50, 51, 70, 71, 80, 112};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        CHECK(!phc__alert_is_refusal(others[i], 1, 1));
}

static void test_messages(void)
{
    X509 *cert = make_cert(0);
    CHECK(cert != NULL);
    if (!cert)
        return;
    static const struct {
        int desc;
        const char *advice;
    } cases[] = {
        {48, "TLS alert unknown_ca, the server does not trust the CA that issued it; is this "
             "certificate registered with the vendor?"},
        {42, "TLS alert bad_certificate, the server cannot accept it; is this certificate "
             "registered with the vendor?"},
        {46, "TLS alert certificate_unknown, the server did not accept it; is this certificate "
             "registered with the vendor?"},
        {43, "TLS alert unsupported_certificate, the server does not take this kind of "
             "certificate; ask the vendor which key types and key usages it accepts"},
        {45, "TLS alert certificate_expired, the server considers it expired; renew it"},
        {44, "TLS alert certificate_revoked, the vendor has revoked it; request a new "
             "certificate for a new key"},
        {49, "TLS alert access_denied, the server denies it access; is this certificate "
             "registered with the vendor for this API?"},
        {116, "TLS alert certificate_required, the server did not get a certificate it "
              "accepts; is this certificate registered with the vendor?"},
    };
    const char *head = "server https://api.example.test:8443 refused client certificate "
                       "'CN=unit-client,O=Unit Energy' issued by 'CN=Unit CA' (serial 0A1B2C): ";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        phc_alert_seen a = seen(cases[i].desc, 1);
        phc_errbuf e = {0};
        char want[512];
        snprintf(want, sizeof(want), "%s%s", head, cases[i].advice);
        CHECK(phc__alert_refusal_err(&a, cert, "https://api.example.test:8443", &e) ==
              PHC_ERR_TRUST);
        CHECK(e.code == PHC_ERR_TRUST);
        CHECK(strcmp(e.msg, want) == 0);
        if (strcmp(e.msg, want) != 0)
            fprintf(stderr, "  got:  %s\n  want: %s\n", e.msg, want);
    }

    /* Without a certificate: what the configuration lacks. */
    static const int none_cases[] = {116, 40, 48};
    for (size_t i = 0; i < sizeof(none_cases) / sizeof(none_cases[0]); i++) {
        phc_alert_seen a = seen(none_cases[i], 1);
        phc_errbuf e = {0};
        CHECK_ERR(phc__alert_refusal_err(&a, NULL, "https://h.test:1", &e), e, PHC_ERR_TRUST,
                  "server https://h.test:1 requires a client certificate and this configuration "
                  "has none (client credentials only): TLS alert ");
        CHECK(strstr(e.msg, phc__alert_name(none_cases[i])) != NULL);
        CHECK(strstr(e.msg, "set pkcs11_module, key and pin") != NULL);
    }

    /* Not a refusal: nothing is said, err is left alone. */
    static const int not_refusal[][2] = {{-1, 1}, {40, 1}, {70, 1}, {20, 0}};
    for (size_t i = 0; i < sizeof(not_refusal) / sizeof(not_refusal[0]); i++) {
        phc_alert_seen a = seen(not_refusal[i][0], 1);
        phc_errbuf e = {.code = 123, .msg = "untouched"};
        CHECK(phc__alert_refusal_err(&a, not_refusal[i][1] ? cert : NULL, "https://h.test:1", &e) ==
              PHC_OK);
        CHECK(e.code == 123 && strcmp(e.msg, "untouched") == 0);
    }
    /* handshake_failure without a certificate, but the server never asked for one. */
    phc_alert_seen hf = seen(40, 0);
    phc_errbuf e = {0};
    CHECK(phc__alert_refusal_err(&hf, NULL, "https://h.test:1", &e) == PHC_OK);
    X509_free(cert);

    /* A certificate with an empty subject is still named, by issuer and serial. */
    X509 *anon = make_cert(1);
    CHECK(anon != NULL);
    phc_alert_seen ua = seen(48, 1);
    if (anon)
        CHECK_ERR(phc__alert_refusal_err(&ua, anon, "https://h.test:1", &e), e, PHC_ERR_TRUST,
                  "refused client certificate '(empty subject)' issued by 'CN=Unit CA' (serial "
                  "0A1B2C): TLS alert unknown_ca");
    X509_free(anon);
}

static void test_describe(void)
{
    char out[200];
    phc_alert_seen a = seen(70, 0);
    phc__alert_describe(out, sizeof(out), &a);
    CHECK(strcmp(out, "the server sent TLS alert protocol_version (no TLS version in common: phc "
                      "speaks TLS 1.2 and 1.3)") == 0);
    a = seen(40, 0);
    phc__alert_describe(out, sizeof(out), &a);
    CHECK(strstr(out, "the server sent TLS alert handshake_failure (no cipher suite") == out);
    a = seen(200, 0);
    phc__alert_describe(out, sizeof(out), &a);
    CHECK(strcmp(out, "the server sent TLS alert 200") == 0);
    phc__alert_reset(&a);
    a.sent = 50;
    phc__alert_describe(out, sizeof(out), &a);
    CHECK(strcmp(out, "phc ended the connection with TLS alert decode_error") == 0);
    phc__alert_reset(&a);
    phc__alert_describe(out, sizeof(out), &a);
    CHECK(strstr(out, "the connection ended without a TLS alert") == out);
}

/* ---- capture, with real handshakes over a memory BIO pair ---- */

static char pki[512];

static const char *pki_file(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", pki, name);
    return buf;
}

struct server_opts {
    int version;           /* max TLS version */
    const char *client_ca; /* file the server trusts for client certificates */
    time_t verify_at;      /* 0: now */
};

/* Runs a handshake and then reads until the client has nothing more to see. Returns the
 * record; *client_ok receives whether the client's handshake finished. */
static phc_alert_seen handshake(const struct server_opts *so, int with_cert, int *client_ok)
{
    phc_alert_seen rec;
    phc__alert_init(&rec);
    *client_ok = 0;
    char f1[600], f2[600];
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL *c = NULL, *s = NULL;
    BIO *bc = NULL, *bs = NULL;
    STACK_OF(X509_NAME) *names = NULL;
    int ok =
        cctx && sctx && SSL_CTX_set_max_proto_version(sctx, so->version) &&
        SSL_CTX_use_certificate_chain_file(sctx, pki_file(f1, sizeof(f1), "server.pem")) == 1 &&
        SSL_CTX_use_PrivateKey_file(sctx, pki_file(f2, sizeof(f2), "server.key"),
                                    SSL_FILETYPE_PEM) == 1 &&
        SSL_CTX_load_verify_locations(sctx, pki_file(f1, sizeof(f1), so->client_ca), NULL) == 1 &&
        (names = SSL_load_client_CA_file(f1)) != NULL;
    if (ok) {
        SSL_CTX_set_client_CA_list(sctx, names);
        SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        if (so->verify_at)
            X509_VERIFY_PARAM_set_time(SSL_CTX_get0_param(sctx), so->verify_at);
        SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    }
    if (ok && with_cert)
        ok = SSL_CTX_use_certificate_file(cctx, pki_file(f1, sizeof(f1), "client-file.pem"),
                                          SSL_FILETYPE_PEM) == 1 &&
             SSL_CTX_use_PrivateKey_file(cctx, pki_file(f2, sizeof(f2), "client-file.key"),
                                         SSL_FILETYPE_PEM) == 1;
    ok = ok && phc__alert_watch(cctx, &rec, NULL) == PHC_OK && (c = SSL_new(cctx)) &&
         (s = SSL_new(sctx)) && BIO_new_bio_pair(&bc, 0, &bs, 0);
    CHECK(ok);
    if (!ok)
        goto out;
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    bc = bs = NULL;
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    int cdone = 0, sdone = 0, sfail = 0;
    for (int i = 0; i < 20 && !(cdone && (sdone || sfail)); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            cdone = r == 1;
            if (r <= 0 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                break;
        }
        if (!sdone && !sfail) {
            int r = SSL_do_handshake(s);
            sdone = r == 1;
            sfail = r <= 0 && SSL_get_error(s, r) != SSL_ERROR_WANT_READ;
        }
    }
    *client_ok = cdone;
    /* With TLS 1.3 the client finished before the server judged its certificate: the verdict
     * is on the wire, and the first read takes it. */
    char buf[64];
    for (int i = 0; cdone && i < 3; i++)
        SSL_read(c, buf, sizeof(buf));
out:
    ERR_clear_error();
    BIO_free(bc);
    BIO_free(bs);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return rec;
}

static void test_capture(void)
{
    const char *dir = getenv("PHC_PKI");
    CHECK(dir != NULL);
    if (!dir)
        return;
    snprintf(pki, sizeof(pki), "%s", dir);
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    for (size_t v = 0; v < 2; v++) {
        int tls13 = versions[v] == TLS1_3_VERSION, client_ok = 0;
        /* The server trusts another CA for client certificates. */
        struct server_opts other = {versions[v], "other-ca.pem", 0};
        phc_alert_seen r = handshake(&other, 1, &client_ok);
        CHECK(r.received == SSL_AD_UNKNOWN_CA);
        CHECK(r.cert_requested == 1);
        /* TLS 1.3: the client's handshake had finished before the alert came. */
        CHECK(client_ok == tls13);
        CHECK(phc__alert_is_refusal(r.received, 1, r.cert_requested));

        /* The server's clock is years ahead: our certificate is expired there. */
        struct server_opts late = {versions[v], "ca.pem", time(NULL) + 3L * 365 * 86400};
        phc__alert_reset(&r); /* the record holds the server certificate it saw */
        r = handshake(&late, 1, &client_ok);
        CHECK(r.received == SSL_AD_CERTIFICATE_EXPIRED);

        /* No certificate at all. */
        struct server_opts ok = {versions[v], "ca.pem", 0};
        phc__alert_reset(&r); /* the record holds the server certificate it saw */
        r = handshake(&ok, 0, &client_ok);
        CHECK(r.received == (tls13 ? TLS13_AD_CERTIFICATE_REQUIRED : SSL_AD_HANDSHAKE_FAILURE));
        CHECK(r.cert_requested == 1);
        CHECK(phc__alert_is_refusal(r.received, 0, r.cert_requested));

        /* Accepted: no alert, the server's certificate is recorded. */
        phc__alert_reset(&r); /* the record holds the server certificate it saw */
        r = handshake(&ok, 1, &client_ok);
        CHECK(client_ok == 1);
        CHECK(r.received == -1 && r.sent == -1);
        CHECK(r.handshake_done == 1 && r.peer_seen == 1);
        char subj[256], iss[256];
        CHECK(phc__alert_peer_names(&r, subj, sizeof(subj), iss, sizeof(iss)) == 1);
        CHECK(strstr(subj, "CN=api.powerhub.test") != NULL);
        CHECK(strstr(iss, "CN=Powerhub Test Root CA") != NULL);
        phc__alert_reset(&r);
        CHECK(phc__alert_peer_names(&r, subj, sizeof(subj), iss, sizeof(iss)) == 0);
        CHECK(subj[0] == '\0' && iss[0] == '\0');
    }
}

int main(void)
{
    test_names();
    test_is_refusal();
    test_messages();
    test_describe();
    test_capture();
    TEST_MAIN_END();
}
