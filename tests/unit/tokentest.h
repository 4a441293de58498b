/* Shared by the token administration unit tests (token_test.c, token_keygen_test.c,
 * token_cert_test.c): an empty SoftHSM token per case, a pinned test CA and an unpinned one,
 * certificates made to order. Each test is its own executable, so everything here is
 * static. */
#ifndef PHC_TOKENTEST_H
#define PHC_TOKENTEST_H

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
TT_HELPER int tok_empty(tok *t, const char *name)
{
    tok_paths(t, name);
    int rc = sh("mkdir -p '%s/tokens' && printf 'directories.tokendir = %s/tokens\\n"
                "objectstore.backend = file\\nlog.level = ERROR\\n' >'%s/softhsm2.conf' && "
                "printf 1234 >'%s/pin' && SOFTHSM2_CONF='%s/softhsm2.conf' softhsm2-util "
                "--init-token --free --label phc-test --so-pin 12345678 --pin 1234 >/dev/null",
                t->dir, t->dir, t->dir, t->dir, t->dir);
    return tok_use(t, rc);
}

TT_HELPER phc_config *config_for(const tok *t, const char *key_uri, const char *extra_key,
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

TT_HELPER phc_token *open_tok(phc_config *c)
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

TT_HELPER void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
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
TT_HELPER char *issue(EVP_PKEY *pub, const char *cn, long nb, long na, int flags)
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

TT_HELPER X509 *self_signed(EVP_PKEY *k, const char *cn)
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
TT_HELPER EVP_PKEY *csr_pub(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_REQ *r = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = r ? X509_REQ_get_pubkey(r) : NULL;
    CHECK(r && k && X509_REQ_verify(r, k) == 1);
    X509_REQ_free(r);
    BIO_free(b);
    return k;
}

TT_HELPER char *csr_subject(const char *pem)
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
TT_HELPER const char *states(phc_token *t, long long now)
{
    static char s[512];
    phc_pair_list *p = NULL;
    phc_errbuf e = {0};
    s[0] = '\0';
    if (phc_token_pairs(t, now, &p, &e) != 0) {
        snprintf(s, sizeof(s), "error: %.400s", e.msg);
        return s;
    }
    for (size_t i = 0; i < phc_pair_list_count(p); i++) {
        size_t o = strlen(s);
        snprintf(s + o, sizeof(s) - o, "%s%s:%s", o ? " " : "", phc_pair_list_get(p, i)->id_hex,
                 phc_pair_state_name(phc_pair_list_get(p, i)->state));
    }
    phc_pair_list_free(p);
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

/* The fixtures every case uses: the scratch directory (tt_begin(name)), the two CAs and
 * ca_file. Returns 0, or -1 when the scratch directory cannot be made. */
TT_HELPER int token_test_begin(const char *name)
{
    if (tt_begin(name))
        return -1;
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
    return 0;
}

TT_HELPER void token_test_end(void)
{
    X509_free(g_ca);
    X509_free(g_other);
    EVP_PKEY_free(g_ca_key);
    EVP_PKEY_free(g_other_key);
    tt_end();
}

#endif
