/* p11_login unit: the one login rule, shared by libp11's login (hsm.c) and the raw one
 * (p11.c): no attempt against a locked token or one about to lock, a refused PIN latched by
 * its digest and not offered again, a changed PIN tried, and the words for each CK_RV. */
#include "p11_login.h"

#include "testutil.h"

#include <phconnect/phconnect.h>

static void test_flags(void)
{
    unsigned char md[32];
    phc_errbuf e = {0};
    CHECK_ERR(
        phc__p11_login_check("tok", CKF_USER_PIN_LOCKED, "1234", 4, "file:/p", NULL, md, NULL, &e),
        e, PHC_ERR_PIN, "PIN of token 'tok' is locked (CKF_USER_PIN_LOCKED)");
    CHECK_ERR(phc__p11_login_check("tok", CKF_USER_PIN_FINAL_TRY, "1234", 4, "file:/p", NULL, md,
                                   NULL, &e),
              e, PHC_ERR_PIN, "token 'tok' reports that the next wrong PIN locks it");
    CHECK(phc__p11_login_check("tok", CKF_USER_PIN_COUNT_LOW | CKF_LOGIN_REQUIRED, "1234", 4,
                               "file:/p", NULL, md, NULL, &e) == PHC_OK);
}

static void test_latch(void)
{
    phc_pin_latch latch = {0};
    unsigned char md[32], md2[32];
    phc_errbuf e = {0};
    CHECK(phc__p11_login_check("tok", 0, "1111", 4, "file:/p", &latch, md, NULL, &e) == PHC_OK);
    CHECK_ERR(phc__p11_login_refused("tok", CKR_PIN_INCORRECT, md, &latch, &e), e, PHC_ERR_PIN,
              "PIN rejected by token 'tok' (CKR_PIN_INCORRECT); not retried");
    CHECK(latch.set && strcmp(latch.ckr, "CKR_PIN_INCORRECT") == 0);
    /* The same PIN again: refused without an attempt, the source named, never the PIN. */
    CHECK_ERR(phc__p11_login_check("tok", 0, "1111", 4, "file:/p", &latch, md2, NULL, &e), e,
              PHC_ERR_PIN, "PIN source 'file:/p' still holds the same PIN");
    CHECK(!strstr(e.msg, "1111"));
    /* Another PIN: tried, the latch cleared. */
    CHECK(phc__p11_login_check("tok", 0, "2222", 4, "file:/p", &latch, md2, NULL, &e) == PHC_OK);
    CHECK(!latch.set);
    CHECK(memcmp(md, md2, 32) != 0);
    /* Other refusals: worded, latched only for the PIN's own answers. */
    CHECK_ERR(phc__p11_login_refused("tok", CKR_PIN_LOCKED, md2, &latch, &e), e, PHC_ERR_PIN,
              "PIN of token 'tok' is locked (CKR_PIN_LOCKED)");
    CHECK(latch.set && strcmp(latch.ckr, "CKR_PIN_LOCKED") == 0);
    memset(&latch, 0, sizeof(latch));
    CHECK_ERR(phc__p11_login_refused("tok", CKR_PIN_LEN_RANGE, md2, &latch, &e), e, PHC_ERR_PIN,
              "PIN rejected by token 'tok' (CKR_PIN_LEN_RANGE); not retried");
    CHECK_ERR(phc__p11_login_refused("tok", CKR_DEVICE_ERROR, md2, &latch, &e), e, PHC_ERR_HSM,
              "login to token 'tok' failed (CKR_DEVICE_ERROR)");
    CHECK_ERR(phc__p11_login_refused("tok", 0x80001234UL, md2, NULL, &e), e, PHC_ERR_HSM,
              "(CK_RV 0x80001234)");
    CHECK(!latch.set);
}

int main(void)
{
    test_flags();
    test_latch();
    TEST_MAIN_END();
}
