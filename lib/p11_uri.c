#include "p11_uri.h"

#include <openssl/crypto.h>
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
