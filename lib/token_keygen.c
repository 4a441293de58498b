/* Token administration, key generation: a new key pair for the client (generated on the
 * token, pending until a certificate is installed for it) and the certificate request for a
 * key, signed on the token. */
#include "token_impl.h"

#include "csr.h"
#include "err.h"
#include "util_hex.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------------------------------ */
/* Key generation */

static int parse_key_type(const char *s, phc_p11_keykind *kind, int *bits, phc_errbuf *err)
{
    static const struct {
        const char *name;
        phc_p11_keykind kind;
        int bits;
    } types[] = {
        {"rsa:2048", PHC_P11_RSA, 2048},    {"rsa:3072", PHC_P11_RSA, 3072},
        {"rsa:4096", PHC_P11_RSA, 4096},    {"ec:P-256", PHC_P11_EC_P256, 256},
        {"ec:P-384", PHC_P11_EC_P384, 384},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcasecmp(s, types[i].name)) {
            *kind = types[i].kind;
            *bits = types[i].bits;
            return 0;
        }
    return phc__err(err, PHC_ERR_CONFIG,
                    "key type '%.32s' is not one of rsa:2048, rsa:3072, rsa:4096, ec:P-256, "
                    "ec:P-384",
                    s);
}

/* The key type of a key as phc names it ("rsa:2048"); NULL for an unsupported key. */
static const char *key_type_of(const tkey *k)
{
    static const char *const names[] = {"rsa:2048", "rsa:3072", "rsa:4096", "ec:P-256", "ec:P-384"};
    static const char *const descs[] = {"RSA 2048", "RSA 3072", "RSA 4096", "EC P-256", "EC P-384"};
    for (size_t i = 0; i < 5; i++)
        if (!strcmp(k->desc, descs[i]))
            return names[i];
    return NULL;
}

/* Marks every one-byte id that any object on the token uses. */
static int used_ids(phc_p11 *p, unsigned char used[256], phc_errbuf *err)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE};
    memset(used, 0, 256);
    used[0] = 1; /* 00 reads like "no id" */
    for (size_t c = 0; c < 3; c++) {
        phc_p11_match m = {classes[c], NULL, NULL, 0, 0};
        CK_OBJECT_HANDLE *h = NULL;
        size_t n = 0;
        int rc = phc__p11_find(p, &m, &h, &n, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++) {
            unsigned char id[ID_MAX];
            size_t len = 0;
            if ((rc = phc__token_object_id(p, h[i], id, &len, err))) {
                OPENSSL_free(h);
                return rc;
            }
            if (len == 1)
                used[id[0]] = 1;
        }
        OPENSSL_free(h);
    }
    return 0;
}

/* Objects of any class with exactly this id: an old certificate left under a new key's id
 * would be paired with it. */
static int id_taken(phc_p11 *p, const unsigned char *id, size_t len, phc_errbuf *err)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE};
    size_t total = 0;
    for (size_t c = 0; c < 3; c++) {
        phc_p11_match m = {classes[c], NULL, id, len, 1};
        CK_OBJECT_HANDLE *h = NULL;
        size_t n = 0;
        int rc = phc__p11_find(p, &m, &h, &n, err);
        OPENSSL_free(h);
        if (rc)
            return rc;
        total += n;
    }
    return total > 0;
}

/* An earlier attempt of this call failed after asking for a key pair with id (a transient
 * answer, phc__token_again): whatever of it the token kept is this call's, not a pending
 * renewal, and goes before the next attempt. */
static int drop_tried(phc_token *t, const unsigned char *id, size_t id_len, phc_errbuf *err)
{
    static const CK_OBJECT_CLASS cls[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    char idhex[2 * ID_MAX + 1];
    phc__hex(idhex, sizeof(idhex), id, id_len);
    for (size_t c = 0; c < sizeof(cls) / sizeof(cls[0]); c++) {
        phc_p11_match m = {cls[c], t->want_label, id, id_len, 1};
        CK_OBJECT_HANDLE *h = NULL;
        size_t n = 0;
        int rc = phc__p11_find(t->p11, &m, &h, &n, err);
        for (size_t i = 0; !rc && i < n; i++) {
            phc__log(&t->log, PHC_LOG_WARN,
                     "deleting the %s key id %s that the failed attempt left on token '%s'",
                     c ? "public" : "private", idhex, phc__p11_token_label(t->p11));
            rc = phc__p11_destroy(t->p11, h[i], "the key of the failed attempt", err);
        }
        OPENSSL_free(h);
        if (rc)
            return rc;
    }
    return 0;
}

static int generate_once(phc_token *t, const char *key_type, int pending,
                         char id_hex[PHC_ID_HEX_MAX], unsigned char *tried, size_t *tried_len,
                         int *relisted, phc_errbuf *err)
{
    inventory inv;
    phc_p11_keykind kind = PHC_P11_RSA;
    int bits = 0;
    unsigned char id[ID_MAX];
    size_t id_len = 0;
    char want[200], idhex[2 * ID_MAX + 1];
    const char *tok = phc_token_label(t);
    if (id_hex)
        id_hex[0] = '\0';
    int rc = *tried_len ? drop_tried(t, tried, *tried_len, err) : 0;
    *tried_len = 0;
    if (rc || (rc = phc__token_inventory_load(t, &inv, err)))
        return rc;
    phc__token_wanted_words(t, want, sizeof(want));
    if (!t->want_label) {
        rc = phc__err(err, PHC_ERR_CONFIG,
                      "config key 'key' names no object=: new keys need a label (e.g. "
                      "pkcs11:token=%s;object=client;type=private)",
                      tok);
        goto out;
    }
    if (!pending) {
        if (inv.nkeys) {
            phc__hex(idhex, sizeof(idhex), inv.keys[0].id, inv.keys[0].id_len);
            rc = phc__err(err, PHC_ERR_CONFIG,
                          "token '%s' already holds a key with %s (id %s): to renew, make a "
                          "new request for that key or generate a pending key",
                          tok, want, idhex);
            goto out;
        }
        if (!key_type)
            key_type = "rsa:2048";
    } else {
        if (t->has_id) {
            rc = phc__err(err, PHC_ERR_CONFIG,
                          "config key 'key' pins the id (%s): a new key gets a new id, which the "
                          "connector would never use; remove id= from 'key'",
                          want);
            goto out;
        }
        if (!inv.nkeys) {
            rc = phc__err(err, PHC_ERR_HSM,
                          "no key with %s on token '%s' to renew: generate the "
                          "first key pair",
                          want, tok);
            goto out;
        }
        for (size_t k = 0; k < inv.nkeys; k++)
            if (!phc__token_key_ncerts(&inv, k)) {
                phc__hex(idhex, sizeof(idhex), inv.keys[k].id, inv.keys[k].id_len);
                if (!*relisted) {
                    /* SoftHSM may have read the certificate's object file while another
                     * process rewrote it: one more look, after reopening, before refusing. */
                    char what[96];
                    snprintf(what, sizeof(what),
                             "listing the keys (key id %.16s shows no certificate)", idhex);
                    phc__p11_fail_odd(what);
                    *relisted = 1;
                }
                rc = phc__err(err, PHC_ERR_CONFIG,
                              "key id %s on token '%s' is already pending (no certificate yet): "
                              "make its request again, or delete the pending keys",
                              idhex, tok);
                goto out;
            }
        if (!key_type) {
            long a = phc__token_active_cert(&inv, phc__token_now_or(0));
            const tkey *cur = a >= 0 ? &inv.keys[inv.certs[a].key] : &inv.keys[0];
            key_type = key_type_of(cur);
            if (!key_type)
                key_type = "rsa:2048";
        }
    }
    if ((rc = parse_key_type(key_type, &kind, &bits, err)))
        goto out;

    /* The id: the URI's, or the lowest one-byte id above the client's keys that no object
     * on the token uses. */
    if (t->has_id) {
        memcpy(id, t->want_id, t->want_id_len);
        id_len = t->want_id_len;
        int taken = id_taken(t->p11, id, id_len, err);
        if (taken < 0) {
            rc = taken;
            goto out;
        }
        if (taken) {
            phc__hex(idhex, sizeof(idhex), id, id_len);
            rc = phc__err(err, PHC_ERR_CONFIG,
                          "token '%s' already holds an object with id %s (a certificate or key "
                          "of another label?): choose another id= in 'key'",
                          tok, idhex);
            goto out;
        }
    } else {
        unsigned char used[256];
        if ((rc = used_ids(t->p11, used, err)))
            goto out;
        unsigned int from = 1;
        for (size_t k = 0; k < inv.nkeys; k++)
            if (inv.keys[k].id_len == 1 && inv.keys[k].id[0] >= from)
                from = inv.keys[k].id[0] + 1u;
        unsigned int pick = 0;
        for (unsigned int v = from; v < 256 && !pick; v++)
            if (!used[v])
                pick = v;
        for (unsigned int v = 1; v < from && !pick; v++)
            if (!used[v])
                pick = v;
        if (!pick) {
            rc =
                phc__err(err, PHC_ERR_HSM,
                         "token '%s' has no free one-byte key id left: prune old pairs first", tok);
            goto out;
        }
        id[0] = (unsigned char)pick;
        id_len = 1;
    }
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    memcpy(tried, id, id_len);
    *tried_len = id_len;
    if ((rc = phc__p11_generate(t->p11, kind, bits, t->want_label, id, id_len, &pub, &priv, err)))
        goto out;
    if (id_hex)
        phc__hex(id_hex, PHC_ID_HEX_MAX, id, id_len);
out:
    phc__token_inventory_free(&inv);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Requests */

int phc__token_generate_now(phc_token *t, const char *key_type, int pending,
                            char id_hex[PHC_ID_HEX_MAX], phc_errbuf *err)
{
    unsigned char tried[ID_MAX];
    size_t tried_len = 0;
    int relisted = 0;
    PHC_TOKEN_RETRY(t, err,
                    generate_once(t, key_type, pending, id_hex, tried, &tried_len, &relisted, err));
}

static int csr_once(phc_token *t, const char *id_hex, const char *subject, char **pem_out,
                    int *relisted, phc_errbuf *err)
{
    inventory inv;
    X509_NAME *name = NULL;
    const tkey *k = NULL;
    char idhex[2 * ID_MAX + 1], want[200];
    const char *tok = phc_token_label(t);
    *pem_out = NULL;
    int rc = phc__token_inventory_load(t, &inv, err);
    if (rc)
        return rc;
    phc__token_wanted_words(t, want, sizeof(want));
    if (id_hex) {
        unsigned char id[ID_MAX];
        size_t len = 0;
        if (phc__unhex(id, sizeof(id), &len, id_hex)) {
            rc = phc__err(err, PHC_ERR_CONFIG, "key id '%.40s' is not hex bytes (e.g. 02)", id_hex);
            goto out;
        }
        for (size_t i = 0; i < inv.nkeys && !k; i++)
            if (inv.keys[i].id_len == len && !memcmp(inv.keys[i].id, id, len))
                k = &inv.keys[i];
        if (!k) {
            if (!*relisted) { /* one more look, as for a pending key in generate_once */
                char what[96];
                snprintf(what, sizeof(what), "listing the keys (no key id %.16s)", id_hex);
                phc__p11_fail_odd(what);
                *relisted = 1;
            }
            rc = phc__err(err, PHC_ERR_HSM, "no key with %s and id %s on token '%s'", want, id_hex,
                          tok);
            goto out;
        }
    } else {
        long a = phc__token_active_cert(&inv, phc__token_now_or(0));
        if (a >= 0) {
            k = &inv.keys[inv.certs[a].key];
        } else {
            size_t npending = 0;
            for (size_t i = 0; i < inv.nkeys; i++)
                if (!phc__token_key_ncerts(&inv, i)) {
                    npending++;
                    k = &inv.keys[i];
                }
            if (npending != 1) {
                rc = phc__err(err, PHC_ERR_HSM,
                              npending ? "token '%s' has no active pair and several pending keys "
                                         "with %s: choose one by its key id"
                                       : "token '%s' has no active pair and no pending key with "
                                         "%s: generate a key pair (the first one, or a "
                                         "pending one to renew)",
                              tok, want);
                goto out;
            }
        }
    }
    phc__hex(idhex, sizeof(idhex), k->id, k->id_len);
    if (!k->supported) {
        rc = phc__err(err, PHC_ERR_HSM,
                      "key id %s on token '%s' is %s: supported are RSA 2048-4096 and EC "
                      "P-256/P-384",
                      idhex, tok, k->desc);
        goto out;
    }
    if (subject) {
        if ((rc = phc__dn_parse(&name, subject, err)))
            goto out;
    } else {
        const tcert *newest = NULL;
        for (size_t i = 0; i < inv.ncerts; i++)
            if (&inv.keys[inv.certs[i].key] == k &&
                (!newest ||
                 phc__cert_newer(inv.certs[i].x, inv.certs[i].seq, newest->x, newest->seq)))
                newest = &inv.certs[i];
        /* A new key takes the subject of the pair it is to succeed. */
        long a = phc__token_active_cert(&inv, phc__token_now_or(0));
        if (!newest && a >= 0)
            newest = &inv.certs[a];
        if (!newest) {
            rc = phc__err(err, PHC_ERR_CONFIG,
                          "key id %s has no certificate to copy the subject from, and there is "
                          "no active pair: give a subject",
                          idhex);
            goto out;
        }
        if (!(name = X509_NAME_dup(X509_get_subject_name(newest->x)))) {
            rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
            goto out;
        }
    }
    rc = phc__csr_make(pem_out, t->p11, k->priv, k->pub, name, err);
    if (!rc)
        phc__log(&t->log, PHC_LOG_INFO, "certificate request signed by key id %s on token '%s'",
                 idhex, tok);
out:
    X509_NAME_free(name);
    phc__token_inventory_free(&inv);
    return rc;
}

int phc__token_csr_now(phc_token *t, const char *id_hex, const char *subject, char **pem_out,
                       phc_errbuf *err)
{
    int relisted = 0;
    PHC_TOKEN_RETRY(t, err, csr_once(t, id_hex, subject, pem_out, &relisted, err));
}

int phc_subject_parse(const char *subject, char *rfc2253, size_t len, phc_errbuf *err)
{
    X509_NAME *name = NULL;
    int rc = phc__dn_parse(&name, subject, err);
    if (!rc && rfc2253 && len)
        phc__name_str(rfc2253, len, name);
    X509_NAME_free(name);
    return rc;
}
