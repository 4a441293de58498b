/* The parsed configuration. Fields are filled by phc_config_set (one validation path for
 * the file parser and programmatic use) and read by the client; once a client holds a
 * reference the config is frozen. Strings are owned by the config. */
#ifndef PHC_CONFIG_H
#define PHC_CONFIG_H

#include <phconnect/phconnect.h>
#include <stddef.h>

#define PHC_SHA256_LEN 32
#define PHC_MAX_PINNED 16

struct phc_config {
    int refs;   /* atomic; phc_config_free drops one */
    int frozen; /* atomic; set by phc__config_ref */

    char *name; /* file name or caller-given name, for messages */

    /* url = https://host[:port] (a trailing '/' allowed, no path/query/userinfo) */
    char *url;  /* normalised: "https://host:port" without trailing slash */
    char *host; /* without brackets for IPv6 literals */
    int port;   /* default 443 */

    char *ca_file;
    unsigned char (*ca_sha256)[PHC_SHA256_LEN];
    size_t n_ca_sha256;

    char *pinned_ips[PHC_MAX_PINNED]; /* numeric, normalised (inet_ntop) */
    size_t n_pinned_ips;

    char *source_address; /* numeric IPv4/IPv6 */

    char *pkcs11_module;
    char *key;  /* RFC 7512 URI, validated with p11-kit, no pin-value/pin-source */
    char *cert; /* PKCS#11 URI or a file path; NULL: certificate matching the key's id */
    char *pin;  /* "file:/path" or "env:NAME" */

    char *client_id;
    char *client_secret;                /* "file:/path", "env:NAME" or a pkcs11: URI */
    char *token_path;                   /* default "/v1/auth/token" */
    char *credential_expires;           /* ISO-8601 date "YYYY-MM-DD" (time part allowed) */
    long long credential_expires_epoch; /* parsed, UTC; 0 when unset */

    long connect_timeout;      /* seconds, default 10 */
    long timeout;              /* seconds, default 30 */
    size_t max_response_bytes; /* default 16 MiB */
    long reload_interval;      /* seconds between certificate checks; 0 = off */
    int min_rsa_bits;          /* weakest RSA key phc install accepts; default 2048 */
    int min_tls_version;       /* 12 (default) or 13 */
    int x509_profile;          /* PHC_X509_STRICT (default) or PHC_X509_COMPATIBLE */
    int strict_modes;          /* PHC__MODES_*: what phc_config_check_files does */
};

/* strict_modes = warn (default) | error | off */
enum { PHC__MODES_WARN = 0, PHC__MODES_ERROR = 1, PHC__MODES_OFF = 2 };

/* Takes a reference and freezes cfg (phc_config_set fails afterwards). */
phc_config *phc__config_ref(phc_config *cfg);

/* The file phc_config_load read cfg from (borrowed), or NULL for a config made otherwise. */
const char *phc__config_path(const phc_config *cfg);

/* A new config equal to base except for the trust keys - ca_file, ca_sha256, pinned_ips -
 * which are taken from src (unset there: unset). For a running client that re-reads its
 * trust. Validated as phc_config_validate; *out is the caller's. */
PHC_WUR int phc__config_with_trust(phc_config **out, const phc_config *base, const phc_config *src,
                                   phc_errbuf *err);

#endif
