/* The client handle: what is configured once (config, pinned trust, credentials) and the
 * current identity generation (gen.c). Requests take a reference on the generation current
 * when they start; a reload swaps in a new one, and the old one - its connections and TLS
 * sessions with it - is freed when its last request returns. */
#include "auth.h"
#include "client_gen.h"
#include "config.h"
#include "err.h"
#include "gen.h"
#include "gen_open.h"
#include "log.h"
#include "stats.h"
#include "trust.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 429/503 retries: at most this many attempts in all, waiting at most this many seconds. */
#define RETRY_ATTEMPTS 3
#define RETRY_BUDGET 30
/* A dead token is reopened at most once per this many milliseconds. */
#define REBUILD_INTERVAL_MS 1000

struct phc_client {
    phc_config *cfg;
    phc_log log;
    phc_trust *trust;
    phc_auth *auth;            /* NULL without client credentials */
    pthread_mutex_t mu;        /* guards cur and down */
    phc_gen *cur;              /* NULL while the token is unavailable */
    phc_errbuf down;           /* why, while cur is NULL */
    pthread_mutex_t reload_mu; /* one reload at a time; guards next_rebuild */
    long long next_check;      /* monotonic seconds; atomic */
    long long next_rebuild;    /* monotonic ms before which a dead token is not reopened */
    phc_gen_job *pending;      /* an attempt to open the token still out; guarded by reload_mu */
    pid_t pid;                 /* the process that made the client */
};

int phc_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? PHC_OK : PHC_ERR_INTERNAL;
}

void phc_global_cleanup(void)
{
    curl_global_cleanup();
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long mono_now(void)
{
    return mono_ms() / 1000;
}

static void schedule_check(phc_client *c)
{
    long long when = c->cfg->reload_interval > 0 ? mono_now() + c->cfg->reload_interval : 0;
    __atomic_store_n(&c->next_check, when, __ATOMIC_RELAXED);
}

/* A new generation, opening the token within connect_timeout (gen_open.h says why). */
static int open_token(phc_client *c, phc_gen **out, phc_errbuf *err)
{
    return phc__gen_open_bounded(&c->pending, out, c->cfg, c->trust, &c->log, (long long)time(NULL),
                                 c->cfg->connect_timeout * 1000, err);
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
    c->pid = getpid();
    c->cfg = phc__config_ref(cfg);
    if (opts) {
        c->log.fn = opts->log;
        c->log.ud = opts->log_userdata;
        c->log.level = opts->level;
    }
    if ((rc = phc__trust_load(&c->trust, cfg->ca_file, (const unsigned char(*)[32])cfg->ca_sha256,
                              cfg->n_ca_sha256, err)) != PHC_OK)
        goto out;
    phc__trust_set_profile(c->trust, cfg->x509_profile);
    /* Without a key the client authenticates with client credentials only (validate made
     * sure one of the two is configured). */
    if ((rc = open_token(c, &c->cur, err)) != PHC_OK)
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

/* Caller holds reload_mu. Builds a fresh generation and makes it current when the identity
 * changed, or when there is no current one (the token was down). */
static int reload_locked(phc_client *c, int *changed, phc_errbuf *err)
{
    phc_gen *fresh = NULL;
    int rc = open_token(c, &fresh, err);
    if (rc != PHC_OK) {
        pthread_mutex_lock(&c->mu);
        if (!c->cur)
            phc__err_copy(&c->down, err);
        pthread_mutex_unlock(&c->mu);
        c->next_rebuild = mono_ms() + REBUILD_INTERVAL_MS;
        schedule_check(c);
        return rc;
    }
    pthread_mutex_lock(&c->mu);
    phc_gen *old = c->cur;
    int swap = !old || !phc__gen_same_identity(old, fresh);
    if (swap) {
        c->cur = fresh;
        fresh = old;
    }
    pthread_mutex_unlock(&c->mu);
    if (swap) {
        if (!old)
            phc__stats_reopen();
        X509 *cert = phc__gen_cert(c->cur);
        char subj[256] = "(none)";
        if (cert)
            phc__name_str(subj, sizeof(subj), X509_get_subject_name(cert));
        if (old)
            phc__log(&c->log, PHC_LOG_INFO,
                     "switched to client certificate '%s'; connections and TLS sessions made "
                     "with the previous one are no longer used",
                     subj);
        else
            phc__log(&c->log, PHC_LOG_INFO, "token available again; client certificate '%s'", subj);
        if (changed)
            *changed = old != NULL;
    }
    /* fresh is now whichever generation is not current: the unused candidate, or the old
     * one, which lives on until its in-flight requests return. */
    phc__gen_unref(fresh);
    schedule_check(c);
    return PHC_OK;
}

/* PKCS#11 sessions, TLS sessions and connections belong to the process that opened them; a
 * forked child must never sign or send with its parent's. */
static int forked(const phc_client *c, phc_errbuf *err)
{
    if (getpid() == c->pid)
        return 0;
    phc__err(err, PHC_ERR_HSM,
             "this client was made in process %ld and cannot be used after fork(): make a new "
             "client in the child",
             (long)c->pid);
    return 1;
}

int phc_client_reload(phc_client *c, int *changed, phc_errbuf *err)
{
    if (changed)
        *changed = 0;
    if (!c)
        return phc__err(err, PHC_ERR_CONFIG, "no client");
    if (forked(c, err))
        return PHC_ERR_HSM;
    pthread_mutex_lock(&c->reload_mu);
    int rc = reload_locked(c, changed, err);
    pthread_mutex_unlock(&c->reload_mu);
    return rc;
}

/* A reference on the current generation. While the token is down, one caller at a time
 * tries to reopen it, at most once per REBUILD_INTERVAL_MS; the others fail fast with the
 * reason, so a dead token costs neither a hot loop nor a hang. */
static int current(phc_client *c, phc_gen **out, phc_errbuf *err)
{
    for (int attempt = 0;; attempt++) {
        pthread_mutex_lock(&c->mu);
        phc_gen *g = c->cur ? phc__gen_ref(c->cur) : NULL;
        phc_errbuf down = c->down;
        pthread_mutex_unlock(&c->mu);
        if (g) {
            *out = g;
            return PHC_OK;
        }
        if (attempt == 0 && pthread_mutex_trylock(&c->reload_mu) == 0) {
            phc_errbuf ignored = {0};
            if (!c->cur && mono_ms() >= c->next_rebuild)
                (void)reload_locked(c, NULL, &ignored);
            pthread_mutex_unlock(&c->reload_mu);
            continue;
        }
        *out = NULL;
        return phc__err_copy(err, &down);
    }
}

phc_gen *phc__client_gen(phc_client *c)
{
    pthread_mutex_lock(&c->mu);
    phc_gen *g = c->cur ? phc__gen_ref(c->cur) : NULL;
    pthread_mutex_unlock(&c->mu);
    return g;
}

/* The token stopped signing: drop the generation so that no request uses its sessions; the
 * token is reopened by the next request that finds no current generation. */
static void mark_down(phc_client *c, phc_gen *g, const phc_errbuf *why)
{
    phc_gen *dropped = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->cur == g) {
        dropped = c->cur;
        c->cur = NULL;
        /* Truncating the reason is acceptable: the suffix is the part an operator needs. */
        phc__err(&c->down, PHC_ERR_HSM,
                 "%.400s; the connector reopens the token at most once a second", why->msg);
    }
    pthread_mutex_unlock(&c->mu);
    if (dropped)
        phc__log(&c->log, PHC_LOG_WARN, "%s: dropping its sessions, reopening the token", why->msg);
    phc__gen_unref(dropped);
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
    int reopened = 0;
    for (int attempt = 1;; attempt++) {
        phc_gen *g = NULL;
        int rc = current(c, &g, err);
        if (rc != PHC_OK)
            return rc;
        rc = phc__gen_perform(g, req, out, err);
        /* A handshake that failed may be the token's doing (libp11 does not notice a dead
         * session): one test signature tells. The request failed before it was sent, so
         * after reopening the token it is tried once more. */
        if ((rc == PHC_ERR_NETWORK || rc == PHC_ERR_HSM) && phc__gen_has_key(g)) {
            phc_errbuf probe = {0};
            double ignored;
            if (phc__gen_sign(g, 1, &ignored, &probe) != PHC_OK) {
                mark_down(c, g, &probe);
                phc__gen_unref(g);
                if (!reopened++)
                    continue;
                return phc__err_copy(err, &probe);
            }
        }
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
    if (forked(c, err))
        return PHC_ERR_HSM;
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
    if (forked(c, err))
        return PHC_ERR_HSM;
    phc_gen *g = NULL;
    int rc = current(c, &g, err);
    if (rc == PHC_OK)
        rc = phc__gen_sign(g, n, seconds, err);
    phc__gen_unref(g);
    return rc;
}

void phc_client_free(phc_client *c)
{
    if (!c)
        return;
    phc__auth_free(c->auth);
    phc__gen_unref(c->cur);
    phc__gen_job_release(c->pending);
    pthread_mutex_destroy(&c->reload_mu);
    pthread_mutex_destroy(&c->mu);
    phc__trust_free(c->trust);
    phc_config_free(c->cfg);
    free(c);
}
