#include "util_retry.h"

#include "wait.h"

#include <stdlib.h>
#include <string.h>

long phc__retry_after(const char *value)
{
    if (!value)
        return 1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strspn(value, "0123456789");
    if (n == 0 || value[n + strspn(value + n, " \t")] != '\0')
        return 1;
    if (n > 6)
        return PHC_RETRY_AFTER_MAX;
    long v = strtol(value, NULL, 10);
    return v > PHC_RETRY_AFTER_MAX ? PHC_RETRY_AFTER_MAX : v;
}

void phc__retry_init(phc_retry *r, long budget_s)
{
    if (budget_s > PHC_RETRY_BUDGET_S)
        budget_s = PHC_RETRY_BUDGET_S;
    r->attempt = 1;
    r->max_attempts = PHC_RETRY_ATTEMPTS;
    r->budget_ms = budget_s > 0 ? (int64_t)budget_s * 1000 : 0;
    r->waited_ms = 0;
    r->wait_s = 0;
}

void phc__retry_limits(phc_retry *r, int max_attempts, unsigned int max_wait_ms)
{
    if (max_attempts > 0)
        r->max_attempts = max_attempts;
    if (max_wait_ms > 0)
        r->budget_ms = max_wait_ms;
}

int phc__retry_status(long status)
{
    return status == 429 || status == 503;
}

int phc__retry_next(phc_retry *r, long status, const char *retry_after)
{
    r->wait_s = phc__retry_after(retry_after);
    if (!phc__retry_status(status) || r->attempt >= r->max_attempts)
        return 0;
    return r->waited_ms + (int64_t)r->wait_s * 1000 <= r->budget_ms;
}

void phc__retry_wait(phc_retry *r)
{
    phc__wait_ms((int64_t)r->wait_s * 1000); /* through the thread's wait hook, if any */
    r->waited_ms += (int64_t)r->wait_s * 1000;
    r->attempt++;
}
