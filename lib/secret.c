/* Reading a secret from its source. The value is only ever in buffers that are wiped before
 * they are freed; messages name the source (path or variable), never the value.
 *
 * Buffers come from OpenSSL's secure heap when the application initialised one
 * (CRYPTO_secure_malloc_init: locked, never swapped) and from the ordinary heap otherwise;
 * OPENSSL_secure_clear_free handles both, which is why every secret must be released with
 * phc__secret_free. */
#include "secret.h"
#include "err.h"
#include "filemodes.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX PHC_SECRET_MAX

/* A copy of src[0..len) in a fresh secure buffer, after dropping one "\n" or "\r\n".
 * Empty or NUL-containing secrets are refused by the caller beforehand/afterwards. */
static char *secure_copy(const char *src, size_t len, size_t *out_len)
{
    if (len > 0 && src[len - 1] == '\n') {
        len--;
        if (len > 0 && src[len - 1] == '\r')
            len--;
    }
    char *s = OPENSSL_secure_malloc(len + 1);
    if (!s)
        return NULL;
    memcpy(s, src, len);
    s[len] = '\0';
    *out_len = len;
    return s;
}

/* The secret without its trailing newline must be non-empty and hold no NUL (it is used as
 * a C string: a NUL would silently shorten it). */
static int check_value(const char *s, size_t len, const char *what, const char *kind,
                       const char *name, int errclass, phc_errbuf *err)
{
    if (len == 0)
        return phc__err(err, errclass, "%s %s%s is empty", what, kind, name);
    if (memchr(s, '\0', len))
        return phc__err(err, errclass, "%s %s%s contains a NUL byte", what, kind, name);
    return PHC_OK;
}

/* Whitespace a file may end with by accident (an editor, `echo`, a heredoc) that would be
 * sent to the token as part of the PIN: past the one final newline, it is refused. */
static int is_trailing_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

static int check_file_value(const char *s, size_t len, const char *what, const char *path,
                            int errclass, phc_errbuf *err)
{
    size_t ws = 0;
    while (ws < len && is_trailing_ws(s[len - 1 - ws]))
        ws++;
    if (len > 0 && ws == len)
        return phc__err(err, errclass, "%s file %s is empty (only whitespace)", what, path);
    if (ws > 0)
        return phc__err(err, errclass,
                        "%s file %s has whitespace after its value (%zu byte%s beyond the one "
                        "final newline that is dropped): remove it",
                        what, path, ws, ws == 1 ? "" : "s");
    return PHC_OK;
}

/* Opens path for reading. A path through symbolic links (Kubernetes and systemd credentials
 * mount secrets that way) is followed only when every link, every directory on the way and
 * the file belong to root or this user and are writable by no one else (filemodes.h); the
 * resolved path is then opened without following anything more. */
static int open_file(int *out, const char *path, const char *what, int errclass, phc_errbuf *err)
{
    char real[PATH_MAX], why[512];
    int linked = 0, unsafe = 0;
    const char *name = path;
    int walked = phc__path_walk(path, real, sizeof(real), &linked, &unsafe, why, sizeof(why));
    if (walked != 0 && errno == ENOENT)
        return phc__err(err, errclass, "%s file %s does not exist", what, path);
    if (walked == 0 && linked) {
        if (unsafe)
            return phc__err(err, errclass, "%s file %s is a symbolic link to %s, not followed: %s",
                            what, path, real, why);
        name = real;
    }
    /* O_NOFOLLOW: a link not walked above (planted since) must not redirect the read;
     * O_NONBLOCK: opening a FIFO must not hang (it is refused below). */
    int fd = open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            return phc__err(err, errclass, "%s file %s is a symbolic link that was not followed",
                            what, path);
        if (e == ENOENT)
            return phc__err(err, errclass, "%s file %s does not exist", what, path);
        return phc__err(err, errclass, "cannot open %s file %s: %s", what, path, strerror(e));
    }
    *out = fd;
    return PHC_OK;
}

static int read_file(char **out, size_t *out_len, const char *path, const char *what, int errclass,
                     phc_errbuf *err)
{
    char *buf = NULL;
    size_t len = 0;
    int fd;
    int rc = open_file(&fd, path, what, errclass, err);
    if (rc != PHC_OK)
        return rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = phc__err(err, errclass, "cannot stat %s file %s: %s", what, path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = phc__err(err, errclass, "%s file %s is not a regular file", what, path);
        goto out;
    }
    if (st.st_size > SECRET_MAX) {
        rc = phc__err(err, errclass, "%s file %s is larger than %d bytes", what, path, SECRET_MAX);
        goto out;
    }
    /* read one byte more than allowed: the file may have grown since fstat */
    if (!(buf = OPENSSL_secure_malloc(SECRET_MAX + 1))) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    while (len <= SECRET_MAX) {
        ssize_t n = read(fd, buf + len, SECRET_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = phc__err(err, errclass, "cannot read %s file %s: %s", what, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > SECRET_MAX) {
        rc = phc__err(err, errclass, "%s file %s is larger than %d bytes", what, path, SECRET_MAX);
        goto out;
    }
    size_t slen;
    char *s = secure_copy(buf, len, &slen);
    if (!s) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if ((rc = check_value(s, slen, what, "file ", path, errclass, err)) != PHC_OK ||
        (rc = check_file_value(s, slen, what, path, errclass, err)) != PHC_OK) {
        phc__secret_free(s, slen);
        goto out;
    }
    *out = s;
    *out_len = slen;
out:
    if (buf)
        OPENSSL_secure_clear_free(buf, SECRET_MAX + 1);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Variables taken out of the environment (phc_config_take_env_secrets): name and value, in
 * buffers wiped when they go. env:NAME reads them from here first. */

struct taken {
    char *name;
    char *value;
    size_t len;
};

#define TAKEN_MAX 8
static pthread_mutex_t taken_mu = PTHREAD_MUTEX_INITIALIZER;
static struct taken taken[TAKEN_MAX]; /* guarded by taken_mu */

/* The process's original environment block [start, end): what /proc/PID/environ shows,
 * whatever unsetenv does to the environ array later. 0, or -1 when unknown. */
static int env_block(unsigned long *start, unsigned long *end)
{
    char buf[2048];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* Fields after the command name (which may hold anything, hence the last ')'): env_start
     * and env_end are fields 50 and 51 of proc(5), the 48th and 49th after it. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    for (int field = 3; field < 50; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    if (sscanf(p, " %lu %lu", start, end) != 2 || *start >= *end)
        return -1;
    return 0;
}

/* Takes NAME: its value into taken[], its "NAME=value" bytes overwritten where they lie in
 * the original environment block (other strings, from setenv or putenv, are not ours to
 * write to: unsetenv is enough for them), then unset. */
static int take_one(const char *name, phc_errbuf *err)
{
    int rc = PHC_OK;
    size_t nlen = strlen(name);
    pthread_mutex_lock(&taken_mu);
    size_t slot = TAKEN_MAX;
    for (size_t i = 0; i < TAKEN_MAX; i++) {
        if (taken[i].name && strcmp(taken[i].name, name) == 0)
            goto out; /* taken already */
        if (!taken[i].name && slot == TAKEN_MAX)
            slot = i;
    }
    const char *v = getenv(name);
    if (!v)
        goto out; /* not set: the reader says so when the secret is needed */
    if (slot == TAKEN_MAX) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "more than %d secret variables taken", TAKEN_MAX);
        goto out;
    }
    size_t vlen = strlen(v);
    char *value = OPENSSL_secure_malloc(vlen + 1);
    char *copy = strdup(name);
    if (!value || !copy) {
        OPENSSL_secure_free(value);
        free(copy);
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(value, v, vlen + 1);
    taken[slot] = (struct taken){.name = copy, .value = value, .len = vlen};
    unsigned long start, end;
    char *entry = (char *)v - nlen - 1;
    if (env_block(&start, &end) == 0 && (unsigned long)entry >= start &&
        (unsigned long)(v + vlen) < end)
        OPENSSL_cleanse(entry, nlen + 1 + vlen);
    unsetenv(name);
out:
    pthread_mutex_unlock(&taken_mu);
    return rc;
}

/* env:NAME from the taken copies: 1 when NAME was taken (*out is the copy, NULL when out of
 * memory), 0 when it was not. */
static int read_taken(char **out, size_t *out_len, const char *name)
{
    int found = 0;
    pthread_mutex_lock(&taken_mu);
    for (size_t i = 0; i < TAKEN_MAX; i++) {
        if (taken[i].name && strcmp(taken[i].name, name) == 0) {
            *out = secure_copy(taken[i].value, taken[i].len, out_len);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&taken_mu);
    return found;
}

static int is_env_name(const char *s);

int phc_config_take_env_secrets(const phc_config *cfg, phc_errbuf *err)
{
    static const char *const keys[] = {"pin", "client_secret"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *src = cfg ? phc_config_get(cfg, keys[i]) : NULL;
        if (!src || strncmp(src, "env:", 4) != 0 || !is_env_name(src + 4))
            continue;
        int rc = take_one(src + 4, err);
        if (rc != PHC_OK)
            return rc;
    }
    return PHC_OK;
}

void phc__secret_env_clear(void)
{
    pthread_mutex_lock(&taken_mu);
    for (size_t i = 0; i < TAKEN_MAX; i++) {
        if (taken[i].value)
            OPENSSL_secure_clear_free(taken[i].value, taken[i].len + 1);
        free(taken[i].name);
        taken[i] = (struct taken){0};
    }
    pthread_mutex_unlock(&taken_mu);
}

static int read_env(char **out, size_t *out_len, const char *name, const char *what, int errclass,
                    phc_errbuf *err)
{
    char *t = NULL;
    size_t tlen = 0;
    if (read_taken(&t, &tlen, name)) {
        if (!t)
            return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        int rc = tlen > SECRET_MAX
                     ? phc__err(err, errclass, "%s source env:%s is longer than %d bytes", what,
                                name, SECRET_MAX)
                     : check_value(t, tlen, what, "source env:", name, errclass, err);
        if (rc != PHC_OK) {
            phc__secret_free(t, tlen);
            return rc;
        }
        *out = t;
        *out_len = tlen;
        return PHC_OK;
    }
    const char *v = getenv(name);
    if (!v)
        return phc__err(err, errclass, "%s source env:%s is not set", what, name);
    if (!*v)
        return phc__err(err, errclass, "%s source env:%s is empty", what, name);
    size_t len = strlen(v);
    if (len > SECRET_MAX)
        return phc__err(err, errclass, "%s source env:%s is longer than %d bytes", what, name,
                        SECRET_MAX);
    size_t slen;
    char *s = secure_copy(v, len, &slen);
    if (!s)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    int rc = check_value(s, slen, what, "source env:", name, errclass, err);
    if (rc != PHC_OK) {
        phc__secret_free(s, slen);
        return rc;
    }
    *out = s;
    *out_len = slen;
    return PHC_OK;
}

static int is_env_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

int phc__secret_read(char **out, size_t *out_len, const char *source, const char *what,
                     int errclass, phc_errbuf *err)
{
    if (!out || !out_len)
        return phc__err(err, PHC_ERR_INTERNAL, "phc__secret_read: out is NULL");
    *out = NULL;
    *out_len = 0;
    if (!what)
        what = "secret";
    /* A malformed source is a config mistake and may be the secret itself: never quote it. */
    if (source && strncmp(source, "file:", 5) == 0 && source[5] == '/')
        return read_file(out, out_len, source + 5, what, errclass, err);
    if (source && strncmp(source, "env:", 4) == 0 && is_env_name(source + 4))
        return read_env(out, out_len, source + 4, what, errclass, err);
    return phc__err(err, PHC_ERR_CONFIG, "%s source must be file:/path or env:NAME", what);
}

void phc__secret_free(char *secret, size_t len)
{
    if (secret)
        OPENSSL_secure_clear_free(secret, len);
}
