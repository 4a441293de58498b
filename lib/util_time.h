/* The monotonic clock and the sleep every unit uses: deadlines, back-off and retry waits are
 * measured on a clock that wall-clock changes do not move. */
#ifndef PHC_UTIL_TIME_H
#define PHC_UTIL_TIME_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC (from an arbitrary start). */
int64_t phc__mono_ms(void);

/* Seconds on CLOCK_MONOTONIC, as a double with nanosecond resolution (for measurements). */
double phc__mono_seconds(void);

/* Whole days from now until t (both epoch seconds), rounded down: negative once t has
 * passed, -1 on the day after. */
long phc__days_until(long long t, long long now);

/* Sleeps ms milliseconds (nothing for ms <= 0). A signal does not cut the wait short: the
 * remaining time is slept after EINTR; any other failure ends the wait. */
void phc__sleep_ms(int64_t ms);

#endif
