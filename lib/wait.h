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

/* For a wait on something another request of this thread may do (an API token fetch, a new
 * connection's session): with a hook, the other request may be a coroutine parked on this
 * very thread, which a condition wait would never let finish. Returns 0 without a hook (the
 * caller waits on its condition variable); with one, releases mu, lets the hook run the
 * thread's other work for up to ms, takes mu again and returns 1 (the caller looks again). */
int phc__wait_unlocked(pthread_mutex_t *mu, int ms);

/* Waits ms milliseconds: through the hook, in pieces of at most PHC_WAIT_MAX_MS until the
 * whole wait has passed on the monotonic clock; without one, phc__sleep_ms. */
void phc__wait_ms(int64_t ms);

#endif
