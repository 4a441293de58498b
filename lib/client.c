/* The client handle: what is configured once (config, pinned trust, credentials) and the
 * current identity generation (gen.c). Requests take a reference on the generation current
 * when they start; a reload swaps in a new one, and the old one - its connections and TLS
 * sessions with it - is freed when its last request returns. */
#include "auth.h"
#include "config.h"
#include "err.h"
#include "gen.h"
#include "log.h"
#include "trust.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 429/503 retries: at most this many attempts in all, waiting at most this many seconds. */
#define RETRY_ATTEMPTS 3
#define RETRY_BUDGET 30

struct phc_client {
    phc_config *cfg;
    phc_log log;
    phc_trust *trust;
    phc_auth *auth;     /* NULL without client credentials */
    pthread_mutex_t mu; /* guards cur */
    phc_gen *cur;
    pthread_mutex_t reload_mu; /* one reload at a time */
    long long next_check;      /* monotonic seconds; atomic */
};

int phc_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? PHC_OK : PHC_ERR_INTERNAL;
}

void phc_global_cleanup(void)
{
    curl_global_cleanup();
}

static long long mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

static void schedule_check(phc_client *c)
{
    long long when = c->cfg->reload_interval > 0 ? mono_now() + c->cfg->reload_interval : 0;
    __atomic_store_n(&c->next_check, when, __ATOMIC_RELAXED);
}

int phc_client_new(phc_client **out, phc_config *cfg, const phc_client_opts *opts, phc_errbuf *err)
{
    *out = NULL;
    int rc = phc_config_validate(cfg, err);
    if (rc != PHC_OK)
        return rc;
    phc_client *c = calloc(1, sizeof(*c));
    if (!c)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->reload_mu, NULL);
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
    if ((rc = phc__gen_new(&c->cur, c->cfg, c->trust, &c->log, (long long)time(NULL), err)) !=
        PHC_OK)
        goto out;
    if (cfg->client_id && (rc = phc__auth_new(&c->auth, c->cfg, &c->log, err)) != PHC_OK)
        goto out;
    schedule_check(c);
    *out = c;
    c = NULL;
out:
    phc_client_free(c);
    return rc;
}

static phc_gen *current(phc_client *c)
{
    pthread_mutex_lock(&c->mu);
    phc_gen *g = phc__gen_ref(c->cur);
    pthread_mutex_unlock(&c->mu);
    return g;
}

/* Caller holds reload_mu. */
static int reload_locked(phc_client *c, int *changed, phc_errbuf *err)
{
    phc_gen *fresh = NULL;
    int rc = phc__gen_new(&fresh, c->cfg, c->trust, &c->log, (long long)time(NULL), err);
    if (rc == PHC_OK) {
        pthread_mutex_lock(&c->mu);
        phc_gen *old = c->cur;
        int same = phc__gen_same_identity(old, fresh);
        if (!same) {
            c->cur = fresh;
            fresh = old;
        }
        pthread_mutex_unlock(&c->mu);
        if (!same) {
            X509 *cert = phc__gen_cert(c->cur);
            char subj[256] = "(none)";
            if (cert)
                phc__name_str(subj, sizeof(subj), X509_get_subject_name(cert));
            phc__log(&c->log, PHC_LOG_INFO,
                     "switched to client certificate '%s'; connections and TLS sessions made "
                     "with the previous one are no longer used",
                     subj);
            if (changed)
                *changed = 1;
        }
        /* fresh is now whichever generation is not current: the unused candidate, or the
         * old one, which lives on until its in-flight requests return. */
        phc__gen_unref(fresh);
    }
    schedule_check(c);
    return rc;
}

int phc_client_reload(phc_client *c, int *changed, phc_errbuf *err)
{
    if (changed)
        *changed = 0;
    if (!c)
        return phc__err(err, PHC_ERR_CONFIG, "no client");
    pthread_mutex_lock(&c->reload_mu);
    int rc = reload_locked(c, changed, err);
    pthread_mutex_unlock(&c->reload_mu);
    return rc;
}

/* The periodic check runs on the calling thread of the first request past the interval; a
 * failed check is logged and the client keeps its current identity. */
static void maybe_reload(phc_client *c)
{
    long long due = __atomic_load_n(&c->next_check, __ATOMIC_RELAXED);
    if (due == 0 || mono_now() < due)
        return;
    if (pthread_mutex_trylock(&c->reload_mu) != 0)
        return; /* another thread is checking */
    phc_errbuf e = {0};
    due = __atomic_load_n(&c->next_check, __ATOMIC_RELAXED);
    if (due != 0 && mono_now() >= due && reload_locked(c, NULL, &e) != PHC_OK)
        phc__log(&c->log, PHC_LOG_WARN, "periodic certificate check failed: %s", e.msg);
    pthread_mutex_unlock(&c->reload_mu);
}

/* Retrying is only safe where repeating the request cannot do something twice. */
static int idempotent(const phc_request *req)
{
    const char *m = req->method ? req->method : (req->body ? "POST" : "GET");
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
        if (strcmp(m, safe[i]) == 0)
            return 1;
    return 0;
}

/* Seconds to wait before retrying a 429/503, or -1 to give up. Only a numeric Retry-After
 * within what is left of the budget is honoured; an HTTP-date or none means 1 s. */
static long retry_delay(const phc_response *resp, long budget)
{
    const char *ra = phc_response_header(resp, "Retry-After");
    long wait = 1;
    if (ra && *ra) {
        char *end = NULL;
        long v = strtol(ra, &end, 10);
        if (end && *end == '\0' && v >= 0)
            wait = v;
    }
    return wait <= budget ? wait : -1;
}

/* One request on the current generation, without authentication headers. A 429 or 503 on
 * an idempotent request is retried after Retry-After, within a bounded budget. */
static int perform_plain(void *ud, const phc_request *req, phc_response **out, phc_errbuf *err)
{
    phc_client *c = ud;
    long budget = c->cfg->timeout < RETRY_BUDGET ? c->cfg->timeout : RETRY_BUDGET;
    for (int attempt = 1;; attempt++) {
        phc_gen *g = current(c);
        int rc = phc__gen_perform(g, req, out, err);
        phc__gen_unref(g);
        long status = phc_response_status(*out);
        if (rc != PHC_ERR_HTTP || (status != 429 && status != 503) || attempt >= RETRY_ATTEMPTS ||
            !idempotent(req))
            return rc;
        long wait = retry_delay(*out, budget);
        if (wait < 0)
            return rc;
        phc__log(&c->log, PHC_LOG_WARN,
                 "server answered %ld for %s; retrying in %ld s (attempt %d of %d)", status,
                 req->path, wait, attempt + 1, RETRY_ATTEMPTS);
        budget -= wait;
        phc_response_free(*out);
        *out = NULL;
        struct timespec ts = {.tv_sec = wait, .tv_nsec = 0};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
}

int phc_client_request(phc_client *c, phc_response **out, const phc_request *req, phc_errbuf *err)
{
    *out = NULL;
    if (!c)
        return phc__err(err, PHC_ERR_CONFIG, "no client");
    maybe_reload(c);
    if (c->auth)
        return phc__auth_request(c->auth, perform_plain, c, req, out, err);
    return perform_plain(c, req, out, err);
}

int phc_client_sign_test(phc_client *c, int n, double *seconds, phc_errbuf *err)
{
    *seconds = 0;
    if (!c)
        return phc__err(err, PHC_ERR_CONFIG, "no client");
    phc_gen *g = current(c);
    EVP_PKEY *key = phc__gen_key(g);
    int rc = PHC_OK;
    if (!key) {
        rc = phc__err(err, PHC_ERR_CONFIG, "the client has no token key to sign with");
        goto out;
    }
    unsigned char msg[64] = "phconnect signing test";
    unsigned char sig[1024];
    int is_rsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        size_t siglen = sizeof(sig);
        msg[0] = (unsigned char)i;
        int ok = md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
                 (!is_rsa || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1) &&
                 EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) == 1;
        EVP_MD_CTX_free(md);
        if (!ok) {
            rc = phc__err_ossl(err, PHC_ERR_HSM, "token refused to sign (signature %d of %d)",
                               i + 1, n);
            goto out;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
out:
    phc__gen_unref(g);
    return rc;
}

void phc_client_free(phc_client *c)
{
    if (!c)
        return;
    phc__auth_free(c->auth);
    phc__gen_unref(c->cur);
    pthread_mutex_destroy(&c->reload_mu);
    pthread_mutex_destroy(&c->mu);
    phc__trust_free(c->trust);
    phc_config_free(c->cfg);
    free(c);
}
