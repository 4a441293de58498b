#include "trust.h"

#include "err.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct phc_trust {
    int refs; /* atomic: a client and its token-opening worker may both hold one */
    X509_STORE *store;
    STACK_OF(X509) * anchors;
    char *ca_file;
};

static void hex_fingerprint(char *out, size_t outlen, const unsigned char *md, size_t mdlen)
{
    size_t o = 0;
    for (size_t i = 0; i < mdlen && o + 3 < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%02x", md[i]);
}

void phc__name_str(char *out, size_t outlen, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    out[0] = '\0';
    if (!b)
        return;
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    int n = BIO_read(b, out, (int)outlen - 1);
    out[n > 0 ? n : 0] = '\0';
    BIO_free(b);
}

static int pin_index(const unsigned char (*pins)[32], size_t npins, const unsigned char *md)
{
    for (size_t i = 0; i < npins; i++)
        if (memcmp(pins[i], md, 32) == 0)
            return (int)i;
    return -1;
}

/* Every certificate in the file must be pinned and every pin must be present: a CA file that
 * gained or lost a certificate since the fingerprints were written is exactly the change an
 * operator must look at before it is trusted. */
static int check_pins(const phc_trust *t, const unsigned char (*pins)[32], size_t npins,
                      phc_errbuf *err)
{
    int found[64] = {0};
    if (npins > 64)
        return phc__err(err, PHC_ERR_CONFIG, "config key 'ca_sha256': too many fingerprints");
    for (int i = 0; i < sk_X509_num(t->anchors); i++) {
        X509 *c = sk_X509_value(t->anchors, i);
        unsigned char md[32];
        unsigned int mdlen = 0;
        if (!X509_digest(c, EVP_sha256(), md, &mdlen))
            return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot hash CA certificate");
        int idx = pin_index(pins, npins, md);
        if (idx < 0) {
            char subj[256], fp[80];
            phc__name_str(subj, sizeof(subj), X509_get_subject_name(c));
            hex_fingerprint(fp, sizeof(fp), md, 32);
            return phc__err(err, PHC_ERR_CONFIG,
                            "CA certificate '%s' in %s has SHA-256 %s, which is not listed "
                            "in ca_sha256",
                            subj, t->ca_file, fp);
        }
        found[idx] = 1;
    }
    for (size_t i = 0; i < npins; i++) {
        if (!found[i]) {
            char fp[80];
            hex_fingerprint(fp, sizeof(fp), pins[i], 32);
            return phc__err(err, PHC_ERR_CONFIG,
                            "ca_sha256 fingerprint %s matches no certificate in %s", fp,
                            t->ca_file);
        }
    }
    return PHC_OK;
}

static int read_anchors(phc_trust *t, phc_errbuf *err)
{
    BIO *in = BIO_new_file(t->ca_file, "r");
    if (!in)
        return phc__err_ossl(err, PHC_ERR_CONFIG, "cannot read ca_file %s", t->ca_file);
    X509 *c;
    while ((c = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(t->anchors, c)) {
            X509_free(c);
            BIO_free(in);
            return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        }
    }
    BIO_free(in);
    unsigned long e = ERR_peek_last_error();
    /* Running off the end of the file is how PEM reading stops; anything else is garbage. */
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
        return phc__err_ossl(err, PHC_ERR_CONFIG, "ca_file %s holds a malformed certificate",
                             t->ca_file);
    ERR_clear_error();
    if (sk_X509_num(t->anchors) == 0)
        return phc__err(err, PHC_ERR_CONFIG, "ca_file %s holds no PEM certificate", t->ca_file);
    return PHC_OK;
}

int phc__trust_load(phc_trust **out, const char *ca_file, const unsigned char (*pins)[32],
                    size_t npins, phc_errbuf *err)
{
    *out = NULL;
    int rc = PHC_ERR_INTERNAL;
    phc_trust *t = calloc(1, sizeof(*t));
    if (!t || !(t->ca_file = strdup(ca_file)) || !(t->anchors = sk_X509_new_null()) ||
        !(t->store = X509_STORE_new())) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    t->refs = 1;
    if ((rc = read_anchors(t, err)) != PHC_OK)
        goto out;
    if (npins > 0 && (rc = check_pins(t, pins, npins, err)) != PHC_OK)
        goto out;
    for (int i = 0; i < sk_X509_num(t->anchors); i++) {
        X509 *c = sk_X509_value(t->anchors, i);
        if (!X509_STORE_add_cert(t->store, c)) {
            rc =
                phc__err_ossl(err, PHC_ERR_CONFIG, "cannot add CA certificate from %s", t->ca_file);
            goto out;
        }
    }
    /* A pinned intermediate is a trust anchor in its own right: the vendor may pin its
     * issuing CA rather than its root. */
    X509_STORE_set_flags(t->store, X509_V_FLAG_PARTIAL_CHAIN);
    *out = t;
    t = NULL;
    rc = PHC_OK;
out:
    phc__trust_free(t);
    return rc;
}

X509_STORE *phc__trust_store(const phc_trust *t)
{
    return t->store;
}

int phc__trust_is_pinned(const phc_trust *t, const X509 *cert)
{
    for (int i = 0; i < sk_X509_num(t->anchors); i++)
        if (X509_cmp(sk_X509_value(t->anchors, i), cert) == 0)
            return 1;
    return 0;
}

int phc__trust_same(const phc_trust *a, const phc_trust *b)
{
    if (sk_X509_num(a->anchors) != sk_X509_num(b->anchors))
        return 0;
    for (int i = 0; i < sk_X509_num(a->anchors); i++)
        if (!phc__trust_is_pinned(b, sk_X509_value(a->anchors, i)))
            return 0;
    return 1;
}

int phc__trust_count(const phc_trust *t)
{
    return sk_X509_num(t->anchors);
}

long long phc__trust_earliest_expiry(const phc_trust *t)
{
    long long best = 0;
    for (int i = 0; i < sk_X509_num(t->anchors); i++) {
        struct tm tm;
        const ASN1_TIME *na = X509_get0_notAfter(sk_X509_value(t->anchors, i));
        if (!ASN1_TIME_to_tm(na, &tm))
            continue;
        long long when = (long long)timegm(&tm);
        if (best == 0 || when < best)
            best = when;
    }
    return best;
}

int phc__trust_verify(const phc_trust *t, X509 *leaf, STACK_OF(X509) * untrusted, int purpose,
                      long long now, phc_errbuf *err)
{
    int rc = PHC_ERR_INTERNAL;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx || !X509_STORE_CTX_init(ctx, t->store, leaf, untrusted)) {
        rc = phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot set up certificate verification");
        goto out;
    }
    X509_STORE_CTX_set_purpose(ctx, purpose);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
    char subj[256], iss[256];
    phc__name_str(subj, sizeof(subj), X509_get_subject_name(leaf));
    phc__name_str(iss, sizeof(iss), X509_get_issuer_name(leaf));
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        rc = phc__err(err, PHC_ERR_TRUST, "certificate '%s' issued by '%s' is not trusted: %s",
                      subj, iss, X509_verify_cert_error_string(e));
        goto out;
    }
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    X509 *top = sk_X509_value(chain, sk_X509_num(chain) - 1);
    if (!phc__trust_is_pinned(t, top)) {
        rc = phc__err(err, PHC_ERR_TRUST,
                      "certificate '%s' issued by '%s' does not chain to a pinned CA in %s", subj,
                      iss, t->ca_file);
        goto out;
    }
    rc = PHC_OK;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return rc;
}

phc_trust *phc__trust_ref(phc_trust *t)
{
    __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
    return t;
}

void phc__trust_free(phc_trust *t)
{
    if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    X509_STORE_free(t->store);
    sk_X509_pop_free(t->anchors, X509_free);
    free(t->ca_file);
    free(t);
}
