#include "certobj.h"

#include "err.h"
#include "install_order.h"
#include "p11_attr.h"
#include "p11_rv.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CERTS 256

/* One attribute's value (p11_attr.c), NULL when unreadable: an object being written by
 * another process is skipped, not an error. */
static unsigned char *attr(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                           CK_ATTRIBUTE_TYPE type, size_t *len)
{
    unsigned char *v = NULL;
    CK_RV rv;
    if (phc__p11_attr_read(f, s, o, type, 0, &v, len, &rv) != 0)
        return NULL;
    return v;
}

int phc__certobj_list(phc_certobj **out, size_t *n, CK_FUNCTION_LIST *f, unsigned long slot_id,
                      const char *token, phc_errbuf *err)
{
    *out = NULL;
    *n = 0;
    CK_SESSION_HANDLE s;
    char name[40];
    CK_RV rv = f->C_OpenSession(slot_id, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK)
        return phc__err(err, PHC_ERR_HSM,
                        "cannot open a session on token '%s' to list its certificates (%s)", token,
                        phc__p11_rv_str(name, sizeof(name), rv));
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
        rc = phc__err(err, PHC_ERR_HSM, "cannot list the certificates on token '%s' (%s)", token,
                      phc__p11_rv_str(name, sizeof(name), rv));
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
            c->label = OPENSSL_zalloc(1);
        if (value) {
            const unsigned char *p = value;
            c->x509 = d2i_X509(NULL, &p, (long)vlen);
        }
        OPENSSL_free(value);
        /* An object gone between the search and the read is simply not listed. */
        if (!c->x509 && !c->id) {
            OPENSSL_free(c->label);
            memset(c, 0, sizeof(*c));
            continue;
        }
        k++;
    }
    /* The record after the certificates: install stores it before the certificate, so a
     * certificate seen here is in the record seen here. A record that cannot be read now
     * (SoftHSM rewriting it for another process) ranks nothing: only a tie on the very same
     * dates is then left to the fixed order, until the next reload, rather than a client
     * failing to start over the tie-break. */
    phc_order order;
    const char *step = "";
    if (phc__order_read(&order, f, s, &rv, &step))
        order.state = PHC_ORDER_UNREADABLE;
    for (size_t i = 0; i < k; i++)
        objs[i].seq = phc__order_seq_of(&order, objs[i].x509);
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
        OPENSSL_free(objs[i].id);
        OPENSSL_free(objs[i].label);
        X509_free(objs[i].x509);
    }
    free(objs);
}
