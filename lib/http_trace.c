#include "http_trace.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define TRACE_LINE 1024
#define REDACTED "[redacted]"

/* Names that are secret whole, and words that make any name secret (X-Api-Key,
 * X-Auth-Token, access_token, client_secret, Session-Id, X-Amz-Signature...). */
static const char *const secret_names[] = {"authorization", "proxy-authorization", "cookie",
                                           "set-cookie"};
static const char *const secret_words[] = {"token",     "secret",     "passw", "session", "key",
                                           "signature", "credential", "auth",  "cookie"};
/* Names with a secret word that carry none: the server's challenge is worth seeing. */
static const char *const plain_names[] = {"www-authenticate", "authentication-info", "keep-alive"};

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static int has_word(const char *name, size_t len, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= len; i++)
        if (strncasecmp(name + i, word, wl) == 0)
            return 1;
    return 0;
}

int phc__trace_sensitive(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(plain_names) / sizeof(plain_names[0]); i++)
        if (name_is(name, len, plain_names[i]))
            return 0;
    for (size_t i = 0; i < sizeof(secret_names) / sizeof(secret_names[0]); i++)
        if (name_is(name, len, secret_names[i]))
            return 1;
    for (size_t i = 0; i < sizeof(secret_words) / sizeof(secret_words[0]); i++)
        if (has_word(name, len, secret_words[i]))
            return 1;
    return 0;
}

/* Appends s[0..n) to out at *pos, always leaving room for the NUL. */
static void put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
    if (*pos + 1 >= outlen)
        return;
    size_t room = outlen - 1 - *pos;
    if (n > room)
        n = room;
    memcpy(out + *pos, s, n);
    *pos += n;
    out[*pos] = '\0';
}

static void puts_(char *out, size_t outlen, size_t *pos, const char *s)
{
    put(out, outlen, pos, s, strlen(s));
}

/* "METHOD target HTTP/x": the target's sensitive query values redacted. 1 when it was one. */
static int request_line(char *out, size_t outlen, size_t *pos, const char *line, size_t len)
{
    size_t m = 0;
    while (m < len && ((line[m] >= 'A' && line[m] <= 'Z') || line[m] == '-'))
        m++;
    if (m == 0 || m >= len || line[m] != ' ')
        return 0;
    const char *t = line + m + 1, *end = line + len;
    const char *sp = memchr(t, ' ', (size_t)(end - t));
    if (!sp || end - sp < 6 || memcmp(sp + 1, "HTTP/", 5) != 0)
        return 0;
    const char *q = memchr(t, '?', (size_t)(sp - t));
    put(out, outlen, pos, line, (size_t)((q ? q + 1 : sp) - line));
    for (const char *p = q ? q + 1 : sp; q;) {
        const char *amp = memchr(p, '&', (size_t)(sp - p));
        const char *pend = amp ? amp : sp;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        if (eq && phc__trace_sensitive(p, (size_t)(eq - p))) {
            put(out, outlen, pos, p, (size_t)(eq + 1 - p));
            puts_(out, outlen, pos, REDACTED);
        } else {
            put(out, outlen, pos, p, (size_t)(pend - p));
        }
        if (!amp)
            break;
        put(out, outlen, pos, "&", 1);
        p = amp + 1;
    }
    put(out, outlen, pos, sp, (size_t)(end - sp));
    return 1;
}

static void redact(char *out, size_t outlen, const char *line, size_t len);

void phc__trace_redact(char *out, size_t outlen, const char *line, size_t len)
{
    redact(out, outlen, line, len);
    /* a server's bare CR or other control byte must not forge a log line or a terminal
     * sequence: each one reads '?' */
    for (char *p = out; outlen && *p; p++)
        if ((unsigned char)*p < 0x20 ? *p != '\t' : (unsigned char)*p == 0x7f)
            *p = '?';
}

static void redact(char *out, size_t outlen, const char *line, size_t len)
{
    size_t pos = 0;
    if (!outlen)
        return;
    out[0] = '\0';
    /* obsolete line folding: the line may continue a secret header's value */
    if (len && (line[0] == ' ' || line[0] == '\t')) {
        puts_(out, outlen, &pos, "  [continuation line redacted]");
        return;
    }
    if (request_line(out, outlen, &pos, line, len))
        return;
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : 0;
    int header = colon && nlen > 0 && !memchr(line, ' ', nlen) && !memchr(line, '\t', nlen);
    if (!header || !phc__trace_sensitive(line, nlen)) {
        put(out, outlen, &pos, line, len);
        return;
    }
    put(out, outlen, &pos, line, nlen + 1);
    put(out, outlen, &pos, " ", 1);
    if (name_is(line, nlen, "authorization") || name_is(line, nlen, "proxy-authorization")) {
        /* the scheme (Basic, Bearer) tells which credential went, not what it is */
        const char *v = colon + 1, *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        const char *s = v;
        while (s < end && ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '-'))
            s++;
        if (s > v && s < end && *s == ' ') {
            put(out, outlen, &pos, v, (size_t)(s - v));
            put(out, outlen, &pos, " ", 1);
        }
    }
    puts_(out, outlen, &pos, REDACTED);
}

/* Each line of data (CRLF or LF separated), redacted, with prefix. */
static void trace_lines(const phc_log *log, const char *prefix, const char *data, size_t size)
{
    char out[TRACE_LINE];
    const char *p = data, *end = data + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t len = (size_t)(e - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len) {
            phc__trace_redact(out, sizeof(out), p, len);
            phc__log(log, PHC_LOG_DEBUG, "%s%s", prefix, out);
        }
        p = nl ? nl + 1 : end;
    }
    OPENSSL_cleanse(out, sizeof(out));
}

int phc__trace_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *log)
{
    (void)curl;
    if (type == CURLINFO_HEADER_OUT)
        trace_lines(log, "> ", data, size);
    else if (type == CURLINFO_HEADER_IN)
        trace_lines(log, "< ", data, size);
    return 0;
}

/* "1.234 ms" */
static const char *ms(char *buf, size_t len, curl_off_t us)
{
    snprintf(buf, len, "%lld.%03lld ms", (long long)(us / 1000), (long long)(us % 1000));
    return buf;
}

void phc__trace_timings(const phc_log *log, CURL *curl)
{
    if (!log || !log->fn || log->level < PHC_LOG_DEBUG)
        return;
    curl_off_t conn = 0, tls = 0, first = 0, total = 0;
    long connects = 0;
    curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &conn);
    curl_easy_getinfo(curl, CURLINFO_APPCONNECT_TIME_T, &tls);
    curl_easy_getinfo(curl, CURLINFO_STARTTRANSFER_TIME_T, &first);
    curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &total);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    char a[32], b[32], c[32], d[32];
    /* libcurl's times run from the start of the transfer; each phase is the difference */
    curl_off_t ready = tls > conn ? tls : conn;
    const char *conn_s = connects == 0 ? "reused" : conn ? ms(a, sizeof(a), conn) : "-";
    const char *tls_s = connects == 0 ? "reused" : tls ? ms(b, sizeof(b), tls - conn) : "-";
    const char *first_s = first ? ms(c, sizeof(c), first - ready) : "-";
    phc__log(log, PHC_LOG_DEBUG, "timing: connect %s, TLS %s, first byte %s, total %s", conn_s,
             tls_s, first_s, ms(d, sizeof(d), total));
}
