/* The trust self-test (`phc check --trust`, a line of `phc status`): proves offline, through
 * the very verification path requests use, that the configured trust refuses what it must.
 * Included by phconnect.h; conventions as there. docs/trust.md describes what it proves. */
#ifndef PHCONNECT_TRUSTCHECK_H
#define PHCONNECT_TRUSTCHECK_H

#include <phconnect/phconnect.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum phc_trust_result {
    PHC_TRUST_PASS = 0,
    PHC_TRUST_WARN = 1,    /* works today, but look (CA near expiry, chain only compatible) */
    PHC_TRUST_FAIL = 2,    /* the trust is broken or a connection would be refused */
    PHC_TRUST_SKIPPED = 3, /* not applicable (no ca_sha256 set, no chain given) */
} phc_trust_result;

typedef struct phc_trust_finding {
    /* Stable names: "ca_sha256", "decoy", "ca_expiry", and for a chain "chain" (the verdict
     * under the configured profile) and "chain:<rule>" per failed rule (docs/trust.md). */
    char name[48];
    phc_trust_result result;
    char detail[PHC_ERRMSG_MAX]; /* one line, an operator's words */
} phc_trust_finding;

/* The result of phc_trust_check, made by the library and opaque so it can grow: read it with
 * the accessors below. phc_trust_finding is reached only through phc_trust_report_get, so it
 * can grow at its end without a new SONAME. */
typedef struct phc_trust_report phc_trust_report;

/* The worst of the findings, SKIPPED counting as PASS; PHC_TRUST_SKIPPED for NULL (nothing
 * ran). */
PHC_API phc_trust_result phc_trust_report_overall(const phc_trust_report *r);

/* Number of findings; 0 for NULL. */
PHC_API size_t phc_trust_report_count(const phc_trust_report *r);

/* Finding i (borrowed from r, valid until phc_trust_report_free), or NULL when i is out of
 * range or r is NULL. Findings come in the order the test made them. */
PHC_API const phc_trust_finding *phc_trust_report_get(const phc_trust_report *r, size_t i);

/* The earliest notAfter among the pinned CAs (Unix time); 0 when they were not loaded or r is
 * NULL. */
PHC_API long long phc_trust_report_ca_not_after(const phc_trust_report *r);

typedef struct phc_trust_check_opts {
    unsigned int version; /* PHC_TRUST_CHECK_OPTS_VERSION */
    /* A directory the caller made for the decoy CA, which the library writes there as
     * decoy-ca.pem plus an `openssl rehash` link and removes again. The caller points a
     * careless client at it beforehand: SSL_CERT_FILE=<dir>/decoy-ca.pem, SSL_CERT_DIR=<dir>
     * (the library never sets the environment). NULL: the decoy goes only into the
     * connection's own SSL_CTX store. */
    const char *decoy_dir;
    /* NULL, or a PEM file with a server chain, leaf first (the vendor's real chain): judged
     * for the configured host, naming every rule it fails. */
    const char *chain_file;
    long long now;  /* 0: the current time */
    long warn_days; /* CA expiry within this many days: WARN */
    long crit_days; /* ... within this many: FAIL */
} phc_trust_check_opts;

#define PHC_TRUST_CHECK_OPTS_VERSION 1
#define PHC_TRUST_CHECK_OPTS_INIT                                                                  \
    {                                                                                              \
        PHC_TRUST_CHECK_OPTS_VERSION, NULL, NULL, 0, 30, 7                                         \
    }

/* Sets *opts to PHC_TRUST_CHECK_OPTS_INIT for version (PHC_TRUST_CHECK_OPTS_VERSION);
 * PHC_ERR_CONFIG when the library does not know version (opts is then left alone). */
PHC_API PHC_WUR int phc_trust_check_opts_init(phc_trust_check_opts *opts, unsigned int version);

/* Runs the self-test for cfg and opts (both borrowed for the call; opts' strings too):
 * ca_file against ca_sha256, a decoy CA
 * with a server certificate for the configured host, made in memory and offered through a
 * real in-memory TLS handshake to a connection context built exactly as a request's, which
 * must refuse it; the pinned CAs' expiry; and the optional chain. opts may be NULL (defaults).
 * Returns PHC_OK with *out set (release with phc_trust_report_free) whenever the test ran,
 * whatever it found; PHC_ERR_CONFIG (bad opts, unreadable chain file) or PHC_ERR_INTERNAL
 * when it could not run. */
PHC_API PHC_WUR int phc_trust_check(phc_trust_report **out, const phc_config *cfg,
                                    const phc_trust_check_opts *opts, phc_errbuf *err);

/* NULL allowed. */
PHC_API void phc_trust_report_free(phc_trust_report *r);

/* "pass", "warn", "fail", "skipped". Static. */
PHC_API const char *phc_trust_result_name(phc_trust_result r);

#ifdef __cplusplus
}
#endif

#endif
