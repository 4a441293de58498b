/* p11_attr unit: the one attribute reader (length, then value) on real SoftHSM objects: a
 * value read whole (plain and from the secure heap), an empty value, a sensitive attribute,
 * an attribute the object does not have, an object handle that is gone. */
#include "p11.h"
#include "p11_attr.h"
#include "p11_int.h"
#include "testtoken.h"
#include "testutil.h"

#include <openssl/crypto.h>

#define URI "pkcs11:token=phc-test"

static void test_read(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_p11 *p = NULL;
    if (tok_init(&t, "attr", "phc-test"))
        return;
    CHECK(phc__p11_open(&p, MODULE, URI, t.pin, NULL, &e) == 0);
    if (!p)
        return;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    static char big[3000];
    memset(big, 'q', sizeof(big));
    CK_ATTRIBUTE a[] = {{CKA_CLASS, &cls, sizeof(cls)},   {CKA_TOKEN, &no, sizeof(no)},
                        {CKA_PRIVATE, &yes, sizeof(yes)}, {CKA_LABEL, (void *)"a label", 7},
                        {CKA_APPLICATION, (void *)"", 0}, {CKA_VALUE, big, sizeof(big)}};
    CK_OBJECT_HANDLE d;
    CHECK(phc__p11_create(p, a, 6, &d, "data", &e) == 0);

    unsigned char *v = NULL;
    size_t len = 0;
    CK_RV rv = 1;
    CHECK(phc__p11_attr_read(p->fn, p->session, d, CKA_LABEL, 0, &v, &len, &rv) == 0);
    CHECK(rv == CKR_OK && len == 7 && v && memcmp(v, "a label", 8) == 0); /* NUL-terminated */
    phc__p11_attr_free(v, len, 0);
    /* A value larger than any fixed buffer, from the secure heap. */
    CHECK(phc__p11_attr_read(p->fn, p->session, d, CKA_VALUE, 1, &v, &len, &rv) == 0);
    CHECK(len == sizeof(big) && v && memcmp(v, big, len) == 0 && v[len] == '\0');
    CHECK(v && CRYPTO_secure_allocated(v));
    phc__p11_attr_free(v, len, 1);
    /* Empty: a buffer holding "" with length 0. */
    CHECK(phc__p11_attr_read(p->fn, p->session, d, CKA_APPLICATION, 0, &v, &len, &rv) == 0);
    CHECK(v && len == 0 && v[0] == '\0');
    phc__p11_attr_free(v, len, 0);

    /* An attribute a data object does not have: 1, nothing returned. */
    v = (unsigned char *)"x";
    len = 5;
    CHECK(phc__p11_attr_read(p->fn, p->session, d, CKA_MODULUS, 0, &v, &len, &rv) == 1);
    CHECK(rv == CKR_ATTRIBUTE_TYPE_INVALID && v == NULL && len == 0);

    /* A sensitive attribute of a private key: 1, nothing returned. */
    CK_OBJECT_HANDLE pub, priv;
    const unsigned char id[] = {0x42};
    CHECK(phc__p11_generate(p, PHC_P11_EC_P256, 0, "attr-key", id, 1, &pub, &priv, &e) == 0);
    CHECK(phc__p11_attr_read(p->fn, p->session, priv, CKA_VALUE, 1, &v, &len, &rv) == 1);
    CHECK(rv == CKR_ATTRIBUTE_SENSITIVE && v == NULL);
    /* Its public point is readable. */
    CHECK(phc__p11_attr_read(p->fn, p->session, pub, CKA_EC_POINT, 0, &v, &len, &rv) == 0);
    CHECK(v && len == 67 && v[0] == 0x04 && v[2] == 0x04); /* OCTET STRING around 04||X||Y */
    phc__p11_attr_free(v, len, 0);

    /* A handle that is gone: -1 with the token's CK_RV. */
    CHECK(phc__p11_destroy(p, d, "data", &e) == 0);
    v = (unsigned char *)"x";
    CHECK(phc__p11_attr_read(p->fn, p->session, d, CKA_LABEL, 0, &v, &len, &rv) == -1);
    CHECK(rv == CKR_OBJECT_HANDLE_INVALID && v == NULL && len == 0);
    /* Through the p11 wrapper: the same, as an error naming the token. */
    CHECK_ERR(phc__p11_attr(p, d, CKA_LABEL, &v, &len, &e), e, PHC_ERR_HSM, "token 'phc-test'");
    CHECK(strstr(e.msg, "CKR_OBJECT_HANDLE_INVALID") != NULL);
    phc__p11_attr_free(NULL, 0, 1);
    phc__p11_close(p);
}

int main(void)
{
    /* A secure heap, so that the secure read can be seen to come from it. */
    CHECK(CRYPTO_secure_malloc_init(1 << 16, 16) == 1);
    if (tt_begin("p11attr") || !tt_have_softhsm())
        TEST_MAIN_END();
    test_read();
    tt_end();
    CRYPTO_secure_malloc_done();
    TEST_MAIN_END();
}
