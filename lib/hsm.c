/* The token side, on libp11 0.4.12 (see hsm.h for the contract).
 *
 * libp11 behaviours this file works around or relies on (0.4.12, checked against its source
 * and SoftHSM 2.6):
 *  - Loading, C_Initialize, the slot list and C_Finalize belong to the one module layer
 *    (p11_module.h), shared with the raw calls: this file only borrows its libp11 context
 *    and slots, and the certificate reader uses the same initialised function list.
 *  - A failing PKCS#11 call pushes the CK_RV as the reason of an OpenSSL error whose library
 *    is ERR_get_CKR_code() (libp11's ERR_LIB_PKCS11); translated in ckr_last(). libp11 also
 *    clears the thread's whole error queue after each successful call.
 *  - PKCS11_get_public_key leaks a libp11 object per call, which pins the slot and with it
 *    libp11's copy of the PIN. It is never called: the EVP_PKEY from PKCS11_get_private_key
 *    carries the public half (RSA n/e; EC point from the public key object), which is
 *    re-encoded into a plain OpenSSL public key for comparisons and type checks.
 *  - PKCS11_login keeps a copy of the PIN (for re-login after fork) until the slot is
 *    released; ours is wiped right after the call.
 *  - Key and certificate lists point into per-slot caches: enumerating again may move them,
 *    so keys are enumerated once, in phc__hsm_open.
 *  - Private-key EVP_PKEYs refer back to the slot: every reference must be dropped before the
 *    slots are released (phc__hsm_free does this; callers must drop theirs, e.g. an SSL_CTX
 *    holding the key, before phc__hsm_free).
 *  - PKCS#11 state is per process (per module instance), not per handle: releasing a slot
 *    calls C_CloseAllSessions and unloading calls C_Finalize, so the module layer does both
 *    only when its last user (libp11 or raw) is gone. A consequence: a second handle on a
 *    token this process is already logged in to reuses that login; its PIN source is still
 *    read (it must be there) but PKCS#11 cannot re-verify the value.
 *  - Signing needs no lock here: libp11 gives each concurrent operation its own session from
 *    a per-slot pool (up to 16, then callers wait). 0.4.12 puts a session back into the
 *    pool even when it died (token reset or removed), so after that every operation fails
 *    with the CK_RV until the handle is reopened.
 */
#include "hsm.h"
#include "certobj.h"
#include "p11_module.h"
#include "p11_rv.h"
#include "p11_uri.h"
#include "rotation.h"
#include "trust.h"

#include "err.h"
#include "log.h"
#include "names.h"
#include "secret.h"

#include <libp11.h>
#include <p11-kit/uri.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Guards every libp11 call that touches a module's shared context, slot list or object cache
 * (open, identity, free). Key operations do not take it. Taken before the module layer's. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* One private key on the token that the key URI names. libp11's PKCS11_KEY is only used
 * while enumerating: its array may move when the slot's cache grows. */
typedef struct hsm_key {
    char *label;
    unsigned char id[255];
    size_t id_len;
    EVP_PKEY *priv; /* from PKCS11_get_private_key: operations run on the token */
    EVP_PKEY *pub;  /* plain OpenSSL copy of the public half */
    char desc[96];  /* "RSA 2048 bits" / "EC P-256" */
    int supported;
} hsm_key;

struct phc_hsm {
    phc_p11_module *mod; /* one reference on the process's module (p11_module.h) */
    phc_p11_slots *lp;   /* libp11's slots of it, borrowed from mod */
    PKCS11_SLOT *slot;   /* the token in use, inside lp->slots */
    unsigned int slot_index;
    hsm_key *keys;
    unsigned int nkeys;
    char *module;
    char *want_label; /* the key URI's object=, NUL-terminated; NULL when absent */
    unsigned char *want_id;
    size_t want_id_len;
    int has_id;
    const phc_log *log;
};

/* ------------------------------------------------------------------------------------ */
/* Small helpers */

/* The CK_RV libp11 left on the error queue, in words (p11_rv.c). */
static unsigned long ckr_last(char *buf, size_t len)
{
    return phc__p11_rv_last(buf, len);
}

static void hsm_key_name(char *out, size_t len, const hsm_key *k)
{
    phc__key_name(out, len, "", k->label ? k->label : "", k->id, k->id_len, 1);
}

/* One-line subject (RFC 2253) and hex serial of a certificate. */
static void cert_name(char *out, size_t len, X509 *cert)
{
    char subj[256] = "?", serial[80] = "?";
    BIO *b = BIO_new(BIO_s_mem());
    if (b && X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, subj, sizeof(subj) - 1);
        subj[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *h = bn ? BN_bn2hex(bn) : NULL;
    if (h)
        snprintf(serial, sizeof(serial), "%s", h);
    OPENSSL_free(h);
    BN_free(bn);
    snprintf(out, len, "'%s' (serial %s)", subj, serial);
}

static void asn1_time_str(char *out, size_t len, const ASN1_TIME *t)
{
    struct tm tm;
    if (t && ASN1_TIME_to_tm(t, &tm) && strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return;
    snprintf(out, len, "(unreadable time)");
}

static int label_eq(const char *label, const char *want)
{
    return strcmp(label ? label : "", want) == 0;
}

/* Does this slot's token satisfy every token/slot attribute the URI names? (p11_uri.c) */
static int token_matches(P11KitUri *u, const PKCS11_SLOT *s)
{
    const PKCS11_TOKEN *t = s->token;
    phc_p11_token_id id = {t->label,
                           t->serialnr,
                           t->manufacturer,
                           t->model,
                           s->description,
                           s->manufacturer,
                           PKCS11_get_slotid_from_slot((PKCS11_SLOT *)s)};
    return phc__p11_uri_token_matches(u, &id);
}

/* Parses and vets a key or certificate URI (p11_uri.c, the one parser), in this unit's
 * words. want_class: CKO_PRIVATE_KEY or CKO_CERTIFICATE. */
static int uri_parse(phc_p11_uri *out, const char *uri, const char *what,
                     CK_OBJECT_CLASS want_class, phc_errbuf *err)
{
    const char *why = NULL;
    if (!uri || !*uri)
        return phc__err(err, PHC_ERR_CONFIG, "no %s URI given", what);
    switch (phc__p11_uri_parse(out, uri, want_class, &why)) {
    case PHC_P11_URI_OK:
        return 0;
    case PHC_P11_URI_CASE:
        return phc__err(err, PHC_ERR_CONFIG, "%s URI: write its scheme 'pkcs11:' in lower case",
                        what);
    case PHC_P11_URI_NOT_URI:
    case PHC_P11_URI_MALFORMED:
        return phc__err(err, PHC_ERR_CONFIG, "%s URI is not a valid PKCS#11 URI: %s", what,
                        why ? why : "?");
    case PHC_P11_URI_PIN:
        return phc__err(err, PHC_ERR_CONFIG,
                        "%s URI must not carry a PIN (pin-value/pin-source); set 'pin' instead",
                        what);
    case PHC_P11_URI_UNKNOWN:
        return phc__err(err, PHC_ERR_CONFIG,
                        "%s URI has an attribute phconnect does not understand (a typo?)", what);
    case PHC_P11_URI_WRONG_CLASS:
        return phc__err(err, PHC_ERR_CONFIG, "%s URI has type= other than '%s'", what,
                        phc__p11_uri_class_word(want_class));
    case PHC_P11_URI_NO_OBJECT:
        return phc__err(err, PHC_ERR_CONFIG,
                        "%s URI names no object: add object= and/or id=", what);
    default:
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
}

static int obj_matches(const char *label, const unsigned char *id, size_t id_len,
                       const char *want_label, const unsigned char *want_id, size_t want_id_len,
                       int has_id)
{
    if (want_label && !label_eq(label, want_label))
        return 0;
    if (has_id && (id_len != want_id_len || (id_len && memcmp(id, want_id, id_len))))
        return 0;
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* Opening */

static void list_tokens(const phc_hsm *h, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (unsigned int i = 0; i < h->lp->n && o < len; i++) {
        const PKCS11_TOKEN *t = h->lp->slots[i].token;
        if (!t || !t->initialized)
            continue;
        int n = snprintf(out + o, len - o, "%s'%s'", o ? ", " : "", t->label);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    if (!out[0])
        snprintf(out, len, "none");
}

static int select_token(phc_hsm *h, P11KitUri *u, phc_p11_retry *r, phc_errbuf *err)
{
    char want[200], present[256];
    unsigned int ntokens = 0, nmatch = 0;
    phc__p11_uri_token_wanted(u, want, sizeof(want));
    phc__p11_uri_token_label(u, r->token, sizeof(r->token));
    list_tokens(h, present, sizeof(present));
    for (unsigned int i = 0; i < h->lp->n; i++) {
        PKCS11_SLOT *s = &h->lp->slots[i];
        if (!s->token || !s->token->initialized)
            continue; /* e.g. SoftHSM's spare uninitialised slot */
        ntokens++;
        if (!want[0] || token_matches(u, s)) {
            if (!h->slot) {
                h->slot = s;
                h->slot_index = i;
            }
            nmatch++;
        }
    }
    /* The token the key URI names by label is missing: SoftHSM may be mid-write
     * (p11_module.h). */
    if (!nmatch && r->token[0])
        snprintf(r->cause, sizeof(r->cause), "not among the initialised tokens");
    return phc__p11_token_verdict(err, h->module, "key URI", ntokens, nmatch, want, present);
}

/* The token's PIN flags as the token reports them now: libp11 read them when it listed the
 * slots, which may be long ago for a module this process keeps loaded. Falls back to
 * libp11's copy when the module cannot be asked. */
static CK_FLAGS pin_flags(const phc_hsm *h)
{
    const PKCS11_TOKEN *t = h->slot->token;
    CK_FLAGS f = (t->userPinLocked ? CKF_USER_PIN_LOCKED : 0) |
                 (t->userPinFinalTry ? CKF_USER_PIN_FINAL_TRY : 0) |
                 (t->userPinCountLow ? CKF_USER_PIN_COUNT_LOW : 0) |
                 (t->userPinSet ? CKF_USER_PIN_INITIALIZED : 0);
    CK_FUNCTION_LIST *fn = phc__p11_module_fn(h->mod);
    CK_TOKEN_INFO ti;
    if (fn->C_GetTokenInfo(PKCS11_get_slotid_from_slot(h->slot), &ti) == CKR_OK)
        f = ti.flags & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW |
                        CKF_USER_PIN_INITIALIZED);
    return f;
}

static int login(phc_hsm *h, const char *pin_source, phc_pin_latch *latch, phc_p11_retry *rt,
                 phc_errbuf *err)
{
    const PKCS11_TOKEN *t = h->slot->token;
    char ckr[64];
    unsigned char md[32];
    if (!t->loginRequired) {
        phc__log(h->log, PHC_LOG_INFO, "token '%s' does not require a login", t->label);
        return 0;
    }
    char *pin = NULL;
    size_t pin_len = 0;
    int rc = phc__secret_read(&pin, &pin_len, pin_source, "PIN", PHC_ERR_PIN, err);
    if (rc)
        return rc;
    if (h->lp->logged_in[h->slot_index]) {
        /* Another handle of this process logged in already: PKCS#11 login state is per
         * process, and C_Login would only answer CKR_USER_ALREADY_LOGGED_IN. */
        phc__secret_free(pin, pin_len);
        phc__log(h->log, PHC_LOG_INFO, "token '%s': already logged in by this process", t->label);
        return 0;
    }
    /* The login rule (p11_login.c), on the flags as the token reports them now. */
    CK_FLAGS flags = pin_flags(h);
    if (flags & CKF_USER_PIN_INITIALIZED)
        rt->pin_initialised = 1;
    if ((rc = phc__p11_login_check(t->label, flags, pin, pin_len, pin_source, latch, md, h->log,
                                   err))) {
        phc__secret_free(pin, pin_len);
        return rc;
    }
    ERR_clear_error();
    /* One attempt: a wrong PIN is reported, never retried (a retry would burn the token's
     * remaining tries). */
    int r = PKCS11_login(h->slot, 0, pin);
    phc__secret_free(pin, pin_len);
    pin = NULL;
    if (r == 0) {
        ERR_clear_error();
        h->lp->logged_in[h->slot_index] = 1;
        phc__log(h->log, PHC_LOG_INFO, "logged in to token '%s'", t->label);
        return 0;
    }
    unsigned long rv = ckr_last(ckr, sizeof(ckr));
    if (!rv)
        return phc__err(err, PHC_ERR_HSM, "login to token '%s' failed (%s)", t->label, ckr);
    /* SoftHSM answers these before it looks at the PIN, while its token file is being
     * rewritten: not a PIN refusal, and the latch does not hear of them (p11_module.h). */
    if (rv == CKR_GENERAL_ERROR || (rv == CKR_USER_PIN_NOT_INITIALIZED && rt->pin_initialised)) {
        snprintf(rt->cause, sizeof(rt->cause), "%s at C_Login", ckr);
        return phc__err(err, PHC_ERR_HSM, "login to token '%s' failed (%s)", t->label, ckr);
    }
    return phc__p11_login_refused(t->label, rv, md, latch, err);
}

/* Fills k->pub/desc/supported from the token key's EVP_PKEY. */
static int describe_key(hsm_key *k)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k->priv, &der);
    if (n <= 0)
        return -1;
    const unsigned char *p = der;
    k->pub = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    if (!k->pub)
        return -1;
    int bits = EVP_PKEY_get_bits(k->pub);
    if (EVP_PKEY_is_a(k->pub, "RSA")) {
        snprintf(k->desc, sizeof(k->desc), "RSA %d bits", bits);
        k->supported = bits >= 2048 && bits <= 4096;
    } else if (EVP_PKEY_is_a(k->pub, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        if (!EVP_PKEY_get_group_name(k->pub, group, sizeof(group), &glen))
            snprintf(group, sizeof(group), "unknown curve");
        if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))
            snprintf(k->desc, sizeof(k->desc), "EC P-256");
        else if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384"))
            snprintf(k->desc, sizeof(k->desc), "EC P-384");
        else
            snprintf(k->desc, sizeof(k->desc), "EC %s (%d bits)", group, bits);
        k->supported = !strncmp(k->desc, "EC P-", 5);
    } else {
        snprintf(k->desc, sizeof(k->desc), "%s", EVP_PKEY_get0_type_name(k->pub));
        k->supported = 0;
    }
    ERR_clear_error();
    return 0;
}

static void list_keys(PKCS11_KEY *keys, unsigned int n, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (unsigned int i = 0; i < n && o < len; i++) {
        char name[120];
        phc__key_name(name, sizeof(name), "", keys[i].label ? keys[i].label : "", keys[i].id,
                      keys[i].id_len, 1);
        int w = snprintf(out + o, len - o, "%s%s", o ? ", " : "", name);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (!out[0])
        snprintf(out, len, "none");
}

static int find_keys(phc_hsm *h, phc_errbuf *err)
{
    const char *tok = h->slot->token->label;
    PKCS11_KEY *all = NULL;
    unsigned int n = 0;
    char ckr[64], want[160], name[120];
    /* Another process may delete a key (a prune) between libp11's search and its reading of
     * the key's attributes: CKR_OBJECT_HANDLE_INVALID. libp11 drops its partial list then;
     * the search is made again, a bounded number of times. */
    for (unsigned int attempt = 1;; attempt++) {
        ERR_clear_error();
        if (!PKCS11_enumerate_keys(h->slot->token, &all, &n))
            break;
        if (ckr_last(ckr, sizeof(ckr)) != CKR_OBJECT_HANDLE_INVALID || attempt == PHC_P11_ATTEMPTS)
            return phc__err(err, PHC_ERR_HSM, "cannot list the private keys on token '%s' (%s)%s",
                            tok, ckr, attempt > 1 ? " after several attempts" : "");
        phc__log(h->log, PHC_LOG_WARN,
                 "a private key on token '%s' went away while it was being listed (%s: deleted "
                 "by another process?): listing again (attempt %u of %d)",
                 tok, ckr, attempt + 1, PHC_P11_ATTEMPTS);
    }
    phc__key_name(want, sizeof(want), "", h->want_label, h->want_id, h->want_id_len, h->has_id);
    h->keys = OPENSSL_zalloc(sizeof(*h->keys) * (n ? n : 1));
    if (!h->keys)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    for (unsigned int i = 0; i < n; i++) {
        if (!obj_matches(all[i].label, all[i].id, all[i].id_len, h->want_label, h->want_id,
                         h->want_id_len, h->has_id))
            continue;
        hsm_key *k = &h->keys[h->nkeys++];
        k->id_len = all[i].id_len < sizeof(k->id) ? all[i].id_len : sizeof(k->id);
        memcpy(k->id, all[i].id, k->id_len);
        if (!(k->label = OPENSSL_strdup(all[i].label ? all[i].label : "")))
            return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        hsm_key_name(name, sizeof(name), k);
        ERR_clear_error();
        unsigned long krv = 0;
        k->priv = PKCS11_get_private_key(&all[i]);
        if (!k->priv || describe_key(k))
            krv = ckr_last(ckr, sizeof(ckr));
        if (krv == CKR_OBJECT_HANDLE_INVALID) {
            /* Deleted by another process since the search (a prune): not a key any more. */
            phc__log(h->log, PHC_LOG_WARN,
                     "key %s on token '%s' went away while it was being read (%s: deleted by "
                     "another process?): skipped",
                     name, tok, ckr);
            EVP_PKEY_free(k->priv);
            EVP_PKEY_free(k->pub);
            OPENSSL_free(k->label);
            memset(k, 0, sizeof(*k));
            h->nkeys--;
            continue;
        }
        if (!k->priv || !k->pub)
            return phc__err(err, PHC_ERR_HSM, "cannot use private key %s on token '%s' (%s)", name,
                            tok, ckr);
        phc__log(h->log, PHC_LOG_INFO, "key %s on token '%s': %s%s", name, tok, k->desc,
                 k->supported ? "" : " (not supported, ignored)");
    }
    if (!h->nkeys) {
        char present[256];
        list_keys(all, n, present, sizeof(present));
        return phc__err(err, PHC_ERR_HSM,
                        "no private key with %s%s on token '%s' (private keys present: %s)",
                        h->want_label ? "label " : "", want, tok, present);
    }
    for (unsigned int i = 0; i < h->nkeys; i++)
        if (h->keys[i].supported)
            return 0;
    hsm_key_name(name, sizeof(name), &h->keys[0]);
    return phc__err(err, PHC_ERR_HSM,
                    "key %s on token '%s' is %s: supported are RSA 2048-4096 and EC P-256/P-384",
                    name, tok, h->keys[0].desc);
}

/* One attempt at the slot list, the token, the login and the keys; r->cause set when it
 * failed in a way worth another attempt (p11_module.h). g_lock held. */
static int open_once(phc_hsm *h, P11KitUri *u, const char *pin_source, phc_pin_latch *latch,
                     phc_p11_retry *r, phc_errbuf *err)
{
    int rc;
    phc_errbuf e = {0};
    phc__p11_uri_token_label(u, r->token, sizeof(r->token));
    if ((rc = phc__p11_module_slots(h->mod, &h->lp, h->module, &e))) {
        /* libp11 reads every slot's token information while listing: SoftHSM's answer for
         * a token file being rewritten fails the whole list. */
        if (strstr(e.msg, "(CKR_GENERAL_ERROR)"))
            snprintf(r->cause, sizeof(r->cause), "CKR_GENERAL_ERROR at C_GetTokenInfo");
        return phc__err_copy(err, &e);
    }
    if ((rc = select_token(h, u, r, err)))
        return rc;
    const PKCS11_TOKEN *t = h->slot->token;
    snprintf(r->token, sizeof(r->token), "%s", t->label);
    phc__log(h->log, PHC_LOG_INFO, "token '%s' (serial %s, %s %s) in slot %lu", t->label,
             t->serialnr, t->manufacturer, t->model, PKCS11_get_slotid_from_slot(h->slot));
    if ((rc = login(h, pin_source, latch, r, err)))
        return rc;
    return find_keys(h, err);
}

int phc__hsm_open(phc_hsm **out, const char *module, const char *key_uri, const char *pin_source,
                  const phc_log *log, phc_errbuf *err)
{
    return phc__hsm_open_latched(out, module, key_uri, pin_source, log, NULL, err);
}

int phc__hsm_open_latched(phc_hsm **out, const char *module, const char *key_uri,
                          const char *pin_source, const phc_log *log, phc_pin_latch *latch,
                          phc_errbuf *err)
{
    phc_p11_uri u;
    phc_hsm *h = NULL;
    int rc, locked = 0;

    *out = NULL;
    if ((rc = uri_parse(&u, key_uri, "key", CKO_PRIVATE_KEY, err)))
        return rc;
    h = OPENSSL_zalloc(sizeof(*h));
    if (!h || !(h->module = OPENSSL_strdup(module ? module : ""))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    /* The object the key URI names moves into the handle. */
    h->want_label = u.label;
    h->want_id = u.id;
    h->want_id_len = u.id_len;
    h->has_id = u.has_id;
    u.label = NULL;
    u.id = NULL;
    h->log = log;

    pthread_mutex_lock(&g_lock);
    locked = 1;
    if ((rc = phc__p11_module_get(&h->mod, module, log, err)))
        goto out;
    phc_p11_retry r;
    phc__p11_retry_init(&r);
    while ((rc = open_once(h, u.kit, pin_source, latch, &r, err))) {
        if (!r.cause[0])
            goto out;
        /* libp11's slots may be listed again: nothing of this handle points into them. */
        h->lp = NULL;
        h->slot = NULL;
        if (!phc__p11_retry_again(&r, h->mod, module, log)) {
            phc__p11_retry_final(&r, err);
            goto out;
        }
    }
    *out = h;
    h = NULL;
    rc = 0;
out:
    phc__p11_store_report(log);
    if (locked)
        pthread_mutex_unlock(&g_lock);
    phc__p11_uri_clear(&u);
    phc__hsm_free(h);
    ERR_clear_error();
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Identity */

/* A certificate judged at `now`: -1 not yet valid, 0 valid, 1 expired, 2 unreadable. The rule
 * lives in rotation.c, shared with token.c so that `phc status` names the pair chosen here. */
static int cert_state(X509 *c, time_t now)
{
    return phc__cert_validity(c, (long long)now);
}

/* Is a newer than b (later notBefore, then later notAfter, then the later installation by
 * the token's install-order record, then a fixed order)? */
static int cert_newer(const phc_certobj *a, const phc_certobj *b)
{
    return phc__cert_newer(a->x509, a->seq, b->x509, b->seq);
}

static int cert_not_valid(phc_hsm *h, X509 *c, int state, const char *forkey, phc_errbuf *err)
{
    char cn[320], when[32];
    cert_name(cn, sizeof(cn), c);
    if (state == 1) {
        asn1_time_str(when, sizeof(when), X509_get0_notAfter(c));
        return phc__err(err, PHC_ERR_HSM, "client certificate %s%s on token '%s' expired on %s", cn,
                        forkey, phc__hsm_token_label(h), when);
    }
    if (state == -1) {
        asn1_time_str(when, sizeof(when), X509_get0_notBefore(c));
        return phc__err(err, PHC_ERR_HSM,
                        "client certificate %s%s on token '%s' is not valid before %s", cn, forkey,
                        phc__hsm_token_label(h), when);
    }
    return phc__err(err, PHC_ERR_HSM,
                    "client certificate %s%s on token '%s' has an unreadable validity period", cn,
                    forkey, phc__hsm_token_label(h));
}

static int mismatch(phc_hsm *h, X509 *c, const hsm_key *k, phc_errbuf *err)
{
    char cn[320], kn[160];
    cert_name(cn, sizeof(cn), c);
    if (k) {
        hsm_key_name(kn, sizeof(kn), k);
    } else {
        char l[160];
        phc__key_name(l, sizeof(l), "", h->want_label, h->want_id, h->want_id_len, h->has_id);
        snprintf(kn, sizeof(kn), "%s", l);
    }
    return phc__err(err, PHC_ERR_HSM, "client certificate %s does not match key %s on token '%s'",
                    cn, kn, phc__hsm_token_label(h));
}

static int pub_eq(const hsm_key *k, X509 *c)
{
    EVP_PKEY *cp = X509_get0_pubkey(c);
    int r = cp && EVP_PKEY_eq(cp, k->pub) == 1;
    ERR_clear_error();
    return r;
}

/* Read afresh on every call (certobj.c says why libp11's cached list will not do). */
static int token_certs(phc_hsm *h, phc_certobj **certs, size_t *n, phc_errbuf *err)
{
    return phc__certobj_list(certs, n, phc__p11_module_fn(h->mod),
                             PKCS11_get_slotid_from_slot((PKCS11_SLOT *)h->slot),
                             phc__hsm_token_label(h), err);
}

/* Certificates already warned about (SHA-256 of the DER), so that a planted one is named once
 * per process, not at every reload. Guarded by g_lock. */
static unsigned char g_warned[32][32];
static size_t g_nwarned;

static void warn_once(phc_hsm *h, X509 *c, const char *why)
{
    unsigned char md[32];
    unsigned int n = sizeof(md);
    if (!X509_digest(c, EVP_sha256(), md, &n))
        return;
    for (size_t i = 0; i < g_nwarned && i < 32; i++)
        if (memcmp(g_warned[i], md, sizeof(md)) == 0)
            return;
    memcpy(g_warned[g_nwarned++ % 32], md, sizeof(md));
    char cn[320];
    cert_name(cn, sizeof(cn), c);
    phc__log(h->log, PHC_LOG_WARN,
             "certificate object %s on token '%s' is not used: %s (a certificate object needs no "
             "PIN to be written; delete it if nobody here put it there)",
             cn, phc__hsm_token_label(h), why);
}

/* May c serve as the identity for key k? Not when its public key is another (a planted or
 * stray object with the key's id) or, with trust, when it does not chain to a pinned CA
 * (judged while it is valid: an expired one is reported as expired). k NULL: any of the
 * client's keys. */
typedef struct skipped {
    const phc_certobj *cert; /* borrowed from the certificate list; the newest one skipped */
    char why[PHC_ERRMSG_MAX];
} skipped;

static int usable(phc_hsm *h, const phc_certobj *co, const hsm_key *k, const phc_trust *trust,
                  time_t now, skipped *sk)
{
    X509 *c = co->x509;
    phc_errbuf e = {0};
    int match = 0;
    for (unsigned int i = 0; i < h->nkeys && !match; i++)
        match = (!k || k == &h->keys[i]) && pub_eq(&h->keys[i], c);
    if (!match) {
        char kn[160];
        if (k || h->nkeys == 1)
            hsm_key_name(kn, sizeof(kn), k ? k : &h->keys[0]);
        else
            phc__key_name(kn, sizeof(kn), "", h->want_label, h->want_id, h->want_id_len, h->has_id);
        snprintf(e.msg, sizeof(e.msg), "it does not match key %s", kn);
    } else if (trust && cert_state(c, now) == 0 &&
               phc__trust_verify(trust, c, NULL, X509_PURPOSE_ANY, (long long)now, &e) != PHC_OK) {
        ERR_clear_error();
    } else {
        return 1;
    }
    warn_once(h, c, e.msg);
    if (!sk->cert || cert_newer(co, sk->cert)) {
        sk->cert = co;
        snprintf(sk->why, sizeof(sk->why), "%s", e.msg);
    }
    return 0;
}

/* The chain rule protects only where it can: ca_file pins the server's CA, which need not
 * have issued the client certificate (the server checks that). Unless some certificate of
 * the client's keys valid now chains to it, the chain is left to the server: the trust to
 * apply is then NULL. */
static const phc_trust *chain_rule(phc_hsm *h, const phc_certobj *certs, size_t n,
                                   const phc_trust *trust, time_t now)
{
    for (size_t j = 0; trust && j < n; j++) {
        X509 *c = certs[j].x509;
        if (!c || cert_state(c, now) != 0)
            continue;
        for (unsigned int i = 0; i < h->nkeys; i++) {
            if (!h->keys[i].supported || !pub_eq(&h->keys[i], c))
                continue;
            int ok =
                phc__trust_verify(trust, c, NULL, X509_PURPOSE_ANY, (long long)now, NULL) == PHC_OK;
            ERR_clear_error();
            if (ok)
                return trust;
        }
    }
    if (trust)
        phc__log(h->log, PHC_LOG_DEBUG,
                 "no client certificate on token '%s' chains to ca_file; the server judges the "
                 "chain",
                 phc__hsm_token_label(h));
    return NULL;
}

/* Nothing usable was left: name the newest certificate skipped, and why. */
static int none_usable(phc_hsm *h, const skipped *sk, phc_errbuf *err)
{
    char cn[320];
    cert_name(cn, sizeof(cn), sk->cert->x509);
    return phc__err(err, PHC_ERR_HSM, "client certificate %s on token '%s' is not used: %.200s", cn,
                    phc__hsm_token_label(h), sk->why);
}

/* cert_ref NULL: the newest certificate valid now among those sharing an id with a matching
 * (supported) key and usable by it; pairs without a certificate are pending and never
 * chosen. */
static int pick_by_key(phc_hsm *h, time_t now, const phc_trust *trust, const hsm_key **kout,
                       X509 **cout, phc_errbuf *err)
{
    phc_certobj *certs = NULL;
    size_t n = 0;
    const hsm_key *best_k = NULL, *any_k = NULL;
    const phc_certobj *best = NULL, *any = NULL;
    skipped sk = {0};
    int rc = token_certs(h, &certs, &n, err);
    if (rc)
        return rc;
    trust = chain_rule(h, certs, n, trust, now);
    for (unsigned int i = 0; i < h->nkeys; i++) {
        const hsm_key *k = &h->keys[i];
        if (!k->supported)
            continue;
        for (size_t j = 0; j < n; j++) {
            const phc_certobj *c = &certs[j];
            if (!c->x509 || c->id_len != k->id_len || memcmp(c->id, k->id, k->id_len) ||
                !usable(h, c, k, trust, now, &sk))
                continue;
            if (!any || cert_newer(c, any)) {
                any = c;
                any_k = k;
            }
            if (cert_state(c->x509, now) == 0 && (!best || cert_newer(c, best))) {
                best = c;
                best_k = k;
            }
        }
    }
    char kn[160], forkey[200];
    phc__key_name(kn, sizeof(kn), "", h->want_label, h->want_id, h->want_id_len, h->has_id);
    if (!any && sk.cert) {
        rc = none_usable(h, &sk, err);
    } else if (!any) {
        /* Name the key(s) precisely: with one match, label and id. */
        if (h->nkeys == 1)
            hsm_key_name(kn, sizeof(kn), &h->keys[0]);
        rc = phc__err(err, PHC_ERR_HSM, "no certificate on token '%s' for key %s",
                      phc__hsm_token_label(h), kn);
    } else if (!best) {
        char an[160];
        hsm_key_name(an, sizeof(an), any_k);
        snprintf(forkey, sizeof(forkey), " for key %s", an);
        rc = cert_not_valid(h, any->x509, cert_state(any->x509, now), forkey, err);
    } else if (!pub_eq(best_k, best->x509)) {
        rc = mismatch(h, best->x509, best_k, err);
    } else {
        *kout = best_k;
        X509_up_ref(best->x509); /* outlives the list: the caller owns it */
        *cout = best->x509;
    }
    phc__certobj_free(certs, n);
    return rc;
}

/* An explicit certificate: the matching key is the one with its public key. */
static int pair_with_key(phc_hsm *h, X509 *c, time_t now, const hsm_key **kout, phc_errbuf *err)
{
    for (unsigned int i = 0; i < h->nkeys; i++) {
        const hsm_key *k = &h->keys[i];
        if (!pub_eq(k, c))
            continue;
        if (!k->supported) {
            char kn[160];
            hsm_key_name(kn, sizeof(kn), k);
            return phc__err(err, PHC_ERR_HSM,
                            "key %s on token '%s' is %s: supported are RSA 2048-4096 and EC "
                            "P-256/P-384",
                            kn, phc__hsm_token_label(h), k->desc);
        }
        int st = cert_state(c, now);
        if (st != 0) {
            char kn[160], forkey[200];
            hsm_key_name(kn, sizeof(kn), k);
            snprintf(forkey, sizeof(forkey), " for key %s", kn);
            return cert_not_valid(h, c, st, forkey, err);
        }
        *kout = k;
        return 0;
    }
    return mismatch(h, c, h->nkeys == 1 ? &h->keys[0] : NULL, err);
}

static int cert_from_uri(phc_hsm *h, const char *ref, time_t now, const phc_trust *trust,
                         X509 **cout, phc_errbuf *err)
{
    phc_p11_uri u;
    char want[200];
    phc_certobj *certs = NULL;
    size_t n = 0;
    const phc_certobj *best = NULL, *any = NULL;
    skipped sk = {0};
    int rc = uri_parse(&u, ref, "certificate", CKO_CERTIFICATE, err);
    if (rc)
        return rc;
    phc__p11_uri_token_wanted(u.kit, want, sizeof(want));
    if (want[0] && !token_matches(u.kit, h->slot)) {
        rc = phc__err(err, PHC_ERR_CONFIG,
                      "certificate URI names a token with %s, but the key is on token '%s'", want,
                      phc__hsm_token_label(h));
        goto out;
    }
    if ((rc = token_certs(h, &certs, &n, err)))
        goto out;
    trust = chain_rule(h, certs, n, trust, now);
    for (size_t j = 0; j < n; j++) {
        const phc_certobj *c = &certs[j];
        if (!c->x509 ||
            !obj_matches(c->label, c->id, c->id_len, u.label, u.id, u.id_len, u.has_id) ||
            !usable(h, c, NULL, trust, now, &sk))
            continue;
        if (!any || cert_newer(c, any))
            any = c;
        if (cert_state(c->x509, now) == 0 && (!best || cert_newer(c, best)))
            best = c;
    }
    if (!any && sk.cert) {
        rc = none_usable(h, &sk, err);
        goto out;
    }
    if (!any) {
        phc__key_name(want, sizeof(want), "", u.label, u.id, u.id_len, u.has_id);
        rc = phc__err(err, PHC_ERR_HSM, "no certificate with %s%s on token '%s'",
                      u.label ? "label " : "", want, phc__hsm_token_label(h));
        goto out;
    }
    /* An expired one is reported by pair_with_key. */
    if (!(*cout = X509_dup(best ? best->x509 : any->x509)))
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
out:
    phc__certobj_free(certs, n);
    phc__p11_uri_clear(&u);
    return rc;
}

static int cert_from_file(const char *path, X509 **cout, phc_errbuf *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return phc__err(err, PHC_ERR_CONFIG, "cannot read certificate file '%s': %s", path,
                        strerror(errno));
    ERR_clear_error();
    *cout = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!*cout)
        return phc__err_ossl(err, PHC_ERR_CONFIG,
                             "cannot read certificate file '%s': no PEM certificate", path);
    return 0;
}

int phc__hsm_identity(phc_hsm *h, const char *cert_ref, long long now, EVP_PKEY **key_out,
                      X509 **cert_out, phc_errbuf *err)
{
    return phc__hsm_identity_pinned(h, cert_ref, now, NULL, key_out, cert_out, err);
}

int phc__hsm_identity_pinned(phc_hsm *h, const char *cert_ref, long long now,
                             const phc_trust *trust, EVP_PKEY **key_out, X509 **cert_out,
                             phc_errbuf *err)
{
    const hsm_key *k = NULL;
    X509 *c = NULL;
    time_t t = (time_t)now;
    int rc;

    *key_out = NULL;
    *cert_out = NULL;
    if (!h)
        return phc__err(err, PHC_ERR_INTERNAL, "no HSM handle");
    pthread_mutex_lock(&g_lock);
    if (!cert_ref) {
        rc = pick_by_key(h, t, trust, &k, &c, err);
    } else {
        if (phc__p11_uri_scheme(cert_ref) != 0) /* "PKCS11:" too: refused by the case rule */
            rc = cert_from_uri(h, cert_ref, t, trust, &c, err);
        else
            rc = cert_from_file(cert_ref, &c, err);
        if (!rc)
            rc = pair_with_key(h, c, t, &k, err);
    }
    pthread_mutex_unlock(&g_lock);
    if (rc) {
        X509_free(c);
        ERR_clear_error();
        return rc;
    }
    char cn[320], kn[160], until[32], issuer[256];
    cert_name(cn, sizeof(cn), c);
    hsm_key_name(kn, sizeof(kn), k);
    asn1_time_str(until, sizeof(until), X509_get0_notAfter(c));
    phc__name_str(issuer, sizeof(issuer), X509_get_issuer_name(c));
    phc__log(h->log, PHC_LOG_INFO,
             "client certificate %s issued by '%s', valid until %s, with key %s (%s)", cn, issuer,
             until, kn, k->desc);
    *key_out = k->priv;
    *cert_out = c;
    return 0;
}

const char *phc__hsm_token_label(const phc_hsm *h)
{
    if (!h || !h->slot || !h->slot->token || !h->slot->token->label)
        return "";
    return h->slot->token->label;
}

void phc__hsm_free(phc_hsm *h)
{
    if (!h)
        return;
    /* Order matters: libp11's key objects point at their slot, the slots at the module. */
    pthread_mutex_lock(&g_lock);
    for (unsigned int i = 0; i < h->nkeys; i++) {
        EVP_PKEY_free(h->keys[i].priv);
        EVP_PKEY_free(h->keys[i].pub);
        OPENSSL_free(h->keys[i].label);
    }
    OPENSSL_free(h->keys);
    phc__p11_module_put(h->mod);
    pthread_mutex_unlock(&g_lock);
    OPENSSL_free(h->module);
    OPENSSL_free(h->want_label);
    OPENSSL_free(h->want_id);
    OPENSSL_free(h);
    ERR_clear_error();
}
