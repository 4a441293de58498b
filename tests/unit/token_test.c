/* token unit: the key/certificate life cycle on real SoftHSM tokens through the public
 * token API - generation, requests, every install check with the token left unchanged on
 * refusal, the pair states (and their agreement with hsm.c's choice of identity), prune,
 * rollback, the client secret, CA and endpoint information - plus the subject parser. */
#include "csr.h"
#include "hsm.h"
#include "p11.h"
#include "secret.h"
#include "testtoken.h"
#include "testutil.h"

#include <phconnect/phconnect.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_URI "pkcs11:token=phc-test;object=client;type=private"
#define DAY 86400L

static EVP_PKEY *g_ca_key, *g_other_key;
static X509 *g_ca, *g_other;
static char g_ca_file[PATH_MAX];
static long g_serial = 100;

/* ---------------------------------------------------------------------------------- */
/* Fixtures: an empty token per case, a test CA, certificates made to order */

/* An empty token (no key: the cases generate their own) in g_tmp/name. */
static int tok_empty(tok *t, const char *name)
{
    tok_paths(t, name);
    int rc = sh("mkdir -p '%s/tokens' && printf 'directories.tokendir = %s/tokens\\n"
                "objectstore.backend = file\\nlog.level = ERROR\\n' >'%s/softhsm2.conf' && "
                "printf 1234 >'%s/pin' && SOFTHSM2_CONF='%s/softhsm2.conf' softhsm2-util "
                "--init-token --free --label phc-test --so-pin 12345678 --pin 1234 >/dev/null",
                t->dir, t->dir, t->dir, t->dir, t->dir);
    return tok_use(t, rc);
}

static phc_config *config_for(const tok *t, const char *key_uri, const char *extra_key,
                              const char *extra_value)
{
    phc_config *c = NULL;
    phc_errbuf e = {0};
    int ok = phc_config_new(&c, &e) == PHC_OK &&
             phc_config_set(c, "url", "https://api.powerhub.test:8443", &e) == PHC_OK &&
             phc_config_set(c, "ca_file", g_ca_file, &e) == PHC_OK &&
             phc_config_set(c, "pkcs11_module", MODULE, &e) == PHC_OK &&
             phc_config_set(c, "key", key_uri ? key_uri : KEY_URI, &e) == PHC_OK &&
             phc_config_set(c, "pin", t->pin, &e) == PHC_OK &&
             (!extra_key || phc_config_set(c, extra_key, extra_value, &e) == PHC_OK);
    if (!ok)
        fprintf(stderr, "config: %s\n", e.msg);
    CHECK(ok);
    return c;
}

static phc_token *open_tok(phc_config *c)
{
    phc_token *t = NULL;
    phc_errbuf e = {0};
    int rc = phc_token_open(&t, c, NULL, &e);
    if (rc)
        fprintf(stderr, "phc_token_open: %s\n", e.msg);
    CHECK(rc == 0 && t);
    return t;
}

enum {
    C_DEFAULT = 0,
    C_SERVER_ONLY = 1, /* EKU serverAuth */
    C_NO_DIGSIG = 2,   /* key usage keyEncipherment only */
    C_CA = 4,          /* basicConstraints CA:TRUE */
    C_OTHER_CA = 8,    /* issued by the unpinned CA */
    C_SHA1 = 16,
    C_NO_EKU = 32,
};

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    CHECK(ext && X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
}

/* When set, issue() uses these absolute dates instead (certificates issued together). */
static time_t g_fixed_nb, g_fixed_na;

/* A PEM certificate for pub, valid from now+nb to now+na seconds. Caller frees. */
static char *issue(EVP_PKEY *pub, const char *cn, long nb, long na, int flags)
{
    X509 *x = X509_new();
    X509 *ca = flags & C_OTHER_CA ? g_other : g_ca;
    EVP_PKEY *cakey = flags & C_OTHER_CA ? g_other_key : g_ca_key;
    int ok = x && X509_set_version(x, 2) &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), g_serial++) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_ASC,
                                        (const unsigned char *)"Test Energy", -1, -1, 0) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                        (const unsigned char *)cn, -1, -1, 0) &&
             X509_set_issuer_name(x, X509_get_subject_name(ca)) &&
             (g_fixed_nb ? ASN1_TIME_set(X509_getm_notBefore(x), g_fixed_nb) != NULL
                         : X509_gmtime_adj(X509_getm_notBefore(x), nb) != NULL) &&
             (g_fixed_na ? ASN1_TIME_set(X509_getm_notAfter(x), g_fixed_na) != NULL
                         : X509_gmtime_adj(X509_getm_notAfter(x), na) != NULL) &&
             X509_set_pubkey(x, pub);
    add_ext(x, ca, NID_basic_constraints, flags & C_CA ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, ca, NID_key_usage,
            flags & C_NO_DIGSIG ? "critical,keyEncipherment" : "critical,digitalSignature");
    if (!(flags & C_NO_EKU))
        add_ext(x, ca, NID_ext_key_usage, flags & C_SERVER_ONLY ? "serverAuth" : "clientAuth");
    /* Key identifiers: the strict x509_profile requires them (RFC 5280 4.2.1.1/4.2.1.2). */
    add_ext(x, ca, NID_subject_key_identifier, "hash");
    add_ext(x, ca, NID_authority_key_identifier, "keyid:always");
    ok = ok && X509_sign(x, cakey, flags & C_SHA1 ? EVP_sha1() : EVP_sha256()) > 0;
    CHECK(ok);
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    BUF_MEM *m = NULL;
    if (b && PEM_write_bio_X509(b, x) && BIO_get_mem_ptr(b, &m) > 0 &&
        (out = calloc(1, m->length + 1)))
        memcpy(out, m->data, m->length);
    BIO_free(b);
    X509_free(x);
    ERR_clear_error();
    return out;
}

static X509 *self_signed(EVP_PKEY *k, const char *cn)
{
    X509 *x = X509_new();
    int ok = x && X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                        (const unsigned char *)cn, -1, -1, 0) &&
             X509_set_issuer_name(x, X509_get_subject_name(x)) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -DAY) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 3650 * DAY) && X509_set_pubkey(x, k);
    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(x, x, NID_subject_key_identifier, "hash");
    ok = ok && X509_sign(x, k, EVP_sha256()) > 0;
    CHECK(ok);
    return x;
}

/* The public key a token key's request carries (the CSR is verified by the library). */
static EVP_PKEY *csr_pub(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_REQ *r = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = r ? X509_REQ_get_pubkey(r) : NULL;
    CHECK(r && k && X509_REQ_verify(r, k) == 1);
    X509_REQ_free(r);
    BIO_free(b);
    return k;
}

static char *csr_subject(const char *pem)
{
    static char s[256];
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_REQ *r = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    s[0] = '\0';
    if (r) {
        BIO *o = BIO_new(BIO_s_mem());
        X509_NAME_print_ex(o, X509_REQ_get_subject_name(r), 0, XN_FLAG_RFC2253);
        int n = BIO_read(o, s, sizeof(s) - 1);
        s[n > 0 ? n : 0] = '\0';
        BIO_free(o);
    }
    X509_REQ_free(r);
    BIO_free(b);
    return s;
}

/* Pairs as a compact string "01:active 02:pending", for assertions. */
static const char *states(phc_token *t, long long now)
{
    static char s[512];
    phc_pair_info *p = NULL;
    size_t n = 0;
    phc_errbuf e = {0};
    s[0] = '\0';
    if (phc_token_pairs(t, now, &p, &n, &e) != 0) {
        snprintf(s, sizeof(s), "error: %.400s", e.msg);
        return s;
    }
    for (size_t i = 0; i < n; i++) {
        size_t o = strlen(s);
        snprintf(s + o, sizeof(s) - o, "%s%s:%s", o ? " " : "", p[i].id_hex,
                 phc_pair_state_name(p[i].state));
    }
    phc_free(p);
    return s;
}

#define CHECK_STATES(t, want)                                                                      \
    do {                                                                                           \
        const char *got_ = states((t), 0);                                                         \
        if (strcmp(got_, (want)) != 0)                                                             \
            fprintf(stderr, "%s:%d: states '%s', wanted '%s'\n", __FILE__, __LINE__, got_,         \
                    (want));                                                                       \
        CHECK(strcmp(got_, (want)) == 0);                                                          \
    } while (0)

/* ---------------------------------------------------------------------------------- */

static void test_dn(void)
{
    X509_NAME *a = NULL, *b = NULL;
    phc_errbuf e = {0};
    char s[256];
    CHECK(phc__dn_parse(&a, "/O=Test Energy/CN=client 1", &e) == 0);
    CHECK(phc__dn_parse(&b, "  CN=client 1, O=Test Energy ", &e) == 0);
    CHECK(a && b && X509_NAME_cmp(a, b) == 0);
    if (a) {
        BIO *o = BIO_new(BIO_s_mem());
        X509_NAME_print_ex(o, a, 0, XN_FLAG_RFC2253);
        int n = BIO_read(o, s, sizeof(s) - 1);
        s[n > 0 ? n : 0] = '\0';
        BIO_free(o);
        CHECK(strcmp(s, "CN=client 1,O=Test Energy") == 0);
    }
    X509_NAME_free(a);
    X509_NAME_free(b);
    a = NULL;
    CHECK(phc__dn_parse(&a, "CN=a\\,b,O=x\\2by,C=DE", &e) == 0);
    if (a) {
        CHECK(X509_NAME_entry_count(a) == 3);
        X509_NAME_ENTRY *cn = X509_NAME_get_entry(a, 2);
        ASN1_STRING *v = X509_NAME_ENTRY_get_data(cn);
        CHECK(v && ASN1_STRING_length(v) == 3 && memcmp(ASN1_STRING_get0_data(v), "a,b", 3) == 0);
        ASN1_STRING *o = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(a, 1));
        CHECK(o && memcmp(ASN1_STRING_get0_data(o), "x+y", 3) == 0);
    }
    X509_NAME_free(a);
    a = NULL;
    CHECK(phc__dn_parse(&a, "/CN=a\\/b/2.5.4.10=OID Org", &e) == 0);
    X509_NAME_free(a);
    a = NULL;

    int rc = phc__dn_parse(&a, "", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "the subject is empty");
    rc = phc__dn_parse(&a, "/CN=x/XX=y", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 2: unknown attribute 'XX'");
    rc = phc__dn_parse(&a, "/CN=", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 1 ('CN') has an empty value");
    rc = phc__dn_parse(&a, "/CN=x//O=y", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 2 is not NAME=value");
    rc = phc__dn_parse(&a, "client", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 1 is not NAME=value");
    rc = phc__dn_parse(&a, "/C=Germany", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 1: value not acceptable for 'C'");
    rc = phc__dn_parse(&a, "CN=a+OU=b", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "multi-valued RDNs");
    CHECK(a == NULL);
}

/* enrol, request, install, renewal with a new key, prune, rollback: the whole life cycle. */
static void test_life_cycle(const char *name, const char *key_type, const char *desc)
{
    tok tk;
    phc_errbuf e = {0};
    if (tok_empty(&tk, name))
        return;
    phc_config *cfg = config_for(&tk, NULL, NULL, NULL);
    phc_token *t = open_tok(cfg);
    if (!t)
        goto out;
    CHECK(strcmp(phc_token_label(t), "phc-test") == 0);
    CHECK_STATES(t, "");

    /* First enrolment: id 01, pending. */
    char id[PHC_ID_HEX_MAX];
    CHECK(phc_token_generate(t, key_type, 0, id, &e) == 0 && strcmp(id, "01") == 0);
    CHECK_STATES(t, "01:pending");
    int rc = phc_token_generate(t, key_type, 0, id, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG,
              "token 'phc-test' already holds a key with label 'client' (id 01): to renew, use "
              "'phc csr' (same key) or 'phc csr --new-key'");
    rc = phc_token_generate(t, NULL, 1, id, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "key id 01 on token 'phc-test' is already pending");

    /* The request: for the only pending key, subject as given. */
    char *csr = NULL;
    CHECK(phc_token_csr(t, NULL, "/O=Test Energy/CN=phc-unit", &csr, &e) == 0 && csr);
    EVP_PKEY *pub1 = csr ? csr_pub(csr) : NULL;
    if (csr)
        CHECK(strcmp(csr_subject(csr), "CN=phc-unit,O=Test Energy") == 0);
    phc_free(csr);
    csr = NULL;
    rc = phc_token_csr(t, NULL, NULL, &csr, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "key id 01 has no certificate to copy the subject from");

    /* Install: active. */
    char *pem = issue(pub1, "phc-unit", -60, 30 * DAY, 0);
    phc_pair_info pi;
    int already = -1;
    CHECK(pem && phc_token_check_cert(t, pem, strlen(pem), 0, &pi, &already, &e) == 0);
    CHECK(already == 0 && pi.state == PHC_PAIR_ACTIVE && strcmp(pi.id_hex, "01") == 0);
    CHECK_STATES(t, "01:pending"); /* check changes nothing */
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, &pi, &already, &e) == 0);
    CHECK(already == 0 && pi.state == PHC_PAIR_ACTIVE);
    CHECK(strstr(pi.subject, "CN=phc-unit") != NULL && pi.days_left >= 29 && pi.days_left <= 30);
    CHECK(strcmp(pi.key_type, desc) == 0);
    CHECK_STATES(t, "01:active");
    /* Installing the same certificate again stores nothing. */
    CHECK(phc_token_install_cert(t, pem, strlen(pem), 0, &pi, &already, &e) == 0 && already == 1);
    CHECK_STATES(t, "01:active");
    free(pem);

    /* Renewal with the same key: CSR with the current key and its subject. */
    CHECK(phc_token_csr(t, NULL, NULL, &csr, &e) == 0 && csr);
    if (csr)
        CHECK(strcmp(csr_subject(csr), "CN=phc-unit,O=Test Energy") == 0);
    EVP_PKEY *again = csr ? csr_pub(csr) : NULL;
    CHECK(again && pub1 && EVP_PKEY_eq(again, pub1) == 1);
    EVP_PKEY_free(again);
    phc_free(csr);
    csr = NULL;

    /* Renewal with a new key: id 02 pending; the current pair keeps serving. */
    CHECK(phc_token_generate(t, NULL, 1, id, &e) == 0 && strcmp(id, "02") == 0);
    CHECK_STATES(t, "01:active 02:pending");
    rc = phc_token_generate(t, NULL, 1, id, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "key id 02 on token 'phc-test' is already pending");
    /* Without a subject the new key takes the active pair's. */
    CHECK(phc_token_csr(t, "02", NULL, &csr, &e) == 0 && csr);
    if (csr)
        CHECK(strcmp(csr_subject(csr), "CN=phc-unit,O=Test Energy") == 0);
    phc_free(csr);
    csr = NULL;
    CHECK(phc_token_csr(t, "02", "CN=phc-unit-2,O=Test Energy", &csr, &e) == 0 && csr);
    EVP_PKEY *pub2 = csr ? csr_pub(csr) : NULL;
    CHECK(pub2 && pub1 && EVP_PKEY_eq(pub1, pub2) != 1);
    phc_free(csr);
    csr = NULL;
    rc = phc_token_csr(t, "07", NULL, &csr, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "no key with label 'client' and id 07 on token 'phc-test'");
    rc = phc_token_csr(t, "0x", NULL, &csr, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "key id '0x' is not hex bytes");

    /* The new certificate (newer notBefore) becomes active, the old pair retired. */
    pem = issue(pub2, "phc-unit-2", -30, 60 * DAY, 0);
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, &pi, NULL, &e) == 0);
    CHECK(pi.state == PHC_PAIR_ACTIVE && strcmp(pi.id_hex, "02") == 0);
    CHECK_STATES(t, "01:retired 02:active");

    /* Rollback: 01 serves again, 02 is pending (its certificate can come back later). */
    phc_pair_info from, to;
    CHECK(phc_token_rollback(t, 0, 1, &from, &to, &e) == 0);
    CHECK(strcmp(from.id_hex, "02") == 0 && strcmp(to.id_hex, "01") == 0);
    CHECK_STATES(t, "01:retired 02:active"); /* dry run */
    CHECK(phc_token_rollback(t, 0, 0, &from, &to, &e) == 0);
    CHECK(from.state == PHC_PAIR_PENDING && to.state == PHC_PAIR_ACTIVE);
    CHECK_STATES(t, "01:active 02:pending");
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, &pi, NULL, &e) == 0);
    CHECK_STATES(t, "01:retired 02:active");
    free(pem);

    /* Prune: the retired pair goes (certificate, then key); never the active one. */
    phc_pair_info *gone = NULL;
    size_t ngone = 0;
    CHECK(phc_token_prune(t, 0, PHC_PRUNE_DRY_RUN, &gone, &ngone, &e) == 0 && ngone == 1);
    if (ngone == 1)
        CHECK(strcmp(gone[0].id_hex, "01") == 0 && gone[0].state == PHC_PAIR_RETIRED);
    phc_free(gone);
    CHECK_STATES(t, "01:retired 02:active");
    CHECK(phc_token_prune(t, 0, 0, &gone, &ngone, &e) == 0 && ngone == 1);
    phc_free(gone);
    CHECK_STATES(t, "02:active");
    CHECK(phc_token_prune(t, 0, PHC_PRUNE_PENDING, &gone, &ngone, &e) == 0 && ngone == 0);
    CHECK_STATES(t, "02:active");
    /* Nothing left to fall back to. */
    rc = phc_token_rollback(t, 0, 0, NULL, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "no other valid pair on token 'phc-test' to fall back to");
    CHECK_STATES(t, "02:active");

    EVP_PKEY_free(pub1);
    EVP_PKEY_free(pub2);
out:
    phc_token_free(t);
    phc_config_free(cfg);
    ERR_clear_error();
}

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
    phc_pair_info pi;
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, &pi, NULL, &e) == 0);
    CHECK(pi.state == PHC_PAIR_NOT_YET_VALID);
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

/* Several certificates at once: the states, and hsm.c picking the very pair status calls
 * active. */
static void test_states_agree_with_hsm(void)
{
    tok tk;
    phc_errbuf e = {0};
    if (tok_empty(&tk, "states"))
        return;
    phc_config *cfg = config_for(&tk, NULL, NULL, NULL);
    phc_token *t = open_tok(cfg);
    EVP_PKEY *pk[4] = {0};
    char id[PHC_ID_HEX_MAX];
    if (!t)
        goto out;
    CHECK(phc_token_generate(t, "ec:P-256", 0, id, &e) == 0);
    for (int i = 0; i < 4; i++) {
        char *csr = NULL;
        if (i > 0)
            CHECK(phc_token_generate(t, "ec:P-256", 1, id, &e) == 0);
        CHECK(phc_token_csr(t, id, "/CN=states", &csr, &e) == 0 && csr);
        pk[i] = csr ? csr_pub(csr) : NULL;
        phc_free(csr);
        /* 01 valid (older), 02 valid (newest), 03 expired, 04 not yet valid */
        long nb[] = {-5 * DAY, -2 * DAY, -20 * DAY, 5 * DAY};
        long na[] = {30 * DAY, 20 * DAY, -DAY, 40 * DAY};
        char *pem = issue(pk[i], "states", nb[i], na[i], 0);
        /* expired / future certificates cannot be installed: store them as a token tool
         * (or an older phc) might have */
        if (i >= 2) {
            char path[PATH_MAX + 16];
            snprintf(path, sizeof(path), "%s/c%d.pem", tk.dir, i);
            FILE *f = fopen(path, "w");
            CHECK(f && pem && fputs(pem, f) >= 0);
            if (f)
                fclose(f);
            CHECK(sh("openssl x509 -in '%s' -outform DER -out '%s.der' && pkcs11-tool --module "
                     "%s --token-label phc-test --login --pin 1234 --write-object '%s.der' "
                     "--type cert --label client --id %s >/dev/null 2>&1",
                     path, path, MODULE, path, id) == 0);
        } else {
            CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, NULL, NULL, &e) == 0);
        }
        free(pem);
    }
    CHECK_STATES(t, "01:retired 02:active 03:expired 04:not-yet-valid");
    /* A second certificate on 02's key (same-key renewal), older: retired. */
    char *pem = issue(pk[1], "states-old", -10 * DAY, 10 * DAY, 0);
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, NULL, NULL, &e) == 0);
    free(pem);
    CHECK_STATES(t, "01:retired 02:retired 02:active 03:expired 04:not-yet-valid");

    phc_pair_info *p = NULL;
    size_t n = 0;
    char active_serial[80] = "";
    CHECK(phc_token_pairs(t, 0, &p, &n, &e) == 0 && n == 5);
    for (size_t i = 0; i < n; i++) {
        CHECK(!p[i].key_mismatch && p[i].key_supported && p[i].has_cert);
        CHECK(strlen(p[i].sha256) == 64);
        if (p[i].state == PHC_PAIR_ACTIVE)
            snprintf(active_serial, sizeof(active_serial), "%s", p[i].serial);
    }
    if (n == 5)
        CHECK(p[3].days_left >= -2 && p[3].days_left <= -1 && p[4].days_left >= 39 &&
              p[4].days_left <= 40);
    phc_free(p);
    phc_token_free(t);
    t = NULL;

    /* hsm.c chooses the same certificate for the connector. */
    phc_hsm *h = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    CHECK(phc__hsm_open(&h, MODULE, KEY_URI, tk.pin, NULL, &e) == 0);
    CHECK(h && phc__hsm_identity(h, NULL, (long long)time(NULL), &key, &cert, &e) == 0);
    if (cert) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        char *hx = bn ? BN_bn2hex(bn) : NULL;
        CHECK(hx && strcmp(hx, active_serial) == 0);
        OPENSSL_free(hx);
        BN_free(bn);
    }
    X509_free(cert);
    phc__hsm_free(h);

    /* Prune removes the retired and expired certificates, the keys left without one (01,
     * 03), and keeps the active pair and the one still to come. */
    t = open_tok(cfg);
    phc_pair_info *gone = NULL;
    size_t ngone = 0;
    CHECK(t && phc_token_prune(t, 0, 0, &gone, &ngone, &e) == 0 && ngone == 3);
    phc_free(gone);
    CHECK_STATES(t, "02:active 04:not-yet-valid");
out:
    for (int i = 0; i < 4; i++)
        EVP_PKEY_free(pk[i]);
    phc_token_free(t);
    phc_config_free(cfg);
    ERR_clear_error();
}

/* Two certificates with the very same dates (issued in one second): status and hsm.c must
 * still name the same one, whatever order each meets them in. */
static void test_tie(void)
{
    tok tk;
    phc_errbuf e = {0};
    char id[PHC_ID_HEX_MAX];
    if (tok_empty(&tk, "tie"))
        return;
    phc_config *cfg = config_for(&tk, NULL, NULL, NULL);
    phc_token *t = open_tok(cfg);
    char active[80] = "";
    g_fixed_nb = time(NULL) - 3600;
    g_fixed_na = time(NULL) + 30 * DAY;
    for (int i = 0; t && i < 3; i++) {
        char *csr = NULL;
        CHECK(phc_token_generate(t, "ec:P-256", i > 0, id, &e) == 0);
        CHECK(phc_token_csr(t, id, "/CN=tie", &csr, &e) == 0 && csr);
        EVP_PKEY *pk = csr ? csr_pub(csr) : NULL;
        char *pem = pk ? issue(pk, "tie", 0, 0, 0) : NULL;
        CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, NULL, NULL, &e) == 0);
        free(pem);
        phc_free(csr);
        EVP_PKEY_free(pk);
    }
    g_fixed_nb = g_fixed_na = 0;
    phc_pair_info *p = NULL;
    size_t n = 0, nactive = 0;
    CHECK(t && phc_token_pairs(t, 0, &p, &n, &e) == 0 && n == 3);
    for (size_t i = 0; i < n; i++)
        if (p[i].state == PHC_PAIR_ACTIVE) {
            nactive++;
            snprintf(active, sizeof(active), "%s", p[i].serial);
        }
    CHECK(nactive == 1);
    phc_free(p);
    phc_token_free(t);
    phc_hsm *h = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    CHECK(phc__hsm_open(&h, MODULE, KEY_URI, tk.pin, NULL, &e) == 0);
    CHECK(h && phc__hsm_identity(h, NULL, (long long)time(NULL), &key, &cert, &e) == 0);
    if (cert) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        char *hx = bn ? BN_bn2hex(bn) : NULL;
        CHECK(hx && strcmp(hx, active) == 0);
        OPENSSL_free(hx);
        BN_free(bn);
    }
    X509_free(cert);
    phc__hsm_free(h);
    phc_config_free(cfg);
}

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

static void test_open_refusals(void)
{
    tok tk;
    phc_errbuf e = {0};
    phc_token *t = NULL;
    if (tok_empty(&tk, "open"))
        return;
    phc_config *c = NULL;
    CHECK(phc_config_new(&c, &e) == 0);
    CHECK(phc_config_set(c, "url", "https://x.example", &e) == 0 &&
          phc_config_set(c, "ca_file", g_ca_file, &e) == 0 &&
          phc_config_set(c, "client_id", "id", &e) == 0 &&
          phc_config_set(c, "client_secret", "env:X", &e) == 0);
    int rc = phc_token_open(&t, c, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "has no 'key'");
    rc = phc_token_store_secret(c, "s", 1, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "'client_secret' is a file: or env: source");
    phc_config_free(c);

    tok bad = tk;
    tok_pin_file(&tk, "wrong", "0000", bad.pin, sizeof(bad.pin));
    c = config_for(&bad, NULL, NULL, NULL);
    rc = phc_token_open(&t, c, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_PIN, "not retried");
    phc_config_free(c);
    c = config_for(&tk, "pkcs11:token=absent;object=client", NULL, NULL);
    rc = phc_token_open(&t, c, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "no token with label 'absent'");
    phc_config_free(c);
    CHECK(t == NULL);
    phc_token_free(NULL);
    CHECK(strcmp(phc_token_label(NULL), "") == 0);
    CHECK(strcmp(phc_pair_state_name(PHC_PAIR_NOT_YET_VALID), "not-yet-valid") == 0);
    phc_pair_info *p = NULL;
    size_t n = 0;
    rc = phc_token_pairs(NULL, 0, &p, &n, &e);
    CHECK(rc == PHC_ERR_INTERNAL && p == NULL && n == 0);
}

static void test_secret_and_info(void)
{
    tok tk;
    phc_errbuf e = {0};
    if (tok_empty(&tk, "secret"))
        return;
    phc_config *c = config_for(&tk, NULL, NULL, NULL);
    const char *uri = "pkcs11:token=phc-test;object=client-secret;type=data";
    CHECK(c && phc_config_set(c, "client_id", "plant-7", &e) == 0 &&
          phc_config_set(c, "client_secret", uri, &e) == 0 &&
          phc_config_set(c, "pinned_ips", "192.0.2.1, 2001:db8::1", &e) == 0 &&
          phc_config_set(c, "credential_expires", "2030-01-02", &e) == 0);
    static char big[PHC_SECRET_MAX + 1];
    memset(big, 's', sizeof(big));
    CHECK_ERR(phc_token_store_secret(c, big, sizeof(big), &e), e, PHC_ERR_CONFIG,
              "the client secret is too long (at most 4096 bytes)");
    CHECK_ERR(phc_token_store_secret(c, big, 0, &e), e, PHC_ERR_CONFIG,
              "the client secret is empty (at most 4096 bytes)");
    CHECK(phc_token_store_secret(c, big, PHC_SECRET_MAX, &e) == 0);
    CHECK(phc_token_store_secret(c, "top secret", 10, &e) == 0);
    char *v = NULL;
    size_t n = 0;
    CHECK(phc__p11_read_data(&v, &n, MODULE, uri, tk.pin, &e) == 0 && v &&
          strcmp(v, "top secret") == 0);
    phc__secret_free(v, n);

    phc_endpoint ep;
    phc_config_endpoint(c, &ep);
    CHECK(ep.port == 8443 && strcmp(ep.host, "api.powerhub.test") == 0);
    CHECK(ep.n_pinned_ips == 2 && strcmp(ep.pinned_ips[1], "2001:db8::1") == 0);
    CHECK(ep.credential_expires == 1893542400LL && ep.source_address == NULL);

    phc_ca_info *ca = NULL;
    size_t nca = 0;
    CHECK(phc_config_ca_certs(c, 0, &ca, &nca, &e) == 0 && nca == 2);
    for (size_t i = 0; i < nca; i++) {
        CHECK(strlen(ca[i].sha256) == 64 && ca[i].days_left >= 3648 && ca[i].days_left <= 3650);
        CHECK(strstr(ca[i].subject, "Test CA") != NULL);
    }
    phc_free(ca);
    CHECK(phc_config_set(c, "ca_sha256",
                         "0000000000000000000000000000000000000000000000000000000000000000",
                         &e) == 0);
    int rc = phc_config_ca_certs(c, 0, &ca, &nca, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "not listed in ca_sha256");
    phc_config_free(c);
}

int main(void)
{
    if (tt_begin("token"))
        return 1;
    g_ca_key = EVP_EC_gen("P-256");
    g_other_key = EVP_EC_gen("P-256");
    g_ca = self_signed(g_ca_key, "Pinned Test CA");
    g_other = self_signed(g_other_key, "Unpinned Test CA");
    /* ca_file holds the pinned CA twice over: itself and a second CA of the same name
     * family would be a transition; one extra certificate shows every one is listed. */
    snprintf(g_ca_file, sizeof(g_ca_file), "%s/ca.pem", g_tmp);
    EVP_PKEY *k2 = EVP_EC_gen("P-256");
    X509 *ca2 = self_signed(k2, "Second Pinned Test CA");
    FILE *f = fopen(g_ca_file, "w");
    CHECK(f && PEM_write_X509(f, g_ca) && PEM_write_X509(f, ca2));
    if (f)
        fclose(f);
    X509_free(ca2);
    EVP_PKEY_free(k2);

    test_dn();
    test_open_refusals();
    test_life_cycle("life-rsa", "rsa:2048", "RSA 2048");
    test_life_cycle("life-p256", "ec:P-256", "EC P-256");
    test_life_cycle("life-p384", "ec:P-384", "EC P-384");
    test_install_refusals();
    test_states_agree_with_hsm();
    test_tie();
    test_generate_rules();
    test_secret_and_info();

    X509_free(g_ca);
    X509_free(g_other);
    EVP_PKEY_free(g_ca_key);
    EVP_PKEY_free(g_other_key);
    tt_end();
    TEST_MAIN_END();
}
