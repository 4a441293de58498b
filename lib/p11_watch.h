/* Which PKCS#11 call a time-bounded token operation is waiting for. A hung call cannot be
 * cancelled, so the bounded runner (token_bound.c) runs the operation on a worker thread and
 * watches it from the caller's: every raw call of the administration path goes through
 * PHC_P11_CALL, which records on the worker's watch (when one is bound to the thread) the
 * call's name and when it started, and clears it when the call returns. The caller gives up
 * when one call has been out longer than the bound, and names it. phc's own work between
 * calls (building a request, reading a PIN source, a retry's pause) is not counted: the bound
 * is on the token's answers. On a thread without a watch (requests, the agent) the notes cost
 * a thread-local load. */
#ifndef PHC_P11_WATCH_H
#define PHC_P11_WATCH_H

#include <p11-kit/pkcs11.h>
#include <pthread.h>

typedef struct phc_p11_watch {
    pthread_mutex_t mu;
    const char *call; /* static name of the call in progress, NULL between calls */
    const char *last; /* the last call made, for a hang outside the noted ones */
    long long since;  /* CLOCK_MONOTONIC ms when call started */
    char token[40];   /* the token's label once known (else the URI's token=) */
} phc_p11_watch;

void phc__p11_watch_init(phc_p11_watch *w);
void phc__p11_watch_destroy(phc_p11_watch *w);

/* Binds w to this thread (NULL: none) for the notes below. */
void phc__p11_watch_bind(phc_p11_watch *w);

/* A call starts / returned (rv passed through). */
void phc__p11_watch_enter(const char *call);
CK_RV phc__p11_watch_leave(CK_RV rv);

/* The token the calls go to, for the message (copied). */
void phc__p11_watch_token(const char *label);

/* Milliseconds left until the call in progress has been out for bound_ms (<= 0: over);
 * bound_ms when no call is out. The names (borrowed, static) and the token label (copied
 * into token, len bytes) as they are at that moment. */
long phc__p11_watch_left(phc_p11_watch *w, long bound_ms, const char **call, const char **last,
                         char *token, size_t len);

/* fn->name(args...), noted on this thread's watch. */
#define PHC_P11_CALL(fn, name, ...)                                                                \
    phc__p11_watch_leave((phc__p11_watch_enter(#name), (fn)->name(__VA_ARGS__)))

#endif
