/* libp11 0.4.12 hands OpenSSL legacy RSA_METHOD / EC_KEY_METHOD keys; the guard clones
 * those methods with the private operations replaced, so this unit needs the deprecated
 * low-level key API that libp11 itself is built on. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "sign_guard.h"

#include "err.h"
#include "stats.h"
#include "waiter.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the guarded key carries (ex_data): the token key and the bound. */
struct guard {
    RSA *rsa; /* one of the two, up-referenced */
    EC_KEY *ec;
    phc_pool *workers; /* long-lived: a signature is a hand-over, not a thread */
    long timeout_ms;
    int stuck; /* atomic: a worker timed out and has not returned */
    char stuck_msg[200];
};

enum op { OP_RSA_ENC, OP_RSA_DEC, OP_EC_SIGN };

/* One private operation, shared by the caller and the worker; the last to let go frees it. */
struct job {
    phc_task task; /* first: the pool hands it back as the job */
    int refs;      /* atomic */
    enum op op;
    RSA *rsa; /* up-referenced for the worker's own use */
    EC_KEY *ec;
    unsigned char *in, *out;
    int inlen, padding, type;
    int ret;
    unsigned int siglen;
};

static int rsa_idx = -1, ec_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void guard_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct guard *g = ptr;
    if (!g)
        return;
    phc__pool_free(g->workers);
    RSA_free(g->rsa);
    EC_KEY_free(g->ec);
    free(g);
}

static void make_indexes(void)
{
    rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, guard_free);
    ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, guard_free);
}

static void job_put(struct job *j)
{
    if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    RSA_free(j->rsa);
    EC_KEY_free(j->ec);
    OPENSSL_clear_free(j->in, (size_t)j->inlen);
    free(j->out);
    phc__done_destroy(&j->task.done);
    free(j);
}

static void job_put_task(phc_task *t)
{
    job_put((struct job *)t);
}

static void job_run(phc_task *t)
{
    struct job *j = (struct job *)t;
    int ret = -1;
    unsigned int siglen = 0;
    if (j->op == OP_EC_SIGN) {
        int (*sign)(int, const unsigned char *, int, unsigned char *, unsigned int *,
                    const BIGNUM *, const BIGNUM *, EC_KEY *) = NULL;
        EC_KEY_METHOD_get_sign(EC_KEY_get_method(j->ec), &sign, NULL, NULL);
        ret = sign ? sign(j->type, j->in, j->inlen, j->out, &siglen, NULL, NULL, j->ec) : 0;
    } else {
        const RSA_METHOD *m = RSA_get_method(j->rsa);
        int (*fn)(int, const unsigned char *, unsigned char *, RSA *, int) =
            j->op == OP_RSA_ENC ? RSA_meth_get_priv_enc(m) : RSA_meth_get_priv_dec(m);
        ret = fn ? fn(j->inlen, j->in, j->out, j->rsa, j->padding) : -1;
    }
    /* The worker lets go of the token key before it reports: once the caller has its
     * answer it may free the generation, and the last reference to libp11's key must not be
     * dropped here after libp11's state is gone. (A worker that timed out drops it late, but
     * then the token handle is kept for good: see gen.c.) */
    RSA_free(j->rsa);
    j->rsa = NULL;
    EC_KEY_free(j->ec);
    j->ec = NULL;
    j->ret = ret;
    j->siglen = siglen;
    /* The guard is not touched here: a caller that gave up may have freed it. */
}

/* Runs j on one of the guard's workers and waits at most the guard's bound. Returns 1 when
 * it finished. */
static int run_bounded(struct guard *g, struct job *j)
{
    phc__stats_signature();
    __atomic_add_fetch(&j->refs, 1, __ATOMIC_RELAXED); /* the pool's */
    int done = phc__pool_run(g->workers, &j->task, g->timeout_ms);
    if (done < 0) {
        __atomic_sub_fetch(&j->refs, 1, __ATOMIC_RELAXED);
        return 0;
    }
    if (!done)
        __atomic_store_n(&g->stuck, 1, __ATOMIC_RELEASE);
    return done;
}

static struct job *job_new(enum op op, const unsigned char *in, int inlen, size_t outlen)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->refs = 1;
    j->task.run = job_run;
    j->task.put = job_put_task;
    phc__done_init(&j->task.done);
    j->op = op;
    j->inlen = inlen;
    j->in = OPENSSL_memdup(in, (size_t)inlen);
    j->out = calloc(1, outlen);
    if (!j->in || !j->out) {
        job_put(j);
        return NULL;
    }
    return j;
}

static int rsa_op(enum op op, int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                  int padding)
{
    struct guard *g = RSA_get_ex_data(rsa, rsa_idx);
    /* While an earlier operation is still out, the token is treated as hung: failing at
     * once keeps every caller from piling up behind it. */
    if (!g || flen < 0 || __atomic_load_n(&g->stuck, __ATOMIC_ACQUIRE))
        return -1;
    size_t outlen = (size_t)RSA_size(g->rsa);
    struct job *j = job_new(op, from, flen, outlen);
    if (!j)
        return -1;
    j->padding = padding;
    RSA_up_ref(g->rsa);
    j->rsa = g->rsa;
    int done = run_bounded(g, j);
    int ret = -1;
    if (done && j->ret > 0 && (size_t)j->ret <= outlen) {
        memcpy(to, j->out, (size_t)j->ret);
        ret = j->ret;
    }
    job_put(j);
    return ret;
}

static int guarded_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                            int padding)
{
    return rsa_op(OP_RSA_ENC, flen, from, to, rsa, padding);
}

static int guarded_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                            int padding)
{
    return rsa_op(OP_RSA_DEC, flen, from, to, rsa, padding);
}

static int guarded_ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
                           unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
    struct guard *g = EC_KEY_get_ex_data(eckey, ec_idx);
    if (!g || dlen < 0 || __atomic_load_n(&g->stuck, __ATOMIC_ACQUIRE))
        return 0;
    size_t outlen = (size_t)ECDSA_size(g->ec);
    struct job *j = job_new(OP_EC_SIGN, dgst, dlen, outlen);
    if (!j)
        return 0;
    j->type = type;
    EC_KEY_up_ref(g->ec);
    j->ec = g->ec;
    int done = run_bounded(g, j);
    int ret = 0;
    if (done && j->ret == 1 && j->siglen <= outlen) {
        memcpy(sig, j->out, j->siglen);
        *siglen = j->siglen;
        ret = 1;
    }
    job_put(j);
    return ret;
}

/* ECDSA_do_sign goes through sign_sig; route it through the guarded sign and decode. */
static ECDSA_SIG *guarded_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
                                      const BIGNUM *r, EC_KEY *eckey)
{
    unsigned char der[160];
    unsigned int len = 0;
    if ((size_t)ECDSA_size(eckey) > sizeof(der) ||
        guarded_ec_sign(0, dgst, dlen, der, &len, kinv, r, eckey) != 1)
        return NULL;
    const unsigned char *p = der;
    return d2i_ECDSA_SIG(NULL, &p, (long)len);
}

/* Method tables are made once per token method (libp11 has one of each) and live as long
 * as the process, like libp11's own. */
static pthread_mutex_t meth_mu = PTHREAD_MUTEX_INITIALIZER;
static const RSA_METHOD *rsa_from;
static RSA_METHOD *rsa_meth;
static const EC_KEY_METHOD *ec_from;
static EC_KEY_METHOD *ec_meth;

static RSA_METHOD *guarded_rsa_method(const RSA_METHOD *from)
{
    pthread_mutex_lock(&meth_mu);
    if (!rsa_meth || rsa_from != from) {
        RSA_METHOD *m = RSA_meth_dup(from);
        if (m && RSA_meth_set1_name(m, "phconnect guarded token key") &&
            RSA_meth_set_priv_enc(m, guarded_priv_enc) &&
            RSA_meth_set_priv_dec(m, guarded_priv_dec) && RSA_meth_set_init(m, NULL) &&
            RSA_meth_set_finish(m, NULL)) {
            rsa_meth = m; /* an older table stays valid for keys already made with it */
            rsa_from = from;
        } else {
            RSA_meth_free(m);
        }
    }
    RSA_METHOD *m = rsa_from == from ? rsa_meth : NULL;
    pthread_mutex_unlock(&meth_mu);
    return m;
}

static EC_KEY_METHOD *guarded_ec_method(const EC_KEY_METHOD *from)
{
    pthread_mutex_lock(&meth_mu);
    if (!ec_meth || ec_from != from) {
        EC_KEY_METHOD *m = EC_KEY_METHOD_new(from);
        if (m) {
            int (*setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;
            EC_KEY_METHOD_get_sign(from, NULL, &setup, NULL);
            EC_KEY_METHOD_set_sign(m, guarded_ec_sign, setup, guarded_ec_sign_sig);
            EC_KEY_METHOD_set_init(m, NULL, NULL, NULL, NULL, NULL, NULL);
            ec_meth = m;
            ec_from = from;
        }
    }
    EC_KEY_METHOD *m = ec_from == from ? ec_meth : NULL;
    pthread_mutex_unlock(&meth_mu);
    return m;
}

static int guard_rsa(EVP_PKEY *out, EVP_PKEY *key, struct guard *g, phc_errbuf *err)
{
    RSA *src = EVP_PKEY_get1_RSA(key);
    RSA *r = NULL;
    RSA_METHOD *m = src ? guarded_rsa_method(RSA_get_method(src)) : NULL;
    const BIGNUM *n = NULL, *e = NULL;
    if (src)
        RSA_get0_key(src, &n, &e, NULL);
    BIGNUM *n2 = n ? BN_dup(n) : NULL, *e2 = e ? BN_dup(e) : NULL;
    if (!m || !n2 || !e2 || !(r = RSA_new()) || !RSA_set_method(r, m) ||
        !RSA_set0_key(r, n2, e2, NULL)) {
        BN_free(n2);
        BN_free(e2);
        RSA_free(r);
        RSA_free(src);
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot wrap the token's RSA key");
    }
    g->rsa = src;
    if (!RSA_set_ex_data(r, rsa_idx, g) || !EVP_PKEY_assign_RSA(out, r)) {
        g->rsa = NULL;
        RSA_free(src);
        RSA_free(r);
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot wrap the token's RSA key");
    }
    return PHC_OK;
}

static int guard_ec(EVP_PKEY *out, EVP_PKEY *key, struct guard *g, phc_errbuf *err)
{
    EC_KEY *src = EVP_PKEY_get1_EC_KEY(key);
    EC_KEY *k = NULL;
    EC_KEY_METHOD *m = src ? guarded_ec_method(EC_KEY_get_method(src)) : NULL;
    if (!m || !(k = EC_KEY_new()) || !EC_KEY_set_method(k, m) ||
        !EC_KEY_set_group(k, EC_KEY_get0_group(src)) ||
        !EC_KEY_set_public_key(k, EC_KEY_get0_public_key(src))) {
        EC_KEY_free(k);
        EC_KEY_free(src);
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot wrap the token's EC key");
    }
    g->ec = src;
    if (!EC_KEY_set_ex_data(k, ec_idx, g) || !EVP_PKEY_assign_EC_KEY(out, k)) {
        g->ec = NULL;
        EC_KEY_free(src);
        EC_KEY_free(k);
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot wrap the token's EC key");
    }
    return PHC_OK;
}

int phc__guard_key(EVP_PKEY **out, EVP_PKEY *key, long timeout_ms, const char *token,
                   phc_errbuf *err)
{
    *out = NULL;
    pthread_once(&idx_once, make_indexes);
    if (rsa_idx < 0 || ec_idx < 0)
        return phc__err(err, PHC_ERR_INTERNAL, "cannot allocate key ex_data indexes");
    struct guard *g = calloc(1, sizeof(*g));
    EVP_PKEY *pk = EVP_PKEY_new();
    if (!g || !pk) {
        free(g);
        EVP_PKEY_free(pk);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    g->timeout_ms = timeout_ms;
    /* As many signatures in flight as libp11 has sessions per slot. */
    if (!(g->workers = phc__pool_new(16))) {
        free(g);
        EVP_PKEY_free(pk);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    snprintf(g->stuck_msg, sizeof(g->stuck_msg),
             "token '%s' did not answer a signing request within %ld ms", token, timeout_ms);
    int type = EVP_PKEY_get_base_id(key);
    int rc = type == EVP_PKEY_RSA  ? guard_rsa(pk, key, g, err)
             : type == EVP_PKEY_EC ? guard_ec(pk, key, g, err)
                                   : phc__err(err, PHC_ERR_HSM, "unsupported token key type");
    if (rc != PHC_OK) {
        /* On success g belongs to the wrapped key (freed by its ex_data destructor). */
        phc__pool_free(g->workers);
        free(g);
        EVP_PKEY_free(pk);
        return rc;
    }
    *out = pk;
    return PHC_OK;
}

const char *phc__guard_stuck(const EVP_PKEY *guarded)
{
    struct guard *g = NULL;
    int type = EVP_PKEY_get_base_id(guarded);
    if (type == EVP_PKEY_RSA && rsa_idx >= 0)
        g = RSA_get_ex_data(EVP_PKEY_get0_RSA(guarded), rsa_idx);
    else if (type == EVP_PKEY_EC && ec_idx >= 0)
        g = EC_KEY_get_ex_data(EVP_PKEY_get0_EC_KEY(guarded), ec_idx);
    return g && __atomic_load_n(&g->stuck, __ATOMIC_ACQUIRE) ? g->stuck_msg : NULL;
}
