/* The time bound on token administration. A PKCS#11 call that hangs cannot be cancelled,
 * and libp11/SoftHSM/an HSM client library have no time bound of their own: each public
 * phc_token_* call runs its work (token.c, token_keygen.c, token_cert.c) on a thread of its
 * own and the caller waits while the token answers. The bound is the config's
 * connect_timeout, the one that bounds a request's signature and the reopening of its token
 * (sign_guard.c, gen_open.c), applied to each token call (p11_watch.h): a slow token that
 * keeps answering is not cut off, one call that does not answer within the bound is. The
 * caller then gets PHC_ERR_HSM naming the token, the module and the call, and the worker is
 * left to finish in the background: it owns copies of every input and the results nobody
 * takes, and a handle whose call is still out is never called into again - later calls on it
 * fail at once, and phc_token_free hands it to the worker, which frees it if the token ever
 * answers. Nothing here waits for, or calls into, a module that did not answer. */
#include "token_impl.h"

#include "err.h"
#include "opts.h"
#include "p11_uri.h"
#include "p11_watch.h"
#include "waiter.h"

#include <p11-kit/uri.h>

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum op_kind {
    OP_OPEN,
    OP_FREE,
    OP_PAIRS,
    OP_GENERATE,
    OP_CSR,
    OP_CHECK,
    OP_INSTALL,
    OP_PRUNE,
    OP_ROLLBACK,
    OP_SECRET,
} op_kind;

typedef struct phc_token_job {
    int refs;      /* atomic: the caller's (or its handle's, once stuck) and the worker's */
    phc_done done; /* its mutex also guards orphan */
    phc_p11_watch watch;
    pthread_t tid;
    op_kind op;
    phc_token *t;      /* the handle worked on; OP_FREE: the one freed */
    phc_token *orphan; /* the handle, freed by its owner while this job was out */
    /* Inputs: the job's own copies. */
    phc_config *cfg; /* reference (OP_OPEN, OP_SECRET) */
    phc_client_opts opts;
    int has_opts;
    long long now;
    char *s1, *s2; /* key type / key id / PEM / module, subject / data URI */
    char *s3;      /* PIN source */
    size_t len;
    int flag; /* pending, dry_run */
    unsigned flags;
    unsigned char *secret;
    size_t secret_len;
    /* Results, until the caller takes them (or the last put frees them). */
    int rc;
    phc_errbuf err;
    phc_token *opened;
    phc_pair_list *list;
    char id_hex[PHC_ID_HEX_MAX];
    char *pem;
    phc_pair_info *info, *info2;
    int already;
} phc_token_job;

static void job_put(phc_token_job *j)
{
    if (!j || __atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    phc__token_free_now(j->opened); /* results nobody came back for */
    phc_pair_list_free(j->list);
    phc_free(j->pem);
    phc_pair_info_free(j->info);
    phc_pair_info_free(j->info2);
    OPENSSL_free(j->s1);
    OPENSSL_free(j->s2);
    OPENSSL_free(j->s3);
    OPENSSL_clear_free(j->secret, j->secret_len);
    phc_config_free(j->cfg);
    phc__p11_watch_destroy(&j->watch);
    phc__done_destroy(&j->done);
    OPENSSL_cleanse(&j->err, sizeof(j->err));
    free(j);
}

static int run(phc_token_job *j, phc_errbuf *e)
{
    switch (j->op) {
    case OP_OPEN:
        return phc__token_open_now(&j->opened, j->cfg, j->has_opts ? &j->opts : NULL, e);
    case OP_FREE:
        phc__token_free_now(j->t);
        j->t = NULL;
        return PHC_OK;
    case OP_PAIRS:
        return phc__token_pairs_now(j->t, j->now, &j->list, e);
    case OP_GENERATE:
        return phc__token_generate_now(j->t, j->s1, j->flag, j->id_hex, e);
    case OP_CSR:
        return phc__token_csr_now(j->t, j->s1, j->s2, &j->pem, e);
    case OP_CHECK:
        return phc__token_check_cert_now(j->t, j->s1, j->len, j->now, &j->info, &j->already, e);
    case OP_INSTALL:
        return phc__token_install_cert_now(j->t, j->s1, j->len, j->now, &j->info, &j->already, e);
    case OP_PRUNE:
        return phc__token_prune_now(j->t, j->now, j->flags, &j->list, e);
    case OP_ROLLBACK:
        return phc__token_rollback_now(j->t, j->now, j->flag, &j->info, &j->info2, e);
    case OP_SECRET:
        return phc__p11_write_data(j->s1, j->s2, j->s3, j->secret, j->secret_len, e);
    }
    return phc__err(e, PHC_ERR_INTERNAL, "unknown token operation");
}

static void *worker(void *arg)
{
    phc_token_job *j = arg;
    phc_errbuf e = {0};
    phc__p11_watch_bind(&j->watch);
    int rc = run(j, &e);
    j->rc = rc;
    j->err = e;
    OPENSSL_cleanse(&e, sizeof(e));
    pthread_mutex_lock(&j->done.mu);
    phc_token *orphan = j->orphan;
    j->done.done = 1;
    pthread_cond_broadcast(&j->done.cv);
    pthread_mutex_unlock(&j->done.mu);
    if (orphan) {
        /* Its owner let go of it while this call was out: the handle's reference on this
         * job goes with it. */
        orphan->stuck = NULL;
        phc__token_free_now(orphan);
        job_put(j);
    }
    phc__p11_watch_bind(NULL);
    OPENSSL_thread_stop();
    job_put(j);
    return NULL;
}

static phc_token_job *job_new(op_kind op, phc_token *t)
{
    phc_token_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    phc__done_init(&j->done);
    phc__p11_watch_init(&j->watch);
    j->refs = 1;
    j->op = op;
    j->t = t;
    if (t) /* the token its calls go to, for the message */
        snprintf(j->watch.token, sizeof(j->watch.token), "%s", phc_token_label(t));
    return j;
}

/* The token= of uri, for the message of a call that hangs before the token is chosen. */
static void uri_token(phc_token_job *j, const char *uri)
{
    P11KitUri *u = uri ? p11_kit_uri_new() : NULL;
    if (u && p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, u) == P11_KIT_URI_OK)
        phc__p11_uri_token_label(u, j->watch.token, sizeof(j->watch.token));
    p11_kit_uri_free(u);
}

/* The bound of cfg, in ms. */
static long bound_ms(const phc_config *cfg)
{
    return (cfg && cfg->connect_timeout > 0 ? cfg->connect_timeout : 10) * 1000L;
}

/* Starts j's worker and waits while each of its token calls answers within bound. 1: done
 * (the worker is joined); 0: a call did not answer in time, named in *call (the worker is
 * detached, j's caller reference stays with the caller); -1: no thread. */
static int job_run(phc_token_job *j, long bound, const char **call, char *token, size_t len)
{
    j->refs = 2;
    if (pthread_create(&j->tid, NULL, worker, j) != 0) {
        j->refs = 1;
        return -1;
    }
    for (;;) {
        const char *last = NULL;
        long left = phc__p11_watch_left(&j->watch, bound, call, &last, token, len);
        if (left <= 0 && *call) {
            pthread_detach(j->tid);
            return 0;
        }
        if (phc__done_wait(&j->done, left > 0 ? left : 1)) {
            pthread_join(j->tid, NULL);
            return 1;
        }
    }
}

static const char *module_of(const phc_config *cfg)
{
    return cfg && cfg->pkcs11_module ? cfg->pkcs11_module : "(none)";
}

static int timed_out(const phc_config *cfg, const char *call, const char *token, long bound,
                     phc_errbuf *err)
{
    return phc__err(err, PHC_ERR_HSM,
                    "token '%s' in PKCS#11 module '%s' did not answer %s within %ld ms "
                    "(connect_timeout); phc stopped waiting, the call may still complete on the "
                    "token",
                    token[0] ? token : "?", module_of(cfg), call, bound);
}

/* Runs j (an operation without a handle: open, secret) under cfg's bound. The results stay
 * in j for the caller, who puts its reference in any case; on a time-out the worker keeps its
 * own and frees what it makes. */
static int run_bounded(phc_token_job *j, const phc_config *cfg, phc_errbuf *err)
{
    const char *call = NULL;
    char token[40];
    long bound = bound_ms(cfg);
    int r = job_run(j, bound, &call, token, sizeof(token));
    if (r < 0)
        return phc__err(err, PHC_ERR_INTERNAL, "cannot start a thread for the token operation");
    if (r == 0)
        return timed_out(cfg, call, token, bound, err);
    if (j->rc != PHC_OK)
        phc__err_copy(err, &j->err);
    return j->rc;
}

/* A handle whose earlier call is still out is not called into again; one whose late answer
 * came meanwhile is usable again. */
static int handle_ready(phc_token *t, phc_errbuf *err)
{
    if (!t)
        return phc__err(err, PHC_ERR_INTERNAL, "no token handle");
    phc_token_job *j = t->stuck;
    if (!j)
        return PHC_OK;
    if (phc__done_wait(&j->done, 0)) {
        t->stuck = NULL;
        job_put(j);
        return PHC_OK;
    }
    const char *call = NULL, *last = NULL;
    char token[40];
    (void)phc__p11_watch_left(&j->watch, 1, &call, &last, token, sizeof(token));
    return phc__err(err, PHC_ERR_HSM,
                    "token '%s' in PKCS#11 module '%s' has not answered %s of an earlier call; "
                    "phc stopped waiting and does not ask it again until it does",
                    token[0] ? token : "?", module_of(t->cfg),
                    call   ? call
                    : last ? last
                           : "?");
}

/* Runs j on handle t: on a time-out the job stays with t (stuck). Returns the operation's
 * result; *take is 1 when j's results are the caller's to take (then job_put j). */
static int on_handle(phc_token *t, phc_token_job *j, int *take, phc_errbuf *err)
{
    *take = 0;
    const char *call = NULL;
    char token[40];
    long bound = bound_ms(t->cfg);
    int r = job_run(j, bound, &call, token, sizeof(token));
    if (r < 0) {
        job_put(j);
        return phc__err(err, PHC_ERR_INTERNAL, "cannot start a thread for the token operation");
    }
    if (r == 0) {
        t->stuck = j;
        return timed_out(t->cfg, call, token, bound, err);
    }
    *take = 1;
    if (j->rc != PHC_OK)
        phc__err_copy(err, &j->err);
    return j->rc;
}

static char *dup_or_null(const char *s, int *oom)
{
    char *d = s ? OPENSSL_strdup(s) : NULL;
    if (s && !d)
        *oom = 1;
    return d;
}

/* ------------------------------------------------------------------------------------ */
/* The public calls */

int phc_token_open(phc_token **out, phc_config *cfg, const phc_client_opts *opts, phc_errbuf *err)
{
    *out = NULL;
    int rc = phc__client_opts_check(opts, err);
    if (rc != PHC_OK || (rc = phc_config_validate(cfg, err)) != PHC_OK)
        return rc;
    phc_token_job *j = job_new(OP_OPEN, NULL);
    if (!j)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    j->cfg = phc__config_ref(cfg);
    uri_token(j, cfg->key);
    if (opts) {
        j->opts = *opts;
        j->has_opts = 1;
    }
    rc = run_bounded(j, cfg, err);
    if (rc == PHC_OK) {
        *out = j->opened;
        j->opened = NULL;
    }
    job_put(j);
    return rc;
}

void phc_token_free(phc_token *t)
{
    if (!t)
        return;
    phc_token_job *j = t->stuck;
    if (j) {
        pthread_mutex_lock(&j->done.mu);
        int out = !j->done.done;
        if (out)
            j->orphan = t; /* the worker frees it, if the token ever answers */
        pthread_mutex_unlock(&j->done.mu);
        if (out)
            return;
        t->stuck = NULL;
        job_put(j);
    }
    /* Closing the session and finalising the module are token calls too. */
    phc_token_job *f = job_new(OP_FREE, t);
    if (!f) {
        phc__token_free_now(t);
        return;
    }
    const char *call = NULL;
    char token[40];
    if (job_run(f, bound_ms(t->cfg), &call, token, sizeof(token)) < 0)
        phc__token_free_now(t);
    job_put(f);
}

int phc_token_pairs(phc_token *t, long long now, phc_pair_list **out, phc_errbuf *err)
{
    if (out)
        *out = NULL;
    int take, rc = handle_ready(t, err);
    if (rc)
        return rc;
    phc_token_job *j = job_new(OP_PAIRS, t);
    if (!j)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    j->now = now;
    rc = on_handle(t, j, &take, err);
    if (take) {
        if (rc == PHC_OK && out) {
            *out = j->list;
            j->list = NULL;
        }
        job_put(j);
    }
    return rc;
}

int phc_token_generate(phc_token *t, const char *key_type, int pending, char id_hex[PHC_ID_HEX_MAX],
                       phc_errbuf *err)
{
    int take, oom = 0, rc = handle_ready(t, err);
    if (rc)
        return rc;
    phc_token_job *j = job_new(OP_GENERATE, t);
    if (!j || !((j->s1 = dup_or_null(key_type, &oom)), !oom)) {
        job_put(j);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    j->flag = pending;
    rc = on_handle(t, j, &take, err);
    if (take) {
        if (id_hex)
            memcpy(id_hex, j->id_hex, PHC_ID_HEX_MAX);
        job_put(j);
    }
    return rc;
}

int phc_token_csr(phc_token *t, const char *id_hex, const char *subject, char **pem_out,
                  phc_errbuf *err)
{
    if (pem_out)
        *pem_out = NULL;
    int take, oom = 0, rc = handle_ready(t, err);
    if (rc)
        return rc;
    phc_token_job *j = job_new(OP_CSR, t);
    if (!j || ((j->s1 = dup_or_null(id_hex, &oom)), (j->s2 = dup_or_null(subject, &oom)), oom)) {
        job_put(j);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    rc = on_handle(t, j, &take, err);
    if (take) {
        if (rc == PHC_OK && pem_out) {
            *pem_out = j->pem;
            j->pem = NULL;
        }
        job_put(j);
    }
    return rc;
}

static int cert_op(op_kind op, phc_token *t, const char *pem, size_t len, long long now,
                   phc_pair_info **out, int *already, phc_errbuf *err)
{
    if (out)
        *out = NULL;
    if (already)
        *already = 0;
    int take, rc = handle_ready(t, err);
    if (rc)
        return rc;
    phc_token_job *j = job_new(op, t);
    /* The PEM is copied: the caller may free its buffer once it has its answer. */
    if (!j || (pem && !(j->s1 = OPENSSL_memdup(pem, len ? len : 1)))) {
        job_put(j);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    j->len = len;
    j->now = now;
    rc = on_handle(t, j, &take, err);
    if (take) {
        if (rc == PHC_OK && out) {
            *out = j->info;
            j->info = NULL;
        }
        if (rc == PHC_OK && already)
            *already = j->already;
        job_put(j);
    }
    return rc;
}

int phc_token_check_cert(phc_token *t, const char *pem, size_t len, long long now,
                         phc_pair_info **out, int *already, phc_errbuf *err)
{
    return cert_op(OP_CHECK, t, pem, len, now, out, already, err);
}

int phc_token_install_cert(phc_token *t, const char *pem, size_t len, long long now,
                           phc_pair_info **out, int *already, phc_errbuf *err)
{
    return cert_op(OP_INSTALL, t, pem, len, now, out, already, err);
}

int phc_token_prune(phc_token *t, long long now, unsigned flags, phc_pair_list **out,
                    phc_errbuf *err)
{
    if (out)
        *out = NULL;
    int take, rc = handle_ready(t, err);
    if (rc)
        return rc;
    phc_token_job *j = job_new(OP_PRUNE, t);
    if (!j)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    j->now = now;
    j->flags = flags;
    rc = on_handle(t, j, &take, err);
    if (take) {
        if (out) { /* also on an error: what was deleted before it */
            *out = j->list;
            j->list = NULL;
        }
        job_put(j);
    }
    return rc;
}

int phc_token_rollback(phc_token *t, long long now, int dry_run, phc_pair_info **from,
                       phc_pair_info **to, phc_errbuf *err)
{
    if (from)
        *from = NULL;
    if (to)
        *to = NULL;
    int take, rc = handle_ready(t, err);
    if (rc)
        return rc;
    phc_token_job *j = job_new(OP_ROLLBACK, t);
    if (!j)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    j->now = now;
    j->flag = dry_run;
    rc = on_handle(t, j, &take, err);
    if (take) {
        if (rc == PHC_OK) {
            if (from) {
                *from = j->info;
                j->info = NULL;
            }
            if (to) {
                *to = j->info2;
                j->info2 = NULL;
            }
        }
        job_put(j);
    }
    return rc;
}

int phc_token_store_secret(phc_config *cfg, const void *secret, size_t len, phc_errbuf *err)
{
    int oom = 0, rc = phc__token_secret_check(cfg, len, err);
    if (rc)
        return rc;
    /* Copies of what the worker needs, not a reference: cfg stays the caller's to change. */
    phc_token_job *j = job_new(OP_SECRET, NULL);
    if (j && (j->secret = OPENSSL_memdup(secret, len)))
        j->secret_len = len; /* before any job_put: it wipes secret_len bytes */
    if (!j || !j->secret ||
        ((j->s1 = dup_or_null(cfg->pkcs11_module, &oom)),
         (j->s2 = dup_or_null(cfg->client_secret, &oom)), (j->s3 = dup_or_null(cfg->pin, &oom)),
         oom)) {
        job_put(j);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    uri_token(j, cfg->client_secret);
    rc = run_bounded(j, cfg, err);
    job_put(j);
    return rc;
}
