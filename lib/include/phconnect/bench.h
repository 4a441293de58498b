/* UNSTABLE: for `phc bench` only. What this header declares measures the connector; it is not
 * part of the stable API of docs/contract.md and may change or go in any release, without a
 * new SONAME for its symbols' signatures. Not included by phconnect.h: a program that uses it
 * says so by including it. Conventions as in phconnect.h. */
#ifndef PHCONNECT_BENCH_H
#define PHCONNECT_BENCH_H

#include <phconnect/phconnect.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Signs n test digests with the client's token key, as a TLS handshake would (RSA-PSS or
 * ECDSA with SHA-256); *seconds receives the elapsed wall time. It measures the token's raw
 * signing rate, the floor of a full handshake. Errors: PHC_ERR_CONFIG (no client, or a client
 * without a token key), PHC_ERR_HSM (the token did not sign, or a forked child), PHC_ERR_PIN. */
PHC_API PHC_WUR int phc_client_sign_test(phc_client *client, int n, double *seconds,
                                         phc_errbuf *err);

#ifdef __cplusplus
}
#endif

#endif
