/* Direct PKCS#11 access for what libp11 0.4.12 cannot do: generating key pairs with explicit
 * attributes (EC included), creating and deleting certificate and data objects, reading
 * attributes such as CKA_SENSITIVE, and C_Sign for requests the token signs outside TLS
 * (CSRs). hsm.c keeps serving TLS through libp11; this unit serves token administration
 * and the client secret kept as a data object.
 *
 * Sharing the module with libp11: both sit on the one module layer (p11_module.h), one
 * initialised function list per library file, finalised only when the last user of either
 * kind is gone, so neither side's sessions die under the other. CKR_USER_ALREADY_LOGGED_IN is
 * success; C_Logout is never called here (login state is per module instance: logging out
 * would log libp11 out too). Only this handle's own session is closed (C_CloseSession, never
 * C_CloseAllSessions).
 *
 * Every CK_RV is translated at one boundary (phc__p11_fail in p11.c, names from p11_rv.c,
 * login answers in p11_login.c): PIN problems are PHC_ERR_PIN "not retried", everything else
 * PHC_ERR_HSM naming the token and the CKR_ name. The unit is three files: p11.c (core:
 * opening, objects, attributes), p11_keys.c (key pairs, public keys, C_Sign), p11_data.c (data
 * objects).
 */
#ifndef PHC_P11_H
#define PHC_P11_H

#include "install_order.h"
#include "log.h"
#include "p11_rv.h"

#include <p11-kit/pkcs11.h>

#include <openssl/evp.h>
#include <stddef.h>

/* Reads the value of the CKO_DATA object named by uri ("pkcs11:token=..;object=..;type=data",
 * label and/or id) on the token it names, logging in with the PIN from pin_source. *out is
 * NUL-terminated, allocated so that phc__secret_free(*out, *out_len) wipes and frees it.
 * PHC_ERR_HSM when module/token/object are missing (naming them), PHC_ERR_PIN for PIN
 * problems. */
int phc__p11_read_data(char **out, size_t *out_len, const char *module, const char *uri,
                       const char *pin_source, phc_errbuf *err);

/* Creates or replaces the CKO_DATA object named by uri (label from object=, CKA_PRIVATE=TRUE,
 * CKA_TOKEN=TRUE, CKA_MODIFIABLE, application "phconnect") with value. Replacement is
 * create-new-then-delete-old so a crash leaves one copy. */
int phc__p11_write_data(const char *module, const char *uri, const char *pin_source,
                        const void *value, size_t len, phc_errbuf *err);

/* ---------------------------------------------------------------------------------- */
/* Sessions */

typedef struct phc_p11 phc_p11;

/* Loads module (shared per library file with other handles of this unit), selects the one
 * initialised token that matches uri's token attributes (token=, serial=, manufacturer=,
 * model=, slot-*), opens a read-write session and logs in with the PIN from pin_source
 * (read once, one attempt, wiped). uri: any "pkcs11:" URI; its object attributes are not
 * used here. A pin-value/pin-source inside uri is refused. log: borrowed, may be NULL, must
 * outlive the handle.
 * Errors: PHC_ERR_CONFIG (malformed URI), PHC_ERR_HSM (module will not load, no token or
 * several tokens match - naming what was looked for and what is present), PHC_ERR_PIN. */
int phc__p11_open(phc_p11 **out, const char *module, const char *uri, const char *pin_source,
                  const phc_log *log, phc_errbuf *err);

/* Closes p's session, re-initialises the module when p is its only user, and opens the token
 * again as phc__p11_open does (same module, uri, pin_source; one login attempt). On failure p
 * holds no session: only phc__p11_close is left to call. */
int phc__p11_reopen(phc_p11 *p, const char *module, const char *uri, const char *pin_source,
                    phc_errbuf *err);

/* The CK_RV (CKR_OK: none) and the step ("listing the private keys") of this thread's last
 * failure reported by this unit since phc__p11_last_fail_clear, and whether the token gave an
 * answer it cannot mean (*odd: phc__p11_fail_odd): lets the administration tell the token's
 * transient answers from others. *what is borrowed (thread-local). */
CK_RV phc__p11_last_fail(const char **what, int *odd);
/* Notes that the token answered what it cannot mean (a key it just made with the attributes
 * asked reads otherwise): SoftHSM reading an object file another process rewrites. */
void phc__p11_fail_odd(const char *what);
void phc__p11_last_fail_clear(void);

/* Closes the session and drops the module reference. NULL allowed. */
void phc__p11_close(phc_p11 *p);

/* Label of the token in use (trimmed), for messages. Borrowed from p. */
const char *phc__p11_token_label(const phc_p11 *p);

/* Serial number of the token in use (trimmed). Borrowed from p. */
const char *phc__p11_token_serial(const phc_p11 *p);

/* ---------------------------------------------------------------------------------- */
/* Objects */

/* What to look for: class plus optional label (NULL: any) and id (has_id 0: any). */
typedef struct phc_p11_match {
    CK_OBJECT_CLASS cls;
    const char *label;
    const unsigned char *id;
    size_t id_len;
    int has_id;
} phc_p11_match;

/* All objects matching m. *out (caller frees with OPENSSL_free; NULL when *n is 0). */
int phc__p11_find(phc_p11 *p, const phc_p11_match *m, CK_OBJECT_HANDLE **out, size_t *n,
                  phc_errbuf *err);

/* One attribute's value in a fresh buffer (OPENSSL_free; NUL-terminated for convenience,
 * the NUL not counted in *len). Returns 0, 1 when the token does not reveal the attribute
 * (CKR_ATTRIBUTE_TYPE_INVALID or _SENSITIVE: *val NULL), or an error. */
int phc__p11_attr(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, unsigned char **val,
                  size_t *len, phc_errbuf *err);

/* A CK_BBOOL attribute; *out is -1 when the token does not reveal it. */
int phc__p11_attr_bool(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, int *out,
                       phc_errbuf *err);

/* A CK_ULONG attribute (class, key type, ...). */
int phc__p11_attr_ulong(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG *out,
                        phc_errbuf *err);

/* C_CreateObject; what names the object in messages ("certificate 'x'"). */
int phc__p11_create(phc_p11 *p, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out,
                    const char *what, phc_errbuf *err);

/* C_DestroyObject; what as for phc__p11_create. */
int phc__p11_destroy(phc_p11 *p, CK_OBJECT_HANDLE h, const char *what, phc_errbuf *err);

/* The kinds of key pair phc generates. */
typedef enum phc_p11_keykind { PHC_P11_RSA, PHC_P11_EC_P256, PHC_P11_EC_P384 } phc_p11_keykind;

/* Generates a key pair on the token: both halves CKA_TOKEN, the private key CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN only; label/id on both. rsa_bits is used for
 * PHC_P11_RSA. The private key's CKA_SENSITIVE/CKA_EXTRACTABLE/CKA_NEVER_EXTRACTABLE are read
 * back; a token that did not honour them gets the pair deleted again and PHC_ERR_HSM. */
int phc__p11_generate(phc_p11 *p, phc_p11_keykind kind, int rsa_bits, const char *label,
                      const unsigned char *id, size_t id_len, CK_OBJECT_HANDLE *pub_out,
                      CK_OBJECT_HANDLE *priv_out, phc_errbuf *err);

/* The public key of a key object as a plain OpenSSL key (caller frees): from a CKO_PUBLIC_KEY
 * (RSA n/e, EC params/point) or, for RSA, from a private key's public attributes. */
int phc__p11_public_key(phc_p11 *p, CK_OBJECT_HANDLE h, EVP_PKEY **out, phc_errbuf *err);

/* C_SignInit + C_Sign with mech (no parameters) on key h. *sig (OPENSSL_free) and *siglen. */
int phc__p11_sign(phc_p11 *p, CK_OBJECT_HANDLE h, CK_MECHANISM_TYPE mech, const unsigned char *in,
                  size_t inlen, unsigned char **sig, size_t *siglen, phc_errbuf *err);

/* ---------------------------------------------------------------------------------- */
/* The install-order record (install_order.h) through this handle's session */

/* Reads it into o; a failing call is PHC_ERR_HSM naming the step and the CK_RV. */
int phc__p11_order_read(phc_p11 *p, phc_order *o, phc_errbuf *err);

/* Records fp as the newest installation (phc__order_add); on failure *rv is the CK_RV. */
int phc__p11_order_add(phc_p11 *p, const unsigned char fp[32], CK_RV *rv, phc_errbuf *err);

#endif
