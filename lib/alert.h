/* What the server told us with TLS alerts, and the one-line message for a server that refuses
 * our client certificate.
 *
 * The record is filled by an info callback on the connection's SSL_CTX (libcurl makes one per
 * connection and hands it to http.c's SSL_CTX callback), so the alert is taken from OpenSSL's
 * own parse of the record, never from an error string. With TLS 1.3 the server judges our
 * certificate after the client has finished its handshake: its alert arrives on the first
 * read of the response, and the callback sees it there as well. That is why a record lives as
 * long as the connection (in the transfer handle), not one handshake. */
#ifndef PHC_ALERT_H
#define PHC_ALERT_H

#include <phconnect/phconnect.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

typedef struct phc_alert_seen {
    int received;       /* description of the first fatal alert the server sent, -1: none */
    int sent;           /* description of the first fatal alert we sent, -1: none */
    int cert_requested; /* the server asked for a client certificate */
    int handshake_done; /* a handshake finished */
    int peer_seen;      /* ... and the server presented a certificate: */
    X509 *peer; /* a reference, named only when a message needs it (phc__alert_peer_names) */
} phc_alert_seen;

/* An empty record (rec's previous contents are not looked at). */
void phc__alert_init(phc_alert_seen *rec);

/* Releases what rec holds and empties it: for the next transfer, and before rec goes. */
void phc__alert_reset(phc_alert_seen *rec);

/* The server certificate's subject and issuer (RFC 2253) into subj / iss; returns 0 (both "")
 * when no handshake presented one. Formatted on demand: an accepted connection names nothing,
 * and formatting both costs ~40k instructions per handshake. */
int phc__alert_peer_names(const phc_alert_seen *rec, char *subj, size_t subjlen, char *iss,
                          size_t isslen);

/* Makes every connection of ctx report into rec. rec: borrowed, must outlive ctx (both live
 * in the transfer handle). Returns 0 or PHC_ERR_INTERNAL. */
PHC_WUR int phc__alert_watch(SSL_CTX *ctx, phc_alert_seen *rec, phc_errbuf *err);

/* The RFC 8446/5246 name of an alert description ("unknown_ca"), or NULL if unknown. */
const char *phc__alert_name(int desc);

/* 1 when a fatal alert `desc` from the server means it refused our client certificate, or
 * the lack of one: have_cert says whether we have a certificate to present, cert_requested
 * whether the server asked for one (a TLS 1.2 server that requires a certificate answers
 * its absence with handshake_failure). */
int phc__alert_is_refusal(int desc, int have_cert, int cert_requested);

/* When rec holds a refusal (phc__alert_is_refusal), describes it into err and returns
 * PHC_ERR_TRUST: the server (url), our certificate (subject, issuer, serial; cert borrowed,
 * NULL for a client without one), the alert and what to check. Otherwise returns PHC_OK and
 * leaves err alone. */
int phc__alert_refusal_err(const phc_alert_seen *rec, X509 *cert, const char *url, phc_errbuf *err);

/* Why a connection ended, in words for a network message: "the server sent TLS alert X",
 * "phc ended it with TLS alert X", or that it ended without an alert. */
void phc__alert_describe(char *out, size_t outlen, const phc_alert_seen *rec);

#endif
