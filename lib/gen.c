#include "gen.h"

#include "conn_gate.h"
#include "curl_load.h"
#include "err.h"
#include "hsm.h"
#include "sign_guard.h"
#include "tls.h"
#include "tokendir.h"
#include "util_time.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <time.h>
#include <pthread.h>
#include <stdlib.h>

/* Idle transfer handles kept per generation; more threads than this still work, their extra
 * handles (and connections) are closed when returned. */
#define POOL_MAX 32

struct phc_gen {
    int refs;         /* atomic */
    phc_config *cfg;  /* references of the generation's own: a reload may replace the */
    phc_trust *trust; /* client's, and connections made under these live as long as it */
    phc_log log;      /* a copy: a generation may outlive the caller's (see client.c) */
    phc_hsm *hsm;     /* NULL without a key */
    EVP_PKEY *key;    /* borrowed from hsm */
    X509 *cert;       /* owned */
    phc_tls *tls;
    CURLSH *share;
    int share_mu_ready;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    phc_http_setup setup;
    pthread_mutex_t pool_mu;
    phc_xfer *idle[POOL_MAX];
    size_t nidle;
    phc_conn_gate gate; /* new connections one at a time (conn_gate.h) */
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    phc_gen *g = ud;
    pthread_mutex_lock(&g->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    phc_gen *g = ud;
    pthread_mutex_unlock(&g->share_mu[data]);
}

static int make_share(phc_gen *g, phc_errbuf *err)
{
    int rc = phc__curl_ready(err); /* the generation's transfers are its first libcurl use */
    if (rc != PHC_OK)
        return rc;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&g->share_mu[i], NULL);
    g->share_mu_ready = 1;
    g->share = curl_share_init();
    if (!g->share || curl_share_setopt(g->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(g->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(g->share, CURLSHOPT_USERDATA, g) != CURLSHE_OK ||
        curl_share_setopt(g->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        return phc__err(err, PHC_ERR_INTERNAL, "cannot set up the TLS session cache");
    return PHC_OK;
}

/* Token handles whose module call never returned: freeing one would pull libp11's state out
 * from under the abandoned worker, so they are kept (and stay reachable) for the life of the
 * process. Each is one hang event; the array only bounds what is remembered. */
static pthread_mutex_t graveyard_mu = PTHREAD_MUTEX_INITIALIZER;
static phc_hsm *graveyard[64];
static size_t ngraveyard;

static void bury(phc_hsm *h)
{
    pthread_mutex_lock(&graveyard_mu);
    if (ngraveyard < sizeof(graveyard) / sizeof(graveyard[0]))
        graveyard[ngraveyard++] = h;
    pthread_mutex_unlock(&graveyard_mu);
}

static void gen_free(phc_gen *g)
{
    for (size_t i = 0; i < g->nidle; i++)
        phc__xfer_free(g->idle[i]);
    /* Every handle that used the share is gone, so it may be cleaned up. */
    if (g->share)
        curl_share_cleanup(g->share);
    for (int i = 0; g->share_mu_ready && i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&g->share_mu[i]);
    pthread_mutex_destroy(&g->pool_mu);
    phc__conn_gate_destroy(&g->gate);
    phc__tls_free(g->tls);
    X509_free(g->cert);
    /* The key goes before the token handle: dropping the last reference to libp11's key
     * runs libp11 code that needs the handle. */
    int stuck = g->key && phc__guard_stuck(g->key);
    EVP_PKEY_free(g->key);
    if (stuck)
        bury(g->hsm);
    else
        phc__hsm_free(g->hsm);
    phc__trust_free(g->trust);
    phc_config_free(g->cfg);
    free(g);
}

int phc__gen_new(phc_gen **out, const phc_config *cfg, const phc_trust *trust, const phc_log *log,
                 long long now, phc_pin_latch *latch, phc_errbuf *err)
{
    *out = NULL;
    int rc;
    phc_gen *g = calloc(1, sizeof(*g));
    if (!g)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    g->refs = 1;
    g->cfg = phc__config_ref((phc_config *)cfg);
    g->trust = phc__trust_ref((phc_trust *)trust);
    if (log)
        g->log = *log;
    pthread_mutex_init(&g->pool_mu, NULL);
    phc__conn_gate_init(&g->gate);
    if (cfg->key) {
        if ((rc = phc__hsm_open_latched(&g->hsm, cfg->pkcs11_module, cfg->key, cfg->pin, &g->log,
                                        latch, err)) != PHC_OK) {
            rc = phc__tokendir_explain(rc, cfg->pkcs11_module, err);
            goto out;
        }
        EVP_PKEY *token_key = NULL;
        if ((rc = phc__hsm_identity_pinned(g->hsm, cfg->cert, now, trust, &token_key, &g->cert,
                                           err)) != PHC_OK)
            goto out;
        /* A signature is part of the handshake, so it gets the handshake's time bound. */
        if ((rc = phc__guard_key(&g->key, token_key, cfg->connect_timeout * 1000,
                                 phc__hsm_token_label(g->hsm), err)) != PHC_OK)
            goto out;
    }
    if ((rc = phc__tls_new(&g->tls, trust, g->key, g->cert, cfg, &g->log, err)) != PHC_OK)
        goto out;
    if ((rc = make_share(g, err)) != PHC_OK)
        goto out;
    g->setup.cfg = cfg;
    g->setup.tls = g->tls;
    g->setup.share = g->share;
    g->setup.log = &g->log;
    *out = g;
    g = NULL;
out:
    if (g)
        gen_free(g);
    return rc;
}

int phc__gen_same_identity(const phc_gen *a, const phc_gen *b)
{
    if (!a->cert || !b->cert)
        return a->cert == b->cert;
    return X509_cmp(a->cert, b->cert) == 0;
}

phc_gen *phc__gen_ref(phc_gen *g)
{
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
    return g;
}

void phc__gen_unref(phc_gen *g)
{
    if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
        gen_free(g);
}

/* An idle handle with its kept-alive connection, else a new one (*fresh = 1: it has no
 * connection yet). */
static int acquire(phc_gen *g, phc_xfer **out, int *fresh, phc_errbuf *err)
{
    pthread_mutex_lock(&g->pool_mu);
    *out = g->nidle ? g->idle[--g->nidle] : NULL;
    pthread_mutex_unlock(&g->pool_mu);
    *fresh = *out == NULL;
    return *out ? PHC_OK : phc__xfer_new(out, &g->setup, err);
}

struct gate_turn {
    phc_conn_gate *gate;
    unsigned long turn;
};

static void session_stored(void *ud)
{
    struct gate_turn *t = ud;
    phc__conn_gate_leave(t->gate, t->turn);
}

static void release(phc_gen *g, phc_xfer *x)
{
    pthread_mutex_lock(&g->pool_mu);
    if (g->nidle < POOL_MAX) {
        g->idle[g->nidle++] = x;
        x = NULL;
    }
    pthread_mutex_unlock(&g->pool_mu);
    phc__xfer_free(x);
}

int phc__gen_perform(phc_gen *g, const phc_request *req, phc_response **out, int *unsent,
                     phc_errbuf *err)
{
    *out = NULL;
    *unsent = 0;
    phc_xfer *x = NULL;
    int fresh = 0;
    int rc = acquire(g, &x, &fresh, err);
    if (rc != PHC_OK) {
        *unsent = 1; /* nothing was attempted */
        return rc;
    }
    /* A new handle connects; so does a request never sent on a reused connection
     * (phc__xfer_perform: a fresh one asked for, or one not to be sent twice). One that
     * resumes no session has nothing to wait for. */
    int connects =
        !(req->flags & PHC_REQ_NO_SESSION_REUSE) &&
        (fresh || (req->flags & PHC_REQ_FRESH_CONNECTION) || !phc__request_idempotent(req));
    struct gate_turn t = {&g->gate, 0};
    if (connects) {
        t.turn = phc__conn_gate_enter(&g->gate);
        phc__xfer_on_session(x, session_stored, &t);
    }
    rc = phc__xfer_perform(x, req, out, err);
    if (connects) {
        phc__xfer_on_session(x, NULL, NULL);
        phc__conn_gate_leave(&g->gate, t.turn);
    }
    *unsent = phc__xfer_unsent(x);
    release(g, x);
    return rc;
}

int phc__gen_sign(phc_gen *g, int n, double *seconds, phc_errbuf *err)
{
    *seconds = 0;
    if (!g->key)
        return phc__err(err, PHC_ERR_CONFIG, "the client has no token key to sign with");
    unsigned char msg[64] = "phconnect signing test";
    unsigned char sig[1024];
    int is_rsa = EVP_PKEY_get_base_id(g->key) == EVP_PKEY_RSA;
    double t0 = phc__mono_seconds();
    for (int i = 0; i < n; i++) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        size_t siglen = sizeof(sig);
        msg[0] = (unsigned char)i;
        int ok = md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, g->key) == 1 &&
                 (!is_rsa || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1) &&
                 EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) == 1;
        EVP_MD_CTX_free(md);
        const char *stuck = ok ? NULL : phc__guard_stuck(g->key);
        if (stuck) {
            ERR_clear_error();
            return phc__err(err, PHC_ERR_HSM, "%s", stuck);
        }
        if (!ok)
            return phc__err_ossl(err, PHC_ERR_HSM, "token '%s' did not sign (signature %d of %d)",
                                 phc__hsm_token_label(g->hsm), i + 1, n);
    }
    *seconds = phc__mono_seconds() - t0;
    return PHC_OK;
}

int phc__gen_has_key(const phc_gen *g)
{
    return g->key != NULL;
}

X509 *phc__gen_cert(const phc_gen *g)
{
    return g->cert;
}

const phc_trust *phc__gen_trust(const phc_gen *g)
{
    return g->trust;
}
