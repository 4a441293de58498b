#include "wait.h"

#include "util_time.h"

#include <time.h>

/* Thread-local: a hook belongs to the event loop running on its thread. */
static __thread phc_wait_fn t_fn;
static __thread void *t_ud;

void phc_set_thread_wait(phc_wait_fn fn, void *userdata)
{
    t_fn = fn;
    t_ud = fn ? userdata : NULL;
}

int phc__wait_hooked(void)
{
    return t_fn != NULL;
}

void phc__wait_call(struct pollfd *fds, unsigned int nfds, int timeout_ms)
{
    /* Read once: the hook may run code that sets another one before it returns. */
    phc_wait_fn fn = t_fn;
    void *ud = t_ud;
    if (fn)
        fn(ud, nfds ? fds : NULL, nfds, timeout_ms);
}

void phc__wait_cond(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms, int look_ms)
{
    if (phc__wait_hooked()) {
        pthread_mutex_unlock(mu);
        phc__wait_call(NULL, 0, ms >= 0 && ms < look_ms ? (int)ms : look_ms);
        pthread_mutex_lock(mu);
        return;
    }
    if (ms < 0) {
        pthread_cond_wait(cv, mu);
        return;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &deadline);
}

void phc__wait_ms(int64_t ms)
{
    if (!phc__wait_hooked()) {
        phc__sleep_ms(ms);
        return;
    }
    /* The hook may return early (a spurious wake-up is allowed): the clock decides. */
    int64_t until = phc__mono_ms() + ms;
    for (int64_t left = ms; left > 0; left = until - phc__mono_ms())
        phc__wait_call(NULL, 0, (int)(left < PHC_WAIT_MAX_MS ? left : PHC_WAIT_MAX_MS));
}
