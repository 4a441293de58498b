/* The retry policy for 429/503 (lib/util_retry.c): the Retry-After rule, the attempt count and
 * the wait budget, and a real wait. */
#include "testutil.h"
#include "util_retry.h"
#include "util_time.h"

static void test_retry_after(void)
{
    CHECK(phc__retry_after(NULL) == 1);
    CHECK(phc__retry_after("") == 1);
    CHECK(phc__retry_after("5") == 5);
    CHECK(phc__retry_after("0") == 0);
    CHECK(phc__retry_after(" 7 ") == 7);
    CHECK(phc__retry_after("\t3\t") == 3);
    CHECK(phc__retry_after("120") == 120);
    CHECK(phc__retry_after("99999999999") == 86400);
    CHECK(phc__retry_after("86401") == 86400);
    CHECK(phc__retry_after("86400") == 86400);
    CHECK(phc__retry_after("-3") == 1);
    CHECK(phc__retry_after("+3") == 1);
    CHECK(phc__retry_after("5x") == 1);
    CHECK(phc__retry_after("5 5") == 1);
    CHECK(phc__retry_after("1.5") == 1);
    CHECK(phc__retry_after("0x10") == 1);
    CHECK(phc__retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 1);
}

static void test_status(void)
{
    CHECK(phc__retry_status(429));
    CHECK(phc__retry_status(503));
    CHECK(!phc__retry_status(500));
    CHECK(!phc__retry_status(200));
    CHECK(!phc__retry_status(401));
}

/* Attempts: 3 in all, then the answer stands. */
static void test_attempts(void)
{
    phc_retry r;
    phc__retry_init(&r, 30);
    CHECK(r.attempt == 1 && r.waited_ms == 0 && r.budget_ms == 30000);
    CHECK(phc__retry_next(&r, 429, "0") && r.wait_s == 0);
    phc__retry_wait(&r);
    CHECK(r.attempt == 2);
    CHECK(phc__retry_next(&r, 503, NULL) && r.wait_s == 1);
    r.attempt++; /* as phc__retry_wait would, without the second */
    r.waited_ms += 1000;
    CHECK(r.attempt == 3);
    CHECK(!phc__retry_next(&r, 429, "0"));
    CHECK(r.wait_s == 0);
}

/* Other answers are never retried, whatever they say. */
static void test_not_retried(void)
{
    phc_retry r;
    phc__retry_init(&r, 30);
    CHECK(!phc__retry_next(&r, 500, "1"));
    CHECK(!phc__retry_next(&r, 404, NULL));
    CHECK(!phc__retry_next(&r, 200, "0"));
}

/* The budget: 30 s at most, or the caller's timeout when smaller; a wait asking for more than
 * is left ends the retries, the wait that exactly fills it is made. */
static void test_budget(void)
{
    phc_retry r;
    phc__retry_init(&r, 600);
    CHECK(r.budget_ms == PHC_RETRY_BUDGET_S * 1000);
    CHECK(phc__retry_next(&r, 429, "30") && r.wait_s == 30);
    CHECK(!phc__retry_next(&r, 429, "31") && r.wait_s == 31);
    CHECK(!phc__retry_next(&r, 429, "120") && r.wait_s == 120);
    r.waited_ms = 20000;
    CHECK(phc__retry_next(&r, 429, "10"));
    CHECK(!phc__retry_next(&r, 429, "11"));

    phc__retry_init(&r, 5);
    CHECK(r.budget_ms == 5000);
    CHECK(phc__retry_next(&r, 503, "5"));
    CHECK(!phc__retry_next(&r, 503, "6"));

    phc__retry_init(&r, 0);
    CHECK(r.budget_ms == 0);
    CHECK(phc__retry_next(&r, 503, "0"));
    CHECK(!phc__retry_next(&r, 503, NULL)); /* 1 s is more than no budget */
}

/* The caller's limits (phc_client_opts): 1 attempt is no retry at all, more attempts than the
 * default are made, a wait budget replaces the default one (even above 30 s), 0 keeps both. */
static void test_limits(void)
{
    phc_retry r;
    phc__retry_init(&r, 30);
    CHECK(r.max_attempts == PHC_RETRY_ATTEMPTS);
    phc__retry_limits(&r, 0, 0);
    CHECK(r.max_attempts == PHC_RETRY_ATTEMPTS && r.budget_ms == 30000);

    phc__retry_limits(&r, 1, 0);
    CHECK(r.max_attempts == 1);
    CHECK(!phc__retry_next(&r, 429, "0"));
    CHECK(!phc__retry_next(&r, 503, NULL));

    phc__retry_init(&r, 30);
    phc__retry_limits(&r, 5, 0);
    for (int i = 1; i < 5; i++) {
        CHECK(r.attempt == i && phc__retry_next(&r, 429, "0"));
        phc__retry_wait(&r);
    }
    CHECK(r.attempt == 5 && !phc__retry_next(&r, 429, "0"));

    phc__retry_init(&r, 30);
    phc__retry_limits(&r, 0, 1500);
    CHECK(r.budget_ms == 1500 && r.max_attempts == PHC_RETRY_ATTEMPTS);
    CHECK(phc__retry_next(&r, 429, "1"));
    CHECK(!phc__retry_next(&r, 429, "2"));

    phc__retry_init(&r, 600);
    phc__retry_limits(&r, 0, 120000);
    CHECK(r.budget_ms == 120000);
    CHECK(phc__retry_next(&r, 503, "100"));
    CHECK(!phc__retry_next(&r, 503, "121"));
}

/* phc__retry_wait really waits, and counts what it waited. */
static void test_wait(void)
{
    phc_retry r;
    phc__retry_init(&r, 30);
    CHECK(phc__retry_next(&r, 429, "1"));
    int64_t t0 = phc__mono_ms();
    phc__retry_wait(&r);
    int64_t took = phc__mono_ms() - t0;
    CHECK(took >= 1000 && took < 5000);
    CHECK(r.waited_ms == 1000 && r.attempt == 2);
}

int main(void)
{
    test_retry_after();
    test_status();
    test_attempts();
    test_not_retried();
    test_budget();
    test_limits();
    test_wait();
    TEST_MAIN_END();
}
