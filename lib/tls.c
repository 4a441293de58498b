#include "tls.h"

#include "config.h"
#include "err.h"
#include "log.h"
#include "x509_profile.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct phc_tls {
    const phc_trust *trust;
    EVP_PKEY *key;
    X509 *cert;
    char *host;
    int min_tls; /* TLS1_2_VERSION or TLS1_3_VERSION */
    const phc_log *log;
    char client_subject[256];
};

/* The verify callback reaches its transfer's report and the pinned anchors through the
 * SSL_CTX; libcurl owns the SSL_CTX, so the link is ex_data rather than a global. */
struct verify_link {
    const phc_tls *tls;
    phc_tls_report *report;
};

static int ctx_index = -1;
static pthread_once_t ctx_index_once = PTHREAD_ONCE_INIT;

static void free_link(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void make_index(void)
{
    ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_link);
}

int phc__tls_new(phc_tls **out, const phc_trust *trust, EVP_PKEY *key, X509 *cert,
                 const phc_config *cfg, const phc_log *log, phc_errbuf *err)
{
    const char *host = cfg->host;
    *out = NULL;
    pthread_once(&ctx_index_once, make_index);
    if (ctx_index < 0)
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot allocate SSL_CTX ex_data index");
    phc_tls *t = calloc(1, sizeof(*t));
    if (!t || !(t->host = strdup(host))) {
        free(t);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    t->trust = trust;
    t->key = key;
    t->cert = cert;
    t->min_tls = cfg->min_tls_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    t->log = log;
    if (cert) {
        X509_up_ref(cert);
        phc__name_str(t->client_subject, sizeof(t->client_subject), X509_get_subject_name(cert));
    } else {
        snprintf(t->client_subject, sizeof(t->client_subject), "(none: client credentials)");
    }
    *out = t;
    return PHC_OK;
}

int phc__tls_verify_chain(const phc_tls *t, X509 *leaf, STACK_OF(X509) * untrusted, long long at,
                          phc_tls_report *report, STACK_OF(X509) * *chain_out)
{
    phc_tls_report local;
    phc_tls_report *r = report ? report : &local;
    int ok = phc__trust_check_lean(t->trust, leaf, untrusted, X509_PURPOSE_SSL_SERVER, t->host, at,
                                   &r->v, chain_out);
    r->failed = ok != 1;
    if (ok == 1 && r->v.partial)
        phc__log(t->log, PHC_LOG_INFO,
                 "server certificate '%s' trusted at the pinned intermediate '%s' (partial "
                 "chain: ca_file pins a CA that is not self-signed)",
                 r->v.subject, r->v.anchor);
    return ok;
}

/* Replaces OpenSSL's chain verification for the connection. The SSL_CTX belongs to libcurl,
 * which may load its own CA file, CA path or cached store into the SSL_CTX's store at any
 * point of the handshake (the version-dependent trap this library exists to beat). So the
 * SSL_CTX's store and verification parameters are never consulted: the peer's chain is
 * verified in a context of our own (phc__trust_check) against the pinned store, which
 * libcurl never sees, and the chain must end at a pinned certificate. */
static int app_verify(X509_STORE_CTX *sctx, void *arg)
{
    struct verify_link *link = arg;
    STACK_OF(X509) *chain = NULL;
    int ok = phc__tls_verify_chain(link->tls, X509_STORE_CTX_get0_cert(sctx),
                                   X509_STORE_CTX_get0_untrusted(sctx), 0, link->report, &chain);
    if (ok == 1)
        X509_STORE_CTX_set0_verified_chain(sctx, chain);
    /* Our own rule codes are negative; OpenSSL gets a generic one (the report keeps ours). */
    int error = X509_V_OK;
    if (ok != 1) {
        error = link->report ? link->report->v.error : X509_V_ERR_APPLICATION_VERIFICATION;
        if (error <= 0)
            error = X509_V_ERR_APPLICATION_VERIFICATION;
    }
    X509_STORE_CTX_set_error(sctx, error);
    return ok == 1;
}

int phc__tls_configure(const phc_tls *t, SSL_CTX *ctx, phc_tls_report *report, phc_errbuf *err)
{
    struct verify_link *link = calloc(1, sizeof(*link));
    if (!link)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    link->tls = t;
    link->report = report;
    /* Owned by the SSL_CTX from here on (freed by its ex_data destructor). */
    if (!SSL_CTX_set_ex_data(ctx, ctx_index, link)) {
        free(link);
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot attach verification state");
    }
    /* Our policy, whatever OPENSSL_CONF's system_default put into the context libcurl made:
     * versions, ciphers, groups, signature algorithms, security level, renegotiation. */
    if (!SSL_CTX_set_min_proto_version(ctx, t->min_tls) || !SSL_CTX_set_max_proto_version(ctx, 0) ||
        !SSL_CTX_set_cipher_list(ctx, PHC_TLS12_CIPHERS) ||
        !SSL_CTX_set_ciphersuites(ctx, PHC_TLS13_SUITES) ||
        !SSL_CTX_set1_groups_list(ctx, PHC_TLS_GROUPS) ||
        !SSL_CTX_set1_sigalgs_list(ctx, PHC_TLS_SIGALGS) ||
        !SSL_CTX_set1_client_sigalgs_list(ctx, PHC_TLS_SIGALGS))
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot set the TLS policy");
    SSL_CTX_set_security_level(ctx, PHC_SECURITY_LEVEL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Options an OPENSSL_CONF may set that would weaken a connection: legacy renegotiation,
     * TLS 1.2 without extended master secret, TLS 1.3 resumption without (EC)DHE, and a
     * truncation taken for a clean close. */
    SSL_CTX_clear_options(ctx,
                          SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION |
                              SSL_OP_ALLOW_CLIENT_RENEGOTIATION | SSL_OP_NO_EXTENDED_MASTER_SECRET |
                              SSL_OP_ALLOW_NO_DHE_KEX | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, app_verify, link);
    if (!t->cert)
        return PHC_OK;
    if (SSL_CTX_use_certificate(ctx, t->cert) != 1)
        return phc__err_ossl(err, PHC_ERR_HSM, "client certificate '%s' refused by OpenSSL",
                             t->client_subject);
    if (SSL_CTX_use_PrivateKey(ctx, t->key) != 1)
        return phc__err_ossl(err, PHC_ERR_HSM,
                             "token key refused by OpenSSL for client certificate '%s'",
                             t->client_subject);
    return PHC_OK;
}

int phc__tls_report_err(const phc_tls *t, const phc_tls_report *r, phc_errbuf *err)
{
    return phc__trust_refusal(err, "server certificate", &r->v, t->host, t->trust);
}

const char *phc__tls_client_subject(const phc_tls *t)
{
    return t->client_subject;
}

X509 *phc__tls_client_cert(const phc_tls *t)
{
    return t ? t->cert : NULL;
}

void phc__tls_free(phc_tls *t)
{
    if (!t)
        return;
    X509_free(t->cert);
    free(t->host);
    free(t);
}
