/* Client-credential authentication (the vendor's primary method): an access token (OAuth's
 * bearer token; the messages say "API token") from token_path (default /v1/auth/token), requested
 * with HTTP Basic client_id:client_secret and grant_type=client_credentials over the same pinned
 * trust and address policy as every other request. One access token is cached per client and shared
 * by its threads; it is refreshed before it expires (one refresh in flight at a time) and once
 * after a 401. The secret and the access tokens live in wiped buffers and never reach a log or a
 * message. */
#ifndef PHC_AUTH_H
#define PHC_AUTH_H

#include "config.h"
#include "log.h"

typedef struct phc_auth phc_auth;

/* Performs one plain request (no auth added) on the client's transport. Same contract as
 * phc_client_request. */
typedef int (*phc_auth_perform_fn)(void *ud, const phc_request *req, phc_response **out,
                                   phc_errbuf *err);

/* cfg and log are borrowed and must outlive the handle. Reads nothing yet: the secret is read
 * from its source each time an access token is requested and wiped right after. */
PHC_WUR int phc__auth_new(phc_auth **out, const phc_config *cfg, const phc_log *log,
                          phc_errbuf *err);

/* Performs req with "Authorization: Bearer <access token>" added, fetching or refreshing it
 * through perform as needed; on a 401 from the API it refreshes once and retries once.
 * Errors: PHC_ERR_AUTH when the token endpoint refuses the credential (invalid, expired or
 * deleted), else as perform. */
PHC_WUR int phc__auth_request(phc_auth *a, phc_auth_perform_fn perform, void *ud,
                              const phc_request *req, phc_response **out, phc_errbuf *err);

void phc__auth_free(phc_auth *a);

#endif
