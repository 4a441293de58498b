#include "waiter.h"

#include "util_time.h"
#include "wait.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>

/* With a wait hook, how often a waiter looks at the flag (wait.h). */
#define DONE_LOOK_MS 1

void phc__done_init(phc_done *d)
{
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    d->done = 0;
}

void phc__done_destroy(phc_done *d)
{
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
}

void phc__done_set(phc_done *d)
{
    pthread_mutex_lock(&d->mu);
    d->done = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

int phc__done_wait(phc_done *d, long timeout_ms)
{
    int64_t until = phc__mono_ms() + timeout_ms;
    pthread_mutex_lock(&d->mu);
    /* The work runs on another thread; with a wait hook this thread's other requests run
     * meanwhile (an event loop is not stopped by one slow signature). */
    for (int64_t left = timeout_ms; !d->done && left > 0; left = until - phc__mono_ms())
        phc__wait_cond(&d->cv, &d->mu, left, DONE_LOOK_MS);
    int done = d->done;
    pthread_mutex_unlock(&d->mu);
    return done;
}

int phc__spawn_detached(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc;
}

struct phc_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    phc_task *head, *tail;
    unsigned int queued;  /* tasks in the queue */
    unsigned int running; /* workers inside a task's run */
    unsigned int workers; /* alive */
    unsigned int max;
    unsigned int refs; /* the owner's (until phc__pool_free) and one per worker */
    pid_t pid;         /* the process whose threads the workers are */
    int closing;
};

static void pool_destroy(phc_pool *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void *pool_worker(void *arg)
{
    phc_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->closing)
            pthread_cond_wait(&p->cv, &p->mu);
        phc_task *t = p->head;
        if (!t)
            break; /* closing, nothing left */
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        t->run(t);
        /* Free again before the caller hears of it: its next task finds this worker. */
        pthread_mutex_lock(&p->mu);
        p->running--;
        pthread_mutex_unlock(&p->mu);
        phc__done_set(&t->done);
        t->put(t); /* the task's owner may have given up on it: not touched after this */
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    /* OpenSSL's per-thread state (a token's signing makes thread-local DRBGs) goes before the
     * pool hears of the exit: phc__pool_free waits for that, so nothing of it is left when
     * the process exits right after freeing a client. */
    OPENSSL_thread_stop();
    pthread_mutex_lock(&p->mu);
    p->workers--;
    pthread_cond_broadcast(&p->cv);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last)
        pool_destroy(p);
    return NULL;
}

phc_pool *phc__pool_new(unsigned int max)
{
    phc_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->max = max ? max : 1;
    p->refs = 1;
    p->pid = getpid();
    return p;
}

int phc__pool_run(phc_pool *p, phc_task *t, long timeout_ms)
{
    pthread_mutex_lock(&p->mu);
    if (p->queued + 1 > p->workers - p->running && p->workers < p->max) {
        p->refs++;
        p->workers++;
        if (phc__spawn_detached(pool_worker, p) != 0) {
            p->refs--;
            p->workers--;
            if (!p->workers) {
                pthread_mutex_unlock(&p->mu);
                return -1;
            }
        }
    }
    t->next = NULL;
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return phc__done_wait(&t->done, timeout_ms);
}

void phc__pool_free(phc_pool *p)
{
    if (!p)
        return;
    if (p->pid != getpid()) {
        /* A forked child's copy: its workers are the parent's threads, and the mutex may
         * have been held by one of them at the fork. Nothing here runs on it. */
        free(p);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->closing = 1;
    pthread_cond_broadcast(&p->cv);
    /* Idle workers end at once and are waited for; one still inside a task (a token that
     * does not answer) is not. */
    while (p->workers > p->running)
        pthread_cond_wait(&p->cv, &p->mu);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last)
        pool_destroy(p);
}

unsigned int phc__pool_workers(phc_pool *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned int n = p->workers;
    pthread_mutex_unlock(&p->mu);
    return n;
}
