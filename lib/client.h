/* The client's internals that other units reach: the bench unit (bench.c) signs with the
 * client's current generation, as a request would; stats.c reads the identity in use. */
#ifndef PHC_CLIENT_H
#define PHC_CLIENT_H

#include "gen.h"

#include <phconnect/phconnect.h>

/* A reference on the client's current generation (release with phc__gen_unref), after the
 * checks every call makes: a client (PHC_ERR_CONFIG when NULL) used in the process that made
 * it (PHC_ERR_HSM after fork()), with the token available (else its reason). */
PHC_WUR int phc__client_gen(phc_client *c, phc_gen **out, phc_errbuf *err);

/* A reference on the client's current generation (phc__gen_unref it), or NULL while the
 * token is unavailable; for statistics (stats.c). Never opens the token. */
phc_gen *phc__client_peek_gen(phc_client *c);

#endif
