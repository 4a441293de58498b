/* What a connection is, in one line for the -v log: its address, whether it is new, the TLS
 * version and cipher, whether the session was resumed, the server certificate and ours. The
 * part that reads the SSL object lives here, with the rest of the TLS unit; http.c supplies
 * what libcurl knows (address, port, new or reused). */
#ifndef PHC_TLS_DESCRIBE_H
#define PHC_TLS_DESCRIBE_H

#include <openssl/ssl.h>
#include <stddef.h>

/* Writes the description into out (always NUL-terminated when outlen > 0). ssl: borrowed, may
 * be NULL (not an OpenSSL connection: its parts read "?"). ip: may be NULL. fresh: 1 for a
 * new connection, 0 for a reused one. client_subject: the client certificate's subject. */
void phc__tls_describe(char *out, size_t outlen, const SSL *ssl, const char *ip, long port,
                       int fresh, const char *client_subject);

#endif
