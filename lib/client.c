/* The client handle: everything configured once (trust, token identity, TLS settings, the
 * shared TLS session cache) plus a pool of transfer handles so that each thread reuses a
 * warm connection without holding a lock during a request. */
#include "auth.h"
#include "config.h"
#include "err.h"
#include "hsm.h"
#include "http.h"
#include "log.h"
#include "tls.h"
#include "trust.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Idle transfer handles kept per client; more threads than this still work, their extra
 * handles (and connections) are closed when returned. */
#define POOL_MAX 32

struct phc_client {
    phc_config *cfg;
    phc_log log;
    phc_trust *trust;
    phc_hsm *hsm;
    phc_tls *tls;
    EVP_PKEY *key;  /* borrowed from hsm; NULL without a certificate */
    phc_auth *auth; /* NULL without client credentials */
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    phc_http_setup setup;
    pthread_mutex_t pool_mu;
    phc_xfer *idle[POOL_MAX];
    size_t nidle;
};

int phc_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? PHC_OK : PHC_ERR_INTERNAL;
}

void phc_global_cleanup(void)
{
    curl_global_cleanup();
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    phc_client *c = ud;
    pthread_mutex_lock(&c->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    phc_client *c = ud;
    pthread_mutex_unlock(&c->share_mu[data]);
}

static int make_share(phc_client *c, phc_errbuf *err)
{
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_mu[i], NULL);
    c->share = curl_share_init();
    if (!c->share || curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        return phc__err(err, PHC_ERR_INTERNAL, "cannot set up the TLS session cache");
    return PHC_OK;
}

int phc_client_new(phc_client **out, phc_config *cfg, const phc_client_opts *opts, phc_errbuf *err)
{
    *out = NULL;
    int rc = phc_config_validate(cfg, err);
    if (rc != PHC_OK)
        return rc;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    phc_client *c = calloc(1, sizeof(*c));
    if (!c)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    pthread_mutex_init(&c->pool_mu, NULL);
    c->cfg = phc__config_ref(cfg);
    if (opts) {
        c->log.fn = opts->log;
        c->log.ud = opts->log_userdata;
        c->log.level = opts->level;
    }
    if ((rc = phc__trust_load(&c->trust, cfg->ca_file, (const unsigned char(*)[32])cfg->ca_sha256,
                              cfg->n_ca_sha256, err)) != PHC_OK)
        goto out;
    /* Without a key the client authenticates with client credentials only (validate made
     * sure one of the two is configured). */
    if (cfg->key) {
        if ((rc = phc__hsm_open(&c->hsm, cfg->pkcs11_module, cfg->key, cfg->pin, &c->log, err)) !=
            PHC_OK)
            goto out;
        if ((rc = phc__hsm_identity(c->hsm, cfg->cert, (long long)time(NULL), &key, &cert, err)) !=
            PHC_OK)
            goto out;
    }
    if (cfg->client_id && (rc = phc__auth_new(&c->auth, c->cfg, &c->log, err)) != PHC_OK)
        goto out;
    if ((rc = phc__tls_new(&c->tls, c->trust, key, cert, cfg->host, err)) != PHC_OK)
        goto out;
    if ((rc = make_share(c, err)) != PHC_OK)
        goto out;
    c->key = key;
    c->setup.cfg = c->cfg;
    c->setup.tls = c->tls;
    c->setup.share = c->share;
    c->setup.log = &c->log;
    *out = c;
    c = NULL;
out:
    X509_free(cert);
    phc_client_free(c);
    return rc;
}

static int acquire(phc_client *c, phc_xfer **out, phc_errbuf *err)
{
    pthread_mutex_lock(&c->pool_mu);
    *out = c->nidle ? c->idle[--c->nidle] : NULL;
    pthread_mutex_unlock(&c->pool_mu);
    return *out ? PHC_OK : phc__xfer_new(out, &c->setup, err);
}

static void release(phc_client *c, phc_xfer *x)
{
    pthread_mutex_lock(&c->pool_mu);
    if (c->nidle < POOL_MAX) {
        c->idle[c->nidle++] = x;
        x = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    phc__xfer_free(x);
}

/* One request on a pooled transfer handle, without authentication headers. */
static int perform_plain(void *ud, const phc_request *req, phc_response **out, phc_errbuf *err)
{
    phc_client *c = ud;
    *out = NULL;
    phc_xfer *x = NULL;
    int rc = acquire(c, &x, err);
    if (rc != PHC_OK)
        return rc;
    rc = phc__xfer_perform(x, req, out, err);
    release(c, x);
    return rc;
}

int phc_client_request(phc_client *c, phc_response **out, const phc_request *req, phc_errbuf *err)
{
    *out = NULL;
    if (!c)
        return phc__err(err, PHC_ERR_CONFIG, "no client");
    if (c->auth)
        return phc__auth_request(c->auth, perform_plain, c, req, out, err);
    return perform_plain(c, req, out, err);
}

int phc_client_sign_test(phc_client *c, int n, double *seconds, phc_errbuf *err)
{
    *seconds = 0;
    if (!c || !c->key)
        return phc__err(err, PHC_ERR_CONFIG, "the client has no token key to sign with");
    unsigned char msg[64] = "phconnect signing test";
    unsigned char sig[1024];
    int is_rsa = EVP_PKEY_get_base_id(c->key) == EVP_PKEY_RSA;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        size_t siglen = sizeof(sig);
        msg[0] = (unsigned char)i;
        int ok = md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, c->key) == 1 &&
                 (!is_rsa || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1) &&
                 EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) == 1;
        EVP_MD_CTX_free(md);
        if (!ok)
            return phc__err_ossl(err, PHC_ERR_HSM, "token refused to sign (signature %d of %d)",
                                 i + 1, n);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return PHC_OK;
}

void phc_client_free(phc_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        phc__xfer_free(c->idle[i]);
    /* Handles are gone, so the share is no longer in use and may be cleaned up. */
    if (c->share)
        curl_share_cleanup(c->share);
    for (int i = 0; c->share && i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_mu[i]);
    pthread_mutex_destroy(&c->pool_mu);
    phc__auth_free(c->auth);
    phc__tls_free(c->tls);
    phc__hsm_free(c->hsm);
    phc__trust_free(c->trust);
    phc_config_free(c->cfg);
    free(c);
}
