#include "log.h"

#include <stdarg.h>
#include <stdio.h>

void phc__log(const phc_log *log, phc_log_level level, const char *fmt, ...)
{
    if (!log || !log->fn || level > log->level)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log->fn(log->ud, level, buf);
}
