/* A SoftHSM token with the client key (EC P-256, 'client', id 01) and a certificate for it
 * from the test PKI's vendor CA, and configurations for it: shared by the unit tests that make
 * clients or generations (bench_test.c, client_test.c, gen_test.c). */
#ifndef PHC_TESTCLIENT_H
#define PHC_TESTCLIENT_H

#include "testtoken.h"

#define TC_KEY_URI "pkcs11:token=phc-test;object=client;type=private"

/* A fresh token in g_tmp/name with the key and a certificate for subject (30 days). Returns
 * 0 or -1 (recorded as a failed check). */
TT_HELPER int tc_token(tok *t, const char *name, const char *subject)
{
    const char *pki = getenv("PHC_PKI");
    CHECK(pki != NULL);
    if (!pki || tok_init(t, name, "phc-test ec:P-256"))
        return -1;
    int rc = sh("bash '%s/tests/fixtures/pki.sh' issue-client '%s' '%s/pub.pem' '%s' "
                "'%s/client.pem' 30 >/dev/null && bash '%s/tests/fixtures/token.sh' putcert '%s' "
                "'%s/client.pem' client 01",
                g_src, pki, t->dir, subject, t->dir, g_src, t->dir, t->dir);
    CHECK(rc == 0);
    return rc == 0 ? 0 : -1;
}

/* A configuration for url with the test PKI's vendor CA: with_key, the token t's key (module,
 * key, PIN); otherwise client credentials only. NULL (a failed check) when refused. */
TT_HELPER phc_config *tc_config(const tok *t, int with_key, const char *url)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    char ca[PATH_MAX + 16];
    snprintf(ca, sizeof(ca), "%s/ca.pem", getenv("PHC_PKI") ? getenv("PHC_PKI") : ".");
    int ok = phc_config_new(&c, &e) == 0 && phc_config_set(c, "url", url, &e) == 0 &&
             phc_config_set(c, "ca_file", ca, &e) == 0;
    if (ok && with_key)
        ok = phc_config_set(c, "pkcs11_module", MODULE, &e) == 0 &&
             phc_config_set(c, "key", TC_KEY_URI, &e) == 0 &&
             phc_config_set(c, "pin", t->pin, &e) == 0;
    else if (ok)
        ok = phc_config_set(c, "client_id", "unit", &e) == 0 &&
             phc_config_set(c, "client_secret", "env:PHC_UNIT_TEST_SECRET", &e) == 0;
    CHECK(ok);
    if (!ok) {
        fprintf(stderr, "config: %s\n", e.msg);
        phc_config_free(c);
        return NULL;
    }
    return c;
}

#endif
