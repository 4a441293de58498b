/* hsm unit: opens real SoftHSM tokens made by tests/fixtures/token.sh (one per case, in a
 * private temporary directory), checks every refusal with its code and message, and proves
 * that the EVP_PKEY libp11 hands out signs on the token through OpenSSL's EVP API (PKCS#1
 * v1.5, PSS, ECDSA), also from several threads at once. */
#include "hsm.h"
#include "testtoken.h"
#include "testutil.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static EVP_PKEY *g_ca;

/* ---------------------------------------------------------------------------------- */
/* Fixtures */

static int tok_addkey(const tok *t, const char *type, const char *label, const char *id)
{
    int rc = sh("bash '%s/tests/fixtures/token.sh' addkey '%s' %s %s %s", g_src, t->dir, type,
                label, id);
    CHECK(rc == 0);
    return rc;
}

static int tok_putcert(const tok *t, const char *pem, const char *label, const char *id)
{
    int rc = sh("bash '%s/tests/fixtures/token.sh' putcert '%s' '%s' %s %s", g_src, t->dir, pem,
                label, id);
    CHECK(rc == 0);
    return rc;
}

static EVP_PKEY *load_pub(const tok *t, const char *id)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/pub-%s.pem", t->dir, id);
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    CHECK(k != NULL);
    return k;
}

/* Writes a certificate for pub, signed by the test CA, valid from now+nb_days to
 * now+na_days, to t->dir/name. Returns the path in out. */
static int make_cert(char *out, size_t outlen, const tok *t, const char *name, EVP_PKEY *pub,
                     long serial, long nb_days, long na_days)
{
    snprintf(out, outlen, "%s/%s", t->dir, name);
    X509 *c = X509_new();
    X509_NAME *n = X509_NAME_new();
    int ok = c && n && X509_set_version(c, 2) &&
             ASN1_INTEGER_set(X509_get_serialNumber(c), serial) &&
             X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"client", -1,
                                        -1, 0) &&
             X509_set_subject_name(c, n) && X509_set_issuer_name(c, n) &&
             X509_time_adj_ex(X509_getm_notBefore(c), (int)nb_days, 0, NULL) &&
             X509_time_adj_ex(X509_getm_notAfter(c), (int)na_days, 0, NULL) &&
             X509_set_pubkey(c, pub) && X509_sign(c, g_ca, EVP_sha256()) > 0;
    FILE *f = ok ? fopen(out, "w") : NULL;
    ok = f && PEM_write_X509(f, c);
    if (f)
        fclose(f);
    X509_NAME_free(n);
    X509_free(c);
    CHECK(ok);
    return ok ? 0 : -1;
}

/* make_cert + token.sh putcert. */
static int put_new_cert(const tok *t, const char *name, EVP_PKEY *pub, long serial, long nb,
                        long na, const char *label, const char *id)
{
    char path[PATH_MAX + 64];
    if (make_cert(path, sizeof(path), t, name, pub, serial, nb, na))
        return -1;
    return tok_putcert(t, path, label, id);
}

static long cert_serial(X509 *c)
{
    return c ? ASN1_INTEGER_get(X509_get0_serialNumber(c)) : -1;
}

/* Log capture */
static char g_log[8192];
static void log_cb(void *ud, phc_log_level level, const char *msg)
{
    (void)ud;
    if (getenv("PHC_TEST_VERBOSE"))
        fprintf(stderr, "log %d: %s\n", (int)level, msg);
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof(g_log) - n, "%d %s\n", (int)level, msg);
}
static const phc_log g_logger = {log_cb, NULL, PHC_LOG_DEBUG};

/* Does s contain w with no letter or digit either side? */
static int has_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = strstr(s, w); p; p = strstr(p + 1, w)) {
        int before = p > s && isalnum((unsigned char)p[-1]);
        int after = isalnum((unsigned char)p[n]);
        if (!before && !after)
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Signing through OpenSSL's EVP API with the token key, verified with the certificate's
 * public key. mode: 0 PKCS#1 v1.5 (or ECDSA), 1 RSA-PSS as TLS 1.3 uses it. */

static int sign_verify(EVP_PKEY *key, EVP_PKEY *pub, int pss, int quiet)
{
    static const unsigned char msg[] = "phconnect hsm unit test message";
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    EVP_PKEY_CTX *pc = NULL;
    int ok = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m)
        return 0;
    /* The same calls libssl makes for a TLS 1.3 CertificateVerify. */
    if (EVP_DigestSignInit_ex(m, &pc, "SHA256", NULL, NULL, key, NULL) != 1)
        goto out;
    if (pss && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) != 1))
        goto out;
    if (EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) != 1)
        goto out;
    EVP_MD_CTX_reset(m);
    if (EVP_DigestVerifyInit_ex(m, &pc, "SHA256", NULL, NULL, pub, NULL) != 1)
        goto out;
    if (pss && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) != 1))
        goto out;
    ok = EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) == 1;
out:
    if (!ok && !quiet)
        ERR_print_errors_fp(stderr);
    ERR_clear_error();
    EVP_MD_CTX_free(m);
    return ok;
}

typedef struct signer {
    EVP_PKEY *key, *pub;
    int pss, rounds, good;
} signer;

static void *sign_thread(void *arg)
{
    signer *s = arg;
    for (int i = 0; i < s->rounds; i++)
        s->good += sign_verify(s->key, s->pub, s->pss && (i & 1), 0);
    return NULL;
}

/* 4 threads signing with the same EVP_PKEY at once. */
static void check_concurrent(EVP_PKEY *key, EVP_PKEY *pub, int pss)
{
    pthread_t th[4];
    signer s[4];
    int started = 0;
    for (int i = 0; i < 4; i++) {
        s[i] = (signer){key, pub, pss, 20, 0};
        if (pthread_create(&th[i], NULL, sign_thread, &s[i]) == 0)
            started++;
    }
    CHECK(started == 4);
    int good = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        good += s[i].good;
    }
    CHECK(good == 80);
}

/* ---------------------------------------------------------------------------------- */
/* Cases */

/* A complete good path: open, identity, sign (all schemes), concurrent signing. */
static void test_good(const char *name, const char *keytype, int rsa)
{
    tok t;
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char args[64];
    fprintf(stderr, "-- %s\n", name);
    snprintf(args, sizeof(args), "phc-test %s", keytype);
    if (tok_init(&t, name, args))
        return;
    EVP_PKEY *pub = load_pub(&t, "01");
    if (!pub || put_new_cert(&t, "cert.pem", pub, 7, -1, 30, "client", "01"))
        goto out;

    g_log[0] = '\0';
    int rc = phc__hsm_open(&h, MODULE, "pkcs11:token=phc-test;object=client;type=private", t.pin,
                           &g_logger, &e);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "open: %s\n", e.msg);
        goto out;
    }
    CHECK(strcmp(phc__hsm_token_label(h), "phc-test") == 0);
    CHECK(strstr(g_log, "PKCS#11 module '" MODULE "' loaded") != NULL);
    CHECK(strstr(g_log, "token 'phc-test' (serial ") != NULL);
    CHECK(strstr(g_log, "key 'client' (id 01) on token 'phc-test': ") != NULL);
    CHECK(strstr(g_log, rsa ? "RSA 2048 bits" : keytype[3] == 'P' ? "EC P-" : "?") != NULL);
    /* The PIN never reaches the log (random slot ids and serials may contain its digits). */
    CHECK(!has_word(g_log, "1234"));

    rc = phc__hsm_identity(h, NULL, (long long)time(NULL), &key, &cert, &e);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "identity: %s\n", e.msg);
        goto out;
    }
    CHECK(cert_serial(cert) == 7);
    CHECK(EVP_PKEY_eq(X509_get0_pubkey(cert), pub) == 1);
    CHECK(strstr(g_log, "client certificate 'CN=client' (serial 07)") != NULL);

    /* The key signs on the token; the certificate's key verifies. */
    EVP_PKEY *cpub = X509_get0_pubkey(cert);
    CHECK(sign_verify(key, cpub, 0, 0));
    if (rsa) {
        int pss = sign_verify(key, cpub, 1, 0);
        if (!pss)
            fprintf(stderr, "*** RSA-PSS signing through libp11 FAILED: no TLS 1.3 with RSA\n");
        CHECK(pss);
    }
    check_concurrent(key, cpub, rsa);
    /* A second call returns the same pair. */
    X509 *again = NULL;
    EVP_PKEY *key2 = NULL;
    CHECK(phc__hsm_identity(h, NULL, (long long)time(NULL), &key2, &again, &e) == 0);
    CHECK(key2 == key && cert_serial(again) == 7);
    X509_free(again);
out:
    X509_free(cert);
    phc__hsm_free(h);
    EVP_PKEY_free(pub);
}

static void test_module(void)
{
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    const char *uri = "pkcs11:token=phc-test;object=client";
    fprintf(stderr, "-- module\n");
    CHECK_ERR(phc__hsm_open(&h, "/nonexistent/libnothere.so", uri, "env:X", NULL, &e), e,
              PHC_ERR_HSM,
              "cannot load PKCS#11 module '/nonexistent/libnothere.so': file does "
              "not exist");
    CHECK(h == NULL);
    CHECK_ERR(phc__hsm_open(&h, "/bin/true", uri, "env:X", NULL, &e), e, PHC_ERR_HSM,
              "cannot load PKCS#11 module '/bin/true': ");
    CHECK_ERR(phc__hsm_open(&h, "/tmp", uri, "env:X", NULL, &e), e, PHC_ERR_HSM,
              "'/tmp': not a regular file");
    CHECK_ERR(phc__hsm_open(&h, "", uri, "env:X", NULL, &e), e, PHC_ERR_HSM, "no PKCS#11 module");
    const char *libz = "/usr/lib/x86_64-linux-gnu/libz.so.1";
    if (access(libz, R_OK) == 0)
        CHECK_ERR(phc__hsm_open(&h, libz, uri, "env:X", NULL, &e), e, PHC_ERR_HSM,
                  "not a PKCS#11 library (no C_GetFunctionList)");
    CHECK(h == NULL);
}

static void test_uri(void)
{
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    fprintf(stderr, "-- uri\n");
    CHECK_ERR(phc__hsm_open(&h, MODULE, NULL, "env:X", NULL, &e), e, PHC_ERR_CONFIG, "no key URI");
    CHECK_ERR(phc__hsm_open(&h, MODULE, "file:/x", "env:X", NULL, &e), e, PHC_ERR_CONFIG,
              "key URI is not a valid PKCS#11 URI");
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:object=cl%zzent", "env:X", NULL, &e), e,
              PHC_ERR_CONFIG, "key URI is not a valid PKCS#11 URI");
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:object=client?pin-value=1234", "env:X", NULL, &e),
              e, PHC_ERR_CONFIG, "must not carry a PIN");
    CHECK(strstr(e.msg, "1234") == NULL);
    CHECK_ERR(
        phc__hsm_open(&h, MODULE, "pkcs11:object=client?pin-source=file:/p", "env:X", NULL, &e), e,
        PHC_ERR_CONFIG, "must not carry a PIN");
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:objct=client", "env:X", NULL, &e), e,
              PHC_ERR_CONFIG, "attribute phconnect does not understand");
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:object=client;type=cert", "env:X", NULL, &e), e,
              PHC_ERR_CONFIG, "type= other than 'private'");
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:token=phc-test", "env:X", NULL, &e), e,
              PHC_ERR_CONFIG, "names no object");
    CHECK(h == NULL);
}

static void test_token_and_key_lookup(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    fprintf(stderr, "-- lookup\n");
    if (tok_init(&t, "lookup", "phc-test ec:P-256"))
        return;
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:token=nope;object=client", t.pin, NULL, &e), e,
              PHC_ERR_HSM,
              "no token with label 'nope' in module '" MODULE "' (tokens present: 'phc-test')");
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:token=phc-test;serial=0000;object=client", t.pin,
                            NULL, &e),
              e, PHC_ERR_HSM, "no token with label 'phc-test', serial '0000'");
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:token=phc-test;object=nokey", t.pin, NULL, &e), e,
              PHC_ERR_HSM,
              "no private key with label 'nokey' on token 'phc-test' (private keys present: "
              "'client' (id 01))");
    CHECK_ERR(
        phc__hsm_open(&h, MODULE, "pkcs11:token=phc-test;object=client;id=%02", t.pin, NULL, &e), e,
        PHC_ERR_HSM, "no private key with label 'client' (id 02) on token 'phc-test'");
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:id=%05", t.pin, NULL, &e), e, PHC_ERR_HSM,
              "no private key with id 05 on token 'phc-test'");
    /* Found by id alone, and by model (no label): the only token is used. */
    CHECK(phc__hsm_open(&h, MODULE, "pkcs11:model=SoftHSM%20v2;id=%01", t.pin, NULL, &e) == 0);
    phc__hsm_free(h);
    h = NULL;

    /* A second token: a URI naming none is ambiguous. */
    CHECK(sh("softhsm2-util --init-token --free --label other --so-pin 12345678 --pin 1234 "
             ">/dev/null") == 0);
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:object=client", t.pin, NULL, &e), e, PHC_ERR_HSM,
              "has 2 tokens (");
    CHECK(strstr(e.msg, "'phc-test'") && strstr(e.msg, "'other'") &&
          strstr(e.msg, "the key URI names none: add token="));
    CHECK(phc__hsm_open(&h, MODULE, "pkcs11:token=phc-test;object=client", t.pin, NULL, &e) == 0);
    phc__hsm_free(h);
    h = NULL;
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:token=other;object=client", t.pin, NULL, &e), e,
              PHC_ERR_HSM, "no private key with label 'client' on token 'other'");
    CHECK(h == NULL);
}

static void test_pin(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    char bad[PATH_MAX + 48], empty[PATH_MAX + 48];
    const char *uri = "pkcs11:token=phc-test;object=client";
    fprintf(stderr, "-- pin\n");
    if (tok_init(&t, "pin", "phc-test ec:P-256"))
        return;
    tok_pin_file(&t, "badpin", "9999\n", bad, sizeof(bad));
    tok_pin_file(&t, "emptypin", "", empty, sizeof(empty));
    CHECK_ERR(phc__hsm_open(&h, MODULE, uri, bad, NULL, &e), e, PHC_ERR_PIN,
              "PIN rejected by token 'phc-test' (CKR_PIN_INCORRECT); not retried");
    CHECK(strstr(e.msg, "9999") == NULL);
    /* One attempt only: the token still accepts the right PIN (not locked, not logged in);
     * SoftHSM flags the failed attempt, which is passed on as a warning. */
    g_log[0] = '\0';
    CHECK(phc__hsm_open(&h, MODULE, uri, t.pin, &g_logger, &e) == 0);
    CHECK(strstr(g_log, "1 token 'phc-test': wrong PINs were entered recently") != NULL);
    phc__hsm_free(h);
    h = NULL;

    unsetenv("PHC_TEST_UNSET_PIN");
    CHECK_ERR(phc__hsm_open(&h, MODULE, uri, "env:PHC_TEST_UNSET_PIN", NULL, &e), e, PHC_ERR_PIN,
              "PHC_TEST_UNSET_PIN");
    CHECK_ERR(phc__hsm_open(&h, MODULE, uri, empty, NULL, &e), e, PHC_ERR_PIN, "PIN");
    setenv("PHC_TEST_PIN", "1234", 1);
    CHECK(phc__hsm_open(&h, MODULE, uri, "env:PHC_TEST_PIN", NULL, &e) == 0);
    unsetenv("PHC_TEST_PIN");
    phc__hsm_free(h);
}

static void test_unsupported(const char *name, const char *keytype, const char *want)
{
    tok t;
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    char args[64];
    fprintf(stderr, "-- %s\n", name);
    snprintf(args, sizeof(args), "phc-test %s", keytype);
    if (tok_init(&t, name, args))
        return;
    CHECK_ERR(phc__hsm_open(&h, MODULE, "pkcs11:object=client", t.pin, NULL, &e), e, PHC_ERR_HSM,
              want);
    CHECK(h == NULL);
}

typedef struct opener {
    const tok *t;
    int good;
} opener;

static void *open_thread(void *arg)
{
    opener *o = arg;
    for (int i = 0; i < 3; i++) {
        phc_hsm *h = NULL;
        phc_errbuf e = {0};
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        if (phc__hsm_open(&h, MODULE, "pkcs11:object=client", o->t->pin, NULL, &e) == 0 &&
            phc__hsm_identity(h, NULL, (long long)time(NULL), &key, &cert, &e) == 0 &&
            sign_verify(key, X509_get0_pubkey(cert), 0, 0))
            o->good++;
        else
            fprintf(stderr, "open_thread: %s\n", e.msg);
        X509_free(cert);
        phc__hsm_free(h);
    }
    return NULL;
}

/* Several handles on one token in one process: they share the loaded module, so freeing one
 * leaves the others working; opening and freeing from several threads at once is safe. */
static void test_shared(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_hsm *h1 = NULL, *h2 = NULL, *h3 = NULL;
    EVP_PKEY *k1 = NULL, *k2 = NULL, *pub = NULL;
    X509 *c1 = NULL, *c2 = NULL;
    const char *uri = "pkcs11:token=phc-test;object=client";
    fprintf(stderr, "-- shared\n");
    if (tok_init(&t, "shared", "phc-test ec:P-256"))
        return;
    pub = load_pub(&t, "01");
    if (!pub || put_new_cert(&t, "cert.pem", pub, 41, -1, 30, "client", "01"))
        goto out;
    CHECK(phc__hsm_open(&h1, MODULE, uri, t.pin, NULL, &e) == 0);
    g_log[0] = '\0';
    CHECK(phc__hsm_open(&h2, MODULE, uri, t.pin, &g_logger, &e) == 0);
    CHECK(strstr(g_log, "token 'phc-test': already logged in by this process") != NULL);
    /* The PIN source must still be there. */
    unsetenv("PHC_TEST_UNSET_PIN");
    CHECK_ERR(phc__hsm_open(&h3, MODULE, uri, "env:PHC_TEST_UNSET_PIN", NULL, &e), e, PHC_ERR_PIN,
              "PHC_TEST_UNSET_PIN");
    CHECK(h3 == NULL);
    if (!h1 || !h2)
        goto out;
    CHECK(phc__hsm_identity(h1, NULL, (long long)time(NULL), &k1, &c1, &e) == 0);
    CHECK(phc__hsm_identity(h2, NULL, (long long)time(NULL), &k2, &c2, &e) == 0);
    if (!k1 || !k2)
        goto out;
    CHECK(sign_verify(k1, pub, 0, 0) && sign_verify(k2, pub, 0, 0));
    phc__hsm_free(h1);
    h1 = NULL;
    CHECK(sign_verify(k2, pub, 0, 0));
    X509_free(c2);
    c2 = NULL;
    CHECK(phc__hsm_identity(h2, NULL, (long long)time(NULL), &k2, &c2, &e) == 0);
    phc__hsm_free(h2);
    h2 = NULL;

    pthread_t th[4];
    opener o[4];
    int started = 0, good = 0;
    for (int i = 0; i < 4; i++) {
        o[i] = (opener){&t, 0};
        if (pthread_create(&th[i], NULL, open_thread, &o[i]) == 0)
            started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        good += o[i].good;
    }
    CHECK(started == 4 && good == 12);
out:
    X509_free(c1);
    X509_free(c2);
    phc__hsm_free(h1);
    phc__hsm_free(h2);
    EVP_PKEY_free(pub);
}

/* Certificates: none, mismatching, expired, not yet valid, explicit file and URI. */
static void test_certs(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    EVP_PKEY *key = NULL, *other = NULL, *pub = NULL;
    X509 *cert = NULL;
    char good[PATH_MAX + 64], bad[PATH_MAX + 64], path[PATH_MAX + 64];
    long long now = (long long)time(NULL);
    const char *uri = "pkcs11:token=phc-test;object=client;type=private";
    fprintf(stderr, "-- certs\n");
    if (tok_init(&t, "certs", "phc-test ec:P-256"))
        return;
    pub = load_pub(&t, "01");
    other = EVP_EC_gen("P-256");
    if (!pub || !other || make_cert(good, sizeof(good), &t, "good.pem", pub, 21, -1, 30) ||
        make_cert(bad, sizeof(bad), &t, "other.pem", other, 22, -1, 30))
        goto out;
    if (phc__hsm_open(&h, MODULE, uri, t.pin, &g_logger, &e)) {
        CHECK(0);
        fprintf(stderr, "open: %s\n", e.msg);
        goto out;
    }
    /* No certificate object yet. */
    CHECK_ERR(phc__hsm_identity(h, NULL, now, &key, &cert, &e), e, PHC_ERR_HSM,
              "no certificate on token 'phc-test' for key 'client' (id 01)");
    CHECK(key == NULL && cert == NULL);

    /* Explicit PEM files. */
    CHECK(phc__hsm_identity(h, good, now, &key, &cert, &e) == 0);
    CHECK(cert_serial(cert) == 21 && key != NULL);
    if (key && cert)
        CHECK(sign_verify(key, X509_get0_pubkey(cert), 0, 0));
    X509_free(cert);
    cert = NULL;
    CHECK_ERR(phc__hsm_identity(h, bad, now, &key, &cert, &e), e, PHC_ERR_HSM,
              "client certificate 'CN=client' (serial 16) does not match key 'client' (id 01) "
              "on token 'phc-test'");
    CHECK_ERR(phc__hsm_identity(h, good, now + 40LL * 86400, &key, &cert, &e), e, PHC_ERR_HSM,
              "client certificate 'CN=client' (serial 15) for key 'client' (id 01) on token "
              "'phc-test' expired on ");
    snprintf(path, sizeof(path), "%s/missing.pem", t.dir);
    CHECK_ERR(phc__hsm_identity(h, path, now, &key, &cert, &e), e, PHC_ERR_CONFIG,
              "cannot read certificate file '");
    CHECK(strstr(e.msg, "missing.pem") != NULL);
    snprintf(path, sizeof(path), "%s/softhsm2.conf", t.dir);
    CHECK_ERR(phc__hsm_identity(h, path, now, &key, &cert, &e), e, PHC_ERR_CONFIG,
              "softhsm2.conf': no PEM certificate");
    CHECK(cert == NULL);
    phc__hsm_free(h);
    h = NULL;

    /* A certificate for another key under the key's id: never used (skipped with a warning);
     * with nothing else there, the refusal names it. */
    if (tok_putcert(&t, bad, "client", "01"))
        goto out;
    if (phc__hsm_open(&h, MODULE, uri, t.pin, NULL, &e)) {
        CHECK(0);
        goto out;
    }
    CHECK_ERR(phc__hsm_identity(h, NULL, now, &key, &cert, &e), e, PHC_ERR_HSM,
              "client certificate 'CN=client' (serial 16) on token 'phc-test' is not used: it "
              "does not match key 'client' (id 01)");
    /* By URI: the object label/id finds it, the key check refuses it. */
    CHECK_ERR(phc__hsm_identity(h, "pkcs11:object=client;type=cert", now, &key, &cert, &e), e,
              PHC_ERR_HSM, "does not match key 'client' (id 01)");
    CHECK_ERR(phc__hsm_identity(h, "pkcs11:object=nocert;type=cert", now, &key, &cert, &e), e,
              PHC_ERR_HSM, "no certificate with label 'nocert' on token 'phc-test'");
    CHECK_ERR(phc__hsm_identity(h, "pkcs11:object=client;type=private", now, &key, &cert, &e), e,
              PHC_ERR_CONFIG, "certificate URI has type= other than 'cert'");
    CHECK_ERR(phc__hsm_identity(h, "pkcs11:token=other;object=client", now, &key, &cert, &e), e,
              PHC_ERR_CONFIG, "names a token with label 'other', but the key is on token");
    /* An explicit matching file still works. */
    CHECK(phc__hsm_identity(h, good, now, &key, &cert, &e) == 0);
    X509_free(cert);
    cert = NULL;
    phc__hsm_free(h);
    h = NULL;

    /* The right certificate by URI (label "mine", id 01). */
    if (tok_putcert(&t, good, "mine", "01"))
        goto out;
    if (phc__hsm_open(&h, MODULE, uri, t.pin, NULL, &e)) {
        CHECK(0);
        goto out;
    }
    CHECK(phc__hsm_identity(h, "pkcs11:token=phc-test;object=mine;type=cert", now, &key, &cert,
                            &e) == 0);
    CHECK(cert_serial(cert) == 21);
    X509_free(cert);
    cert = NULL;
out:
    X509_free(cert);
    phc__hsm_free(h);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(other);
}

static void test_validity(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    EVP_PKEY *key = NULL, *pub = NULL;
    X509 *cert = NULL;
    long long now = (long long)time(NULL);
    const char *uri = "pkcs11:token=phc-test;object=client";
    fprintf(stderr, "-- validity\n");
    if (tok_init(&t, "validity", "phc-test ec:P-256"))
        return;
    pub = load_pub(&t, "01");
    /* Only an expired certificate, then only a not-yet-valid one. */
    if (!pub || put_new_cert(&t, "old.pem", pub, 31, -400, -35, "client", "01"))
        goto out;
    if (phc__hsm_open(&h, MODULE, uri, t.pin, NULL, &e)) {
        CHECK(0);
        goto out;
    }
    CHECK_ERR(phc__hsm_identity(h, NULL, now, &key, &cert, &e), e, PHC_ERR_HSM,
              "client certificate 'CN=client' (serial 1F) for key 'client' (id 01) on token "
              "'phc-test' expired on 20");
    /* Judged at the time given. */
    CHECK(phc__hsm_identity(h, NULL, now - 100LL * 86400, &key, &cert, &e) == 0);
    CHECK(cert_serial(cert) == 31);
    X509_free(cert);
    cert = NULL;
    CHECK_ERR(phc__hsm_identity(h, NULL, now - 500LL * 86400, &key, &cert, &e), e, PHC_ERR_HSM,
              "(serial 1F) for key 'client' (id 01) on token 'phc-test' is not valid before 20");
out:
    X509_free(cert);
    phc__hsm_free(h);
    EVP_PKEY_free(pub);
}

/* Rotation: keys 01 and 02 (same label) with certificates valid now; the newest wins. Key 03
 * has no certificate (pending) and is never chosen. */
static void test_rotation(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    EVP_PKEY *key = NULL, *p1 = NULL, *p2 = NULL, *p3 = NULL;
    X509 *cert = NULL;
    long long now = (long long)time(NULL);
    fprintf(stderr, "-- rotation\n");
    if (tok_init(&t, "rotation", "phc-test ec:P-256 client 01") ||
        tok_addkey(&t, "ec:P-256", "client", "02") || tok_addkey(&t, "ec:P-384", "client", "03"))
        return;
    p1 = load_pub(&t, "01");
    p2 = load_pub(&t, "02");
    p3 = load_pub(&t, "03");
    if (!p1 || !p2 || !p3 || put_new_cert(&t, "c1.pem", p1, 1, -30, 300, "client", "01") ||
        put_new_cert(&t, "c2.pem", p2, 2, -2, 365, "client", "02") ||
        put_new_cert(&t, "c1b.pem", p1, 3, 10, 400, "client", "01"))
        goto out;
    g_log[0] = '\0';
    if (phc__hsm_open(&h, MODULE, "pkcs11:token=phc-test;object=client", t.pin, &g_logger, &e)) {
        CHECK(0);
        fprintf(stderr, "open: %s\n", e.msg);
        goto out;
    }
    CHECK(strstr(g_log, "key 'client' (id 03) on token 'phc-test': EC P-384") != NULL);
    CHECK(phc__hsm_identity(h, NULL, now, &key, &cert, &e) == 0);
    CHECK(cert_serial(cert) == 2);
    if (key)
        CHECK(sign_verify(key, p2, 0, 0));
    if (key)
        CHECK(!sign_verify(key, p1, 0, 1));
    X509_free(cert);
    cert = NULL;
    /* In 20 days the not-yet-valid certificate of key 01 is the newest valid one. */
    CHECK(phc__hsm_identity(h, NULL, now + 20LL * 86400, &key, &cert, &e) == 0);
    CHECK(cert_serial(cert) == 3);
    if (key)
        CHECK(sign_verify(key, p1, 0, 0));
    X509_free(cert);
    cert = NULL;
    /* The key URI narrowed to the pending key: it has no certificate. */
    phc__hsm_free(h);
    h = NULL;
    if (phc__hsm_open(&h, MODULE, "pkcs11:object=client;id=%03", t.pin, NULL, &e) == 0)
        CHECK_ERR(phc__hsm_identity(h, NULL, now, &key, &cert, &e), e, PHC_ERR_HSM,
                  "no certificate on token 'phc-test' for key 'client' (id 03)");
    else
        CHECK(0);
out:
    X509_free(cert);
    phc__hsm_free(h);
    EVP_PKEY_free(p1);
    EVP_PKEY_free(p2);
    EVP_PKEY_free(p3);
}

int main(void)
{
    if (tt_begin("hsm"))
        return 1;
    g_ca = EVP_EC_gen("P-256");
    CHECK(g_ca != NULL);

    test_module();
    test_uri();
    phc__hsm_free(NULL);
    CHECK(strcmp(phc__hsm_token_label(NULL), "") == 0);
    if (tt_have_softhsm()) {
        test_good("rsa2048", "rsa:2048", 1);
        test_good("ecp256", "ec:P-256", 0);
        test_good("ecp384", "ec:P-384", 0);
        test_token_and_key_lookup();
        test_pin();
        test_shared();
        test_unsupported("rsa1024", "rsa:1024",
                         "key 'client' (id 01) on token 'phc-test' is RSA 1024 bits: supported "
                         "are RSA 2048-4096 and EC P-256/P-384");
        test_unsupported("ecp521", "ec:P-521", "is EC secp521r1 (521 bits)");
        test_certs();
        test_validity();
        test_rotation();
    }

    EVP_PKEY_free(g_ca);
    tt_end();
    TEST_MAIN_END();
}
