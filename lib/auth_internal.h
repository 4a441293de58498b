/* Pure helpers of auth.c (the access token: OAuth's bearer token, the "API token" of the
 * messages; "token" alone is the PKCS#11 token), exposed for tests/unit/auth_test.c only (no other
 * unit includes this header). None of them touches the cache, the network or a lock. */
#ifndef PHC_AUTH_INTERNAL_H
#define PHC_AUTH_INTERNAL_H

#include <phconnect/phconnect.h>

#include <stddef.h>
#include <stdint.h>

/* Lifetime assumed when the token endpoint sends no expires_in (seconds). */
#define PHC_ACCESS_DEFAULT_LIFETIME 300
/* Longest lifetime believed (one year, the longest a credential lives); larger values are
 * clamped so that the arithmetic cannot overflow. */
#define PHC_ACCESS_MAX_LIFETIME (365LL * 86400)
/* Longest access token accepted (bytes). */
#define PHC_ACCESS_MAX_LEN 8192

/* "Authorization: Basic base64(id:secret)". *out is NUL-terminated and must be released with
 * phc__secret_free(*out, *out_len), which wipes it. id must not contain ':' (checked). */
int phc__auth_basic_header(char **out, size_t *out_len, const char *id, const char *secret,
                           size_t secret_len, phc_errbuf *err);

/* Parses a token endpoint answer: a JSON object with access_token (and optionally
 * expires_in, token_type) at the top level or under "data". *access (release with
 * phc__secret_free(*access, *access_len)) is printable ASCII without spaces; *lifetime_s is
 * expires_in clamped to [0, PHC_ACCESS_MAX_LIFETIME], or PHC_ACCESS_DEFAULT_LIFETIME when absent.
 * Fails with PHC_ERR_AUTH; messages never quote the body (it may hold an access token). */
int phc__access_parse(char **access, size_t *access_len, long long *lifetime_s, const char *body,
                      size_t len, phc_errbuf *err);

/* For an access token valid for lifetime_s seconds from the moment it was requested: after how many
 * milliseconds it is refreshed (when less than max(30 s, 10% of the lifetime) remains, but
 * never earlier than half-way, so that short-lived ones are still reused) and for how many
 * milliseconds it may be sent at all (1 s before it expires, or a quarter of a very short
 * lifetime, so that a request in flight does not arrive with an expired access token). */
void phc__access_schedule(long long lifetime_s, int64_t *refresh_after_ms, int64_t *usable_for_ms);

#endif
