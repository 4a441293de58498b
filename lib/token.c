/* Token administration (see phconnect/token.h): the client's key pairs and certificates on
 * the token, read and changed through p11.c, judged with the rotation rule (rotation.h) and
 * the pinned trust store (trust.h).
 *
 * Every change is one PKCS#11 object operation, in an order that leaves a working token
 * after a crash at any point: a key pair is generated before its request is written, a
 * certificate is stored only after every check passed, and prune deletes a certificate
 * before its key (a key without a certificate is merely pending). */
#include "config.h"
#include "csr.h"
#include "err.h"
#include "util_hex.h"
#include "log.h"
#include "p11.h"
#include "rotation.h"
#include "trust.h"

#include <p11-kit/uri.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ID_MAX 64

struct phc_token {
    phc_config *cfg; /* reference */
    phc_log log;
    phc_p11 *p11;
    char *want_label; /* the key URI's object=; NULL: any label */
    unsigned char want_id[ID_MAX];
    size_t want_id_len;
    int has_id;
};

/* One of the client's keys. */
typedef struct tkey {
    CK_OBJECT_HANDLE priv;
    unsigned char id[ID_MAX];
    size_t id_len;
    char label[128];
    EVP_PKEY *pub; /* NULL when the token does not show the public half */
    char desc[32];
    int supported;
} tkey;

/* A certificate object that belongs to one of the keys (same CKA_ID). */
typedef struct tcert {
    CK_OBJECT_HANDLE h;
    X509 *x;
    size_t key; /* index into keys */
} tcert;

/* What the token holds for the client, read afresh for each operation. */
typedef struct inventory {
    tkey *keys;
    size_t nkeys;
    tcert *certs;
    size_t ncerts;
    phc_trust *trust; /* the pinned CAs, for the chain rule; NULL when ca_file cannot be read */
} inventory;

/* ------------------------------------------------------------------------------------ */
/* Small helpers */

void phc_free(void *p)
{
    OPENSSL_free(p);
}

static long long now_or(long long now)
{
    return now ? now : (long long)time(NULL);
}

/* Whole days from now until t, rounded down (negative once t has passed). */
static long days_until(long long t, long long now)
{
    long long d = t - now;
    return (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
}

static void describe_pub(EVP_PKEY *pub, char *desc, size_t len, int *supported)
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

static void cert_fill(phc_pair_info *pi, X509 *x, long long now)
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
    pi->not_before = phc__asn1_time_epoch(X509_get0_notBefore(x));
    pi->not_after = phc__asn1_time_epoch(X509_get0_notAfter(x));
    pi->days_left = days_until(pi->not_after, now);
    ERR_clear_error();
}

static void key_fill(phc_pair_info *pi, const tkey *k)
{
    phc__hex(pi->id_hex, sizeof(pi->id_hex), k->id, k->id_len);
    snprintf(pi->label, sizeof(pi->label), "%s", k->label);
    snprintf(pi->key_type, sizeof(pi->key_type), "%s", k->desc);
    pi->key_supported = k->supported;
}

/* "'CN=x' (serial 0A)": how a certificate is named in messages. */
static void cert_words(char *out, size_t len, X509 *x)
{
    phc_pair_info pi;
    memset(&pi, 0, sizeof(pi));
    cert_fill(&pi, x, 0);
    snprintf(out, len, "'%s' (serial %s)", pi.subject, pi.serial);
}

static void time_words(char *out, size_t len, long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, len, "(unreadable time)");
}

/* ------------------------------------------------------------------------------------ */
/* Opening */

int phc_token_open(phc_token **out, phc_config *cfg, const phc_client_opts *opts, phc_errbuf *err)
{
    P11KitUri *u = NULL;
    phc_token *t = NULL;
    *out = NULL;
    int rc = phc_config_validate(cfg, err);
    if (rc)
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
    if ((rc = phc__p11_open(&t->p11, cfg->pkcs11_module, cfg->key, cfg->pin, &t->log, err)))
        goto out;
    *out = t;
    t = NULL;
out:
    p11_kit_uri_free(u);
    phc_token_free(t);
    return rc;
}

void phc_token_free(phc_token *t)
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
static void wanted_words(const phc_token *t, char *out, size_t len)
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

static void inventory_free(inventory *inv)
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
static int object_id(phc_p11 *p, CK_OBJECT_HANDLE h, unsigned char *id, size_t *id_len,
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

static int inventory_load(phc_token *t, inventory *inv, phc_errbuf *err)
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
        if ((rc = object_id(p, h[i], k->id, &k->id_len, err)) ||
            (rc = phc__p11_attr(p, h[i], CKA_LABEL, &lab, &llen, err)) < 0)
            goto out;
        snprintf(k->label, sizeof(k->label), "%s", lab ? (char *)lab : "");
        OPENSSL_free(lab);
        rc = 0;
        k->pub = key_public(p, k);
        describe_pub(k->pub, k->desc, sizeof(k->desc), &k->supported);
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
        if ((rc = object_id(p, h[i], id, &id_len, err)))
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
out:
    OPENSSL_free(h);
    if (rc)
        inventory_free(inv);
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
static long active_cert(const inventory *inv, long long now)
{
    long best = -1;
    int chain = 0;
    for (size_t i = 0; inv->trust && i < inv->ncerts && !chain; i++)
        chain = candidate(inv, &inv->certs[i], now, 1);
    for (size_t i = 0; i < inv->ncerts; i++) {
        const tcert *c = &inv->certs[i];
        if (!candidate(inv, c, now, chain))
            continue;
        if (best < 0 || phc__cert_newer(c->x, inv->certs[best].x))
            best = (long)i;
    }
    return best;
}

static phc_pair_state cert_state(const inventory *inv, size_t i, long active, long long now)
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

static size_t key_ncerts(const inventory *inv, size_t key)
{
    size_t n = 0;
    for (size_t i = 0; i < inv->ncerts; i++)
        n += inv->certs[i].key == key;
    return n;
}

static void pair_of_cert(phc_pair_info *pi, const inventory *inv, size_t i, long active,
                         long long now)
{
    const tcert *c = &inv->certs[i];
    const tkey *k = &inv->keys[c->key];
    memset(pi, 0, sizeof(*pi));
    key_fill(pi, k);
    cert_fill(pi, c->x, now);
    pi->key_mismatch = !k->pub || EVP_PKEY_eq(X509_get0_pubkey(c->x), k->pub) != 1;
    pi->state = cert_state(inv, i, active, now);
    ERR_clear_error();
}

static void pair_of_key(phc_pair_info *pi, const inventory *inv, size_t key)
{
    memset(pi, 0, sizeof(*pi));
    key_fill(pi, &inv->keys[key]);
    pi->state = PHC_PAIR_PENDING;
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
    long active = active_cert(inv, now);
    for (size_t i = 0; i < inv->ncerts; i++)
        pair_of_cert(&p[cnt++], inv, i, active, now);
    for (size_t k = 0; k < inv->nkeys; k++)
        if (!key_ncerts(inv, k))
            pair_of_key(&p[cnt++], inv, k);
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

int phc_token_pairs(phc_token *t, long long now, phc_pair_info **out, size_t *n, phc_errbuf *err)
{
    inventory inv;
    *out = NULL;
    *n = 0;
    if (!t)
        return phc__err(err, PHC_ERR_INTERNAL, "no token handle");
    int rc = inventory_load(t, &inv, err);
    if (rc)
        return rc;
    rc = pairs_of(&inv, now_or(now), out, n, err);
    inventory_free(&inv);
    return rc;
}

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
            if ((rc = object_id(p, h[i], id, &len, err))) {
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

int phc_token_generate(phc_token *t, const char *key_type, int pending, char id_hex[PHC_ID_HEX_MAX],
                       phc_errbuf *err)
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
    int rc = inventory_load(t, &inv, err);
    if (rc)
        return rc;
    wanted_words(t, want, sizeof(want));
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
                          "token '%s' already holds a key with %s (id %s): to renew, use 'phc "
                          "csr' (same key) or 'phc csr --new-key'",
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
                          "no key with %s on token '%s' to renew: use 'phc enrol' for the first "
                          "key",
                          want, tok);
            goto out;
        }
        for (size_t k = 0; k < inv.nkeys; k++)
            if (!key_ncerts(&inv, k)) {
                phc__hex(idhex, sizeof(idhex), inv.keys[k].id, inv.keys[k].id_len);
                rc = phc__err(err, PHC_ERR_CONFIG,
                              "key id %s on token '%s' is already pending (no certificate yet): "
                              "'phc csr --key-id %s' makes its request again; 'phc prune "
                              "--pending --yes' deletes it",
                              idhex, tok, idhex);
                goto out;
            }
        if (!key_type) {
            long a = active_cert(&inv, now_or(0));
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
    if ((rc = phc__p11_generate(t->p11, kind, bits, t->want_label, id, id_len, &pub, &priv, err)))
        goto out;
    if (id_hex)
        phc__hex(id_hex, PHC_ID_HEX_MAX, id, id_len);
out:
    inventory_free(&inv);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Requests */

int phc_token_csr(phc_token *t, const char *id_hex, const char *subject, char **pem_out,
                  phc_errbuf *err)
{
    inventory inv;
    X509_NAME *name = NULL;
    const tkey *k = NULL;
    char idhex[2 * ID_MAX + 1], want[200];
    const char *tok = phc_token_label(t);
    *pem_out = NULL;
    int rc = inventory_load(t, &inv, err);
    if (rc)
        return rc;
    wanted_words(t, want, sizeof(want));
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
            rc = phc__err(err, PHC_ERR_HSM, "no key with %s and id %s on token '%s'", want, id_hex,
                          tok);
            goto out;
        }
    } else {
        long a = active_cert(&inv, now_or(0));
        if (a >= 0) {
            k = &inv.keys[inv.certs[a].key];
        } else {
            size_t npending = 0;
            for (size_t i = 0; i < inv.nkeys; i++)
                if (!key_ncerts(&inv, i)) {
                    npending++;
                    k = &inv.keys[i];
                }
            if (npending != 1) {
                rc = phc__err(err, PHC_ERR_HSM,
                              npending ? "token '%s' has no active pair and several pending keys "
                                         "with %s: choose one with --key-id"
                                       : "token '%s' has no active pair and no pending key with "
                                         "%s: use 'phc enrol' (first key) or 'phc csr --new-key'",
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
        const X509 *newest = NULL;
        for (size_t i = 0; i < inv.ncerts; i++)
            if (&inv.keys[inv.certs[i].key] == k &&
                (!newest || phc__cert_newer(inv.certs[i].x, newest)))
                newest = inv.certs[i].x;
        /* A new key takes the subject of the pair it is to succeed. */
        long a = active_cert(&inv, now_or(0));
        if (!newest && a >= 0)
            newest = inv.certs[a].x;
        if (!newest) {
            rc = phc__err(err, PHC_ERR_CONFIG,
                          "key id %s has no certificate to copy the subject from, and there is "
                          "no active pair: give --subject",
                          idhex);
            goto out;
        }
        if (!(name = X509_NAME_dup(X509_get_subject_name(newest)))) {
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
    inventory_free(&inv);
    return rc;
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

/* ------------------------------------------------------------------------------------ */
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
    cert_words(cn, sizeof(cn), x);

    /* Validity window, with a little room for clocks that differ. */
    int v = phc__cert_validity(x, now);
    if (v == PHC_CERT_NOT_YET_VALID && phc__cert_validity(x, now + PHC_INSTALL_SKEW) == 0)
        v = PHC_CERT_VALID;
    if (v == PHC_CERT_EXPIRED) {
        time_words(when, sizeof(when), phc__asn1_time_epoch(X509_get0_notAfter(x)));
        return phc__err(err, PHC_ERR_TRUST, "certificate %s expired on %s: not installed", cn,
                        when);
    }
    if (v == PHC_CERT_NOT_YET_VALID) {
        time_words(when, sizeof(when), phc__asn1_time_epoch(X509_get0_notBefore(x)));
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
    describe_pub(pk, desc, sizeof(desc), &supported);
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
    wanted_words(t, want, sizeof(want));
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

/* The pair x would make once stored (state judged among the existing certificates). */
static void would_be(phc_pair_info *pi, const inventory *inv, size_t key, X509 *x, long long now)
{
    memset(pi, 0, sizeof(*pi));
    key_fill(pi, &inv->keys[key]);
    cert_fill(pi, x, now);
    long a = active_cert(inv, now);
    int v = phc__cert_validity(x, now);
    if (v == PHC_CERT_NOT_YET_VALID)
        pi->state = PHC_PAIR_NOT_YET_VALID;
    else if (a < 0 || phc__cert_newer(x, inv->certs[a].x))
        pi->state = PHC_PAIR_ACTIVE;
    else
        pi->state = PHC_PAIR_RETIRED;
}

static int check_or_install(phc_token *t, const char *pem, size_t len, long long now,
                            phc_pair_info *out, int *already, int store, phc_errbuf *err)
{
    inventory inv;
    X509 *x = NULL;
    STACK_OF(X509) *chain = NULL;
    size_t key = 0;
    unsigned char *der = NULL;
    now = now_or(now);
    if (already)
        *already = 0;
    if (out)
        memset(out, 0, sizeof(*out));
    int rc = read_pem(&x, &chain, pem, len, err);
    if (rc)
        return rc;
    if ((rc = inventory_load(t, &inv, err)))
        goto out_noinv;
    if ((rc = check_cert(t, &inv, x, chain, now, &key, err)))
        goto out;
    int have = 0;
    for (size_t i = 0; i < inv.ncerts && !have; i++)
        have = X509_cmp(inv.certs[i].x, x) == 0;
    if (out) {
        if (have) {
            /* Already there: report it as it stands. */
            long a = active_cert(&inv, now);
            for (size_t i = 0; i < inv.ncerts; i++)
                if (X509_cmp(inv.certs[i].x, x) == 0)
                    pair_of_cert(out, &inv, i, a, now);
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
    cert_words(cn, sizeof(cn), x);
    phc__hex(idhex, sizeof(idhex), k->id, k->id_len);
    snprintf(what, sizeof(what), "certificate %s", cn);
    rc = phc__p11_create(t->p11, a, sizeof(a) / sizeof(a[0]), NULL, what, err);
    OPENSSL_free(subj);
    OPENSSL_free(iss);
    OPENSSL_free(ser);
    if (!rc)
        phc__log(&t->log, PHC_LOG_INFO, "stored certificate %s for key id %s on token '%s'", cn,
                 idhex, phc_token_label(t));
out:
    inventory_free(&inv);
out_noinv:
    OPENSSL_free(der);
    X509_free(x);
    sk_X509_pop_free(chain, X509_free);
    ERR_clear_error();
    return rc;
}

int phc_token_check_cert(phc_token *t, const char *pem, size_t len, long long now,
                         phc_pair_info *out, int *already, phc_errbuf *err)
{
    if (!t)
        return phc__err(err, PHC_ERR_INTERNAL, "no token handle");
    return check_or_install(t, pem, len, now, out, already, 0, err);
}

int phc_token_install_cert(phc_token *t, const char *pem, size_t len, long long now,
                           phc_pair_info *out, int *already, phc_errbuf *err)
{
    if (!t)
        return phc__err(err, PHC_ERR_INTERNAL, "no token handle");
    return check_or_install(t, pem, len, now, out, already, 1, err);
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

int phc_token_prune(phc_token *t, long long now, unsigned flags, phc_pair_info **out, size_t *n,
                    phc_errbuf *err)
{
    inventory inv;
    phc_pair_info *list = NULL;
    size_t cnt = 0;
    int dry = (flags & PHC_PRUNE_DRY_RUN) != 0;
    char cn[400];
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!t)
        return phc__err(err, PHC_ERR_INTERNAL, "no token handle");
    now = now_or(now);
    int rc = inventory_load(t, &inv, err);
    if (rc)
        return rc;
    long active = active_cert(&inv, now);
    size_t cap = inv.ncerts + inv.nkeys;
    unsigned char *gone = OPENSSL_zalloc(inv.ncerts + 1); /* per certificate */
    if (!gone || (cap && !(list = OPENSSL_zalloc(cap * sizeof(*list))))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    /* Certificates first: a key is deleted only once nothing of it remains. */
    for (size_t i = 0; i < inv.ncerts && !rc; i++) {
        phc_pair_state st = cert_state(&inv, i, active, now);
        if (st != PHC_PAIR_EXPIRED && st != PHC_PAIR_RETIRED)
            continue;
        pair_of_cert(&list[cnt], &inv, i, active, now);
        cert_words(cn, sizeof(cn), inv.certs[i].x);
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
            pair_of_key(&list[cnt], &inv, k);
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
    inventory_free(&inv);
    if (out && cnt) {
        *out = list;
        list = NULL;
    }
    if (n)
        *n = out ? cnt : 0;
    OPENSSL_free(list);
    return rc;
}

int phc_token_rollback(phc_token *t, long long now, int dry_run, phc_pair_info *from,
                       phc_pair_info *to, phc_errbuf *err)
{
    inventory inv;
    if (from)
        memset(from, 0, sizeof(*from));
    if (to)
        memset(to, 0, sizeof(*to));
    if (!t)
        return phc__err(err, PHC_ERR_INTERNAL, "no token handle");
    now = now_or(now);
    int rc = inventory_load(t, &inv, err);
    if (rc)
        return rc;
    long active = active_cert(&inv, now);
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
        if (next < 0 || phc__cert_newer(c->x, inv.certs[next].x))
            next = (long)i;
    }
    cert_words(cn, sizeof(cn), inv.certs[active].x);
    if (next < 0) {
        rc = phc__err(err, PHC_ERR_HSM,
                      "no other valid pair on token '%s' to fall back to: removing certificate "
                      "%s would leave the connector without one",
                      phc_token_label(t), cn);
        goto out;
    }
    if (from)
        pair_of_cert(from, &inv, (size_t)active, active, now);
    if (to) {
        pair_of_cert(to, &inv, (size_t)next, active, now);
        to->state = PHC_PAIR_ACTIVE;
    }
    if (dry_run)
        goto out;
    char what[440];
    snprintf(what, sizeof(what), "certificate %s", cn);
    if ((rc = phc__p11_destroy(t->p11, inv.certs[active].h, what, err)))
        goto out;
    if (from)
        from->state =
            key_ncerts(&inv, inv.certs[active].key) > 1 ? PHC_PAIR_RETIRED : PHC_PAIR_PENDING;
    phc__log(&t->log, PHC_LOG_INFO, "rolled back: removed certificate %s from token '%s'", cn,
             phc_token_label(t));
out:
    inventory_free(&inv);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Client secret, CA and endpoint */

int phc_token_store_secret(phc_config *cfg, const void *secret, size_t len, phc_errbuf *err)
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
    return phc__p11_write_data(cfg->pkcs11_module, cfg->client_secret, cfg->pin, secret, len, err);
}

int phc_config_ca_certs(const phc_config *cfg, long long now, phc_ca_info **out, size_t *n,
                        phc_errbuf *err)
{
    phc_trust *trust = NULL;
    *out = NULL;
    *n = 0;
    if (!cfg || !cfg->ca_file)
        return phc__err(err, PHC_ERR_CONFIG, "config has no 'ca_file'");
    now = now_or(now);
    int rc = phc__trust_load(&trust, cfg->ca_file, (const unsigned char(*)[32])cfg->ca_sha256,
                             cfg->n_ca_sha256, err);
    if (rc)
        return rc;
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(phc__trust_store(trust));
    int total = sk_X509_OBJECT_num(objs);
    phc_ca_info *list = OPENSSL_zalloc((size_t)(total > 0 ? total : 1) * sizeof(*list));
    size_t cnt = 0;
    if (!list) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (int i = 0; i < total; i++) {
        X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (!x)
            continue;
        phc_pair_info pi;
        memset(&pi, 0, sizeof(pi));
        cert_fill(&pi, x, now);
        phc_ca_info *c = &list[cnt++];
        memcpy(c->subject, pi.subject, sizeof(c->subject));
        memcpy(c->sha256, pi.sha256, sizeof(c->sha256));
        c->not_before = pi.not_before;
        c->not_after = pi.not_after;
        c->days_left = pi.days_left;
    }
    *out = list;
    *n = cnt;
out:
    phc__trust_free(trust);
    return rc;
}

void phc_config_endpoint(const phc_config *cfg, phc_endpoint *out)
{
    memset(out, 0, sizeof(*out));
    if (!cfg)
        return;
    out->url = cfg->url;
    out->host = cfg->host;
    out->port = cfg->port;
    out->pinned_ips = (const char *const *)cfg->pinned_ips;
    out->n_pinned_ips = cfg->n_pinned_ips;
    out->source_address = cfg->source_address;
    out->credential_expires = cfg->credential_expires_epoch;
}
