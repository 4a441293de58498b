/* What `phc bench` measures beyond requests (phconnect/bench.h: unstable, not the core API):
 * the token's raw signing rate, through the same generation a request would use. */
#include "client.h"
#include "err.h"
#include "gen.h"

#include <phconnect/bench.h>

int phc_client_sign_test(phc_client *c, int n, double *seconds, phc_errbuf *err)
{
    *seconds = 0;
    phc_gen *g = NULL;
    int rc = phc__client_gen(c, &g, err);
    if (rc == PHC_OK)
        rc = phc__gen_sign(g, n, seconds, err);
    phc__gen_unref(g);
    return rc;
}
