#include "csr.h"

#include "err.h"
#include "util_hex.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <ctype.h>
#include <string.h>

#define DN_MAX 1024

/* ------------------------------------------------------------------------------------ */
/* Distinguished names */

/* One RDN "name=value" in [b, e): unescaped into name/value buffers. */
static int rdn_split(const char *b, const char *e, char *name, size_t nlen, char *value,
                     size_t vlen, int rfc4514, size_t idx, phc_errbuf *err)
{
    size_t n = 0, v = 0;
    int in_value = 0;
    while (b < e && isspace((unsigned char)*b))
        b++;
    for (const char *p = b; p < e; p++) {
        char ch = *p;
        if (ch == '\\' && p + 1 < e) {
            p++;
            ch = *p;
            /* RFC 4514 also escapes a byte as two hex digits. */
            if (rfc4514 && p + 1 < e && phc__hex_digit((unsigned char)p[0]) >= 0 &&
                phc__hex_digit((unsigned char)p[1]) >= 0) {
                ch = (char)(phc__hex_digit((unsigned char)p[0]) * 16 +
                            phc__hex_digit((unsigned char)p[1]));
                p++;
            }
        } else if (ch == '=' && !in_value) {
            in_value = 1;
            continue;
        } else if (ch == '+' && rfc4514) {
            return phc__err(err, PHC_ERR_CONFIG,
                            "subject component %zu: multi-valued RDNs ('+') are not supported",
                            idx);
        }
        if (in_value) {
            if (v + 1 >= vlen)
                return phc__err(err, PHC_ERR_CONFIG, "subject component %zu is too long", idx);
            value[v++] = ch;
        } else {
            if (n + 1 >= nlen)
                return phc__err(err, PHC_ERR_CONFIG, "subject component %zu has a too long name",
                                idx);
            name[n++] = ch;
        }
    }
    while (n && isspace((unsigned char)name[n - 1]))
        n--;
    name[n] = '\0';
    size_t vs = 0;
    while (vs < v && isspace((unsigned char)value[vs]))
        vs++;
    while (v > vs && isspace((unsigned char)value[v - 1]))
        v--;
    memmove(value, value + vs, v - vs);
    value[v - vs] = '\0';
    if (!in_value || !n)
        return phc__err(err, PHC_ERR_CONFIG,
                        "subject component %zu is not NAME=value (e.g. CN=client)", idx);
    if (!value[0])
        return phc__err(err, PHC_ERR_CONFIG, "subject component %zu ('%s') has an empty value", idx,
                        name);
    return 0;
}

int phc__dn_parse(X509_NAME **out, const char *subject, phc_errbuf *err)
{
    *out = NULL;
    if (!subject)
        return phc__err(err, PHC_ERR_CONFIG, "no subject given");
    while (isspace((unsigned char)*subject))
        subject++;
    size_t len = strlen(subject);
    while (len && isspace((unsigned char)subject[len - 1]))
        len--;
    if (!len)
        return phc__err(err, PHC_ERR_CONFIG,
                        "the subject is empty (e.g. '/O=Energy Co/CN=client')");
    if (len > DN_MAX)
        return phc__err(err, PHC_ERR_CONFIG, "the subject is longer than %d characters", DN_MAX);
    int slash = subject[0] == '/';
    const char *p = subject + slash, *end = subject + len;
    char sep = slash ? '/' : ',';

    /* Components in the order written; the RFC 4514 form is added last-first. */
    const char *starts[64], *ends[64];
    size_t count = 0;
    const char *b = p;
    for (const char *q = p; q <= end; q++) {
        if (q < end && *q == '\\') {
            q++;
            continue;
        }
        if (q == end || *q == sep) {
            if (count == 64)
                return phc__err(err, PHC_ERR_CONFIG, "the subject has more than 64 components");
            starts[count] = b;
            ends[count] = q;
            count++;
            b = q + 1;
        }
    }
    X509_NAME *name = X509_NAME_new();
    if (!name)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    int rc = 0;
    for (size_t k = 0; k < count && !rc; k++) {
        size_t i = slash ? k : count - 1 - k;
        char n[64], v[DN_MAX + 1];
        if ((rc = rdn_split(starts[i], ends[i], n, sizeof(n), v, sizeof(v), !slash, i + 1, err)))
            break;
        ERR_clear_error();
        if (OBJ_txt2nid(n) == NID_undef) {
            rc = phc__err(err, PHC_ERR_CONFIG,
                          "subject component %zu: unknown attribute '%s' (use CN, O, OU, C, L, "
                          "ST, ...)",
                          i + 1, n);
            break;
        }
        if (!X509_NAME_add_entry_by_txt(name, n, MBSTRING_UTF8, (const unsigned char *)v, -1, -1,
                                        0))
            rc = phc__err_ossl(err, PHC_ERR_CONFIG,
                               "subject component %zu: value not acceptable for '%s'", i + 1, n);
    }
    ERR_clear_error();
    if (rc) {
        X509_NAME_free(name);
        return rc;
    }
    *out = name;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Requests */

/* r||s (each half of sig) as a DER ECDSA-Sig-Value. */
static int ecdsa_der(unsigned char **der, int *derlen, const unsigned char *sig, size_t siglen)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)(siglen / 2), NULL);
    BIGNUM *s = BN_bin2bn(sig + siglen / 2, (int)(siglen / 2), NULL);
    int ok = es && r && s && siglen % 2 == 0 && ECDSA_SIG_set0(es, r, s);
    if (ok)
        r = s = NULL; /* owned by es now */
    *der = NULL;
    *derlen = ok ? i2d_ECDSA_SIG(es, der) : -1;
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return *derlen > 0 ? 0 : -1;
}

int phc__csr_make(char **pem_out, phc_p11 *p, CK_OBJECT_HANDLE priv, EVP_PKEY *pub,
                  const X509_NAME *subject, phc_errbuf *err)
{
    X509_REQ *req = X509_REQ_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *bits = NULL;
    unsigned char *tbs = NULL, *sig = NULL, *der = NULL;
    size_t siglen = 0;
    int derlen = 0, rc = 0;
    BIO *bio = NULL;
    int is_rsa = EVP_PKEY_is_a(pub, "RSA");
    *pem_out = NULL;
    if (!req || !alg || !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, subject) ||
        !X509_REQ_set_pubkey(req, pub) ||
        !X509_ALGOR_set0(alg,
                         OBJ_nid2obj(is_rsa ? NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256),
                         is_rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL) ||
        !X509_REQ_set1_signature_algo(req, alg)) {
        rc = phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot build the certificate request");
        goto out;
    }
    int tbslen = i2d_re_X509_REQ_tbs(req, &tbs);
    if (tbslen <= 0) {
        rc = phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot encode the certificate request");
        goto out;
    }
    if (is_rsa) {
        if ((rc = phc__p11_sign(p, priv, CKM_SHA256_RSA_PKCS, tbs, (size_t)tbslen, &sig, &siglen,
                                err)))
            goto out;
    } else {
        unsigned char dg[SHA256_DIGEST_LENGTH];
        SHA256(tbs, (size_t)tbslen, dg);
        unsigned char *raw = NULL;
        size_t rawlen = 0;
        if ((rc = phc__p11_sign(p, priv, CKM_ECDSA, dg, sizeof(dg), &raw, &rawlen, err)))
            goto out;
        int ok = ecdsa_der(&der, &derlen, raw, rawlen) == 0;
        OPENSSL_free(raw);
        if (!ok) {
            rc = phc__err_ossl(err, PHC_ERR_HSM,
                               "token '%s' returned an ECDSA signature of %zu bytes that is not "
                               "r||s",
                               phc__p11_token_label(p), rawlen);
            goto out;
        }
        sig = OPENSSL_memdup(der, (size_t)derlen);
        siglen = (size_t)derlen;
        if (!sig) {
            rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
            goto out;
        }
    }
    if (!(bits = ASN1_BIT_STRING_new())) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    ASN1_STRING_set0(bits, sig, (int)siglen);
    sig = NULL;
    /* A signature is a whole number of bytes: no unused bits (as ASN1_item_sign does). */
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    /* The token signed what we meant: prove it before anyone sends the request off. */
    if (X509_REQ_verify(req, pub) != 1) {
        rc = phc__err_ossl(err, PHC_ERR_HSM,
                           "the request signed by token '%s' does not verify with the key's "
                           "public half",
                           phc__p11_token_label(p));
        goto out;
    }
    BUF_MEM *mem = NULL;
    if (!(bio = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509_REQ(bio, req) ||
        BIO_get_mem_ptr(bio, &mem) <= 0 || !mem || !(*pem_out = OPENSSL_zalloc(mem->length + 1))) {
        rc = phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot write the certificate request");
        goto out;
    }
    memcpy(*pem_out, mem->data, mem->length);
out:
    BIO_free(bio);
    ASN1_BIT_STRING_free(bits);
    OPENSSL_free(sig);
    OPENSSL_free(der);
    OPENSSL_free(tbs);
    X509_ALGOR_free(alg);
    X509_REQ_free(req);
    ERR_clear_error();
    return rc;
}
