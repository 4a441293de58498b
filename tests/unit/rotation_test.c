/* The rotation rule (lib/rotation.c) on in-memory certificates: validity at a given time,
 * which of two certificates is newer (notBefore, then notAfter, then for full ties the later
 * installation by the install-order record, then a fixed order; the same whichever order a
 * caller meets them in), and dates that cannot be read, which make a certificate unusable
 * rather than old or new. */
#include "rotation.h"
#include "testutil.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#define T0 1893456000LL /* 2030-01-01T00:00:00Z */
#define DAY 86400LL

static EVP_PKEY *g_key;

/* Neither certificate in the install-order record (a token without one). */
#define NEWER(a, b) phc__cert_newer((a), -1, (b), -1)

/* A self-signed certificate valid from nb to na (epoch seconds); serial tells twins apart. */
static X509 *cert(long long nb, long long na, long serial)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    if (!x || !n)
        return NULL;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"rot", -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_NAME_free(n);
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na);
    X509_set_pubkey(x, g_key);
    if (!X509_sign(x, g_key, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* The same with the notBefore (or notAfter) text replaced by something no parser reads. */
static X509 *cert_unreadable(int which_after)
{
    X509 *x = cert(T0, T0 + 30 * DAY, 99);
    ASN1_TIME *t = which_after ? X509_getm_notAfter(x) : X509_getm_notBefore(x);
    ASN1_STRING_set(t, "29991399zz0000Z", -1);
    X509_sign(x, g_key, EVP_sha256());
    return x;
}

static void test_validity(void)
{
    X509 *c = cert(T0, T0 + 30 * DAY, 1);
    CHECK(c != NULL);
    CHECK(phc__cert_validity(c, T0 - 1) == PHC_CERT_NOT_YET_VALID);
    CHECK(phc__cert_validity(c, T0) == PHC_CERT_VALID);
    CHECK(phc__cert_validity(c, T0 + 15 * DAY) == PHC_CERT_VALID);
    CHECK(phc__cert_validity(c, T0 + 30 * DAY - 1) == PHC_CERT_VALID);
    CHECK(phc__cert_validity(c, T0 + 30 * DAY + 1) == PHC_CERT_EXPIRED);
    CHECK(phc__asn1_time_epoch(X509_get0_notBefore(c)) == T0);
    CHECK(phc__asn1_time_epoch(X509_get0_notAfter(c)) == T0 + 30 * DAY);
    long long nb = 0, na = 0;
    long days = 0;
    phc__cert_dates(c, T0 + 10 * DAY, &nb, &na, &days);
    CHECK(nb == T0 && na == T0 + 30 * DAY && days == 20);
    phc__cert_dates(c, T0 + 30 * DAY + 1, &nb, &na, &days);
    CHECK(days == -1);
    phc__cert_dates(c, T0 + 30 * DAY - 1, &nb, &na, &days);
    CHECK(days == 0);
    X509_free(c);
}

/* Later notBefore wins; on equal notBefore, the later notAfter; never both ways. */
static void test_newer(void)
{
    X509 *old = cert(T0, T0 + 90 * DAY, 1), *young = cert(T0 + DAY, T0 + 30 * DAY, 2);
    X509 *longer = cert(T0, T0 + 365 * DAY, 3);
    CHECK(old && young && longer);
    CHECK(NEWER(young, old) == 1 && NEWER(old, young) == 0);
    /* notBefore decides before notAfter: the shorter-lived but younger one is newer */
    CHECK(NEWER(young, longer) == 1 && NEWER(longer, young) == 0);
    /* tie on notBefore: the later notAfter */
    CHECK(NEWER(longer, old) == 1 && NEWER(old, longer) == 0);
    CHECK(NEWER(old, old) == 0);
    X509_free(old);
    X509_free(young);
    X509_free(longer);
}

/* Two certificates with the same dates to the second (issued together): one fixed order,
 * the same whichever comes first, so hsm.c and token.c name the same pair. */
static void test_full_tie(void)
{
    X509 *a = cert(T0, T0 + 30 * DAY, 10), *b = cert(T0, T0 + 30 * DAY, 11);
    CHECK(a && b);
    int ab = NEWER(a, b), ba = NEWER(b, a);
    CHECK(ab + ba == 1);
    /* asked again, and on copies, the answer does not change */
    X509 *a2 = X509_dup(a), *b2 = X509_dup(b);
    CHECK(NEWER(a2, b2) == ab && NEWER(b2, a2) == ba);
    CHECK(NEWER(a, a2) == 0 && NEWER(a2, a) == 0);
    X509_free(a);
    X509_free(b);
    X509_free(a2);
    X509_free(b2);
}

/* Full ties with install-order places: the later installation wins whatever the fixed order
 * says; a recorded certificate beats an unrecorded one; places never override the dates. */
static void test_install_order(void)
{
    X509 *a = cert(T0, T0 + 30 * DAY, 20), *b = cert(T0, T0 + 30 * DAY, 21);
    X509 *young = cert(T0 + DAY, T0 + 30 * DAY, 22), *longer = cert(T0, T0 + 60 * DAY, 23);
    CHECK(a && b && young && longer);
    if (!a || !b || !young || !longer)
        goto out;
    /* the fixed order picks one of a and b; the record overrides it both ways */
    X509 *fixed_winner = NEWER(a, b) ? a : b, *fixed_loser = fixed_winner == a ? b : a;
    CHECK(phc__cert_newer(fixed_loser, 1, fixed_winner, 0) == 1);
    CHECK(phc__cert_newer(fixed_winner, 0, fixed_loser, 1) == 0);
    CHECK(phc__cert_newer(fixed_winner, 1, fixed_loser, 0) == 1);
    CHECK(phc__cert_newer(fixed_loser, 0, fixed_winner, 1) == 0);
    /* recorded beats unrecorded, even the fixed order's winner */
    CHECK(phc__cert_newer(fixed_loser, 0, fixed_winner, -1) == 1);
    CHECK(phc__cert_newer(fixed_winner, -1, fixed_loser, 0) == 0);
    /* the same certificate is never newer than itself */
    CHECK(phc__cert_newer(a, 3, a, 3) == 0);
    /* places do not override the dates: a later notBefore or notAfter still wins */
    CHECK(phc__cert_newer(young, 0, a, 7) == 1 && phc__cert_newer(a, 7, young, 0) == 0);
    CHECK(phc__cert_newer(longer, -1, a, 7) == 1 && phc__cert_newer(a, 7, longer, -1) == 0);
    /* a strict total order over three tied certificates, recorded or not: every permutation
     * of a linear scan (as hsm.c and token.c do, each in its own order) finds one winner */
    X509 *c = cert(T0, T0 + 30 * DAY, 24);
    X509 *x[3] = {a, b, c};
    long seqs[][3] = {{0, 1, -1}, {1, 0, -1}, {-1, -1, 0}, {-1, -1, -1}, {2, -1, 1}};
    int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (size_t s = 0; c && s < sizeof(seqs) / sizeof(seqs[0]); s++) {
        int winner = -1, consistent = 1;
        for (int p = 0; p < 6; p++) {
            int best = -1;
            for (int k = 0; k < 3; k++) {
                int i = perms[p][k];
                if (best < 0 || phc__cert_newer(x[i], seqs[s][i], x[best], seqs[s][best]))
                    best = i;
            }
            if (winner < 0)
                winner = best;
            consistent &= best == winner;
        }
        CHECK(consistent);
        /* the greatest place wins when any is recorded */
        long top = -1;
        int want = -1;
        for (int i = 0; i < 3; i++)
            if (seqs[s][i] > top) {
                top = seqs[s][i];
                want = i;
            }
        if (want >= 0)
            CHECK(winner == want);
        /* antisymmetry on every pair */
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                if (i != j)
                    CHECK(phc__cert_newer(x[i], seqs[s][i], x[j], seqs[s][j]) +
                              phc__cert_newer(x[j], seqs[s][j], x[i], seqs[s][i]) ==
                          1);
    }
    X509_free(c);
out:
    X509_free(a);
    X509_free(b);
    X509_free(young);
    X509_free(longer);
}

/* A date that cannot be read makes the certificate unreadable at every time (never chosen),
 * reads as epoch 0, and never counts as newer than a readable certificate. */
static void test_unreadable(void)
{
    X509 *good = cert(T0, T0 + 30 * DAY, 1);
    for (int after = 0; after <= 1; after++) {
        X509 *bad = cert_unreadable(after);
        CHECK(bad != NULL);
        if (!bad)
            continue;
        CHECK(phc__cert_validity(bad, T0 - DAY) == PHC_CERT_UNREADABLE);
        CHECK(phc__cert_validity(bad, T0 + DAY) == PHC_CERT_UNREADABLE);
        CHECK(phc__cert_validity(bad, T0 + 400 * DAY) == PHC_CERT_UNREADABLE);
        const ASN1_TIME *t = after ? X509_get0_notAfter(bad) : X509_get0_notBefore(bad);
        CHECK(phc__asn1_time_epoch(t) == 0);
        CHECK(NEWER(bad, good) == 0);
        /* nor when the record names it as the latest installation */
        CHECK(phc__cert_newer(bad, 9, good, 0) == 0);
        CHECK(ERR_peek_error() == 0); /* nothing left on OpenSSL's queue */
        X509_free(bad);
    }
    CHECK(phc__asn1_time_epoch(NULL) == 0);
    X509_free(good);
}

int main(void)
{
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    CHECK(kc && EVP_PKEY_keygen_init(kc) == 1 &&
          EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) == 1 &&
          EVP_PKEY_keygen(kc, &g_key) == 1);
    EVP_PKEY_CTX_free(kc);
    if (!g_key)
        TEST_MAIN_END();
    test_validity();
    test_newer();
    test_full_tie();
    test_install_order();
    test_unreadable();
    EVP_PKEY_free(g_key);
    TEST_MAIN_END();
}
