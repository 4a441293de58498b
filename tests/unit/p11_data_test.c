/* p11_data unit: the client secret as a private data object on a real SoftHSM token. Written,
 * replaced (one copy left), read back; objects made by hand to reach each refusal of the
 * reader: a public object (CKA_PRIVATE false), copies that disagree, a copy an interrupted
 * replacement marked, an empty value, a value with a NUL byte. */
#include "p11.h"
#include "p11_int.h"
#include "secret.h"
#include "testtoken.h"
#include "testutil.h"

#define URI "pkcs11:token=phc-test;object=client-secret;type=data"
#define LABEL "client-secret"

/* A data object made directly (not by phc__p11_write_data): priv, app (NULL: none), value. */
static void put_raw(const tok *t, int priv, const char *app, const void *val, size_t len)
{
    phc_p11 *p = NULL;
    phc_errbuf e = {0};
    CHECK(phc__p11_open(&p, MODULE, URI, t->pin, NULL, &e) == 0);
    if (!p)
        return;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, pv = priv ? CK_TRUE : CK_FALSE;
    CK_ATTRIBUTE a[6];
    CK_ULONG n = 0;
    a[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    a[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    a[n++] = (CK_ATTRIBUTE){CKA_PRIVATE, &pv, sizeof(pv)};
    a[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)LABEL, strlen(LABEL)};
    a[n++] = (CK_ATTRIBUTE){CKA_VALUE, (void *)val, len};
    if (app)
        a[n++] = (CK_ATTRIBUTE){CKA_APPLICATION, (void *)app, strlen(app)};
    CK_OBJECT_HANDLE h;
    CHECK(phc__p11_create(p, a, n, &h, "test data object", &e) == 0);
    phc__p11_close(p);
}

static size_t count(const tok *t)
{
    phc_p11 *p = NULL;
    phc_errbuf e = {0};
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    phc_p11_match m = {CKO_DATA, LABEL, NULL, 0, 0};
    if (phc__p11_open(&p, MODULE, URI, t->pin, NULL, &e) == 0)
        CHECK(phc__p11_find(p, &m, &h, &n, &e) == 0);
    OPENSSL_free(h);
    phc__p11_close(p);
    return n;
}

/* Reads the secret; returns rc, with the value compared against want when rc is 0. */
static int read_rc(const tok *t, const char *want, phc_errbuf *e)
{
    char *v = NULL;
    size_t n = 0;
    int rc = phc__p11_read_data(&v, &n, MODULE, URI, t->pin, e);
    if (rc == 0) {
        CHECK(want && v && n == strlen(want) && strcmp(v, want) == 0);
    } else {
        CHECK(v == NULL && n == 0);
    }
    phc__secret_free(v, n);
    return rc;
}

static void test_write_replace(void)
{
    tok t;
    phc_errbuf e = {0};
    if (tok_init(&t, "write", "phc-test"))
        return;
    CHECK(phc__p11_write_data(MODULE, URI, t.pin, "first", 5, &e) == 0);
    CHECK(read_rc(&t, "first", &e) == 0);
    CHECK(phc__p11_write_data(MODULE, URI, t.pin, "the second", 10, &e) == 0);
    CHECK(read_rc(&t, "the second", &e) == 0);
    CHECK(count(&t) == 1);
    /* A value of exactly 4096 bytes is taken, 4097 refused before the token is touched. */
    static char big[4098];
    memset(big, 'v', 4097);
    CHECK(phc__p11_write_data(MODULE, URI, t.pin, big, 4096, &e) == 0);
    CHECK_ERR(phc__p11_write_data(MODULE, URI, t.pin, big, 4097, &e), e, PHC_ERR_CONFIG,
              "the value for data object label 'client-secret' must be 1 to 4096 bytes");
    CHECK_ERR(phc__p11_write_data(MODULE, URI, t.pin, "a\0b", 3, &e), e, PHC_ERR_CONFIG,
              "without NUL bytes");
    CHECK_ERR(
        phc__p11_write_data(MODULE, "pkcs11:token=phc-test;id=%01;type=data", t.pin, "x", 1, &e), e,
        PHC_ERR_CONFIG, "data object URI needs object= to name the object it creates");
    /* SoftHSM keeps no id on data objects: said in words. */
    CHECK_ERR(phc__p11_write_data(MODULE, "pkcs11:token=phc-test;object=client-secret;id=%01",
                                  t.pin, "x", 1, &e),
              e, PHC_ERR_CONFIG, "token 'phc-test' keeps no id on data objects");
    CHECK(count(&t) == 1);
}

static void test_public_refused(void)
{
    tok t;
    phc_errbuf e = {0};
    if (tok_init(&t, "public", "phc-test"))
        return;
    put_raw(&t, 0, NULL, "planted", 7);
    CHECK_ERR(read_rc(&t, NULL, &e), e, PHC_ERR_HSM,
              "data object label 'client-secret' on token 'phc-test' is public (CKA_PRIVATE "
              "false): anyone can write one without the PIN");
    /* A private object next to the public one is the one read. */
    put_raw(&t, 1, NULL, "mine", 4);
    CHECK(read_rc(&t, "mine", &e) == 0);
}

static void test_copies(void)
{
    tok t;
    phc_errbuf e = {0};
    if (tok_init(&t, "copies", "phc-test"))
        return;
    /* An interrupted replacement: the marked old copy loses to the current one. */
    put_raw(&t, 1, "phconnect-replaced", "old", 3);
    put_raw(&t, 1, "phconnect", "new", 3);
    CHECK(read_rc(&t, "new", &e) == 0);
    /* Only marked copies left (the new one never made it): they are read. */
    tok t2;
    if (tok_init(&t2, "marked", "phc-test"))
        return;
    put_raw(&t2, 1, "phconnect-replaced", "only", 4);
    CHECK(read_rc(&t2, "only", &e) == 0);
    /* Two current copies with the same value are fine, with different values refused. */
    tok t3;
    if (tok_init(&t3, "differ", "phc-test"))
        return;
    put_raw(&t3, 1, NULL, "same", 4);
    put_raw(&t3, 1, NULL, "same", 4);
    CHECK(read_rc(&t3, "same", &e) == 0);
    put_raw(&t3, 1, NULL, "other", 5);
    CHECK_ERR(read_rc(&t3, NULL, &e), e, PHC_ERR_HSM,
              "token 'phc-test' holds 3 data objects with label 'client-secret' and different "
              "values");
    /* write_data clears the disagreement: one copy again. */
    CHECK(phc__p11_write_data(MODULE, URI, t3.pin, "settled", 7, &e) == 0);
    CHECK(count(&t3) == 1);
    CHECK(read_rc(&t3, "settled", &e) == 0);
}

static void test_bad_values(void)
{
    tok t;
    phc_errbuf e = {0};
    if (tok_init(&t, "none", "phc-test"))
        return;
    CHECK_ERR(read_rc(&t, NULL, &e), e, PHC_ERR_HSM,
              "no data object with label 'client-secret' on token 'phc-test'");
    put_raw(&t, 1, NULL, "a\0b", 3);
    CHECK_ERR(read_rc(&t, NULL, &e), e, PHC_ERR_HSM,
              "data object label 'client-secret' on token 'phc-test' is not text (it contains a "
              "NUL byte)");
    tok t2;
    if (tok_init(&t2, "empty", "phc-test"))
        return;
    put_raw(&t2, 1, NULL, "", 0);
    CHECK_ERR(read_rc(&t2, NULL, &e), e, PHC_ERR_HSM,
              "data object label 'client-secret' on token 'phc-test' is empty");
    tok t3;
    if (tok_init(&t3, "large", "phc-test"))
        return;
    static char big[5000];
    memset(big, 'b', sizeof(big));
    put_raw(&t3, 1, NULL, big, sizeof(big));
    CHECK_ERR(read_rc(&t3, NULL, &e), e, PHC_ERR_HSM, "is larger than 4096 bytes");
}

int main(void)
{
    if (tt_begin("p11data") || !tt_have_softhsm())
        TEST_MAIN_END();
    test_write_replace();
    test_public_refused();
    test_copies();
    test_bad_values();
    tt_end();
    TEST_MAIN_END();
}
