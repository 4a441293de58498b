/* Client credentials: one access token (OAuth's bearer token, the "API token" of the
 * messages) per client, shared by its threads. "Token" alone is the PKCS#11 token.
 *
 * The cache holds the current access token, the monotonic times at which it should be refreshed
 * and at which it stops being sent, and its generation (bumped for every new one) so that
 * a 401 invalidates only the access token that earned it. One thread refreshes at a time; the
 * others keep sending the still-valid old access token, or wait on the condition variable when
 * there is none. The token endpoint is reached through the client's own transport (perform),
 * so trust store, pinned addresses and the client certificate apply to it too.
 *
 * Secrets: the client secret is read from its source for every access token request and wiped as
 * soon as the Basic header is built; the header, the token and every "Bearer" header built
 * from it live in buffers released with phc__secret_free (wiped). Logs and messages name
 * the client_id (not secret) and the endpoint, never a secret or an access token. */
#include "auth.h"
#include "auth_internal.h"

#include "err.h"
#include "p11.h"
#include "secret.h"
#include "util_retry.h"
#include "util_time.h"
#include "wait.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* After a failed refresh while the old access token is still valid, the next attempt waits this
 * long (at most), so that a failing endpoint is not asked again by every request. */
#define REFRESH_BACKOFF_MS 5000

static const char BEARER[] = "Authorization: Bearer ";
static const char BASIC[] = "Authorization: Basic ";

struct phc_auth {
    const phc_config *cfg;
    const phc_log *log;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Everything below is guarded by mu. */
    char *access; /* NULL: none yet, or invalidated by a 401 */
    size_t access_len;
    uint64_t gen;         /* generation of access */
    int64_t refresh_at;   /* monotonic ms: refresh from here on */
    int64_t usable_until; /* monotonic ms: never send it from here on */
    int64_t retry_at;     /* monotonic ms: no refresh attempt before (after a failure) */
    int refreshing;       /* a thread is talking to the token endpoint */
    uint64_t fetches;     /* finished access token fetches, successful or not */
    int last_rc;          /* result of the last fetch, for the threads that waited for it */
    phc_errbuf last_err;  /* its message (never holds a secret) */
    int pin_failed;       /* the token refused the PIN: set once, never cleared */
    phc_errbuf pin_err;   /* the message for it */
};

/* ------------------------------------------------------------------------------------ */
/* Pure helpers (auth_internal.h) */

int phc__auth_basic_header(char **out, size_t *out_len, const char *id, const char *secret,
                           size_t secret_len, phc_errbuf *err)
{
    *out = NULL;
    *out_len = 0;
    int rc = PHC_OK;
    size_t id_len = strlen(id);
    /* RFC 7617: the user-id cannot contain a colon, the password may. */
    if (strchr(id, ':'))
        return phc__err(err, PHC_ERR_CONFIG, "client_id '%.128s' must not contain ':'", id);
    if (id_len > 1024 || secret_len > PHC_SECRET_MAX)
        return phc__err(err, PHC_ERR_CONFIG, "client_id or client secret is too long");
    size_t plain_len = id_len + 1 + secret_len;
    size_t b64_len = 4 * ((plain_len + 2) / 3);
    size_t hdr_len = sizeof(BASIC) - 1 + b64_len;
    char *plain = OPENSSL_secure_malloc(plain_len + 1);
    char *hdr = OPENSSL_secure_malloc(hdr_len + 1);
    if (!plain || !hdr) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(plain, id, id_len);
    plain[id_len] = ':';
    memcpy(plain + id_len + 1, secret, secret_len);
    memcpy(hdr, BASIC, sizeof(BASIC) - 1);
    if (EVP_EncodeBlock((unsigned char *)hdr + sizeof(BASIC) - 1, (const unsigned char *)plain,
                        (int)plain_len) != (int)b64_len) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "cannot encode the client credential");
        goto out;
    }
    hdr[hdr_len] = '\0';
    *out = hdr;
    *out_len = hdr_len;
    hdr = NULL;
out:
    if (plain)
        OPENSSL_secure_clear_free(plain, plain_len + 1);
    if (hdr)
        OPENSSL_secure_clear_free(hdr, hdr_len + 1);
    return rc;
}

/* Printable ASCII without spaces: anything else could split or forge a header line. */
static int access_chars_ok(const char *s, size_t len)
{
    if (len == 0 || len > PHC_ACCESS_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* expires_in as a JSON integer, real or digit string; -1 when malformed. */
static long long lifetime_of(const json_t *v)
{
    long long n = -1;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        n = d >= 0 && d < 1e12 ? (long long)d : -1;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = strlen(s);
        if (len == 0 || len > 12 || strspn(s, "0123456789") != len)
            return -1;
        n = strtoll(s, NULL, 10);
    }
    if (n < 0)
        return -1;
    return n > PHC_ACCESS_MAX_LIFETIME ? PHC_ACCESS_MAX_LIFETIME : n;
}

int phc__access_parse(char **access, size_t *access_len, long long *lifetime_s, const char *body,
                      size_t len, phc_errbuf *err)
{
    *access = NULL;
    *access_len = 0;
    *lifetime_s = 0;
    int rc = PHC_OK;
    json_error_t jerr;
    /* jerr.text may quote the body near the error: it is never used, only wiped. */
    json_t *root = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    OPENSSL_cleanse(&jerr, sizeof(jerr));
    json_t *at = NULL;
    if (!json_is_object(root)) {
        rc = phc__err(err, PHC_ERR_AUTH, "token endpoint answered with malformed JSON");
        goto out;
    }
    const json_t *obj = root;
    if (!json_object_get(obj, "access_token")) {
        const json_t *data = json_object_get(root, "data");
        if (json_is_object(data))
            obj = data;
    }
    at = json_object_get(obj, "access_token");
    if (!at) {
        rc = phc__err(err, PHC_ERR_AUTH, "token endpoint answered without an access_token");
        goto out;
    }
    if (!json_is_string(at) || !access_chars_ok(json_string_value(at), json_string_length(at))) {
        rc = phc__err(err, PHC_ERR_AUTH,
                      "token endpoint answered with an access_token that is not printable "
                      "ASCII without spaces (or longer than %d bytes)",
                      PHC_ACCESS_MAX_LEN);
        goto out;
    }
    const json_t *type = json_object_get(obj, "token_type");
    if (type && !(json_is_string(type) && strcasecmp(json_string_value(type), "Bearer") == 0)) {
        const char *t = json_is_string(type) ? json_string_value(type) : "";
        int printable = access_chars_ok(t, strlen(t)) && strlen(t) <= 32;
        rc = phc__err(err, PHC_ERR_AUTH, "token endpoint issued a token of type '%s', not Bearer",
                      printable ? t : "?");
        goto out;
    }
    const json_t *exp = json_object_get(obj, "expires_in");
    long long lifetime = PHC_ACCESS_DEFAULT_LIFETIME;
    if (exp && (lifetime = lifetime_of(exp)) < 0) {
        rc = phc__err(err, PHC_ERR_AUTH,
                      "token endpoint answered with an expires_in that is not a number of "
                      "seconds");
        goto out;
    }
    size_t n = json_string_length(at);
    char *t = OPENSSL_secure_malloc(n + 1);
    if (!t) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(t, json_string_value(at), n);
    t[n] = '\0';
    *access = t;
    *access_len = n;
    *lifetime_s = lifetime;
out:
    /* jansson frees without wiping: clear its copy of the access token first (our own buffer). */
    if (json_is_string(at))
        OPENSSL_cleanse((char *)json_string_value(at), json_string_length(at));
    json_decref(root);
    return rc;
}

void phc__access_schedule(long long lifetime_s, int64_t *refresh_after_ms, int64_t *usable_for_ms)
{
    if (lifetime_s < 0)
        lifetime_s = 0;
    if (lifetime_s > PHC_ACCESS_MAX_LIFETIME)
        lifetime_s = PHC_ACCESS_MAX_LIFETIME;
    int64_t life = (int64_t)lifetime_s * 1000;
    int64_t margin = life / 10 > 30000 ? life / 10 : 30000;
    if (margin > life / 2)
        margin = life / 2;
    int64_t safety = life / 4 < 1000 ? life / 4 : 1000;
    *refresh_after_ms = life - margin;
    *usable_for_ms = life - safety;
}

/* ------------------------------------------------------------------------------------ */
/* The token endpoint */

static int read_secret(phc_auth *a, char **out, size_t *out_len, phc_errbuf *err)
{
    const phc_config *cfg = a->cfg;
    if (strncmp(cfg->client_secret, "pkcs11:", 7) != 0)
        return phc__secret_read(out, out_len, cfg->client_secret, "client secret", PHC_ERR_CONFIG,
                                err);
    /* A PIN the token refused is never offered again by this client: a long-running
     * process would otherwise spend the token's PIN retries one access token request at a time. */
    pthread_mutex_lock(&a->mu);
    int pin_failed = a->pin_failed;
    pthread_mutex_unlock(&a->mu);
    if (pin_failed)
        return phc__err_copy(err, &a->pin_err);
    phc_errbuf inner = {0};
    int rc =
        phc__p11_read_data(out, out_len, cfg->pkcs11_module, cfg->client_secret, cfg->pin, &inner);
    if (rc == PHC_OK)
        return rc;
    rc = phc__err(err, rc, "client secret (client_secret): %s", inner.msg);
    if (rc == PHC_ERR_PIN) {
        pthread_mutex_lock(&a->mu);
        a->pin_err = *err;
        a->pin_failed = 1;
        pthread_mutex_unlock(&a->mu);
    }
    return rc;
}

/* The error code an OAuth server puts in "error" (e.g. invalid_client), if it is a plain
 * word; anything else is not quoted. */
static void oauth_error(const phc_response *resp, char *out, size_t outsz)
{
    size_t len = 0;
    const char *body = phc_response_body(resp, &len);
    out[0] = '\0';
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *e = json_object_get(root, "error");
    if (json_is_string(e)) {
        const char *s = json_string_value(e);
        size_t n = strlen(s);
        if (n > 0 && n < outsz && n <= 64 &&
            strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n)
            snprintf(out, outsz, " %s", s);
    }
    json_decref(root);
}

/* One access token request, repeated while the endpoint says 429/503 under the retry policy
 * (util_retry.h, the full budget: the token endpoint is not the caller's request). On success the
 * new access token is in *access with its schedule, relative to t0 (taken before the request went
 * out, so the server's clock starts no earlier than ours). */
static int fetch_access(phc_auth *a, phc_auth_perform_fn perform, void *ud, char **access,
                        size_t *access_len, int64_t *t0, long long *lifetime, phc_errbuf *err)
{
    const phc_config *cfg = a->cfg;
    static const char form[] = "grant_type=client_credentials";
    phc_retry retry;
    phc__retry_init(&retry, PHC_RETRY_BUDGET_S);
    int rc = PHC_ERR_INTERNAL;
    for (;;) {
        char *secret = NULL, *basic = NULL;
        size_t secret_len = 0, basic_len = 0;
        phc_response *resp = NULL;
        if ((rc = read_secret(a, &secret, &secret_len, err)) != PHC_OK)
            return rc;
        rc = phc__auth_basic_header(&basic, &basic_len, cfg->client_id, secret, secret_len, err);
        phc__secret_free(secret, secret_len);
        if (rc != PHC_OK)
            return rc;
        const char *headers[] = {basic, "Content-Type: application/x-www-form-urlencoded",
                                 "Accept: application/json", NULL};
        phc_request req = {.version = PHC_REQUEST_VERSION,
                           .method = "POST",
                           .path = cfg->token_path,
                           .headers = headers,
                           .body = form,
                           .body_len = sizeof(form) - 1};
        phc__log(a->log, PHC_LOG_INFO,
                 "requesting an API token for client credential '%s' from %s%s", cfg->client_id,
                 cfg->url, cfg->token_path);
        *t0 = phc__mono_ms();
        rc = perform(ud, &req, &resp, err);
        phc__secret_free(basic, basic_len);
        if (rc == PHC_OK) {
            size_t len = 0;
            const char *body = phc_response_body(resp, &len);
            rc = phc__access_parse(access, access_len, lifetime, body, len, err);
            phc_response_free(resp); /* wipes the body */
            return rc;
        }
        if (rc != PHC_ERR_HTTP || !resp) {
            /* The transport's class (network, trust, policy, hsm) is kept; the message says
             * what the connection was for. */
            phc_errbuf inner = {0};
            phc__err_copy(&inner, err);
            return phc__err(err, rc, "requesting an API token from %s%s: %s", cfg->url,
                            cfg->token_path, inner.msg);
        }
        long status = phc_response_status(resp);
        char code[72];
        oauth_error(resp, code, sizeof(code));
        if (status == 400 || status == 401 || status == 403) {
            phc_response_free(resp); /* wipes the body */
            return phc__err(err, PHC_ERR_AUTH,
                            "client credential '%.128s' was refused by %s%s (HTTP %ld%s): it is "
                            "wrong, expired or deleted",
                            cfg->client_id, cfg->url, cfg->token_path, status, code);
        }
        if (status != 429 && status != 503) {
            phc_response_free(resp); /* wipes the body */
            return phc__err(err, PHC_ERR_AUTH,
                            "token endpoint %s%s answered HTTP %ld%s: no API token for client "
                            "credential '%.128s'",
                            cfg->url, cfg->token_path, status, code, cfg->client_id);
        }
        int again = phc__retry_next(&retry, status, phc_response_header(resp, "Retry-After"));
        phc_response_free(resp); /* wipes the body */
        if (!again)
            return phc__err(err, PHC_ERR_AUTH,
                            "token endpoint %s%s is busy (HTTP %ld, Retry-After %ld s) after %d "
                            "attempt%s and %lld s of waiting (at most %d attempts, %d s): no API "
                            "token",
                            cfg->url, cfg->token_path, status, retry.wait_s, retry.attempt,
                            retry.attempt == 1 ? "" : "s", (long long)(retry.waited_ms / 1000),
                            PHC_RETRY_ATTEMPTS, PHC_RETRY_BUDGET_S);
        phc__log(a->log, PHC_LOG_WARN,
                 "token endpoint %s%s answered HTTP %ld; asking again in %ld s as Retry-After "
                 "says (attempt %d of %d)",
                 cfg->url, cfg->token_path, status, retry.wait_s, retry.attempt + 1,
                 PHC_RETRY_ATTEMPTS);
        phc__retry_wait(&retry);
    }
}

/* ------------------------------------------------------------------------------------ */
/* The cache */

/* "Authorization: Bearer <token>" for the current token. Caller holds mu. */
static int bearer_header(const phc_auth *a, char **out, size_t *out_len, phc_errbuf *err)
{
    size_t n = sizeof(BEARER) - 1 + a->access_len;
    char *h = OPENSSL_secure_malloc(n + 1);
    if (!h)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    memcpy(h, BEARER, sizeof(BEARER) - 1);
    memcpy(h + sizeof(BEARER) - 1, a->access, a->access_len);
    h[n] = '\0';
    *out = h;
    *out_len = n;
    return PHC_OK;
}

/* Caller holds mu. */
static void drop_access(phc_auth *a)
{
    phc__secret_free(a->access, a->access_len);
    a->access = NULL;
    a->access_len = 0;
}

/* A header carrying a usable access token, fetching or refreshing it as needed; *gen receives the
 * access token's generation for invalidate(). Logging waits until mu is released: the callback is
 * the application's and may take its own locks. */
static int get_access(phc_auth *a, phc_auth_perform_fn perform, void *ud, char **hdr,
                      size_t *hdr_len, uint64_t *gen, phc_errbuf *err)
{
    int rc;
    long long obtained = -1, refresh_s = 0, kept_s = -1;
    phc_errbuf ferr = {0};
    pthread_mutex_lock(&a->mu);
    uint64_t seen = a->fetches;
    for (;;) {
        int64_t now = phc__mono_ms();
        int valid = a->access && now < a->usable_until;
        /* A fetch this thread waited for has finished: share its result rather than asking
         * the endpoint once more per waiting thread. */
        if (a->fetches != seen && !valid) {
            if (a->last_rc == PHC_OK && a->access)
                goto use_current;
            if (a->last_rc != PHC_OK) {
                rc = phc__err_copy(err, &a->last_err);
                goto out;
            }
            seen = a->fetches; /* its access token was dropped by a 401 since: start afresh */
        }
        if (valid && (now < a->refresh_at || a->refreshing || now < a->retry_at))
            goto use_current;
        if (!a->refreshing)
            break;
        /* The fetching request may be a parked coroutine of this very thread (wait.h). */
        phc__wait_cond(&a->cv, &a->mu, -1, 2);
    }
    a->refreshing = 1;
    pthread_mutex_unlock(&a->mu);

    char *access = NULL;
    size_t access_len = 0;
    int64_t t0 = 0;
    long long lifetime = 0;
    int frc = fetch_access(a, perform, ud, &access, &access_len, &t0, &lifetime, &ferr);

    pthread_mutex_lock(&a->mu);
    a->refreshing = 0;
    a->fetches++;
    a->last_rc = frc;
    a->last_err = ferr;
    pthread_cond_broadcast(&a->cv);
    int64_t now = phc__mono_ms();
    if (frc == PHC_OK) {
        int64_t refresh_after, usable_for;
        phc__access_schedule(lifetime, &refresh_after, &usable_for);
        drop_access(a);
        a->access = access;
        a->access_len = access_len;
        a->gen++;
        a->refresh_at = t0 + refresh_after;
        a->usable_until = t0 + usable_for;
        a->retry_at = 0;
        obtained = lifetime;
        refresh_s = refresh_after / 1000;
        /* Used for the request that fetched it even when its lifetime is tiny. */
        goto use_current;
    }
    if (a->access && now < a->usable_until) {
        int64_t left = a->usable_until - now;
        a->retry_at = now + (left / 2 < REFRESH_BACKOFF_MS ? left / 2 : REFRESH_BACKOFF_MS);
        kept_s = (left + 999) / 1000;
        goto use_current;
    }
    rc = phc__err_copy(err, &ferr);
    goto out;

use_current:
    rc = bearer_header(a, hdr, hdr_len, err);
    *gen = a->gen;
out:
    pthread_mutex_unlock(&a->mu);
    if (obtained >= 0)
        phc__log(a->log, PHC_LOG_INFO,
                 "API token for client credential '%s' obtained: valid for %lld s, refreshed "
                 "after %lld s",
                 a->cfg->client_id, obtained, refresh_s);
    if (kept_s >= 0)
        phc__log(a->log, PHC_LOG_WARN,
                 "could not refresh the API token (%s); the current token stays in use for up "
                 "to %lld s",
                 ferr.msg, kept_s);
    return rc;
}

/* After a 401: forget the access token that earned it, unless another thread already replaced it.
 */
static void invalidate(phc_auth *a, uint64_t gen)
{
    pthread_mutex_lock(&a->mu);
    if (a->access && a->gen == gen)
        drop_access(a);
    pthread_mutex_unlock(&a->mu);
}

/* ------------------------------------------------------------------------------------ */
/* auth.h */

int phc__auth_new(phc_auth **out, const phc_config *cfg, const phc_log *log, phc_errbuf *err)
{
    *out = NULL;
    if (!cfg || !cfg->client_id || !cfg->client_secret || !cfg->token_path)
        return phc__err(err, PHC_ERR_CONFIG,
                        "client credentials need 'client_id' and 'client_secret'");
    if (strchr(cfg->client_id, ':'))
        return phc__err(err, PHC_ERR_CONFIG,
                        "config key 'client_id': '%.128s' must not contain ':' (HTTP Basic "
                        "cannot carry it)",
                        cfg->client_id);
    phc_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    a->cfg = cfg;
    a->log = log;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (cfg->credential_expires_epoch) {
        long long left = cfg->credential_expires_epoch - (long long)time(NULL);
        /* Not refused: the server decides, and the date in the config may be stale. */
        if (left <= 0)
            phc__log(log, PHC_LOG_WARN,
                     "client credential '%s' expired on %s (credential_expires): token requests "
                     "will be refused once the server agrees; create a new credential",
                     cfg->client_id, cfg->credential_expires);
        else
            phc__log(log, PHC_LOG_INFO, "client credential '%s' expires on %s (%lld days left)",
                     cfg->client_id, cfg->credential_expires, left / 86400);
    }
    *out = a;
    return PHC_OK;
}

int phc__auth_request(phc_auth *a, phc_auth_perform_fn perform, void *ud, const phc_request *req,
                      phc_response **out, phc_errbuf *err)
{
    *out = NULL;
    size_t n = 0;
    for (const char *const *h = req->headers; h && *h; h++, n++)
        if (strncasecmp(*h, "Authorization:", 14) == 0)
            return phc__err(err, PHC_ERR_CONFIG,
                            "the request has its own Authorization header; with client_id "
                            "configured the connector sends the API token itself");
    const char **headers = calloc(n + 2, sizeof(*headers));
    if (!headers)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    if (n)
        memcpy(headers, req->headers, n * sizeof(*headers));
    phc_request r = *req;
    r.headers = headers;
    int rc = PHC_ERR_INTERNAL;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *hdr = NULL;
        size_t hdr_len = 0;
        uint64_t gen = 0;
        if ((rc = get_access(a, perform, ud, &hdr, &hdr_len, &gen, err)) != PHC_OK)
            break;
        headers[n] = hdr;
        rc = perform(ud, &r, out, err);
        headers[n] = NULL;
        phc__secret_free(hdr, hdr_len);
        if (rc != PHC_ERR_HTTP || phc_response_status(*out) != 401)
            break;
        const char *method = req->method ? req->method : req->body ? "POST" : "GET";
        if (attempt == 1) {
            /* Never a loop: the 401 to the retry is the answer. */
            phc__err(err, PHC_ERR_HTTP,
                     "server answered HTTP 401 for %s %s even with a newly issued API token "
                     "(client credential '%.128s')",
                     method, req->path, a->cfg->client_id);
            break;
        }
        phc__log(a->log, PHC_LOG_INFO,
                 "server answered HTTP 401 for %s %s: requesting a new API token and retrying "
                 "once",
                 method, req->path);
        phc_response_free(*out);
        *out = NULL;
        invalidate(a, gen);
    }
    free(headers);
    return rc;
}

void phc__auth_free(phc_auth *a)
{
    if (!a)
        return;
    drop_access(a);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
