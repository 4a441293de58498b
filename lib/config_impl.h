/* What the three parts of the configuration share (config.c: the object and its
 * validation; config_keys.c: the key table, one setter per key; config_file.c: the file
 * reader). Nothing outside config*.c includes this header. */
#ifndef PHC_CONFIG_IMPL_H
#define PHC_CONFIG_IMPL_H

#include "config.h"
#include "err.h"

#include <stddef.h>

/* Where a value came from, for messages. */
struct where {
    const char *file; /* NULL: set programmatically */
    long line;        /* 0: not known */
};

enum key_id {
    K_URL,
    K_CA_FILE,
    K_CA_SHA256,
    K_PINNED_IPS,
    K_SOURCE_ADDRESS,
    K_PKCS11_MODULE,
    K_KEY,
    K_CERT,
    K_PIN,
    K_CLIENT_ID,
    K_CLIENT_SECRET,
    K_TOKEN_PATH,
    K_CREDENTIAL_EXPIRES,
    K_CONNECT_TIMEOUT,
    K_TIMEOUT,
    K_MAX_RESPONSE_BYTES,
    K_MIN_RSA_BITS,
    K_RELOAD_INTERVAL,
    K_MIN_TLS_VERSION,
    K_X509_PROFILE,
    K_STRICT_MODES,
    K_AGENT,
    K_AGENT_LISTEN,
    K_AGENT_ALLOW_USERS,
    K_AGENT_GROUP,
    K_AGENT_PATHS,
    K_AGENT_MAX_CLIENTS,
    K_AGENT_MAX_REQUEST_BYTES,
    K_COUNT
};

/* The key names, indexed by enum key_id (config_keys.c). */
extern const char *const phc__config_keys[K_COUNT];

/* The public struct plus what only the config units need. pub comes first, so a phc_config *
 * handed out by phc_config_new points at a cfg_impl. */
struct cfg_impl {
    struct phc_config pub;
    char *raw[K_COUNT]; /* values as given, for phc_config_get */
    char *path;         /* the file phc_config_load read; NULL otherwise */
    char *base_dir;     /* absolute directory relative paths are resolved against: the config
                           file's (phc_config_load); NULL: the working directory at set time */
};

static inline struct cfg_impl *phc__config_impl(phc_config *cfg)
{
    return (struct cfg_impl *)cfg;
}

static inline const struct cfg_impl *phc__config_cimpl(const phc_config *cfg)
{
    return (const struct cfg_impl *)cfg;
}

static inline int phc__config_oom(phc_errbuf *err)
{
    return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
}

static inline int phc__config_is_ws(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* "<where>: key 'K': <reason>" as PHC_ERR_CONFIG. reason never contains a value that may be
 * secret: callers only quote values of keys that hold no secret and no secret source. */
int phc__config_bad(phc_errbuf *err, const struct where *w, const char *key, const char *fmt, ...)
    PHC_PRINTF(4, 5);

/* An unknown key, with the nearest known one suggested. Returns PHC_ERR_CONFIG. */
int phc__config_unknown_key(phc_errbuf *err, const struct where *w, const char *key);

/* The index of key in phc__config_keys, or -1. */
int phc__config_find_key(const char *key);

/* The one validation path (config_keys.c): checks value for key and, when it passes, stores
 * it (and its raw text for phc_config_get); a refused value leaves c as it was. */
PHC_WUR int phc__config_set_value(struct cfg_impl *c, const char *key, const char *value,
                                  const struct where *w, phc_errbuf *err);

/* The reader: phc_config_parse with the directory relative paths in text are resolved
 * against (NULL: the working directory). */
PHC_WUR int phc__config_parse_in(phc_config **out, const char *text, size_t len, const char *name,
                                 const char *base_dir, phc_errbuf *err);

/* Whether v names a PKCS#11 object (a "pkcs11:" URI, any case) rather than a file or env. */
int phc__config_is_p11_uri(const char *v);

#endif
