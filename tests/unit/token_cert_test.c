/* lib/token_cert.c on a real SoftHSM token: every check a certificate must pass before it
 * is installed, each refusal leaving the token unchanged. */
#include "tokentest.h"

/* Every check of install, each leaving the token as it was. */
static void test_install_refusals(void)
{
    tok tk;
    phc_errbuf e = {0};
    if (tok_empty(&tk, "refusals"))
        return;
    phc_config *cfg = config_for(&tk, NULL, "min_rsa_bits", "3072");
    phc_token *t = open_tok(cfg);
    char *csr = NULL, id[PHC_ID_HEX_MAX];
    EVP_PKEY *pub = NULL, *stray = EVP_EC_gen("P-256"), *rsa2k = EVP_RSA_gen(2048);
    if (!t)
        goto out;
    CHECK(phc_token_generate(t, "ec:P-256", 0, id, &e) == 0);
    CHECK(phc_token_csr(t, NULL, "/CN=refusals", &csr, &e) == 0 && csr);
    pub = csr ? csr_pub(csr) : NULL;
    phc_free(csr);
    if (!pub)
        goto out;

    struct {
        EVP_PKEY *key;
        long nb, na;
        int flags;
        int code;
        const char *want;
    } cases[] = {
        {pub, -10 * DAY, -DAY, 0, PHC_ERR_TRUST, "expired on "},
        {pub, DAY, 10 * DAY, 0, PHC_ERR_TRUST, "is not valid before"},
        {pub, -60, DAY, C_OTHER_CA, PHC_ERR_TRUST,
         "issued by 'CN=Unpinned Test CA' is not "
         "trusted"},
        {pub, -60, DAY, C_SERVER_ONLY, PHC_ERR_TRUST, "lacks clientAuth"},
        {pub, -60, DAY, C_NO_DIGSIG, PHC_ERR_TRUST, "does not allow digitalSignature"},
        {pub, -60, DAY, C_CA, PHC_ERR_TRUST, "is a CA certificate"},
        {pub, -60, DAY, C_SHA1, PHC_ERR_TRUST,
         "signature too weak for security level 2 (SHA-1 or MD5)"},
        {stray, -60, DAY, 0, PHC_ERR_TRUST, "is for a key that is not on token 'phc-test'"},
        {rsa2k, -60, DAY, 0, PHC_ERR_TRUST, "RSA 2048 key, weaker than min_rsa_bits 3072"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *pem = issue(cases[i].key, "refused", cases[i].nb, cases[i].na, cases[i].flags);
        int already = -1;
        int rc = phc_token_install_cert(t, pem, pem ? strlen(pem) : 0, 0, NULL, &already, &e);
        CHECK_ERR(rc, e, cases[i].code, cases[i].want);
        CHECK(strstr(e.msg, "not installed") != NULL);
        CHECK(strstr(e.msg, "'CN=refused,O=Test Energy'") != NULL);
        CHECK_STATES(t, "01:pending");
        free(pem);
    }
    int rc = phc_token_install_cert(t, "garbage", 7, 0, NULL, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "no PEM certificate found");
    rc = phc_token_install_cert(t, "", 0, 0, NULL, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "no certificate given");
    CHECK_STATES(t, "01:pending");

    /* No extended key usage at all is "any purpose" (RFC 5280): accepted. Within the clock
     * skew a certificate is accepted and waits as not-yet-valid. */
    char *pem = issue(pub, "soon", 120, 30 * DAY, C_NO_EKU);
    phc_pair_info *pi = (phc_pair_info *)&e; /* must be reset */
    rc = phc_token_install_cert(t, "garbage", 7, 0, &pi, NULL, &e);
    CHECK(rc == PHC_ERR_CONFIG && pi == NULL); /* nothing to release after a refusal */
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, &pi, NULL, &e) == 0);
    CHECK(pi && pi->state == PHC_PAIR_NOT_YET_VALID);
    phc_pair_info_free(pi);
    CHECK_STATES(t, "01:not-yet-valid");
    CHECK(strcmp(states(t, (long long)time(NULL) + 300), "01:active") == 0);
    free(pem);
out:
    EVP_PKEY_free(pub);
    EVP_PKEY_free(stray);
    EVP_PKEY_free(rsa2k);
    phc_token_free(t);
    phc_config_free(cfg);
    ERR_clear_error();
}

int main(void)
{
    if (token_test_begin("token-cert"))
        return 1;
    test_install_refusals();
    token_test_end();
    TEST_MAIN_END();
}
