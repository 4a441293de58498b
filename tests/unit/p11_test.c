/* p11 unit: data objects (the client secret) written and read back on real SoftHSM tokens,
 * every refusal with its code and message, key generation with the attributes that keep a
 * key on the token, C_Sign, and sharing one module with libp11 (hsm.c) in one process. */
#include "hsm.h"
#include "p11.h"
#include "secret.h"
#include "testtoken.h"
#include "testutil.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <limits.h>
#include <time.h>
#include <unistd.h>

#define DATA_URI "pkcs11:token=phc-test;object=client-secret;type=data"

/* Number of data objects labelled label on the token. */
static size_t count_data(const tok *t, const char *label)
{
    phc_p11 *p = NULL;
    phc_errbuf e = {0};
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    phc_p11_match m = {CKO_DATA, label, NULL, 0, 0};
    if (phc__p11_open(&p, MODULE, DATA_URI, t->pin, NULL, &e) == 0)
        phc__p11_find(p, &m, &h, &n, &e);
    OPENSSL_free(h);
    phc__p11_close(p);
    return n;
}

static int read_is(const tok *t, const char *uri, const char *want)
{
    char *v = NULL;
    size_t n = 0;
    phc_errbuf e = {0};
    int rc = phc__p11_read_data(&v, &n, MODULE, uri, t->pin, &e);
    int ok = rc == 0 && v && n == strlen(want) && strcmp(v, want) == 0;
    if (!ok)
        fprintf(stderr, "read_data: rc=%d msg=%s\n", rc, e.msg);
    phc__secret_free(v, n);
    return ok;
}

/* ---------------------------------------------------------------------------------- */

static void test_data_roundtrip(void)
{
    tok t;
    phc_errbuf e = {0};
    if (tok_init(&t, "data", "phc-test"))
        return;
    CHECK(phc__p11_write_data(MODULE, DATA_URI, t.pin, "s3cret-1", 8, &e) == 0);
    CHECK(read_is(&t, DATA_URI, "s3cret-1"));
    CHECK(count_data(&t, "client-secret") == 1);

    /* Replacing leaves exactly one copy, with the new value. */
    CHECK(phc__p11_write_data(MODULE, DATA_URI, t.pin, "second value", 12, &e) == 0);
    CHECK(read_is(&t, DATA_URI, "second value"));
    CHECK(count_data(&t, "client-secret") == 1);

    /* The stored object is private, on the token, and says who wrote it. */
    phc_p11 *p = NULL;
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    phc_p11_match m = {CKO_DATA, "client-secret", NULL, 0, 0};
    CHECK(phc__p11_open(&p, MODULE, DATA_URI, t.pin, NULL, &e) == 0);
    CHECK(p && phc__p11_find(p, &m, &h, &n, &e) == 0 && n == 1);
    if (p && n == 1) {
        int b = -1;
        CHECK(phc__p11_attr_bool(p, h[0], CKA_PRIVATE, &b, &e) == 0 && b == 1);
        CHECK(phc__p11_attr_bool(p, h[0], CKA_TOKEN, &b, &e) == 0 && b == 1);
        CHECK(phc__p11_attr_bool(p, h[0], CKA_MODIFIABLE, &b, &e) == 0 && b == 1);
        unsigned char *app = NULL;
        size_t alen = 0;
        CHECK(phc__p11_attr(p, h[0], CKA_APPLICATION, &app, &alen, &e) == 0 && app &&
              strcmp((char *)app, "phconnect") == 0);
        OPENSSL_free(app);
    }
    OPENSSL_free(h);
    CHECK(strcmp(phc__p11_token_label(p), "phc-test") == 0);
    CHECK(phc__p11_token_serial(p)[0] != '\0');
    phc__p11_close(p);

    /* PKCS#11 has no id on data objects and SoftHSM refuses one: say so, store nothing. */
    const char *with_id = "pkcs11:token=phc-test;object=other-secret;id=%ab%01;type=data";
    int rc = phc__p11_write_data(MODULE, with_id, t.pin, "by-id", 5, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG,
              "token 'phc-test' keeps no id on data objects: name data "
              "object label 'other-secret' (id ab01) with object= alone");
    CHECK(count_data(&t, "other-secret") == 0);
    char *v = NULL;
    size_t vn = 0;
    rc =
        phc__p11_read_data(&v, &vn, MODULE, "pkcs11:token=phc-test;id=%ab%01;type=data", t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "no data object with id ab01 on token 'phc-test'");
    /* type= may be left out; the token may be left out when there is only one. */
    CHECK(read_is(&t, "pkcs11:object=client-secret", "second value"));
    CHECK(read_is(&t, DATA_URI, "second value"));
}

/* What an interrupted replacement leaves behind, made by hand. */
static void test_data_interrupted(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_p11 *p = NULL;
    if (tok_init(&t, "interrupted", "phc-test"))
        return;
    CHECK(phc__p11_open(&p, MODULE, DATA_URI, t.pin, NULL, &e) == 0);
    if (!p)
        return;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    const char *label = "client-secret";
    struct {
        const char *app, *value;
    } objs[] = {{"phconnect-replaced", "old value"}, {"phconnect", "new value"}};
    for (size_t i = 0; i < 2; i++) {
        CK_ATTRIBUTE a[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_TOKEN, &yes, sizeof(yes)},
            {CKA_PRIVATE, &yes, sizeof(yes)},
            {CKA_LABEL, (void *)label, strlen(label)},
            {CKA_APPLICATION, (void *)objs[i].app, strlen(objs[i].app)},
            {CKA_VALUE, (void *)objs[i].value, strlen(objs[i].value)},
        };
        CHECK(phc__p11_create(p, a, 6, NULL, "test object", &e) == 0);
    }
    /* Died between creating the new copy and deleting the old: the new value is read. */
    CHECK(read_is(&t, DATA_URI, "new value"));
    /* A second unmarked copy with another value cannot be resolved. */
    const char *other = "rogue value";
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_VALUE, (void *)other, strlen(other)},
    };
    CHECK(phc__p11_create(p, a, 5, NULL, "test object", &e) == 0);
    phc__p11_close(p);
    char *v = NULL;
    size_t n = 0;
    int rc = phc__p11_read_data(&v, &n, MODULE, DATA_URI, t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM,
              "holds 3 data objects with label 'client-secret' and different "
              "values");
    CHECK(v == NULL);
    CHECK(!strstr(e.msg, "new value") && !strstr(e.msg, "rogue"));
    /* Storing again repairs it: one copy. */
    CHECK(phc__p11_write_data(MODULE, DATA_URI, t.pin, "fixed", 5, &e) == 0);
    CHECK(read_is(&t, DATA_URI, "fixed"));
    CHECK(count_data(&t, "client-secret") == 1);
}

static void test_data_refusals(void)
{
    tok t;
    phc_errbuf e = {0};
    char *v = NULL;
    size_t n = 0;
    int rc;
    if (tok_init(&t, "refusals", "phc-test"))
        return;

    rc = phc__p11_read_data(&v, &n, MODULE, DATA_URI, t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "no data object with label 'client-secret' on token 'phc-test'");
    rc = phc__p11_read_data(&v, &n, "/nonexistent/libnothing.so", DATA_URI, t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "cannot load PKCS#11 module '/nonexistent/libnothing.so'");
    rc = phc__p11_read_data(&v, &n, "/etc/passwd", DATA_URI, t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "cannot load PKCS#11 module '/etc/passwd'");
    rc = phc__p11_read_data(&v, &n, MODULE, "pkcs11:token=nope;object=client-secret", t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "no token with label 'nope' in module");
    CHECK(strstr(e.msg, "tokens present: 'phc-test'") != NULL);

    /* URIs the caller must fix. */
    rc = phc__p11_read_data(&v, &n, MODULE, "pkcs11:token=phc-test;object=s;pin-value=1234", t.pin,
                            &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "must not carry a PIN");
    CHECK(!strstr(e.msg, "1234"));
    rc = phc__p11_read_data(&v, &n, MODULE, "pkcs11:token=phc-test;objekt=s", t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "does not understand");
    rc = phc__p11_read_data(&v, &n, MODULE, "pkcs11:token=phc-test;object=s;type=cert", t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "type= other than 'data'");
    rc = phc__p11_read_data(&v, &n, MODULE, "pkcs11:token=phc-test", t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "names no object");
    rc = phc__p11_read_data(&v, &n, MODULE, "file:/etc/secret", t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "not a PKCS#11 URI");
    rc = phc__p11_write_data(MODULE, "pkcs11:token=phc-test;id=%01;type=data", t.pin, "x", 1, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "needs object=");
    rc = phc__p11_write_data(MODULE, DATA_URI, t.pin, "", 0, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "must be 1 to 4096 bytes");
    rc = phc__p11_write_data(MODULE, DATA_URI, t.pin, "a\0b", 3, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "without NUL bytes");
    CHECK(count_data(&t, "client-secret") == 0);

    /* PIN problems: one attempt, reported, never retried; the right PIN still works. */
    char wrongsrc[PATH_MAX + 48];
    tok_pin_file(&t, "wrongpin", "9999\n", wrongsrc, sizeof(wrongsrc));
    rc = phc__p11_write_data(MODULE, DATA_URI, wrongsrc, "x", 1, &e);
    CHECK_ERR(rc, e, PHC_ERR_PIN,
              "PIN rejected by token 'phc-test' (CKR_PIN_INCORRECT); not "
              "retried");
    CHECK(!strstr(e.msg, "9999"));
    rc = phc__p11_read_data(&v, &n, MODULE, DATA_URI, wrongsrc, &e);
    CHECK_ERR(rc, e, PHC_ERR_PIN, "not retried");
    unsetenv("PHC_P11_TEST_NO_PIN");
    rc = phc__p11_read_data(&v, &n, MODULE, DATA_URI, "env:PHC_P11_TEST_NO_PIN", &e);
    CHECK_ERR(rc, e, PHC_ERR_PIN, "env:PHC_P11_TEST_NO_PIN is not set");
    CHECK(phc__p11_write_data(MODULE, DATA_URI, t.pin, "after", 5, &e) == 0);
    CHECK(read_is(&t, DATA_URI, "after"));

    /* Two tokens: a URI without token= is ambiguous. */
    CHECK(sh("SOFTHSM2_CONF='%s/softhsm2.conf' softhsm2-util --init-token --free --label second "
             "--so-pin 12345678 --pin 1234 >/dev/null",
             t.dir) == 0);
    rc = phc__p11_read_data(&v, &n, MODULE, "pkcs11:object=client-secret", t.pin, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "has 2 tokens");
    CHECK(read_is(&t, DATA_URI, "after"));
}

/* hsm.c (libp11) and p11.c share one module in one process: neither may end the other's
 * sessions or login. */
static void test_shared_with_libp11(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_hsm *h = NULL;
    if (tok_init(&t, "shared", "phc-test"))
        return;
    CHECK(phc__p11_write_data(MODULE, DATA_URI, t.pin, "shared-secret", 13, &e) == 0);
    const char *key = "pkcs11:token=phc-test;object=client;type=private";
    CHECK(phc__hsm_open(&h, MODULE, key, t.pin, NULL, &e) == 0);
    /* libp11 initialised the module and logged in: we reuse both and give neither back. */
    CHECK(read_is(&t, DATA_URI, "shared-secret"));
    CHECK(read_is(&t, DATA_URI, "shared-secret"));
    /* libp11's sessions survived: the token key still signs through its EVP_PKEY. */
    phc_p11 *p = NULL;
    CK_OBJECT_HANDLE *keys = NULL;
    size_t n = 0;
    phc_p11_match m = {CKO_PUBLIC_KEY, "client", NULL, 0, 0};
    EVP_PKEY *pub = NULL;
    CHECK(phc__p11_open(&p, MODULE, key, t.pin, NULL, &e) == 0);
    CHECK(p && phc__p11_find(p, &m, &keys, &n, &e) == 0 && n == 1);
    if (n == 1)
        CHECK(phc__p11_public_key(p, keys[0], &pub, &e) == 0);
    OPENSSL_free(keys);
    phc__p11_close(p);
    /* A certificate for the key so that hsm.c hands out its signing EVP_PKEY. */
    EVP_PKEY *ca = EVP_EC_gen("P-256");
    X509 *c = X509_new();
    char certpath[PATH_MAX + 32];
    snprintf(certpath, sizeof(certpath), "%s/client.pem", t.dir);
    int ok = ca && c && pub && X509_set_version(c, 2) &&
             ASN1_INTEGER_set(X509_get_serialNumber(c), 7) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                                        (const unsigned char *)"shared", -1, -1, 0) &&
             X509_set_issuer_name(c, X509_get_subject_name(c)) &&
             X509_gmtime_adj(X509_getm_notBefore(c), -60) &&
             X509_gmtime_adj(X509_getm_notAfter(c), 86400) && X509_set_pubkey(c, pub) &&
             X509_sign(c, ca, EVP_sha256()) > 0;
    FILE *f = ok ? fopen(certpath, "w") : NULL;
    CHECK(f && PEM_write_X509(f, c));
    if (f)
        fclose(f);
    EVP_PKEY *k = NULL;
    X509 *got = NULL;
    CHECK(phc__hsm_identity(h, certpath, (long long)time(NULL), &k, &got, &e) == 0);
    if (k) {
        unsigned char sig[1024];
        size_t siglen = sizeof(sig);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        CHECK(md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
              EVP_DigestSign(md, sig, &siglen, (const unsigned char *)"x", 1) == 1);
        EVP_MD_CTX_free(md);
    }
    X509_free(got);
    phc__hsm_free(h);
    /* With libp11 gone we initialise (and finalise) the module ourselves. */
    CHECK(read_is(&t, DATA_URI, "shared-secret"));
    X509_free(c);
    EVP_PKEY_free(ca);
    EVP_PKEY_free(pub);
    ERR_clear_error();
}

/* Key generation keeps the key on the token; C_Sign produces signatures OpenSSL verifies. */
static void test_generate(const char *name, phc_p11_keykind kind, int bits, const char *want_type)
{
    tok t;
    phc_errbuf e = {0};
    phc_p11 *p = NULL;
    if (tok_init(&t, name, "phc-test"))
        return;
    CHECK(phc__p11_open(&p, MODULE, "pkcs11:token=phc-test", t.pin, NULL, &e) == 0);
    if (!p)
        return;
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    unsigned char id[] = {0x42};
    CHECK(phc__p11_generate(p, kind, bits, "gen", id, 1, &pub, &priv, &e) == 0);
    int b = -1;
    CHECK(phc__p11_attr_bool(p, priv, CKA_SENSITIVE, &b, &e) == 0 && b == 1);
    CHECK(phc__p11_attr_bool(p, priv, CKA_EXTRACTABLE, &b, &e) == 0 && b == 0);
    CHECK(phc__p11_attr_bool(p, priv, CKA_NEVER_EXTRACTABLE, &b, &e) == 0 && b == 1);
    CHECK(phc__p11_attr_bool(p, priv, CKA_LOCAL, &b, &e) == 0 && b == 1);
    CHECK(phc__p11_attr_bool(p, priv, CKA_TOKEN, &b, &e) == 0 && b == 1);
    CHECK(phc__p11_attr_bool(p, pub, CKA_TOKEN, &b, &e) == 0 && b == 1);
    unsigned char *v = NULL;
    size_t vlen = 0;
    /* The private value cannot be read. */
    CHECK(phc__p11_attr(p, priv, kind == PHC_P11_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE, &v, &vlen,
                        &e) == 1 &&
          v == NULL);
    CHECK(phc__p11_attr(p, priv, CKA_LABEL, &v, &vlen, &e) == 0 && v &&
          strcmp((char *)v, "gen") == 0);
    OPENSSL_free(v);
    CHECK(phc__p11_attr(p, pub, CKA_ID, &v, &vlen, &e) == 0 && vlen == 1 && v && v[0] == 0x42);
    OPENSSL_free(v);

    EVP_PKEY *pk = NULL;
    CHECK(phc__p11_public_key(p, pub, &pk, &e) == 0 && pk);
    if (pk) {
        CHECK(EVP_PKEY_is_a(pk, kind == PHC_P11_RSA ? "RSA" : "EC"));
        if (kind == PHC_P11_RSA) {
            CHECK(EVP_PKEY_get_bits(pk) == bits);
            /* The private key shows its public half too (RSA). */
            EVP_PKEY *pk2 = NULL;
            CHECK(phc__p11_public_key(p, priv, &pk2, &e) == 0 && pk2 && EVP_PKEY_eq(pk, pk2) == 1);
            EVP_PKEY_free(pk2);
        } else {
            char group[64] = "";
            size_t gl = 0;
            CHECK(EVP_PKEY_get_group_name(pk, group, sizeof(group), &gl) &&
                  strcmp(group, want_type) == 0);
        }
        /* C_Sign: RSA PKCS#1 v1.5 over SHA-256 by the token; ECDSA over our digest. */
        static const unsigned char msg[] = "to be signed";
        unsigned char *sig = NULL, dg[32];
        size_t siglen = 0;
        int ok = 0;
        if (kind == PHC_P11_RSA) {
            CHECK(phc__p11_sign(p, priv, CKM_SHA256_RSA_PKCS, msg, sizeof(msg), &sig, &siglen,
                                &e) == 0);
            EVP_MD_CTX *md = EVP_MD_CTX_new();
            ok = md && sig && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
                 EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) == 1;
            EVP_MD_CTX_free(md);
        } else {
            SHA256(msg, sizeof(msg), dg);
            CHECK(phc__p11_sign(p, priv, CKM_ECDSA, dg, sizeof(dg), &sig, &siglen, &e) == 0);
            ok = sig && siglen % 2 == 0 && siglen >= 64;
        }
        CHECK(ok);
        OPENSSL_free(sig);
        /* A mechanism the key cannot do is an HSM error naming the CKR_. */
        int rc = phc__p11_sign(p, priv, kind == PHC_P11_RSA ? CKM_ECDSA : CKM_SHA256_RSA_PKCS, msg,
                               sizeof(msg), &sig, &siglen, &e);
        CHECK_ERR(rc, e, PHC_ERR_HSM, "on token 'phc-test' failed (CKR_");
    }
    EVP_PKEY_free(pk);

    /* Deleting both halves. */
    CHECK(phc__p11_destroy(p, priv, "test key", &e) == 0);
    CHECK(phc__p11_destroy(p, pub, "test key", &e) == 0);
    int rc = phc__p11_destroy(p, pub, "test key", &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "deleting test key on token 'phc-test' failed (CKR_");
    phc__p11_close(p);
    ERR_clear_error();
}

static void test_rv_names(void)
{
    CHECK(strcmp(phc__p11_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT") == 0);
    CHECK(strcmp(phc__p11_rv_name(CKR_TOKEN_WRITE_PROTECTED), "CKR_TOKEN_WRITE_PROTECTED") == 0);
    CHECK(phc__p11_rv_name(0x7777) == NULL);
    phc__p11_close(NULL);
    CHECK(strcmp(phc__p11_token_label(NULL), "") == 0);
}

int main(void)
{
    if (tt_begin("p11"))
        return 1;
    test_rv_names();
    if (tt_have_softhsm()) {
        test_data_roundtrip();
        test_data_interrupted();
        test_data_refusals();
        test_shared_with_libp11();
        test_generate("gen-rsa", PHC_P11_RSA, 2048, NULL);
        test_generate("gen-p256", PHC_P11_EC_P256, 0, "prime256v1");
        test_generate("gen-p384", PHC_P11_EC_P384, 0, "secp384r1");
    }
    tt_end();
    TEST_MAIN_END();
}
