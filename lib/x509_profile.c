#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* strncasecmp */
#endif

#include "x509_profile.h"

#include "trust.h"

#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

unsigned phc__x509_relax_of(int profile)
{
    return profile == PHC_X509_COMPATIBLE ? PHC_RELAX_COMPATIBLE : 0;
}

void phc__x509_profile_params(X509_VERIFY_PARAM *param, unsigned relax, int partial_chain)
{
    /* RSA/DSA/DH >= 2048 bits, EC >= 224 bits, no SHA-1/MD5 signatures, on every
     * certificate of the chain: this context inherits nothing from the SSL_CTX. */
    X509_VERIFY_PARAM_set_auth_level(param, relax & PHC_RELAX_LEVEL ? 0 : PHC_SECURITY_LEVEL);
    /* Names only from subjectAltName (RFC 9525 section 6.3; CA/B BR 7.1.4.3): never the
     * subject CN. IP addresses are only ever matched against iPAddress SANs. */
    X509_VERIFY_PARAM_set_hostflags(
        param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
                   (relax & PHC_RELAX_SAN_ONLY ? 0 : X509_CHECK_FLAG_NEVER_CHECK_SUBJECT));
    unsigned long set = 0, clear = X509_V_FLAG_PARTIAL_CHAIN;
    if (relax & PHC_RELAX_X509_STRICT)
        clear |= X509_V_FLAG_X509_STRICT;
    else
        set |= X509_V_FLAG_X509_STRICT;
    if (relax & PHC_RELAX_TIME)
        set |= X509_V_FLAG_NO_CHECK_TIME;
    if (partial_chain) {
        set |= X509_V_FLAG_PARTIAL_CHAIN;
        clear &= ~(unsigned long)X509_V_FLAG_PARTIAL_CHAIN;
    }
    X509_VERIFY_PARAM_clear_flags(param, clear);
    X509_VERIFY_PARAM_set_flags(param, set);
}

/* CA/B BR 7.1.2.7.10: a server certificate's extendedKeyUsage MUST be present, MUST contain
 * id-kp-serverAuth and MUST NOT contain anyExtendedKeyUsage. OpenSSL's SSL-server purpose
 * accepts a certificate without the extension and one that lists anyExtendedKeyUsage. */
static int check_eku(X509 *leaf, unsigned relax)
{
    uint32_t flags = X509_get_extension_flags(leaf);
    if (!(flags & EXFLAG_XKUSAGE))
        return relax & PHC_RELAX_EKU ? 0 : PHC_RULE_EKU_MISSING;
    uint32_t xku = X509_get_extended_key_usage(leaf);
    if (!(xku & XKU_SSL_SERVER))
        return relax & PHC_RELAX_PURPOSE ? 0 : PHC_RULE_EKU_NO_SERVER_AUTH;
    if ((xku & XKU_ANYEKU) && !(relax & PHC_RELAX_EKU))
        return PHC_RULE_EKU_ANY;
    return 0;
}

/* 1 when the DNS name `base` (a name constraint, no leading dot) is exactly one label below
 * `suffix`: a wildcard "*.suffix" would match it. */
static int one_label_below(const char *base, size_t blen, const char *suffix, size_t slen)
{
    if (blen < slen + 2 || base[blen - slen - 1] != '.' ||
        strncasecmp(base + blen - slen, suffix, slen) != 0)
        return 0;
    return memchr(base, '.', blen - slen - 1) == NULL;
}

/* RFC 5280 4.2.1.10 applies every excluded subtree to every name the certificate can be used
 * for. OpenSSL compares a wildcard SAN "*.example.com" as the literal string, so an excluded
 * "secret.example.com" does not stop it, though the wildcard is valid for that host (the
 * case x509-limbo and Go/rustls refuse). Permitted subtrees need nothing extra: the literal
 * comparison already refuses a wildcard that is not inside one. */
static int check_wildcards(STACK_OF(X509) * chain, int *depth, char *detail, size_t detaillen)
{
    X509 *leaf = sk_X509_value(chain, 0);
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int s = 0; !rc && sans && s < sk_GENERAL_NAME_num(sans); s++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, s);
        if (gn->type != GEN_DNS)
            continue;
        const char *san = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
        size_t sanlen = (size_t)ASN1_STRING_length(gn->d.dNSName);
        if (sanlen < 3 || san[0] != '*' || san[1] != '.')
            continue;
        for (int i = 1; !rc && i < sk_X509_num(chain); i++) {
            X509 *ca = sk_X509_value(chain, i);
            NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, NULL, NULL);
            for (int e = 0; !rc && nc && e < sk_GENERAL_SUBTREE_num(nc->excludedSubtrees); e++) {
                GENERAL_NAME *base = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, e)->base;
                if (base->type != GEN_DNS)
                    continue;
                const char *b = (const char *)ASN1_STRING_get0_data(base->d.dNSName);
                size_t blen = (size_t)ASN1_STRING_length(base->d.dNSName);
                /* ".x.example.com" excludes only names below x.example.com, which a
                 * single-label wildcard one level above cannot reach. */
                if (blen == 0 || b[0] == '.' || !one_label_below(b, blen, san + 2, sanlen - 2))
                    continue;
                rc = PHC_RULE_NC_WILDCARD;
                *depth = 0;
                if (detail) {
                    char cname[96];
                    phc__name_str(cname, sizeof(cname), X509_get_subject_name(ca));
                    snprintf(detail, detaillen,
                             "subjectAltName '%.*s' covers '%.*s', which CA '%s' excludes",
                             (int)(sanlen > 80 ? 80 : sanlen), san, (int)(blen > 80 ? 80 : blen), b,
                             cname);
                }
            }
            NAME_CONSTRAINTS_free(nc);
        }
    }
    GENERAL_NAMES_free(sans);
    return rc;
}

int phc__x509_profile_check(STACK_OF(X509) * chain, int purpose, unsigned relax, int *depth,
                            char *detail, size_t detaillen)
{
    if (detail && detaillen)
        detail[0] = '\0';
    *depth = 0;
    X509 *leaf = sk_X509_value(chain, 0);
    if (!leaf)
        return PHC_RULE_NOT_PINNED;
    if (purpose == X509_PURPOSE_SSL_SERVER) {
        /* RFC 5280 4.2.1.9 / CA/B BR 7.1.2.7.8: a server certificate is an end entity. A CA
         * certificate presented as a server can also sign servers of its own. */
        if (!(relax & PHC_RELAX_LEAF_EE) && (X509_get_extension_flags(leaf) & EXFLAG_CA))
            return PHC_RULE_LEAF_IS_CA;
        int rc = check_eku(leaf, relax);
        if (rc)
            return rc;
    }
    return relax & PHC_RELAX_NC_WILDCARD ? 0 : check_wildcards(chain, depth, detail, detaillen);
}

const char *phc__x509_reason(int error)
{
    switch (error) {
    case PHC_RULE_NOT_PINNED:
        return "its chain does not end at a pinned CA";
    case PHC_RULE_LEAF_IS_CA:
        return "it is a CA certificate, not a server (end-entity) certificate (RFC 5280 "
               "4.2.1.9)";
    case PHC_RULE_EKU_MISSING:
        return "it has no extendedKeyUsage; a server certificate must list serverAuth (CA/B "
               "BR 7.1.2.7.10)";
    case PHC_RULE_EKU_NO_SERVER_AUTH:
        return "its extendedKeyUsage does not include serverAuth";
    case PHC_RULE_EKU_ANY:
        return "its extendedKeyUsage includes anyExtendedKeyUsage (CA/B BR 7.1.2.7.10)";
    case PHC_RULE_NC_WILDCARD:
        return "a wildcard name reaches into a subtree the CA's name constraints exclude "
               "(RFC 5280 4.2.1.10)";
    case PHC_RULE_ANCHOR_NOT_SELF_SIGNED:
        return "the pinned root it ends at is not a valid self-signed certificate";
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
        return "key too weak for security level 2 (RSA/DSA below 2048 bits, EC below 224 "
               "bits)";
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return "signature too weak for security level 2 (SHA-1 or MD5)";
    case X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER:
        return "no authorityKeyIdentifier key id (RFC 5280 4.2.1.1)";
    case X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER:
        return "CA certificate without subjectKeyIdentifier (RFC 5280 4.2.1.2)";
    case X509_V_ERR_CA_BCONS_NOT_CRITICAL:
        return "CA certificate whose basicConstraints is not critical (RFC 5280 4.2.1.9)";
    case X509_V_ERR_INVALID_EXTENSION:
        return "a malformed certificate extension";
    case X509_V_ERR_INVALID_PURPOSE:
        return "unsuitable certificate purpose (its extendedKeyUsage or keyUsage does not allow "
               "this use)";
    case X509_V_ERR_EXCLUDED_VIOLATION:
    case X509_V_ERR_PERMITTED_VIOLATION:
        return "a name outside the CA's name constraints (RFC 5280 4.2.1.10)";
    default:
        return X509_verify_cert_error_string(error);
    }
}

const char *phc__x509_rule_name(int error)
{
    switch (error) {
    case PHC_RULE_NOT_PINNED:
        return "pinned-ca";
    case PHC_RULE_LEAF_IS_CA:
        return "leaf-end-entity";
    case PHC_RULE_EKU_MISSING:
    case PHC_RULE_EKU_ANY:
    case PHC_RULE_EKU_NO_SERVER_AUTH:
    case X509_V_ERR_INVALID_PURPOSE:
        return "eku-serverauth";
    case PHC_RULE_NC_WILDCARD:
    case X509_V_ERR_EXCLUDED_VIOLATION:
    case X509_V_ERR_PERMITTED_VIOLATION:
        return "name-constraints";
    case PHC_RULE_ANCHOR_NOT_SELF_SIGNED:
        return "partial-chain";
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
        return "level2-key";
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return "level2-signature";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "san-name";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "validity";
    case X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA:
    case X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN:
    case X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA:
    case X509_V_ERR_ISSUER_NAME_EMPTY:
    case X509_V_ERR_SUBJECT_NAME_EMPTY:
    case X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER:
    case X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER:
    case X509_V_ERR_EMPTY_SUBJECT_ALT_NAME:
    case X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL:
    case X509_V_ERR_CA_BCONS_NOT_CRITICAL:
    case X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL:
    case X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL:
    case X509_V_ERR_CA_CERT_MISSING_KEY_USAGE:
    case X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3:
    case X509_V_ERR_EC_KEY_EXPLICIT_PARAMS:
    case X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY:
        return "x509-strict";
    default:
        return NULL;
    }
}

unsigned phc__x509_relax_for(int error)
{
    switch (error) {
    case PHC_RULE_LEAF_IS_CA:
        return PHC_RELAX_LEAF_EE;
    case PHC_RULE_EKU_MISSING:
    case PHC_RULE_EKU_ANY:
        return PHC_RELAX_EKU;
    case PHC_RULE_EKU_NO_SERVER_AUTH:
    case X509_V_ERR_INVALID_PURPOSE:
        return PHC_RELAX_PURPOSE;
    case PHC_RULE_NC_WILDCARD:
        return PHC_RELAX_NC_WILDCARD;
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return PHC_RELAX_LEVEL;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return PHC_RELAX_HOST;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return PHC_RELAX_TIME;
    default:
        return phc__x509_rule_name(error) && strcmp(phc__x509_rule_name(error), "x509-strict") == 0
                   ? PHC_RELAX_X509_STRICT
                   : 0;
    }
}
