#include "certobj.h"

#include "err.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CERTS 256

/* One attribute's value, allocated (NUL-terminated for convenience). */
static unsigned char *attr(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                           CK_ATTRIBUTE_TYPE type, size_t *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    if (f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK || a.ulValueLen == (CK_ULONG)-1)
        return NULL;
    unsigned char *v = calloc(1, a.ulValueLen + 1);
    if (!v)
        return NULL;
    a.pValue = v;
    if (f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK) {
        free(v);
        return NULL;
    }
    *len = a.ulValueLen;
    return v;
}

int phc__certobj_list(phc_certobj **out, size_t *n, CK_FUNCTION_LIST *f, unsigned long slot_id,
                      const char *token, phc_errbuf *err)
{
    *out = NULL;
    *n = 0;
    CK_SESSION_HANDLE s;
    CK_RV rv = f->C_OpenSession(slot_id, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK)
        return phc__err(err, PHC_ERR_HSM,
                        "cannot open a session on token '%s' to list its certificates "
                        "(CK_RV 0x%lx)",
                        token, (unsigned long)rv);
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE handles[MAX_CERTS];
    CK_ULONG count = 0;
    int rc = PHC_OK;
    if ((rv = f->C_FindObjectsInit(s, tmpl, 1)) == CKR_OK) {
        rv = f->C_FindObjects(s, handles, MAX_CERTS, &count);
        f->C_FindObjectsFinal(s);
    }
    if (rv != CKR_OK) {
        rc = phc__err(err, PHC_ERR_HSM, "cannot list the certificates on token '%s' (CK_RV 0x%lx)",
                      token, (unsigned long)rv);
        goto out;
    }
    phc_certobj *objs = calloc(count ? count : 1, sizeof(*objs));
    if (!objs) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (CK_ULONG i = 0; i < count; i++) {
        size_t vlen = 0, llen = 0;
        phc_certobj *c = &objs[k];
        unsigned char *value = attr(f, s, handles[i], CKA_VALUE, &vlen);
        c->id = attr(f, s, handles[i], CKA_ID, &c->id_len);
        c->label = (char *)attr(f, s, handles[i], CKA_LABEL, &llen);
        if (!c->label)
            c->label = calloc(1, 1);
        if (value) {
            const unsigned char *p = value;
            c->x509 = d2i_X509(NULL, &p, (long)vlen);
        }
        free(value);
        /* An object gone between the search and the read is simply not listed. */
        if (!c->x509 && !c->id) {
            free(c->label);
            memset(c, 0, sizeof(*c));
            continue;
        }
        k++;
    }
    *out = objs;
    *n = k;
    ERR_clear_error(); /* d2i's complaints about a half-written value */
out:
    f->C_CloseSession(s);
    return rc;
}

void phc__certobj_free(phc_certobj *objs, size_t n)
{
    for (size_t i = 0; objs && i < n; i++) {
        free(objs[i].id);
        free(objs[i].label);
        X509_free(objs[i].x509);
    }
    free(objs);
}
