/* The client handle: what is configured once (config, credentials), the pinned trust as last
 * (re)read, and the current identity generation (gen.c). Requests take a reference on the
 * generation current when they start; a reload swaps in a new one, and the old one - its
 * connections and TLS sessions with it - is freed when its last request returns. A
 * generation is built from one trust store and one set of pinned addresses, so a reload that
 * finds ca_file, ca_sha256 or pinned_ips changed swaps the generation too: no connection or
 * TLS session made under the old anchors serves a later request. */
#include "auth.h"
#include "client.h"
#include "config.h"
#include "curl_load.h"
#include "err.h"
#include "gen.h"
#include "gen_open.h"
#include "log.h"
#include "secret.h"
#include "stats.h"
#include "trust.h"
#include "opts.h"
#include "util_retry.h"
#include "util_time.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A dead token is reopened at most once per this many milliseconds. */
#define REBUILD_INTERVAL_MS 1000

struct phc_client {
    int retry_max_attempts;         /* phc_client_opts: 0 the default */
    unsigned int retry_max_wait_ms; /* phc_client_opts: 0 the default */
    phc_config *cfg;                /* as given: everything but the trust keys */
    phc_log log;
    phc_config *gcfg;          /* cfg with the trust keys as last read; guarded by reload_mu */
    phc_trust *trust;          /* the pinned CAs as last read; guarded by reload_mu */
    phc_auth *auth;            /* NULL without client credentials */
    pthread_mutex_t mu;        /* guards cur and down */
    phc_gen *cur;              /* NULL while the token is unavailable */
    phc_errbuf down;           /* why, while cur is NULL */
    pthread_mutex_t reload_mu; /* one reload at a time; guards next_rebuild */
    long long next_check;      /* monotonic seconds; atomic */
    long long next_rebuild;    /* monotonic ms before which a dead token is not reopened */
    phc_gen_job *pending;      /* an attempt to open the token still out; guarded by reload_mu */
    phc_pin_latch latch;       /* a PIN the token refused (hsm.h); guarded by reload_mu */
    pid_t pid;                 /* the process that made the client */
};

int phc_global_init(void)
{
    return phc_global_init_opts(NULL, NULL);
}

/* libcurl is not touched here unless asked (PHC_GLOBAL_LOAD_CURL_NOW): curl_load.c loads it at
 * the first HTTP use, so that processes without one never map its dependency tree. */
int phc_global_init_opts(const phc_global_opts *opts, phc_errbuf *err)
{
    int rc = phc__global_opts_check(opts, err);
    if (rc != PHC_OK)
        return rc;
    unsigned flags = opts ? opts->flags : 0;
    phc__curl_set_flags(flags);
    return (flags & PHC_GLOBAL_LOAD_CURL_NOW) ? phc__curl_ready(err) : PHC_OK;
}

void phc_global_cleanup(void)
{
    phc__secret_env_clear();
    phc__curl_cleanup();
}

static long long mono_now(void)
{
    return phc__mono_ms() / 1000;
}

static void schedule_check(phc_client *c)
{
    long long when = c->cfg->reload_interval > 0 ? mono_now() + c->cfg->reload_interval : 0;
    __atomic_store_n(&c->next_check, when, __ATOMIC_RELAXED);
}

/* A new generation for cfg/trust, opening the token within connect_timeout (gen_open.h says
 * why). Caller holds reload_mu (or is phc_client_new). */
static int open_token(phc_client *c, phc_config *cfg, phc_trust *trust, phc_gen **out,
                      phc_errbuf *err)
{
    int rc = phc__gen_open_bounded(&c->pending, out, cfg, trust, &c->log, (long long)time(NULL),
                                   c->cfg->connect_timeout * 1000, &c->latch, err);
    if (rc == PHC_OK && phc__gen_trust(*out) != trust) {
        /* The late result of an attempt made under the trust before a reload. */
        phc__gen_unref(*out);
        *out = NULL;
        rc = phc__err(err, PHC_ERR_HSM,
                      "the token answered an attempt to open it made before the trust was "
                      "re-read; trying again at the next reload");
    }
    return rc;
}

int phc_client_new(phc_client **out, phc_config *cfg, const phc_client_opts *opts, phc_errbuf *err)
{
    *out = NULL;
    int rc = phc__client_opts_check(opts, err);
    if (rc != PHC_OK || (rc = phc_config_validate(cfg, err)) != PHC_OK)
        return rc;
    /* Before the token is opened: a client without libcurl could make no request. */
    if ((rc = phc__curl_ready(err)) != PHC_OK)
        return rc;
    phc_client *c = calloc(1, sizeof(*c));
    if (!c)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->reload_mu, NULL);
    c->pid = getpid();
    c->cfg = phc__config_ref(cfg);
    c->gcfg = phc__config_ref(cfg);
    if (opts) {
        c->log.fn = opts->log;
        c->log.ud = opts->log_userdata;
        c->log.level = opts->level;
        c->retry_max_attempts = opts->retry_max_attempts;
        c->retry_max_wait_ms = opts->retry_max_wait_ms;
    }
    if ((rc = phc__trust_load(&c->trust, cfg->ca_file, (const unsigned char(*)[32])cfg->ca_sha256,
                              cfg->n_ca_sha256, err)) != PHC_OK)
        goto out;
    phc__trust_set_profile(c->trust, cfg->x509_profile);
    /* Without a key the client authenticates with client credentials only (validate made
     * sure one of the two is configured). */
    if ((rc = open_token(c, c->gcfg, c->trust, &c->cur, err)) != PHC_OK)
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

/* An attempt to open the token failed: a client without a generation reports why. */
static void open_failed(phc_client *c, const phc_errbuf *err)
{
    pthread_mutex_lock(&c->mu);
    if (!c->cur)
        phc__err_copy(&c->down, err);
    pthread_mutex_unlock(&c->mu);
    c->next_rebuild = phc__mono_ms() + REBUILD_INTERVAL_MS;
    schedule_check(c);
}

/* Caller holds reload_mu. Makes fresh current when force is set, the identity changed, or
 * there is no current one (the token was down); otherwise drops it. */
static void install_gen(phc_client *c, phc_gen *fresh, int force, int *changed)
{
    pthread_mutex_lock(&c->mu);
    phc_gen *old = c->cur;
    int other = old && !phc__gen_same_identity(old, fresh);
    int swap = force || !old || other;
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
        if (other)
            phc__log(&c->log, PHC_LOG_INFO,
                     "switched to client certificate '%s'; connections and TLS sessions made "
                     "with the previous one are no longer used",
                     subj);
        else if (!old)
            phc__log(&c->log, PHC_LOG_INFO, "token available again; client certificate '%s'", subj);
        if (changed)
            *changed = other;
    }
    /* fresh is now whichever generation is not current: the unused candidate, or the old
     * one, which lives on until its in-flight requests return. */
    phc__gen_unref(fresh);
    schedule_check(c);
}

/* Caller holds reload_mu. Builds a fresh generation under the current trust and makes it
 * current when the identity changed, or when there is no current one. */
static int reload_locked(phc_client *c, int *changed, phc_errbuf *err)
{
    phc_gen *fresh = NULL;
    int rc = open_token(c, c->gcfg, c->trust, &fresh, err);
    if (rc != PHC_OK) {
        open_failed(c, err);
        return rc;
    }
    install_gen(c, fresh, 0, changed);
    return PHC_OK;
}

static int same_pins(const phc_config *a, const phc_config *b)
{
    if (a->n_pinned_ips != b->n_pinned_ips)
        return 0;
    for (size_t i = 0; i < a->n_pinned_ips; i++)
        if (strcmp(a->pinned_ips[i], b->pinned_ips[i]) != 0)
            return 0;
    return 1;
}

/* Re-reads the trust keys (from the config file the client was made from, when it was; ca_file
 * itself always) and loads the store. *ncfg and *ntrust stay NULL when nothing changed. */
static int read_trust(phc_client *c, phc_config **ncfg, phc_trust **ntrust, phc_errbuf *err)
{
    phc_config *src = NULL;
    const char *path = phc__config_path(c->cfg);
    *ncfg = NULL;
    *ntrust = NULL;
    int rc = path ? phc_config_load(&src, path, err) : PHC_OK;
    if (rc == PHC_OK)
        rc = phc__config_with_trust(ncfg, c->gcfg, src ? src : c->gcfg, err);
    phc_config_free(src);
    if (rc == PHC_OK)
        rc = phc__trust_load(ntrust, (*ncfg)->ca_file,
                             (const unsigned char(*)[32])(*ncfg)->ca_sha256, (*ncfg)->n_ca_sha256,
                             err);
    if (rc != PHC_OK || (phc__trust_same(*ntrust, c->trust) && same_pins(*ncfg, c->gcfg))) {
        phc__trust_free(*ntrust);
        phc_config_free(*ncfg);
        *ntrust = NULL;
        *ncfg = NULL;
    }
    return rc;
}

/* Caller holds reload_mu. reload_locked, after re-reading the trust: changed trust gets a new
 * generation even for the same identity. A failure anywhere keeps the current trust and
 * generation. */
static int reload_all_locked(phc_client *c, int *changed, phc_errbuf *err)
{
    phc_config *ncfg = NULL;
    phc_trust *ntrust = NULL;
    phc_gen *fresh = NULL;
    phc_errbuf why = {0};
    int rc = read_trust(c, &ncfg, &ntrust, &why);
    if (rc != PHC_OK) {
        /* The token is still looked at: a config file gone missing must not stop rotation. */
        phc_errbuf ignored = {0};
        (void)reload_locked(c, changed, &ignored);
        return phc__err(err, rc, "trust not re-read, the client keeps the trust it has: %s",
                        why.msg);
    }
    if (!ncfg)
        return reload_locked(c, changed, err);
    if ((rc = open_token(c, ncfg, ntrust, &fresh, &why)) != PHC_OK) {
        phc__trust_free(ntrust);
        phc_config_free(ncfg);
        open_failed(c, &why);
        return phc__err(err, rc, "trust not re-read, the client keeps the trust it has: %s",
                        why.msg);
    }
    phc__trust_free(c->trust);
    phc_config_free(c->gcfg);
    c->trust = ntrust;
    c->gcfg = ncfg;
    phc__log(&c->log, PHC_LOG_INFO,
             "trust re-read: %d CA certificate(s) from '%s', %zu pinned address(es); connections "
             "and TLS sessions made under the previous trust are no longer used",
             phc__trust_count(ntrust), ncfg->ca_file, ncfg->n_pinned_ips);
    install_gen(c, fresh, 1, NULL);
    if (changed)
        *changed = 1;
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
    /* An explicit reload is the operator's word that the PIN may be offered again. */
    memset(&c->latch, 0, sizeof(c->latch));
    int rc = reload_all_locked(c, changed, err);
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
            if (!c->cur && phc__mono_ms() >= c->next_rebuild)
                (void)reload_locked(c, NULL, &ignored);
            pthread_mutex_unlock(&c->reload_mu);
            continue;
        }
        *out = NULL;
        return phc__err_copy(err, &down);
    }
}

phc_gen *phc__client_peek_gen(phc_client *c)
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
    if (due != 0 && mono_now() >= due && reload_all_locked(c, NULL, &e) != PHC_OK)
        phc__log(&c->log, PHC_LOG_WARN, "periodic certificate check failed: %s", e.msg);
    pthread_mutex_unlock(&c->reload_mu);
}

/* One request on the current generation, without authentication headers. A 429 or 503 on
 * an idempotent request is retried under the retry policy (util_retry.h), its budget capped
 * by the config's timeout. */
static int perform_plain(void *ud, const phc_request *req, phc_response **out, phc_errbuf *err)
{
    phc_client *c = ud;
    phc_retry retry;
    phc__retry_init(&retry, c->cfg->timeout);
    phc__retry_limits(&retry, c->retry_max_attempts, c->retry_max_wait_ms);
    int reopened = 0;
    for (;;) {
        phc_gen *g = NULL;
        int rc = current(c, &g, err);
        if (rc != PHC_OK)
            return rc;
        int unsent = 0;
        rc = phc__gen_perform(g, req, out, &unsent, err);
        /* A handshake that failed may be the token's doing (libp11 does not notice a dead
         * session): one test signature tells. After reopening the token the request is tried
         * once more - but only when it cannot have reached the server (its new connection's
         * TLS handshake never completed) or sending it twice does no harm: a network error
         * after a POST was sent may coincide with a token failure. */
        if ((rc == PHC_ERR_NETWORK || rc == PHC_ERR_HSM) && phc__gen_has_key(g)) {
            phc_errbuf probe = {0};
            double ignored;
            if (phc__gen_sign(g, 1, &ignored, &probe) != PHC_OK) {
                mark_down(c, g, &probe);
                phc__gen_unref(g);
                int again = unsent || phc__request_idempotent(req);
                if (again && !reopened++)
                    continue;
                if (!again) {
                    phc_errbuf first = *err;
                    return phc__err(err, rc,
                                    "%.250s; not sent again: the request may have reached the "
                                    "server (the token also stopped signing: %.150s)",
                                    first.msg, probe.msg);
                }
                return phc__err_copy(err, &probe);
            }
        }
        phc__gen_unref(g);
        long status = phc_response_status(*out);
        if (rc != PHC_ERR_HTTP || !phc__request_idempotent(req) ||
            !phc__retry_next(&retry, status, phc_response_header(*out, "Retry-After")))
            return rc;
        phc__log(&c->log, PHC_LOG_WARN,
                 "server answered %ld for %s; retrying in %ld s (attempt %d of %d)", status,
                 req->path, retry.wait_s, retry.attempt + 1, retry.max_attempts);
        phc_response_free(*out);
        *out = NULL;
        phc__retry_wait(&retry);
    }
}

int phc_client_request(phc_client *c, phc_response **out, const phc_request *req, phc_errbuf *err)
{
    *out = NULL;
    if (!c)
        return phc__err(err, PHC_ERR_CONFIG, "no client");
    if (!req)
        return phc__err(err, PHC_ERR_CONFIG, "no request");
    int rc = phc__version_check("phc_request", req->version, PHC_REQUEST_VERSION, err);
    if (rc != PHC_OK)
        return rc;
    if (forked(c, err))
        return PHC_ERR_HSM;
    maybe_reload(c);
    if (c->auth)
        return phc__auth_request(c->auth, perform_plain, c, req, out, err);
    return perform_plain(c, req, out, err);
}

int phc__client_gen(phc_client *c, phc_gen **out, phc_errbuf *err)
{
    *out = NULL;
    if (!c)
        return phc__err(err, PHC_ERR_CONFIG, "no client");
    if (forked(c, err))
        return PHC_ERR_HSM;
    return current(c, out, err);
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
    phc_config_free(c->gcfg);
    phc_config_free(c->cfg);
    free(c);
}
