/* Direct PKCS#11 access, keys: generating a key pair that stays on the token, reading a key
 * object's public half, and C_Sign for what the token signs outside TLS (CSRs). */
#include "p11.h"
#include "p11_int.h"

#include "err.h"
#include "log.h"
#include "names.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <string.h>

/* DER OIDs of the named curves phc generates (CKA_EC_PARAMS). */
static const unsigned char OID_P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char OID_P384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

/* The key must never leave the token: check what the token actually recorded. */
static int check_generated(phc_p11 *p, CK_OBJECT_HANDLE priv, const char *name, phc_errbuf *err)
{
    static const struct {
        CK_ATTRIBUTE_TYPE type;
        int want;
        const char *what;
    } req[] = {
        {CKA_TOKEN, 1, "CKA_TOKEN"},
        {CKA_PRIVATE, 1, "CKA_PRIVATE"},
        {CKA_SENSITIVE, 1, "CKA_SENSITIVE"},
        {CKA_EXTRACTABLE, 0, "CKA_EXTRACTABLE"},
        {CKA_ALWAYS_SENSITIVE, 1, "CKA_ALWAYS_SENSITIVE"},
        {CKA_NEVER_EXTRACTABLE, 1, "CKA_NEVER_EXTRACTABLE"},
    };
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
        int v;
        int rc = phc__p11_attr_bool(p, priv, req[i].type, &v, err);
        if (rc)
            return rc;
        /* A token may hide CKA_ALWAYS_SENSITIVE/NEVER_EXTRACTABLE; the first four it must
         * show. */
        if (v == -1 && i >= 4)
            continue;
        if (v != req[i].want) {
            char what[96];
            snprintf(what, sizeof(what), "checking the new key's %s (read %s)", req[i].what,
                     v == 1   ? "TRUE"
                     : v == 0 ? "FALSE"
                              : "hidden");
            phc__p11_fail_odd(what);
            return phc__err(err, PHC_ERR_HSM,
                            "token '%s' did not keep private key %s as asked: %s is %s", p->label,
                            name, req[i].what,
                            v == 1   ? "TRUE"
                            : v == 0 ? "FALSE"
                                     : "hidden");
        }
    }
    return 0;
}

int phc__p11_generate(phc_p11 *p, phc_p11_keykind kind, int rsa_bits, const char *label,
                      const unsigned char *id, size_t id_len, CK_OBJECT_HANDLE *pub_out,
                      CK_OBJECT_HANDLE *priv_out, phc_errbuf *err)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = (CK_ULONG)rsa_bits;
    CK_BYTE e[] = {0x01, 0x00, 0x01};
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[8], priv[13];
    CK_ULONG npub = 0, npriv = 0;
    char name[160];
    phc__key_name(name, sizeof(name), "label ", label, id, id_len, 1);

    pub[npub++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    pub[npub++] = (CK_ATTRIBUTE){CKA_PRIVATE, &no, sizeof(no)};
    pub[npub++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof(yes)};
    pub[npub++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    pub[npub++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof(yes)};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof(no)};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof(yes)};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_DERIVE, &no, sizeof(no)};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof(no)};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_DECRYPT, &no, sizeof(no)};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    priv[npriv++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
    if (kind == PHC_P11_RSA) {
        pub[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
        pub[npub++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e, sizeof(e)};
    } else {
        mech.mechanism = CKM_EC_KEY_PAIR_GEN;
        if (kind == PHC_P11_EC_P256)
            pub[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)OID_P256, sizeof(OID_P256)};
        else
            pub[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)OID_P384, sizeof(OID_P384)};
    }
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    CK_RV rv = PHC_P11_CALL(p->fn, C_GenerateKeyPair, p->session, &mech, pub, npub, priv, npriv,
                            &hpub, &hpriv);
    if (rv != CKR_OK)
        return phc__p11_fail(err, p->label, rv, "generating key pair %s", name);
    int rc = check_generated(p, hpriv, name, err);
    if (rc) {
        PHC_P11_CALL(p->fn, C_DestroyObject, p->session, hpriv);
        PHC_P11_CALL(p->fn, C_DestroyObject, p->session, hpub);
        return rc;
    }
    phc__log(p->log, PHC_LOG_INFO, "generated key pair %s on token '%s'", name, p->label);
    *pub_out = hpub;
    *priv_out = hpriv;
    return 0;
}

/* EVP_PKEY from RSA n/e (big-endian bytes). */
static int rsa_pub(EVP_PKEY **out, const unsigned char *n, size_t nlen, const unsigned char *e,
                   size_t elen)
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    int ok = b && bn && be && ctx && OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) &&
             OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) &&
             (params = OSSL_PARAM_BLD_to_param(b)) && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1;
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    BN_free(bn);
    BN_free(be);
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* EVP_PKEY from CKA_EC_PARAMS (a named curve's DER OID) and CKA_EC_POINT (a DER OCTET STRING
 * around the uncompressed point, or the raw point from tokens that skip the wrapping). */
static int ec_pub(EVP_PKEY **out, const unsigned char *params, size_t plen,
                  const unsigned char *point, size_t ptlen)
{
    const unsigned char *pp = params;
    ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &pp, (long)plen);
    int nid = oid ? OBJ_obj2nid(oid) : NID_undef;
    ASN1_OBJECT_free(oid);
    const char *group = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
    if (!group)
        return -1;
    ASN1_OCTET_STRING *os = NULL;
    const unsigned char *q = point;
    if (ptlen > 2 && point[0] == 0x04 && (os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)ptlen)) &&
        q == point + ptlen) {
        point = ASN1_STRING_get0_data(os);
        ptlen = (size_t)ASN1_STRING_length(os);
    }
    OSSL_PARAM p[3];
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, ptlen);
    p[2] = OSSL_PARAM_construct_end();
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    int ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, p) == 1;
    EVP_PKEY_CTX_free(ctx);
    ASN1_OCTET_STRING_free(os);
    return ok ? 0 : -1;
}

int phc__p11_public_key(phc_p11 *p, CK_OBJECT_HANDLE h, EVP_PKEY **out, phc_errbuf *err)
{
    CK_ULONG kt = 0;
    unsigned char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    *out = NULL;
    int rc = phc__p11_attr_ulong(p, h, CKA_KEY_TYPE, &kt, err);
    if (rc)
        return rc;
    if (kt == CKK_RSA) {
        if ((rc = phc__p11_attr(p, h, CKA_MODULUS, &a, &alen, err)) != 0 ||
            (rc = phc__p11_attr(p, h, CKA_PUBLIC_EXPONENT, &b, &blen, err)) != 0)
            goto out;
        if (rsa_pub(out, a, alen, b, blen))
            rc = phc__err_ossl(err, PHC_ERR_HSM,
                               "RSA public key of object %lu on token '%s' is "
                               "malformed",
                               (unsigned long)h, p->label);
    } else if (kt == CKK_EC) {
        if ((rc = phc__p11_attr(p, h, CKA_EC_PARAMS, &a, &alen, err)) != 0 ||
            (rc = phc__p11_attr(p, h, CKA_EC_POINT, &b, &blen, err)) != 0)
            goto out;
        if (ec_pub(out, a, alen, b, blen))
            rc = phc__err_ossl(err, PHC_ERR_HSM,
                               "EC public key of object %lu on token '%s' is malformed or on an "
                               "unknown curve",
                               (unsigned long)h, p->label);
    } else {
        rc = phc__err(err, PHC_ERR_HSM,
                      "key object %lu on token '%s' has key type 0x%lx: "
                      "supported are RSA and EC",
                      (unsigned long)h, p->label, (unsigned long)kt);
    }
out:
    if (rc == 1) /* attribute hidden by the token */
        rc = phc__err(err, PHC_ERR_HSM,
                      "token '%s' does not reveal the public half of key object %lu", p->label,
                      (unsigned long)h);
    OPENSSL_free(a);
    OPENSSL_free(b);
    ERR_clear_error();
    return rc;
}

int phc__p11_sign(phc_p11 *p, CK_OBJECT_HANDLE h, CK_MECHANISM_TYPE mech, const unsigned char *in,
                  size_t inlen, unsigned char **sig, size_t *siglen, phc_errbuf *err)
{
    CK_MECHANISM m = {mech, NULL, 0};
    CK_ULONG n = 0;
    unsigned char *buf = NULL;
    *sig = NULL;
    *siglen = 0;
    CK_RV rv = PHC_P11_CALL(p->fn, C_SignInit, p->session, &m, h);
    if (rv == CKR_OK)
        rv = PHC_P11_CALL(p->fn, C_Sign, p->session, (CK_BYTE *)in, (CK_ULONG)inlen, NULL, &n);
    if (rv == CKR_OK && !(buf = OPENSSL_malloc(n ? n : 1)))
        rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK)
        rv = PHC_P11_CALL(p->fn, C_Sign, p->session, (CK_BYTE *)in, (CK_ULONG)inlen, buf, &n);
    if (rv != CKR_OK) {
        OPENSSL_free(buf);
        return phc__p11_fail(err, p->label, rv, "signing with key object %lu", (unsigned long)h);
    }
    *sig = buf;
    *siglen = n;
    return 0;
}
