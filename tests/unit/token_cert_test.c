/* lib/token_cert.c on a real SoftHSM token: every check a certificate must pass before it
 * is installed, each refusal leaving the token unchanged; and the install-order record when
 * the token answers its write with SoftHSM's transient error (the install runs again and
 * records it) or refuses it outright (the certificate is stored all the same, unrecorded,
 * with a warning). */
#include "p11_int.h"
#include "token_impl.h"
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

/* A function list in front of SoftHSM's whose C_CreateObject answers g_data_rv for data
 * objects: g_data_times times (-1: always). */
static CK_FUNCTION_LIST *g_real;
static CK_FUNCTION_LIST g_shim;
static CK_RV g_data_rv;
static int g_data_times, g_data_refused;

static CK_RV shim_create(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                         CK_OBJECT_HANDLE_PTR o)
{
    for (CK_ULONG i = 0; i < n; i++)
        if (t[i].type == CKA_CLASS && t[i].ulValueLen == sizeof(CK_OBJECT_CLASS) &&
            *(CK_OBJECT_CLASS *)t[i].pValue == CKO_DATA && g_data_times != 0) {
            if (g_data_times > 0)
                g_data_times--;
            g_data_refused++;
            return g_data_rv;
        }
    return g_real->C_CreateObject(s, t, n, o);
}

static char g_warned[2048];

static void keep_warning(void *ud, phc_log_level level, const char *msg)
{
    (void)ud;
    if (level == PHC_LOG_WARN)
        snprintf(g_warned + strlen(g_warned), sizeof(g_warned) - strlen(g_warned), "%s\n", msg);
}

/* The pair with serial-less subject cn in t's pairs: its state and install place. */
static const phc_pair_info *pair_cn(const phc_pair_list *l, const char *cn)
{
    for (size_t i = 0; i < phc_pair_list_count(l); i++)
        if (strstr(phc_pair_list_get(l, i)->subject, cn))
            return phc_pair_list_get(l, i);
    return NULL;
}

static void test_install_record_faults(void)
{
    tok tk;
    phc_errbuf e = {0};
    char id[PHC_ID_HEX_MAX];
    if (tok_empty(&tk, "record"))
        return;
    phc_config *cfg = config_for(&tk, NULL, NULL, NULL);
    phc_token *t = open_tok(cfg);
    const char *cns[] = {"CN=first", "CN=second", "CN=third"};
    if (!t)
        goto out;
    t->log.fn = keep_warning;
    t->log.level = PHC_LOG_WARN;
    g_real = t->p11->fn;
    g_shim = *g_real;
    g_shim.C_CreateObject = shim_create;
    t->p11->fn = &g_shim;
    g_fixed_nb = time(NULL) - 3600;
    g_fixed_na = time(NULL) + 30 * DAY;
    for (int i = 0; i < 3; i++) {
        char *csr = NULL;
        CHECK(phc_token_generate(t, "ec:P-256", i > 0, id, &e) == 0);
        CHECK(phc_token_csr(t, id, cns[i], &csr, &e) == 0 && csr);
        EVP_PKEY *pk = csr ? csr_pub(csr) : NULL;
        char *pem = pk ? issue(pk, cns[i] + 3, 0, 0, 0) : NULL;
        /* 1st: recorded; 2nd: one transient answer, then recorded on the run again; 3rd: the
         * token refuses data objects */
        g_data_rv = i == 2 ? CKR_TEMPLATE_INCONSISTENT : CKR_GENERAL_ERROR;
        g_data_times = i == 0 ? 0 : i == 1 ? 1 : -1;
        g_data_refused = 0;
        g_warned[0] = '\0';
        phc_pair_info *pi = NULL;
        CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, &pi, NULL, &e) == 0);
        CHECK(g_data_refused == (i == 0 ? 0 : i == 1 ? 1 : 1));
        if (i == 1)
            CHECK(strstr(g_warned, "CKR_GENERAL_ERROR") != NULL);
        if (i == 2) {
            CHECK(strstr(g_warned, "storing the install-order record on token 'phc-test' failed "
                                   "(CKR_TEMPLATE_INCONSISTENT); certificate 'CN=third,O=Test "
                                   "Energy'") != NULL);
            CHECK(strstr(g_warned, "is stored without it, so a tie with another certificate of "
                                   "the very same notBefore and notAfter is broken by a fixed "
                                   "order, not by this installation") != NULL);
        }
        phc_pair_info_free(pi);
        free(pem);
        phc_free(csr);
        EVP_PKEY_free(pk);
    }
    g_fixed_nb = g_fixed_na = 0;
    t->p11->fn = g_real;
    /* second (recorded last) is active; third is stored, unrecorded, and counts as older */
    phc_pair_list *l = NULL;
    CHECK(phc_token_pairs(t, 0, &l, &e) == 0 && phc_pair_list_count(l) == 3);
    const phc_pair_info *a = pair_cn(l, "CN=first"), *b = pair_cn(l, "CN=second"),
                        *c = pair_cn(l, "CN=third");
    CHECK(a && b && c);
    if (a && b && c) {
        CHECK(a->install_seq == 0 && b->install_seq == 1 && c->install_seq == -1);
        CHECK(b->state == PHC_PAIR_ACTIVE && a->state == PHC_PAIR_RETIRED &&
              c->state == PHC_PAIR_RETIRED);
        CHECK(a->install_order == PHC_ORDER_RECORDED && c->install_order == PHC_ORDER_RECORDED);
    }
    phc_pair_list_free(l);
    /* the connector agrees */
    phc_hsm *h = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    CHECK(phc__hsm_open(&h, MODULE, KEY_URI, tk.pin, NULL, &e) == 0);
    CHECK(h && phc__hsm_identity(h, NULL, (long long)time(NULL), &key, &cert, &e) == 0);
    char cn[256] = "";
    if (cert)
        X509_NAME_oneline(X509_get_subject_name(cert), cn, sizeof(cn));
    CHECK(strstr(cn, "CN=second") != NULL);
    X509_free(cert);
    phc__hsm_free(h);
out:
    phc_token_free(t);
    phc_config_free(cfg);
    ERR_clear_error();
}

int main(void)
{
    if (token_test_begin("token-cert"))
        return 1;
    test_install_refusals();
    test_install_record_faults();
    token_test_end();
    TEST_MAIN_END();
}
