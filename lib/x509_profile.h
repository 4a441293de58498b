/* The certificate profile phconnect verifies against: the OpenSSL verification parameters every
 * verification of ours sets (security level, RFC 5280 strictness, SAN-only names, partial
 * chains), plus the few rules OpenSSL 3.0 lacks, each written once. docs/trust.md lists every
 * rule with its source (RFC / CA/B Forum), where it is enforced and the test that proves it.
 *
 * Two profiles (config key x509_profile):
 *  - strict (default): X509_V_FLAG_X509_STRICT and all of our rules.
 *  - compatible: for a legacy vendor chain. Drops X509_V_FLAG_X509_STRICT and the server-leaf
 *    profile rules (end entity, extendedKeyUsage present, no anyExtendedKeyUsage). Never drops
 *    what the connection's security rests on: the pin, security level 2, names only from
 *    subjectAltName, name constraints (wildcards included), partial chains only at an
 *    intermediate pin. */
#ifndef PHC_X509_PROFILE_H
#define PHC_X509_PROFILE_H

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stddef.h>

enum phc_x509_profile {
    PHC_X509_STRICT = 0,
    PHC_X509_COMPATIBLE = 1,
};

/* Our own refusals, negative so they never collide with OpenSSL's X509_V_ERR_* codes. */
enum phc_x509_rule {
    PHC_RULE_NOT_PINNED = -100,      /* the chain ends at a certificate that is not pinned */
    PHC_RULE_LEAF_IS_CA,             /* server certificate is a CA (basicConstraints cA) */
    PHC_RULE_EKU_MISSING,            /* server certificate without extendedKeyUsage */
    PHC_RULE_EKU_NO_SERVER_AUTH,     /* extendedKeyUsage without serverAuth */
    PHC_RULE_EKU_ANY,                /* extendedKeyUsage with anyExtendedKeyUsage */
    PHC_RULE_NC_WILDCARD,            /* a wildcard SAN reaches into an excluded subtree */
    PHC_RULE_ANCHOR_NOT_SELF_SIGNED, /* a pinned root trusted only through a partial chain */
};

/* The security level of the handshake and of every certificate in the chain. */
#define PHC_SECURITY_LEVEL 2

/* Sets what every phconnect verification sets on param: auth level 2, hostname flags
 * (no subject CN fallback, no partial wildcards), X509_STRICT for the strict profile and
 * PARTIAL_CHAIN only when partial_chain is 1 (the pinned set holds an intermediate). */
void phc__x509_profile_params(X509_VERIFY_PARAM *param, int profile, int partial_chain);

/* The rules OpenSSL lacks, on a chain X509_verify_cert accepted (leaf first). purpose is an
 * X509_PURPOSE_*: the server-leaf rules apply only to X509_PURPOSE_SSL_SERVER. Returns 0 or
 * a PHC_RULE_* code with *depth set to the certificate it concerns; detail (may be NULL)
 * receives the specifics (which SAN, which excluded subtree). */
int phc__x509_profile_check(STACK_OF(X509) * chain, int purpose, int profile, int *depth,
                            char *detail, size_t detaillen);

/* Operator words for an X509_V_ERR_* code or a PHC_RULE_* code, naming the rule. Static. */
const char *phc__x509_reason(int error);

/* Short stable name of a rule for `phc check --trust --chain` ("level2-key", "san-only",
 * "x509-strict", "leaf-end-entity", ...); NULL for errors that are not a profile rule. */
const char *phc__x509_rule_name(int error);

#endif
