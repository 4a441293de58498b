/* The install-order record (install_order.h): its text form, and reading and replacing it
 * through a raw PKCS#11 session, shared by the connector's certificate reader (certobj.c)
 * and the token administration (p11_data.c). */
#include "install_order.h"

#include "p11_attr.h"
#include "p11_watch.h"
#include "util_hex.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER "phconnect install order 1 gen "
#define MAX_RECORDS 16 /* more copies than a stopped writer leaves: the rest are not looked at */
#define VALUE_MAX (64 + PHC_ORDER_MAX * 65)

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int phc__order_parse(phc_order *o, const unsigned char *v, size_t len)
{
    size_t hl = strlen(HEADER), i = hl;
    memset(o, 0, sizeof(*o));
    o->state = PHC_ORDER_NONE;
    if (!v || len < hl + 2 || len > VALUE_MAX || memcmp(v, HEADER, hl) != 0)
        return -1;
    unsigned long gen = 0;
    size_t digits = 0;
    for (; i < len && v[i] >= '0' && v[i] <= '9' && digits < 18; i++, digits++)
        gen = gen * 10 + (unsigned long)(v[i] - '0');
    if (!digits || i >= len || v[i++] != '\n')
        return -1;
    while (i < len) {
        if (o->n == PHC_ORDER_MAX || len - i < 65 || v[i + 64] != '\n')
            return -1;
        for (size_t b = 0; b < 32; b++) {
            int hi = hexval(v[i + 2 * b]), lo = hexval(v[i + 2 * b + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            o->fp[o->n][b] = (unsigned char)(hi << 4 | lo);
        }
        o->n++;
        i += 65;
    }
    o->gen = gen;
    o->state = PHC_ORDER_RECORDED;
    return 0;
}

size_t phc__order_format(const phc_order *o, char *out, size_t cap)
{
    int w = snprintf(out, cap, HEADER "%lu\n", o->gen);
    if (w < 0 || (size_t)w >= cap)
        return 0;
    size_t len = (size_t)w;
    for (size_t i = 0; i < o->n && i < PHC_ORDER_MAX; i++) {
        if (cap - len < 66)
            return 0;
        phc__hex(out + len, 65, o->fp[i], 32);
        out[len + 64] = '\n';
        len += 65;
        out[len] = '\0';
    }
    return len;
}

long phc__order_seq(const phc_order *o, const unsigned char fp[32])
{
    if (!o || o->state != PHC_ORDER_RECORDED)
        return -1;
    for (size_t i = o->n; i-- > 0;)
        if (memcmp(o->fp[i], fp, 32) == 0)
            return (long)i;
    return -1;
}

long phc__order_seq_of(const phc_order *o, X509 *x)
{
    unsigned char md[32];
    unsigned int n = sizeof(md);
    if (!o || o->state != PHC_ORDER_RECORDED || !x || !X509_digest(x, EVP_sha256(), md, &n))
        return -1;
    return phc__order_seq(o, md);
}

void phc__order_append(phc_order *o, const unsigned char fp[32])
{
    size_t k = 0;
    for (size_t i = 0; i < o->n; i++)
        if (memcmp(o->fp[i], fp, 32) != 0)
            memmove(o->fp[k++], o->fp[i], 32);
    o->n = k;
    if (o->n == PHC_ORDER_MAX) {
        memmove(o->fp[0], o->fp[1], (PHC_ORDER_MAX - 1) * 32);
        o->n--;
    }
    memcpy(o->fp[o->n++], fp, 32);
    o->state = PHC_ORDER_RECORDED;
}

/* ------------------------------------------------------------------------------------ */
/* On the token */

static int logged_in(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO si;
    return PHC_P11_CALL(f, C_GetSessionInfo, s, &si) == CKR_OK &&
           (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS);
}

static int find_records(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h, CK_ULONG *n,
                        CK_RV *rv, const char **step)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_LABEL, (void *)PHC_ORDER_LABEL, strlen(PHC_ORDER_LABEL)}};
    *n = 0;
    *step = "listing the install-order record";
    if ((*rv = PHC_P11_CALL(f, C_FindObjectsInit, s, t, 2)) != CKR_OK)
        return -1;
    *rv = PHC_P11_CALL(f, C_FindObjects, s, h, MAX_RECORDS, n);
    PHC_P11_CALL(f, C_FindObjectsFinal, s);
    return *rv == CKR_OK ? 0 : -1;
}

/* One record object: 0 and *o filled when it is ours (private, application "phconnect") and
 * parses; 2 when it is ours but does not parse; 1 when it is not ours (public, another
 * application's) or gone meanwhile (*gone set); -1 on another failure. */
static int read_one(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, phc_order *o,
                    unsigned char **val, size_t *vlen, int *gone, CK_RV *rv, const char **step)
{
    unsigned char *priv = NULL, *app = NULL;
    size_t plen = 0, alen = 0;
    int r;
    *val = NULL;
    *vlen = 0;
    *step = "reading the install-order record";
    if (phc__p11_attr_read(f, s, h, CKA_PRIVATE, 0, &priv, &plen, rv) < 0 ||
        phc__p11_attr_read(f, s, h, CKA_APPLICATION, 0, &app, &alen, rv) < 0 ||
        phc__p11_attr_read(f, s, h, CKA_VALUE, 0, val, vlen, rv) < 0) {
        r = *rv == CKR_OBJECT_HANDLE_INVALID ? 1 : -1;
        *gone |= r == 1;
        goto out;
    }
    r = 1;
    if (priv && plen == sizeof(CK_BBOOL) && *(CK_BBOOL *)priv == CK_TRUE && app &&
        alen == strlen(PHC_ORDER_APP) && memcmp(app, PHC_ORDER_APP, alen) == 0)
        r = phc__order_parse(o, *val, *vlen) == 0 ? 0 : 2;
out:
    OPENSSL_free(priv);
    OPENSSL_free(app);
    if (r != 0) {
        OPENSSL_free(*val);
        *val = NULL;
        *vlen = 0;
    }
    return r;
}

/* Is the candidate (c, cv) the one to keep over the best so far (b, bv)? */
static int better(const phc_order *c, const unsigned char *cv, size_t cl, const phc_order *b,
                  const unsigned char *bv, size_t bl)
{
    if (c->gen != b->gen)
        return c->gen > b->gen;
    if (cl != bl)
        return cl > bl;
    return memcmp(cv, bv, cl) > 0;
}

/* The newest of our records into o (state _NONE when there is none); *maxgen the highest
 * generation seen, handles of all our records (and unparseable ones) in old/nold. */
static int read_all(phc_order *o, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, unsigned long *maxgen,
                    CK_OBJECT_HANDLE *old, CK_ULONG *nold, CK_RV *rv, const char **step)
{
    CK_OBJECT_HANDLE h[MAX_RECORDS];
    unsigned char *best = NULL;
    size_t blen = 0;
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        CK_ULONG n = 0;
        int gone = 0;
        memset(o, 0, sizeof(*o));
        o->state = PHC_ORDER_NONE;
        *maxgen = 0;
        if (nold)
            *nold = 0;
        if ((rc = find_records(f, s, h, &n, rv, step)))
            break;
        for (CK_ULONG i = 0; i < n && !rc; i++) {
            phc_order c;
            unsigned char *v = NULL;
            size_t vl = 0;
            int r = read_one(f, s, h[i], &c, &v, &vl, &gone, rv, step);
            if (r < 0) {
                rc = -1;
                break;
            }
            if (r == 0 && c.gen > *maxgen)
                *maxgen = c.gen;
            /* Ours to replace: every private record, parseable or not (a public one is
             * somebody else's to delete). */
            if (nold && (r == 0 || r == 2))
                old[(*nold)++] = h[i];
            if (r == 0 && (!best || better(&c, v, vl, o, best, blen))) {
                OPENSSL_free(best);
                best = v;
                blen = vl;
                *o = c;
                v = NULL;
            }
            OPENSSL_free(v);
        }
        /* A record replaced between the search and the read: search once more. */
        if (rc || !gone)
            break;
    }
    OPENSSL_free(best);
    return rc;
}

int phc__order_read(phc_order *o, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_RV *rv,
                    const char **step)
{
    unsigned long maxgen = 0;
    *rv = CKR_OK;
    *step = "";
    memset(o, 0, sizeof(*o));
    if (!logged_in(f, s)) {
        o->state = PHC_ORDER_UNREADABLE;
        return 0;
    }
    if (read_all(o, f, s, &maxgen, NULL, NULL, rv, step)) {
        memset(o, 0, sizeof(*o));
        o->state = PHC_ORDER_UNREADABLE;
        return -1;
    }
    return 0;
}

int phc__order_add(const unsigned char fp[32], CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_RV *rv,
                   const char **step)
{
    CK_OBJECT_HANDLE old[MAX_RECORDS];
    CK_ULONG nold = 0;
    unsigned long maxgen = 0;
    phc_order o;
    char value[VALUE_MAX + 1];
    *rv = CKR_OK;
    if (read_all(&o, f, s, &maxgen, old, &nold, rv, step))
        return -1;
    phc__order_append(&o, fp);
    o.gen = maxgen + 1;
    size_t len = phc__order_format(&o, value, sizeof(value));
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)PHC_ORDER_LABEL, strlen(PHC_ORDER_LABEL)},
        {CKA_APPLICATION, (void *)PHC_ORDER_APP, strlen(PHC_ORDER_APP)},
        {CKA_VALUE, value, (CK_ULONG)len},
    };
    CK_OBJECT_HANDLE created;
    *step = "storing the install-order record";
    if (!len) {
        *rv = CKR_HOST_MEMORY;
        return -1;
    }
    if ((*rv = PHC_P11_CALL(f, C_CreateObject, s, t, sizeof(t) / sizeof(t[0]), &created)) != CKR_OK)
        return -1;
    *step = "deleting the previous install-order record";
    for (CK_ULONG i = 0; i < nold; i++) {
        CK_RV r = PHC_P11_CALL(f, C_DestroyObject, s, old[i]);
        if (r != CKR_OK && r != CKR_OBJECT_HANDLE_INVALID) {
            *rv = r;
            return -1;
        }
    }
    return 0;
}
