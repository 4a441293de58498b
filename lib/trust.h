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
PHC_WUR int phc__trust_load(phc_trust **out, const char *ca_file, const unsigned char (*pins)[32],
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
 * given purpose (X509_PURPOSE_SSL_CLIENT / _SSL_SERVER) at time now, by phc__trust_check
 * under the trust's profile. On failure: PHC_ERR_TRUST with the subject, issuer and reason. */
PHC_WUR int phc__trust_verify(const phc_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
                              int purpose, long long now, phc_errbuf *err);

/* Length of a certificate description in messages; longer names are shortened in the middle
 * so that three of them and the reason still fit one phc_errbuf line. */
#define PHC_NAME_MAX 112

/* The outcome of one verification, in the terms messages need. */
typedef struct phc_verdict {
    int error;                  /* 0, an X509_V_ERR_* or a PHC_RULE_* (x509_profile.h) */
    int depth;                  /* of the certificate at fault */
    int partial;                /* 1: trusted at a pinned intermediate (partial chain) */
    int leaf_has_san;           /* the leaf has a subjectAltName extension */
    char subject[PHC_NAME_MAX]; /* the leaf (phc__cert_str) */
    char issuer[PHC_NAME_MAX];  /* the leaf's issuer name */
    char failed[PHC_NAME_MAX];  /* the certificate at depth */
    char anchor[PHC_NAME_MAX];  /* the certificate the chain ended at */
    char detail[192];           /* specifics of a rule of ours, or "" */
} phc_verdict;

/* The one verification every path uses (TLS connections, install, phc check --trust): leaf +
 * untrusted against the pinned anchors only, security level 2, the profile (x509_profile.h),
 * the host (DNS name or IP literal, only from subjectAltName; NULL: no name check) at time at
 * (0: now), and the chain must end at a pinned certificate. relax: a PHC_RELAX_* mask
 * (x509_profile.h), or -1 for the trust's own profile (what connections and install use).
 * Returns 1 accepted, 0 refused (*v says why), -1 when verification could not run (out of
 * memory). chain_out (may be NULL) receives the verified chain on acceptance (caller frees
 * with sk_X509_pop_free). */
PHC_WUR int phc__trust_check(const phc_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
                             int purpose, const char *host, long long at, int relax, phc_verdict *v,
                             STACK_OF(X509) * *chain_out);

/* phc__trust_check with the trust's own profile for the connection path: on acceptance the
 * verdict's subject, issuer and anchor stay empty unless the chain is partial (they are
 * formatted only to be shown). */
PHC_WUR int phc__trust_check_lean(const phc_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
                                  int purpose, const char *host, long long at, phc_verdict *v,
                                  STACK_OF(X509) * *chain_out);

/* One-line refusal into err: "<what> '<subject>' issued by '<issuer>' <reason>"; returns
 * PHC_ERR_TRUST. host as given to phc__trust_check (NULL: none). */
int phc__trust_refusal(phc_errbuf *err, const char *what, const phc_verdict *v, const char *host,
                       const phc_trust *t);

/* The profile (PHC_X509_STRICT / PHC_X509_COMPATIBLE) verifications use; set once after
 * loading, before the trust is shared. Default strict. */
void phc__trust_set_profile(phc_trust *t, int profile);

/* The pinned CA file's path. Borrowed. */
const char *phc__trust_ca_file(const phc_trust *t);

/* One more reference; returns t. Thread-safe. */
phc_trust *phc__trust_ref(phc_trust *t);

/* Drops a reference; the last one frees. NULL allowed. */
void phc__trust_free(phc_trust *t);

/* RFC 2253 form of a name ("CN=api.powerhub.test,O=Tesla") for messages; a name longer than
 * outlen - 1 is shortened in the middle ("CN=a...,O=z"), so both ends stay readable. */
void phc__name_str(char *out, size_t outlen, const X509_NAME *name);

/* A certificate for messages: its subject, or for an empty subject
 * "(empty subject, serial 0x0A1B, SAN api.example)". Shortened in the middle to fit. */
void phc__cert_str(char *out, size_t outlen, X509 *cert);

#endif
