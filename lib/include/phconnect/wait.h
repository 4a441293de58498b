/* The per-thread wait hook: lets an event loop run phc_client_request on coroutines (fibers)
 * of one thread, the library handing control back to the loop wherever it would otherwise
 * block on the network. Included by phconnect/phconnect.h. */
#ifndef PHCONNECT_WAIT_H
#define PHCONNECT_WAIT_H

#include <poll.h>

#ifdef __cplusplus
extern "C" {
#endif

/* fn(userdata, fds, nfds, timeout_ms): wait until one of fds[0..nfds) is ready for what its
 * events ask (POLLIN, POLLOUT), or until timeout_ms milliseconds have passed (never -1: at
 * most 1000), or less. A return before either is fine (the library checks again and calls
 * fn again). fn need not set revents (they are 0 on entry); when it sets some, the library
 * takes them as what is ready, else it asks poll(2). fds is NULL when nfds is 0: a plain timed
 * wait. fds is borrowed for the call. fn may run other work on this thread before it returns -
 * including other phc_client_request calls (of this client or any other), which is its
 * purpose - and must return to the caller on this thread (a coroutine switch away and back
 * is fine; a longjmp out is not). */
typedef void (*phc_wait_fn)(void *userdata, struct pollfd *fds, unsigned int nfds, int timeout_ms);

/* Sets the calling thread's wait hook (thread-local; other threads are not affected); fn NULL
 * restores blocking waits. userdata is passed to fn as it is (borrowed: it must outlive the
 * hook). With a hook set, every wait of a request made on this thread for something other than
 * the token goes through fn instead of blocking the thread:
 *  - a transfer's wait for its sockets: fds are its sockets with POLLIN/POLLOUT as libcurl
 *    wants them, timeout_ms until libcurl's next timer (at most 1000);
 *  - a 429/503 retry's back-off (phc_client_request's Retry-After wait, and the access token
 *    request's): nfds 0, timeout_ms the wait or a piece of it; the library calls fn until the
 *    whole wait has passed by the monotonic clock;
 *  - a request waiting for another request of the same client that is fetching the access
 *    token (client credentials): nfds 0, timeout_ms 2, repeated until that fetch is done (the
 *    fetching request may be a suspended coroutine of this very thread; blocking would
 *    deadlock it).
 *  - a request that needs a new connection while another new connection of the same
 *    key/certificate pair has not yet stored its TLS session: nfds 0, timeout_ms 2, repeated;
 *  - the token operations the library runs on its worker threads within their time bound (a
 *    TLS handshake's signature, opening and logging in to the token): nfds 0, timeout_ms 1,
 *    repeated until the worker is done or the bound has passed.
 * Whatever else touches the token blocks the thread for its own bounded time. Several
 * requests may be in flight on one thread
 * this way; each keeps its own state, and phc_client_last_connection right after a
 * phc_client_request returns describes that request even when others ran in between. Without
 * a hook (the default) the library waits as it always did. */
PHC_API void phc_set_thread_wait(phc_wait_fn fn, void *userdata);

#ifdef __cplusplus
}
#endif

#endif
