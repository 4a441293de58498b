/* Token administration (see phconnect/token.h): the client's key pairs and certificates on
 * the token, read and changed through p11.c, judged with the rotation rule (rotation.h) and
 * the pinned trust store (trust.h).
 *
 * Every change is one PKCS#11 object operation, in an order that leaves a working token
 * after a crash at any point: a key pair is generated before its request is written, a
 * certificate is stored only after every check passed, and prune deletes a certificate
 * before its key (a key without a certificate is merely pending).
 *
 * The work is split by job: this file opens the token and reads what it holds (the
 * inventory, the pairs and their states); key generation and requests are in
 * token_keygen.c; certificate checks, install, prune and rollback in token_cert.c; what
 * they share is in token_impl.h. */
#include "token_impl.h"
#include "tokendir.h"

#include "err.h"
#include "lists.h"
#include "opts.h"
#include "util_hex.h"

#include <p11-kit/uri.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------------------------------ */
/* Small helpers */

void phc_free(void *p)
{
    OPENSSL_free(p);
}

long long phc__token_now_or(long long now)
{
    return now ? now : (long long)time(NULL);
}

void phc__token_describe_pub(EVP_PKEY *pub, char *desc, size_t len, int *supported)
{
    *supported = 0;
    if (!pub) {
        snprintf(desc, len, "unknown");
        return;
    }
    int bits = EVP_PKEY_get_bits(pub);
    if (EVP_PKEY_is_a(pub, "RSA")) {
        *supported = bits >= 2048 && bits <= 4096;
        snprintf(desc, len, "RSA %d%s", bits, *supported ? "" : " (unsupported)");
    } else if (EVP_PKEY_is_a(pub, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        if (!EVP_PKEY_get_group_name(pub, group, sizeof(group), &glen))
            snprintf(group, sizeof(group), "?");
        if (!strcmp(group, "prime256v1")) {
            *supported = 1;
            snprintf(desc, len, "EC P-256");
        } else if (!strcmp(group, "secp384r1")) {
            *supported = 1;
            snprintf(desc, len, "EC P-384");
        } else {
            snprintf(desc, len, "EC %.12s (unsupported)", group);
        }
    } else {
        snprintf(desc, len, "%.12s (unsupported)", EVP_PKEY_get0_type_name(pub));
    }
    ERR_clear_error();
}

void phc__token_cert_fill(phc_pair_info *pi, X509 *x, long long now)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    pi->has_cert = 1;
    phc__name_str(pi->subject, sizeof(pi->subject), X509_get_subject_name(x));
    phc__name_str(pi->issuer, sizeof(pi->issuer), X509_get_issuer_name(x));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *h = bn ? BN_bn2hex(bn) : NULL;
    snprintf(pi->serial, sizeof(pi->serial), "%s", h ? h : "?");
    OPENSSL_free(h);
    BN_free(bn);
    if (X509_digest(x, EVP_sha256(), md, &mdlen))
        phc__hex(pi->sha256, sizeof(pi->sha256), md, mdlen);
    phc__cert_dates(x, now, &pi->not_before, &pi->not_after, &pi->days_left);
    ERR_clear_error();
}

void phc__token_key_fill(phc_pair_info *pi, const tkey *k)
{
    phc__hex(pi->id_hex, sizeof(pi->id_hex), k->id, k->id_len);
    snprintf(pi->label, sizeof(pi->label), "%s", k->label);
    snprintf(pi->key_type, sizeof(pi->key_type), "%s", k->desc);
    pi->key_supported = k->supported;
}

/* "'CN=x' (serial 0A)": how a certificate is named in messages. */
void phc__token_cert_words(char *out, size_t len, X509 *x)
{
    phc_pair_info pi;
    memset(&pi, 0, sizeof(pi));
    phc__token_cert_fill(&pi, x, 0);
    snprintf(out, len, "'%s' (serial %s)", pi.subject, pi.serial);
}

void phc__token_time_words(char *out, size_t len, long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, len, "(unreadable time)");
}

/* ------------------------------------------------------------------------------------ */
/* Opening */

int phc__token_open_now(phc_token **out, phc_config *cfg, const phc_client_opts *opts,
                        phc_errbuf *err)
{
    P11KitUri *u = NULL;
    phc_token *t = NULL;
    *out = NULL;
    int rc = phc__client_opts_check(opts, err);
    if (rc != PHC_OK || (rc = phc_config_validate(cfg, err)) != PHC_OK)
        return rc;
    if (!cfg->key)
        return phc__err(err, PHC_ERR_CONFIG,
                        "config %s has no 'key': the token's key pairs are named by 'key' (with "
                        "'pkcs11_module' and 'pin')",
                        cfg->name ? cfg->name : "");
    if (!(t = OPENSSL_zalloc(sizeof(*t))) || !(u = p11_kit_uri_new())) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (opts) {
        t->log.fn = opts->log;
        t->log.ud = opts->log_userdata;
        t->log.level = opts->level;
    }
    t->cfg = phc__config_ref(cfg);
    /* config.c validated the URI already. */
    if (p11_kit_uri_parse(cfg->key, P11_KIT_URI_FOR_ANY, u) != P11_KIT_URI_OK) {
        rc = phc__err(err, PHC_ERR_CONFIG, "config key 'key' is not a valid PKCS#11 URI");
        goto out;
    }
    CK_ATTRIBUTE *a = p11_kit_uri_get_attribute(u, CKA_LABEL);
    if (a && !(t->want_label = OPENSSL_strndup(a->pValue, a->ulValueLen))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    a = p11_kit_uri_get_attribute(u, CKA_ID);
    if (a) {
        if (a->ulValueLen == 0 || a->ulValueLen > ID_MAX) {
            rc = phc__err(err, PHC_ERR_CONFIG, "config key 'key': id= must be 1 to %d bytes",
                          ID_MAX);
            goto out;
        }
        t->has_id = 1;
        t->want_id_len = a->ulValueLen;
        memcpy(t->want_id, a->pValue, a->ulValueLen);
    }
    if ((rc = phc__p11_open(&t->p11, cfg->pkcs11_module, cfg->key, cfg->pin, &t->log, err))) {
        rc = phc__tokendir_explain(rc, cfg->pkcs11_module, err);
        goto out;
    }
    *out = t;
    t = NULL;
out:
    p11_kit_uri_free(u);
    phc__token_free_now(t);
    return rc;
}

void phc__token_free_now(phc_token *t)
{
    if (!t)
        return;
    phc__p11_close(t->p11);
    OPENSSL_free(t->want_label);
    phc_config_free(t->cfg);
    OPENSSL_free(t);
}

const char *phc_token_label(const phc_token *t)
{
    return t ? phc__p11_token_label(t->p11) : "";
}

/* "label 'client'", "label 'client' (id 01)": the keys the URI names, for messages. */
void phc__token_wanted_words(const phc_token *t, char *out, size_t len)
{
    char idhex[2 * ID_MAX + 1];
    phc__hex(idhex, sizeof(idhex), t->want_id, t->want_id_len);
    if (t->want_label && t->has_id)
        snprintf(out, len, "label '%s' (id %s)", t->want_label, idhex);
    else if (t->want_label)
        snprintf(out, len, "label '%s'", t->want_label);
    else
        snprintf(out, len, "id %s", idhex);
}

/* ------------------------------------------------------------------------------------ */
/* Inventory */

void phc__token_inventory_free(inventory *inv)
{
    for (size_t i = 0; i < inv->nkeys; i++)
        EVP_PKEY_free(inv->keys[i].pub);
    for (size_t i = 0; i < inv->ncerts; i++)
        X509_free(inv->certs[i].x);
    OPENSSL_free(inv->keys);
    OPENSSL_free(inv->certs);
    phc__trust_free(inv->trust);
    memset(inv, 0, sizeof(*inv));
}

/* CKA_ID of an object into id/id_len (0 when it has none or a longer one). */
int phc__token_object_id(phc_p11 *p, CK_OBJECT_HANDLE h, unsigned char *id, size_t *id_len,
                         phc_errbuf *err)
{
    unsigned char *v = NULL;
    size_t n = 0;
    *id_len = 0;
    int rc = phc__p11_attr(p, h, CKA_ID, &v, &n, err);
    if (rc < 0)
        return rc;
    if (rc == 0 && n <= ID_MAX) {
        memcpy(id, v, n);
        *id_len = n;
    }
    OPENSSL_free(v);
    return 0;
}

/* The public half of a private key: from the public key object with its id, else from the
 * private key's own attributes (RSA shows n and e). NULL when neither is readable. */
static EVP_PKEY *key_public(phc_p11 *p, const tkey *k)
{
    phc_p11_match m = {CKO_PUBLIC_KEY, NULL, k->id, k->id_len, 1};
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    EVP_PKEY *pub = NULL;
    phc_errbuf ignore;
    if (phc__p11_find(p, &m, &h, &n, &ignore) == 0)
        for (size_t i = 0; i < n && !pub; i++)
            if (phc__p11_public_key(p, h[i], &pub, &ignore) != 0)
                pub = NULL;
    OPENSSL_free(h);
    if (!pub && phc__p11_public_key(p, k->priv, &pub, &ignore) != 0)
        pub = NULL;
    return pub;
}

int phc__token_inventory_at(phc_token *t, long long *now, inventory *inv, long *active,
                            phc_errbuf *err)
{
    *active = -1;
    if (!t)
        return phc__err(err, PHC_ERR_INTERNAL, "no token handle");
    *now = phc__token_now_or(*now);
    int rc = phc__token_inventory_load(t, inv, err);
    if (rc == PHC_OK)
        *active = phc__token_active_cert(inv, *now);
    return rc;
}

int phc__token_inventory_load(phc_token *t, inventory *inv, phc_errbuf *err)
{
    phc_p11 *p = t->p11;
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    memset(inv, 0, sizeof(*inv));
    /* Only for the chain rule: a CA file that cannot be read is reported where it matters. */
    if (phc__trust_load(&inv->trust, t->cfg->ca_file, (const unsigned char(*)[32])t->cfg->ca_sha256,
                        t->cfg->n_ca_sha256, NULL) != PHC_OK)
        inv->trust = NULL;
    phc_p11_match m = {CKO_PRIVATE_KEY, t->want_label, t->want_id, t->want_id_len, t->has_id};
    int rc = phc__p11_find(p, &m, &h, &n, err);
    if (rc)
        return rc;
    if (n && !(inv->keys = OPENSSL_zalloc(n * sizeof(*inv->keys)))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        tkey *k = &inv->keys[inv->nkeys];
        unsigned char *lab = NULL;
        size_t llen = 0;
        k->priv = h[i];
        if ((rc = phc__token_object_id(p, h[i], k->id, &k->id_len, err)) ||
            (rc = phc__p11_attr(p, h[i], CKA_LABEL, &lab, &llen, err)) < 0)
            goto out;
        snprintf(k->label, sizeof(k->label), "%s", lab ? (char *)lab : "");
        OPENSSL_free(lab);
        rc = 0;
        k->pub = key_public(p, k);
        phc__token_describe_pub(k->pub, k->desc, sizeof(k->desc), &k->supported);
        inv->nkeys++;
    }
    OPENSSL_free(h);
    h = NULL;

    phc_p11_match mc = {CKO_CERTIFICATE, NULL, NULL, 0, 0};
    if ((rc = phc__p11_find(p, &mc, &h, &n, err)))
        goto out;
    if (n && !(inv->certs = OPENSSL_zalloc(n * sizeof(*inv->certs)))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char id[ID_MAX];
        size_t id_len = 0;
        if ((rc = phc__token_object_id(p, h[i], id, &id_len, err)))
            goto out;
        size_t key = inv->nkeys;
        for (size_t j = 0; j < inv->nkeys && key == inv->nkeys; j++)
            if (inv->keys[j].id_len == id_len && !memcmp(inv->keys[j].id, id, id_len))
                key = j;
        if (key == inv->nkeys)
            continue; /* another application's certificate */
        unsigned char *der = NULL;
        size_t dlen = 0;
        if ((rc = phc__p11_attr(p, h[i], CKA_VALUE, &der, &dlen, err)) < 0)
            goto out;
        const unsigned char *q = der;
        X509 *x = der ? d2i_X509(NULL, &q, (long)dlen) : NULL;
        OPENSSL_free(der);
        ERR_clear_error();
        rc = 0;
        if (!x) {
            phc__log(&t->log, PHC_LOG_WARN,
                     "certificate object for key id %02x... on token '%s' is not a readable "
                     "X.509 certificate; ignored",
                     id_len ? id[0] : 0, phc__p11_token_label(p));
            continue;
        }
        inv->certs[inv->ncerts].h = h[i];
        inv->certs[inv->ncerts].x = x;
        inv->certs[inv->ncerts].key = key;
        inv->ncerts++;
    }
    /* The record after the certificates (install stores it before the certificate), so every
     * certificate seen here that install stored is in the record seen here. */
    phc_order order;
    if ((rc = phc__p11_order_read(p, &order, err)))
        goto out;
    inv->order = order.state;
    inv->order_n = order.n;
    for (size_t i = 0; i < inv->ncerts; i++)
        inv->certs[i].seq = phc__order_seq_of(&order, inv->certs[i].x);
out:
    OPENSSL_free(h);
    if (rc)
        phc__token_inventory_free(inv);
    return rc;
}

/* A certificate the connector may use at now: valid, for a supported key, and with that key's
 * public key; with chain set, also chaining to a pinned CA. */
static int candidate(const inventory *inv, const tcert *c, long long now, int chain)
{
    const tkey *k = &inv->keys[c->key];
    int ok = k->supported && phc__cert_validity(c->x, now) == PHC_CERT_VALID && k->pub &&
             EVP_PKEY_eq(X509_get0_pubkey(c->x), k->pub) == 1 &&
             (!chain ||
              phc__trust_verify(inv->trust, c->x, NULL, X509_PURPOSE_ANY, now, NULL) == PHC_OK);
    ERR_clear_error();
    return ok;
}

/* The rotation rule over the inventory: index of the active certificate, or -1. As in
 * lib/hsm.c (anyone can write a public certificate object without the PIN): a certificate
 * whose public key is not its key's is never active, nor - when one of the client's
 * certificates chains to ca_file - one that does not chain to it. */
long phc__token_active_cert(const inventory *inv, long long now)
{
    long best = -1;
    int chain = 0;
    for (size_t i = 0; inv->trust && i < inv->ncerts && !chain; i++)
        chain = candidate(inv, &inv->certs[i], now, 1);
    for (size_t i = 0; i < inv->ncerts; i++) {
        const tcert *c = &inv->certs[i];
        if (!candidate(inv, c, now, chain))
            continue;
        if (best < 0 || phc__cert_newer(c->x, c->seq, inv->certs[best].x, inv->certs[best].seq))
            best = (long)i;
    }
    return best;
}

phc_pair_state phc__token_cert_state(const inventory *inv, size_t i, long active, long long now)
{
    if ((long)i == active)
        return PHC_PAIR_ACTIVE;
    switch (phc__cert_validity(inv->certs[i].x, now)) {
    case PHC_CERT_VALID:
        return PHC_PAIR_RETIRED;
    case PHC_CERT_NOT_YET_VALID:
        return PHC_PAIR_NOT_YET_VALID;
    default:
        return PHC_PAIR_EXPIRED;
    }
}

size_t phc__token_key_ncerts(const inventory *inv, size_t key)
{
    size_t n = 0;
    for (size_t i = 0; i < inv->ncerts; i++)
        n += inv->certs[i].key == key;
    return n;
}

void phc__token_pair_of_cert(phc_pair_info *pi, const inventory *inv, size_t i, long active,
                             long long now)
{
    const tcert *c = &inv->certs[i];
    const tkey *k = &inv->keys[c->key];
    memset(pi, 0, sizeof(*pi));
    phc__token_key_fill(pi, k);
    phc__token_cert_fill(pi, c->x, now);
    pi->key_mismatch = !k->pub || EVP_PKEY_eq(X509_get0_pubkey(c->x), k->pub) != 1;
    pi->state = phc__token_cert_state(inv, i, active, now);
    pi->install_seq = c->seq;
    pi->install_order = inv->order;
    ERR_clear_error();
}

void phc__token_pair_of_key(phc_pair_info *pi, const inventory *inv, size_t key)
{
    memset(pi, 0, sizeof(*pi));
    phc__token_key_fill(pi, &inv->keys[key]);
    pi->state = PHC_PAIR_PENDING;
    pi->install_seq = -1;
    pi->install_order = inv->order;
}

static int pair_cmp(const void *a, const void *b)
{
    const phc_pair_info *x = a, *y = b;
    size_t lx = strlen(x->id_hex), ly = strlen(y->id_hex);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    int c = strcmp(x->id_hex, y->id_hex);
    if (c)
        return c;
    if (x->not_before != y->not_before)
        return x->not_before < y->not_before ? -1 : 1;
    return (x->not_after > y->not_after) - (x->not_after < y->not_after);
}

static int pairs_of(const inventory *inv, long long now, phc_pair_info **out, size_t *n,
                    phc_errbuf *err)
{
    size_t cap = inv->ncerts + inv->nkeys, cnt = 0;
    *out = NULL;
    *n = 0;
    if (!cap)
        return 0;
    phc_pair_info *p = OPENSSL_zalloc(cap * sizeof(*p));
    if (!p)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    long active = phc__token_active_cert(inv, now);
    for (size_t i = 0; i < inv->ncerts; i++)
        phc__token_pair_of_cert(&p[cnt++], inv, i, active, now);
    for (size_t k = 0; k < inv->nkeys; k++)
        if (!phc__token_key_ncerts(inv, k))
            phc__token_pair_of_key(&p[cnt++], inv, k);
    qsort(p, cnt, sizeof(*p), pair_cmp);
    *out = p;
    *n = cnt;
    return 0;
}

const char *phc_pair_state_name(phc_pair_state s)
{
    switch (s) {
    case PHC_PAIR_ACTIVE:
        return "active";
    case PHC_PAIR_RETIRED:
        return "retired";
    case PHC_PAIR_PENDING:
        return "pending";
    case PHC_PAIR_EXPIRED:
        return "expired";
    case PHC_PAIR_NOT_YET_VALID:
        return "not-yet-valid";
    }
    return "unknown";
}

int phc__token_again(phc_token *t, phc_p11_retry *r, int *rc, phc_errbuf *err)
{
    const char *what = "";
    int odd = 0;
    CK_RV rv = phc__p11_last_fail(&what, &odd);
    if (!t || !t->p11 ||
        (!odd &&
         (*rc != PHC_ERR_HSM || (rv != CKR_GENERAL_ERROR && rv != CKR_OBJECT_HANDLE_INVALID &&
                                 rv != CKR_FUNCTION_FAILED))))
        return 0;
    char name[40];
    snprintf(r->token, sizeof(r->token), "%s", phc__p11_token_label(t->p11));
    if (odd)
        snprintf(r->cause, sizeof(r->cause), "answered inconsistently while %.100s", what);
    else
        snprintf(r->cause, sizeof(r->cause), "answered %s while %.100s",
                 phc__p11_rv_str(name, sizeof(name), rv), what);
    r->answered = 1;
    if (!phc__p11_retry_again(r, NULL, t->cfg->pkcs11_module, &t->log)) {
        phc__p11_retry_final(r, err);
        return 0;
    }
    /* Reopened (and the module re-initialised when this handle is its only user): SoftHSM
     * forgets a token it read as empty only then. */
    phc__p11_last_fail_clear();
    if ((*rc = phc__p11_reopen(t->p11, t->cfg->pkcs11_module, t->cfg->key, t->cfg->pin, err)))
        return 0;
    return 1;
}

static int pairs_once(phc_token *t, long long now, phc_pair_list **out, phc_errbuf *err)
{
    inventory inv;
    phc_pair_info *v = NULL;
    size_t n = 0;
    *out = NULL;
    if (!t)
        return phc__err(err, PHC_ERR_INTERNAL, "no token handle");
    int rc = phc__token_inventory_load(t, &inv, err);
    if (rc)
        return rc;
    rc = pairs_of(&inv, phc__token_now_or(now), &v, &n, err);
    phc__token_inventory_free(&inv);
    if (rc == PHC_OK)
        rc = phc__pair_list_take(out, v, n, err);
    return rc;
}

int phc__token_pairs_now(phc_token *t, long long now, phc_pair_list **out, phc_errbuf *err)
{
    PHC_TOKEN_RETRY(t, err, pairs_once(t, now, out, err));
}

/* ------------------------------------------------------------------------------------ */
/* The client secret, kept on the token */

int phc__token_secret_check(const phc_config *cfg, size_t len, phc_errbuf *err)
{
    int rc = phc_config_validate(cfg, err);
    if (rc)
        return rc;
    if (!cfg->client_secret || strncasecmp(cfg->client_secret, "pkcs11:", 7) != 0)
        return phc__err(err, PHC_ERR_CONFIG,
                        "config key 'client_secret' is %s: set it to a PKCS#11 URI of a data "
                        "object (e.g. pkcs11:token=powerhub;object=client-secret;type=data) to "
                        "keep the secret on the token",
                        cfg->client_secret ? "a file: or env: source, not a token object"
                                           : "not set");
    if (len == 0 || len > PHC_SECRET_MAX)
        return phc__err(err, PHC_ERR_CONFIG, "the client secret is %s (at most %d bytes)",
                        len ? "too long" : "empty", PHC_SECRET_MAX);
    return PHC_OK;
}
