/* What client.c lends to the rest of the library beyond the public API. */
#ifndef PHC_CLIENT_GEN_H
#define PHC_CLIENT_GEN_H

#include "gen.h"

/* A reference on the client's current generation (phc__gen_unref it), or NULL while the
 * token is unavailable. Never opens the token. */
phc_gen *phc__client_gen(phc_client *c);

#endif
