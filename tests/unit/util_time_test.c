/* The monotonic clock and the EINTR-safe sleep (lib/util_time.c). */
#include "testutil.h"
#include "util_time.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t signals;

static void on_alarm(int sig)
{
    (void)sig;
    signals++;
}

static void *interrupter(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    for (int i = 0; i < 5; i++) {
        usleep(50000);
        pthread_kill(target, SIGUSR1);
    }
    return NULL;
}

static void test_clock(void)
{
    int64_t a = phc__mono_ms();
    double s = phc__mono_seconds();
    int64_t b = phc__mono_ms();
    CHECK(a > 0 && b >= a);
    CHECK(s * 1000 >= (double)a - 1 && s * 1000 <= (double)b + 1);
}

static void test_sleep(void)
{
    int64_t t0 = phc__mono_ms();
    phc__sleep_ms(0);
    phc__sleep_ms(-5);
    CHECK(phc__mono_ms() - t0 < 50);
    t0 = phc__mono_ms();
    phc__sleep_ms(120);
    int64_t took = phc__mono_ms() - t0;
    CHECK(took >= 120 && took < 2000);
}

/* Signals during the sleep do not shorten it. */
static void test_sleep_eintr(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm; /* no SA_RESTART: nanosleep returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t self = pthread_self(), th;
    CHECK(pthread_create(&th, NULL, interrupter, &self) == 0);
    int64_t t0 = phc__mono_ms();
    phc__sleep_ms(600);
    int64_t took = phc__mono_ms() - t0;
    pthread_join(th, NULL);
    CHECK(signals >= 1);
    CHECK(took >= 600);
}

int main(void)
{
    test_clock();
    test_sleep();
    test_sleep_eintr();
    TEST_MAIN_END();
}
