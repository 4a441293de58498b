/* The one login rule, for libp11's login (hsm.c) and the raw one (p11.c): never guess
 * against a token about to lock (CKF_USER_PIN_FINAL_TRY) or locked (CKF_USER_PIN_LOCKED), one
 * attempt only, and a PIN the token refused is not offered again while its source still
 * holds it (the latch). The callers read the PIN and make the C_Login; this unit decides
 * before and words the answer after. */
#ifndef PHC_P11_LOGIN_H
#define PHC_P11_LOGIN_H

#include "log.h"

#include <p11-kit/pkcs11.h>
#include <stddef.h>

/* What a client remembers of a PIN the token refused, so that it never offers the same wrong
 * PIN twice (a hardware token locks after a few): the SHA-256 of the refused PIN - never the
 * PIN - and the token's answer. All zero: nothing refused. */
typedef struct phc_pin_latch {
    int set;
    unsigned char digest[32];
    char ckr[32]; /* "CKR_PIN_INCORRECT" or "CKR_PIN_LOCKED" */
} phc_pin_latch;

/* Before C_Login. flags: the token's flags as it reports them now. md receives the PIN's
 * SHA-256 (for phc__p11_login_refused). latch may be NULL (no memory); a different PIN than
 * the latched one clears it. 0: go ahead; PHC_ERR_PIN naming token otherwise. */
int phc__p11_login_check(const char *token, CK_FLAGS flags, const char *pin, size_t pin_len,
                         const char *pin_source, phc_pin_latch *latch, unsigned char md[32],
                         const phc_log *log, phc_errbuf *err);

/* After C_Login answered rv (neither CKR_OK nor CKR_USER_ALREADY_LOGGED_IN), or any call a
 * PIN CK_RV (md may then be NULL with latch NULL): latches md on CKR_PIN_INCORRECT/CKR_PIN_LOCKED
 * and returns the refusal: PHC_ERR_PIN for the PIN's CK_RVs ("not retried"), PHC_ERR_HSM otherwise.
 */
int phc__p11_login_refused(const char *token, CK_RV rv, const unsigned char md[32],
                           phc_pin_latch *latch, phc_errbuf *err);

#endif
