/* phc engine-conf [-o FILE] [--with-pin] [--engine-path SO] [--template FILE]
 *
 * Renders engine_conf/pkcs11.cnf.in for the current configuration: an OpenSSL config that
 * loads the libp11 engine with the configured PKCS#11 module, for the stock openssl and curl
 * tools (runbooks, comparisons). phconnect itself never reads it.
 *
 * The PIN is not written unless asked for with --with-pin: without it the engine prompts,
 * which keeps the PIN out of one more file. With --with-pin the PIN (from the config's pin
 * source) goes into the engine's PIN control and the file is created mode 0600 - for
 * automation that cannot answer a prompt, and never to standard output. */
#include "phc.h"
#include "phc_engine_conf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMPLATE_NAME "pkcs11.cnf.in"
#define TEMPLATE_MAX (64 * 1024)
#define PIN_MAX 256

/* Where the libp11 engine lives on the distributions we know; --engine-path overrides. */
static const char *const engine_candidates[] = {
    "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so",
    "/usr/lib64/engines-3/pkcs11.so",
    "/usr/lib/engines-3/pkcs11.so",
};

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = malloc(cap);
        if (!p)
            return -1;
        if (b->len)
            memcpy(p, b->p, b->len);
        /* Wiped before it is dropped: the buffer may already hold the PIN. */
        if (b->p) {
            explicit_bzero(b->p, b->cap);
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_str(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

static void buf_wipe(struct buf *b)
{
    if (b->p) {
        explicit_bzero(b->p, b->cap);
        free(b->p);
    }
    b->p = NULL;
    b->len = b->cap = 0;
}

static int read_small_file(const char *path, char **out, size_t *len, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *p = malloc(max + 1);
    size_t n = p ? fread(p, 1, max + 1, f) : 0;
    int bad = !p || ferror(f) || n > max;
    fclose(f);
    if (bad) {
        free(p);
        errno = p ? EFBIG : ENOMEM;
        return -1;
    }
    p[n] = '\0';
    *out = p;
    *len = n;
    return 0;
}

/* The template: --template, else installed beside the binary (<prefix>/bin/phc ->
 * <prefix>/share/phconnect/engine_conf), else in the source tree of a build directory
 * inside it (build/tools/phc -> engine_conf), else the usual prefixes. */
static int readable_at(char *path, size_t size, const char *dir, const char *rel)
{
    int n = snprintf(path, size, "%s%s", dir, rel);
    return n > 0 && (size_t)n < size && access(path, R_OK) == 0;
}

static int find_template(const char *given, char *path, size_t size)
{
    if (given)
        return readable_at(path, size, given, "") ? 0 : -1;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if (readable_at(path, size, exe, "/../share/phconnect/engine_conf/" TEMPLATE_NAME) ||
                readable_at(path, size, exe, "/../../engine_conf/" TEMPLATE_NAME))
                return 0;
        }
    }
    static const char *const fixed[] = {
        "/usr/local/share/phconnect/engine_conf/" TEMPLATE_NAME,
        "/usr/share/phconnect/engine_conf/" TEMPLATE_NAME,
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (readable_at(path, size, fixed[i], ""))
            return 0;
    return -1;
}

static const char *find_engine(const char *given)
{
    if (given)
        return access(given, R_OK) == 0 ? given : NULL;
    for (size_t i = 0; i < sizeof(engine_candidates) / sizeof(engine_candidates[0]); i++)
        if (access(engine_candidates[i], R_OK) == 0)
            return engine_candidates[i];
    return NULL;
}

/* The PIN from the config's pin source (file:/path or env:NAME), one trailing newline
 * dropped as the library does. Returns an exit status; *out is wiped by the caller. */
static int read_pin(const char *source, char out[PIN_MAX + 1])
{
    char raw[PIN_MAX + 2];
    size_t n = 0;
    if (strncmp(source, "env:", 4) == 0) {
        const char *v = getenv(source + 4);
        if (!v) {
            fprintf(stderr, "phc: PIN variable %s is not set\n", source + 4);
            return 4;
        }
        n = strlen(v);
        if (n > PIN_MAX)
            n = PIN_MAX + 1;
        memcpy(raw, v, n);
    } else if (strncmp(source, "file:", 5) == 0) {
        int fd = open(source + 5, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            fprintf(stderr, "phc: cannot read the PIN file %s: %s\n", source + 5,
                    fd < 0 ? strerror(errno) : "not a regular file");
            if (fd >= 0)
                close(fd);
            return 4;
        }
        ssize_t got;
        while (n < sizeof(raw) && (got = read(fd, raw + n, sizeof(raw) - n)) > 0)
            n += (size_t)got;
        close(fd);
    } else {
        fprintf(stderr, "phc: pin must be file:/path or env:NAME\n");
        return 2;
    }
    if (n > 0 && raw[n - 1] == '\n') {
        n--;
        if (n > 0 && raw[n - 1] == '\r')
            n--;
    }
    int rc = 0;
    if (n == 0 || n > PIN_MAX || memchr(raw, '\0', n) || memchr(raw, '\n', n) ||
        memchr(raw, '\r', n)) {
        fprintf(stderr, "phc: the PIN from %s is empty, longer than %d bytes or spans lines\n",
                source, PIN_MAX);
        rc = 4;
    } else {
        memcpy(out, raw, n);
        out[n] = '\0';
    }
    explicit_bzero(raw, sizeof(raw));
    return rc;
}

/* A value for OpenSSL's config parser: inside double quotes nothing is special except the
 * quote and the backslash, which are escaped ('#' and '$' would otherwise start a comment
 * or a variable). */
static int add_quoted(struct buf *b, const char *s)
{
    if (buf_str(b, "\"") != 0)
        return -1;
    for (; *s; s++) {
        if ((*s == '"' || *s == '\\') && buf_str(b, "\\") != 0)
            return -1;
        if (buf_add(b, s, 1) != 0)
            return -1;
    }
    return buf_str(b, "\"");
}

/* A path or URI in the header comments: one line, whatever the config holds. */
static int add_oneline(struct buf *b, const char *s)
{
    for (; *s; s++)
        if (buf_add(b, (*s == '\n' || *s == '\r') ? " " : s, 1) != 0)
            return -1;
    return 0;
}

char *phc_engine_conf_cert_ref(const phc_config *cfg, int *is_file)
{
    const char *key = phc_config_get(cfg, "key");
    const char *cert = phc_config_get(cfg, "cert");
    *is_file = cert && strncmp(cert, "pkcs11:", 7) != 0;
    if (cert)
        return strdup(cert);
    if (!key)
        return NULL;
    /* Same label and id as the key, certificate type: replace type=private or add it. */
    const char *type = strstr(key, "type=private");
    size_t klen = strlen(key);
    char *uri = malloc(klen + sizeof(";type=cert"));
    if (!uri)
        return NULL;
    if (type) {
        size_t off = (size_t)(type - key);
        memcpy(uri, key, off);
        memcpy(uri + off, "type=cert", 9);
        strcpy(uri + off + 9, type + 12);
    } else {
        /* The path attributes end where a query (?...) starts. */
        size_t plen = strcspn(key, "?");
        memcpy(uri, key, plen);
        strcpy(uri + plen, ";type=cert");
        strcat(uri, key + plen);
    }
    return uri;
}

/* Whether a pkcs11: URI's path (before any ?query) has an id attribute. */
static int uri_has_id(const char *uri)
{
    size_t plen = strcspn(uri, "?");
    for (const char *p = uri + 7; p < uri + plen; p += strcspn(p, ";"), p += *p == ';')
        if (strncmp(p, "id=", 3) == 0)
            return 1;
    return 0;
}

/* uri with ";id=%01%02..." (id_hex percent-encoded byte by byte, RFC 7512) added to its path
 * attributes. malloc'd; NULL when out of memory. */
static char *uri_with_id(const char *uri, const char *id_hex)
{
    size_t plen = strcspn(uri, "?"), ilen = strlen(id_hex);
    char *out = malloc(strlen(uri) + 5 + ilen + ilen / 2 + 1);
    if (!out)
        return NULL;
    char *o = out + plen;
    memcpy(out, uri, plen);
    o += sprintf(o, "%sid=", plen > 7 && uri[plen - 1] != ';' ? ";" : "");
    for (size_t i = 0; i + 1 < ilen; i += 2)
        o += sprintf(o, "%%%c%c", id_hex[i], id_hex[i + 1]);
    strcpy(o, uri + plen);
    return out;
}

/* The key and certificate URIs the rendered file names. Every key of the config's label is
 * a key of the client (token.h: pairs are told apart by CKA_ID), and libp11 takes the first
 * object a URI matches: after a rotation that may be the old pair. So unless the config's key
 * already names an id, the URIs get the id of the pair phconnect uses now (the active one),
 * read from the token. Returns an exit status; *key and *cert are malloc'd. */
static int pick_uris(const phc_globals *g, phc_config *cfg, char **key, char **cert,
                     int *cert_is_file)
{
    const char *cfg_key = phc_config_get(cfg, "key");
    char *c = phc_engine_conf_cert_ref(cfg, cert_is_file);
    *key = *cert = NULL;
    if (!c)
        return 9;
    if (uri_has_id(cfg_key)) {
        *key = strdup(cfg_key);
        *cert = c;
        return *key ? 0 : 9;
    }
    phc_client_opts o = phc_tool_log_opts(g);
    phc_token *t = NULL;
    phc_pair_list *p = NULL;
    size_t n = 0;
    phc_errbuf err = {0};
    int rc = 0;
    if (phc_token_open(&t, cfg, &o, &err) != PHC_OK || phc_token_pairs(t, 0, &p, &err) != PHC_OK) {
        char msg[PHC_HINTED_MAX];
        fprintf(stderr, "phc: %s (engine-conf reads the token to name the active pair's id)\n",
                phc_tool_hinted(&err, msg, sizeof(msg)));
        rc = phc_err_exit_code(err.code);
        goto out;
    }
    const phc_pair_info *active = NULL;
    n = phc_pair_list_count(p);
    for (size_t i = 0; i < n; i++)
        if (phc_pair_list_get(p, i)->state == PHC_PAIR_ACTIVE)
            active = phc_pair_list_get(p, i);
    if (!active) {
        fprintf(stderr,
                "phc: [warning] no active pair on token '%s': the URIs name no id and match "
                "whichever of its %zu key%s the engine finds first; render again after 'phc "
                "install'\n",
                phc_token_label(t), n, n == 1 ? "" : "s");
        *key = strdup(cfg_key);
    } else {
        *key = uri_with_id(cfg_key, active->id_hex);
        if (!*cert_is_file && !uri_has_id(c)) {
            char *withid = uri_with_id(c, active->id_hex);
            free(c);
            c = withid;
        }
    }
    if (!*key || !c)
        rc = 9;
out:
    phc_pair_list_free(p);
    phc_token_free(t);
    if (rc == 0) {
        *cert = c;
    } else {
        free(c);
        free(*key);
        *key = NULL;
    }
    return rc;
}

int phc_engine_conf_uris(const char *path, char **key, char **cert)
{
    FILE *f = fopen(path, "re");
    char line[4096];
    *key = *cert = NULL;
    if (!f)
        return -1;
    /* The header comes first; it ends at the first line that is not a comment. */
    while (fgets(line, sizeof(line), f) && line[0] == '#') {
        line[strcspn(line, "\n")] = '\0';
        char **slot = strncmp(line, "# Key: ", 7) == 0    ? key
                      : strncmp(line, "# Cert: ", 8) == 0 ? cert
                                                          : NULL;
        if (slot && !*slot)
            *slot = strdup(line + 7 + strspn(line + 7, " "));
    }
    fclose(f);
    if (*key && *cert)
        return 0;
    free(*key);
    free(*cert);
    *key = *cert = NULL;
    return -1;
}

static int render_header(struct buf *b, const char *config_path, const phc_config *cfg,
                         const char *key, const char *cert, int cert_is_file)
{
    int bad = buf_str(b, "# Rendered by `phc engine-conf` from ") || add_oneline(b, config_path) ||
              buf_str(b, "\n# Key:  ") || add_oneline(b, key) || buf_str(b, "\n# Cert: ") ||
              add_oneline(b, cert) ||
              buf_str(b, "\n# openssl: OPENSSL_CONF=THIS openssl req -new -engine pkcs11 "
                         "-keyform engine -key '") ||
              add_oneline(b, key) ||
              buf_str(b, "' -subj /CN=x\n# curl:    OPENSSL_CONF=THIS curl --engine pkcs11 "
                         "--key-type ENG --key '") ||
              add_oneline(b, key) ||
              buf_str(b, cert_is_file ? "' --cert '" : "' --cert-type ENG --cert '") ||
              add_oneline(b, cert) || buf_str(b, "' --cacert '") ||
              add_oneline(b, phc_config_get(cfg, "ca_file")) ||
              buf_str(b, "' --capath EMPTY_DIR URL\n");
    return bad ? -1 : 0;
}

/* Copies the template into b, replacing each placeholder; an unknown one is an error so a
 * changed template cannot render half-filled. */
static int render(struct buf *b, const char *tpl, const char *header, const char *engine,
                  const char *module, const char *pin_control)
{
    const struct {
        const char *name, *value;
    } subst[] = {
        {"@HEADER@", header},
        {"@ENGINE_PATH@", engine},
        {"@PKCS11_MODULE@", module},
        {"@PIN_CONTROL@", pin_control},
    };
    for (const char *p = tpl; *p;) {
        const char *at = strchr(p, '@');
        if (!at)
            return buf_str(b, p);
        if (buf_add(b, p, (size_t)(at - p)) != 0)
            return -1;
        size_t i = 0;
        for (; i < sizeof(subst) / sizeof(subst[0]); i++)
            if (strncmp(at, subst[i].name, strlen(subst[i].name)) == 0)
                break;
        if (i == sizeof(subst) / sizeof(subst[0])) {
            /* An '@' that starts no placeholder (in a comment, say) is copied as is. */
            const char *end = at + 1;
            while ((*end >= 'A' && *end <= 'Z') || *end == '_')
                end++;
            if (*end == '@' && end > at + 1) {
                errno = EINVAL;
                return -2;
            }
            if (buf_add(b, at, 1) != 0)
                return -1;
            p = at + 1;
            continue;
        }
        if (buf_str(b, subst[i].value) != 0)
            return -1;
        p = at + strlen(subst[i].name);
    }
    return 0;
}

/* FILE is either complete or untouched, and with a PIN it is 0600, never readable by
 * others. */
static int write_file(const char *path, const struct buf *b, int secret)
{
    if (phc_tool_write_output(path, b->p, b->len, NULL, 0, secret ? 0600 : 0644) == 0)
        return 0;
    if (errno == ENOMEM) /* out of memory is 9, like a failed render */
        return 9;
    fprintf(stderr, "phc: cannot write %s: %s\n", path, strerror(errno));
    return 2;
}

int phc_cmd_engine_conf(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"with-pin", no_argument, NULL, 'P'},
        {"engine-path", required_argument, NULL, 'E'},
        {"template", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL, *engine_arg = NULL, *template_arg = NULL;
    int with_pin = 0, c;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "o:h", longopts)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'P':
            with_pin = 1;
            break;
        case 'E':
            engine_arg = optarg;
            break;
        case 'T':
            template_arg = optarg;
            break;
        case 'h':
            printf("usage: phc engine-conf [-o FILE] [--with-pin] [--engine-path SO] "
                   "[--template FILE]\n"
                   "OpenSSL config loading the libp11 engine with the configured PKCS#11 "
                   "module,\nfor the stock openssl/curl tools (OPENSSL_CONF=FILE). Without "
                   "--with-pin they\nprompt for the PIN; --with-pin stores it (needs -o; "
                   "the file is mode 0600).\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc)
        return phc_tool_usage("engine-conf takes no arguments besides its options: '%s'",
                              argv[optind]);
    if (with_pin && (!output || phc_tool_output_kind(output) != PHC_OUT_REPLACE))
        return phc_tool_usage("--with-pin writes the PIN into the file: give -o FILE, a regular "
                              "file (created mode 0600), never standard output, a device or a "
                              "FIFO%s%s",
                              output ? ": " : "", output ? output : "");

    phc_config *cfg = NULL;
    char tpl_path[PATH_MAX];
    char *tpl = NULL;
    size_t tpl_len = 0;
    char pin[PIN_MAX + 1] = "";
    struct buf header = {0}, pinline = {0}, out = {0};
    char *key_uri = NULL, *cert_uri = NULL;
    int cert_is_file = 0;
    int rc = phc_tool_load_config(g, &cfg);
    if (rc != 0)
        return rc;
    const char *module = phc_config_get(cfg, "pkcs11_module");
    const char *key = phc_config_get(cfg, "key");
    if (!module || !key) {
        rc = phc_tool_usage("%s has no pkcs11_module and key: there is no token key for the "
                            "engine to use",
                            g->config_path);
        goto out;
    }
    if (strpbrk(module, "\n\r\"")) {
        rc = phc_tool_usage("pkcs11_module path contains a quote or a line break");
        goto out;
    }
    const char *engine = find_engine(engine_arg);
    if (!engine) {
        if (engine_arg)
            fprintf(stderr, "phc: the libp11 engine %s is not readable: %s\n", engine_arg,
                    strerror(errno));
        else
            fprintf(stderr, "phc: the libp11 engine pkcs11.so was not found (install "
                            "libengine-pkcs11-openssl or give --engine-path)\n");
        rc = 3;
        goto out;
    }
    if (find_template(template_arg, tpl_path, sizeof(tpl_path)) != 0) {
        rc = phc_tool_usage("cannot find the template %s (engine_conf/ of the source or "
                            "<prefix>/share/phconnect/engine_conf/); give --template FILE",
                            template_arg ? template_arg : TEMPLATE_NAME);
        goto out;
    }
    if (read_small_file(tpl_path, &tpl, &tpl_len, TEMPLATE_MAX) != 0) {
        rc = phc_tool_usage("cannot read the template %s: %s", tpl_path, strerror(errno));
        goto out;
    }
    if (with_pin) {
        if ((rc = read_pin(phc_config_get(cfg, "pin"), pin)) != 0)
            goto out;
        if (buf_str(&pinline, "# The token's user PIN (--with-pin): keep this file mode 0600.\n"
                              "PIN = ") != 0 ||
            add_quoted(&pinline, pin) != 0) {
            rc = 9;
            goto out;
        }
    } else if (buf_str(&pinline, "# No PIN here: the engine prompts for it (render with "
                                 "`phc engine-conf --with-pin -o FILE`\n# to store it in a "
                                 "0600 file for automation).") != 0) {
        rc = 9;
        goto out;
    }
    if ((rc = pick_uris(g, cfg, &key_uri, &cert_uri, &cert_is_file)) != 0)
        goto out;
    /* The PIN is read (or not wanted): an env: variable holding it leaves the environment
     * now, as in every other subcommand (phc_tool_load_config does it there). */
    phc_errbuf terr = {0};
    if (phc_config_take_env_secrets(cfg, &terr) != PHC_OK) {
        rc = phc_tool_fail(&terr);
        goto out;
    }
    if (render_header(&header, g->config_path, cfg, key_uri, cert_uri, cert_is_file) != 0) {
        rc = 9;
        goto out;
    }
    int r = render(&out, tpl, header.p, engine, module, pinline.p);
    if (r == -2) {
        rc = phc_tool_usage("the template %s has a placeholder this phc does not know", tpl_path);
        goto out;
    }
    if (r != 0) {
        rc = 9;
        goto out;
    }
    if (output) {
        rc = write_file(output, &out, with_pin);
    } else if (fwrite(out.p, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        fprintf(stderr, "phc: cannot write to standard output: %s\n", strerror(errno));
        rc = 2;
    }
out:
    explicit_bzero(pin, sizeof(pin));
    buf_wipe(&pinline);
    buf_wipe(&out);
    buf_wipe(&header);
    free(tpl);
    free(key_uri);
    free(cert_uri);
    phc_config_free(cfg);
    return rc;
}
