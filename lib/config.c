/* The configuration: an OpenSSL-syntax INI file (section [phconnect]) or keys set one by one.
 *
 * Every key goes through one validation path (set_value, reached from phc_config_set and
 * from the file parser), so a value the file refuses is refused programmatically too, with
 * the same words. Only the prefix of a message differs:
 *     config /etc/phconnect/phconnect.cnf line 7: key 'url': only https is allowed ...
 *     config key 'url': only https is allowed ...
 *
 * The file is read with OpenSSL's NCONF, which brings OpenSSL's config syntax with it:
 *  - '#' starts a comment (also in the middle of a value, unless quoted);
 *  - a value may be quoted ("..." or '...') and backslash escapes are processed
 *    (\n, \\, \#, \$, a trailing backslash continues the line);
 *  - '$name', '${name}', '$section::name' and '$ENV::NAME' are expanded, and a reference to
 *    an undefined variable is a syntax error. A value that contains a literal '$' must
 *    escape it ('\$') or be in single quotes ('/opt/a$b'). Since every key outside the
 *    known ones is refused, only '$ENV::NAME' is useful in practice.
 *  - '.include' is refused: every key must be in this file, with a line number.
 * Percent-escapes and ';' (PKCS#11 URIs) pass through unchanged.
 *
 * NCONF keeps no line numbers per value, so the text is also scanned with a small scanner
 * that follows NCONF's line structure (continuations, comments, section headers, the
 * "section::key" form) to put a line number on each key and to find keys given twice
 * (NCONF silently keeps the last).
 *
 * The raw value of each key is kept for phc_config_get in a private extension of struct
 * phc_config; a phc_config is therefore only ever allocated here.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* timegm, strncasecmp */
#endif

#include "config.h"
#include "config_agent.h"
#include "err.h"
#include "x509_profile.h"

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <p11-kit/uri.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECTION "phconnect"
#define DEFAULT_PATH "/etc/phconnect/phconnect.cnf"
#define CONFIG_MAX_BYTES (1024 * 1024)
#define MAX_CA_SHA256 64 /* trust.c checks at most this many pins */

#define DEFAULT_TOKEN_PATH "/v1/auth/token"
#define DEFAULT_CONNECT_TIMEOUT 10
#define DEFAULT_TIMEOUT 30
#define DEFAULT_MAX_RESPONSE ((size_t)16 * 1024 * 1024)
#define MAX_TIMEOUT 3600
#define MAX_RESPONSE_LIMIT (1024LL * 1024 * 1024)
#define DEFAULT_MIN_RSA_BITS 2048
#define DEFAULT_RELOAD_INTERVAL 60
#define MAX_RELOAD_INTERVAL 86400

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
    K_AGENT,
    K_AGENT_LISTEN,
    K_AGENT_ALLOW_USERS,
    K_AGENT_GROUP,
    K_AGENT_PATHS,
    K_AGENT_MAX_CLIENTS,
    K_AGENT_MAX_REQUEST_BYTES,
    K_COUNT
};

/* The keys of CONTRACT.md, in the order a reader meets them there, then phconnect's own. */
static const char *const key_names[K_COUNT] = {
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
    [K_AGENT] = "agent",
    [K_AGENT_LISTEN] = "agent_listen",
    [K_AGENT_ALLOW_USERS] = "agent_allow_users",
    [K_AGENT_GROUP] = "agent_group",
    [K_AGENT_PATHS] = "agent_paths",
    [K_AGENT_MAX_CLIENTS] = "agent_max_clients",
    [K_AGENT_MAX_REQUEST_BYTES] = "agent_max_request_bytes",
};

/* The public struct plus what only this file needs. pub comes first, so a phc_config *
 * handed out by this file points at a cfg_impl. */
struct cfg_impl {
    struct phc_config pub;
    char *raw[K_COUNT]; /* values as given, for phc_config_get */
};

static struct cfg_impl *impl(phc_config *cfg)
{
    return (struct cfg_impl *)cfg;
}

static const struct cfg_impl *cimpl(const phc_config *cfg)
{
    return (const struct cfg_impl *)cfg;
}

static int oom(phc_errbuf *err)
{
    return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
}

/* ------------------------------------------------------------------------------------ */
/* Messages */

/* "<where>: key 'K': <reason>". reason never contains a value that may be secret: callers
 * only quote values of keys that hold no secret and no secret source. */
static int bad(phc_errbuf *err, const struct where *w, const char *key, const char *fmt, ...)
    PHC_PRINTF(4, 5);

static int bad(phc_errbuf *err, const struct where *w, const char *key, const char *fmt, ...)
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

static int unknown_key(phc_errbuf *err, const struct where *w, const char *key)
{
    char loc[PHC_ERRMSG_MAX];
    where_str(loc, sizeof(loc), w);
    const char *best = NULL;
    size_t bestd = 3; /* suggest only within distance 2 */
    for (size_t i = 0; i < K_COUNT; i++) {
        size_t d = edit_distance(key, key_names[i]);
        if (d < bestd) {
            bestd = d;
            best = key_names[i];
        }
    }
    if (best)
        return phc__err(err, PHC_ERR_CONFIG, "%s: unknown key '%.64s' (did you mean '%s'?)", loc,
                        key, best);
    return phc__err(err, PHC_ERR_CONFIG, "%s: unknown key '%.64s'", loc, key);
}

/* ------------------------------------------------------------------------------------ */
/* Small parsers */

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t';
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
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
    while (p < e && is_ws(*p))
        p++;
    const char *q = e;
    while (q > p && is_ws(q[-1]))
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

/* "file:/absolute/path" or "env:NAME". */
static int is_secret_source(const char *v)
{
    if (strncmp(v, "file:", 5) == 0)
        return v[5] == '/' && v[6] != '\0';
    if (strncmp(v, "env:", 4) == 0)
        return is_env_name(v + 4);
    return 0;
}

static int is_p11_uri(const char *v)
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
        return oom(err);
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
        return bad(err, w, key, "%s", usage);
    size_t slen = (size_t)(sep - v);
    if (slen != 5 || strncasecmp(v, "https", 5) != 0) {
        /* Quote the scheme only when it looks like one: the part before "://" of a garbled
         * value could hold anything. */
        int scheme_like = slen > 0 && slen <= 16 && is_alpha(v[0]);
        for (size_t i = 0; scheme_like && i < slen; i++)
            scheme_like = is_alpha(v[i]) || is_digit(v[i]) || strchr("+-.", v[i]);
        if (scheme_like)
            return bad(err, w, key, "only https is allowed, not '%.*s' (%s)", (int)slen, v, usage);
        return bad(err, w, key, "only https is allowed (%s)", usage);
    }

    const char *auth = sep + 3;
    const char *end = auth + strcspn(auth, "/?#");
    /* userinfo may hold a password: name the problem, never the text */
    if (memchr(auth, '@', (size_t)(end - auth)))
        return bad(err, w, key, "must not contain user information (user@ or user:password@)");
    if (end == auth)
        return bad(err, w, key, "has no host (%s)", usage);

    char host[256];
    char norm[INET6_ADDRSTRLEN + 1];
    const char *port_s = NULL, *port_e = end;
    int ipv6 = 0;
    if (*auth == '[') {
        const char *rb = memchr(auth, ']', (size_t)(end - auth));
        if (!rb)
            return bad(err, w, key, "IPv6 address is missing its closing ']'");
        const char *h = auth + 1;
        size_t hlen = (size_t)(rb - h);
        if (parse_ip(h, hlen, norm, sizeof(norm)) != AF_INET6)
            return bad(err, w, key, "'[%.*s]' is not an IPv6 address", (int)(hlen > 64 ? 64 : hlen),
                       h);
        snprintf(host, sizeof(host), "%s", norm);
        ipv6 = 1;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return bad(err, w, key, "unexpected characters after ']' (%s)", usage);
            port_s = rb + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', (size_t)(end - auth));
        const char *he = colon ? colon : end;
        size_t hlen = (size_t)(he - auth);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return bad(err, w, key, "an IPv6 address must be in brackets: https://[addr]:port");
        if (hlen == 0)
            return bad(err, w, key, "has no host (%s)", usage);
        if (hlen >= sizeof(host))
            return bad(err, w, key, "host name is longer than 253 characters");
        int numeric = 1;
        for (size_t i = 0; i < hlen; i++)
            numeric = numeric && (is_digit(auth[i]) || auth[i] == '.');
        if (numeric) {
            if (parse_ip(auth, hlen, norm, sizeof(norm)) != AF_INET)
                return bad(err, w, key, "'%.*s' is not a valid IPv4 address",
                           (int)(hlen > 64 ? 64 : hlen), auth);
            snprintf(host, sizeof(host), "%s", norm);
        } else {
            if (!is_dns_name(auth, hlen))
                return bad(err, w, key,
                           "'%.*s' is not a valid host name (letters, digits, '-' and '.')",
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
            return bad(err, w, key, "port must be a number from 1 to 65535");
    }

    if (*end != '\0' && strcmp(end, "/") != 0) {
        if (strpbrk(end, "?#"))
            return bad(err, w, key, "must not have a query or fragment (%s)", usage);
        return bad(err, w, key,
                   "must not have a path ('%.64s'): the path is given with each request", end);
    }

    size_t ulen = strlen(host) + 32;
    char *url = malloc(ulen);
    char *h = strdup(host);
    if (!url || !h) {
        free(url);
        free(h);
        return oom(err);
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
        return bad(err, w, key, "more than %d fingerprints", MAX_CA_SHA256);
    unsigned char(*fps)[PHC_SHA256_LEN] = calloc(n, sizeof(*fps));
    if (!fps)
        return oom(err);

    int rc = PHC_OK;
    size_t count = 0;
    const char *pos = v, *item;
    size_t len;
    while (next_item(&pos, &item, &len)) {
        size_t idx = count + 1, hex = 0, colons = 0;
        if (len == 0) {
            rc = bad(err, w, key, "fingerprint %zu is empty (a stray comma?)", idx);
            goto out;
        }
        for (size_t i = 0; i < len; i++) {
            if (item[i] == ':') {
                colons++;
            } else if (hexval(item[i]) >= 0) {
                hex++;
            } else {
                unsigned char ch = (unsigned char)item[i];
                if (ch > 0x20 && ch < 0x7f)
                    rc = bad(err, w, key, "fingerprint %zu: '%c' is not a hex digit", idx, ch);
                else
                    rc = bad(err, w, key, "fingerprint %zu: byte 0x%02x is not a hex digit", idx,
                             ch);
                goto out;
            }
        }
        if (hex != 2 * PHC_SHA256_LEN) {
            rc =
                bad(err, w, key, "fingerprint %zu has %zu hex digits; a SHA-256 fingerprint has %d",
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
            rc = bad(err, w, key,
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
                fp[j / 2] = (unsigned char)(hexval(item[i]) << 4);
            else
                fp[j / 2] |= (unsigned char)hexval(item[i]);
            j++;
        }
        for (size_t i = 0; i < count; i++)
            if (memcmp(fps[i], fp, PHC_SHA256_LEN) == 0) {
                rc = bad(err, w, key, "fingerprint %zu repeats fingerprint %zu", idx, i + 1);
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
            rc = bad(err, w, key, "address %zu is empty (a stray comma?)", count + 1);
            goto out;
        }
        if (!parse_ip(item, len, norm, sizeof(norm))) {
            rc = bad(err, w, key,
                     "'%.*s' is not an IP address (pinned_ips takes numeric IPv4/IPv6 addresses, "
                     "no host names)",
                     (int)(len > 64 ? 64 : len), item);
            goto out;
        }
        if (count == PHC_MAX_PINNED) {
            rc = bad(err, w, key, "more than %d addresses", PHC_MAX_PINNED);
            goto out;
        }
        for (size_t i = 0; i < count; i++)
            if (strcmp(ips[i], norm) == 0) {
                rc = bad(err, w, key, "address %s is listed twice", norm);
                goto out;
            }
        if (!(ips[count] = strdup(norm))) {
            rc = oom(err);
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
        return bad(err, w, key, "'%.64s' is not an IP address (a numeric IPv4/IPv6 address)", v);
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
        while (is_ws(*n))
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

static const char *class_name(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY:
        return "private";
    case CKO_PUBLIC_KEY:
        return "public";
    case CKO_CERTIFICATE:
        return "cert";
    case CKO_DATA:
        return "data";
    case CKO_SECRET_KEY:
        return "secret-key";
    default:
        return "other";
    }
}

/* A PKCS#11 URI naming one kind of object, without PIN. The URI is not quoted in messages:
 * a mistyped one might still carry a PIN. */
static int check_p11_uri(const char *key, const char *v, CK_OBJECT_CLASS want, const char *what,
                         const struct where *w, phc_errbuf *err)
{
    if (has_pin_attr(v))
        return bad(err, w, key, "PIN must not be inside the URI; use the pin key");
    if (!is_p11_uri(v))
        return bad(err, w, key, "must be a PKCS#11 URI (pkcs11:token=...;object=...)");

    P11KitUri *uri = p11_kit_uri_new();
    if (!uri)
        return oom(err);
    int rc = PHC_OK;
    int prc = p11_kit_uri_parse(v, P11_KIT_URI_FOR_ANY, uri);
    if (prc != P11_KIT_URI_OK) {
        rc = bad(err, w, key, "not a valid PKCS#11 URI: %s", p11_kit_uri_message(prc));
        goto out;
    }
    if (p11_kit_uri_get_pin_value(uri) || p11_kit_uri_get_pin_source(uri)) {
        rc = bad(err, w, key, "PIN must not be inside the URI; use the pin key");
        goto out;
    }
    if (p11_kit_uri_any_unrecognized(uri)) {
        /* a mistyped attribute would otherwise be ignored and widen the match */
        char name[40];
        unknown_attr(v, name, sizeof(name));
        rc = bad(err, w, key, "unknown attribute '%s' in the PKCS#11 URI", name);
        goto out;
    }
    if (!p11_kit_uri_get_attribute(uri, CKA_LABEL) && !p11_kit_uri_get_attribute(uri, CKA_ID)) {
        rc = bad(err, w, key, "the PKCS#11 URI must name the %s (object= or id=)", what);
        goto out;
    }
    CK_ATTRIBUTE *cls = p11_kit_uri_get_attribute(uri, CKA_CLASS);
    if (cls && cls->pValue && cls->ulValueLen == sizeof(CK_OBJECT_CLASS)) {
        CK_OBJECT_CLASS got;
        memcpy(&got, cls->pValue, sizeof(got));
        if (got != want) {
            rc = bad(err, w, key, "type=%s does not name a %s; use type=%s or leave type out",
                     class_name(got), what, class_name(want));
            goto out;
        }
    }
out:
    p11_kit_uri_free(uri);
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
    if (is_p11_uri(v) || has_pin_attr(v)) {
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
        return bad(err, w, key,
                   "pin must be file:/path or env:NAME (the PIN itself never goes in the config)");
    return dup_into(&c->pub.pin, v, err);
}

static int set_client_id(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                         phc_errbuf *err)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return bad(err, w, key, "must be printable ASCII");
    return dup_into(&c->pub.client_id, v, err);
}

static int set_client_secret(struct cfg_impl *c, const char *key, const char *v,
                             const struct where *w, phc_errbuf *err)
{
    if (is_p11_uri(v)) {
        int rc = check_p11_uri(key, v, CKO_DATA, "data object", w, err);
        if (rc)
            return rc;
    } else if (!is_secret_source(v)) {
        return bad(err, w, key,
                   "client_secret must be file:/path, env:NAME or a pkcs11: URI (the secret "
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
        return bad(err, w, key, "must start with '/'");
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return bad(err, w, key,
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
            return bad(err, w, key, "'%.40s' is not a valid %s (years 2000 to 9999)", v, kind);
        if (range)
            return bad(err, w, key, "'%.40s' is not a valid %s", v, kind);
        return bad(err, w, key,
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
        return bad(err, w, key, "must be a whole number of seconds from 1 to %d", MAX_TIMEOUT);
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
        return bad(err, w, key,
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
        return bad(err, w, key, "must be a number of bits from 2048 to 4096");
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
        return bad(err, w, key, "must be a whole number of seconds from 0 (off) to %d",
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
        return bad(err, w, key, "must be 1.2 or 1.3");
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
        return bad(err, w, key, "must be strict or compatible");
    return PHC_OK;
}

/* The agent's keys: checked here, used by the phc tool (config_agent.h). */
static int set_agent_key(struct cfg_impl *c, const char *key, const char *v, const struct where *w,
                         phc_errbuf *err)
{
    (void)c;
    char why[256];
    return phc__config_agent_check(key, v, why, sizeof(why)) == 0 ? PHC_OK
                                                                  : bad(err, w, key, "%s", why);
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
    [K_AGENT] = set_agent_key,
    [K_AGENT_LISTEN] = set_agent_key,
    [K_AGENT_ALLOW_USERS] = set_agent_key,
    [K_AGENT_GROUP] = set_agent_key,
    [K_AGENT_PATHS] = set_agent_key,
    [K_AGENT_MAX_CLIENTS] = set_agent_key,
    [K_AGENT_MAX_REQUEST_BYTES] = set_agent_key,
};

static int find_key(const char *key)
{
    for (int i = 0; i < K_COUNT; i++)
        if (strcmp(key_names[i], key) == 0)
            return i;
    return -1;
}

static int set_value(struct cfg_impl *c, const char *key, const char *value, const struct where *w,
                     phc_errbuf *err)
{
    int id = find_key(key);
    if (id < 0)
        return unknown_key(err, w, key);
    if (!value)
        return bad(err, w, key, "has no value");
    if (value[0] == '\0')
        return bad(err, w, key, "must not be empty");
    char *raw = strdup(value);
    if (!raw)
        return oom(err);
    int rc = setters[id](c, key, value, w, err);
    if (rc != PHC_OK) {
        free(raw);
        return rc;
    }
    replace_str(&c->raw[id], raw);
    return PHC_OK;
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
        return oom(err);
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
        return oom(err);
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
    return set_value(impl(cfg), key, value, &w, err);
}

const char *phc_config_get(const phc_config *cfg, const char *key)
{
    if (!cfg || !key)
        return NULL;
    int id = find_key(key);
    return id < 0 ? NULL : cimpl(cfg)->raw[id];
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
    struct cfg_impl *c = impl(cfg);
    for (size_t i = 0; i < K_COUNT; i++)
        free(c->raw[i]);
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
    if (cimpl(cfg)->raw[K_AGENT] && !cfg->url)
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
    int secret_p11 = cfg->client_secret && is_p11_uri(cfg->client_secret);
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
/* The file parser */

/* A key line as NCONF sees it. The scanner follows NCONF's line structure closely enough
 * to number keys; NCONF itself has already accepted the text when it runs. */
struct scanner {
    const char *p, *end;
    long line;         /* physical lines consumed */
    char section[128]; /* current section; NCONF's is "default" before any header */
};

struct keyline {
    long line;
    char section[128];
    const char *key;
    size_t klen;
};

static void scan_init(struct scanner *s, const char *text, size_t len)
{
    s->p = text;
    s->end = text + len;
    s->line = 0;
    snprintf(s->section, sizeof(s->section), "default");
}

/* One physical line without its line end; advances s. */
static void phys_line(struct scanner *s, const char **b, const char **e)
{
    const char *nl = memchr(s->p, '\n', (size_t)(s->end - s->p));
    *b = s->p;
    *e = nl ? nl : s->end;
    s->p = nl ? nl + 1 : s->end;
    s->line++;
    while (*e > *b && (*e)[-1] == '\r')
        (*e)--;
}

/* NCONF joins a line ending in a backslash (not itself escaped) with the next. */
static int continues(const char *b, const char *e)
{
    return e > b && e[-1] == '\\' && (e - b == 1 || e[-2] != '\\');
}

/* Next key line (first physical line of a logical line with a key); 0 at the end. */
static int scan_next(struct scanner *s, struct keyline *kl)
{
    while (s->p < s->end) {
        const char *b, *e;
        phys_line(s, &b, &e);
        long first = s->line;
        const char *cb = b, *ce = e;
        while (continues(cb, ce) && s->p < s->end)
            phys_line(s, &cb, &ce);

        while (b < e && is_ws(*b))
            b++;
        if (b == e || *b == '#')
            continue;
        if (*b == '[') {
            const char *rb = memchr(b, ']', (size_t)(e - b));
            const char *nb = b + 1, *ne = rb ? rb : e;
            while (nb < ne && is_ws(*nb))
                nb++;
            while (ne > nb && is_ws(ne[-1]))
                ne--;
            snprintf(s->section, sizeof(s->section), "%.*s", (int)(ne - nb), nb);
            continue;
        }
        const char *k = b;
        while (b < e && !is_ws(*b) && *b != '=')
            b++;
        kl->line = first;
        snprintf(kl->section, sizeof(kl->section), "%s", s->section);
        kl->key = k;
        kl->klen = (size_t)(b - k);
        /* "section::key" puts the key in another section */
        for (size_t i = 0; i + 1 < kl->klen; i++)
            if (k[i] == ':' && k[i + 1] == ':') {
                snprintf(kl->section, sizeof(kl->section), "%.*s", (int)i, k);
                kl->key = k + i + 2;
                kl->klen -= i + 2;
                break;
            }
        return 1;
    }
    return 0;
}

static int keyline_is(const struct keyline *kl, const char *section, const char *key)
{
    return strcmp(kl->section, section) == 0 && strlen(key) == kl->klen &&
           memcmp(kl->key, key, kl->klen) == 0;
}

/* Lines of the first two occurrences of section/key (0 when absent). */
static void key_lines(const char *text, size_t len, const char *section, const char *key,
                      long *first, long *second)
{
    struct scanner s;
    struct keyline kl;
    *first = *second = 0;
    scan_init(&s, text, len);
    while (scan_next(&s, &kl)) {
        if (!keyline_is(&kl, section, key))
            continue;
        if (!*first) {
            *first = kl.line;
        } else {
            *second = kl.line;
            return;
        }
    }
}

static int is_directive(const struct keyline *kl, const char *name)
{
    return kl->klen == strlen(name) && memcmp(kl->key, name, kl->klen) == 0;
}

/* Refusals that must come before NCONF sees the text. */
static int precheck(const char *text, size_t len, const char *name, phc_errbuf *err)
{
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        long line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        return phc__err(err, PHC_ERR_CONFIG, "config %s line %ld: contains a NUL byte", name, line);
    }
    /* NCONF would open the named file: every key must be in this one, with its line. */
    struct scanner s;
    struct keyline kl;
    scan_init(&s, text, len);
    while (scan_next(&s, &kl))
        if (is_directive(&kl, ".include"))
            return phc__err(err, PHC_ERR_CONFIG, "config %s line %ld: .include is not supported",
                            name, kl.line);
    return PHC_OK;
}

/* Every key must be in [phconnect]: one under a misspelt header would be silently dropped. */
static int check_sections(const CONF *conf, const char *text, size_t len, const char *name,
                          phc_errbuf *err)
{
    struct scanner s;
    struct keyline kl;
    scan_init(&s, text, len);
    while (scan_next(&s, &kl)) {
        if (strcmp(kl.section, SECTION) == 0 || is_directive(&kl, ".pragma"))
            continue;
        if (strcmp(kl.section, "default") == 0)
            return phc__err(err, PHC_ERR_CONFIG,
                            "config %s line %ld: key '%.*s' is outside the [" SECTION "] section",
                            name, kl.line, (int)(kl.klen > 64 ? 64 : kl.klen), kl.key);
        return phc__err(err, PHC_ERR_CONFIG,
                        "config %s line %ld: key '%.*s' is in section [%.64s]; phconnect reads "
                        "only [" SECTION "]",
                        name, kl.line, (int)(kl.klen > 64 ? 64 : kl.klen), kl.key, kl.section);
    }

    /* The scanner approximates NCONF; let NCONF have the last word (no line then). */
    int rc = PHC_OK;
    STACK_OF(OPENSSL_CSTRING) *names = NCONF_get_section_names(conf);
    if (!names)
        return phc__err_ossl(err, PHC_ERR_INTERNAL, "config %s: cannot list sections", name);
    for (int i = 0; i < sk_OPENSSL_CSTRING_num(names) && rc == PHC_OK; i++) {
        const char *sec = sk_OPENSSL_CSTRING_value(names, i);
        if (strcmp(sec, SECTION) == 0)
            continue;
        STACK_OF(CONF_VALUE) *vals = NCONF_get_section(conf, sec);
        if (vals && sk_CONF_VALUE_num(vals) > 0)
            rc = phc__err(err, PHC_ERR_CONFIG,
                          "config %s: key '%.64s' is in section [%.64s]; phconnect reads only "
                          "[" SECTION "]",
                          name, sk_CONF_VALUE_value(vals, 0)->name, sec);
    }
    sk_OPENSSL_CSTRING_free(names);
    return rc;
}

int phc_config_parse(phc_config **out, const char *text, size_t len, const char *name,
                     phc_errbuf *err)
{
    if (!out)
        return phc__err(err, PHC_ERR_INTERNAL, "phc_config_parse: out is NULL");
    *out = NULL;
    if (!name)
        name = "(memory)";
    if (!text)
        text = "";
    if (len > CONFIG_MAX_BYTES)
        return phc__err(err, PHC_ERR_CONFIG, "config %s: larger than %d bytes", name,
                        CONFIG_MAX_BYTES);

    int rc = precheck(text, len, name, err);
    if (rc != PHC_OK)
        return rc;

    phc_config *cfg = NULL;
    CONF *conf = NCONF_new(NULL);
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (!conf || !bio) {
        rc = phc__err_ossl(err, PHC_ERR_INTERNAL, "config %s: out of memory", name);
        goto out;
    }
    long eline = 0;
    if (NCONF_load_bio(conf, bio, &eline) <= 0) {
        rc = phc__err_ossl(err, PHC_ERR_CONFIG, "config %s line %ld", name, eline);
        goto out;
    }
    if ((rc = check_sections(conf, text, len, name, err)) != PHC_OK)
        goto out;

    ERR_set_mark();
    STACK_OF(CONF_VALUE) *vals = NCONF_get_section(conf, SECTION);
    ERR_pop_to_mark();
    if (!vals) {
        rc = phc__err(err, PHC_ERR_CONFIG, "config %s: no [" SECTION "] section", name);
        goto out;
    }

    if ((rc = phc_config_new(&cfg, err)) != PHC_OK)
        goto out;
    if (!(cfg->name = strdup(name))) {
        rc = oom(err);
        goto out;
    }
    for (int i = 0; i < sk_CONF_VALUE_num(vals); i++) {
        const CONF_VALUE *v = sk_CONF_VALUE_value(vals, i);
        struct where w = {name, 0};
        long second;
        key_lines(text, len, SECTION, v->name, &w.line, &second);
        if (second) {
            rc = phc__err(err, PHC_ERR_CONFIG,
                          "config %s line %ld: key '%.64s' is given twice (lines %ld and %ld)",
                          name, second, v->name, w.line, second);
            goto out;
        }
        if ((rc = set_value(impl(cfg), v->name, v->value, &w, err)) != PHC_OK)
            goto out;
    }
    if ((rc = phc_config_validate(cfg, err)) != PHC_OK)
        goto out;
    *out = cfg;
    cfg = NULL;
out:
    phc_config_free(cfg);
    BIO_free(bio);
    NCONF_free(conf);
    return rc;
}

int phc_config_load(phc_config **out, const char *path, phc_errbuf *err)
{
    if (!out || !path)
        return phc__err(err, PHC_ERR_INTERNAL, "phc_config_load: out or path is NULL");
    *out = NULL;
    char *buf = NULL;
    int rc = PHC_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return phc__err(err, PHC_ERR_CONFIG, "config %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = phc__err(err, PHC_ERR_CONFIG, "config %s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = phc__err(err, PHC_ERR_CONFIG, "config %s: not a regular file", path);
        goto out;
    }
    /* one byte more than allowed, to tell a file at the limit from a larger one */
    if (!(buf = malloc(CONFIG_MAX_BYTES + 1))) {
        rc = oom(err);
        goto out;
    }
    size_t len = 0;
    while (len <= CONFIG_MAX_BYTES) {
        ssize_t n = read(fd, buf + len, CONFIG_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = phc__err(err, PHC_ERR_CONFIG, "config %s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONFIG_MAX_BYTES) {
        rc = phc__err(err, PHC_ERR_CONFIG, "config %s: larger than %d bytes", path,
                      CONFIG_MAX_BYTES);
        goto out;
    }
    rc = phc_config_parse(out, buf, len, path, err);
out:
    free(buf);
    close(fd);
    return rc;
}
