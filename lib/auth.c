#include "auth.h"

#include "err.h"

#include <stdlib.h>

/* Placeholder until the client-credentials unit lands: a config with client_id is refused
 * rather than sending requests without the token the operator configured. */
struct phc_auth {
    int unused;
};

int phc__auth_new(phc_auth **out, const phc_config *cfg, const phc_log *log, phc_errbuf *err)
{
    *out = NULL;
    return phc__err(err, PHC_ERR_CONFIG,
                    "config key 'client_id': client credentials are not supported by this "
                    "build yet");
}

int phc__auth_request(phc_auth *a, phc_auth_perform_fn perform, void *ud, const phc_request *req,
                      phc_response **out, phc_errbuf *err)
{
    return perform(ud, req, out, err);
}

void phc__auth_free(phc_auth *a)
{
    free(a);
}
