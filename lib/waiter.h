/* A finished-flag that a detached worker raises and a caller awaits with a deadline: the one
 * mechanism behind the time bounds on token operations (sign_guard.c, gen_open.c). The
 * worker writes its results before phc__done_set; a caller that saw phc__done_wait return 1
 * may read them (the mutex orders the two). */
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

/* Waits at most timeout_ms (0: only looks) and returns 1 when the flag is up. */
int phc__done_wait(phc_done *d, long timeout_ms);

/* Starts fn(arg) on a detached thread; 0 on success. */
int phc__spawn_detached(void *(*fn)(void *), void *arg);

#endif
