/* New connections of one generation, one at a time. The first connection makes the full TLS
 * handshake (the token signature) and leaves a TLS session; the next resumes it and is
 * given a fresh one. Made at the same instant, a burst of new connections would all find
 * the same session, and all but one would fall back to a full handshake - one token
 * signature each (measured: 3 to 8 signatures for 20 clients without the gate, 1 with it).
 * A request that needs a new connection enters the gate; it leaves when its connection has
 * stored the session it got (the next one can resume), when its transfer ends, or after
 * PHC_CONN_GATE_HOLD_MS at the latest (a stalled server must not stop every other new
 * connection; a handshake slower than that costs at most one more signature). Requests on
 * kept-alive connections never wait here. */
#ifndef PHC_CONN_GATE_H
#define PHC_CONN_GATE_H

#include <pthread.h>

#define PHC_CONN_GATE_HOLD_MS 1000

typedef struct phc_conn_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    int busy;
    long long since; /* when the holder entered (phc__mono_ms) */
    unsigned long turn;
} phc_conn_gate;

void phc__conn_gate_init(phc_conn_gate *g);
void phc__conn_gate_destroy(phc_conn_gate *g);

/* Waits for the gate (through the thread's wait hook when it has one: the holder may be
 * another coroutine of this thread) and takes it; returns the caller's turn. */
unsigned long phc__conn_gate_enter(phc_conn_gate *g);

/* Leaves the gate if turn still holds it; a second call for the same turn does nothing. */
void phc__conn_gate_leave(phc_conn_gate *g, unsigned long turn);

#endif
