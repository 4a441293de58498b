/* Process-wide counters and the per-thread facts of the last transfer, fed by one-line hooks
 * in http.c (each transfer: counted into its own record, published to the thread when it
 * ends), sign_guard.c (each token operation) and client.c (each reopen of a lost token).
 * Counters are relaxed atomics: they are read for monitoring, never used to decide anything. */
#include "stats.h"

#include "client.h"
#include "err.h"
#include "gen.h"
#include "opts.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static unsigned long long n_requests, n_reused, n_full, n_resumed, n_signatures, n_reopens;

/* -1: this thread's last request never reached the server. Written only by
 * phc__stats_publish, after a transfer's last wait, from the transfer's own record. */
static __thread int last_reused = -1, last_resumed = -1;

static void bump(unsigned long long *n)
{
    __atomic_add_fetch(n, 1, __ATOMIC_RELAXED);
}

static unsigned long long get(const unsigned long long *n)
{
    return __atomic_load_n(n, __ATOMIC_RELAXED);
}

void phc__stats_last_init(phc_stats_last *last)
{
    last->counted = 0;
    last->reused = -1;
    last->resumed = -1;
}

void phc__stats_reset_last(void)
{
    last_reused = -1;
    last_resumed = -1;
}

void phc__stats_publish(const phc_stats_last *last)
{
    last_reused = last->reused;
    last_resumed = last->resumed;
}

void phc__stats_transfer(CURL *curl, phc_stats_last *last)
{
    if (last->counted)
        return;
    last->counted = 1;
    long connects = 0;
    struct curl_tlssessioninfo *ti = NULL;
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(curl, CURLINFO_TLS_SSL_PTR, &ti);
    SSL *ssl = (ti && ti->backend == CURLSSLBACKEND_OPENSSL) ? ti->internals : NULL;
    int resumed = ssl && SSL_session_reused(ssl);
    bump(&n_requests);
    if (connects == 0) {
        bump(&n_reused);
    } else if (resumed) {
        bump(&n_resumed);
    } else {
        bump(&n_full);
    }
    last->reused = connects == 0;
    last->resumed = connects != 0 && resumed;
}

void phc__stats_signature(void)
{
    bump(&n_signatures);
}

void phc__stats_reopen(void)
{
    bump(&n_reopens);
}

/* Uppercase hex without separators, as openssl x509 -serial prints it. */
static void serial_hex(char *buf, size_t len, const X509 *cert)
{
    buf[0] = '\0';
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex)
        snprintf(buf, len, "%s%s", strlen(hex) % 2 ? "0" : "", hex);
    OPENSSL_free(hex);
    BN_free(bn);
}

int phc_client_stats(phc_client *client, phc_stats *out, phc_errbuf *err)
{
    if (!client || !out)
        return phc__err(err, PHC_ERR_INTERNAL, "phc_client_stats: client or out is NULL");
    /* The caller's struct is as large as its version says: fill no more than that. */
    int rc = phc__version_check("phc_stats", out->version, PHC_STATS_VERSION, err);
    if (rc != PHC_OK)
        return rc;
    memset(out, 0, sizeof(*out));
    out->version = PHC_STATS_VERSION;
    phc_gen *g = phc__client_peek_gen(client);
    X509 *cert = g ? phc__gen_cert(g) : NULL;
    out->token_ok = g != NULL;
    if (cert) {
        serial_hex(out->cert_serial, sizeof(out->cert_serial), cert);
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
            out->cert_not_after = (long long)timegm(&tm);
    }
    phc__gen_unref(g);
    out->requests = get(&n_requests);
    out->connections_reused = get(&n_reused);
    out->handshakes_full = get(&n_full);
    out->handshakes_resumed = get(&n_resumed);
    out->token_signatures = get(&n_signatures);
    out->token_reopens = get(&n_reopens);
    return PHC_OK;
}

void phc_client_last_connection(int *reused, int *resumed)
{
    if (reused)
        *reused = last_reused;
    if (resumed)
        *resumed = last_resumed;
}
