/* The configuration: an OpenSSL-syntax INI file (section [phconnect]) or keys set one by one.
 *
 * Every key goes through one validation path (phc__config_set_value, reached from phc_config_set
 * and from the file parser), so a value the file refuses is refused programmatically too, with the
 * same words. Only the prefix of a message differs: config /etc/phconnect/phconnect.cnf line 7: key
 * 'url': only https is allowed ... config key 'url': only https is allowed ...
 *
 * The work is split by job, as libgit2 splits its config: this file holds the object (life
 * cycle, get/set, the checks across keys, the trust re-read of a running client); the key
 * table and its setters are in config_keys.c, the file reader in config_file.c; what they
 * share is in config_impl.h.
 *
 * The raw value of each key is kept for phc_config_get in a private extension of struct
 * phc_config; a phc_config is therefore only ever allocated by phc_config_new.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif

#include "config_impl.h"
#include "lists.h"
#include "opts.h"
#include "rotation.h"
#include "trust.h"
#include "util_hex.h"
#include "x509_profile.h"

#include <phconnect/token.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_PATH "/etc/phconnect/phconnect.cnf"
#define DEFAULT_TOKEN_PATH "/v1/auth/token"
#define DEFAULT_CONNECT_TIMEOUT 10
#define DEFAULT_TIMEOUT 30
#define DEFAULT_MAX_RESPONSE ((size_t)16 * 1024 * 1024)
#define DEFAULT_MIN_RSA_BITS 2048
#define DEFAULT_RELOAD_INTERVAL 60

/* ------------------------------------------------------------------------------------ */
/* Messages */

int phc__config_bad(phc_errbuf *err, const struct where *w, const char *key, const char *fmt, ...)
{
    char reason[PHC_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (!w->file)
        return phc__err(err, PHC_ERR_CONFIG, "config key '%.64s': %s", key, reason);
    if (w->line > 0)
        return phc__err(err, PHC_ERR_CONFIG, "config %s line %ld: key '%.64s': %s", w->file,
                        w->line, key, reason);
    return phc__err(err, PHC_ERR_CONFIG, "config %s: key '%.64s': %s", w->file, key, reason);
}

/* "config FILE line N" / "config FILE" / "config", for messages not about one value. */
static void where_str(char *buf, size_t n, const struct where *w)
{
    if (!w->file)
        snprintf(buf, n, "config");
    else if (w->line > 0)
        snprintf(buf, n, "config %s line %ld", w->file, w->line);
    else
        snprintf(buf, n, "config %s", w->file);
}

/* Levenshtein distance, case-insensitive, of short strings (keys); large when too long. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return SIZE_MAX;
    size_t row[33];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            int same = (a[i - 1] | 0x20) == (b[j - 1] | 0x20);
            size_t best = diag + (same ? 0 : 1);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int phc__config_unknown_key(phc_errbuf *err, const struct where *w, const char *key)
{
    char loc[PHC_ERRMSG_MAX];
    where_str(loc, sizeof(loc), w);
    const char *best = NULL;
    size_t bestd = 3; /* suggest only within distance 2 */
    for (size_t i = 0; i < K_COUNT; i++) {
        size_t d = edit_distance(key, phc__config_keys[i]);
        if (d < bestd) {
            bestd = d;
            best = phc__config_keys[i];
        }
    }
    if (best)
        return phc__err(err, PHC_ERR_CONFIG, "%s: unknown key '%.64s' (did you mean '%s'?)", loc,
                        key, best);
    return phc__err(err, PHC_ERR_CONFIG, "%s: unknown key '%.64s'", loc, key);
}

/* ------------------------------------------------------------------------------------ */
/* Public API: handle */

int phc_config_new(phc_config **out, phc_errbuf *err)
{
    if (!out)
        return phc__err(err, PHC_ERR_INTERNAL, "phc_config_new: out is NULL");
    *out = NULL;
    struct cfg_impl *c = calloc(1, sizeof(*c));
    if (!c)
        return phc__config_oom(err);
    c->pub.refs = 1;
    c->pub.port = 443;
    c->pub.connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    c->pub.timeout = DEFAULT_TIMEOUT;
    c->pub.max_response_bytes = DEFAULT_MAX_RESPONSE;
    c->pub.min_rsa_bits = DEFAULT_MIN_RSA_BITS;
    c->pub.reload_interval = DEFAULT_RELOAD_INTERVAL;
    c->pub.min_tls_version = 12;
    c->pub.x509_profile = PHC_X509_STRICT;
    if (!(c->pub.token_path = strdup(DEFAULT_TOKEN_PATH))) {
        free(c);
        return phc__config_oom(err);
    }
    *out = &c->pub;
    return PHC_OK;
}

int phc_config_set(phc_config *cfg, const char *key, const char *value, phc_errbuf *err)
{
    if (!cfg || !key)
        return phc__err(err, PHC_ERR_INTERNAL, "phc_config_set: cfg or key is NULL");
    if (__atomic_load_n(&cfg->frozen, __ATOMIC_ACQUIRE))
        return phc__err(err, PHC_ERR_CONFIG, "config is in use by a client and cannot change");
    const struct where w = {NULL, 0};
    return phc__config_set_value(phc__config_impl(cfg), key, value, &w, err);
}

const char *phc_config_get(const phc_config *cfg, const char *key)
{
    if (!cfg || !key)
        return NULL;
    int id = phc__config_find_key(key);
    return id < 0 ? NULL : phc__config_cimpl(cfg)->raw[id];
}

phc_config *phc__config_ref(phc_config *cfg)
{
    if (!cfg)
        return NULL;
    __atomic_fetch_add(&cfg->refs, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->frozen, 1, __ATOMIC_RELEASE);
    return cfg;
}

void phc_config_free(phc_config *cfg)
{
    if (!cfg)
        return;
    if (__atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    struct cfg_impl *c = phc__config_impl(cfg);
    for (size_t i = 0; i < K_COUNT; i++)
        free(c->raw[i]);
    free(c->path);
    free(c->base_dir);
    free(cfg->name);
    free(cfg->url);
    free(cfg->host);
    free(cfg->ca_file);
    free(cfg->ca_sha256);
    for (size_t i = 0; i < cfg->n_pinned_ips; i++)
        free(cfg->pinned_ips[i]);
    free(cfg->source_address);
    free(cfg->pkcs11_module);
    free(cfg->key);
    free(cfg->cert);
    free(cfg->pin);
    free(cfg->client_id);
    free(cfg->client_secret);
    free(cfg->token_path);
    free(cfg->credential_expires);
    free(c);
}

const char *phc_config_default_path(void)
{
    const char *p = getenv("PHC_CONFIG");
    return p && *p ? p : DEFAULT_PATH;
}

/* ------------------------------------------------------------------------------------ */
/* Validation across keys */

static int missing(phc_errbuf *err, const char *loc, const char *key, const char *why)
{
    return phc__err(err, PHC_ERR_CONFIG, "%s: missing required key '%s'%s", loc, key, why);
}

static int addr_family(const char *s)
{
    unsigned char a[sizeof(struct in6_addr)];
    if (s && inet_pton(AF_INET, s, a) == 1)
        return AF_INET;
    if (s && inet_pton(AF_INET6, s, a) == 1)
        return AF_INET6;
    return 0;
}

int phc_config_validate(const phc_config *cfg, phc_errbuf *err)
{
    if (!cfg)
        return phc__err(err, PHC_ERR_INTERNAL, "phc_config_validate: cfg is NULL");
    char loc[PHC_ERRMSG_MAX];
    const struct where w = {cfg->name, 0};
    where_str(loc, sizeof(loc), &w);

    /* A config for the agent's clients: the agent holds everything else. */
    if (phc__config_cimpl(cfg)->raw[K_AGENT] && !cfg->url)
        return PHC_OK;
    if (!cfg->url)
        return missing(err, loc, "url", "");
    if (!cfg->ca_file)
        return missing(err, loc, "ca_file", " (the vendor CA is the only trust anchor)");

    /* Client certificate: a key (and cert) on the token needs module, key and PIN. */
    const char *mtls_need = " (a client key on a token needs 'pkcs11_module', 'key' and 'pin')";
    if (cfg->key || cfg->cert) {
        if (!cfg->key)
            return missing(err, loc, "key", " ('cert' is set; the certificate belongs to a key)");
        if (!cfg->pkcs11_module)
            return missing(err, loc, "pkcs11_module", mtls_need);
        if (!cfg->pin)
            return missing(err, loc, "pin", mtls_need);
    }
    /* A client secret kept on the token needs the module and the PIN too. */
    int secret_p11 = cfg->client_secret && phc__config_is_p11_uri(cfg->client_secret);
    if (secret_p11) {
        const char *why = " (client_secret is a PKCS#11 URI, read from the token)";
        if (!cfg->pkcs11_module)
            return missing(err, loc, "pkcs11_module", why);
        if (!cfg->pin)
            return missing(err, loc, "pin", why);
    }
    if ((cfg->pkcs11_module || cfg->pin) && !cfg->key && !secret_p11)
        return missing(err, loc, "key",
                       " ('pkcs11_module'/'pin' are set but nothing on the token is used)");
    /* Client credentials come in pairs. */
    if (cfg->client_id && !cfg->client_secret)
        return missing(err, loc, "client_secret", " (client_id is set)");
    if (cfg->client_secret && !cfg->client_id)
        return missing(err, loc, "client_id", " (client_secret is set)");
    if (!cfg->key && !cfg->client_id)
        return missing(err, loc, "key",
                       ": set 'pkcs11_module', 'key' and 'pin' (client certificate) and/or "
                       "'client_id' and 'client_secret' (client credentials)");

    /* An address in the URL must be one the policy allows. */
    int host_af = addr_family(cfg->host);
    if (host_af && cfg->n_pinned_ips > 0) {
        int found = 0;
        for (size_t i = 0; i < cfg->n_pinned_ips && !found; i++)
            found = strcmp(cfg->pinned_ips[i], cfg->host) == 0;
        if (!found)
            return phc__err(err, PHC_ERR_CONFIG,
                            "%s: the address %s in 'url' is not one of 'pinned_ips'", loc,
                            cfg->host);
    }
    /* A source address of one family cannot reach addresses of only the other. */
    int src_af = addr_family(cfg->source_address);
    if (src_af) {
        const char *fam = src_af == AF_INET ? "IPv4" : "IPv6";
        if (cfg->n_pinned_ips > 0) {
            int found = 0;
            for (size_t i = 0; i < cfg->n_pinned_ips && !found; i++)
                found = addr_family(cfg->pinned_ips[i]) == src_af;
            if (!found)
                return phc__err(err, PHC_ERR_CONFIG,
                                "%s: 'source_address' %s is %s but no address in 'pinned_ips' is",
                                loc, cfg->source_address, fam);
        } else if (host_af && host_af != src_af) {
            return phc__err(err, PHC_ERR_CONFIG,
                            "%s: 'source_address' %s is %s but the address in 'url' is not", loc,
                            cfg->source_address, fam);
        }
    }
    return PHC_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Reloading the trust keys (a running client) */

const char *phc__config_path(const phc_config *cfg)
{
    return cfg ? phc__config_cimpl(cfg)->path : NULL;
}

static int is_trust_key(int k)
{
    return k == K_CA_FILE || k == K_CA_SHA256 || k == K_PINNED_IPS;
}

int phc__config_with_trust(phc_config **out, const phc_config *base, const phc_config *src,
                           phc_errbuf *err)
{
    phc_config *c = NULL;
    *out = NULL;
    int rc = phc_config_new(&c, err);
    if (rc != PHC_OK)
        return rc;
    struct cfg_impl *n = phc__config_impl(c);
    if ((base->name && !(c->name = strdup(base->name))) ||
        (phc__config_cimpl(base)->path && !(n->path = strdup(phc__config_cimpl(base)->path))) ||
        (phc__config_cimpl(base)->base_dir &&
         !(n->base_dir = strdup(phc__config_cimpl(base)->base_dir)))) {
        rc = phc__config_oom(err);
        goto out;
    }
    /* Through the one validation path, so the copy is what the file would give. */
    for (int k = 0; k < K_COUNT; k++) {
        const char *v =
            is_trust_key(k) ? phc__config_cimpl(src)->raw[k] : phc__config_cimpl(base)->raw[k];
        if (v && (rc = phc_config_set(c, phc__config_keys[k], v, err)) != PHC_OK)
            goto out;
    }
    if ((rc = phc_config_validate(c, err)) != PHC_OK)
        goto out;
    *out = c;
    c = NULL;
out:
    phc_config_free(c);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* What the config names: its CAs and its endpoint (phconnect/token.h) */

int phc_config_ca_certs(const phc_config *cfg, long long now, phc_ca_list **out, phc_errbuf *err)
{
    phc_trust *trust = NULL;
    *out = NULL;
    if (!cfg || !cfg->ca_file)
        return phc__err(err, PHC_ERR_CONFIG, "config has no 'ca_file'");
    if (!now)
        now = (long long)time(NULL);
    int rc = phc__trust_load(&trust, cfg->ca_file, (const unsigned char(*)[32])cfg->ca_sha256,
                             cfg->n_ca_sha256, err);
    if (rc)
        return rc;
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(phc__trust_store(trust));
    int total = sk_X509_OBJECT_num(objs);
    phc_ca_info *list = OPENSSL_zalloc((size_t)(total > 0 ? total : 1) * sizeof(*list));
    size_t cnt = 0;
    if (!list) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (int i = 0; i < total; i++) {
        X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (!x)
            continue;
        phc_ca_info *c = &list[cnt++];
        unsigned char md[32];
        unsigned int mdlen = 0;
        phc__name_str(c->subject, sizeof(c->subject), X509_get_subject_name(x));
        if (X509_digest(x, EVP_sha256(), md, &mdlen))
            phc__hex(c->sha256, sizeof(c->sha256), md, mdlen);
        phc__cert_dates(x, now, &c->not_before, &c->not_after, &c->days_left);
        ERR_clear_error();
    }
    rc = phc__ca_list_take(out, list, cnt, err);
out:
    phc__trust_free(trust);
    return rc;
}

int phc_config_endpoint(const phc_config *cfg, phc_endpoint *out, phc_errbuf *err)
{
    if (!out)
        return phc__err(err, PHC_ERR_CONFIG, "phc_config_endpoint: no phc_endpoint given");
    int rc = phc__version_check("phc_endpoint", out->version, PHC_ENDPOINT_VERSION, err);
    if (rc != PHC_OK)
        return rc;
    if (!cfg)
        return phc__err(err, PHC_ERR_CONFIG, "phc_config_endpoint: no configuration given");
    *out = (phc_endpoint)PHC_ENDPOINT_INIT;
    out->url = cfg->url;
    out->host = cfg->host;
    out->port = cfg->port;
    out->pinned_ips = (const char *const *)cfg->pinned_ips;
    out->n_pinned_ips = cfg->n_pinned_ips;
    out->source_address = cfg->source_address;
    out->credential_expires = cfg->credential_expires_epoch;
    return PHC_OK;
}
