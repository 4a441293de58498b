/* Token administration: the key/certificate life cycle on the HSM (enrol, CSR, install,
 * status, prune) and the client secret stored as a token data object. Included by
 * phconnect.h; conventions as there. */
#ifndef PHCONNECT_TOKEN_H
#define PHCONNECT_TOKEN_H

#include <phconnect/phconnect.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif
