#include "alert.h"

#include "err.h"
#include "trust.h"

#include <openssl/bn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int rec_index = -1;
static pthread_once_t rec_once = PTHREAD_ONCE_INIT;

static void make_index(void)
{
    /* No destructor: the record belongs to the transfer handle, not to the SSL_CTX. */
    rec_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void phc__alert_init(phc_alert_seen *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->received = -1;
    rec->sent = -1;
}

void phc__alert_reset(phc_alert_seen *rec)
{
    X509_free(rec->peer);
    phc__alert_init(rec);
}

int phc__alert_peer_names(const phc_alert_seen *rec, char *subj, size_t subjlen, char *iss,
                          size_t isslen)
{
    subj[0] = iss[0] = '\0';
    if (!rec->peer)
        return 0;
    phc__name_str(subj, subjlen, X509_get_subject_name(rec->peer));
    phc__name_str(iss, isslen, X509_get_issuer_name(rec->peer));
    return 1;
}

/* In TLS 1.3 every alert but close_notify and user_canceled ends the connection, whatever
 * level its sender wrote; in TLS 1.2 the level says so. */
static int is_fatal(const SSL *ssl, int level, int desc)
{
    if (level == SSL3_AL_FATAL)
        return 1;
    return SSL_version(ssl) >= TLS1_3_VERSION && desc != SSL_AD_CLOSE_NOTIFY &&
           desc != SSL_AD_USER_CANCELLED;
}

static void on_info(const SSL *ssl, int where, int ret)
{
    phc_alert_seen *rec = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), rec_index);
    if (!rec)
        return;
    if (where & SSL_CB_ALERT) {
        int level = (ret >> 8) & 0xff, desc = ret & 0xff;
        if (!is_fatal(ssl, level, desc))
            return;
        if ((where & SSL_CB_READ) && rec->received < 0)
            rec->received = desc;
        else if ((where & SSL_CB_WRITE) && rec->sent < 0)
            rec->sent = desc;
    } else if ((where & SSL_CB_LOOP) && SSL_get_state(ssl) == TLS_ST_CR_CERT_REQ) {
        rec->cert_requested = 1;
    } else if (where & SSL_CB_HANDSHAKE_DONE) {
        X509 *peer = SSL_get0_peer_certificate(ssl);
        rec->handshake_done = 1;
        rec->peer_seen = peer != NULL;
        X509_free(rec->peer); /* a second handshake on the connection names its own */
        rec->peer = peer && X509_up_ref(peer) ? peer : NULL;
    }
}

int phc__alert_watch(SSL_CTX *ctx, phc_alert_seen *rec, phc_errbuf *err)
{
    pthread_once(&rec_once, make_index);
    if (rec_index < 0 || !SSL_CTX_set_ex_data(ctx, rec_index, rec))
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot attach the TLS alert record");
    SSL_CTX_set_info_callback(ctx, on_info);
    return PHC_OK;
}

const char *phc__alert_name(int desc)
{
    static const struct {
        int desc;
        const char *name;
    } names[] = {
        {0, "close_notify"},
        {10, "unexpected_message"},
        {20, "bad_record_mac"},
        {21, "decryption_failed"},
        {22, "record_overflow"},
        {30, "decompression_failure"},
        {40, "handshake_failure"},
        {41, "no_certificate"},
        {42, "bad_certificate"},
        {43, "unsupported_certificate"},
        {44, "certificate_revoked"},
        {45, "certificate_expired"},
        {46, "certificate_unknown"},
        {47, "illegal_parameter"},
        {48, "unknown_ca"},
        {49, "access_denied"},
        {50, "decode_error"},
        {51, "decrypt_error"},
        {60, "export_restriction"},
        {70, "protocol_version"},
        {71, "insufficient_security"},
        {80, "internal_error"},
        {86, "inappropriate_fallback"},
        {90, "user_canceled"},
        {100, "no_renegotiation"},
        {109, "missing_extension"},
        {110, "unsupported_extension"},
        {111, "certificate_unobtainable"},
        {112, "unrecognized_name"},
        {113, "bad_certificate_status_response"},
        {114, "bad_certificate_hash_value"},
        {115, "unknown_psk_identity"},
        {116, "certificate_required"},
        {120, "no_application_protocol"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].desc == desc)
            return names[i].name;
    return NULL;
}

/* What a refusal means and what the operator should check, per alert. */
static const struct refusal {
    int desc;
    const char *meaning;
    const char *advice;
} refusals[] = {
    {SSL_AD_UNKNOWN_CA, "the server does not trust the CA that issued it",
     "is this certificate registered with the vendor?"},
    {SSL_AD_BAD_CERTIFICATE, "the server cannot accept it",
     "is this certificate registered with the vendor?"},
    {SSL_AD_CERTIFICATE_UNKNOWN, "the server did not accept it",
     "is this certificate registered with the vendor?"},
    {SSL_AD_UNSUPPORTED_CERTIFICATE, "the server does not take this kind of certificate",
     "ask the vendor which key types and key usages it accepts"},
    {SSL_AD_CERTIFICATE_EXPIRED, "the server considers it expired", "renew it"},
    {SSL_AD_CERTIFICATE_REVOKED, "the vendor has revoked it",
     "request a new certificate for a new key"},
    {SSL_AD_ACCESS_DENIED, "the server denies it access",
     "is this certificate registered with the vendor for this API?"},
    {TLS13_AD_CERTIFICATE_REQUIRED, "the server did not get a certificate it accepts",
     "is this certificate registered with the vendor?"},
};

static const struct refusal *refusal_of(int desc)
{
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
        if (refusals[i].desc == desc)
            return &refusals[i];
    return NULL;
}

int phc__alert_is_refusal(int desc, int have_cert, int cert_requested)
{
    if (refusal_of(desc))
        return 1;
    /* A TLS 1.2 server that requires a certificate says handshake_failure when none came;
     * with one presented, handshake_failure means something else (no common cipher). */
    return desc == SSL_AD_HANDSHAKE_FAILURE && !have_cert && cert_requested;
}

static void serial_str(char *out, size_t outlen, X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out, outlen, "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
}

int phc__alert_refusal_err(const phc_alert_seen *rec, X509 *cert, const char *url, phc_errbuf *err)
{
    if (rec->received < 0 ||
        !phc__alert_is_refusal(rec->received, cert != NULL, rec->cert_requested))
        return PHC_OK;
    const char *name = phc__alert_name(rec->received);
    if (!cert)
        return phc__err(err, PHC_ERR_TRUST,
                        "server %s requires a client certificate and this configuration has "
                        "none (client credentials only): TLS alert %s; set pkcs11_module, key "
                        "and pin so that the token's certificate is presented",
                        url, name);
    char subj[256], iss[256], serial[80];
    phc__name_str(subj, sizeof(subj), X509_get_subject_name(cert));
    phc__name_str(iss, sizeof(iss), X509_get_issuer_name(cert));
    serial_str(serial, sizeof(serial), cert);
    const struct refusal *r = refusal_of(rec->received);
    /* handshake_failure for a missing certificate never gets here with a certificate. */
    return phc__err(err, PHC_ERR_TRUST,
                    "server %s refused client certificate '%s' issued by '%s' (serial %s): TLS "
                    "alert %s, %s; %s",
                    url, subj[0] ? subj : "(empty subject)", iss, serial, name,
                    r ? r->meaning : "it refused the certificate",
                    r ? r->advice : "is this certificate registered with the vendor?");
}

void phc__alert_describe(char *out, size_t outlen, const phc_alert_seen *rec)
{
    const char *hint = "";
    if (rec->received >= 0) {
        const char *name = phc__alert_name(rec->received);
        if (rec->received == SSL_AD_PROTOCOL_VERSION)
            hint = " (no TLS version in common: phc speaks TLS 1.2 and 1.3)";
        else if (rec->received == SSL_AD_HANDSHAKE_FAILURE ||
                 rec->received == SSL_AD_INSUFFICIENT_SECURITY)
            hint = " (no cipher suite, group or signature algorithm in common)";
        if (name)
            snprintf(out, outlen, "the server sent TLS alert %s%s", name, hint);
        else
            snprintf(out, outlen, "the server sent TLS alert %d%s", rec->received, hint);
    } else if (rec->sent >= 0) {
        const char *name = phc__alert_name(rec->sent);
        if (name)
            snprintf(out, outlen, "phc ended the connection with TLS alert %s", name);
        else
            snprintf(out, outlen, "phc ended the connection with TLS alert %d", rec->sent);
    } else {
        snprintf(out, outlen,
                 "the connection ended without a TLS alert (closed or reset; "
                 "the debug log has the detail)");
    }
}
