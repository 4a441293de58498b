#include "conn_gate.h"

#include "util_time.h"
#include "wait.h"

#include <time.h>

void phc__conn_gate_init(phc_conn_gate *g)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    g->busy = 0;
    g->since = 0;
    g->turn = 0;
}

void phc__conn_gate_destroy(phc_conn_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

unsigned long phc__conn_gate_enter(phc_conn_gate *g)
{
    pthread_mutex_lock(&g->mu);
    for (;;) {
        long long now = phc__mono_ms(), until = g->since + PHC_CONN_GATE_HOLD_MS;
        if (!g->busy || now >= until)
            break;
        /* The holder may be a coroutine parked on this very thread (wait.h). */
        phc__wait_cond(&g->cv, &g->mu, until - now, 2);
    }
    g->busy = 1;
    g->since = phc__mono_ms();
    unsigned long turn = ++g->turn;
    pthread_mutex_unlock(&g->mu);
    return turn;
}

void phc__conn_gate_leave(phc_conn_gate *g, unsigned long turn)
{
    pthread_mutex_lock(&g->mu);
    if (g->busy && g->turn == turn) {
        g->busy = 0;
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
}
