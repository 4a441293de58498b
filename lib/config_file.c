/* The configuration file reader: an OpenSSL-syntax INI file, section [phconnect], read with
 * NCONF and checked line by line; every key then takes the one validation path
 * (phc__config_set_value), as phc_config_set does.
 *
 * The file is read with OpenSSL's NCONF, which brings OpenSSL's config syntax with it:
 *  - '#' starts a comment (also in the middle of a value, unless quoted);
 *  - a value may be quoted ("..." or '...') and backslash escapes are processed
 *    (\n, \\, \#, \$); a trailing backslash would continue the line and is refused;
 *  - '$name', '${name}', '$section::name' and '$ENV::NAME' are expanded, and a reference to
 *    an undefined variable is a syntax error. A value that contains a literal '$' must
 *    escape it ('\$') or be in single quotes ('/opt/a$b'). Only '$ENV::NAME' is accepted:
 *    every key outside the known ones is refused, and a reference to another key makes the
 *    value differ from its line read alone (check_agreement).
 *  - '.include' is refused: every key must be in this file, with a line number. So is every
 *    other key that begins with '.': OpenSSL treats any name beginning with ".include" as
 *    an include and ".pragma" changes how later values are read.
 * Percent-escapes and ';' (PKCS#11 URIs) pass through unchanged.
 *
 * NCONF keeps no line numbers per value, so the text is also scanned with a small scanner
 * that follows NCONF's line structure (comments, section headers, the "section::key" form)
 * to put a line number on each key and to find keys given twice (NCONF silently keeps the
 * last). What a reader (or grep) sees must be what the connector uses, so the scanner and
 * NCONF are then made to agree exactly: each key line, read by NCONF on its own, gives the
 * key and value NCONF read from the whole file, and NCONF read no key from anywhere else
 * (check_agreement). A line continuation is refused outright: it lets one key's name or
 * value hide on the next line.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* strncasecmp */
#endif

#include "config_impl.h"

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/err.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTION "phconnect"
#define CONFIG_MAX_BYTES (1024 * 1024)

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
    const char *lb, *le; /* the whole line (continuations are refused before this is used) */
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

        const char *lb = b;
        while (b < e && phc__config_is_ws(*b))
            b++;
        if (b == e || *b == '#')
            continue;
        if (*b == '[') {
            const char *rb = memchr(b, ']', (size_t)(e - b));
            const char *nb = b + 1, *ne = rb ? rb : e;
            while (nb < ne && phc__config_is_ws(*nb))
                nb++;
            while (ne > nb && phc__config_is_ws(ne[-1]))
                ne--;
            snprintf(s->section, sizeof(s->section), "%.*s", (int)(ne - nb), nb);
            continue;
        }
        const char *k = b;
        while (b < e && !phc__config_is_ws(*b) && *b != '=')
            b++;
        kl->line = first;
        kl->lb = lb;
        kl->le = ce;
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
    /* A continued line can hide a key's name or value on the next line, where neither a
     * reader nor grep looks for it; comments included (NCONF joins before it strips them). */
    struct scanner s;
    scan_init(&s, text, len);
    while (s.p < s.end) {
        const char *b, *e;
        phys_line(&s, &b, &e);
        if (continues(b, e))
            return phc__err(err, PHC_ERR_CONFIG,
                            "config %s line %ld: ends in a backslash (a line continuation); write "
                            "each key with its value on one line",
                            name, s.line);
    }
    /* NCONF would open the named file (for any name beginning with ".include"): every key
     * must be in this one, with its line. The other directives change how values are read. */
    struct keyline kl;
    scan_init(&s, text, len);
    while (scan_next(&s, &kl)) {
        if (kl.klen == 0 || kl.key[0] != '.')
            continue;
        if (kl.klen >= 8 && memcmp(kl.key, ".include", 8) == 0)
            return phc__err(err, PHC_ERR_CONFIG, "config %s line %ld: .include is not supported",
                            name, kl.line);
        return phc__err(err, PHC_ERR_CONFIG,
                        "config %s line %ld: key '%.*s': keys beginning with '.' are OpenSSL "
                        "directives and are not supported",
                        name, kl.line, (int)(kl.klen > 64 ? 64 : kl.klen), kl.key);
    }
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
        if (strcmp(kl.section, SECTION) == 0)
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

/* The value NCONF reads from one line on its own, as a line of [phconnect]; NULL with a
 * message in *why when it reads none or more than one key there. Caller frees. */
static char *line_alone(const struct keyline *kl, char *why, size_t whylen)
{
    char *val = NULL;
    size_t n = (size_t)(kl->le - kl->lb);
    char *buf = malloc(sizeof("[" SECTION "]\n") + n + 1);
    CONF *conf = NCONF_new(NULL);
    BIO *bio = NULL;
    long eline = 0;
    snprintf(why, whylen, "out of memory");
    if (!buf || !conf)
        goto out;
    int hl = snprintf(buf, sizeof("[" SECTION "]\n"), "[" SECTION "]\n");
    memcpy(buf + hl, kl->lb, n);
    buf[hl + (int)n] = '\n';
    if (!(bio = BIO_new_mem_buf(buf, hl + (int)n + 1)))
        goto out;
    ERR_set_mark();
    int ok = NCONF_load_bio(conf, bio, &eline) > 0;
    ERR_pop_to_mark();
    if (!ok) {
        snprintf(why, whylen,
                 "OpenSSL cannot read this line on its own (a reference to another "
                 "key with '$'?)");
        goto out;
    }
    STACK_OF(CONF_VALUE) *vals = NCONF_get_section(conf, SECTION);
    if (!vals || sk_CONF_VALUE_num(vals) != 1) {
        snprintf(why, whylen, "OpenSSL reads %d keys from this line",
                 vals ? sk_CONF_VALUE_num(vals) : 0);
        goto out;
    }
    const CONF_VALUE *v = sk_CONF_VALUE_value(vals, 0);
    if (strlen(v->name) != kl->klen || memcmp(v->name, kl->key, kl->klen) != 0) {
        snprintf(why, whylen, "OpenSSL reads the key name '%.64s' from this line", v->name);
        goto out;
    }
    if (!(val = strdup(v->value)))
        snprintf(why, whylen, "out of memory");
out:
    BIO_free(bio);
    NCONF_free(conf);
    free(buf);
    return val;
}

/* What the file shows is what NCONF read: every key line of [phconnect], read on its own,
 * gives the same key and value NCONF has for it, and NCONF has no key without its own
 * line. check_sections has already made sure that every key line and every value NCONF
 * read are in [phconnect]; duplicates are refused by the caller. */
static int check_agreement(const STACK_OF(CONF_VALUE) * vals, const char *text, size_t len,
                           const char *name, phc_errbuf *err)
{
    struct scanner s;
    struct keyline kl;
    int nlines = 0;
    scan_init(&s, text, len);
    while (scan_next(&s, &kl)) {
        char why[160];
        int k = (int)(kl.klen > 64 ? 64 : kl.klen);
        nlines++;
        const CONF_VALUE *mine = NULL;
        for (int i = 0; i < sk_CONF_VALUE_num(vals) && !mine; i++) {
            const CONF_VALUE *v = sk_CONF_VALUE_value(vals, i);
            if (strlen(v->name) == kl.klen && memcmp(v->name, kl.key, kl.klen) == 0)
                mine = v;
        }
        if (!mine)
            return phc__err(err, PHC_ERR_CONFIG,
                            "config %s line %ld: key '%.*s' is not a key OpenSSL reads from this "
                            "file; write it as 'key = value'",
                            name, kl.line, k, kl.key);
        char *alone = line_alone(&kl, why, sizeof(why));
        int same = alone && strcmp(alone, mine->value) == 0;
        free(alone);
        if (!alone)
            return phc__err(err, PHC_ERR_CONFIG, "config %s line %ld: key '%.*s': %s", name,
                            kl.line, k, kl.key, why);
        if (!same)
            return phc__err(err, PHC_ERR_CONFIG,
                            "config %s line %ld: key '%.*s': OpenSSL reads another value for it "
                            "than this line holds",
                            name, kl.line, k, kl.key);
    }
    if (nlines != sk_CONF_VALUE_num(vals)) {
        /* Name a key NCONF has that no line shows (there is one: each line matched one). */
        const char *hidden = "?";
        for (int i = 0; i < sk_CONF_VALUE_num(vals); i++) {
            const char *vn = sk_CONF_VALUE_value(vals, i)->name;
            int seen = 0;
            scan_init(&s, text, len);
            while (!seen && scan_next(&s, &kl))
                seen = strlen(vn) == kl.klen && memcmp(vn, kl.key, kl.klen) == 0;
            if (!seen) {
                hidden = vn;
                break;
            }
        }
        return phc__err(err, PHC_ERR_CONFIG,
                        "config %s: key '%.64s' is read by OpenSSL but no line of the file shows "
                        "it as 'key = value'",
                        name, hidden);
    }
    return PHC_OK;
}

int phc_config_parse(phc_config **out, const char *text, size_t len, const char *name,
                     phc_errbuf *err)
{
    return phc__config_parse_in(out, text, len, name, NULL, err);
}

int phc__config_parse_in(phc_config **out, const char *text, size_t len, const char *name,
                         const char *base_dir, phc_errbuf *err)
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
    if (!(cfg->name = strdup(name)) ||
        (base_dir && !(phc__config_impl(cfg)->base_dir = strdup(base_dir)))) {
        rc = phc__config_oom(err);
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
        if ((rc = phc__config_set_value(phc__config_impl(cfg), v->name, v->value, &w, err)) !=
            PHC_OK)
            goto out;
    }
    if ((rc = check_agreement(vals, text, len, name, err)) != PHC_OK)
        goto out;
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

/* The directory of the config file as named (a symbolic link to the file is not followed:
 * the files a config names sit beside the name the operator gave), made absolute against
 * the working directory now, so that a later chdir changes nothing. */
static int config_dir(char **out, const char *path, phc_errbuf *err)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    if (slash && dlen == 0)
        dlen = 1; /* "/x.cnf": the root */
    char cwd[PATH_MAX] = "";
    if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
        return phc__err(err, PHC_ERR_CONFIG,
                        "config %s: cannot resolve its directory (working directory: %s)", path,
                        strerror(errno));
    size_t clen = strlen(cwd);
    size_t size = clen + 1 + dlen + 1;
    char *d = malloc(size);
    if (!d)
        return phc__config_oom(err);
    if (path[0] == '/')
        snprintf(d, dlen + 1, "%s", path);
    else if (dlen)
        snprintf(d, size, "%s/%.*s", cwd, (int)dlen, path);
    else
        memcpy(d, cwd, clen + 1);
    *out = d;
    return PHC_OK;
}

int phc_config_load(phc_config **out, const char *path, phc_errbuf *err)
{
    if (!out || !path)
        return phc__err(err, PHC_ERR_INTERNAL, "phc_config_load: out or path is NULL");
    *out = NULL;
    char *buf = NULL, *dir = NULL;
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
        rc = phc__config_oom(err);
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
    if ((rc = config_dir(&dir, path, err)) != PHC_OK)
        goto out;
    rc = phc__config_parse_in(out, buf, len, path, dir, err);
    if (rc == PHC_OK && !(phc__config_impl(*out)->path = strdup(path))) {
        phc_config_free(*out);
        *out = NULL;
        rc = phc__config_oom(err);
    }
out:
    free(dir);
    free(buf);
    close(fd);
    return rc;
}
