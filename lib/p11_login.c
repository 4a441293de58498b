#include "p11_login.h"

#include "err.h"
#include "p11_rv.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static void pin_digest(unsigned char md[32], const char *pin, size_t len)
{
    unsigned int n = 32;
    if (EVP_Digest(pin, len, md, &n, EVP_sha256(), NULL) != 1)
        memset(md, 0, 32); /* cannot happen with the default provider; latches nothing useful */
}

int phc__p11_login_check(const char *token, CK_FLAGS flags, const char *pin, size_t pin_len,
                         const char *pin_source, phc_pin_latch *latch, unsigned char md[32],
                         const phc_log *log, phc_errbuf *err)
{
    pin_digest(md, pin, pin_len);
    /* Never guess against a token about to lock or locked: an operator decides. */
    if (flags & CKF_USER_PIN_LOCKED)
        return phc__err(err, PHC_ERR_PIN,
                        "PIN of token '%s' is locked (CKF_USER_PIN_LOCKED): unlock it with the SO "
                        "PIN; phconnect does not log in to it",
                        token);
    if (flags & CKF_USER_PIN_FINAL_TRY)
        return phc__err(err, PHC_ERR_PIN,
                        "token '%s' reports that the next wrong PIN locks it "
                        "(CKF_USER_PIN_FINAL_TRY): phconnect does not log in to it on its own; "
                        "check the PIN, then log in once by hand (pkcs11-tool --login --test) to "
                        "reset the count",
                        token);
    if (flags & CKF_USER_PIN_COUNT_LOW)
        phc__log(log, PHC_LOG_WARN, "token '%s': wrong PINs were entered recently", token);
    if (latch && latch->set) {
        if (CRYPTO_memcmp(md, latch->digest, 32) == 0)
            return phc__err(err, PHC_ERR_PIN,
                            "PIN of token '%s' was refused (%s) and PIN source '%s' still holds "
                            "the same PIN: not offered again until the source changes or the "
                            "client is reloaded",
                            token, latch->ckr, pin_source);
        phc__log(log, PHC_LOG_INFO, "token '%s': the PIN source changed; trying its PIN", token);
        memset(latch, 0, sizeof(*latch));
    }
    return PHC_OK;
}

int phc__p11_login_refused(const char *token, CK_RV rv, const unsigned char md[32],
                           phc_pin_latch *latch, phc_errbuf *err)
{
    char ckr[40];
    phc__p11_rv_str(ckr, sizeof(ckr), rv);
    if (latch && (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED)) {
        latch->set = 1;
        memcpy(latch->digest, md, 32);
        snprintf(latch->ckr, sizeof(latch->ckr), "%.31s", ckr);
    }
    switch (rv) {
    case CKR_PIN_LOCKED:
        return phc__err(err, PHC_ERR_PIN, "PIN of token '%s' is locked (CKR_PIN_LOCKED)", token);
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_USER_PIN_NOT_INITIALIZED:
        return phc__err(err, PHC_ERR_PIN, "PIN rejected by token '%s' (%s); not retried", token,
                        ckr);
    default:
        return phc__err(err, PHC_ERR_HSM, "login to token '%s' failed (%s)", token, ckr);
    }
}
