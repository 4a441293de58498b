/* The bench unit (lib/bench.c, phconnect/bench.h): the token's signing rate through a real
 * client on a SoftHSM token, and its refusals. */
#include "testclient.h"

#include <phconnect/bench.h>

int main(void)
{
    phc_errbuf e = {0};
    double s = -1;
    /* no client */
    CHECK_ERR(phc_client_sign_test(NULL, 1, &s, &e), e, PHC_ERR_CONFIG, "no client");
    CHECK(s == 0);

    if (tt_begin("bench") || !tt_have_softhsm())
        TEST_MAIN_END();
    tok t;
    phc_client *cl = NULL;
    phc_config *c = NULL;
    if (tc_token(&t, "tok", "/CN=bench-client"))
        goto out;

    /* a client with the token key: n signatures, timed */
    if (!(c = tc_config(&t, 1, "https://api.powerhub.test:8443")))
        goto out;
    int rc = phc_client_new(&cl, c, NULL, &e);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "client: %s\n", e.msg);
        goto out;
    }
    s = -1;
    CHECK(phc_client_sign_test(cl, 5, &s, &e) == 0);
    CHECK(s > 0 && s < 60);
    phc_client_free(cl);
    cl = NULL;
    phc_config_free(c);

    /* a client with client credentials only has no key to sign with */
    if (!(c = tc_config(&t, 0, "https://api.powerhub.test:8443")))
        goto out;
    CHECK(phc_client_new(&cl, c, NULL, &e) == 0);
    s = -1;
    CHECK_ERR(phc_client_sign_test(cl, 1, &s, &e), e, PHC_ERR_CONFIG,
              "the client has no token key to sign with");
    CHECK(s == 0);
out:
    phc_client_free(cl);
    phc_config_free(c);
    tt_end();
    TEST_MAIN_END();
}
