/* The calling thread's wait hook (phconnect/wait.h): the one place where the request path
 * waits for the network or for time, so that with a hook set those waits hand control back to
 * the application's event loop instead of blocking the thread. */
#ifndef PHC_WAIT_H
#define PHC_WAIT_H

#include <phconnect/phconnect.h>

#include <poll.h>
#include <pthread.h>
#include <stdint.h>

/* The longest single wait handed to a hook, in milliseconds (also the cap on libcurl's
 * timer: -1 or more becomes this). */
#define PHC_WAIT_MAX_MS 1000

/* 1 when the calling thread has a wait hook. */
int phc__wait_hooked(void);

/* Calls the calling thread's hook with fds/nfds/timeout_ms (the caller checks phc__wait_hooked
 * first; without a hook this does nothing). May run other requests on this thread. */
void phc__wait_call(struct pollfd *fds, unsigned int nfds, int timeout_ms);

/* The one wait on a condition variable that another request may signal (an API token fetch,
 * a new connection's session, a token worker): with a hook, that request may be a coroutine
 * parked on this very thread, which a condition wait would never let run. Called with mu
 * held; returns with it held, and the caller looks at its condition again.
 * Without a hook: waits on cv at most ms (cv on CLOCK_MONOTONIC; ms < 0: no bound). With one:
 * releases mu, lets the hook run this thread's other work for up to look_ms (never more than
 * ms), and takes mu again. */
void phc__wait_cond(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms, int look_ms);

/* Waits ms milliseconds: through the hook, in pieces of at most PHC_WAIT_MAX_MS until the
 * whole wait has passed on the monotonic clock; without one, phc__sleep_ms. */
void phc__wait_ms(int64_t ms);

#endif
