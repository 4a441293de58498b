#include "p11_uri.h"

#include "err.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int phc__p11_uri_scheme(const char *v)
{
    if (!v)
        return 0;
    if (strncmp(v, "pkcs11:", 7) == 0)
        return 1;
    return strncasecmp(v, "pkcs11:", 7) == 0 ? -1 : 0;
}

const char *phc__p11_uri_class_word(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY:
        return "private";
    case CKO_PUBLIC_KEY:
        return "public";
    case CKO_CERTIFICATE:
        return "cert";
    case CKO_DATA:
        return "data";
    case CKO_SECRET_KEY:
        return "secret-key";
    default:
        return "other";
    }
}

void phc__p11_uri_clear(phc_p11_uri *u)
{
    if (!u)
        return;
    p11_kit_uri_free(u->kit);
    OPENSSL_free(u->label);
    OPENSSL_free(u->id);
    memset(u, 0, sizeof(*u));
}

/* Copies object= and id= out of p11-kit's attribute list. */
static int take_object(phc_p11_uri *u)
{
    CK_ATTRIBUTE *a = p11_kit_uri_get_attribute(u->kit, CKA_LABEL);
    if (a) {
        if (!(u->label = OPENSSL_zalloc(a->ulValueLen + 1)))
            return -1;
        memcpy(u->label, a->pValue, a->ulValueLen);
    }
    a = p11_kit_uri_get_attribute(u->kit, CKA_ID);
    if (a) {
        u->has_id = 1;
        u->id_len = a->ulValueLen;
        if (!(u->id = OPENSSL_malloc(a->ulValueLen ? a->ulValueLen : 1)))
            return -1;
        memcpy(u->id, a->pValue, a->ulValueLen);
    }
    a = p11_kit_uri_get_attribute(u->kit, CKA_CLASS);
    if (a && a->pValue && a->ulValueLen == sizeof(CK_OBJECT_CLASS)) {
        memcpy(&u->cls, a->pValue, sizeof(u->cls));
        u->has_cls = 1;
    }
    return 0;
}

phc_p11_uri_fault phc__p11_uri_parse(phc_p11_uri *out, const char *uri, CK_OBJECT_CLASS want,
                                     const char **detail)
{
    phc_p11_uri_fault f = PHC_P11_URI_OK;
    memset(out, 0, sizeof(*out));
    if (detail)
        *detail = NULL;
    int scheme = phc__p11_uri_scheme(uri);
    if (scheme == 0) {
        if (detail)
            *detail = p11_kit_uri_message(P11_KIT_URI_BAD_SCHEME);
        return PHC_P11_URI_NOT_URI;
    }
    if (scheme < 0)
        return PHC_P11_URI_CASE;
    if (!(out->kit = p11_kit_uri_new()))
        return PHC_P11_URI_NOMEM;
    int r = p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, out->kit);
    if (r != P11_KIT_URI_OK) {
        if (detail)
            *detail = p11_kit_uri_message(r);
        f = PHC_P11_URI_MALFORMED;
    } else if (p11_kit_uri_get_pin_value(out->kit) || p11_kit_uri_get_pin_source(out->kit)) {
        f = PHC_P11_URI_PIN;
    } else if (p11_kit_uri_any_unrecognized(out->kit)) {
        f = PHC_P11_URI_UNKNOWN;
    } else if (take_object(out)) {
        f = PHC_P11_URI_NOMEM;
    } else if (want != PHC_P11_NO_OBJECT && !out->label && !out->has_id) {
        f = PHC_P11_URI_NO_OBJECT;
    } else if (want != PHC_P11_NO_OBJECT && want != PHC_P11_ANY_OBJECT && out->has_cls &&
               out->cls != want) {
        f = PHC_P11_URI_WRONG_CLASS;
    }
    if (f != PHC_P11_URI_OK) {
        CK_OBJECT_CLASS cls = out->cls; /* kept for the caller's message */
        int has_cls = out->has_cls;
        phc__p11_uri_clear(out);
        out->cls = cls;
        out->has_cls = has_cls;
    }
    return f;
}

void phc__p11_trim(char *out, size_t outlen, const unsigned char *field, size_t n)
{
    while (n && (field[n - 1] == ' ' || field[n - 1] == '\0'))
        n--;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, field, n);
    out[n] = '\0';
}

/* The URI's token and slot string attributes, with the name each has in messages. */
struct field {
    const unsigned char *f;
    size_t n;
    const char *name;
};

static size_t fields(P11KitUri *u, struct field f[6])
{
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u);
    CK_SLOT_INFO *si = p11_kit_uri_get_slot_info(u);
    f[0] = (struct field){ti->label, sizeof(ti->label), "label"};
    f[1] = (struct field){ti->serialNumber, sizeof(ti->serialNumber), "serial"};
    f[2] = (struct field){ti->manufacturerID, sizeof(ti->manufacturerID), "manufacturer"};
    f[3] = (struct field){ti->model, sizeof(ti->model), "model"};
    f[4] = (struct field){si->slotDescription, sizeof(si->slotDescription), "slot-description"};
    f[5] = (struct field){si->manufacturerID, sizeof(si->manufacturerID), "slot-manufacturer"};
    return 6;
}

int phc__p11_uri_token_matches(P11KitUri *u, const phc_p11_token_id *t)
{
    struct field f[6];
    const char *have[6] = {t->label, t->serial,           t->manufacturer,
                           t->model, t->slot_description, t->slot_manufacturer};
    CK_SLOT_ID sid = p11_kit_uri_get_slot_id(u);
    if (sid != (CK_SLOT_ID)-1 && sid != t->slot_id)
        return 0;
    size_t n = fields(u, f);
    for (size_t i = 0; i < n; i++) {
        char want[80];
        if (f[i].f[0] == 0)
            continue; /* not named */
        phc__p11_trim(want, sizeof(want), f[i].f, f[i].n);
        if (strcmp(have[i] ? have[i] : "", want) != 0)
            return 0;
    }
    return 1;
}

void phc__p11_uri_token_wanted(P11KitUri *u, char *out, size_t len)
{
    struct field f[6];
    size_t n = fields(u, f);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char v[80];
        if (f[i].f[0] == 0)
            continue;
        phc__p11_trim(v, sizeof(v), f[i].f, f[i].n);
        size_t o = strlen(out);
        snprintf(out + o, len - o, "%s%s '%s'", o ? ", " : "", f[i].name, v);
    }
    CK_SLOT_ID sid = p11_kit_uri_get_slot_id(u);
    if (sid != (CK_SLOT_ID)-1) {
        size_t o = strlen(out);
        snprintf(out + o, len - o, "%sslot-id %lu", o ? ", " : "", (unsigned long)sid);
    }
}

void phc__p11_uri_token_label(P11KitUri *u, char *out, size_t len)
{
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u);
    phc__p11_trim(out, len, ti->label, sizeof(ti->label));
}

int phc__p11_token_verdict(phc_errbuf *err, const char *module, const char *uri_name,
                           unsigned int ntokens, unsigned int nmatch, const char *want,
                           const char *present)
{
    if (!ntokens)
        return phc__err(err, PHC_ERR_HSM,
                        "no token with %s in module '%s' (no initialised token present)",
                        want[0] ? want : "any label", module);
    if (!nmatch)
        return phc__err(err, PHC_ERR_HSM, "no token with %s in module '%s' (tokens present: %s)",
                        want[0] ? want : "the attributes given", module, present);
    if (nmatch > 1 && !want[0])
        return phc__err(err, PHC_ERR_HSM,
                        "module '%s' has %u tokens (%s) and the %s names none: add token= to it",
                        module, nmatch, present, uri_name);
    if (nmatch > 1)
        return phc__err(err, PHC_ERR_HSM,
                        "%u tokens match %s in module '%s' (tokens present: %s): add serial= to "
                        "the %s",
                        nmatch, want, module, present, uri_name);
    return PHC_OK;
}
