/* Joins the pinned trust store and the token identity into the TLS settings of one
 * connection. libcurl makes a fresh SSL_CTX per connection and hands it to
 * phc__tls_configure, which replaces everything trust-related that libcurl may have put
 * there (its built-in CA path above all) with the pinned store. */
#ifndef PHC_TLS_H
#define PHC_TLS_H

#include "trust.h"

#include <openssl/ssl.h>

/* Why a handshake's verification failed, in terms an operator can act on. Filled by the
 * verify callback; one per transfer. */
typedef struct phc_tls_report {
    int failed;    /* 1 when verification refused the server */
    phc_verdict v; /* why (trust.h) */
} phc_tls_report;

/* Our TLS policy, set on every connection's SSL_CTX after anything OPENSSL_CONF's
 * system_default section put there: TLS 1.2 only with ECDHE key exchange and AEAD ciphers,
 * TLS 1.3 with its three standard AEAD suites. */
#define PHC_TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define PHC_TLS13_SUITES                                                                           \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define PHC_TLS_GROUPS "X25519:P-256:X448:P-384:P-521"
/* OpenSSL 3.0's default list without SHA-1 and SHA-224. */
#define PHC_TLS_SIGALGS                                                                            \
    "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:ed25519:ed448:rsa_pss_pss_sha256:"                     \
    "rsa_pss_pss_sha384:rsa_pss_pss_sha512:rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:"               \
    "rsa_pss_rsae_sha512:RSA+SHA256:RSA+SHA384:RSA+SHA512"

typedef struct phc_tls phc_tls;

struct phc_config;
struct phc_log;

/* trust: borrowed, must outlive the result. key: borrowed (owned by the HSM handle), cert:
 * the client certificate, up-referenced; both NULL for a client without a certificate
 * (client credentials only). cfg: its host (checked against the server certificate) and
 * min_tls_version are copied. log: borrowed, may be NULL, must outlive the result. */
PHC_WUR int phc__tls_new(phc_tls **out, const phc_trust *trust, EVP_PKEY *key, X509 *cert,
                         const struct phc_config *cfg, const struct phc_log *log, phc_errbuf *err);

/* Runs the very verification a connection runs (the verify callback's) on leaf + untrusted,
 * filling report; at: 0 for now. Returns 1 accepted, 0 refused, -1 could not run. chain_out
 * as in phc__trust_check. */
PHC_WUR int phc__tls_verify_chain(const phc_tls *t, X509 *leaf, STACK_OF(X509) * untrusted,
                                  long long at, phc_tls_report *report,
                                  STACK_OF(X509) * *chain_out);

/* Configures a connection's SSL_CTX. report: borrowed until the handshake ends. Returns 0
 * or PHC_ERR_INTERNAL / PHC_ERR_HSM (key or certificate refused by OpenSSL). */
PHC_WUR int phc__tls_configure(const phc_tls *t, SSL_CTX *ctx, phc_tls_report *report,
                               phc_errbuf *err);

/* One-line description of a refusal into err (PHC_ERR_TRUST); returns PHC_ERR_TRUST. */
int phc__tls_report_err(const phc_tls *t, const phc_tls_report *r, phc_errbuf *err);

/* Subject of the client certificate, for -v output. Borrowed. */
const char *phc__tls_client_subject(const phc_tls *t);

/* The client certificate presented, or NULL (client credentials only, or t NULL). Borrowed. */
X509 *phc__tls_client_cert(const phc_tls *t);

void phc__tls_free(phc_tls *t);

#endif
