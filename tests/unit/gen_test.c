/* lib/gen.c: one identity generation on a real SoftHSM token - the pair it chose, the trust
 * it was built from, identity comparison, references, the test signature - and one without
 * a token key (client credentials only); a transfer to a closed port on loopback fails as a
 * network error naming the address. */
#include "gen.h"
#include "testclient.h"

#include <time.h>

int main(void)
{
    phc_errbuf e = {0};
    phc_trust *trust = NULL;
    phc_config *ck = NULL, *cc = NULL;
    phc_gen *g = NULL, *g2 = NULL, *n = NULL, *n2 = NULL;
    tok t;
    if (tt_begin("gen") || !tt_have_softhsm())
        TEST_MAIN_END();
    if (tc_token(&t, "tok", "/CN=gen-client"))
        goto out;
    if (!(ck = tc_config(&t, 1, "https://127.0.0.1:1")) ||
        !(cc = tc_config(&t, 0, "https://127.0.0.1:1")))
        goto out;
    CHECK(phc__trust_load(&trust, ck->ca_file, NULL, 0, &e) == 0);
    long long now = (long long)time(NULL);

    /* with the token key */
    int rc = phc__gen_new(&g, ck, trust, NULL, now, NULL, &e);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "gen: %s\n", e.msg);
        goto out;
    }
    CHECK(phc__gen_has_key(g) == 1);
    CHECK(phc__gen_trust(g) == trust);
    X509 *cert = phc__gen_cert(g);
    char subj[256] = "";
    if (cert)
        phc__name_str(subj, sizeof(subj), X509_get_subject_name(cert));
    CHECK(strcmp(subj, "CN=gen-client") == 0);
    double s = -1;
    CHECK(phc__gen_sign(g, 3, &s, &e) == 0 && s > 0);
    /* a second generation from the same token presents the same certificate */
    CHECK(phc__gen_new(&g2, ck, trust, NULL, now, NULL, &e) == 0);
    CHECK(g2 && phc__gen_same_identity(g, g2) == 1);
    CHECK(phc__gen_ref(g) == g);
    phc__gen_unref(g); /* the extra reference: g lives on */
    CHECK(phc__gen_has_key(g) == 1);

    /* without a key */
    CHECK(phc__gen_new(&n, cc, trust, NULL, now, NULL, &e) == 0);
    CHECK(phc__gen_new(&n2, cc, trust, NULL, now, NULL, &e) == 0);
    CHECK(n && phc__gen_has_key(n) == 0 && phc__gen_cert(n) == NULL);
    CHECK(n && n2 && phc__gen_same_identity(n, n2) == 1);
    CHECK(n && phc__gen_same_identity(g, n) == 0 && phc__gen_same_identity(n, g) == 0);
    s = -1;
    if (n)
        CHECK_ERR(phc__gen_sign(n, 1, &s, &e), e, PHC_ERR_CONFIG,
                  "the client has no token key to sign with");
    CHECK(s == 0);

    /* a transfer to a closed port on loopback */
    phc_request req = {.version = PHC_REQUEST_VERSION, .path = "/v2/asset/sites"};
    phc_response *resp = NULL;
    int unsent = -1;
    memset(&e, 0, sizeof(e));
    rc = phc__gen_perform(g, &req, &resp, &unsent, &e);
    CHECK_ERR(rc, e, PHC_ERR_NETWORK, "cannot connect to https://127.0.0.1:1");
    CHECK(resp == NULL && (unsent == 0 || unsent == 1));
out:
    phc__gen_unref(g);
    phc__gen_unref(g2);
    phc__gen_unref(n);
    phc__gen_unref(n2);
    phc__gen_unref(NULL);
    phc__trust_free(trust);
    phc_config_free(ck);
    phc_config_free(cc);
    tt_end();
    TEST_MAIN_END();
}
