/* The token side: libp11 loads the PKCS#11 module, finds the token named by the key URI,
 * logs in with the PIN from its source (read once, used once, wiped) and exposes the
 * private key as an EVP_PKEY whose operations run on the token. The key never leaves it.
 *
 * Key selection: the key URI (RFC 7512, parsed with p11-kit) names the token (token=,
 * serial=, manufacturer=, model=) and the key (object= label and/or id=). Several private
 * keys may match (a rotation keeps old and pending pairs side by side under one label with
 * different ids). The identity used is the pair whose certificate is valid now and has the
 * latest notBefore; keys without a certificate are pending, never selected.
 */
#ifndef PHC_HSM_H
#define PHC_HSM_H

#include "log.h"
#include "p11_login.h" /* phc_pin_latch */
#include "trust.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct phc_hsm phc_hsm;

/* module: path of the .so. key_uri: "pkcs11:..." (a pin-value/pin-source attribute is
 * refused). pin_source: "file:/path" or "env:NAME". log: borrowed, may be NULL, must outlive
 * the handle.
 * Errors: PHC_ERR_HSM (module will not load, no token matches, no key matches - naming
 * what was looked for), PHC_ERR_PIN (PIN missing, empty, incorrect, locked: one login
 * attempt only), PHC_ERR_CONFIG (malformed URI). */
int phc__hsm_open(phc_hsm **out, const char *module, const char *key_uri, const char *pin_source,
                  const phc_log *log, phc_errbuf *err);

/* phc__hsm_open for a long-lived client. Login is never attempted when the token reports
 * CKF_USER_PIN_LOCKED or CKF_USER_PIN_FINAL_TRY (read afresh before C_Login): PHC_ERR_PIN
 * naming the token. latch (may be NULL: no memory) is read and updated: a PIN whose digest
 * the latch holds is refused without C_Login; CKR_PIN_INCORRECT/CKR_PIN_LOCKED sets it; a
 * different PIN clears it and is tried. */
int phc__hsm_open_latched(phc_hsm **out, const char *module, const char *key_uri,
                          const char *pin_source, const phc_log *log, phc_pin_latch *latch,
                          phc_errbuf *err);

/* Chooses the client identity. cert_ref: NULL (certificate object on the token with the
 * same id as a matching key, selection rule above), a "pkcs11:" URI of a certificate
 * object, or the path of a PEM file. The certificate's public key must equal the key's
 * public key, else PHC_ERR_HSM naming the certificate subject and the key label/id.
 * *key_out is borrowed from h (valid until phc__hsm_free); *cert_out belongs to the caller.
 * now: the time to judge validity by (time(NULL) in production). */
int phc__hsm_identity(phc_hsm *h, const char *cert_ref, long long now, EVP_PKEY **key_out,
                      X509 **cert_out, phc_errbuf *err);

/* phc__hsm_identity for the connector. A certificate object on the token is only a candidate
 * when its public key is the key's and, with trust (may be NULL), it chains to a pinned CA at
 * now: anyone may write a public certificate object without the PIN, and one with the key's
 * id must not take the identity over. Others are skipped with a warning naming them (once
 * per certificate per process). */
int phc__hsm_identity_pinned(phc_hsm *h, const char *cert_ref, long long now,
                             const phc_trust *trust, EVP_PKEY **key_out, X509 **cert_out,
                             phc_errbuf *err);

/* Token label, for messages. Borrowed. */
const char *phc__hsm_token_label(const phc_hsm *h);

/* Logs out, releases slots and unloads the module. NULL allowed. */
void phc__hsm_free(phc_hsm *h);

#endif
