/* The bench unit (lib/bench.c, phconnect/bench.h): the token's signing rate through a real
 * client on a SoftHSM token, and its refusals. */
#include "testtoken.h"

#include <phconnect/bench.h>

static phc_config *config(const char *pki, const tok *t, int with_key)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    char ca[PATH_MAX + 16];
    snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
    int ok = phc_config_new(&c, &e) == 0 &&
             phc_config_set(c, "url", "https://api.powerhub.test:8443", &e) == 0 &&
             phc_config_set(c, "ca_file", ca, &e) == 0;
    if (ok && with_key)
        ok =
            phc_config_set(c, "pkcs11_module", MODULE, &e) == 0 &&
            phc_config_set(c, "key", "pkcs11:token=phc-test;object=client;type=private", &e) == 0 &&
            phc_config_set(c, "pin", t->pin, &e) == 0;
    else if (ok)
        ok = phc_config_set(c, "client_id", "bench", &e) == 0 &&
             phc_config_set(c, "client_secret", "env:PHC_BENCH_TEST_SECRET", &e) == 0;
    if (!ok) {
        fprintf(stderr, "config: %s\n", e.msg);
        phc_config_free(c);
        return NULL;
    }
    return c;
}

int main(void)
{
    phc_errbuf e = {0};
    double s = -1;
    /* no client */
    CHECK_ERR(phc_client_sign_test(NULL, 1, &s, &e), e, PHC_ERR_CONFIG, "no client");
    CHECK(s == 0);

    const char *pki = getenv("PHC_PKI");
    CHECK(pki != NULL);
    if (!pki || tt_begin("bench") || !tt_have_softhsm())
        TEST_MAIN_END();
    tok t;
    phc_client *cl = NULL;
    phc_config *c = NULL;
    if (tok_init(&t, "tok", "phc-test ec:P-256"))
        goto out;
    CHECK(sh("bash '%s/tests/fixtures/pki.sh' issue-client '%s' '%s/pub.pem' '/CN=bench-client' "
             "'%s/client.pem' 30 >/dev/null && bash '%s/tests/fixtures/token.sh' putcert '%s' "
             "'%s/client.pem' client 01",
             g_src, pki, t.dir, g_tmp, g_src, t.dir, g_tmp) == 0);

    /* a client with the token key: n signatures, timed */
    if (!(c = config(pki, &t, 1)))
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
    if (!(c = config(pki, &t, 0)))
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
