/* p11_rv unit: the one CK_RV -> words table, its fallback for values it does not know, and
 * the CK_RV libp11 leaves on OpenSSL's error queue (only its own library's errors count). */
#include "p11_rv.h"
#include "testutil.h"

#include <libp11.h>
#include <openssl/err.h>

/* Pushes an error of library lib with reason on this thread's queue, as libp11 does. */
static void push_err(int lib, int reason)
{
    ERR_new();
    ERR_set_debug(__FILE__, __LINE__, "p11_rv_test");
    ERR_set_error(lib, reason, NULL);
}

static void test_names(void)
{
    CHECK(strcmp(phc__p11_rv_name(CKR_OK), "CKR_OK") == 0);
    CHECK(strcmp(phc__p11_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT") == 0);
    CHECK(strcmp(phc__p11_rv_name(CKR_PIN_LOCKED), "CKR_PIN_LOCKED") == 0);
    CHECK(strcmp(phc__p11_rv_name(CKR_TOKEN_NOT_PRESENT), "CKR_TOKEN_NOT_PRESENT") == 0);
    CHECK(strcmp(phc__p11_rv_name(CKR_BUFFER_TOO_SMALL), "CKR_BUFFER_TOO_SMALL") == 0);
    CHECK(strcmp(phc__p11_rv_name(CKR_ATTRIBUTE_SENSITIVE), "CKR_ATTRIBUTE_SENSITIVE") == 0);
    CHECK(strcmp(phc__p11_rv_name(CKR_CRYPTOKI_ALREADY_INITIALIZED),
                 "CKR_CRYPTOKI_ALREADY_INITIALIZED") == 0);
    CHECK(strcmp(phc__p11_rv_name(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED") == 0);
    /* Values the table does not know. */
    CHECK(phc__p11_rv_name(CKR_VENDOR_DEFINED) == NULL);
    CHECK(phc__p11_rv_name(0x12345) == NULL);
    CHECK(phc__p11_rv_name(CKR_NEED_TO_CREATE_THREADS) == NULL);
}

static void test_str(void)
{
    char buf[64];
    CHECK(phc__p11_rv_str(buf, sizeof(buf), CKR_PIN_INCORRECT) == buf);
    CHECK(strcmp(buf, "CKR_PIN_INCORRECT") == 0);
    phc__p11_rv_str(buf, sizeof(buf), 0x12345);
    CHECK(strcmp(buf, "CK_RV 0x12345") == 0);
    phc__p11_rv_str(buf, sizeof(buf), CKR_VENDOR_DEFINED);
    CHECK(strcmp(buf, "CK_RV 0x80000000") == 0);
    /* A small buffer is cut, never overrun. */
    char small[8];
    memset(small, 'x', sizeof(small));
    phc__p11_rv_str(small, sizeof(small), CKR_PIN_INCORRECT);
    CHECK(strcmp(small, "CKR_PIN") == 0);
}

static void test_last(void)
{
    char buf[64];
    int lib = ERR_get_CKR_code();
    ERR_clear_error();
    CHECK(phc__p11_rv_last(buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "no PKCS#11 error code") == 0);

    /* libp11's code is found among other libraries' errors, and the last one wins. */
    push_err(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE);
    push_err(lib, CKR_PIN_LOCKED);
    push_err(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE);
    CHECK(phc__p11_rv_last(buf, sizeof(buf)) == CKR_PIN_LOCKED);
    CHECK(strcmp(buf, "CKR_PIN_LOCKED") == 0);
    /* The queue is cleared. */
    CHECK(ERR_peek_error() == 0);

    push_err(lib, CKR_PIN_INCORRECT);
    push_err(lib, CKR_TOKEN_NOT_PRESENT);
    CHECK(phc__p11_rv_last(buf, sizeof(buf)) == CKR_TOKEN_NOT_PRESENT);
    CHECK(strcmp(buf, "CKR_TOKEN_NOT_PRESENT") == 0);

    /* Other libraries' errors alone are no CK_RV (and the queue is still emptied). */
    push_err(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE);
    CHECK(phc__p11_rv_last(buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "no PKCS#11 error code") == 0);
    CHECK(ERR_peek_error() == 0);

    /* An unknown reason in words. */
    push_err(lib, 0x1234);
    CHECK(phc__p11_rv_last(buf, sizeof(buf)) == 0x1234);
    CHECK(strcmp(buf, "CK_RV 0x1234") == 0);
}

int main(void)
{
    test_names();
    test_str();
    test_last();
    TEST_MAIN_END();
}
