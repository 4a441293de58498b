/* The rotation rule (lib/rotation.c) on in-memory certificates: validity at a given time,
 * which of two certificates is newer (notBefore, then notAfter, then a fixed order for full
 * ties, the same whichever order a caller meets them in), and dates that cannot be read,
 * which make a certificate unusable rather than old or new. */
#include "rotation.h"
#include "testutil.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#define T0 1893456000LL /* 2030-01-01T00:00:00Z */
#define DAY 86400LL

static EVP_PKEY *g_key;

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
    CHECK(phc__cert_newer(young, old) == 1 && phc__cert_newer(old, young) == 0);
    /* notBefore decides before notAfter: the shorter-lived but younger one is newer */
    CHECK(phc__cert_newer(young, longer) == 1 && phc__cert_newer(longer, young) == 0);
    /* tie on notBefore: the later notAfter */
    CHECK(phc__cert_newer(longer, old) == 1 && phc__cert_newer(old, longer) == 0);
    CHECK(phc__cert_newer(old, old) == 0);
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
    int ab = phc__cert_newer(a, b), ba = phc__cert_newer(b, a);
    CHECK(ab + ba == 1);
    /* asked again, and on copies, the answer does not change */
    X509 *a2 = X509_dup(a), *b2 = X509_dup(b);
    CHECK(phc__cert_newer(a2, b2) == ab && phc__cert_newer(b2, a2) == ba);
    CHECK(phc__cert_newer(a, a2) == 0 && phc__cert_newer(a2, a) == 0);
    X509_free(a);
    X509_free(b);
    X509_free(a2);
    X509_free(b2);
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
        CHECK(phc__cert_newer(bad, good) == 0);
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
    test_unreadable();
    EVP_PKEY_free(g_key);
    TEST_MAIN_END();
}
