/* Direct PKCS#11 access, the core: the CK_RV wording, opening a token (URI, token selection,
 * session, login) and object search, attributes, creation and deletion. Keys are in
 * p11_keys.c, data objects in p11_data.c (see p11.h for the contract). The module comes from
 * the one module layer (p11_module.c), shared with libp11: the same initialised function
 * list, finalised when its last user is gone. */
#include "p11.h"
#include "p11_int.h"
#include "p11_module.h"
#include "p11_attr.h"
#include "p11_login.h"
#include "p11_rv.h"
#include "p11_uri.h"

#include "err.h"
#include "log.h"
#include "secret.h"

#include <p11-kit/uri.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* CK_RV: the one translation into phc_err */

/* "<what> on token 'T' failed (CKR_X)" as PHC_ERR_HSM, or the PIN / token-gone wording for
 * the CK_RVs an operator acts on differently. token may be "" (before one is chosen). */
/* This thread's last failure translated here, for the administration's retry (token.c). */
static __thread CK_RV t_fail_rv;
static __thread char t_fail_what[128];

static __thread int t_fail_odd;

void phc__p11_last_fail_clear(void)
{
    t_fail_rv = CKR_OK;
    t_fail_odd = 0;
    t_fail_what[0] = '\0';
}

CK_RV phc__p11_last_fail(const char **what, int *odd)
{
    if (what)
        *what = t_fail_what;
    if (odd)
        *odd = t_fail_odd;
    return t_fail_rv;
}

void phc__p11_fail_odd(const char *what)
{
    t_fail_odd = 1;
    snprintf(t_fail_what, sizeof(t_fail_what), "%s", what);
}

int phc__p11_fail(phc_errbuf *err, const char *token, CK_RV rv, const char *fmt, ...)
{
    char what[256], name[40];
    phc__p11_rv_str(name, sizeof(name), rv);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    t_fail_rv = rv;
    snprintf(t_fail_what, sizeof(t_fail_what), "%.127s", what);
    switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_USER_PIN_NOT_INITIALIZED:
    case CKR_PIN_LOCKED:
        return phc__p11_login_refused(token, rv, NULL, NULL, err); /* one wording */
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

/* ------------------------------------------------------------------------------------ */
/* URI and token */

/* Parses uri with the one parser (p11_uri.c) and words its refusals. want: CKO_DATA for a
 * data object URI, PHC_P11_NO_OBJECT when only its token is used. The URI itself is never
 * quoted: a mistyped one may carry a PIN. */
int phc__p11_uri_get(phc_p11_uri *out, const char *uri, CK_OBJECT_CLASS want, phc_errbuf *err)
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

/* Records a transient answer of this attempt for phc__p11_retry_again (p11_module.h). */
static void transient(phc_p11_retry *r, CK_RV rv, const char *call)
{
    char name[40];
    if (rv == CKR_OK)
        snprintf(r->cause, sizeof(r->cause), "not among the initialised tokens");
    else
        snprintf(r->cause, sizeof(r->cause), "%s at %s", phc__p11_rv_str(name, sizeof(name), rv),
                 call);
}

static int select_token(phc_p11 *p, P11KitUri *u, const char *module, phc_p11_retry *r,
                        phc_errbuf *err)
{
    CK_FUNCTION_LIST *fn = p->fn;
    CK_ULONG n = 0;
    CK_SLOT_ID *slots = NULL;
    char want[256], present[256] = "";
    unsigned int ntokens = 0, nmatch = 0;
    CK_RV info_rv = CKR_OK;
    int rc = 0;
    phc__p11_uri_token_label(u, r->token, sizeof(r->token));
    phc__p11_watch_token(r->token); /* a hang names the token asked for */
    CK_RV rv = PHC_P11_CALL(fn, C_GetSlotList, CK_TRUE, NULL, &n);
    if (rv == CKR_OK && n > 0) {
        if (!(slots = OPENSSL_malloc(n * sizeof(*slots))))
            return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        rv = PHC_P11_CALL(fn, C_GetSlotList, CK_TRUE, slots, &n);
    }
    if (rv != CKR_OK) {
        if (rv == CKR_GENERAL_ERROR)
            transient(r, rv, "C_GetSlotList");
        rc = phc__p11_fail(err, "", rv, "listing the slots of PKCS#11 module '%s'", module);
        goto out;
    }
    phc__p11_uri_token_wanted(u, want, sizeof(want));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK_SLOT_INFO si;
        CK_RV trv = PHC_P11_CALL(fn, C_GetTokenInfo, slots[i], &ti);
        if (trv == CKR_GENERAL_ERROR)
            info_rv = trv; /* SoftHSM reading a token file being rewritten */
        if (trv != CKR_OK || PHC_P11_CALL(fn, C_GetSlotInfo, slots[i], &si) != CKR_OK ||
            !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue; /* e.g. SoftHSM's spare uninitialised slot */
        char label[33], serial[17], manuf[33], model[17], sdesc[65], smanuf[33];
        phc__p11_trim(label, sizeof(label), ti.label, sizeof(ti.label));
        phc__p11_trim(serial, sizeof(serial), ti.serialNumber, sizeof(ti.serialNumber));
        phc__p11_trim(manuf, sizeof(manuf), ti.manufacturerID, sizeof(ti.manufacturerID));
        phc__p11_trim(model, sizeof(model), ti.model, sizeof(ti.model));
        phc__p11_trim(sdesc, sizeof(sdesc), si.slotDescription, sizeof(si.slotDescription));
        phc__p11_trim(smanuf, sizeof(smanuf), si.manufacturerID, sizeof(si.manufacturerID));
        phc_p11_token_id id = {label, serial, manuf, model, sdesc, smanuf, slots[i]};
        size_t o = strlen(present);
        snprintf(present + o, sizeof(present) - o, "%s'%s'", o ? ", " : "", label);
        ntokens++;
        if (!phc__p11_uri_token_matches(u, &id)) /* the one rule, as hsm.c's (p11_uri.c) */
            continue;
        if (nmatch++ == 0) {
            p->slot = slots[i];
            snprintf(p->label, sizeof(p->label), "%s", label);
            snprintf(p->serial, sizeof(p->serial), "%s", serial);
            if (ti.flags & CKF_USER_PIN_INITIALIZED)
                r->pin_initialised = 1;
        }
    }
    if (!ntokens)
        snprintf(present, sizeof(present), "none");
    /* The token asked for is missing: transient when a token answered CKR_GENERAL_ERROR or
     * the URI names its label (one expected, so SoftHSM may be mid-write). */
    if (!nmatch && (info_rv != CKR_OK || r->token[0]))
        transient(r, info_rv, "C_GetTokenInfo");
    rc = phc__p11_token_verdict(err, module, "URI", ntokens, nmatch, want, present);
out:
    OPENSSL_free(slots);
    return rc;
}

static int login(phc_p11 *p, const char *pin_source, phc_p11_retry *r, phc_errbuf *err)
{
    CK_TOKEN_INFO ti;
    CK_SESSION_INFO si;
    CK_RV rv = PHC_P11_CALL(p->fn, C_GetTokenInfo, p->slot, &ti);
    if (rv != CKR_OK) {
        if (rv == CKR_GENERAL_ERROR)
            transient(r, rv, "C_GetTokenInfo");
        return phc__p11_fail(err, p->label, rv, "reading the token information");
    }
    if (ti.flags & CKF_USER_PIN_INITIALIZED)
        r->pin_initialised = 1;
    if (!(ti.flags & CKF_LOGIN_REQUIRED))
        return 0;
    /* The source is read even when this process is logged in already, so that a missing PIN
     * file is reported the same way every time. */
    char *pin = NULL;
    size_t pin_len = 0;
    int rc = phc__secret_read(&pin, &pin_len, pin_source, "PIN", PHC_ERR_PIN, err);
    if (rc)
        return rc;
    rv = PHC_P11_CALL(p->fn, C_GetSessionInfo, p->session, &si);
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
    rv = PHC_P11_CALL(p->fn, C_Login, p->session, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)pin_len);
    phc__secret_free(pin, pin_len);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        /* SoftHSM answers these before it looks at the PIN, while its token file is being
         * rewritten: not a PIN refusal (p11_module.h). */
        if (rv == CKR_GENERAL_ERROR || (rv == CKR_USER_PIN_NOT_INITIALIZED && r->pin_initialised)) {
            char name[40];
            transient(r, rv, "C_Login");
            return phc__err(err, PHC_ERR_HSM, "login to token '%s' failed (%s)", p->label,
                            phc__p11_rv_str(name, sizeof(name), rv));
        }
        return phc__p11_login_refused(p->label, rv, md, NULL, err);
    }
    phc__log(p->log, PHC_LOG_INFO, "logged in to token '%s'", p->label);
    return 0;
}

/* One attempt at the slot, the session and the login; r->cause set when it failed in a way
 * worth another attempt. */
static int open_once(phc_p11 *p, P11KitUri *u, const char *module, const char *pin_source,
                     phc_p11_retry *r, phc_errbuf *err)
{
    int rc;
    if ((rc = select_token(p, u, module, r, err)))
        return rc;
    snprintf(r->token, sizeof(r->token), "%s", p->label);
    phc__p11_watch_token(p->label);
    CK_RV rv = PHC_P11_CALL(p->fn, C_OpenSession, p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                            NULL, NULL, &p->session);
    if (rv != CKR_OK) {
        if (rv == CKR_GENERAL_ERROR)
            transient(r, rv, "C_OpenSession");
        return phc__p11_fail(err, p->label, rv, "opening a session");
    }
    p->has_session = 1;
    /* The administration path is the one an operator debugs with -vv: say which token and
     * slot it works on before the login (the first step that can cost a PIN try). */
    phc__log(p->log, PHC_LOG_DEBUG, "token '%s' (slot %lu) opened for administration with %s",
             p->label, (unsigned long)p->slot, module);
    return login(p, pin_source, r, err);
}

/* The open's attempts (p11_module.h): slot, session and login until one succeeds or the
 * failure is not transient or the attempts are used up. */
static int attach(phc_p11 *p, P11KitUri *u, const char *module, const char *pin_source,
                  phc_errbuf *err)
{
    int rc;
    phc_p11_retry r;
    phc__p11_retry_init(&r);
    while ((rc = open_once(p, u, module, pin_source, &r, err))) {
        if (!r.cause[0])
            return rc;
        if (p->has_session) /* the module may be re-initialised: nothing of ours stays open */
            PHC_P11_CALL(p->fn, C_CloseSession, p->session);
        p->has_session = 0;
        if (!phc__p11_retry_again(&r, p->mod, module, p->log)) {
            phc__p11_retry_final(&r, err);
            return rc;
        }
    }
    return 0;
}

int phc__p11_open(phc_p11 **out, const char *module, const char *uri, const char *pin_source,
                  const phc_log *log, phc_errbuf *err)
{
    phc_p11_uri u;
    phc_p11 *p = NULL;
    int rc;
    *out = NULL;
    if ((rc = phc__p11_uri_get(&u, uri, PHC_P11_NO_OBJECT, err)))
        return rc;
    if (!(p = OPENSSL_zalloc(sizeof(*p)))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    p->log = log;
    if ((rc = phc__p11_module_get(&p->mod, module, log, err)))
        goto out;
    p->fn = phc__p11_module_fn(p->mod);
    if ((rc = attach(p, u.kit, module, pin_source, err)))
        goto out;
    *out = p;
    p = NULL;
out:
    phc__p11_uri_clear(&u);
    phc__p11_close(p);
    return rc;
}

int phc__p11_reopen(phc_p11 *p, const char *module, const char *uri, const char *pin_source,
                    phc_errbuf *err)
{
    phc_p11_uri u;
    int rc;
    if ((rc = phc__p11_uri_get(&u, uri, PHC_P11_NO_OBJECT, err)))
        return rc;
    if (p->has_session)
        PHC_P11_CALL(p->fn, C_CloseSession, p->session);
    p->has_session = 0;
    /* The module stays loaded (unloading SoftHSM mid-process re-registers its exit handlers
     * after the application's); re-initialised when this handle is its only user. */
    if (phc__p11_module_reinit(p->mod, module, p->log))
        phc__log(p->log, PHC_LOG_DEBUG, "PKCS#11 module '%s' re-initialised", module);
    rc = attach(p, u.kit, module, pin_source, err);
    phc__p11_uri_clear(&u);
    return rc;
}

void phc__p11_close(phc_p11 *p)
{
    if (!p)
        return;
    if (p->has_session)
        PHC_P11_CALL(p->fn, C_CloseSession, p->session);
    phc__p11_store_report(p->log);
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
    CK_RV rv = PHC_P11_CALL(p->fn, C_FindObjectsInit, p->session, t, nt);
    if (rv != CKR_OK)
        return phc__p11_fail(err, p->label, rv, "listing the %s", class_word(cls));
    for (;;) {
        CK_OBJECT_HANDLE batch[32];
        CK_ULONG got = 0;
        rv = PHC_P11_CALL(p->fn, C_FindObjects, p->session, batch, 32, &got);
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
    PHC_P11_CALL(p->fn, C_FindObjectsFinal, p->session);
    if (rv != CKR_OK) {
        OPENSSL_free(list);
        return phc__p11_fail(err, p->label, rv, "listing the %s", class_word(cls));
    }
    *out = list;
    *n = cnt;
    return 0;
}

/* One attribute (p11_attr.c); secure: the value is a secret (secure heap, wiped on every
 * path). */
int phc__p11_attr_get(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, int secure,
                      unsigned char **val, size_t *len, phc_errbuf *err)
{
    CK_RV rv = CKR_OK;
    int r = phc__p11_attr_read(p->fn, p->session, h, type, secure, val, len, &rv);
    if (r >= 0)
        return r;
    if (rv == CKR_HOST_MEMORY)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    return phc__p11_fail(err, p->label, rv, "reading attribute 0x%lx of object %lu",
                         (unsigned long)type, (unsigned long)h);
}

int phc__p11_attr(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, unsigned char **val,
                  size_t *len, phc_errbuf *err)
{
    return phc__p11_attr_get(p, h, type, 0, val, len, err);
}

int phc__p11_attr_bool(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, int *out,
                       phc_errbuf *err)
{
    CK_BBOOL b = CK_FALSE;
    CK_ATTRIBUTE a = {type, &b, sizeof(b)};
    *out = -1;
    CK_RV rv = PHC_P11_CALL(p->fn, C_GetAttributeValue, p->session, h, &a, 1);
    if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
        (rv == CKR_OK && a.ulValueLen != sizeof(b)))
        return 0;
    if (rv != CKR_OK)
        return phc__p11_fail(err, p->label, rv, "reading attribute 0x%lx of object %lu",
                             (unsigned long)type, (unsigned long)h);
    *out = b == CK_TRUE;
    return 0;
}

int phc__p11_attr_ulong(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG *out,
                        phc_errbuf *err)
{
    CK_ULONG v = 0;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};
    CK_RV rv = PHC_P11_CALL(p->fn, C_GetAttributeValue, p->session, h, &a, 1);
    if (rv == CKR_OK && a.ulValueLen != sizeof(v))
        rv = CKR_ATTRIBUTE_TYPE_INVALID;
    if (rv != CKR_OK)
        return phc__p11_fail(err, p->label, rv, "reading attribute 0x%lx of object %lu",
                             (unsigned long)type, (unsigned long)h);
    *out = v;
    return 0;
}

int phc__p11_create(phc_p11 *p, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out,
                    const char *what, phc_errbuf *err)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = PHC_P11_CALL(p->fn, C_CreateObject, p->session, tmpl, n, &h);
    if (rv != CKR_OK)
        return phc__p11_fail(err, p->label, rv, "storing %s", what);
    if (out)
        *out = h;
    return 0;
}

int phc__p11_destroy(phc_p11 *p, CK_OBJECT_HANDLE h, const char *what, phc_errbuf *err)
{
    CK_RV rv = PHC_P11_CALL(p->fn, C_DestroyObject, p->session, h);
    if (rv != CKR_OK)
        return phc__p11_fail(err, p->label, rv, "deleting %s", what);
    return 0;
}
