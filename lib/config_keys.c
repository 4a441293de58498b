/* The key table: one setter per configuration key, each validating its value into
 * temporaries before it commits them, behind the one validation path
 * (phc__config_set_value) that phc_config_set and the file reader both take. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* timegm, strncasecmp */
#endif

#include "config_agent.h"
#include "config_impl.h"
#include "p11_uri.h"
#include "util_hex.h"
#include "x509_profile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_CA_SHA256 64 /* trust.c checks at most this many pins */
#define MAX_TIMEOUT 3600
#define MAX_RESPONSE_LIMIT (1024LL * 1024 * 1024)
#define MAX_RELOAD_INTERVAL 86400

/* The keys of CONTRACT.md, in the order a reader meets them there, then phconnect's own. */
const char *const phc__config_keys[K_COUNT] = {
    [K_URL] = "url",
    [K_CA_FILE] = "ca_file",
    [K_CA_SHA256] = "ca_sha256",
    [K_PINNED_IPS] = "pinned_ips",
    [K_SOURCE_ADDRESS] = "source_address",
    [K_PKCS11_MODULE] = "pkcs11_module",
    [K_KEY] = "key",
    [K_CERT] = "cert",
    [K_PIN] = "pin",
    [K_CLIENT_ID] = "client_id",
    [K_CLIENT_SECRET] = "client_secret",
    [K_TOKEN_PATH] = "token_path",
    [K_CREDENTIAL_EXPIRES] = "credential_expires",
    [K_CONNECT_TIMEOUT] = "connect_timeout",
    [K_TIMEOUT] = "timeout",
    [K_MAX_RESPONSE_BYTES] = "max_response_bytes",
    [K_MIN_RSA_BITS] = "min_rsa_bits",
    [K_RELOAD_INTERVAL] = "reload_interval",
    [K_MIN_TLS_VERSION] = "min_tls_version",
    [K_X509_PROFILE] = "x509_profile",
    [K_STRICT_MODES] = "strict_modes",
    [K_AGENT] = "agent",
    [K_AGENT_LISTEN] = "agent_listen",
    [K_AGENT_ALLOW_USERS] = "agent_allow_users",
    [K_AGENT_GROUP] = "agent_group",
    [K_AGENT_PATHS] = "agent_paths",
    [K_AGENT_MAX_CLIENTS] = "agent_max_clients",
    [K_AGENT_MAX_REQUEST_BYTES] = "agent_max_request_bytes",
};

/* ------------------------------------------------------------------------------------ */
/* Small parsers */

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Next item of a comma-separated list, whitespace-trimmed. *pos advances; returns 0 at the
 * end of the list. An empty item (",," or a trailing comma) comes back with *len == 0. */
static int next_item(const char **pos, const char **item, size_t *len)
{
    const char *p = *pos;
    if (!p)
        return 0;
    const char *comma = strchr(p, ',');
    const char *e = comma ? comma : p + strlen(p);
    while (p < e && phc__config_is_ws(*p))
        p++;
    const char *q = e;
    while (q > p && phc__config_is_ws(q[-1]))
        q--;
    *item = p;
    *len = (size_t)(q - p);
    *pos = comma ? comma + 1 : NULL;
    return 1;
}

/* A numeric IPv4/IPv6 address (no brackets) into its inet_ntop form; returns the family or
 * 0 when s is not an address. */
static int parse_ip(const char *s, size_t len, char *out, size_t outlen)
{
    char buf[INET6_ADDRSTRLEN + 1];
    unsigned char addr[sizeof(struct in6_addr)];
    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    int af = AF_INET;
    if (inet_pton(AF_INET, buf, addr) != 1) {
        af = AF_INET6;
        if (inet_pton(AF_INET6, buf, addr) != 1)
            return 0;
    }
    if (!inet_ntop(af, addr, out, (socklen_t)outlen))
        return 0;
    return af;
}

/* A whole string of decimal digits into *out; 0 on success. No sign, no spaces. */
static int parse_uint(const char *s, const char **end, long long *out)
{
    if (!is_digit(*s))
        return -1;
    errno = 0;
    char *e;
    long long v = strtoll(s, &e, 10);
    if (errno == ERANGE || v < 0)
        return -1;
    *end = e;
    *out = v;
    return 0;
}

static int is_env_name(const char *s)
{
    if (!(is_alpha(*s) || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!(is_alpha(*s) || is_digit(*s) || *s == '_'))
            return 0;
    return 1;
}

/* "file:PATH" or "env:NAME" (a relative PATH was made absolute by resolve_path). */
static int is_secret_source(const char *v)
{
    if (strncmp(v, "file:", 5) == 0)
        return v[5] == '/' && v[6] != '\0';
    if (strncmp(v, "env:", 4) == 0)
        return is_env_name(v + 4);
    return 0;
}

int phc__config_is_p11_uri(const char *v)
{
    return strncasecmp(v, "pkcs11:", 7) == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Field helpers: setters validate into temporaries, then commit, so a refused value leaves
 * the config as it was. */

static void replace_str(char **field, char *v)
{
    free(*field);
    *field = v;
}

static int dup_into(char **field, const char *v, phc_errbuf *err)
{
    char *d = strdup(v);
    if (!d)
        return phc__config_oom(err);
    replace_str(field, d);
    return PHC_OK;
}

/* The char * field of the public struct that holds key's normalised string value. */
static char **str_field(struct cfg_impl *c, const char *key)
{
    struct phc_config *p = &c->pub;
    if (strcmp(key, "ca_file") == 0)
        return &p->ca_file;
    if (strcmp(key, "pkcs11_module") == 0)
        return &p->pkcs11_module;
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* url */

/* LDH host name: labels of letters, digits and '-', 1..63 long, not starting or ending with
 * '-', 253 characters at most. */
static int is_dns_name(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!(is_alpha(ch) || is_digit(ch) || ch == '-'))
            return 0;
        if (ch == '-' && label == 0)
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0 && s[len - 1] != '-';
}

static int set_url(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                   phc_errbuf *err)
{
    const char *usage = "must be https://host[:port]";
    const char *sep = strstr(v, "://");
    if (!sep)
        return phc__config_bad(err, w, key, "%s", usage);
    size_t slen = (size_t)(sep - v);
    if (slen != 5 || strncasecmp(v, "https", 5) != 0) {
        /* Quote the scheme only when it looks like one: the part before "://" of a garbled
         * value could hold anything. */
        int scheme_like = slen > 0 && slen <= 16 && is_alpha(v[0]);
        for (size_t i = 0; scheme_like && i < slen; i++)
            scheme_like = is_alpha(v[i]) || is_digit(v[i]) || strchr("+-.", v[i]);
        if (scheme_like)
            return phc__config_bad(err, w, key, "only https is allowed, not '%.*s' (%s)", (int)slen,
                                   v, usage);
        return phc__config_bad(err, w, key, "only https is allowed (%s)", usage);
    }

    const char *auth = sep + 3;
    const char *end = auth + strcspn(auth, "/?#");
    /* userinfo may hold a password: name the problem, never the text */
    if (memchr(auth, '@', (size_t)(end - auth)))
        return phc__config_bad(err, w, key,
                               "must not contain user information (user@ or user:password@)");
    if (end == auth)
        return phc__config_bad(err, w, key, "has no host (%s)", usage);

    char host[256];
    char norm[INET6_ADDRSTRLEN + 1];
    const char *port_s = NULL, *port_e = end;
    int ipv6 = 0;
    if (*auth == '[') {
        const char *rb = memchr(auth, ']', (size_t)(end - auth));
        if (!rb)
            return phc__config_bad(err, w, key, "IPv6 address is missing its closing ']'");
        const char *h = auth + 1;
        size_t hlen = (size_t)(rb - h);
        if (parse_ip(h, hlen, norm, sizeof(norm)) != AF_INET6)
            return phc__config_bad(err, w, key, "'[%.*s]' is not an IPv6 address",
                                   (int)(hlen > 64 ? 64 : hlen), h);
        snprintf(host, sizeof(host), "%s", norm);
        ipv6 = 1;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return phc__config_bad(err, w, key, "unexpected characters after ']' (%s)", usage);
            port_s = rb + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', (size_t)(end - auth));
        const char *he = colon ? colon : end;
        size_t hlen = (size_t)(he - auth);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return phc__config_bad(err, w, key,
                                   "an IPv6 address must be in brackets: https://[addr]:port");
        if (hlen == 0)
            return phc__config_bad(err, w, key, "has no host (%s)", usage);
        if (hlen >= sizeof(host))
            return phc__config_bad(err, w, key, "host name is longer than 253 characters");
        int numeric = 1;
        for (size_t i = 0; i < hlen; i++)
            numeric = numeric && (is_digit(auth[i]) || auth[i] == '.');
        if (numeric) {
            if (parse_ip(auth, hlen, norm, sizeof(norm)) != AF_INET)
                return phc__config_bad(err, w, key, "'%.*s' is not a valid IPv4 address",
                                       (int)(hlen > 64 ? 64 : hlen), auth);
            snprintf(host, sizeof(host), "%s", norm);
        } else {
            if (!is_dns_name(auth, hlen))
                return phc__config_bad(
                    err, w, key, "'%.*s' is not a valid host name (letters, digits, '-' and '.')",
                    (int)(hlen > 64 ? 64 : hlen), auth);
            for (size_t i = 0; i < hlen; i++)
                host[i] = (char)((auth[i] >= 'A' && auth[i] <= 'Z') ? auth[i] | 0x20 : auth[i]);
            host[hlen] = '\0';
        }
        if (colon)
            port_s = colon + 1;
    }

    long long port = 443;
    if (port_s) {
        size_t plen = (size_t)(port_e - port_s);
        const char *pe = NULL;
        int ok = plen > 0 && plen <= 5 && parse_uint(port_s, &pe, &port) == 0 && pe == port_e &&
                 port >= 1 && port <= 65535;
        if (!ok)
            return phc__config_bad(err, w, key, "port must be a number from 1 to 65535");
    }

    if (*end != '\0' && strcmp(end, "/") != 0) {
        if (strpbrk(end, "?#"))
            return phc__config_bad(err, w, key, "must not have a query or fragment (%s)", usage);
        return phc__config_bad(
            err, w, key, "must not have a path ('%.64s'): the path is given with each request",
            end);
    }

    size_t ulen = strlen(host) + 32;
    char *url = malloc(ulen);
    char *h = strdup(host);
    if (!url || !h) {
        free(url);
        free(h);
        return phc__config_oom(err);
    }
    snprintf(url, ulen, "https://%s%s%s:%d", ipv6 ? "[" : "", host, ipv6 ? "]" : "", (int)port);
    replace_str(&c->pub.url, url);
    replace_str(&c->pub.host, h);
    c->pub.port = (int)port;
    return PHC_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Paths, addresses, fingerprints */

static int set_path(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                    phc_errbuf *err)
{
    /* existence and content are checked by the unit that opens the file */
    return dup_into(str_field(c, key), v, err);
}

static int set_ca_sha256(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                         phc_errbuf *err)
{
    size_t n = 1;
    for (const char *p = v; *p; p++)
        n += *p == ',';
    if (n > MAX_CA_SHA256)
        return phc__config_bad(err, w, key, "more than %d fingerprints", MAX_CA_SHA256);
    unsigned char(*fps)[PHC_SHA256_LEN] = calloc(n, sizeof(*fps));
    if (!fps)
        return phc__config_oom(err);

    int rc = PHC_OK;
    size_t count = 0;
    const char *pos = v, *item;
    size_t len;
    while (next_item(&pos, &item, &len)) {
        size_t idx = count + 1, hex = 0, colons = 0;
        if (len == 0) {
            rc = phc__config_bad(err, w, key, "fingerprint %zu is empty (a stray comma?)", idx);
            goto out;
        }
        for (size_t i = 0; i < len; i++) {
            if (item[i] == ':') {
                colons++;
            } else if (phc__hex_digit((unsigned char)item[i]) >= 0) {
                hex++;
            } else {
                unsigned char ch = (unsigned char)item[i];
                if (ch > 0x20 && ch < 0x7f)
                    rc = phc__config_bad(err, w, key, "fingerprint %zu: '%c' is not a hex digit",
                                         idx, ch);
                else
                    rc = phc__config_bad(
                        err, w, key, "fingerprint %zu: byte 0x%02x is not a hex digit", idx, ch);
                goto out;
            }
        }
        if (hex != 2 * PHC_SHA256_LEN) {
            rc = phc__config_bad(err, w, key,
                                 "fingerprint %zu has %zu hex digits; a SHA-256 fingerprint has %d",
                                 idx, hex, 2 * PHC_SHA256_LEN);
            goto out;
        }
        int colons_ok = colons == 0;
        if (colons == PHC_SHA256_LEN - 1) {
            colons_ok = 1;
            for (size_t i = 0; i < len; i++)
                colons_ok = colons_ok && ((i % 3 == 2) == (item[i] == ':'));
        }
        if (!colons_ok) {
            rc = phc__config_bad(
                err, w, key,
                "fingerprint %zu: colons must separate every pair of hex digits, or be left "
                "out",
                idx);
            goto out;
        }
        unsigned char *fp = fps[count];
        for (size_t i = 0, j = 0; i < len; i++) {
            if (item[i] == ':')
                continue;
            if (j % 2 == 0)
                fp[j / 2] = (unsigned char)(phc__hex_digit((unsigned char)item[i]) << 4);
            else
                fp[j / 2] |= (unsigned char)phc__hex_digit((unsigned char)item[i]);
            j++;
        }
        for (size_t i = 0; i < count; i++)
            if (memcmp(fps[i], fp, PHC_SHA256_LEN) == 0) {
                rc = phc__config_bad(err, w, key, "fingerprint %zu repeats fingerprint %zu", idx,
                                     i + 1);
                goto out;
            }
        count++;
    }
    free(c->pub.ca_sha256);
    c->pub.ca_sha256 = fps;
    c->pub.n_ca_sha256 = count;
    fps = NULL;
out:
    free(fps);
    return rc;
}

static int set_pinned_ips(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                          phc_errbuf *err)
{
    char *ips[PHC_MAX_PINNED] = {0};
    size_t count = 0;
    int rc = PHC_OK;
    const char *pos = v, *item;
    size_t len;
    while (next_item(&pos, &item, &len)) {
        char norm[INET6_ADDRSTRLEN + 1];
        if (len == 0) {
            rc = phc__config_bad(err, w, key, "address %zu is empty (a stray comma?)", count + 1);
            goto out;
        }
        if (!parse_ip(item, len, norm, sizeof(norm))) {
            rc = phc__config_bad(
                err, w, key,
                "'%.*s' is not an IP address (pinned_ips takes numeric IPv4/IPv6 addresses, "
                "no host names)",
                (int)(len > 64 ? 64 : len), item);
            goto out;
        }
        if (count == PHC_MAX_PINNED) {
            rc = phc__config_bad(err, w, key, "more than %d addresses", PHC_MAX_PINNED);
            goto out;
        }
        for (size_t i = 0; i < count; i++)
            if (strcmp(ips[i], norm) == 0) {
                rc = phc__config_bad(err, w, key, "address %s is listed twice", norm);
                goto out;
            }
        if (!(ips[count] = strdup(norm))) {
            rc = phc__config_oom(err);
            goto out;
        }
        count++;
    }
    for (size_t i = 0; i < c->pub.n_pinned_ips; i++)
        free(c->pub.pinned_ips[i]);
    memcpy(c->pub.pinned_ips, ips, sizeof(ips));
    c->pub.n_pinned_ips = count;
    count = 0;
out:
    for (size_t i = 0; i < count; i++)
        free(ips[i]);
    return rc;
}

static int set_source_address(struct cfg_impl *c, const char *key, const char *v,
                              const struct where *w, phc_errbuf *err)
{
    char norm[INET6_ADDRSTRLEN + 1];
    if (!parse_ip(v, strlen(v), norm, sizeof(norm)))
        return phc__config_bad(err, w, key,
                               "'%.64s' is not an IP address (a numeric IPv4/IPv6 address)", v);
    return dup_into(&c->pub.source_address, norm, err);
}

/* ------------------------------------------------------------------------------------ */
/* PKCS#11 URIs and secret sources */

static int ieq_prefix(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    return len >= wl && strncasecmp(s, word, wl) == 0;
}

/* Whether a URI carries a PIN attribute anywhere an attribute name can stand (p11-kit knows
 * pin-value/pin-source only in the query; libp11 also honours them in the path). Textual,
 * so that it holds even for a URI p11-kit cannot parse. */
static int has_pin_attr(const char *v)
{
    for (const char *p = v; *p; p++) {
        if (p != v && !strchr(":;?&", p[-1]))
            continue;
        const char *n = p;
        while (phc__config_is_ws(*n))
            n++;
        size_t rest = strlen(n);
        if (ieq_prefix(n, rest, "pin-value") || ieq_prefix(n, rest, "pin-source") ||
            ieq_prefix(n, rest, "pinfile"))
            return 1;
    }
    return 0;
}

/* The first attribute name in the URI that p11-kit does not know, for a message. */
static void unknown_attr(const char *v, char *out, size_t outlen)
{
    static const char *const known[] = {
        "token",
        "manufacturer",
        "serial",
        "model",
        "object",
        "type",
        "id",
        "library-manufacturer",
        "library-description",
        "library-version",
        "slot-description",
        "slot-manufacturer",
        "slot-id",
        "module-name",
        "module-path",
        "pin-value",
        "pin-source",
    };
    snprintf(out, outlen, "?");
    const char *p = strchr(v, ':');
    while (p && *p) {
        p++;
        size_t n = strcspn(p, "=;?&");
        int found = 0;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !found; i++)
            found = strlen(known[i]) == n && strncmp(known[i], p, n) == 0;
        if (!found && n > 0) {
            snprintf(out, outlen, "%.*s", (int)(n > 32 ? 32 : n), p);
            return;
        }
        p += strcspn(p, ";?&");
    }
}

/* A PKCS#11 URI naming one kind of object, without PIN. The URI is not quoted in messages:
 * a mistyped one might still carry a PIN. */
static int check_p11_uri(const char *key, const char *v, CK_OBJECT_CLASS want, const char *what,
                         const struct where *w, phc_errbuf *err)
{
    if (has_pin_attr(v))
        return phc__config_bad(err, w, key, "PIN must not be inside the URI; use the pin key");
    if (!phc__config_is_p11_uri(v))
        return phc__config_bad(err, w, key, "must be a PKCS#11 URI (pkcs11:token=...;object=...)");

    phc_p11_uri uri;
    const char *why = NULL;
    int rc = PHC_OK;
    switch (phc__p11_uri_parse(&uri, v, want, &why)) {
    case PHC_P11_URI_OK:
        break;
    case PHC_P11_URI_CASE: /* the one case rule (p11_uri.h) */
        rc = phc__config_bad(err, w, key, "write the URI scheme 'pkcs11:' in lower case");
        break;
    case PHC_P11_URI_PIN:
        rc = phc__config_bad(err, w, key, "PIN must not be inside the URI; use the pin key");
        break;
    case PHC_P11_URI_UNKNOWN: { /* a mistyped attribute would otherwise widen the match */
        char name[40];
        unknown_attr(v, name, sizeof(name));
        rc = phc__config_bad(err, w, key, "unknown attribute '%s' in the PKCS#11 URI", name);
        break;
    }
    case PHC_P11_URI_NO_OBJECT:
        rc =
            phc__config_bad(err, w, key, "the PKCS#11 URI must name the %s (object= or id=)", what);
        break;
    case PHC_P11_URI_WRONG_CLASS:
        rc = phc__config_bad(err, w, key,
                             "type=%s does not name a %s; use type=%s or leave type out",
                             phc__p11_uri_class_word(uri.cls), what, phc__p11_uri_class_word(want));
        break;
    case PHC_P11_URI_NOMEM:
        rc = phc__config_oom(err);
        break;
    default:
        rc = phc__config_bad(err, w, key, "not a valid PKCS#11 URI: %s", why ? why : "?");
    }
    phc__p11_uri_clear(&uri);
    return rc;
}

static int set_key(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                   phc_errbuf *err)
{
    int rc = check_p11_uri(key, v, CKO_PRIVATE_KEY, "private key", w, err);
    return rc ? rc : dup_into(&c->pub.key, v, err);
}

static int set_cert(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                    phc_errbuf *err)
{
    if (phc__config_is_p11_uri(v) || has_pin_attr(v)) {
        int rc = check_p11_uri(key, v, CKO_CERTIFICATE, "certificate", w, err);
        if (rc)
            return rc;
    }
    /* anything else is the path of a PEM file, read when the client is made */
    return dup_into(&c->pub.cert, v, err);
}

static int set_pin(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                   phc_errbuf *err)
{
    /* never quote v: a mistake here is most likely the PIN itself */
    if (!is_secret_source(v))
        return phc__config_bad(
            err, w, key,
            "pin must be file:PATH or env:NAME (the PIN itself never goes in the config)");
    return dup_into(&c->pub.pin, v, err);
}

static int set_client_id(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                         phc_errbuf *err)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return phc__config_bad(err, w, key, "must be printable ASCII");
    return dup_into(&c->pub.client_id, v, err);
}

static int set_client_secret(struct cfg_impl *c, const char *key, const char *v,
                             const struct where *w, phc_errbuf *err)
{
    if (phc__config_is_p11_uri(v)) {
        int rc = check_p11_uri(key, v, CKO_DATA, "data object", w, err);
        if (rc)
            return rc;
    } else if (!is_secret_source(v)) {
        return phc__config_bad(
            err, w, key,
            "client_secret must be file:PATH, env:NAME or a pkcs11: URI (the secret "
            "itself never goes in the config)");
    }
    return dup_into(&c->pub.client_secret, v, err);
}

/* ------------------------------------------------------------------------------------ */
/* token_path, dates, numbers */

static int set_token_path(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                          phc_errbuf *err)
{
    if (v[0] != '/')
        return phc__config_bad(err, w, key, "must start with '/'");
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return phc__config_bad(err, w, key,
                                   "must not contain spaces, control or non-ASCII characters "
                                   "(percent-encode them)");
    return dup_into(&c->pub.token_path, v, err);
}

/* Exactly n decimal digits. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d[m - 1] + (m == 2 && leap);
}

/* YYYY-MM-DD, optionally THH:MM:SS followed by Z, ±HH:MM or nothing (UTC). A date alone is
 * the start of that day, UTC: monitoring then warns early rather than late. On failure
 * *bad_range is 1 for an impossible date or time, 2 for a year before 2000 (a typo: the
 * expiry of a credential issued for this connector is in the future). */
static int parse_iso8601(const char *s, long long *out, int *bad_range)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
    *bad_range = 0;
    size_t len = strlen(s);
    if (len < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -1;
    const char *p = s + 10;
    if (*p == 'T') {
        if (strlen(p) < 9 || digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi) ||
            p[6] != ':' || digits(p + 7, 2, &sec))
            return -1;
        p += 9;
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            sign = *p == '+' ? 1 : -1;
            if (strlen(p) < 6 || digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om))
                return -1;
            p += 6;
        }
    }
    if (*p != '\0')
        return -1;
    if (y < 2000) {
        *bad_range = 2;
        return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59 ||
        oh > 23 || om > 59) {
        *bad_range = 1;
        return -1;
    }
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (long long)t - sign * (oh * 3600LL + om * 60LL);
    return 0;
}

static int set_credential_expires(struct cfg_impl *c, const char *key, const char *v,
                                  const struct where *w, phc_errbuf *err)
{
    long long epoch;
    int range;
    if (parse_iso8601(v, &epoch, &range) != 0) {
        const char *kind = strlen(v) > 10 ? "date and time" : "date";
        if (range == 2)
            return phc__config_bad(err, w, key, "'%.40s' is not a valid %s (years 2000 to 9999)", v,
                                   kind);
        if (range)
            return phc__config_bad(err, w, key, "'%.40s' is not a valid %s", v, kind);
        return phc__config_bad(
            err, w, key,
            "must be an ISO-8601 date YYYY-MM-DD, optionally followed by THH:MM:SS and Z "
            "or +HH:MM/-HH:MM");
    }
    int rc = dup_into(&c->pub.credential_expires, v, err);
    if (rc == PHC_OK)
        c->pub.credential_expires_epoch = epoch;
    return rc;
}

static int set_seconds(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                       phc_errbuf *err)
{
    long long n;
    const char *end;
    if (parse_uint(v, &end, &n) != 0 || *end != '\0' || n < 1 || n > MAX_TIMEOUT)
        return phc__config_bad(err, w, key, "must be a whole number of seconds from 1 to %d",
                               MAX_TIMEOUT);
    if (strcmp(key, "timeout") == 0)
        c->pub.timeout = (long)n;
    else
        c->pub.connect_timeout = (long)n;
    return PHC_OK;
}

static int set_max_response_bytes(struct cfg_impl *c, const char *key, const char *v,
                                  const struct where *w, phc_errbuf *err)
{
    long long n, mult = 1;
    const char *end;
    int ok = parse_uint(v, &end, &n) == 0;
    if (ok && *end != '\0') {
        switch (*end) {
        case 'k':
        case 'K':
            mult = 1024;
            break;
        case 'm':
        case 'M':
            mult = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mult = 1024 * 1024 * 1024;
            break;
        default:
            ok = 0;
        }
        ok = ok && end[1] == '\0';
    }
    ok = ok && n >= 1 && n <= MAX_RESPONSE_LIMIT / mult;
    if (!ok)
        return phc__config_bad(
            err, w, key,
            "must be a size from 1 byte to 1G: a number, optionally with k, M or G "
            "(1024-based)");
    c->pub.max_response_bytes = (size_t)(n * mult);
    return PHC_OK;
}

/* min_rsa_bits: the weakest RSA key phc install accepts in a certificate. Not below 2048 (the
 * connector refuses smaller keys anyway), not above 4096 (the largest key phc generates). */
static int set_min_rsa_bits(struct cfg_impl *c, const char *key, const char *v,
                            const struct where *w, phc_errbuf *err)
{
    long long n;
    const char *end;
    if (parse_uint(v, &end, &n) != 0 || *end != '\0' || n < 2048 || n > 4096)
        return phc__config_bad(err, w, key, "must be a number of bits from 2048 to 4096");
    c->pub.min_rsa_bits = (int)n;
    return PHC_OK;
}

/* reload_interval: seconds between a running client's looks at the token for a new
 * certificate; 0 turns the periodic look off (phc_client_reload still works). */
static int set_reload_interval(struct cfg_impl *c, const char *key, const char *v,
                               const struct where *w, phc_errbuf *err)
{
    long long n;
    const char *end;
    if (parse_uint(v, &end, &n) != 0 || *end != '\0' || n > MAX_RELOAD_INTERVAL)
        return phc__config_bad(err, w, key, "must be a whole number of seconds from 0 (off) to %d",
                               MAX_RELOAD_INTERVAL);
    c->pub.reload_interval = (long)n;
    return PHC_OK;
}

/* min_tls_version: 1.2 (default) or 1.3; nothing older is ever offered. */
static int set_min_tls_version(struct cfg_impl *c, const char *key, const char *v,
                               const struct where *w, phc_errbuf *err)
{
    if (strcmp(v, "1.2") == 0)
        c->pub.min_tls_version = 12;
    else if (strcmp(v, "1.3") == 0)
        c->pub.min_tls_version = 13;
    else
        return phc__config_bad(err, w, key, "must be 1.2 or 1.3");
    return PHC_OK;
}

/* x509_profile: strict (default) or compatible; docs/trust.md says what compatible drops. */
static int set_x509_profile(struct cfg_impl *c, const char *key, const char *v,
                            const struct where *w, phc_errbuf *err)
{
    if (strcmp(v, "strict") == 0)
        c->pub.x509_profile = PHC_X509_STRICT;
    else if (strcmp(v, "compatible") == 0)
        c->pub.x509_profile = PHC_X509_COMPATIBLE;
    else
        return phc__config_bad(err, w, key, "must be strict or compatible");
    return PHC_OK;
}

/* strict_modes: what a file with unsafe ownership or permissions (phc_config_check_files)
 * is - a warning, an error, or not looked at. */
static int set_strict_modes(struct cfg_impl *c, const char *key, const char *v,
                            const struct where *w, phc_errbuf *err)
{
    if (strcmp(v, "warn") == 0)
        c->pub.strict_modes = PHC__MODES_WARN;
    else if (strcmp(v, "error") == 0)
        c->pub.strict_modes = PHC__MODES_ERROR;
    else if (strcmp(v, "off") == 0)
        c->pub.strict_modes = PHC__MODES_OFF;
    else
        return phc__config_bad(err, w, key, "must be warn, error or off");
    return PHC_OK;
}

/* The agent's keys: checked here, used by the phc tool (config_agent.h). */
static int set_agent_key(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                         phc_errbuf *err)
{
    (void)c;
    char why[256];
    return phc__config_agent_check(key, v, why, sizeof(why)) == 0
               ? PHC_OK
               : phc__config_bad(err, w, key, "%s", why);
}

/* ------------------------------------------------------------------------------------ */
/* The one validation path */

typedef int (*setter_fn)(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                         phc_errbuf *err);

static const setter_fn setters[K_COUNT] = {
    [K_URL] = set_url,
    [K_CA_FILE] = set_path,
    [K_CA_SHA256] = set_ca_sha256,
    [K_PINNED_IPS] = set_pinned_ips,
    [K_SOURCE_ADDRESS] = set_source_address,
    [K_PKCS11_MODULE] = set_path,
    [K_KEY] = set_key,
    [K_CERT] = set_cert,
    [K_PIN] = set_pin,
    [K_CLIENT_ID] = set_client_id,
    [K_CLIENT_SECRET] = set_client_secret,
    [K_TOKEN_PATH] = set_token_path,
    [K_CREDENTIAL_EXPIRES] = set_credential_expires,
    [K_CONNECT_TIMEOUT] = set_seconds,
    [K_TIMEOUT] = set_seconds,
    [K_MAX_RESPONSE_BYTES] = set_max_response_bytes,
    [K_MIN_RSA_BITS] = set_min_rsa_bits,
    [K_RELOAD_INTERVAL] = set_reload_interval,
    [K_MIN_TLS_VERSION] = set_min_tls_version,
    [K_X509_PROFILE] = set_x509_profile,
    [K_STRICT_MODES] = set_strict_modes,
    [K_AGENT] = set_agent_key,
    [K_AGENT_LISTEN] = set_agent_key,
    [K_AGENT_ALLOW_USERS] = set_agent_key,
    [K_AGENT_GROUP] = set_agent_key,
    [K_AGENT_PATHS] = set_agent_key,
    [K_AGENT_MAX_CLIENTS] = set_agent_key,
    [K_AGENT_MAX_REQUEST_BYTES] = set_agent_key,
};

int phc__config_find_key(const char *key)
{
    for (int i = 0; i < K_COUNT; i++)
        if (strcmp(phc__config_keys[i], key) == 0)
            return i;
    return -1;
}

/* The part of value that is a file path for key id (NULL: none): ca_file and pkcs11_module
 * whole, cert unless it is a PKCS#11 URI, pin and client_secret after "file:". */
static const char *path_part(int id, const char *value)
{
    switch (id) {
    case K_CA_FILE:
    case K_PKCS11_MODULE:
        return value;
    case K_CERT:
        return phc__config_is_p11_uri(value) || has_pin_attr(value) ? NULL : value;
    case K_PIN:
    case K_CLIENT_SECRET:
        return strncmp(value, "file:", 5) == 0 && value[5] ? value + 5 : NULL;
    default:
        return NULL;
    }
}

/* Every path a config holds is absolute: a relative one (anything not starting with '/',
 * a bare module name included - no library search path chooses the code that holds the
 * key) is joined to the config file's directory, or for a config without a file (parsed
 * from memory, set programmatically) to the working directory at the time it is set, so
 * that neither a later chdir nor the directory phc runs from changes what is opened.
 * *out: the value to use, value itself or a new string the caller frees (*fresh = 1). */
static int resolve_path(const char **out, char **fresh, const struct cfg_impl *c, int id,
                        const char *value, const struct where *w, phc_errbuf *err)
{
    *out = value;
    *fresh = NULL;
    const char *rel = path_part(id, value);
    if (!rel || rel[0] == '/')
        return PHC_OK;
    char cwd[4096];
    const char *base = c->base_dir;
    if (!base) {
        if (!getcwd(cwd, sizeof(cwd)))
            return phc__config_bad(err, w, phc__config_keys[id],
                                   "relative path, and the working directory is unknown: %s",
                                   strerror(errno));
        base = cwd;
    }
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;                                               /* "./x" is "x" */
    size_t plen = id == K_PIN || id == K_CLIENT_SECRET ? 5 : 0; /* keeps "file:" */
    size_t size = plen + strlen(base) + 1 + strlen(rel) + 1;
    char *r = malloc(size);
    if (!r)
        return phc__config_oom(err);
    snprintf(r, size, "%.*s%s%s%s", (int)plen, value, base,
             base[strlen(base) - 1] == '/' ? "" : "/", rel);
    *out = *fresh = r;
    return PHC_OK;
}

int phc__config_set_value(struct cfg_impl *c, const char *key, const char *value,
                          const struct where *w, phc_errbuf *err)
{
    int id = phc__config_find_key(key);
    if (id < 0)
        return phc__config_unknown_key(err, w, key);
    if (!value)
        return phc__config_bad(err, w, key, "has no value");
    if (value[0] == '\0')
        return phc__config_bad(err, w, key, "must not be empty");
    char *fresh;
    int rc = resolve_path(&value, &fresh, c, id, value, w, err);
    if (rc != PHC_OK)
        return rc;
    /* phc_config_get gives the path in effect, so a tool that writes it elsewhere (an
     * engine configuration) names the same file */
    char *raw = fresh ? fresh : strdup(value);
    if (!raw)
        return phc__config_oom(err);
    rc = setters[id](c, key, value, w, err);
    if (rc != PHC_OK) {
        free(raw);
        return rc;
    }
    replace_str(&c->raw[id], raw);
    return PHC_OK;
}
