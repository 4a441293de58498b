#include "trust.h"

#include "err.h"
#include "util_hex.h"
#include "x509_profile.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
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
    int profile;     /* PHC_X509_STRICT / PHC_X509_COMPATIBLE */
    int has_int_pin; /* a pinned certificate is not self-issued: partial chains may end there */
    char int_pin[PHC_NAME_MAX];
};

/* Keeps both ends of a long text: "CN=a very lo...,O=Org,C=DE". */
static void shorten_into(char *out, size_t outlen, const char *text, size_t len)
{
    if (outlen == 0)
        return;
    if (len < outlen) {
        memcpy(out, text, len);
        out[len] = '\0';
        return;
    }
    if (outlen < 8) {
        memcpy(out, text, outlen - 1);
        out[outlen - 1] = '\0';
        return;
    }
    size_t keep = outlen - 1 - 3, head = (keep + 1) / 2, tail = keep - head;
    memcpy(out, text, head);
    memcpy(out + head, "...", 3);
    memcpy(out + head + 3, text + len - tail, tail);
    out[outlen - 1] = '\0';
}

void phc__name_str(char *out, size_t outlen, const X509_NAME *name)
{
    char full[2048];
    BIO *b = BIO_new(BIO_s_mem());
    out[0] = '\0';
    if (!b)
        return;
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    int n = BIO_read(b, full, (int)sizeof(full) - 1);
    BIO_free(b);
    shorten_into(out, outlen, full, n > 0 ? (size_t)n : 0);
}

/* The first DNS or IP subjectAltName, for describing a certificate without a subject. */
static void first_san(char *out, size_t outlen, X509 *cert)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    out[0] = '\0';
    for (int i = 0; sans && !out[0] && i < sk_GENERAL_NAME_num(sans); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_DNS) {
            snprintf(out, outlen, "%.*s", ASN1_STRING_length(gn->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
        } else if (gn->type == GEN_IPADD) {
            int len = ASN1_STRING_length(gn->d.iPAddress);
            if (len == 4 || len == 16)
                inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress),
                          out, (socklen_t)outlen);
        }
    }
    GENERAL_NAMES_free(sans);
}

void phc__cert_str(char *out, size_t outlen, X509 *cert)
{
    out[0] = '\0';
    if (!cert)
        return;
    if (X509_NAME_entry_count(X509_get_subject_name(cert)) > 0) {
        phc__name_str(out, outlen, X509_get_subject_name(cert));
        return;
    }
    char text[512], san[256];
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    first_san(san, sizeof(san), cert);
    int n = snprintf(text, sizeof(text), "(empty subject, serial 0x%s%s%s)", hex ? hex : "?",
                     san[0] ? ", SAN " : "", san);
    OPENSSL_free(hex);
    BN_free(bn);
    shorten_into(out, outlen, text, n > 0 ? (size_t)n : 0);
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
            phc__hex(fp, sizeof(fp), md, 32);
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
            phc__hex(fp, sizeof(fp), pins[i], 32);
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
     * issuing CA rather than its root. Only then may a chain end below a root (partial
     * chain); a self-issued pin is a root, and a chain ends there only when the root is a
     * valid self-signed certificate (see phc__trust_check). Self-issued is judged by name
     * alone, so a root with a malformed key identifier still counts as a root. */
    for (int i = 0; i < sk_X509_num(t->anchors) && !t->has_int_pin; i++) {
        X509 *c = sk_X509_value(t->anchors, i);
        if (X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) != 0) {
            t->has_int_pin = 1;
            phc__cert_str(t->int_pin, sizeof(t->int_pin), c);
        }
    }
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

static int is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* names: 1 fills the verdict's names on acceptance too; 0 only on refusal or a partial chain
 * (the one acceptance that is logged). Formatting the leaf's subject and issuer and the
 * anchor costs ~56k instructions per handshake, and an accepted connection names nothing. */
static int check(const phc_trust *t, X509 *leaf, STACK_OF(X509) * untrusted, int purpose,
                 const char *host, long long at, int relax, int names, phc_verdict *v,
                 STACK_OF(X509) * *chain_out)
{
    int ok = -1;
    memset(v, 0, sizeof(*v));
    v->error = X509_V_ERR_UNSPECIFIED;
    if (chain_out)
        *chain_out = NULL;
    unsigned rl = relax < 0 ? phc__x509_relax_of(t->profile) : (unsigned)relax;
    X509_STORE_CTX *ctx = NULL;
    if (!leaf)
        goto out;
    v->leaf_has_san = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1) >= 0;
    if (!(ctx = X509_STORE_CTX_new()) || !X509_STORE_CTX_init(ctx, t->store, leaf, untrusted))
        goto out;
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    phc__x509_profile_params(param, rl, t->has_int_pin);
    if (host && !(is_ip_literal(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                                      : X509_VERIFY_PARAM_set1_host(param, host, 0)))
        goto out;
    if (!X509_STORE_CTX_set_purpose(ctx, purpose))
        goto out;
    if (at)
        X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
    ok = 0;
    if (X509_verify_cert(ctx) != 1) {
        v->error = X509_STORE_CTX_get_error(ctx);
        if (v->error == X509_V_OK)
            v->error = X509_V_ERR_UNSPECIFIED;
        v->depth = X509_STORE_CTX_get_error_depth(ctx);
        X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
        phc__cert_str(v->failed, sizeof(v->failed), bad ? bad : leaf);
        goto out;
    }
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    int top_depth = sk_X509_num(chain) - 1;
    X509 *top = sk_X509_value(chain, top_depth);
    int rule = 0, depth = top_depth;
    if (!phc__trust_is_pinned(t, top))
        rule = PHC_RULE_NOT_PINNED;
    else if (X509_NAME_cmp(X509_get_subject_name(top), X509_get_issuer_name(top)) != 0)
        v->partial = 1;
    else if (t->has_int_pin && X509_self_signed(top, 1) != 1)
        /* Reached only through the partial-chain flag an intermediate pin turns on: OpenSSL
         * did not take this root for self-signed (a bad signature or key identifier). */
        rule = PHC_RULE_ANCHOR_NOT_SELF_SIGNED;
    if (!rule)
        rule = phc__x509_profile_check(chain, purpose, rl, &depth, v->detail, sizeof(v->detail));
    if (names || rule || v->partial)
        phc__cert_str(v->anchor, sizeof(v->anchor), top);
    if (rule) {
        v->error = rule;
        v->depth = depth;
        phc__cert_str(v->failed, sizeof(v->failed), sk_X509_value(chain, depth));
        goto out;
    }
    v->error = 0;
    v->depth = 0;
    if (chain_out && !(*chain_out = X509_STORE_CTX_get1_chain(ctx))) {
        v->error = X509_V_ERR_OUT_OF_MEM;
        ok = -1;
        goto out;
    }
    ok = 1;
out:
    if (leaf && (names || ok != 1 || v->partial)) {
        phc__cert_str(v->subject, sizeof(v->subject), leaf);
        phc__name_str(v->issuer, sizeof(v->issuer), X509_get_issuer_name(leaf));
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return ok;
}

int phc__trust_check(const phc_trust *t, X509 *leaf, STACK_OF(X509) * untrusted, int purpose,
                     const char *host, long long at, int relax, phc_verdict *v,
                     STACK_OF(X509) * *chain_out)
{
    return check(t, leaf, untrusted, purpose, host, at, relax, 1, v, chain_out);
}

int phc__trust_check_lean(const phc_trust *t, X509 *leaf, STACK_OF(X509) * untrusted, int purpose,
                          const char *host, long long at, phc_verdict *v,
                          STACK_OF(X509) * *chain_out)
{
    return check(t, leaf, untrusted, purpose, host, at, -1, 0, v, chain_out);
}

int phc__trust_refusal(phc_errbuf *err, const char *what, const phc_verdict *v, const char *host,
                       const phc_trust *t)
{
    /* "server certificate" is refused at connect time; anything else (install) is "not
     * trusted", the words operators' runbooks already grep for. */
    const char *verb = strcmp(what, "server certificate") == 0 ? "refused:" : "is not trusted:";
    const char *subj = v->subject[0] ? v->subject : "(none presented)";
    const char *iss = v->issuer[0] ? v->issuer : "(unknown)";
    switch (v->error) {
    case PHC_RULE_NOT_PINNED:
        return phc__err(err, PHC_ERR_TRUST,
                        "%s '%s' issued by '%s' %s its chain ends at '%s', which is not a "
                        "pinned CA in %s",
                        what, subj, iss, verb, v->anchor, t->ca_file);
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return phc__err(err, PHC_ERR_TRUST, "%s '%s' issued by '%s' %s not valid for host '%s'%s",
                        what, subj, iss, verb, host ? host : "?",
                        v->leaf_has_san ? ""
                                        : " (it has no subjectAltName; a host name only in the "
                                          "subject CN is not accepted)");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return phc__err(err, PHC_ERR_TRUST,
                        "%s '%s' issued by '%s' %s not issued by a pinned CA (%s at '%s')", what,
                        subj, iss, verb, X509_verify_cert_error_string(v->error), v->failed);
    default:
        return phc__err(err, PHC_ERR_TRUST, "%s '%s' issued by '%s' %s %s%s%s (certificate '%s')",
                        what, subj, iss, verb, phc__x509_reason(v->error), v->detail[0] ? ": " : "",
                        v->detail, v->failed);
    }
}

int phc__trust_verify(const phc_trust *t, X509 *leaf, STACK_OF(X509) * untrusted, int purpose,
                      long long now, phc_errbuf *err)
{
    phc_verdict v;
    /* The names are shown only in a refusal, and a refusal has them. */
    int ok = check(t, leaf, untrusted, purpose, NULL, now, -1, 0, &v, NULL);
    if (ok < 0)
        return phc__err(err, PHC_ERR_INTERNAL, "cannot set up certificate verification");
    return ok ? PHC_OK : phc__trust_refusal(err, "certificate", &v, NULL, t);
}

void phc__trust_set_profile(phc_trust *t, int profile)
{
    t->profile = profile;
}

const char *phc__trust_ca_file(const phc_trust *t)
{
    return t->ca_file;
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
