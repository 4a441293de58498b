/* certobj unit: certificate objects read afresh from a real SoftHSM token, through the raw
 * function list: one written and read, replaced by another and read again (the new one, not a
 * cached copy), an unparsable value listed without a certificate, a token without any, and
 * the refusal for a slot that is not there. */
#include "certobj.h"
#include "p11.h"
#include "p11_int.h"
#include "testtoken.h"
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#define URI "pkcs11:token=phc-test"

/* A self-signed certificate for cn, DER in *der (OPENSSL_free). */
static int mk_der(const char *cn, long serial, unsigned char **der)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_sign(x, k, EVP_sha256());
    *der = NULL;
    int len = i2d_X509(x, der);
    X509_free(x);
    EVP_PKEY_free(k);
    return len;
}

static CK_OBJECT_HANDLE put(phc_p11 *p, const char *label, unsigned char id,
                            const unsigned char *val, size_t len)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_BBOOL yes = CK_TRUE;
    static const unsigned char subj[] = {0x30, 0x00}; /* an empty Name */
    CK_ATTRIBUTE a[] = {{CKA_SUBJECT, (void *)subj, sizeof(subj)},
                        {CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
                        {CKA_TOKEN, &yes, sizeof(yes)},
                        {CKA_LABEL, (void *)label, strlen(label)},
                        {CKA_ID, &id, 1},
                        {CKA_VALUE, (void *)val, len}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    phc_errbuf e = {0};
    int rc = phc__p11_create(p, a, 7, &h, "test certificate", &e);
    if (rc)
        fprintf(stderr, "create: %s\n", e.msg);
    CHECK(rc == 0);
    return h;
}

/* The CN of objs[i]'s certificate, "" when none. */
static const char *cn_of(const phc_certobj *o, char *buf, size_t len)
{
    buf[0] = '\0';
    if (o->x509)
        X509_NAME_get_text_by_NID(X509_get_subject_name(o->x509), NID_commonName, buf, (int)len);
    return buf;
}

static void test_list(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_p11 *p = NULL;
    phc_certobj *objs = NULL;
    size_t n = 99;
    char cn[64];
    if (tok_init(&t, "certs", "phc-test"))
        return;
    CHECK(phc__p11_open(&p, MODULE, URI, t.pin, NULL, &e) == 0);
    if (!p)
        return;
    /* None yet. */
    CHECK(phc__certobj_list(&objs, &n, p->fn, p->slot, "phc-test", &e) == 0 && n == 0);
    phc__certobj_free(objs, n);

    unsigned char *d1 = NULL, *d2 = NULL;
    int l1 = mk_der("first", 1, &d1), l2 = mk_der("second", 2, &d2);
    CK_OBJECT_HANDLE h = put(p, "client", 0x01, d1, (size_t)l1);
    CHECK(phc__certobj_list(&objs, &n, p->fn, p->slot, "phc-test", &e) == 0 && n == 1);
    if (n == 1) {
        CHECK(strcmp(objs[0].label, "client") == 0);
        CHECK(objs[0].id_len == 1 && objs[0].id && objs[0].id[0] == 0x01);
        CHECK(strcmp(cn_of(&objs[0], cn, sizeof(cn)), "first") == 0);
    }
    phc__certobj_free(objs, n);

    /* Replaced: the next listing sees the new value. */
    CHECK(phc__p11_destroy(p, h, "test certificate", &e) == 0);
    put(p, "client", 0x01, d2, (size_t)l2);
    CHECK(phc__certobj_list(&objs, &n, p->fn, p->slot, "phc-test", &e) == 0 && n == 1);
    if (n == 1)
        CHECK(strcmp(cn_of(&objs[0], cn, sizeof(cn)), "second") == 0);
    phc__certobj_free(objs, n);

    /* A value that does not parse (half written): listed by id, without a certificate; an
     * object without label gets "". */
    static const unsigned char junk[] = {0x30, 0x82, 0x01};
    put(p, "", 0x02, junk, sizeof(junk));
    CHECK(phc__certobj_list(&objs, &n, p->fn, p->slot, "phc-test", &e) == 0 && n == 2);
    int seen_junk = 0, seen_good = 0;
    for (size_t i = 0; i < n; i++) {
        if (objs[i].id_len == 1 && objs[i].id[0] == 0x02) {
            seen_junk = objs[i].x509 == NULL && objs[i].label && objs[i].label[0] == '\0';
        } else {
            seen_good = strcmp(cn_of(&objs[i], cn, sizeof(cn)), "second") == 0;
        }
    }
    CHECK(seen_junk && seen_good);
    phc__certobj_free(objs, n);
    CHECK(ERR_peek_error() == 0);

    /* A slot that is not there: refused, naming the token and the CK_RV. */
    objs = (phc_certobj *)&n;
    CHECK_ERR(phc__certobj_list(&objs, &n, p->fn, 0x7fff0000UL, "phc-test", &e), e, PHC_ERR_HSM,
              "cannot open a session on token 'phc-test' to list its certificates "
              "(CKR_SLOT_ID_INVALID)");
    CHECK(objs == NULL && n == 0);
    phc__certobj_free(NULL, 0);
    OPENSSL_free(d1);
    OPENSSL_free(d2);
    phc__p11_close(p);
}

int main(void)
{
    if (tt_begin("certobj") || !tt_have_softhsm())
        TEST_MAIN_END();
    test_list();
    tt_end();
    TEST_MAIN_END();
}
