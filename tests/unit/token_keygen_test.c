/* lib/token_keygen.c on a real SoftHSM token: the rules of key generation (types, ids,
 * labels, pending keys) and their refusals. */
#include "tokentest.h"

static void test_generate_rules(void)
{
    tok tk;
    phc_errbuf e = {0};
    char id[PHC_ID_HEX_MAX];
    if (tok_empty(&tk, "genrules"))
        return;
    /* A key URI that pins an id: enrol uses it; a new key is refused. */
    phc_config *cfg = config_for(&tk, "pkcs11:token=phc-test;object=client;id=%2a", NULL, NULL);
    phc_token *t = open_tok(cfg);
    if (t) {
        int rc = phc_token_generate(t, "rsa:1024", 0, id, &e);
        CHECK_ERR(rc, e, PHC_ERR_CONFIG, "key type 'rsa:1024' is not one of rsa:2048");
        rc = phc_token_generate(t, NULL, 1, id, &e);
        CHECK_ERR(rc, e, PHC_ERR_CONFIG, "pins the id (label 'client' (id 2a))");
        CHECK(phc_token_generate(t, "EC:p-384", 0, id, &e) == 0 && strcmp(id, "2a") == 0);
        CHECK_STATES(t, "2a:pending");
    }
    phc_token_free(t);
    phc_config_free(cfg);

    /* Another label: its objects' ids are skipped; its keys are not the client's. */
    cfg = config_for(&tk, "pkcs11:token=phc-test;object=other", NULL, NULL);
    t = open_tok(cfg);
    if (t) {
        CHECK_STATES(t, "");
        int rc = phc_token_generate(t, NULL, 1, id, &e);
        CHECK_ERR(rc, e, PHC_ERR_HSM, "no key with label 'other' on token 'phc-test' to renew");
        CHECK(phc_token_generate(t, NULL, 0, id, &e) == 0 && strcmp(id, "01") == 0);
        char *csr = NULL;
        rc = phc_token_csr(t, "01", "/CN=x", &csr, &e);
        CHECK(rc == 0 && csr);
        phc_free(csr);
    }
    phc_token_free(t);
    phc_config_free(cfg);

    /* Without object= no key can be made. */
    cfg = config_for(&tk, "pkcs11:token=phc-test;id=%2a", NULL, NULL);
    t = open_tok(cfg);
    if (t) {
        int rc = phc_token_generate(t, NULL, 0, id, &e);
        CHECK_ERR(rc, e, PHC_ERR_CONFIG, "names no object=");
        CHECK_STATES(t, "2a:pending");
    }
    phc_token_free(t);
    phc_config_free(cfg);

    /* The key generated on the token cannot leave it. */
    phc_p11 *p = NULL;
    CK_OBJECT_HANDLE *h = NULL;
    size_t n = 0;
    phc_p11_match m = {CKO_PRIVATE_KEY, "other", NULL, 0, 0};
    CHECK(phc__p11_open(&p, MODULE, KEY_URI, tk.pin, NULL, &e) == 0);
    CHECK(p && phc__p11_find(p, &m, &h, &n, &e) == 0 && n == 1);
    if (n == 1) {
        int b = -1;
        CHECK(phc__p11_attr_bool(p, h[0], CKA_SENSITIVE, &b, &e) == 0 && b == 1);
        CHECK(phc__p11_attr_bool(p, h[0], CKA_EXTRACTABLE, &b, &e) == 0 && b == 0);
        CHECK(phc__p11_attr_bool(p, h[0], CKA_NEVER_EXTRACTABLE, &b, &e) == 0 && b == 1);
    }
    OPENSSL_free(h);
    phc__p11_close(p);
}

int main(void)
{
    if (token_test_begin("token-keygen"))
        return 1;
    test_generate_rules();
    token_test_end();
    TEST_MAIN_END();
}
