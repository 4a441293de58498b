#include "gen_open.h"

#include "err.h"
#include "p11_module.h"
#include "waiter.h"

#include <openssl/crypto.h>
#include <stdlib.h>

struct phc_gen_job {
    int refs; /* atomic: the caller's (or its pending slot's) and the worker's */
    phc_done done;
    phc_config *cfg; /* references of the job's own */
    phc_trust *trust;
    phc_log log;
    long long now;
    long long deadline;  /* CLOCK_MONOTONIC ms: the caller's bound, for the open's retries */
    phc_pin_latch latch; /* the caller's, copied in; the login's, taken back */
    phc_gen *gen;        /* the result until someone takes it */
    int rc;
    phc_errbuf err;
};

static void job_put(phc_gen_job *j)
{
    if (!j || __atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    phc__gen_unref(j->gen); /* a result nobody came back for */
    phc__trust_free(j->trust);
    phc_config_free(j->cfg);
    phc__done_destroy(&j->done);
    free(j);
}

static void *worker(void *arg)
{
    phc_gen_job *j = arg;
    phc_gen *g = NULL;
    phc_errbuf e = {0};
    phc__p11_deadline_set(j->deadline);
    int rc = phc__gen_new(&g, j->cfg, j->trust, &j->log, j->now, &j->latch, &e);
    OPENSSL_thread_stop();
    j->gen = g;
    j->rc = rc;
    j->err = e;
    phc__done_set(&j->done);
    job_put(j);
    return NULL;
}

static phc_gen_job *job_start(phc_config *cfg, phc_trust *trust, const phc_log *log, long long now,
                              long timeout_ms, const phc_pin_latch *latch)
{
    phc_gen_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    phc__done_init(&j->done);
    j->refs = 2;
    j->cfg = phc__config_ref(cfg);
    j->trust = phc__trust_ref(trust);
    if (log)
        j->log = *log;
    j->now = now;
    j->deadline = phc__p11_mono_ms() + timeout_ms;
    j->latch = *latch;
    if (phc__spawn_detached(worker, j) != 0) {
        j->refs = 1;
        job_put(j);
        return NULL;
    }
    return j;
}

/* Takes the result of a finished job and lets go of it. */
static int job_take(phc_gen_job *j, phc_gen **out, phc_pin_latch *latch, phc_errbuf *err)
{
    *latch = j->latch;
    *out = j->gen;
    j->gen = NULL;
    int rc = j->rc;
    if (rc != PHC_OK)
        phc__err_copy(err, &j->err);
    job_put(j);
    return rc;
}

static const char *token_name(const phc_config *cfg)
{
    /* The message names the module when the key URI is the only other clue. */
    return cfg->pkcs11_module ? cfg->pkcs11_module : "(none)";
}

int phc__gen_open_bounded(phc_gen_job **pending, phc_gen **out, phc_config *cfg, phc_trust *trust,
                          const phc_log *log, long long now, long timeout_ms, phc_pin_latch *latch,
                          phc_errbuf *err)
{
    *out = NULL;
    if (*pending) {
        if (!phc__done_wait(&(*pending)->done, 0))
            return phc__err(err, PHC_ERR_HSM,
                            "the token behind PKCS#11 module '%s' has not answered an earlier "
                            "attempt to open it; not trying again until it does",
                            token_name(cfg));
        /* The token answered in the end: its answer is this call's. */
        phc_gen_job *j = *pending;
        *pending = NULL;
        return job_take(j, out, latch, err);
    }
    phc_gen_job *j = job_start(cfg, trust, log, now, timeout_ms, latch);
    if (!j)
        return phc__err(err, PHC_ERR_INTERNAL, "cannot start a thread to open the token");
    if (!phc__done_wait(&j->done, timeout_ms)) {
        *pending = j;
        return phc__err(err, PHC_ERR_HSM,
                        "the token behind PKCS#11 module '%s' did not answer within %ld ms while "
                        "being opened",
                        token_name(cfg), timeout_ms);
    }
    return job_take(j, out, latch, err);
}

void phc__gen_job_release(phc_gen_job *job)
{
    job_put(job);
}
