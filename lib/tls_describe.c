#include "tls_describe.h"

#include "trust.h"

#include <stdio.h>

void phc__tls_describe(char *out, size_t outlen, const SSL *ssl, const char *ip, long port,
                       int fresh, const char *client_subject)
{
    char subj[256] = "?", iss[256] = "?";
    const char *version = "?", *cipher = "?";
    int resumed = 0;
    if (outlen == 0)
        return;
    if (ssl) {
        X509 *peer = SSL_get0_peer_certificate(ssl);
        if (peer) {
            phc__name_str(subj, sizeof(subj), X509_get_subject_name(peer));
            phc__name_str(iss, sizeof(iss), X509_get_issuer_name(peer));
        }
        version = SSL_get_version(ssl);
        cipher = SSL_get_cipher_name(ssl);
        if (!cipher)
            cipher = "(none)";
        resumed = SSL_session_reused(ssl);
    }
    snprintf(out, outlen,
             "%s connection to %s port %ld, %s %s, TLS session resumed: %s, server '%s' issued by "
             "'%s', client certificate '%s'",
             fresh ? "new" : "reused", ip ? ip : "?", port, version, cipher, resumed ? "yes" : "no",
             subj, iss, client_subject ? client_subject : "?");
}
