/* One generation of the client's identity: the token handle, the key/certificate pair chosen
 * on it, the TLS settings built from them, a TLS session cache and a pool of transfer
 * handles (each keeping its connection). A rotation replaces the whole generation, so no
 * connection or TLS session made with an old certificate can serve a new request: they die
 * with the generation once its last in-flight request returns. */
#ifndef PHC_GEN_H
#define PHC_GEN_H

#include "config.h"
#include "hsm.h"
#include "http.h"
#include "log.h"
#include "trust.h"

typedef struct phc_gen phc_gen;

/* Opens the token (when cfg has a key), selects the identity valid at now and prepares TLS.
 * The generation takes references of its own on cfg and trust (a reload may replace the
 * client's: the generation's connections were made under these); log is copied. latch (may be
 * NULL) is the client's memory of a refused PIN, read and updated by the login (hsm.h). The
 * result holds one reference. */
PHC_WUR int phc__gen_new(phc_gen **out, const phc_config *cfg, const phc_trust *trust,
                         const phc_log *log, long long now, phc_pin_latch *latch, phc_errbuf *err);

/* 1 when both generations present the same client certificate (or both none). */
int phc__gen_same_identity(const phc_gen *a, const phc_gen *b);

/* One more reference; returns g. Thread-safe. */
phc_gen *phc__gen_ref(phc_gen *g);

/* Drops a reference; the last one frees the generation, closing its connections. NULL ok. */
void phc__gen_unref(phc_gen *g);

/* One request on one of the generation's transfer handles. Contract of phc_client_request.
 * *unsent: as phc__xfer_unsent (1: the request provably never reached the server). */
PHC_WUR int phc__gen_perform(phc_gen *g, const phc_request *req, phc_response **out, int *unsent,
                             phc_errbuf *err);

/* Signs n test digests with the token key as a TLS 1.3 handshake would (RSA-PSS or ECDSA,
 * SHA-256); *seconds gets the elapsed time. PHC_ERR_HSM naming the token when it refuses:
 * this is also how a dead token session is told apart from a network failure. */
PHC_WUR int phc__gen_sign(phc_gen *g, int n, double *seconds, phc_errbuf *err);

/* 1 when the generation has a token key. */
int phc__gen_has_key(const phc_gen *g);

/* The client certificate (borrowed, NULL without one). */
X509 *phc__gen_cert(const phc_gen *g);

/* The trust store the generation's TLS settings were built from. Borrowed. */
const phc_trust *phc__gen_trust(const phc_gen *g);

#endif
