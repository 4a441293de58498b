/*
 * phconnect: a connector for the Tesla Powerhub API with an HSM-held client key,
 * a pinned-only trust store and a fixed-address policy.
 *
 * Conventions (all functions):
 *  - Functions return int: 0 (PHC_OK) on success, a negative phc_err on failure.
 *  - Output parameters come first and are named out; what comes back through **out
 *    belongs to the caller and is released with the matching *_free (which accepts NULL).
 *  - A returned const pointer is borrowed from the handle it came from.
 *  - err (phc_errbuf *) is optional (NULL allowed); on failure it receives the code and a
 *    one-line message in an operator's words. It never contains a secret.
 *
 * Init contract: call phc_global_init() (or phc_global_init_opts()) once, before any thread
 * uses phconnect and before other threads exist. The library never changes OpenSSL's global
 * defaults (no ENGINE_set_default, no OPENSSL_CONF reliance) and never writes to stderr.
 *
 * libcurl is loaded on demand: libphconnect.so does not link it. The library dlopen's
 * libcurl.so.4 the first time it needs it - the first client (phc_client_new) or
 * phc_version_libs() - and initialises it (curl_global_init) before its first transfer, so a
 * program that only loads configurations, runs token commands or talks to the agent never
 * pays for libcurl's dependency tree. That initialisation may run while other threads exist,
 * which libcurl >= 7.84 built thread-safe (curl_version_info: CURL_VERSION_THREADSAFE)
 * allows; with another libcurl, pass PHC_GLOBAL_LOAD_CURL_NOW so it happens in
 * phc_global_init_opts, before threads. A libcurl that cannot be loaded makes those calls fail with
 * PHC_ERR_INTERNAL "cannot load libcurl (libcurl.so.4): <the loader's reason>".
 *
 * The documents named here (under docs/) are installed in <prefix>/share/doc/phconnect/.
 *
 * libcurl's allocators: an application that wants libcurl's buffers (request and response
 * headers: access tokens, Basic credentials; bodies) wiped when libcurl frees them passes
 * PHC_GLOBAL_WIPE_CURL_FREES to phc_global_init_opts; the library installs such allocators
 * (curl_global_init_mem) when it initialises libcurl. phc and phc-agent do. libcurl keeps the
 * allocators of its first initialisation: if the application initialised libcurl itself
 * first, its allocators stay and the flag has no effect.
 *
 * Secrets in memory, and what the library does not control: the PIN and the client secret
 * are read from their source when needed (login, a re-login after a token outage, every
 * access token request) into buffers wiped right after use. libp11 keeps its own copy of the PIN
 * (PKCS11_login strdup's it to log in again after a fork) until the slot is released, when it
 * wipes it - for a client, as long as the client lives; the PKCS#11 module may keep one too;
 * OpenSSL's TLS buffers hold access tokens in transit. So a process holding a client is as secret
 * as its PIN: run it non-dumpable (prctl(PR_SET_DUMPABLE, 0): no core file, no same-user ptrace or
 * /proc/PID/mem) as phc does. The library never changes process state (limits, dumpable,
 * environment) by itself.
 */
#ifndef PHCONNECT_PHCONNECT_H
#define PHCONNECT_PHCONNECT_H

#include <phconnect/version.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PHC_API __attribute__((visibility("default")))
#define PHC_WUR __attribute__((warn_unused_result))
#else
#define PHC_API
#define PHC_WUR
#endif

/* Error classes; -code is the exit status of the phc tool (see docs/contract.md). */
typedef enum phc_err {
    PHC_OK = 0,
    PHC_ERR_HTTP = -1,     /* server answered with a non-2xx status */
    PHC_ERR_CONFIG = -2,   /* usage or configuration error */
    PHC_ERR_HSM = -3,      /* module, token, key or certificate problem */
    PHC_ERR_PIN = -4,      /* PIN missing, wrong or locked */
    PHC_ERR_TRUST = -5,    /* certificate not trusted (server or to-be-installed) */
    PHC_ERR_POLICY = -6,   /* address, redirect, proxy or scheme refused by policy */
    PHC_ERR_NETWORK = -7,  /* refused, reset, timeout, TLS protocol failure */
    PHC_ERR_AUTH = -8,     /* client credential refused by the token endpoint */
    PHC_ERR_INTERNAL = -9, /* out of memory or a bug */
} phc_err;

#define PHC_ERRMSG_MAX 512

/* The longest secret (PIN, client secret) phconnect reads from a source, sends or stores on
 * the token, in bytes. */
#define PHC_SECRET_MAX 4096

/* Caller-owned error buffer. */
typedef struct phc_errbuf {
    int code;                 /* a phc_err value */
    char msg[PHC_ERRMSG_MAX]; /* one line, no trailing newline */
} phc_errbuf;

/* Static, human-readable name of an error class ("trust", "hsm", ...). */
PHC_API const char *phc_err_name(int code);

/* The tool's exit status for an error class (0..9). */
PHC_API int phc_err_exit_code(int code);

/* phc_global_init_opts with the defaults; PHC_OK, or what phc_global_init_opts returns. */
PHC_API PHC_WUR int phc_global_init(void);

/* Options of phc_global_init_opts (a versioned struct; see phc_client_opts for the pattern). */
typedef struct phc_global_opts {
    unsigned int version; /* PHC_GLOBAL_OPTS_VERSION */
    unsigned flags;       /* PHC_GLOBAL_* */
} phc_global_opts;

#define PHC_GLOBAL_OPTS_VERSION 1
#ifdef __cplusplus
#define PHC_GLOBAL_OPTS_INIT                                                                       \
    {                                                                                              \
        PHC_GLOBAL_OPTS_VERSION                                                                    \
    }
#else
#define PHC_GLOBAL_OPTS_INIT                                                                       \
    {                                                                                              \
        .version = PHC_GLOBAL_OPTS_VERSION                                                         \
    }
#endif

/* libcurl's allocators wipe every block before freeing it (see "libcurl's allocators" at the
 * top of this file). */
#define PHC_GLOBAL_WIPE_CURL_FREES 0x1u
/* Load and initialise libcurl now rather than at the first HTTP use (see the init contract);
 * a libcurl that cannot be loaded then fails this call. */
#define PHC_GLOBAL_LOAD_CURL_NOW 0x2u

/* Sets *opts to PHC_GLOBAL_OPTS_INIT for version (PHC_GLOBAL_OPTS_VERSION); PHC_ERR_CONFIG
 * when the library does not know version (opts is then left alone). */
PHC_API PHC_WUR int phc_global_opts_init(phc_global_opts *opts, unsigned int version);

/* The library's process-wide set-up (the init contract above). opts may be NULL (the
 * defaults), else borrowed for the call. PHC_ERR_CONFIG for an unknown opts->version or flag;
 * with PHC_GLOBAL_LOAD_CURL_NOW, PHC_ERR_INTERNAL when libcurl cannot be loaded or
 * initialised. The flags apply to the next initialisation of libcurl by the library: call it
 * before anything else of phconnect. */
PHC_API PHC_WUR int phc_global_init_opts(const phc_global_opts *opts, phc_errbuf *err);

/* Also wipes the values phc_config_take_env_secrets took, and undoes the library's
 * curl_global_init (if it loaded libcurl at all; libcurl stays loaded). */
PHC_API void phc_global_cleanup(void);

/* The version of the library the program runs with, "MAJOR.MINOR.PATCH" (static). It can be
 * newer than PHC_VERSION_STRING (phconnect/version.h), the version the program was compiled
 * against. */
PHC_API const char *phc_version(void);

/* The versions of the libraries phconnect runs with, one line for bug reports and
 * `phc --version`: "OpenSSL/3.0.11 libcurl/7.88.1 libp11/0.4.12 (at build time)" (libp11
 * cannot report its own at run time). Loads libcurl (without initialising it); "libcurl/?"
 * when it cannot be loaded. Static; safe from any thread. */
PHC_API const char *phc_version_libs(void);

/* ---------------------------------------------------------------------------------- */
/* Logging: the library reports through this callback only. Messages are redacted
 * before the callback sees them (no PIN, secret or access token ever reaches it). */

typedef enum phc_log_level {
    PHC_LOG_ERROR = 0,
    PHC_LOG_WARN = 1,
    PHC_LOG_INFO = 2,
    PHC_LOG_DEBUG = 3,
} phc_log_level;

typedef void (*phc_log_fn)(void *userdata, phc_log_level level, const char *msg);

/* ---------------------------------------------------------------------------------- */
/* Configuration (keys: see docs/config.md). Immutable once a client was made from it. */

typedef struct phc_config phc_config;

/* Load and validate an INI file (section [phconnect]). An unknown key, a malformed value or
 * a missing required key fails with PHC_ERR_CONFIG naming the key and its line. */
PHC_API PHC_WUR int phc_config_load(phc_config **out, const char *path, phc_errbuf *err);

/* As phc_config_load, from memory; name is used in messages (e.g. the file name). Relative
 * paths in text are resolved against the working directory at the time of the call. */
PHC_API PHC_WUR int phc_config_parse(phc_config **out, const char *text, size_t len,
                                     const char *name, phc_errbuf *err);

/* An empty configuration to fill with phc_config_set (programmatic use). */
PHC_API PHC_WUR int phc_config_new(phc_config **out, phc_errbuf *err);

/* Set one key with the same validation as the file parser. Fails on a config that a client
 * already uses. */
PHC_API PHC_WUR int phc_config_set(phc_config *cfg, const char *key, const char *value,
                                   phc_errbuf *err);

/* Check that every required key is present and the keys agree with each other. */
PHC_API PHC_WUR int phc_config_validate(const phc_config *cfg, phc_errbuf *err);

/* The raw value of a key as written, or NULL when unset; a relative path (ca_file,
 * pkcs11_module, a cert file, a file: source) as resolved - against the config file's
 * directory, or for a config without a file the working directory when it was set - so
 * that it names the file the library opens. Borrowed from cfg. */
PHC_API const char *phc_config_get(const phc_config *cfg, const char *key);

/* The path used when none is given: $PHC_CONFIG, else /etc/phconnect/phconnect.cnf.
 * Borrowed, static or from the environment. */
PHC_API const char *phc_config_default_path(void);

/* Drops the caller's reference; a client made from cfg keeps its own. NULL allowed. */
PHC_API void phc_config_free(phc_config *cfg);

/* Ownership and permissions of the files cfg names, as OpenSSH's StrictModes: the config
 * file (config_path, may be NULL), ca_file, pkcs11_module, a cert file, and the pin and
 * client_secret files, each with every directory above it, must belong to root or to this
 * process's user and be writable by no one else (a sticky directory such as /tmp is fine);
 * the PIN and client-secret files must not be readable by others. With strict_modes = warn
 * (the default) each finding goes to log (may be NULL) at PHC_LOG_WARN and the call returns
 * PHC_OK; with error the first finding is PHC_ERR_CONFIG naming the file and its mode; off
 * does not look. A missing file is not a finding. phc calls it for every config it loads;
 * the client does not call it by itself. */
PHC_API PHC_WUR int phc_config_check_files(const phc_config *cfg, const char *config_path,
                                           phc_log_fn log, void *userdata, phc_errbuf *err);

/* env:NAME secret sources (pin, client_secret) are read from the environment each time the
 * secret is needed, and the library leaves the environment alone: such a variable stays in
 * /proc/PID/environ and is inherited by child processes. This call, made by the application
 * (phc makes it), moves the variables cfg's sources name out of the environment: each value
 * is copied into library memory (wiped by phc_global_cleanup) that env:NAME reads from then
 * on, its bytes in the original environment block are overwritten (so /proc/PID/environ no
 * longer shows them) and it is unset (children do not inherit it). A variable that is not set
 * is left alone (the client reports it when it needs the secret); taking one twice is a no-op.
 * Process-wide: call it before other threads exist, like phc_global_init. */
PHC_API PHC_WUR int phc_config_take_env_secrets(const phc_config *cfg, phc_errbuf *err);

/* ---------------------------------------------------------------------------------- */
/* Client: loads the trust store, opens the token, logs in and builds the TLS identity once;
 * then serves requests from any number of threads, reusing connections and TLS sessions. */

typedef struct phc_client phc_client;

/* Options that can grow (libgit2's pattern). Every struct the caller passes in starts with
 * `unsigned int version`; initialise it with its *_INIT macro or *_init function, then set
 * the fields wanted:
 *     phc_request req = PHC_REQUEST_INIT;
 *     req.path = "/v2/asset/sites";
 * A library that does not know the struct's version (0 included: an uninitialised struct)
 * refuses the call with PHC_ERR_CONFIG naming the struct and the version. Fields added later
 * go at the end, so a program built against an older header keeps working. */

typedef struct phc_client_opts {
    unsigned int version; /* PHC_CLIENT_OPTS_VERSION */
    phc_log_fn log;       /* NULL: no logging */
    void *log_userdata;   /* passed to log, borrowed */
    phc_log_level level;  /* most verbose level passed to log */
    /* The 429/503 retry of phc_client_request (see there). retry_max_attempts: the attempts
     * in all, 0 the default (3), 1 no retry at all (the first answer is returned), negative
     * refused. retry_max_wait_ms: the total wait allowed between attempts, 0 the default
     * (30 s, or the config's timeout when smaller); any other value replaces that budget.
     * phc_token_open ignores both; the token endpoint's own retry (client credentials) keeps
     * the default whatever these say. */
    int retry_max_attempts;
    unsigned int retry_max_wait_ms;
} phc_client_opts;

#define PHC_CLIENT_OPTS_VERSION 1
/* Designated in C: -Wextra (missing-field-initializers) stays quiet. */
#ifdef __cplusplus
#define PHC_CLIENT_OPTS_INIT                                                                       \
    {                                                                                              \
        PHC_CLIENT_OPTS_VERSION                                                                    \
    }
#else
#define PHC_CLIENT_OPTS_INIT                                                                       \
    {                                                                                              \
        .version = PHC_CLIENT_OPTS_VERSION                                                         \
    }
#endif

/* Sets *opts to PHC_CLIENT_OPTS_INIT for version (PHC_CLIENT_OPTS_VERSION): for languages
 * without the macro. PHC_ERR_CONFIG when the library does not know version (opts is then left
 * alone). */
PHC_API PHC_WUR int phc_client_opts_init(phc_client_opts *opts, unsigned int version);

/* cfg is borrowed for the call; the client takes its own reference. opts may be NULL (the
 * defaults), else borrowed for the call; an unknown opts->version or a negative
 * retry_max_attempts is PHC_ERR_CONFIG.
 * Fails before any connection when the client certificate does not match the token key. */
PHC_API PHC_WUR int phc_client_new(phc_client **out, phc_config *cfg, const phc_client_opts *opts,
                                   phc_errbuf *err);

/* Waits for nothing: the caller must ensure no request is in flight. NULL allowed. */
PHC_API void phc_client_free(phc_client *client);

typedef struct phc_request {
    unsigned int version;       /* PHC_REQUEST_VERSION */
    const char *method;         /* NULL: GET, or POST when body is set */
    const char *path;           /* must start with '/'; appended to the config's url */
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    const void *body;           /* NULL: no body */
    size_t body_len;
    unsigned flags; /* PHC_REQ_* */
} phc_request;

#define PHC_REQUEST_VERSION 1
#ifdef __cplusplus
#define PHC_REQUEST_INIT                                                                           \
    {                                                                                              \
        PHC_REQUEST_VERSION                                                                        \
    }
#else
#define PHC_REQUEST_INIT                                                                           \
    {                                                                                              \
        .version = PHC_REQUEST_VERSION                                                             \
    }
#endif

/* Sets *req to PHC_REQUEST_INIT for version (PHC_REQUEST_VERSION); PHC_ERR_CONFIG when the
 * library does not know version (req is then left alone). */
PHC_API PHC_WUR int phc_request_init(phc_request *req, unsigned int version);

/* Open a new connection for this request and close it afterwards (no keep-alive). */
#define PHC_REQ_FRESH_CONNECTION 0x1u
/* Do not resume a TLS session: with FRESH_CONNECTION, a full handshake (one token signature). */
#define PHC_REQ_NO_SESSION_REUSE 0x2u

typedef struct phc_response phc_response;

/* One request. On PHC_OK (2xx) or PHC_ERR_HTTP (other status, 304 included) *out holds the
 * response; on any other error *out is NULL. All arguments are borrowed for the call; an
 * unknown req->version is PHC_ERR_CONFIG.
 * Any other 3xx is PHC_ERR_POLICY (redirects are never followed). A request whose method is
 * not idempotent (POST, PATCH, ...) is sent at most once: always on a new connection, and
 * after a failure sent again only when it provably never reached the server (its TLS
 * handshake never completed); idempotent ones are retried once after the token was reopened
 * and on 429/503 within Retry-After.
 *
 * Retries: a 429 or 503 answer to an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS) is
 * retried, by default at most 3 attempts in all, after the delay its numeric Retry-After asks
 * for (1 s without one or with an HTTP-date); the waits add up by default to at most 30 s (or
 * the config's timeout when smaller) and an answer asking for longer is returned as it is. The
 * call can therefore sleep that long besides the transfers themselves (with a wait hook,
 * phconnect/wait.h, these waits and the transfers' go through the hook); *out holds the last
 * answer. Other methods (POST, PATCH) are never retried. The client's options choose both
 * limits (phc_client_opts.retry_max_attempts = 1 turns the retry off).
 *
 * Connections: kept-alive ones are reused across calls and threads. New ones are made one at
 * a time per key/certificate pair: a call that needs one waits (at most 1 s) until the
 * previous new connection has stored the TLS session it got, so that it can resume that
 * session instead of making a full handshake (one token signature) - a burst of threads
 * costs one signature, not one each.
 *
 * fork(): a client belongs to the process that made it (its token sessions, TLS sessions and
 * connections are that process's). In a forked child every call on the parent's client fails
 * with PHC_ERR_HSM without touching the token or the network; make a new client in the
 * child. */
PHC_API PHC_WUR int phc_client_request(phc_client *client, phc_response **out,
                                       const phc_request *req, phc_errbuf *err);

PHC_API long phc_response_status(const phc_response *resp);
/* Body bytes (not NUL-terminated for binary data; a NUL is appended after len). Borrowed. */
PHC_API const char *phc_response_body(const phc_response *resp, size_t *len);
/* Raw header block as received, status line first, CRLF separated. Borrowed. */
PHC_API const char *phc_response_headers(const phc_response *resp, size_t *len);
/* Value of the first header with this name (case-insensitive), or NULL. Borrowed. */
PHC_API const char *phc_response_header(const phc_response *resp, const char *name);
PHC_API void phc_response_free(phc_response *resp);

/* Re-reads the token's key/certificate pairs and switches new requests to the active pair if
 * it changed (see rotation in docs/runbook-rotation.md). Requests in flight finish on the old
 * pair; no later request reuses a connection or TLS session made with it. It also re-reads
 * the trust: ca_file (its content) and, for a client made from phc_config_load, the keys
 * ca_file, ca_sha256 and pinned_ips from that file (other keys are not re-read); when they
 * changed, no later request uses a connection or TLS session made under the old anchors or
 * addresses. The periodic check (reload_interval) does the same. *changed (may be NULL) is
 * set to 1 when the pair or the trust changed. Safe to call from any thread. On failure the
 * client keeps serving with its current pair and trust, and err says why (naming the file).
 * PIN: after the token refused the PIN (CKR_PIN_INCORRECT/CKR_PIN_LOCKED) a client offers a
 * PIN again only when its source holds a different one, or after this call (the operator's
 * word). It never logs in while the token reports CKF_USER_PIN_FINAL_TRY or
 * CKF_USER_PIN_LOCKED: requests fail with PHC_ERR_PIN naming the token. */
PHC_API PHC_WUR int phc_client_reload(phc_client *client, int *changed, phc_errbuf *err);

/* phc_client_sign_test (the token's signing rate, for `phc bench`) is in phconnect/bench.h:
 * unstable, not part of this API. */

#ifdef __cplusplus
}
#endif

#include <phconnect/stats.h>
#include <phconnect/token.h>
#include <phconnect/trustcheck.h>
#include <phconnect/wait.h>

#endif
