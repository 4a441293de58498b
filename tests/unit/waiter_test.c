/* waiter unit: the finished-flag's deadline (expiry on CLOCK_MONOTONIC, a flag raised in
 * time, a look without waiting) and the worker pool behind the signature bound: a task's
 * result comes back; a stuck worker costs its caller only the bound, does not hold back the
 * next task, and the pool freed under it is let go by the stuck worker when it returns; a
 * forked child frees its copy without waiting for the parent's threads. */
#include "waiter.h"

#include "testutil.h"

#include <stdatomic.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void test_done_deadline(void)
{
    phc_done d;
    phc__done_init(&d);
    double t0 = now_ms();
    CHECK(phc__done_wait(&d, 0) == 0); /* only looks */
    CHECK(now_ms() - t0 < 50);
    t0 = now_ms();
    CHECK(phc__done_wait(&d, 120) == 0); /* expires */
    double took = now_ms() - t0;
    CHECK(took >= 119 && took < 2000);
    phc__done_set(&d);
    t0 = now_ms();
    CHECK(phc__done_wait(&d, 5000) == 1); /* already up: no wait */
    CHECK(now_ms() - t0 < 50);
    phc__done_destroy(&d);
}

/* A task that blocks while *gate is 0, then records that it ran. */
struct t_task {
    phc_task task;
    atomic_int *gate;
    atomic_int ran;
    atomic_int refs;
    atomic_int *freed;
};

static void t_run(phc_task *t)
{
    struct t_task *x = (struct t_task *)t;
    while (x->gate && !atomic_load(x->gate))
        usleep(1000);
    atomic_store(&x->ran, 1);
}

static void t_put(phc_task *t)
{
    struct t_task *x = (struct t_task *)t;
    if (atomic_fetch_sub(&x->refs, 1) == 1) {
        phc__done_destroy(&x->task.done);
        if (x->freed)
            atomic_fetch_add(x->freed, 1);
        free(x);
    }
}

static struct t_task *t_new(atomic_int *gate, atomic_int *freed)
{
    struct t_task *x = calloc(1, sizeof(*x));
    x->task.run = t_run;
    x->task.put = t_put;
    phc__done_init(&x->task.done);
    x->gate = gate;
    x->freed = freed;
    atomic_store(&x->refs, 2); /* the caller's and the pool's */
    return x;
}

static void test_pool_result(void)
{
    phc_pool *p = phc__pool_new(2);
    CHECK(p != NULL);
    for (int i = 0; i < 50; i++) {
        struct t_task *x = t_new(NULL, NULL);
        CHECK(phc__pool_run(p, &x->task, 5000) == 1);
        CHECK(atomic_load(&x->ran) == 1);
        t_put(&x->task);
    }
    /* 50 tasks one after another: one long-lived worker did them all. */
    CHECK(phc__pool_workers(p) == 1);
    phc__pool_free(p);
}

static void test_pool_stuck_worker(void)
{
    atomic_int gate = 0, freed = 0;
    phc_pool *p = phc__pool_new(2);
    struct t_task *stuck = t_new(&gate, &freed);
    double t0 = now_ms();
    CHECK(phc__pool_run(p, &stuck->task, 100) == 0); /* deadline expiry */
    double took = now_ms() - t0;
    CHECK(took >= 99 && took < 2000);
    CHECK(atomic_load(&stuck->ran) == 0);
    t_put(&stuck->task); /* the caller gives up on it; the worker keeps its reference */
    /* The next task does not wait behind the stuck one. */
    struct t_task *next = t_new(NULL, &freed);
    CHECK(phc__pool_run(p, &next->task, 5000) == 1);
    CHECK(atomic_load(&next->ran) == 1);
    t_put(&next->task);
    CHECK(phc__pool_workers(p) == 2);
    /* Freed while a worker is stuck: nothing waits for it... */
    t0 = now_ms();
    phc__pool_free(p);
    CHECK(now_ms() - t0 < 100);
    for (int i = 0; i < 500 && atomic_load(&freed) < 1; i++)
        usleep(10000); /* the worker drops its reference to the finished task just after */
    CHECK(atomic_load(&freed) == 1);
    /* ...and when the token answers at last, the worker drops the task and leaves. */
    atomic_store(&gate, 1);
    for (int i = 0; i < 500 && atomic_load(&freed) < 2; i++)
        usleep(10000);
    CHECK(atomic_load(&freed) == 2);
}

/* A forked child frees its copy of a pool whose workers are the parent's threads: no wait
 * for threads that do not exist there. */
static void test_pool_free_in_child(void)
{
    phc_pool *p = phc__pool_new(2);
    struct t_task *x = t_new(NULL, NULL);
    CHECK(phc__pool_run(p, &x->task, 5000) == 1);
    t_put(&x->task);
    CHECK(phc__pool_workers(p) == 1);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10); /* a wait for the parent's threads would hang here */
        phc__pool_free(p);
        _exit(0);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    phc__pool_free(p);
}

int main(void)
{
    test_done_deadline();
    test_pool_result();
    test_pool_stuck_worker();
    test_pool_free_in_child();
    TEST_MAIN_END();
}
