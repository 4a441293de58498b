/* Direct PKCS#11 access (see p11.h for the contract). The module comes from the one module
 * layer (p11_module.c), shared with libp11: the same initialised function list, finalised
 * when its last user is gone. */
#include "p11.h"
#include "p11_module.h"
#include "p11_attr.h"
#include "p11_login.h"
#include "p11_rv.h"
#include "p11_uri.h"

#include "err.h"
#include "log.h"
#include "names.h"
#include "secret.h"

#include <p11-kit/uri.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Longest data object value accepted (the client secret; same bound as secret.c). */
#define DATA_MAX 4096
/* CKA_APPLICATION of a data object being replaced (see write_data). */
#define APP "phconnect"
#define APP_REPLACED "phconnect-replaced"

struct phc_p11 {
    phc_p11_module *mod; /* one reference on the process's module (p11_module.h) */
    CK_FUNCTION_LIST *fn;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    int has_session;
    char label[33];
    char serial[17];
    const phc_log *log;
};

/* ------------------------------------------------------------------------------------ */
/* CK_RV: the one translation into phc_err */

/* "<what> on token 'T' failed (CKR_X)" as PHC_ERR_HSM, or the PIN / token-gone wording for
 * the CK_RVs an operator acts on differently. token may be "" (before one is chosen). */
static int p11_fail(phc_errbuf *err, const char *token, CK_RV rv, const char *fmt, ...)
    PHC_PRINTF(4, 5);

static int p11_fail(phc_errbuf *err, const char *token, CK_RV rv, const char *fmt, ...)
{
    char what[256], name[40];
    phc__p11_rv_str(name, sizeof(name), rv);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_USER_PIN_NOT_INITIALIZED:
        return phc__err(err, PHC_ERR_PIN, "PIN rejected by token '%s' (%s); not retried", token,
                        name);
    case CKR_PIN_LOCKED:
        return phc__err(err, PHC_ERR_PIN, "PIN of token '%s' is locked (%s)", token, name);
    case CKR_TOKEN_WRITE_PROTECTED:
        return phc__err(err, PHC_ERR_HSM, "%s: token '%s' is write-protected (%s)", what, token,
                        name);
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
        return phc__err(err, PHC_ERR_HSM, "%s: token '%s' is gone (%s)", what, token, name);
    case CKR_HOST_MEMORY:
        return phc__err(err, PHC_ERR_INTERNAL, "%s on token '%s': out of memory (%s)", what, token,
                        name);
    default:
        if (!token[0]) /* before a token is chosen (loading, listing slots) */
            return phc__err(err, PHC_ERR_HSM, "%s failed (%s)", what, name);
        return phc__err(err, PHC_ERR_HSM, "%s on token '%s' failed (%s)", what, token, name);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Small helpers */

/* A blank-padded PKCS#11 string field as a trimmed C string. */
static void padded(char *out, size_t outlen, const unsigned char *field, size_t n)
{
    while (n && (field[n - 1] == ' ' || field[n - 1] == '\0'))
        n--;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, field, n);
    out[n] = '\0';
}

/* ------------------------------------------------------------------------------------ */
/* URI and token */

/* Parses uri with the one parser (p11_uri.c) and words its refusals. want: CKO_DATA for a
 * data object URI, PHC_P11_NO_OBJECT when only its token is used. The URI itself is never
 * quoted: a mistyped one may carry a PIN. */
static int uri_parse(phc_p11_uri *out, const char *uri, CK_OBJECT_CLASS want, phc_errbuf *err)
{
    const char *why = NULL;
    switch (phc__p11_uri_parse(out, uri, want, &why)) {
    case PHC_P11_URI_OK:
        return 0;
    case PHC_P11_URI_NOT_URI:
        return phc__err(err, PHC_ERR_CONFIG, "not a PKCS#11 URI (pkcs11:token=...;object=...)");
    case PHC_P11_URI_CASE:
        return phc__err(err, PHC_ERR_CONFIG,
                        "PKCS#11 URI: write its scheme 'pkcs11:' in lower case");
    case PHC_P11_URI_MALFORMED:
        return phc__err(err, PHC_ERR_CONFIG, "not a valid PKCS#11 URI: %s", why ? why : "?");
    case PHC_P11_URI_PIN:
        return phc__err(
            err, PHC_ERR_CONFIG,
            "PKCS#11 URI must not carry a PIN (pin-value/pin-source); set 'pin' instead");
    case PHC_P11_URI_UNKNOWN:
        return phc__err(err, PHC_ERR_CONFIG,
                        "PKCS#11 URI has an attribute phconnect does not understand (a typo?)");
    case PHC_P11_URI_WRONG_CLASS:
        return phc__err(err, PHC_ERR_CONFIG, "data object URI has type= other than 'data'");
    case PHC_P11_URI_NO_OBJECT:
        return phc__err(err, PHC_ERR_CONFIG, "data object URI names no object: add object=");
    default:
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
}

/* "label 'x', serial 'y'": the token attributes the URI names; "" when none. */
static void token_wanted(P11KitUri *u, char *out, size_t len)
{
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u);
    CK_SLOT_INFO *si = p11_kit_uri_get_slot_info(u);
    struct {
        const unsigned char *f;
        size_t n;
        const char *name;
    } f[] = {
        {ti->label, sizeof(ti->label), "label"},
        {ti->serialNumber, sizeof(ti->serialNumber), "serial"},
        {ti->manufacturerID, sizeof(ti->manufacturerID), "manufacturer"},
        {ti->model, sizeof(ti->model), "model"},
        {si->slotDescription, sizeof(si->slotDescription), "slot-description"},
        {si->manufacturerID, sizeof(si->manufacturerID), "slot-manufacturer"},
    };
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (f[i].f[0] == 0)
            continue;
        char v[80];
        padded(v, sizeof(v), f[i].f, f[i].n);
        size_t o = strlen(out);
        snprintf(out + o, len - o, "%s%s '%s'", o ? ", " : "", f[i].name, v);
    }
    CK_SLOT_ID sid = p11_kit_uri_get_slot_id(u);
    if (sid != (CK_SLOT_ID)-1) {
        size_t o = strlen(out);
        snprintf(out + o, len - o, "%sslot-id %lu", o ? ", " : "", (unsigned long)sid);
    }
}

static int select_token(phc_p11 *p, P11KitUri *u, const char *module, phc_errbuf *err)
{
    CK_FUNCTION_LIST *fn = p->fn;
    CK_ULONG n = 0;
    CK_SLOT_ID *slots = NULL;
    char want[256], present[256] = "";
    unsigned int ntokens = 0, nmatch = 0;
    int rc = 0;
    CK_RV rv = fn->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv == CKR_OK && n > 0) {
        if (!(slots = OPENSSL_malloc(n * sizeof(*slots))))
            return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        rv = fn->C_GetSlotList(CK_TRUE, slots, &n);
    }
    if (rv != CKR_OK) {
        rc = p11_fail(err, "", rv, "listing the slots of PKCS#11 module '%s'", module);
        goto out;
    }
    token_wanted(u, want, sizeof(want));
    CK_SLOT_ID want_sid = p11_kit_uri_get_slot_id(u);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK_SLOT_INFO si;
        if (fn->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
            fn->C_GetSlotInfo(slots[i], &si) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue; /* e.g. SoftHSM's spare uninitialised slot */
        char label[33];
        padded(label, sizeof(label), ti.label, sizeof(ti.label));
        size_t o = strlen(present);
        snprintf(present + o, sizeof(present) - o, "%s'%s'", o ? ", " : "", label);
        ntokens++;
        if (!p11_kit_uri_match_token_info(u, &ti) || !p11_kit_uri_match_slot_info(u, &si) ||
            (want_sid != (CK_SLOT_ID)-1 && want_sid != slots[i]))
            continue;
        if (nmatch++ == 0) {
            p->slot = slots[i];
            snprintf(p->label, sizeof(p->label), "%s", label);
            padded(p->serial, sizeof(p->serial), ti.serialNumber, sizeof(ti.serialNumber));
        }
    }
    if (!ntokens)
        rc = phc__err(err, PHC_ERR_HSM, "no initialised token in module '%s'", module);
    else if (!nmatch)
        rc = phc__err(err, PHC_ERR_HSM, "no token with %s in module '%s' (tokens present: %s)",
                      want[0] ? want : "the attributes given", module, present);
    else if (nmatch > 1 && !want[0])
        rc = phc__err(err, PHC_ERR_HSM,
                      "module '%s' has %u tokens (%s) and the URI names none: add token= to it",
                      module, nmatch, present);
    else if (nmatch > 1)
        rc = phc__err(err, PHC_ERR_HSM,
                      "%u tokens match %s in module '%s' (tokens present: %s): add serial= to "
                      "the URI",
                      nmatch, want, module, present);
out:
    OPENSSL_free(slots);
    return rc;
}

static int login(phc_p11 *p, const char *pin_source, phc_errbuf *err)
{
    CK_TOKEN_INFO ti;
    CK_SESSION_INFO si;
    CK_RV rv = p->fn->C_GetTokenInfo(p->slot, &ti);
    if (rv != CKR_OK)
        return p11_fail(err, p->label, rv, "reading the token information");
    if (!(ti.flags & CKF_LOGIN_REQUIRED))
        return 0;
    /* The source is read even when this process is logged in already, so that a missing PIN
     * file is reported the same way every time. */
    char *pin = NULL;
    size_t pin_len = 0;
    int rc = phc__secret_read(&pin, &pin_len, pin_source, "PIN", PHC_ERR_PIN, err);
    if (rc)
        return rc;
    rv = p->fn->C_GetSessionInfo(p->session, &si);
    if (rv == CKR_OK && (si.state == CKS_RW_USER_FUNCTIONS || si.state == CKS_RO_USER_FUNCTIONS)) {
        phc__secret_free(pin, pin_len);
        phc__log(p->log, PHC_LOG_DEBUG, "token '%s': already logged in by this process", p->label);
        return 0;
    }
    /* The login rule (p11_login.c); no latch: an administration command makes one attempt. */
    unsigned char md[32];
    if ((rc = phc__p11_login_check(p->label, ti.flags, pin, pin_len, pin_source, NULL, md, p->log,
                                   err))) {
        phc__secret_free(pin, pin_len);
        return rc;
    }
    /* One attempt: a retry with the same wrong PIN would burn the token's remaining tries. */
    rv = p->fn->C_Login(p->session, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)pin_len);
    phc__secret_free(pin, pin_len);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
        return phc__p11_login_refused(p->label, rv, md, NULL, err);
    phc__log(p->log, PHC_LOG_INFO, "logged in to token '%s'", p->label);
    return 0;
}

int phc__p11_open(phc_p11 **out, const char *module, const char *uri, const char *pin_source,
                  const phc_log *log, phc_errbuf *err)
{
    phc_p11_uri u;
    phc_p11 *p = NULL;
    int rc;
    *out = NULL;
    if ((rc = uri_parse(&u, uri, PHC_P11_NO_OBJECT, err)))
        return rc;
    if (!(p = OPENSSL_zalloc(sizeof(*p)))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    p->log = log;
    if ((rc = phc__p11_module_get(&p->mod, module, log, err)))
        goto out;
    p->fn = phc__p11_module_fn(p->mod);
    if ((rc = select_token(p, u.kit, module, err)))
        goto out;
    CK_RV rv =
        p->fn->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->session);
    if (rv != CKR_OK) {
        rc = p11_fail(err, p->label, rv, "opening a session");
        goto out;
    }
    p->has_session = 1;
    if ((rc = login(p, pin_source, err)))
        goto out;
    *out = p;
    p = NULL;
out:
    phc__p11_uri_clear(&u);
    phc__p11_close(p);
    return rc;
}

void phc__p11_close(phc_p11 *p)
{
    if (!p)
        return;
    if (p->has_session)
        p->fn->C_CloseSession(p->session);
    phc__p11_module_put(p->mod);
    OPENSSL_free(p);
}

const char *phc__p11_token_label(const phc_p11 *p)
{
    return p ? p->label : "";
}

const char *phc__p11_token_serial(const phc_p11 *p)
{
    return p ? p->serial : "";
}

/* ------------------------------------------------------------------------------------ */
/* Objects */

static const char *class_word(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY:
        return "private keys";
    case CKO_PUBLIC_KEY:
        return "public keys";
    case CKO_CERTIFICATE:
        return "certificates";
    case CKO_DATA:
        return "data objects";
    default:
        return "objects";
    }
}

int phc__p11_find(phc_p11 *p, const phc_p11_match *m, CK_OBJECT_HANDLE **out, size_t *n,
                  phc_errbuf *err)
{
    CK_OBJECT_CLASS cls = m->cls;
    CK_ATTRIBUTE t[3];
    CK_ULONG nt = 0;
    CK_OBJECT_HANDLE *list = NULL;
    size_t cap = 0, cnt = 0;
    *out = NULL;
    *n = 0;
    t[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    if (m->label)
        t[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)m->label, strlen(m->label)};
    if (m->has_id)
        t[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)m->id, m->id_len};
    CK_RV rv = p->fn->C_FindObjectsInit(p->session, t, nt);
    if (rv != CKR_OK)
        return p11_fail(err, p->label, rv, "listing the %s", class_word(cls));
    for (;;) {
        CK_OBJECT_HANDLE batch[32];
        CK_ULONG got = 0;
        rv = p->fn->C_FindObjects(p->session, batch, 32, &got);
        if (rv != CKR_OK || got == 0)
            break;
        if (cnt + got > cap) {
            size_t ncap = cap ? cap * 2 : 64;
            while (ncap < cnt + got)
                ncap *= 2;
            CK_OBJECT_HANDLE *nl = OPENSSL_realloc(list, ncap * sizeof(*list));
            if (!nl) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            list = nl;
            cap = ncap;
        }
        memcpy(list + cnt, batch, got * sizeof(*batch));
        cnt += got;
    }
    p->fn->C_FindObjectsFinal(p->session);
    if (rv != CKR_OK) {
        OPENSSL_free(list);
        return p11_fail(err, p->label, rv, "listing the %s", class_word(cls));
    }
    *out = list;
    *n = cnt;
    return 0;
}

/* One attribute (p11_attr.c); secure: the value is a secret (secure heap, wiped on every
 * path). */
static int attr_get(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, int secure,
                    unsigned char **val, size_t *len, phc_errbuf *err)
{
    CK_RV rv = CKR_OK;
    int r = phc__p11_attr_read(p->fn, p->session, h, type, secure, val, len, &rv);
    if (r >= 0)
        return r;
    if (rv == CKR_HOST_MEMORY)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    return p11_fail(err, p->label, rv, "reading attribute 0x%lx of object %lu", (unsigned long)type,
                    (unsigned long)h);
}

int phc__p11_attr(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, unsigned char **val,
                  size_t *len, phc_errbuf *err)
{
    return attr_get(p, h, type, 0, val, len, err);
}

int phc__p11_attr_bool(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, int *out,
                       phc_errbuf *err)
{
    CK_BBOOL b = CK_FALSE;
    CK_ATTRIBUTE a = {type, &b, sizeof(b)};
    *out = -1;
    CK_RV rv = p->fn->C_GetAttributeValue(p->session, h, &a, 1);
    if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
        (rv == CKR_OK && a.ulValueLen != sizeof(b)))
        return 0;
    if (rv != CKR_OK)
        return p11_fail(err, p->label, rv, "reading attribute 0x%lx of object %lu",
                        (unsigned long)type, (unsigned long)h);
    *out = b == CK_TRUE;
    return 0;
}

int phc__p11_attr_ulong(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG *out,
                        phc_errbuf *err)
{
    CK_ULONG v = 0;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};
    CK_RV rv = p->fn->C_GetAttributeValue(p->session, h, &a, 1);
    if (rv == CKR_OK && a.ulValueLen != sizeof(v))
        rv = CKR_ATTRIBUTE_TYPE_INVALID;
    if (rv != CKR_OK)
        return p11_fail(err, p->label, rv, "reading attribute 0x%lx of object %lu",
                        (unsigned long)type, (unsigned long)h);
    *out = v;
    return 0;
}

int phc__p11_create(phc_p11 *p, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out,
                    const char *what, phc_errbuf *err)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = p->fn->C_CreateObject(p->session, tmpl, n, &h);
    if (rv != CKR_OK)
        return p11_fail(err, p->label, rv, "storing %s", what);
    if (out)
        *out = h;
    return 0;
}

int phc__p11_destroy(phc_p11 *p, CK_OBJECT_HANDLE h, const char *what, phc_errbuf *err)
{
    CK_RV rv = p->fn->C_DestroyObject(p->session, h);
    if (rv != CKR_OK)
        return p11_fail(err, p->label, rv, "deleting %s", what);
    return 0;
}

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
        if (v != req[i].want)
            return phc__err(err, PHC_ERR_HSM,
                            "token '%s' did not keep private key %s as asked: %s is %s", p->label,
                            name, req[i].what,
                            v == 1   ? "TRUE"
                            : v == 0 ? "FALSE"
                                     : "hidden");
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
    CK_RV rv = p->fn->C_GenerateKeyPair(p->session, &mech, pub, npub, priv, npriv, &hpub, &hpriv);
    if (rv != CKR_OK)
        return p11_fail(err, p->label, rv, "generating key pair %s", name);
    int rc = check_generated(p, hpriv, name, err);
    if (rc) {
        p->fn->C_DestroyObject(p->session, hpriv);
        p->fn->C_DestroyObject(p->session, hpub);
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
    CK_RV rv = p->fn->C_SignInit(p->session, &m, h);
    if (rv == CKR_OK)
        rv = p->fn->C_Sign(p->session, (CK_BYTE *)in, (CK_ULONG)inlen, NULL, &n);
    if (rv == CKR_OK && !(buf = OPENSSL_malloc(n ? n : 1)))
        rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK)
        rv = p->fn->C_Sign(p->session, (CK_BYTE *)in, (CK_ULONG)inlen, buf, &n);
    if (rv != CKR_OK) {
        OPENSSL_free(buf);
        return p11_fail(err, p->label, rv, "signing with key object %lu", (unsigned long)h);
    }
    *sig = buf;
    *siglen = n;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Data objects (the client secret) */

/* The object a data URI names: label and/or id, class data (or unset). */
typedef phc_p11_uri data_ref;

static void data_ref_free(data_ref *r)
{
    phc__p11_uri_clear(r);
}

static int data_ref_get(data_ref *r, const char *uri, phc_errbuf *err)
{
    return uri_parse(r, uri, CKO_DATA, err);
}

static int data_find(phc_p11 *p, const data_ref *r, CK_OBJECT_HANDLE **out, size_t *n,
                     phc_errbuf *err)
{
    phc_p11_match m = {CKO_DATA, r->label, r->id, r->id_len, r->has_id};
    return phc__p11_find(p, &m, out, n, err);
}

/* Whether a data object is an old copy that an interrupted write_data was replacing. */
static int is_replaced(phc_p11 *p, CK_OBJECT_HANDLE h)
{
    unsigned char *app = NULL;
    size_t len = 0;
    int r = attr_get(p, h, CKA_APPLICATION, 0, &app, &len, NULL) == 0 &&
            len == strlen(APP_REPLACED) && memcmp(app, APP_REPLACED, len) == 0;
    OPENSSL_free(app);
    return r;
}

/* Keeps the private objects among objs[0..*n): a public data object needs no PIN to be
 * written, so a secret read from one could be anybody's. Refused, naming the object, when
 * only public ones are there. */
static int keep_private(phc_p11 *p, CK_OBJECT_HANDLE *objs, size_t *n, const char *name,
                        phc_errbuf *err)
{
    size_t k = 0, all = *n;
    for (size_t i = 0; i < all; i++) {
        int priv = -1;
        int rc = phc__p11_attr_bool(p, objs[i], CKA_PRIVATE, &priv, err);
        if (rc)
            return rc;
        if (priv == 1)
            objs[k++] = objs[i];
    }
    *n = k;
    if (all && !k)
        return phc__err(err, PHC_ERR_HSM,
                        "data object %s on token '%s' is public (CKA_PRIVATE false): anyone can "
                        "write one without the PIN, so phconnect takes no client secret from it; "
                        "delete it and store the secret again with 'phc secret store'",
                        name, p->label);
    return PHC_OK;
}

static void free_value(unsigned char *v, size_t len)
{
    phc__p11_attr_free(v, len, 1);
}

int phc__p11_read_data(char **out, size_t *out_len, const char *module, const char *uri,
                       const char *pin_source, phc_errbuf *err)
{
    data_ref r;
    phc_p11 *p = NULL;
    CK_OBJECT_HANDLE *objs = NULL;
    size_t n = 0;
    unsigned char *best = NULL, *v = NULL;
    size_t best_len = 0, vlen = 0;
    char name[200];
    *out = NULL;
    *out_len = 0;
    int rc = data_ref_get(&r, uri, err);
    if (rc)
        return rc;
    phc__key_name(name, sizeof(name), "label ", r.label, r.id, r.id_len, r.has_id);
    if ((rc = phc__p11_open(&p, module, uri, pin_source, NULL, err)) ||
        (rc = data_find(p, &r, &objs, &n, err)) || (rc = keep_private(p, objs, &n, name, err)))
        goto out;
    if (n == 0) {
        rc = phc__err(err, PHC_ERR_HSM, "no data object with %s on token '%s'", name, p->label);
        goto out;
    }
    /* Copies left by an interrupted replacement are marked; the unmarked one is current. Any
     * other disagreement cannot be resolved without guessing. */
    int any_current = 0;
    for (size_t i = 0; i < n; i++)
        any_current |= !is_replaced(p, objs[i]);
    for (size_t i = 0; i < n; i++) {
        if (any_current && is_replaced(p, objs[i]))
            continue;
        rc = attr_get(p, objs[i], CKA_VALUE, 1, &v, &vlen, err);
        if (rc == 1)
            rc = phc__err(err, PHC_ERR_HSM, "token '%s' does not reveal data object %s", p->label,
                          name);
        if (rc)
            goto out;
        if (!best) {
            best = v;
            best_len = vlen;
            v = NULL;
            continue;
        }
        int same = vlen == best_len && CRYPTO_memcmp(v, best, vlen) == 0;
        free_value(v, vlen);
        v = NULL;
        if (!same) {
            rc = phc__err(err, PHC_ERR_HSM,
                          "token '%s' holds %zu data objects with %s and different values: "
                          "store the value again (phc secret store) or delete all but one",
                          p->label, n, name);
            goto out;
        }
    }
    if (best_len == 0 || best_len > DATA_MAX || memchr(best, '\0', best_len)) {
        rc = phc__err(err, PHC_ERR_HSM, "data object %s on token '%s' is %s", name, p->label,
                      best_len == 0         ? "empty"
                      : best_len > DATA_MAX ? "larger than 4096 bytes"
                                            : "not text (it contains a NUL byte)");
        goto out;
    }
    *out = (char *)best;
    *out_len = best_len;
    best = NULL;
out:
    free_value(best, best_len);
    OPENSSL_free(objs);
    phc__p11_close(p);
    data_ref_free(&r);
    return rc;
}

int phc__p11_write_data(const char *module, const char *uri, const char *pin_source,
                        const void *value, size_t len, phc_errbuf *err)
{
    data_ref r;
    phc_p11 *p = NULL;
    CK_OBJECT_HANDLE *old = NULL;
    size_t nold = 0;
    char name[200];
    int rc = data_ref_get(&r, uri, err);
    if (rc)
        return rc;
    phc__key_name(name, sizeof(name), "label ", r.label, r.id, r.id_len, r.has_id);
    if (!r.label) {
        rc = phc__err(err, PHC_ERR_CONFIG,
                      "data object URI needs object= to name the object it creates");
        goto out;
    }
    if (!value || len == 0 || len > DATA_MAX || memchr(value, '\0', len)) {
        rc = phc__err(err, PHC_ERR_CONFIG,
                      "the value for data object %s must be 1 to %d bytes "
                      "of text without NUL bytes",
                      name, DATA_MAX);
        goto out;
    }
    if ((rc = phc__p11_open(&p, module, uri, pin_source, NULL, err)) ||
        (rc = data_find(p, &r, &old, &nold, err)))
        goto out;
    /* Mark the old copies first: if we die between creating the new object and deleting the
     * old ones, readers still know which value is current. A token that refuses the mark
     * (CKA_MODIFIABLE false) only loses that tie-break. */
    for (size_t i = 0; i < nold; i++) {
        CK_ATTRIBUTE mark = {CKA_APPLICATION, (void *)APP_REPLACED, strlen(APP_REPLACED)};
        p->fn->C_SetAttributeValue(p->session, old[i], &mark, 1);
    }
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[8];
    CK_ULONG nt = 0;
    t[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    t[nt++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    t[nt++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
    t[nt++] = (CK_ATTRIBUTE){CKA_MODIFIABLE, &yes, sizeof(yes)};
    t[nt++] = (CK_ATTRIBUTE){CKA_LABEL, r.label, strlen(r.label)};
    t[nt++] = (CK_ATTRIBUTE){CKA_APPLICATION, (void *)APP, strlen(APP)};
    t[nt++] = (CK_ATTRIBUTE){CKA_VALUE, (void *)value, len};
    if (r.has_id)
        t[nt++] = (CK_ATTRIBUTE){CKA_ID, r.id, r.id_len};
    char what[240];
    snprintf(what, sizeof(what), "data object %s", name);
    CK_OBJECT_HANDLE created;
    CK_RV rv = p->fn->C_CreateObject(p->session, t, nt, &created);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID && r.has_id) {
        /* PKCS#11 defines no CKA_ID for data objects; SoftHSM, for one, refuses it. */
        rc = phc__err(err, PHC_ERR_CONFIG,
                      "token '%s' keeps no id on data objects: name %s with object= alone",
                      p->label, what);
        goto out;
    }
    if (rv != CKR_OK) {
        rc = p11_fail(err, p->label, rv, "storing %s", what);
        goto out;
    }
    for (size_t i = 0; i < nold; i++)
        if ((rc = phc__p11_destroy(p, old[i], what, err)))
            goto out;
out:
    OPENSSL_free(old);
    phc__p11_close(p);
    data_ref_free(&r);
    return rc;
}
