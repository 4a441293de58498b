/* The pinned trust store: built from ca_file alone (never a system path, never SSL_CERT_*),
 * optionally checked against SHA-256 fingerprints. It is the single source of trust for the
 * server certificate and for certificates handed to `phc install`. */
#ifndef PHC_TRUST_H
#define PHC_TRUST_H

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <phconnect/phconnect.h>

typedef struct phc_trust phc_trust;

/* Loads every certificate in ca_file (PEM). With pins (npins > 0), each certificate's
 * SHA-256 must be one of pins and each pin must be present, else PHC_ERR_CONFIG naming the
 * certificate and its fingerprint. An empty or unreadable file is PHC_ERR_CONFIG. */
int phc__trust_load(phc_trust **out, const char *ca_file, const unsigned char (*pins)[32],
                    size_t npins, phc_errbuf *err);

/* The store holding only the pinned CAs. Borrowed: X509_STORE_up_ref it to keep it. */
X509_STORE *phc__trust_store(const phc_trust *t);

/* 1 when cert is one of the pinned certificates (compared by DER), else 0. */
int phc__trust_is_pinned(const phc_trust *t, const X509 *cert);

/* 1 when a and b pin the same certificates (each file's duplicates aside). */
int phc__trust_same(const phc_trust *a, const phc_trust *b);

/* How many certificates are pinned. */
int phc__trust_count(const phc_trust *t);

/* Earliest notAfter among the pinned CAs (for status/check), as seconds since the epoch. */
long long phc__trust_earliest_expiry(const phc_trust *t);

/* Verifies leaf (+ untrusted intermediates, may be NULL) against the pinned store for the
 * given purpose (X509_PURPOSE_SSL_CLIENT / _SSL_SERVER) at time now. On failure:
 * PHC_ERR_TRUST with the subject, issuer and OpenSSL's reason. */
int phc__trust_verify(const phc_trust *t, X509 *leaf, STACK_OF(X509) * untrusted, int purpose,
                      long long now, phc_errbuf *err);

/* One more reference; returns t. Thread-safe. */
phc_trust *phc__trust_ref(phc_trust *t);

/* Drops a reference; the last one frees. NULL allowed. */
void phc__trust_free(phc_trust *t);

/* RFC 2253 form of a name ("CN=api.powerhub.test,O=Tesla") for messages; truncated to fit. */
void phc__name_str(char *out, size_t outlen, const X509_NAME *name);

#endif
