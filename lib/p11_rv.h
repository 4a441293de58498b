/* CK_RV in words: the one table of PKCS#11 return values, for the raw calls (p11.c, the
 * certificate reader) and for what libp11 leaves on OpenSSL's error queue (hsm.c). */
#ifndef PHC_P11_RV_H
#define PHC_P11_RV_H

#include <p11-kit/pkcs11.h>
#include <stddef.h>

/* Name of a CK_RV ("CKR_PIN_INCORRECT"), or NULL when the table does not know it. */
const char *phc__p11_rv_name(CK_RV rv);

/* The name, or "CK_RV 0x..." for one the table does not know, in buf. Returns buf. */
const char *phc__p11_rv_str(char *buf, size_t len, CK_RV rv);

/* The CK_RV libp11 left on this thread's OpenSSL error queue (0 if none: then buf says "no
 * PKCS#11 error code"), in words in buf. Clears the queue: libp11's boundary. */
unsigned long phc__p11_rv_last(char *buf, size_t len);

#endif
