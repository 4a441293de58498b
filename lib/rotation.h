/* The rotation rule in one place: which of the client's certificates the connector uses.
 * Among the certificates of the client's keys, the one valid now with the latest notBefore
 * (ties: the later notAfter, then the later installation) is the identity; keys without a
 * certificate are pending and never chosen. lib/hsm.c chooses the connector's identity with it and
 * lib/token.c shows the same choice as the ACTIVE pair, so `phc status` names the pair requests
 * will use. */
#ifndef PHC_ROTATION_H
#define PHC_ROTATION_H

#include <openssl/x509.h>

/* Validity of c at now: PHC_CERT_VALID, _NOT_YET_VALID, _EXPIRED or _UNREADABLE (dates that
 * cannot be compared; never chosen). */
enum {
    PHC_CERT_NOT_YET_VALID = -1,
    PHC_CERT_VALID = 0,
    PHC_CERT_EXPIRED = 1,
    PHC_CERT_UNREADABLE = 2,
};
int phc__cert_validity(const X509 *c, long long now);

/* 1 when a is newer than b: later notBefore, then later notAfter, then (equal dates) the
 * later installation: seq_a/seq_b are the certificates' places in the token's install-order
 * record (install_order.h; -1 when not recorded), and a recorded one ranks above an
 * unrecorded one; then (neither recorded) a fixed order of the encodings (X509_cmp), so that
 * every caller breaks a tie the same way. */
int phc__cert_newer(const X509 *a, long seq_a, const X509 *b, long seq_b);

/* notBefore/notAfter as seconds since the epoch; 0 when unreadable. */
long long phc__asn1_time_epoch(const ASN1_TIME *t);

/* c's notBefore and notAfter (as phc__asn1_time_epoch) and the whole days from now until
 * notAfter (negative once passed), as `phc status` and `phc check` show them. */
void phc__cert_dates(const X509 *c, long long now, long long *not_before, long long *not_after,
                     long *days_left);

#endif
