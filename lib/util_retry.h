/* The one retry policy for answers that say "later" (429 Too Many Requests, 503 Service
 * Unavailable), used by requests (client.c) and by the token endpoint (auth.c):
 *  - at most PHC_RETRY_ATTEMPTS attempts in all (a client's options may choose another count);
 *  - before each new attempt, the wait the answer's Retry-After asks for (phc__retry_after);
 *  - the waits add up to at most the budget (PHC_RETRY_BUDGET_S, or less when the caller's
 *    own timeout is smaller); an answer asking for more than is left ends the retries at once.
 * What to do with the last answer (return it, or refuse) is the caller's. */
#ifndef PHC_UTIL_RETRY_H
#define PHC_UTIL_RETRY_H

#include <phconnect/phconnect.h>

#include <stdint.h>

#define PHC_RETRY_ATTEMPTS 3
#define PHC_RETRY_BUDGET_S 30
/* Longest Retry-After believed (one day); larger values are clamped. */
#define PHC_RETRY_AFTER_MAX 86400

typedef struct phc_retry {
    int attempt;       /* the attempt just made, from 1 */
    int max_attempts;  /* attempts in all (PHC_RETRY_ATTEMPTS unless phc__retry_limits) */
    int64_t budget_ms; /* total wait allowed */
    int64_t waited_ms; /* waited so far */
    long wait_s;       /* the wait the last answer asked for (phc__retry_next) */
} phc_retry;

/* Seconds to wait for a Retry-After value (RFC 9110 delta-seconds, blanks around it allowed):
 * 0..PHC_RETRY_AFTER_MAX, larger clamped; 1 when absent, an HTTP-date or anything else (a
 * short wait that still backs off). */
long phc__retry_after(const char *value);

/* Starts a policy for one request; budget_s: the caller's own time limit, capped at
 * PHC_RETRY_BUDGET_S (<= 0: no waiting at all). The first attempt is attempt 1. */
void phc__retry_init(phc_retry *r, long budget_s);

/* The caller's own limits (phc_client_opts): max_attempts > 0 replaces the attempt count (1:
 * no retry), max_wait_ms > 0 replaces the budget; 0 keeps the default of phc__retry_init. */
void phc__retry_limits(phc_retry *r, int max_attempts, unsigned int max_wait_ms);

/* 1 when status is 429 or 503; the rest of the policy only applies to those. */
int phc__retry_status(long status);

/* After an attempt answered with status and the Retry-After value retry_after (may be NULL):
 * 1 when another attempt is due (r->wait_s holds its wait), 0 when the policy is spent or
 * status is not 429/503 (r->wait_s still holds what the answer asked for). */
PHC_WUR int phc__retry_next(phc_retry *r, long status, const char *retry_after);

/* Sleeps r->wait_s (EINTR-safe; through the thread's wait hook when it has one, wait.h),
 * counts it and moves on to the next attempt. */
void phc__retry_wait(phc_retry *r);

#endif
