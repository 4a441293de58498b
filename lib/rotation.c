#include "rotation.h"

#include "util_time.h"

#include <openssl/err.h>

#include <time.h>

int phc__cert_validity(const X509 *c, long long now)
{
    time_t t = (time_t)now;
    int nb = X509_cmp_time(X509_get0_notBefore(c), &t);
    int na = X509_cmp_time(X509_get0_notAfter(c), &t);
    ERR_clear_error();
    if (nb == 0 || na == 0)
        return PHC_CERT_UNREADABLE;
    if (nb > 0)
        return PHC_CERT_NOT_YET_VALID;
    if (na < 0)
        return PHC_CERT_EXPIRED;
    return PHC_CERT_VALID;
}

int phc__cert_newer(const X509 *a, long seq_a, const X509 *b, long seq_b)
{
    int c = ASN1_TIME_compare(X509_get0_notBefore(a), X509_get0_notBefore(b));
    if (c == 0)
        c = ASN1_TIME_compare(X509_get0_notAfter(a), X509_get0_notAfter(b));
    /* Same second for both dates (two certificates issued together): the later installation
     * (install_order.h). A recorded certificate ranks above an unrecorded one - those were
     * installed before the record existed or fell out of it as the oldest - which keeps the
     * order total: (recorded, place) then the fixed order, whatever order a caller meets
     * the certificates in. */
    if (c == 0 && (seq_a >= 0 || seq_b >= 0))
        c = (seq_a > seq_b) - (seq_a < seq_b);
    /* Neither recorded: any fixed order will do, as long as every caller gets the same
     * answer. */
    if (c == 0)
        c = X509_cmp(a, b);
    return c > 0;
}

void phc__cert_dates(const X509 *c, long long now, long long *not_before, long long *not_after,
                     long *days_left)
{
    *not_before = phc__asn1_time_epoch(X509_get0_notBefore(c));
    *not_after = phc__asn1_time_epoch(X509_get0_notAfter(c));
    *days_left = phc__days_until(*not_after, now);
}

long long phc__asn1_time_epoch(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm)) {
        ERR_clear_error();
        return 0;
    }
    return (long long)timegm(&tm);
}
