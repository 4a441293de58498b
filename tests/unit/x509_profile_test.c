/* x509_profile unit: each rule of our server-certificate profile on in-memory certificates
 * (end entity or CA, extendedKeyUsage absent / without serverAuth / with anyExtendedKeyUsage,
 * a wildcard reaching into an excluded subtree), the relaxation masks that lift each rule,
 * the verify parameters a profile sets, and the rule names and reasons refusals print. */
#include "x509_profile.h"
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>

static EVP_PKEY *g_key;

/* A certificate for cn signed by g_key; each extension value in the config syntax, NULL to
 * leave it out. */
static X509 *mk(const char *cn, const char *bc, const char *eku, const char *san, const char *nc)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, g_key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const struct {
        int nid;
        const char *v;
    } ext[] = {{NID_basic_constraints, bc},
               {NID_ext_key_usage, eku},
               {NID_subject_alt_name, san},
               {NID_name_constraints, nc}};
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        if (!ext[i].v)
            continue;
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, ext[i].nid, ext[i].v);
        CHECK(e != NULL);
        if (e)
            X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    CHECK(X509_sign(x, g_key, EVP_sha256()) > 0);
    return x;
}

/* Runs the profile check on leaf (and ca above it when given). */
static int check(X509 *leaf, X509 *ca, int purpose, unsigned relax, char *detail, size_t dlen)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, leaf);
    if (ca)
        sk_X509_push(chain, ca);
    int depth = -1;
    int rc = phc__x509_profile_check(chain, purpose, relax, &depth, detail, dlen);
    CHECK(depth == 0);
    sk_X509_free(chain);
    return rc;
}

#define SSL_SERVER X509_PURPOSE_SSL_SERVER

static void test_leaf_end_entity(void)
{
    X509 *ee = mk("ee", "critical,CA:FALSE", "serverAuth", "DNS:a.example.com", NULL);
    X509 *ca = mk("ca-leaf", "critical,CA:TRUE", "serverAuth", "DNS:a.example.com", NULL);
    X509 *nobc = mk("nobc", NULL, "serverAuth", "DNS:a.example.com", NULL);
    CHECK(check(ee, NULL, SSL_SERVER, 0, NULL, 0) == 0);
    CHECK(check(nobc, NULL, SSL_SERVER, 0, NULL, 0) == 0);
    CHECK(check(ca, NULL, SSL_SERVER, 0, NULL, 0) == PHC_RULE_LEAF_IS_CA);
    CHECK(check(ca, NULL, SSL_SERVER, PHC_RELAX_LEAF_EE, NULL, 0) == 0);
    /* Another relaxation does not lift it. */
    CHECK(check(ca, NULL, SSL_SERVER, PHC_RELAX_EKU | PHC_RELAX_PURPOSE, NULL, 0) ==
          PHC_RULE_LEAF_IS_CA);
    CHECK(check(ca, NULL, SSL_SERVER, phc__x509_relax_of(PHC_X509_COMPATIBLE), NULL, 0) == 0);
    CHECK(check(ca, NULL, SSL_SERVER, phc__x509_relax_of(PHC_X509_STRICT), NULL, 0) ==
          PHC_RULE_LEAF_IS_CA);
    /* The server rules apply to servers only: a CA checked for another purpose passes. */
    CHECK(check(ca, NULL, X509_PURPOSE_SSL_CLIENT, 0, NULL, 0) == 0);
    X509_free(ee);
    X509_free(ca);
    X509_free(nobc);
}

static void test_eku(void)
{
    X509 *none = mk("none", "CA:FALSE", NULL, "DNS:a.example.com", NULL);
    X509 *client = mk("client", "CA:FALSE", "clientAuth", "DNS:a.example.com", NULL);
    X509 *any = mk("any", "CA:FALSE", "serverAuth,anyExtendedKeyUsage", "DNS:a.example.com", NULL);
    X509 *anyonly = mk("anyonly", "CA:FALSE", "anyExtendedKeyUsage", "DNS:a.example.com", NULL);
    X509 *both = mk("both", "CA:FALSE", "clientAuth,serverAuth", "DNS:a.example.com", NULL);

    CHECK(check(none, NULL, SSL_SERVER, 0, NULL, 0) == PHC_RULE_EKU_MISSING);
    CHECK(check(none, NULL, SSL_SERVER, PHC_RELAX_EKU, NULL, 0) == 0);
    CHECK(check(none, NULL, SSL_SERVER, PHC_RELAX_PURPOSE, NULL, 0) == PHC_RULE_EKU_MISSING);

    CHECK(check(client, NULL, SSL_SERVER, 0, NULL, 0) == PHC_RULE_EKU_NO_SERVER_AUTH);
    CHECK(check(client, NULL, SSL_SERVER, PHC_RELAX_EKU, NULL, 0) == PHC_RULE_EKU_NO_SERVER_AUTH);
    CHECK(check(client, NULL, SSL_SERVER, PHC_RELAX_PURPOSE, NULL, 0) == 0);
    /* The compatible profile still wants serverAuth. */
    CHECK(check(client, NULL, SSL_SERVER, PHC_RELAX_COMPATIBLE, NULL, 0) ==
          PHC_RULE_EKU_NO_SERVER_AUTH);

    CHECK(check(any, NULL, SSL_SERVER, 0, NULL, 0) == PHC_RULE_EKU_ANY);
    CHECK(check(any, NULL, SSL_SERVER, PHC_RELAX_EKU, NULL, 0) == 0);
    CHECK(check(any, NULL, SSL_SERVER, PHC_RELAX_COMPATIBLE, NULL, 0) == 0);
    /* anyExtendedKeyUsage alone lists no serverAuth, which no EKU relaxation lifts. */
    CHECK(check(anyonly, NULL, SSL_SERVER, 0, NULL, 0) == PHC_RULE_EKU_NO_SERVER_AUTH);
    CHECK(check(anyonly, NULL, SSL_SERVER, PHC_RELAX_EKU, NULL, 0) == PHC_RULE_EKU_NO_SERVER_AUTH);

    CHECK(check(both, NULL, SSL_SERVER, 0, NULL, 0) == 0);
    X509_free(none);
    X509_free(client);
    X509_free(any);
    X509_free(anyonly);
    X509_free(both);
}

static void test_wildcard_excluded(void)
{
    char detail[256];
    X509 *ca = mk("Excluding CA", "critical,CA:TRUE", NULL, NULL,
                  "critical,excluded;DNS:secret.example.com");
    X509 *deep = mk("Deep CA", "critical,CA:TRUE", NULL, NULL,
                    "critical,excluded;DNS:.x.example.com,excluded;DNS:a.b.example.com");
    X509 *wild = mk("wild", "CA:FALSE", "serverAuth", "DNS:*.example.com", NULL);
    X509 *lit = mk("lit", "CA:FALSE", "serverAuth", "DNS:www.example.com", NULL);
    X509 *other = mk("other", "CA:FALSE", "serverAuth", "DNS:*.example.org", NULL);
    X509 *upper = mk("upper", "CA:FALSE", "serverAuth", "DNS:*.EXAMPLE.com", NULL);

    strcpy(detail, "stale");
    CHECK(check(wild, ca, SSL_SERVER, 0, detail, sizeof(detail)) == PHC_RULE_NC_WILDCARD);
    CHECK(strstr(detail, "subjectAltName '*.example.com' covers 'secret.example.com'") != NULL);
    CHECK(strstr(detail, "which CA '") != NULL && strstr(detail, "Excluding CA") != NULL);
    /* Case does not matter in DNS names. */
    CHECK(check(upper, ca, SSL_SERVER, 0, NULL, 0) == PHC_RULE_NC_WILDCARD);
    CHECK(check(wild, ca, SSL_SERVER, PHC_RELAX_NC_WILDCARD, NULL, 0) == 0);
    CHECK(check(wild, ca, SSL_SERVER, PHC_RELAX_COMPATIBLE, NULL, 0) == PHC_RULE_NC_WILDCARD);
    /* The rule does not depend on the purpose. */
    CHECK(check(wild, ca, X509_PURPOSE_SSL_CLIENT, 0, NULL, 0) == PHC_RULE_NC_WILDCARD);

    /* A literal name, a wildcard elsewhere, or no CA above: nothing to refuse; detail is
     * cleared. */
    strcpy(detail, "stale");
    CHECK(check(lit, ca, SSL_SERVER, 0, detail, sizeof(detail)) == 0);
    CHECK(detail[0] == '\0');
    CHECK(check(other, ca, SSL_SERVER, 0, NULL, 0) == 0);
    CHECK(check(wild, NULL, SSL_SERVER, 0, NULL, 0) == 0);
    /* ".x.example.com" and a name two labels below are out of a single wildcard's reach. */
    CHECK(check(wild, deep, SSL_SERVER, 0, NULL, 0) == 0);
    X509_free(ca);
    X509_free(deep);
    X509_free(wild);
    X509_free(lit);
    X509_free(other);
    X509_free(upper);
}

static void test_empty_chain(void)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    int depth = -1;
    CHECK(phc__x509_profile_check(chain, SSL_SERVER, 0, &depth, NULL, 0) == PHC_RULE_NOT_PINNED);
    sk_X509_free(chain);
}

static void test_params(void)
{
    X509_VERIFY_PARAM *p = X509_VERIFY_PARAM_new();
    X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_PARTIAL_CHAIN);
    phc__x509_profile_params(p, 0, 0);
    unsigned long f = X509_VERIFY_PARAM_get_flags(p);
    CHECK(f & X509_V_FLAG_X509_STRICT);
    CHECK(!(f & X509_V_FLAG_PARTIAL_CHAIN));
    CHECK(!(f & X509_V_FLAG_NO_CHECK_TIME));
    CHECK(X509_VERIFY_PARAM_get_auth_level(p) == PHC_SECURITY_LEVEL);
    CHECK(X509_VERIFY_PARAM_get_hostflags(p) ==
          (X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT));

    phc__x509_profile_params(
        p, PHC_RELAX_X509_STRICT | PHC_RELAX_TIME | PHC_RELAX_LEVEL | PHC_RELAX_SAN_ONLY, 1);
    f = X509_VERIFY_PARAM_get_flags(p);
    CHECK(!(f & X509_V_FLAG_X509_STRICT));
    CHECK(f & X509_V_FLAG_PARTIAL_CHAIN);
    CHECK(f & X509_V_FLAG_NO_CHECK_TIME);
    CHECK(X509_VERIFY_PARAM_get_auth_level(p) == 0);
    CHECK(X509_VERIFY_PARAM_get_hostflags(p) == X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_free(p);
}

static void test_masks_and_words(void)
{
    CHECK(phc__x509_relax_of(PHC_X509_STRICT) == 0);
    CHECK(phc__x509_relax_of(PHC_X509_COMPATIBLE) == PHC_RELAX_COMPATIBLE);
    CHECK(
        !(PHC_RELAX_COMPATIBLE & (PHC_RELAX_LEVEL | PHC_RELAX_HOST | PHC_RELAX_TIME |
                                  PHC_RELAX_NC_WILDCARD | PHC_RELAX_PURPOSE | PHC_RELAX_SAN_ONLY)));

    CHECK(phc__x509_relax_for(PHC_RULE_LEAF_IS_CA) == PHC_RELAX_LEAF_EE);
    CHECK(phc__x509_relax_for(PHC_RULE_EKU_MISSING) == PHC_RELAX_EKU);
    CHECK(phc__x509_relax_for(PHC_RULE_EKU_ANY) == PHC_RELAX_EKU);
    CHECK(phc__x509_relax_for(PHC_RULE_EKU_NO_SERVER_AUTH) == PHC_RELAX_PURPOSE);
    CHECK(phc__x509_relax_for(X509_V_ERR_INVALID_PURPOSE) == PHC_RELAX_PURPOSE);
    CHECK(phc__x509_relax_for(PHC_RULE_NC_WILDCARD) == PHC_RELAX_NC_WILDCARD);
    CHECK(phc__x509_relax_for(X509_V_ERR_EE_KEY_TOO_SMALL) == PHC_RELAX_LEVEL);
    CHECK(phc__x509_relax_for(X509_V_ERR_CA_MD_TOO_WEAK) == PHC_RELAX_LEVEL);
    CHECK(phc__x509_relax_for(X509_V_ERR_HOSTNAME_MISMATCH) == PHC_RELAX_HOST);
    CHECK(phc__x509_relax_for(X509_V_ERR_IP_ADDRESS_MISMATCH) == PHC_RELAX_HOST);
    CHECK(phc__x509_relax_for(X509_V_ERR_CERT_HAS_EXPIRED) == PHC_RELAX_TIME);
    CHECK(phc__x509_relax_for(X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER) ==
          PHC_RELAX_X509_STRICT);
    CHECK(phc__x509_relax_for(X509_V_ERR_CA_BCONS_NOT_CRITICAL) == PHC_RELAX_X509_STRICT);
    /* Never lifted: the pin, a broken signature, the anchor. */
    CHECK(phc__x509_relax_for(PHC_RULE_NOT_PINNED) == 0);
    CHECK(phc__x509_relax_for(X509_V_ERR_CERT_SIGNATURE_FAILURE) == 0);
    CHECK(phc__x509_relax_for(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY) == 0);
    CHECK(phc__x509_relax_for(PHC_RULE_ANCHOR_NOT_SELF_SIGNED) == 0);

    CHECK(strcmp(phc__x509_rule_name(PHC_RULE_NOT_PINNED), "pinned-ca") == 0);
    CHECK(strcmp(phc__x509_rule_name(PHC_RULE_LEAF_IS_CA), "leaf-end-entity") == 0);
    CHECK(strcmp(phc__x509_rule_name(PHC_RULE_EKU_ANY), "eku-serverauth") == 0);
    CHECK(strcmp(phc__x509_rule_name(PHC_RULE_NC_WILDCARD), "name-constraints") == 0);
    CHECK(strcmp(phc__x509_rule_name(PHC_RULE_ANCHOR_NOT_SELF_SIGNED), "partial-chain") == 0);
    CHECK(strcmp(phc__x509_rule_name(X509_V_ERR_CA_MD_TOO_WEAK), "level2-signature") == 0);
    CHECK(strcmp(phc__x509_rule_name(X509_V_ERR_HOSTNAME_MISMATCH), "san-name") == 0);
    CHECK(strcmp(phc__x509_rule_name(X509_V_ERR_CERT_NOT_YET_VALID), "validity") == 0);
    CHECK(strcmp(phc__x509_rule_name(X509_V_ERR_EMPTY_SUBJECT_ALT_NAME), "x509-strict") == 0);
    CHECK(phc__x509_rule_name(X509_V_ERR_CERT_SIGNATURE_FAILURE) == NULL);

    CHECK(strstr(phc__x509_reason(PHC_RULE_LEAF_IS_CA), "not a server (end-entity)") != NULL);
    CHECK(strstr(phc__x509_reason(PHC_RULE_EKU_MISSING), "has no extendedKeyUsage") != NULL);
    CHECK(strcmp(phc__x509_reason(PHC_RULE_EKU_NO_SERVER_AUTH),
                 "its extendedKeyUsage does not include serverAuth") == 0);
    CHECK(strstr(phc__x509_reason(PHC_RULE_EKU_ANY), "anyExtendedKeyUsage") != NULL);
    CHECK(strstr(phc__x509_reason(PHC_RULE_NC_WILDCARD), "wildcard name") != NULL);
    CHECK(strcmp(phc__x509_reason(PHC_RULE_NOT_PINNED), "its chain does not end at a pinned CA") ==
          0);
    /* Anything else: OpenSSL's words. */
    CHECK(strcmp(phc__x509_reason(X509_V_ERR_CERT_SIGNATURE_FAILURE),
                 X509_verify_cert_error_string(X509_V_ERR_CERT_SIGNATURE_FAILURE)) == 0);
}

int main(void)
{
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!kc || EVP_PKEY_keygen_init(kc) <= 0 || EVP_PKEY_CTX_set_group_name(kc, "P-256") <= 0 ||
        EVP_PKEY_keygen(kc, &g_key) <= 0) {
        fprintf(stderr, "key generation failed\n");
        return 1;
    }
    EVP_PKEY_CTX_free(kc);
    test_leaf_end_entity();
    test_eku();
    test_wildcard_excluded();
    test_empty_chain();
    test_params();
    test_masks_and_words();
    EVP_PKEY_free(g_key);
    TEST_MAIN_END();
}
