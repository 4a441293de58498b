/* Opening the token under a time bound. Building a generation talks to the token (slot list,
 * session, login, object search) and a token that stopped answering would hold the calling
 * request, and the client's reload lock, for as long as it likes: libp11 0.4.12 has no time
 * bound of its own. The work runs on a worker thread and the caller waits at most the bound;
 * a worker that does not come back in time is left to finish in the background (it holds its
 * own references to the config and the trust store) and, while it is out, no second one is
 * started: callers fail at once instead of piling threads onto a dead token. Its result,
 * when it comes, is taken by the next call. */
#ifndef PHC_GEN_OPEN_H
#define PHC_GEN_OPEN_H

#include "gen.h"

typedef struct phc_gen_job phc_gen_job;

/* Builds a generation for cfg/trust/log at now, waiting at most timeout_ms. *pending is the
 * caller's slot for a worker still out (NULL when none): it is filled on a time-out and
 * consumed by a later call. cfg and trust get references of the worker's own. *latch is
 * the caller's memory of a refused PIN (hsm.h): the worker gets a copy, and the copy as
 * the login left it comes back into *latch with the result (also a late one).
 * Errors: as phc__gen_new, or PHC_ERR_HSM naming the token (from cfg) when it did not answer
 * in time or a previous attempt is still out. */
int phc__gen_open_bounded(phc_gen_job **pending, phc_gen **out, phc_config *cfg, phc_trust *trust,
                          const phc_log *log, long long now, long timeout_ms, phc_pin_latch *latch,
                          phc_errbuf *err);

/* Lets go of a worker still out (it frees what it builds when it finishes). NULL allowed. */
void phc__gen_job_release(phc_gen_job *job);

#endif
