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
    int failed;        /* 1 when verification refused the server */
    int error;         /* X509_V_ERR_* (0 when the refusal is ours: chain not pinned) */
    int depth;         /* depth at which it failed */
    char subject[256]; /* the server's leaf certificate */
    char issuer[256];
    char failed_subject[256]; /* the certificate at `depth` */
} phc_tls_report;

typedef struct phc_tls phc_tls;

/* trust: borrowed, must outlive the result. key: borrowed (owned by the HSM handle), cert:
 * the client certificate, up-referenced; both NULL for a client without a certificate
 * (client credentials only). host: the URL's host name or IP literal, checked
 * against the server certificate. */
int phc__tls_new(phc_tls **out, const phc_trust *trust, EVP_PKEY *key, X509 *cert, const char *host,
                 phc_errbuf *err);

/* Configures a connection's SSL_CTX. report: borrowed until the handshake ends. Returns 0
 * or PHC_ERR_INTERNAL / PHC_ERR_HSM (key or certificate refused by OpenSSL). */
int phc__tls_configure(const phc_tls *t, SSL_CTX *ctx, phc_tls_report *report, phc_errbuf *err);

/* One-line description of a refusal into err (PHC_ERR_TRUST); returns PHC_ERR_TRUST. */
int phc__tls_report_err(const phc_tls *t, const phc_tls_report *r, phc_errbuf *err);

/* Subject of the client certificate, for -v output. Borrowed. */
const char *phc__tls_client_subject(const phc_tls *t);

/* The client certificate presented, or NULL (client credentials only, or t NULL). Borrowed. */
X509 *phc__tls_client_cert(const phc_tls *t);

void phc__tls_free(phc_tls *t);

#endif
