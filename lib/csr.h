/* PKCS#10 certificate requests signed by a key that stays on the token: the request is built
 * with OpenSSL, its to-be-signed part is signed with C_Sign (RSA: CKM_SHA256_RSA_PKCS; EC:
 * CKM_ECDSA over a SHA-256 digest, whose r||s is re-encoded as a DER ECDSA-Sig-Value), and
 * the self-signature is verified with OpenSSL before the PEM text is handed out. */
#ifndef PHC_CSR_H
#define PHC_CSR_H

#include "p11.h"

#include <openssl/x509.h>

/* Parses a distinguished name: "/O=Energy Co/CN=client" (OpenSSL's -subj form, first RDN
 * first) or "CN=client,O=Energy Co" (RFC 4514, last RDN first). Backslash escapes the next
 * character. Attribute names are OpenSSL's short or long names or dotted OIDs; values are
 * UTF-8. *out belongs to the caller. PHC_ERR_CONFIG naming the problem (never the whole
 * value, which is not secret but may be long). */
PHC_WUR int phc__dn_parse(X509_NAME **out, const char *subject, phc_errbuf *err);

/* A request for pub (the public half of token key priv on p) with subject; *pem_out is
 * OPENSSL_malloc'ed NUL-terminated PEM. */
PHC_WUR int phc__csr_make(char **pem_out, phc_p11 *p, CK_OBJECT_HANDLE priv, EVP_PKEY *pub,
                          const X509_NAME *subject, phc_errbuf *err);

#endif
