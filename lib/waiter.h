/* The time bounds on token operations (sign_guard.c, gen_open.c): a finished-flag that a
 * worker raises and a caller awaits with a deadline, and a pool of long-lived workers that
 * runs tasks for callers who wait at most their bound. The worker writes its results before
 * phc__done_set; a caller that saw phc__done_wait return 1 may read them (the mutex orders
 * the two). */
#ifndef PHC_WAITER_H
#define PHC_WAITER_H

#include <pthread.h>

typedef struct phc_done {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC: wall-clock jumps move no deadline */
    int done;
} phc_done;

void phc__done_init(phc_done *d);
void phc__done_destroy(phc_done *d);

/* Raises the flag and wakes every waiter. */
void phc__done_set(phc_done *d);

/* Waits at most timeout_ms (0: only looks) and returns 1 when the flag is up. With the
 * thread's wait hook set (wait.h) the wait goes through it, so an event loop's other
 * requests run meanwhile. */
int phc__done_wait(phc_done *d, long timeout_ms);

/* Starts fn(arg) on a detached thread; 0 on success. */
int phc__spawn_detached(void *(*fn)(void *), void *arg);

/* One unit of work for a pool. The owner embeds it, sets run and put, and calls
 * phc__done_init(&done). */
typedef struct phc_task {
    void (*run)(struct phc_task *t); /* the work, on a worker thread */
    void (*put)(struct phc_task *t); /* drops the pool's reference, after run and done */
    phc_done done;
    struct phc_task *next; /* the pool's */
} phc_task;

/* Long-lived worker threads (up to max, started as the load needs them, kept until the pool
 * is freed): a bounded operation costs a hand-over, not a thread. A worker that never comes
 * back only takes itself out of the pool. */
typedef struct phc_pool phc_pool;

/* NULL when out of memory. */
phc_pool *phc__pool_new(unsigned int max);

/* Queues t, whose reference the pool now holds (t->put is called after run and done), and
 * waits at most timeout_ms for it. 1: finished; 0: not within the bound (it still runs, or
 * waits for a worker); -1: no worker could be started (t is not queued and its reference
 * stays with the caller). */
int phc__pool_run(phc_pool *p, phc_task *t, long timeout_ms);

/* Lets the workers go: waits for the idle ones to end (with their OpenSSL thread state);
 * busy ones end after their task, unwaited; the last one out frees the pool. Queued tasks
 * still run. NULL allowed. */
void phc__pool_free(phc_pool *p);

/* Workers alive in the pool (for tests). */
unsigned int phc__pool_workers(phc_pool *p);

#endif
