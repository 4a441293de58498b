/* Token administration, certificates: the checks a certificate passes before it is stored
 * (phc_token_check_cert), its install, and the changes that remove: prune (old pairs) and
 * rollback (the newest certificate). */
#include "token_impl.h"

#include "csr.h"
#include "err.h"
#include "lists.h"
#include "util_hex.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Certificate checks */

static int read_pem(X509 **leaf, STACK_OF(X509) * *chain, const char *pem, size_t len,
                    phc_errbuf *err)
{
    *leaf = NULL;
    *chain = NULL;
    if (!pem || !len || len > 1024 * 1024)
        return phc__err(err, PHC_ERR_CONFIG, "no certificate given (an empty or oversized file)");
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *x;
    if (!b || !sk) {
        BIO_free(b);
        sk_X509_free(sk);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            break;
        }
    BIO_free(b);
    ERR_clear_error();
    if (sk_X509_num(sk) == 0) {
        sk_X509_free(sk);
        return phc__err(err, PHC_ERR_CONFIG,
                        "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)");
    }
    *leaf = sk_X509_shift(sk);
    *chain = sk;
    return 0;
}

/* The checks of phc_token_check_cert, in their documented order. On success *key is the
 * index of the matching key in inv. */
static int check_cert(phc_token *t, const inventory *inv, X509 *x, STACK_OF(X509) * chain,
                      long long now, size_t *key, phc_errbuf *err)
{
    char cn[400], when[40], fp[80];
    const char *tok = phc_token_label(t);
    phc_trust *trust = NULL;
    int rc = 0;
    phc__token_cert_words(cn, sizeof(cn), x);

    /* Validity window, with a little room for clocks that differ. */
    int v = phc__cert_validity(x, now);
    if (v == PHC_CERT_NOT_YET_VALID && phc__cert_validity(x, now + PHC_INSTALL_SKEW) == 0)
        v = PHC_CERT_VALID;
    if (v == PHC_CERT_EXPIRED) {
        phc__token_time_words(when, sizeof(when), phc__asn1_time_epoch(X509_get0_notAfter(x)));
        return phc__err(err, PHC_ERR_TRUST, "certificate %s expired on %s: not installed", cn,
                        when);
    }
    if (v == PHC_CERT_NOT_YET_VALID) {
        phc__token_time_words(when, sizeof(when), phc__asn1_time_epoch(X509_get0_notBefore(x)));
        return phc__err(err, PHC_ERR_TRUST,
                        "certificate %s is not valid before %s (more than %d s ahead of this "
                        "host's clock): not installed",
                        cn, when, PHC_INSTALL_SKEW);
    }
    if (v != PHC_CERT_VALID)
        return phc__err(err, PHC_ERR_TRUST,
                        "certificate %s has an unreadable validity period: not installed", cn);
    /* basicConstraints CA:TRUE itself, whatever the key usage says. */
    if (X509_get_extension_flags(x) & EXFLAG_CA)
        return phc__err(err, PHC_ERR_TRUST,
                        "certificate %s is a CA certificate, not a client certificate: not "
                        "installed",
                        cn);

    /* Client authentication. */
    uint32_t flags = X509_get_extension_flags(x);
    if ((flags & EXFLAG_XKUSAGE) && !(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT))
        return phc__err(err, PHC_ERR_TRUST,
                        "certificate %s is not for TLS client authentication (its extended key "
                        "usage lacks clientAuth): not installed",
                        cn);
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE))
        return phc__err(err, PHC_ERR_TRUST,
                        "certificate %s does not allow digitalSignature (key usage), which TLS "
                        "client authentication needs: not installed",
                        cn);

    /* Chain to a pinned CA, judged inside the window so only trust can fail here. */
    long long at = now;
    long long nb = phc__asn1_time_epoch(X509_get0_notBefore(x));
    if (nb > at)
        at = nb;
    if ((rc =
             phc__trust_load(&trust, t->cfg->ca_file, (const unsigned char(*)[32])t->cfg->ca_sha256,
                             t->cfg->n_ca_sha256, err)))
        return rc;
    phc__trust_set_profile(trust, t->cfg->x509_profile);
    rc = phc__trust_verify(trust, x, chain, X509_PURPOSE_SSL_CLIENT, at, err);
    phc__trust_free(trust);
    if (rc) {
        /* trust.c names subject, issuer and reason; add the consequence. */
        size_t n = strlen(err ? err->msg : "");
        if (err)
            snprintf(err->msg + n, sizeof(err->msg) - n, " (pinned CA file %s): not installed",
                     t->cfg->ca_file);
        return PHC_ERR_TRUST;
    }

    /* Strength. */
    EVP_PKEY *pk = X509_get0_pubkey(x);
    char desc[32];
    int supported = 0;
    phc__token_describe_pub(pk, desc, sizeof(desc), &supported);
    if (pk && EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bits(pk) < t->cfg->min_rsa_bits)
        return phc__err(err, PHC_ERR_TRUST,
                        "certificate %s has an RSA %d key, weaker than min_rsa_bits %d: not "
                        "installed",
                        cn, EVP_PKEY_get_bits(pk), t->cfg->min_rsa_bits);
    if (!supported)
        return phc__err(err, PHC_ERR_TRUST,
                        "certificate %s has a %s key: supported are RSA 2048-4096 and EC "
                        "P-256/P-384: not installed",
                        cn, desc);
    int mdnid = NID_undef, pknid = NID_undef;
    if (!OBJ_find_sigid_algs(X509_get_signature_nid(x), &mdnid, &pknid) || mdnid == NID_md5 ||
        mdnid == NID_sha1 || mdnid == NID_md4 || mdnid == NID_undef) {
        ERR_clear_error();
        return phc__err(err, PHC_ERR_TRUST,
                        "certificate %s is signed with %s, which is too weak: not installed", cn,
                        OBJ_nid2ln(X509_get_signature_nid(x)));
    }

    /* One of the client's keys. */
    for (size_t i = 0; i < inv->nkeys; i++)
        if (inv->keys[i].pub && EVP_PKEY_eq(pk, inv->keys[i].pub) == 1) {
            *key = i;
            ERR_clear_error();
            return 0;
        }
    ERR_clear_error();
    char want[200];
    phc__token_wanted_words(t, want, sizeof(want));
    unsigned char md[32];
    unsigned int mdlen = 0;
    fp[0] = '\0';
    if (X509_pubkey_digest(x, EVP_sha256(), md, &mdlen))
        phc__hex(fp, sizeof(fp), md, 8);
    return phc__err(err, PHC_ERR_TRUST,
                    "certificate %s is for a key that is not on token '%s' (public key %s...; "
                    "keys with %s: %zu): not installed",
                    cn, tok, fp, want, inv->nkeys);
}

/* The pair x would make once stored (state judged among the existing certificates). Install
 * records it as the newest installation, unless the record cannot be read (not logged in):
 * then it cannot be written either, and x stays unrecorded. */
static void would_be(phc_pair_info *pi, const inventory *inv, size_t key, X509 *x, long long now)
{
    memset(pi, 0, sizeof(*pi));
    phc__token_key_fill(pi, &inv->keys[key]);
    phc__token_cert_fill(pi, x, now);
    pi->install_order = inv->order;
    /* Its place once appended (phc__order_append: the oldest falls out of a full record). */
    pi->install_seq = inv->order == PHC_ORDER_UNREADABLE ? -1
                      : inv->order_n < PHC_ORDER_MAX     ? (long)inv->order_n
                                                         : PHC_ORDER_MAX - 1;
    long a = phc__token_active_cert(inv, now);
    int v = phc__cert_validity(x, now);
    if (v == PHC_CERT_NOT_YET_VALID)
        pi->state = PHC_PAIR_NOT_YET_VALID;
    else if (a < 0 || phc__cert_newer(x, pi->install_seq, inv->certs[a].x, inv->certs[a].seq))
        pi->state = PHC_PAIR_ACTIVE;
    else
        pi->state = PHC_PAIR_RETIRED;
}

/* Appends x to the token's install-order record before x is stored (install_order.h: a
 * reader then never sees x without its entry). SoftHSM's transient answers are errors, for
 * the bounded retry (token_impl.h); a token that refuses the record otherwise (no login, no
 * data objects) gets x all the same, and ties with x stay with the fixed order: said in the
 * log. */
static int record_install(phc_token *t, X509 *x, const char *cn, phc_errbuf *err)
{
    unsigned char md[32];
    unsigned int n = sizeof(md);
    phc_errbuf e = {0};
    CK_RV rv = CKR_OK;
    if (!X509_digest(x, EVP_sha256(), md, &n))
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot hash the certificate");
    if (phc__p11_order_add(t->p11, md, &rv, &e) == 0)
        return 0;
    if (rv == CKR_GENERAL_ERROR || rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_FUNCTION_FAILED ||
        e.code == PHC_ERR_PIN || rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
        rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED)
        return phc__err_copy(err, &e);
    phc__p11_last_fail_clear(); /* not the token's transient state: nothing to retry */
    phc__log(&t->log, PHC_LOG_WARN,
             "%s; certificate %s is stored without it, so a tie with another certificate of "
             "the very same notBefore and notAfter is broken by a fixed order, not by this "
             "installation",
             e.msg, cn);
    return 0;
}

/* Is x for one of the keys in inv? */
static int key_listed(const inventory *inv, X509 *x)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    int found = 0;
    for (size_t i = 0; pk && i < inv->nkeys && !found; i++)
        found = inv->keys[i].pub && EVP_PKEY_eq(pk, inv->keys[i].pub) == 1;
    ERR_clear_error();
    return found;
}

/* The certificate's key is not in the listing: before refusing, reopen the token and list
 * once more after a short pause. SoftHSM rewrites its token file at every login of any
 * process and a reader may see it empty (p11_module.h); a key that is really absent costs
 * 50 ms. */
static int relist_keys(phc_token *t, inventory *inv, X509 *x, phc_errbuf *err)
{
    char cn[400];
    phc__token_cert_words(cn, sizeof(cn), x);
    phc__log(&t->log, PHC_LOG_INFO,
             "the key of certificate %s is not among the %zu key(s) listed on token '%s': "
             "listing them again",
             cn, inv->nkeys, phc__p11_token_label(t->p11));
    phc__token_inventory_free(inv);
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    int rc = phc__p11_reopen(t->p11, t->cfg->pkcs11_module, t->cfg->key, t->cfg->pin, err);
    if (!rc)
        rc = phc__token_inventory_load(t, inv, err);
    if (!rc && key_listed(inv, x))
        phc__log(&t->log, PHC_LOG_WARN,
                 "the key of certificate %s was missing from the first listing of token '%s' "
                 "and is there in the second: SoftHSM's token file was being rewritten by "
                 "another process",
                 cn, phc__p11_token_label(t->p11));
    return rc;
}

static int check_or_install(phc_token *t, const char *pem, size_t len, long long now,
                            phc_pair_info *out, int *already, int store, phc_errbuf *err)
{
    inventory inv;
    X509 *x = NULL;
    STACK_OF(X509) *chain = NULL;
    size_t key = 0;
    unsigned char *der = NULL;
    now = phc__token_now_or(now);
    if (already)
        *already = 0;
    if (out)
        memset(out, 0, sizeof(*out));
    int rc = read_pem(&x, &chain, pem, len, err);
    if (rc)
        return rc;
    if ((rc = phc__token_inventory_load(t, &inv, err)))
        goto out_noinv;
    if (!key_listed(&inv, x) && (rc = relist_keys(t, &inv, x, err)))
        goto out_noinv;
    if ((rc = check_cert(t, &inv, x, chain, now, &key, err)))
        goto out;
    int have = 0;
    for (size_t i = 0; i < inv.ncerts && !have; i++)
        have = X509_cmp(inv.certs[i].x, x) == 0;
    if (out) {
        if (have) {
            /* Already there: report it as it stands. */
            long a = phc__token_active_cert(&inv, now);
            for (size_t i = 0; i < inv.ncerts; i++)
                if (X509_cmp(inv.certs[i].x, x) == 0)
                    phc__token_pair_of_cert(out, &inv, i, a, now);
        } else {
            would_be(out, &inv, key, x, now);
        }
    }
    if (already)
        *already = have;
    if (!store || have)
        goto out;

    const tkey *k = &inv.keys[key];
    int derlen = i2d_X509(x, &der);
    unsigned char *subj = NULL, *iss = NULL, *ser = NULL;
    int slen = i2d_X509_NAME(X509_get_subject_name(x), &subj);
    int ilen = i2d_X509_NAME(X509_get_issuer_name(x), &iss);
    int nlen = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &ser);
    if (derlen <= 0 || slen <= 0 || ilen <= 0 || nlen <= 0) {
        OPENSSL_free(subj);
        OPENSSL_free(iss);
        OPENSSL_free(ser);
        rc = phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot encode the certificate");
        goto out;
    }
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_LABEL, (void *)k->label, strlen(k->label)},
        {CKA_ID, (void *)k->id, k->id_len},
        {CKA_SUBJECT, subj, (CK_ULONG)slen},
        {CKA_ISSUER, iss, (CK_ULONG)ilen},
        {CKA_SERIAL_NUMBER, ser, (CK_ULONG)nlen},
        {CKA_VALUE, der, (CK_ULONG)derlen},
    };
    char cn[400], what[440], idhex[2 * ID_MAX + 1];
    phc__token_cert_words(cn, sizeof(cn), x);
    phc__hex(idhex, sizeof(idhex), k->id, k->id_len);
    snprintf(what, sizeof(what), "certificate %s", cn);
    rc = record_install(t, x, cn, err);
    if (!rc)
        rc = phc__p11_create(t->p11, a, sizeof(a) / sizeof(a[0]), NULL, what, err);
    OPENSSL_free(subj);
    OPENSSL_free(iss);
    OPENSSL_free(ser);
    if (!rc)
        phc__log(&t->log, PHC_LOG_INFO, "stored certificate %s for key id %s on token '%s'", cn,
                 idhex, phc_token_label(t));
out:
    phc__token_inventory_free(&inv);
out_noinv:
    OPENSSL_free(der);
    X509_free(x);
    sk_X509_pop_free(chain, X509_free);
    ERR_clear_error();
    return rc;
}

/* check_or_install under the token's bounded retry (token_impl.h): a transient SoftHSM state
 * runs the whole check again from the start. */
static int check_or_install_again(phc_token *t, const char *pem, size_t len, long long now,
                                  phc_pair_info *pi, int *already, int install, phc_errbuf *err)
{
    PHC_TOKEN_RETRY(t, err, check_or_install(t, pem, len, now, pi, already, install, err));
}

/* The public side of check_or_install: the phc_pair_info the caller asked for is the
 * library's to allocate (token.h), so that it can grow. */
static int check_or_install_out(phc_token *t, const char *pem, size_t len, long long now,
                                phc_pair_info **out, int *already, int install, phc_errbuf *err)
{
    phc_pair_info *pi = NULL;
    if (out)
        *out = NULL;
    if (!t)
        return phc__err(err, PHC_ERR_INTERNAL, "no token handle");
    if (out && !(pi = OPENSSL_zalloc(sizeof(*pi))))
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    int rc = check_or_install_again(t, pem, len, now, pi, already, install, err);
    if (rc == PHC_OK && out) {
        *out = pi;
        pi = NULL;
    }
    phc_pair_info_free(pi);
    return rc;
}

int phc__token_check_cert_now(phc_token *t, const char *pem, size_t len, long long now,
                              phc_pair_info **out, int *already, phc_errbuf *err)
{
    return check_or_install_out(t, pem, len, now, out, already, 0, err);
}

int phc__token_install_cert_now(phc_token *t, const char *pem, size_t len, long long now,
                                phc_pair_info **out, int *already, phc_errbuf *err)
{
    return check_or_install_out(t, pem, len, now, out, already, 1, err);
}

/* ------------------------------------------------------------------------------------ */
/* Deleting */

/* Deletes a key: private half first (without it the pair is gone for the connector), then
 * the public object(s) with its id. */
static int delete_key(phc_token *t, const tkey *k, phc_errbuf *err)
{
    char what[320], idhex[2 * ID_MAX + 1];
    phc__hex(idhex, sizeof(idhex), k->id, k->id_len);
    snprintf(what, sizeof(what), "private key '%s' (id %s)", k->label, idhex);
    int rc = phc__p11_destroy(t->p11, k->priv, what, err);
    if (rc)
        return rc;
    phc_p11_match m = {CKO_PUBLIC_KEY, NULL, k->id, k->id_len, 1};
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    if ((rc = phc__p11_find(t->p11, &m, &h, &n, err)))
        return rc;
    snprintf(what, sizeof(what), "public key (id %s)", idhex);
    for (size_t i = 0; i < n && !rc; i++)
        rc = phc__p11_destroy(t->p11, h[i], what, err);
    OPENSSL_free(h);
    return rc;
}

static int prune_once(phc_token *t, long long now, unsigned flags, phc_pair_list **out,
                      phc_errbuf *err)
{
    inventory inv;
    phc_pair_info *list = NULL;
    size_t cnt = 0;
    int dry = (flags & PHC_PRUNE_DRY_RUN) != 0;
    char cn[400];
    if (out)
        *out = NULL;
    long active;
    int rc = phc__token_inventory_at(t, &now, &inv, &active, err);
    if (rc)
        return rc;
    size_t cap = inv.ncerts + inv.nkeys;
    unsigned char *gone = OPENSSL_zalloc(inv.ncerts + 1); /* per certificate */
    if (!gone || (cap && !(list = OPENSSL_zalloc(cap * sizeof(*list))))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    /* Certificates first: a key is deleted only once nothing of it remains. */
    for (size_t i = 0; i < inv.ncerts && !rc; i++) {
        phc_pair_state st = phc__token_cert_state(&inv, i, active, now);
        if (st != PHC_PAIR_EXPIRED && st != PHC_PAIR_RETIRED)
            continue;
        phc__token_pair_of_cert(&list[cnt], &inv, i, active, now);
        phc__token_cert_words(cn, sizeof(cn), inv.certs[i].x);
        char what[440];
        snprintf(what, sizeof(what), "certificate %s", cn);
        if (!dry && (rc = phc__p11_destroy(t->p11, inv.certs[i].h, what, err)))
            break;
        gone[i] = 1;
        cnt++;
    }
    for (size_t k = 0; k < inv.nkeys && !rc; k++) {
        size_t total = 0, left = 0;
        for (size_t i = 0; i < inv.ncerts; i++)
            if (inv.certs[i].key == k) {
                total++;
                left += !gone[i];
            }
        if (left || (!total && !(flags & PHC_PRUNE_PENDING)))
            continue;
        if (active >= 0 && inv.certs[active].key == k)
            continue; /* cannot happen (left > 0); the invariant is worth a line */
        if (!total) {
            phc__token_pair_of_key(&list[cnt], &inv, k);
            cnt++;
        }
        if (!dry)
            rc = delete_key(t, &inv.keys[k], err);
    }
    if (!dry && cnt)
        phc__log(&t->log, PHC_LOG_INFO, "pruned %zu pair(s) on token '%s'", cnt,
                 phc_token_label(t));
out:
    OPENSSL_free(gone);
    phc__token_inventory_free(&inv);
    if (out) {
        phc_errbuf lerr = {0};
        int lrc = phc__pair_list_take(out, cnt ? list : NULL, cnt, &lerr);
        list = cnt ? NULL : list;
        if (lrc != PHC_OK && rc == PHC_OK)
            rc = phc__err_copy(err, &lerr);
    }
    OPENSSL_free(list);
    return rc;
}

int phc__token_prune_now(phc_token *t, long long now, unsigned flags, phc_pair_list **out,
                         phc_errbuf *err)
{
    PHC_TOKEN_RETRY(t, err, prune_once(t, now, flags, out, err));
}

static int rollback_once(phc_token *t, long long now, int dry_run, phc_pair_info *from,
                         phc_pair_info *to, phc_errbuf *err)
{
    inventory inv;
    if (from)
        memset(from, 0, sizeof(*from));
    if (to)
        memset(to, 0, sizeof(*to));
    long active;
    int rc = phc__token_inventory_at(t, &now, &inv, &active, err);
    if (rc)
        return rc;
    long next = -1;
    char cn[400];
    if (active < 0) {
        rc = phc__err(err, PHC_ERR_HSM, "token '%s' has no active pair to roll back from",
                      phc_token_label(t));
        goto out;
    }
    for (size_t i = 0; i < inv.ncerts; i++) {
        const tcert *c = &inv.certs[i];
        if ((long)i == active || !inv.keys[c->key].supported ||
            phc__cert_validity(c->x, now) != PHC_CERT_VALID)
            continue;
        if (next < 0 || phc__cert_newer(c->x, c->seq, inv.certs[next].x, inv.certs[next].seq))
            next = (long)i;
    }
    phc__token_cert_words(cn, sizeof(cn), inv.certs[active].x);
    if (next < 0) {
        rc = phc__err(err, PHC_ERR_HSM,
                      "no other valid pair on token '%s' to fall back to: removing certificate "
                      "%s would leave the connector without one",
                      phc_token_label(t), cn);
        goto out;
    }
    if (from)
        phc__token_pair_of_cert(from, &inv, (size_t)active, active, now);
    if (to) {
        phc__token_pair_of_cert(to, &inv, (size_t)next, active, now);
        to->state = PHC_PAIR_ACTIVE;
    }
    if (dry_run)
        goto out;
    char what[440];
    snprintf(what, sizeof(what), "certificate %s", cn);
    if ((rc = phc__p11_destroy(t->p11, inv.certs[active].h, what, err)))
        goto out;
    if (from)
        from->state = phc__token_key_ncerts(&inv, inv.certs[active].key) > 1 ? PHC_PAIR_RETIRED
                                                                             : PHC_PAIR_PENDING;
    phc__log(&t->log, PHC_LOG_INFO, "rolled back: removed certificate %s from token '%s'", cn,
             phc_token_label(t));
out:
    phc__token_inventory_free(&inv);
    return rc;
}

static int rollback_again(phc_token *t, long long now, int dry_run, phc_pair_info *from,
                          phc_pair_info *to, phc_errbuf *err)
{
    PHC_TOKEN_RETRY(t, err, rollback_once(t, now, dry_run, from, to, err));
}

int phc__token_rollback_now(phc_token *t, long long now, int dry_run, phc_pair_info **from,
                            phc_pair_info **to, phc_errbuf *err)
{
    phc_pair_info *f = NULL, *o = NULL;
    if (from)
        *from = NULL;
    if (to)
        *to = NULL;
    if ((from && !(f = OPENSSL_zalloc(sizeof(*f)))) || (to && !(o = OPENSSL_zalloc(sizeof(*o))))) {
        phc_pair_info_free(f);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    int rc = rollback_again(t, now, dry_run, f, o, err);
    if (rc == PHC_OK) {
        if (from)
            *from = f;
        if (to)
            *to = o;
        f = o = NULL;
    }
    phc_pair_info_free(f);
    phc_pair_info_free(o);
    return rc;
}
