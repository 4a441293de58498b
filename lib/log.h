/* The library's only output channel: a per-client callback with a level. Callers format
 * with phc__log; nothing secret may be passed in (redact first: log whether a secret is
 * present, never its value). */
#ifndef PHC_LOG_H
#define PHC_LOG_H

#include "err.h"

typedef struct phc_log {
    phc_log_fn fn;
    void *ud;
    phc_log_level level;
} phc_log;

/* log may be NULL. */
void phc__log(const phc_log *log, phc_log_level level, const char *fmt, ...) PHC_PRINTF(3, 4);

#endif
