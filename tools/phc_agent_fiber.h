/* Fibers for the agent's event loop: a forwarded request runs phc_client_request on a stack
 * of its own, and the library's wait hook (phc_set_thread_wait) switches back to the loop
 * instead of blocking, so one thread serves every request in flight. A fiber belongs to the
 * thread that made it and is resumed only there, from that thread's own stack (never from
 * another fiber). */
#ifndef PHC_AGENT_FIBER_H
#define PHC_AGENT_FIBER_H

typedef struct phc_fiber phc_fiber;

/* A fiber that runs fn(arg) when first resumed. NULL when out of memory. Stacks are kept
 * for reuse after phc_fiber_free. */
phc_fiber *phc_fiber_new(void (*fn)(void *arg), void *arg);

/* Runs f until it yields or fn returns; 1 when fn has returned (f may then be freed). */
int phc_fiber_resume(phc_fiber *f);

/* From inside a fiber: back to the phc_fiber_resume that ran it. */
void phc_fiber_yield(void);

/* The fiber running on this thread, NULL on the thread's own stack. */
phc_fiber *phc_fiber_self(void);

/* Frees a fiber whose fn has returned (or that never ran). NULL allowed. */
void phc_fiber_free(phc_fiber *f);

/* Drops this thread's kept stacks (at the end of the thread that made fibers). */
void phc_fiber_release_cache(void);

#endif
