/* Direct PKCS#11 access, data objects: the client secret kept as a private CKO_DATA object,
 * read (phc__p11_read_data) and replaced create-new-then-delete-old (phc__p11_write_data),
 * and the install-order record (install_order.h) through an administration handle. */
#include "p11.h"
#include "p11_int.h"

#include "err.h"
#include "names.h"

#include <openssl/crypto.h>

#include <string.h>

/* Longest data object value accepted (the client secret; same bound as secret.c). */
#define DATA_MAX 4096
/* CKA_APPLICATION of a data object being replaced (see write_data). */
#define APP "phconnect"
#define APP_REPLACED "phconnect-replaced"

/* The object a data URI names: label and/or id, class data (or unset). */
typedef phc_p11_uri data_ref;

static void data_ref_free(data_ref *r)
{
    phc__p11_uri_clear(r);
}

static int data_ref_get(data_ref *r, const char *uri, phc_errbuf *err)
{
    return phc__p11_uri_get(r, uri, CKO_DATA, err);
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
    int r = phc__p11_attr_get(p, h, CKA_APPLICATION, 0, &app, &len, NULL) == 0 &&
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
                        "delete it and store the secret again",
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
        rc = phc__p11_attr_get(p, objs[i], CKA_VALUE, 1, &v, &vlen, err);
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
                          "delete all but one, or store the value again",
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
        PHC_P11_CALL(p->fn, C_SetAttributeValue, p->session, old[i], &mark, 1);
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
    CK_RV rv = PHC_P11_CALL(p->fn, C_CreateObject, p->session, t, nt, &created);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID && r.has_id) {
        /* PKCS#11 defines no CKA_ID for data objects; SoftHSM, for one, refuses it. */
        rc = phc__err(err, PHC_ERR_CONFIG,
                      "token '%s' keeps no id on data objects: name %s with object= alone",
                      p->label, what);
        goto out;
    }
    if (rv != CKR_OK) {
        rc = phc__p11_fail(err, p->label, rv, "storing %s", what);
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

int phc__p11_order_read(phc_p11 *p, phc_order *o, phc_errbuf *err)
{
    CK_RV rv;
    const char *step = "";
    if (phc__order_read(o, p->fn, p->session, &rv, &step))
        return phc__p11_fail(err, p->label, rv, "%s", step);
    return 0;
}

int phc__p11_order_add(phc_p11 *p, const unsigned char fp[32], CK_RV *rv, phc_errbuf *err)
{
    const char *step = "";
    if (phc__order_add(fp, p->fn, p->session, rv, &step))
        return phc__p11_fail(err, p->label, *rv, "%s", step);
    return 0;
}
