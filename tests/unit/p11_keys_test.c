/* p11_keys unit: key pairs generated on a real SoftHSM token (EC P-256, P-384, RSA), listed,
 * their public halves read back and checked against C_Sign signatures, deleted; refusals: a
 * key type we do not read, signing with a handle that is gone, a mechanism the key refuses. */
#include "p11.h"
#include "p11_int.h"
#include "testtoken.h"
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#define URI "pkcs11:token=phc-test"

static size_t count(phc_p11 *p, CK_OBJECT_CLASS cls, const char *label)
{
    phc_errbuf e = {0};
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    phc_p11_match m = {cls, label, NULL, 0, 0};
    CHECK(phc__p11_find(p, &m, &h, &n, &e) == 0);
    OPENSSL_free(h);
    return n;
}

/* Signs a digest on the token and verifies with the public key read back (RSA: PKCS#1 v1.5
 * padding around the bytes themselves); a changed digest must not verify. */
static int sign_verifies(phc_p11 *p, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv,
                         CK_MECHANISM_TYPE mech, int ec)
{
    phc_errbuf e = {0};
    unsigned char md[32];
    SHA256((const unsigned char *)"hello", 5, md);
    unsigned char *sig = NULL;
    size_t siglen = 0;
    EVP_PKEY *pk = NULL;
    int ok = 0;
    if (phc__p11_public_key(p, pub, &pk, &e) ||
        phc__p11_sign(p, priv, mech, md, 32, &sig, &siglen, &e)) {
        fprintf(stderr, "sign_verifies: %s\n", e.msg);
        goto out;
    }
    /* EC: the token gives r||s, OpenSSL verifies DER. */
    unsigned char der[160];
    const unsigned char *s = sig;
    size_t slen = siglen;
    if (ec) {
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)siglen / 2, NULL),
                       BN_bin2bn(sig + siglen / 2, (int)siglen / 2, NULL));
        unsigned char *q = der;
        slen = (size_t)i2d_ECDSA_SIG(es, &q);
        ECDSA_SIG_free(es);
        s = der;
    }
    EVP_PKEY_CTX *vc = EVP_PKEY_CTX_new(pk, NULL);
    ok = vc && EVP_PKEY_verify_init(vc) == 1 &&

         EVP_PKEY_verify(vc, s, slen, md, 32) == 1;
    EVP_PKEY_CTX_free(vc);
    /* A changed digest does not verify: the check can fail. */
    md[0] ^= 1;
    vc = EVP_PKEY_CTX_new(pk, NULL);
    ok = ok && vc && EVP_PKEY_verify_init(vc) == 1 &&

         EVP_PKEY_verify(vc, s, slen, md, 32) != 1;
    EVP_PKEY_CTX_free(vc);
out:
    OPENSSL_free(sig);
    EVP_PKEY_free(pk);
    return ok;
}

static void test_generate(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_p11 *p = NULL;
    if (tok_init(&t, "gen", "phc-test"))
        return;
    CHECK(phc__p11_open(&p, MODULE, URI, t.pin, NULL, &e) == 0);
    if (!p)
        return;
    CK_OBJECT_HANDLE pub, priv, pub2, priv2, pub3, priv3;
    const unsigned char id1[] = {0x11}, id2[] = {0x12}, id3[] = {0x13};
    /* What the fixture put on the token before. */
    size_t n0 = count(p, CKO_PRIVATE_KEY, NULL);
    CHECK(phc__p11_generate(p, PHC_P11_EC_P256, 0, "k256", id1, 1, &pub, &priv, &e) == 0);
    CHECK(phc__p11_generate(p, PHC_P11_EC_P384, 0, "k384", id2, 1, &pub2, &priv2, &e) == 0);
    CHECK(phc__p11_generate(p, PHC_P11_RSA, 2048, "krsa", id3, 1, &pub3, &priv3, &e) == 0);
    CHECK(count(p, CKO_PRIVATE_KEY, NULL) == n0 + 3);
    CHECK(count(p, CKO_PUBLIC_KEY, "k384") == 1);

    /* What the token recorded keeps the key on it. */
    int b = -1;
    CHECK(phc__p11_attr_bool(p, priv, CKA_SENSITIVE, &b, &e) == 0 && b == 1);
    CHECK(phc__p11_attr_bool(p, priv, CKA_EXTRACTABLE, &b, &e) == 0 && b == 0);
    CHECK(phc__p11_attr_bool(p, priv, CKA_PRIVATE, &b, &e) == 0 && b == 1);
    CHECK(phc__p11_attr_bool(p, priv, CKA_DERIVE, &b, &e) == 0 && b == 0);
    CHECK(phc__p11_attr_bool(p, pub, CKA_PRIVATE, &b, &e) == 0 && b == 0);
    unsigned char *v = NULL;
    size_t vlen = 0;
    CHECK(phc__p11_attr(p, priv, CKA_VALUE, &v, &vlen, &e) == 1 && v == NULL);

    EVP_PKEY *pk = NULL;
    CHECK(phc__p11_public_key(p, pub2, &pk, &e) == 0 && pk && EVP_PKEY_get_bits(pk) == 384);
    EVP_PKEY_free(pk);
    pk = NULL;
    /* RSA: the private key's public attributes suffice. */
    CHECK(phc__p11_public_key(p, priv3, &pk, &e) == 0 && pk && EVP_PKEY_get_bits(pk) == 2048);
    EVP_PKEY_free(pk);

    CHECK(sign_verifies(p, pub, priv, CKM_ECDSA, 1));
    CHECK(sign_verifies(p, pub2, priv2, CKM_ECDSA, 1));
    /* RSA PKCS#1 v1.5 over the bytes given (no DigestInfo: the caller adds one). */
    CHECK(sign_verifies(p, pub3, priv3, CKM_RSA_PKCS, 0));

    /* Refusals. A mechanism the key cannot do: */
    unsigned char *sig = NULL;
    size_t siglen = 0;
    unsigned char md[32] = {0};
    CHECK_ERR(phc__p11_sign(p, priv, CKM_RSA_PKCS, md, 32, &sig, &siglen, &e), e, PHC_ERR_HSM,
              "signing with key object");
    CHECK(strstr(e.msg, "on token 'phc-test' failed (CKR_") != NULL);
    CHECK(sig == NULL && siglen == 0);

    /* A data object is no key. */
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE a[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &no, sizeof(no)}};
    CK_OBJECT_HANDLE d;
    CHECK(phc__p11_create(p, a, 2, &d, "a data object", &e) == 0);
    pk = NULL;
    CHECK_ERR(phc__p11_public_key(p, d, &pk, &e), e, PHC_ERR_HSM, "on token 'phc-test'");
    CHECK(pk == NULL);

    /* Deleted: gone from the listing, and signing with it fails naming the token. */
    CHECK(phc__p11_destroy(p, priv, "key k256", &e) == 0);
    CHECK(phc__p11_destroy(p, pub, "key k256", &e) == 0);
    CHECK(count(p, CKO_PRIVATE_KEY, "k256") == 0);
    CHECK(count(p, CKO_PRIVATE_KEY, NULL) == n0 + 2);
    CHECK_ERR(phc__p11_sign(p, priv, CKM_ECDSA, md, 32, &sig, &siglen, &e), e, PHC_ERR_HSM,
              "on token 'phc-test' failed (CKR_OBJECT_HANDLE_INVALID)");
    CHECK_ERR(phc__p11_destroy(p, priv, "key k256", &e), e, PHC_ERR_HSM,
              "deleting key k256 on token 'phc-test' failed (CKR_OBJECT_HANDLE_INVALID)");
    phc__p11_close(p);
}

int main(void)
{
    if (tt_begin("p11keys") || !tt_have_softhsm())
        TEST_MAIN_END();
    test_generate();
    tt_end();
    TEST_MAIN_END();
}
