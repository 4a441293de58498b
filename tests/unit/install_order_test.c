/* install_order unit: the install-order record's text form (round trip, every refusal of the
 * parser, the append rule: once per certificate, the oldest falling out past PHC_ORDER_MAX)
 * and the record on a real SoftHSM token: appended and replaced with one copy left; several
 * copies (a writer stopped between create and destroy, or two writers) read as the highest
 * generation, then the longer value; public copies and other applications' objects never
 * read nor deleted; an unparseable copy of ours ignored and cleaned up by the next write; a
 * session that is not logged in cannot see the record and cannot write one. */
#include "install_order.h"
#include "p11.h"
#include "p11_int.h"
#include "testtoken.h"
#include "testutil.h"

#include <openssl/crypto.h>

#define URI "pkcs11:token=phc-test"

static void fp_of(unsigned char fp[32], int n)
{
    memset(fp, 0, 32);
    fp[0] = (unsigned char)n;
    fp[31] = (unsigned char)(0xa0 + n);
}

static void test_text(void)
{
    phc_order o, p;
    char buf[4096];
    unsigned char fp[32];
    memset(&o, 0, sizeof(o));
    o.gen = 7;
    size_t len = phc__order_format(&o, buf, sizeof(buf));
    CHECK(len > 0 && strcmp(buf, "phconnect install order 1 gen 7\n") == 0);
    CHECK(phc__order_parse(&p, (unsigned char *)buf, len) == 0 && p.n == 0 && p.gen == 7 &&
          p.state == PHC_ORDER_RECORDED);
    for (int i = 1; i <= 3; i++) {
        fp_of(fp, i);
        phc__order_append(&o, fp);
    }
    len = phc__order_format(&o, buf, sizeof(buf));
    CHECK(len == strlen("phconnect install order 1 gen 7\n") + 3 * 65);
    CHECK(strstr(buf, "\n01000000") && buf[len - 1] == '\n');
    CHECK(phc__order_parse(&p, (unsigned char *)buf, len) == 0 && p.n == 3 && p.gen == 7);
    fp_of(fp, 2);
    CHECK(phc__order_seq(&p, fp) == 1);
    fp_of(fp, 9);
    CHECK(phc__order_seq(&p, fp) == -1);
    /* a buffer too short for the value gives nothing rather than a cut record */
    CHECK(phc__order_format(&o, buf, 40) == 0);

    /* refusals: each leaves a state that names no certificate */
    const char *bad[] = {
        "",
        "phconnect install order 2 gen 1\n",
        "phconnect install order 1 gen \n",
        "phconnect install order 1 gen 1",
        "phconnect install order 1 gen 1x\n",
        "phconnect install order 1 gen "
        "1\n0100000000000000000000000000000000000000000000000000000000"
        "0000a1",
        "phconnect install order 1 gen "
        "1\n0100000000000000000000000000000000000000000000000000000000"
        "0000A1\n",
        "phconnect install order 1 gen "
        "1\n0100000000000000000000000000000000000000000000000000000000"
        "0000g1\n",
        "phconnect install order 1 gen "
        "1\n0100000000000000000000000000000000000000000000000000000000"
        "00000a1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(phc__order_parse(&p, (const unsigned char *)bad[i], strlen(bad[i])) == -1);
        CHECK(p.state == PHC_ORDER_NONE && p.n == 0);
        CHECK(phc__order_seq(&p, fp) == -1);
    }
    /* more entries than PHC_ORDER_MAX is not a record phc wrote */
    char big[8192];
    int w = snprintf(big, sizeof(big), "phconnect install order 1 gen 1\n");
    for (int i = 0; i <= PHC_ORDER_MAX; i++)
        w += snprintf(big + w, sizeof(big) - (size_t)w, "%064d\n",
                      i); /* decimal digits are hex digits too */
    CHECK(phc__order_parse(&p, (unsigned char *)big, (size_t)w) == -1);
}

static void test_append(void)
{
    phc_order o;
    unsigned char fp[32];
    memset(&o, 0, sizeof(o));
    /* an unread (NONE) order names nothing; appending makes it a record */
    fp_of(fp, 1);
    CHECK(phc__order_seq(&o, fp) == -1);
    phc__order_append(&o, fp);
    CHECK(o.state == PHC_ORDER_RECORDED && phc__order_seq(&o, fp) == 0);
    fp_of(fp, 2);
    phc__order_append(&o, fp);
    /* installed again: moves to the end, once */
    fp_of(fp, 1);
    phc__order_append(&o, fp);
    CHECK(o.n == 2 && phc__order_seq(&o, fp) == 1);
    fp_of(fp, 2);
    CHECK(phc__order_seq(&o, fp) == 0);
    /* bounded: the oldest fall out first */
    for (int i = 3; i < 3 + PHC_ORDER_MAX; i++) {
        fp_of(fp, i);
        phc__order_append(&o, fp);
    }
    CHECK(o.n == PHC_ORDER_MAX);
    fp_of(fp, 2);
    CHECK(phc__order_seq(&o, fp) == -1);
    fp_of(fp, 1);
    CHECK(phc__order_seq(&o, fp) == -1);
    fp_of(fp, 3);
    CHECK(phc__order_seq(&o, fp) == 0);
    fp_of(fp, 2 + PHC_ORDER_MAX);
    CHECK(phc__order_seq(&o, fp) == PHC_ORDER_MAX - 1);
    /* a place is known only for a record that was read */
    o.state = PHC_ORDER_UNREADABLE;
    CHECK(phc__order_seq(&o, fp) == -1);
}

/* ------------------------------------------------------------------------------------ */
/* On a token */

static phc_p11 *open_p(const tok *t)
{
    phc_p11 *p = NULL;
    phc_errbuf e = {0};
    CHECK(phc__p11_open(&p, MODULE, URI, t->pin, NULL, &e) == 0);
    return p;
}

/* A record object made by hand: priv, application, value. */
static void put(phc_p11 *p, int priv, const char *app, const char *value)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, pv = priv ? CK_TRUE : CK_FALSE;
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &pv, sizeof(pv)},
        {CKA_LABEL, (void *)PHC_ORDER_LABEL, strlen(PHC_ORDER_LABEL)},
        {CKA_APPLICATION, (void *)app, strlen(app)},
        {CKA_VALUE, (void *)value, strlen(value)},
    };
    CK_OBJECT_HANDLE h;
    phc_errbuf e = {0};
    CHECK(phc__p11_create(p, a, sizeof(a) / sizeof(a[0]), &h, "test record", &e) == 0);
}

/* How many objects carry the record's label (public and private: the session is logged in). */
static size_t count(phc_p11 *p)
{
    phc_p11_match m = {CKO_DATA, PHC_ORDER_LABEL, NULL, 0, 0};
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    phc_errbuf e = {0};
    CHECK(phc__p11_find(p, &m, &h, &n, &e) == 0);
    OPENSSL_free(h);
    return n;
}

/* The value text of a record naming the fingerprints fp_of(a..b) with generation gen. */
static const char *value(char *buf, size_t len, unsigned long gen, int a, int b)
{
    phc_order o;
    unsigned char fp[32];
    memset(&o, 0, sizeof(o));
    for (int i = a; i <= b; i++) {
        fp_of(fp, i);
        phc__order_append(&o, fp);
    }
    o.gen = gen;
    CHECK(phc__order_format(&o, buf, len) > 0);
    return buf;
}

static long seq_on(phc_p11 *p, int n, phc_install_order *state)
{
    phc_order o;
    unsigned char fp[32];
    phc_errbuf e = {0};
    CHECK(phc__p11_order_read(p, &o, &e) == 0);
    *state = o.state;
    fp_of(fp, n);
    return phc__order_seq(&o, fp);
}

static void test_token(void)
{
    tok t;
    phc_errbuf e = {0};
    phc_install_order st;
    unsigned char fp[32];
    char buf[4096];
    CK_RV rv = CKR_OK;
    if (tok_init(&t, "order", "phc-test"))
        return;
    phc_p11 *p = open_p(&t);
    if (!p)
        return;
    /* none yet */
    CHECK(seq_on(p, 1, &st) == -1 && st == PHC_ORDER_NONE);
    /* appended, replaced: one copy, in order */
    for (int i = 1; i <= 3; i++) {
        fp_of(fp, i);
        CHECK(phc__p11_order_add(p, fp, &rv, &e) == 0);
    }
    CHECK(count(p) == 1);
    CHECK(seq_on(p, 1, &st) == 0 && st == PHC_ORDER_RECORDED);
    CHECK(seq_on(p, 3, &st) == 2);
    fp_of(fp, 1);
    CHECK(phc__p11_order_add(p, fp, &rv, &e) == 0);
    CHECK(seq_on(p, 1, &st) == 2 && seq_on(p, 2, &st) == 0 && count(p) == 1);

    /* a copy of a higher generation (a writer stopped after its create) wins; the next write
     * builds on it and leaves one copy */
    put(p, 1, PHC_ORDER_APP, value(buf, sizeof(buf), 1000, 7, 8));
    CHECK(count(p) == 2);
    CHECK(seq_on(p, 8, &st) == 1 && seq_on(p, 1, &st) == -1);
    fp_of(fp, 9);
    CHECK(phc__p11_order_add(p, fp, &rv, &e) == 0);
    CHECK(count(p) == 1);
    CHECK(seq_on(p, 7, &st) == 0 && seq_on(p, 9, &st) == 2);

    /* equal generations: the longer value, then the greater bytes - the same for everyone */
    put(p, 1, PHC_ORDER_APP, value(buf, sizeof(buf), 5000, 20, 20));
    put(p, 1, PHC_ORDER_APP, value(buf, sizeof(buf), 5000, 20, 21));
    CHECK(seq_on(p, 21, &st) == 1);
    fp_of(fp, 22);
    CHECK(phc__p11_order_add(p, fp, &rv, &e) == 0 && count(p) == 1);
    CHECK(seq_on(p, 21, &st) == 1 && seq_on(p, 22, &st) == 2);

    /* a public copy (written without the PIN) and another application's object are never
     * read, whatever generation they claim, and a write leaves them alone */
    put(p, 0, PHC_ORDER_APP, value(buf, sizeof(buf), 99999, 30, 30));
    put(p, 1, "someone-else", value(buf, sizeof(buf), 99999, 31, 31));
    CHECK(seq_on(p, 30, &st) == -1 && seq_on(p, 31, &st) == -1 && seq_on(p, 22, &st) == 2);
    fp_of(fp, 23);
    CHECK(phc__p11_order_add(p, fp, &rv, &e) == 0);
    CHECK(count(p) == 3 && seq_on(p, 23, &st) == 3);

    /* an unparseable copy of ours: ignored by readers, destroyed by the next write */
    put(p, 1, PHC_ORDER_APP, "phconnect install order 1 gen 77777\nnot hex\n");
    CHECK(count(p) == 4 && seq_on(p, 23, &st) == 3);
    fp_of(fp, 24);
    CHECK(phc__p11_order_add(p, fp, &rv, &e) == 0);
    CHECK(count(p) == 3 && seq_on(p, 24, &st) == 4);
    phc__p11_close(p);

    /* without a login: the record cannot be seen (unreadable, not absent) nor written */
    p = open_p(&t);
    if (!p)
        return;
    CHECK(p->fn->C_Logout(p->session) == CKR_OK);
    CHECK(seq_on(p, 24, &st) == -1 && st == PHC_ORDER_UNREADABLE);
    fp_of(fp, 25);
    CHECK_ERR(phc__p11_order_add(p, fp, &rv, &e), e, PHC_ERR_HSM,
              "storing the install-order record on token 'phc-test' failed "
              "(CKR_USER_NOT_LOGGED_IN)");
    CHECK(rv == CKR_USER_NOT_LOGGED_IN);
    phc__p11_close(p);
    /* logged in again, the record is as it was */
    p = open_p(&t);
    if (p)
        CHECK(seq_on(p, 24, &st) == 4 && seq_on(p, 25, &st) == -1 && st == PHC_ORDER_RECORDED);
    phc__p11_close(p);
}

int main(void)
{
    test_text();
    test_append();
    if (tt_begin("order") || !tt_have_softhsm())
        TEST_MAIN_END();
    test_token();
    tt_end();
    TEST_MAIN_END();
}
