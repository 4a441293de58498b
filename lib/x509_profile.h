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

#include <phconnect/phconnect.h>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stddef.h>

enum phc_x509_profile {
    PHC_X509_STRICT = 0,
    PHC_X509_COMPATIBLE = 1,
};

/* What a verification may leave out, as a mask: a profile is a set of relaxations (strict
 * none, compatible PHC_RELAX_COMPATIBLE). The others exist only for `phc check --trust
 * --chain`, which lifts one rule after another to name every rule a chain fails; no
 * connection ever runs with them. */
enum phc_x509_relax {
    PHC_RELAX_X509_STRICT = 1 << 0, /* X509_V_FLAG_X509_STRICT */
    PHC_RELAX_LEAF_EE = 1 << 1,     /* server certificate may be a CA */
    PHC_RELAX_EKU = 1 << 2,         /* EKU may be absent or hold anyExtendedKeyUsage */
    PHC_RELAX_LEVEL = 1 << 3,       /* no security level on the chain */
    PHC_RELAX_SAN_ONLY = 1 << 4,    /* subject CN as a fallback name */
    PHC_RELAX_HOST = 1 << 5,        /* no host name check at all */
    PHC_RELAX_TIME = 1 << 6,        /* no validity period check */
    PHC_RELAX_NC_WILDCARD = 1 << 7, /* our wildcard name-constraint rule */
    PHC_RELAX_PURPOSE = 1 << 8,     /* no purpose check (OpenSSL's serverAuth/keyUsage) */
};
#define PHC_RELAX_COMPATIBLE (PHC_RELAX_X509_STRICT | PHC_RELAX_LEAF_EE | PHC_RELAX_EKU)

/* The relaxations of a profile. */
unsigned phc__x509_relax_of(int profile);

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
 * (no subject CN fallback, no partial wildcards), X509_STRICT unless relaxed, and
 * PARTIAL_CHAIN only when partial_chain is 1 (the pinned set holds an intermediate). */
void phc__x509_profile_params(X509_VERIFY_PARAM *param, unsigned relax, int partial_chain);

/* The rules OpenSSL lacks, on a chain X509_verify_cert accepted (leaf first). purpose is an
 * X509_PURPOSE_*: the server-leaf rules apply only to X509_PURPOSE_SSL_SERVER. Returns 0 or
 * a PHC_RULE_* code with *depth set to the certificate it concerns; detail (may be NULL)
 * receives the specifics (which SAN, which excluded subtree). */
PHC_WUR int phc__x509_profile_check(STACK_OF(X509) * chain, int purpose, unsigned relax, int *depth,
                                    char *detail, size_t detaillen);

/* The relaxation that lifts the rule behind error (an X509_V_ERR_* or PHC_RULE_*), or 0 when
 * no relaxation exists (the pin, a broken signature: never lifted). */
unsigned phc__x509_relax_for(int error);

/* Operator words for an X509_V_ERR_* code or a PHC_RULE_* code, naming the rule. Static. */
const char *phc__x509_reason(int error);

/* Short stable name of a rule for `phc check --trust --chain` ("level2-key", "san-only",
 * "x509-strict", "leaf-end-entity", ...); NULL for errors that are not a profile rule. */
const char *phc__x509_rule_name(int error);

#endif
