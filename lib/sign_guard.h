/* A time bound on the token's signatures. libp11 calls the module synchronously from inside
 * the TLS handshake; a token that stops answering would hang the request, the thread and,
 * through locks, the client. The guard wraps the token key in a key whose private operations
 * run on one of its long-lived worker threads (a pool per guarded key, started as
 * concurrent signatures need them) while the caller gives up after a deadline: the handshake then
 * fails with a clear error and the client reopens the token (client.c). A worker that never returns
 * is abandoned; it owns its copies of every buffer, so nothing it touches goes away under it. */
#ifndef PHC_SIGN_GUARD_H
#define PHC_SIGN_GUARD_H

#include <openssl/evp.h>

#include <phconnect/phconnect.h>

/* Makes *out (owned by the caller, EVP_PKEY_free) that signs through key (an RSA or EC key
 * whose operations run on the token; up-referenced, so the caller may drop its own) with each
 * operation bounded by timeout_ms. token names the token in messages. */
int phc__guard_key(EVP_PKEY **out, EVP_PKEY *key, long timeout_ms, const char *token,
                   phc_errbuf *err);

/* When a guarded operation on key timed out and its worker has not come back yet: the
 * message to report (borrowed from the key), else NULL. */
const char *phc__guard_stuck(const EVP_PKEY *guarded);

#endif
