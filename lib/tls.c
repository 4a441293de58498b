#include "tls.h"

#include "err.h"

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
    int host_is_ip;
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

static int is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int phc__tls_new(phc_tls **out, const phc_trust *trust, EVP_PKEY *key, X509 *cert, const char *host,
                 phc_errbuf *err)
{
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
    t->host_is_ip = is_ip_literal(host);
    if (cert) {
        X509_up_ref(cert);
        phc__name_str(t->client_subject, sizeof(t->client_subject), X509_get_subject_name(cert));
    } else {
        snprintf(t->client_subject, sizeof(t->client_subject), "(none: client credentials)");
    }
    *out = t;
    return PHC_OK;
}

/* Records the first refusal for the operator's message. Runs inside our own verification
 * context, whose app data is the transfer's report. */
static int record_cb(int ok, X509_STORE_CTX *v)
{
    phc_tls_report *r = X509_STORE_CTX_get_app_data(v);
    if (!ok && r && !r->failed) {
        r->failed = 1;
        r->error = X509_STORE_CTX_get_error(v);
        r->depth = X509_STORE_CTX_get_error_depth(v);
        X509 *bad = X509_STORE_CTX_get_current_cert(v);
        if (bad)
            phc__name_str(r->failed_subject, sizeof(r->failed_subject), X509_get_subject_name(bad));
    }
    return ok;
}

/* Replaces OpenSSL's chain verification for the connection. The SSL_CTX belongs to libcurl,
 * which may load its own CA file, CA path or cached store into the SSL_CTX's store at any
 * point of the handshake (the version-dependent trap this library exists to beat). So the
 * SSL_CTX's store is never consulted: the peer's chain is verified here against the pinned
 * store, which libcurl never sees, and the chain must end at a pinned certificate. */
static int app_verify(X509_STORE_CTX *sctx, void *arg)
{
    struct verify_link *link = arg;
    const phc_tls *t = link->tls;
    phc_tls_report *r = link->report;
    X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
    int ok = 0, error = X509_V_ERR_UNSPECIFIED;
    X509_STORE_CTX *v = NULL;

    if (!leaf)
        goto out;
    if (r) {
        phc__name_str(r->subject, sizeof(r->subject), X509_get_subject_name(leaf));
        phc__name_str(r->issuer, sizeof(r->issuer), X509_get_issuer_name(leaf));
    }
    v = X509_STORE_CTX_new();
    if (!v || !X509_STORE_CTX_init(v, phc__trust_store(t->trust), leaf,
                                   X509_STORE_CTX_get0_untrusted(sctx)))
        goto out;
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(v);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (!(t->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, t->host)
                        : X509_VERIFY_PARAM_set1_host(param, t->host, 0)) ||
        !X509_STORE_CTX_set_purpose(v, X509_PURPOSE_SSL_SERVER))
        goto out;
    X509_STORE_CTX_set_app_data(v, r);
    X509_STORE_CTX_set_verify_cb(v, record_cb);
    ok = X509_verify_cert(v) == 1;
    error = X509_STORE_CTX_get_error(v);
    if (ok) {
        STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(v);
        X509 *top = sk_X509_value(chain, sk_X509_num(chain) - 1);
        if (!phc__trust_is_pinned(t->trust, top)) {
            ok = 0;
            error = X509_V_ERR_CERT_UNTRUSTED;
            if (r && !r->failed) {
                r->failed = 1;
                r->error = 0;
                phc__name_str(r->failed_subject, sizeof(r->failed_subject),
                              X509_get_subject_name(top));
            }
        } else {
            X509_STORE_CTX_set0_verified_chain(sctx, X509_STORE_CTX_get1_chain(v));
        }
    }
out:
    if (!ok && r && !r->failed) {
        r->failed = 1;
        r->error = error;
    }
    X509_STORE_CTX_set_error(sctx, ok ? X509_V_OK : error);
    X509_STORE_CTX_free(v);
    return ok;
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
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot require TLS 1.2");
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
    const char *subj = r->subject[0] ? r->subject : "(none presented)";
    const char *iss = r->issuer[0] ? r->issuer : "(unknown)";
    if (r->error == 0)
        return phc__err(err, PHC_ERR_TRUST,
                        "server certificate '%s' issued by '%s' refused: its chain ends at "
                        "'%s', which is not a pinned CA",
                        subj, iss, r->failed_subject);
    const char *why = X509_verify_cert_error_string(r->error);
    switch (r->error) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return phc__err(err, PHC_ERR_TRUST,
                        "server certificate '%s' issued by '%s' refused: not valid for host "
                        "'%s'",
                        subj, iss, t->host);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return phc__err(err, PHC_ERR_TRUST,
                        "server certificate '%s' issued by '%s' refused: not issued by a "
                        "pinned CA (%s at '%s')",
                        subj, iss, why, r->failed_subject);
    default:
        return phc__err(err, PHC_ERR_TRUST,
                        "server certificate '%s' issued by '%s' refused: %s (certificate "
                        "'%s')",
                        subj, iss, why, r->failed_subject);
    }
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
