/* Reading secrets (PIN, client secret) from their configured source: "file:/path" or
 * "env:NAME". The value is returned in a buffer the caller must release with
 * phc__secret_free, which wipes it. A trailing newline (one "\n" or "\r\n") is dropped so
 * that `echo 1234 > pinfile` works. An empty secret is an error. */
#ifndef PHC_SECRET_H
#define PHC_SECRET_H

#include <phconnect/phconnect.h>
#include <stddef.h>

/* what: "PIN" or "client secret", for messages. errclass: the phc_err for a missing or
 * unreadable source (PHC_ERR_PIN for PINs, PHC_ERR_CONFIG otherwise).
 * *out is NUL-terminated; *out_len excludes the NUL. */
int phc__secret_read(char **out, size_t *out_len, const char *source, const char *what,
                     int errclass, phc_errbuf *err);

/* Forgets (wipes) the values phc_config_take_env_secrets took; phc_global_cleanup calls it. */
void phc__secret_env_clear(void);

/* Wipes with OPENSSL_cleanse and frees; NULL allowed. */
void phc__secret_free(char *secret, size_t len);

#endif
