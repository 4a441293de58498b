/* Ownership and permissions of the files a configuration names, as OpenSSH's StrictModes
 * looks at them: whoever can write the CA file, the PKCS#11 module, the client certificate
 * or the config itself - or any directory above one of them - decides whom the connector
 * trusts and what code it runs; whoever can read the PIN file or the client-secret file has
 * the secret. So each such file and every directory above it must belong to root or to this
 * process's user and be writable by nobody else (a sticky directory such as /tmp is fine),
 * and a secret file must not be readable by others.
 *
 * strict_modes = warn (default) logs each finding; error makes the first one a config error;
 * off does not look. A file that does not exist is left to the unit that opens it. */
#include "filemodes.h"
#include "config.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FINDING_MAX 512

struct look {
    const phc_config *cfg;
    const phc_log *log;
    phc_errbuf *err;
    int rc;  /* PHC_ERR_CONFIG once an error was reported (strict_modes = error) */
    int any; /* findings so far */
};

/* One finding: a warning, or with strict_modes = error the (first) error. */
static void finding(struct look *l, const char *fmt, ...) PHC_PRINTF(2, 3);
static void finding(struct look *l, const char *fmt, ...)
{
    char msg[FINDING_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    l->any++;
    if (l->cfg->strict_modes == PHC__MODES_ERROR) {
        if (l->rc == PHC_OK)
            l->rc = phc__err(l->err, PHC_ERR_CONFIG, "%s (strict_modes = error)", msg);
        return;
    }
    phc__log(l->log, PHC_LOG_WARN, "%s (strict_modes = error refuses this, off stops the check)",
             msg);
}

static int owner_ok(const struct stat *st)
{
    return st->st_uid == 0 || st->st_uid == geteuid();
}

/* The file itself: what = "CA file", "PIN file", ...; secret: must not be readable by
 * others. */
static void look_file(struct look *l, const char *what, const char *path, const struct stat *st,
                      int secret)
{
    unsigned mode = (unsigned)st->st_mode & 07777;
    if (!owner_ok(st))
        finding(l, "%s %s belongs to uid %u, neither root nor this user (uid %u)", what, path,
                (unsigned)st->st_uid, (unsigned)geteuid());
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        finding(l, "%s %s is writable by %s (mode %04o)", what, path,
                st->st_mode & S_IWOTH ? "others" : "its group", mode);
    if (secret && (st->st_mode & S_IRWXO))
        finding(l, "%s %s is readable by others (mode %04o): chmod o-rwx it", what, path, mode);
}

/* Every directory above the file (resolved), up to /. */
static void look_dirs(struct look *l, const char *what, const char *real)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", real);
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return;
        if (slash == dir)
            slash[1] = '\0'; /* "/" itself */
        else
            *slash = '\0';
        struct stat st;
        if (stat(dir, &st) != 0)
            return;
        int sticky = (st.st_mode & S_ISVTX) != 0;
        if (!owner_ok(&st))
            finding(l, "directory %s above %s %s belongs to uid %u, neither root nor this user",
                    dir, what, real, (unsigned)st.st_uid);
        else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky)
            finding(l, "directory %s above %s %s is writable by %s (mode %04o)", dir, what, real,
                    st.st_mode & S_IWOTH ? "others" : "its group", (unsigned)st.st_mode & 07777);
        if (strcmp(dir, "/") == 0)
            return;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Paths through symbolic links */

/* Why st (at name) breaks the rule, into why; 0 when it does not. dir: a directory a name
 * is looked up in (sticky ones may be writable by others). */
static int unsafe_node(const char *name, const struct stat *st, int dir, char *why, size_t whysz)
{
    if (!owner_ok(st)) {
        snprintf(why, whysz, "%s belongs to uid %u, neither root nor this user (uid %u)", name,
                 (unsigned)st->st_uid, (unsigned)geteuid());
        return 1;
    }
    if (S_ISLNK(st->st_mode))
        return 0; /* a link's own mode means nothing */
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(dir && (st->st_mode & S_ISVTX))) {
        snprintf(why, whysz, "%s is writable by %s (mode %04o)", name,
                 st->st_mode & S_IWOTH ? "others" : "its group", (unsigned)st->st_mode & 07777);
        return 1;
    }
    return 0;
}

#define WALK_HOPS 40

int phc__path_walk(const char *path, char *real, size_t realsz, int *linked, int *unsafe, char *why,
                   size_t whysz)
{
    /* todo: the components still to look up, as one string; done: the resolved prefix */
    char todo[PATH_MAX], done[PATH_MAX], next[PATH_MAX], target[PATH_MAX];
    int hops = 0;
    *linked = *unsafe = 0;
    if (why && whysz)
        why[0] = '\0';
    if (!path || path[0] != '/') {
        errno = EINVAL;
        return -1;
    }
    if (snprintf(todo, sizeof(todo), "%s", path) >= (int)sizeof(todo)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(done, "/");
    struct stat st;
    if (lstat("/", &st) != 0)
        return -1;
    const char *p = todo;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t clen = end ? (size_t)(end - p) : strlen(p);
        /* the directory the name is looked up in */
        if (!*unsafe && stat(done, &st) == 0)
            *unsafe = unsafe_node(done, &st, 1, why, whysz);
        if (clen == 1 && p[0] == '.') {
            p += clen;
            continue;
        }
        if (clen == 2 && p[0] == '.' && p[1] == '.') {
            char *slash = strrchr(done, '/');
            if (slash == done)
                done[1] = '\0';
            else
                *slash = '\0';
            p += clen;
            continue;
        }
        int n = snprintf(next, sizeof(next), "%s%s%.*s", done, strcmp(done, "/") ? "/" : "",
                         (int)clen, p);
        if (n < 0 || n >= (int)sizeof(next)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        p += clen;
        while (*p == '/')
            p++;
        if (lstat(next, &st) != 0)
            return -1;
        if (!S_ISLNK(st.st_mode)) {
            if (*p && !S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                return -1;
            }
            if (!*p && !*unsafe)
                *unsafe = unsafe_node(next, &st, 0, why, whysz);
            memcpy(done, next, (size_t)n + 1);
            continue;
        }
        if (++hops > WALK_HOPS) {
            errno = ELOOP;
            return -1;
        }
        *linked = 1;
        if (!*unsafe)
            *unsafe = unsafe_node(next, &st, 0, why, whysz); /* the link's owner */
        ssize_t tl = readlink(next, target, sizeof(target) - 1);
        if (tl < 0)
            return -1;
        target[tl] = '\0';
        /* the link's target, then what was left */
        n = snprintf(next, sizeof(next), "%s%s%s", target, *p ? "/" : "", p);
        if (n < 0 || n >= (int)sizeof(next)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(todo, next, (size_t)n + 1);
        p = todo;
        if (target[0] == '/')
            strcpy(done, "/");
    }
    if (snprintf(real, realsz, "%s", done) >= (int)realsz) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static void look(struct look *l, const char *what, const char *path, int secret)
{
    if (!path || !*path || l->rc != PHC_OK)
        return;
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(path, real) || stat(real, &st) != 0)
        return; /* missing: reported by whoever opens it */
    /* a link that the secret reader would not follow is a finding here too */
    char walked[PATH_MAX], why[FINDING_MAX / 2];
    int linked, unsafe;
    if (path[0] == '/' &&
        phc__path_walk(path, walked, sizeof(walked), &linked, &unsafe, why, sizeof(why)) == 0 &&
        linked && unsafe)
        finding(l, "%s %s is a symbolic link to %s through an unsafe element: %s", what, path,
                walked, why);
    look_file(l, what, path, &st, secret);
    look_dirs(l, what, real);
}

/* "file:/path" sources only (env: and pkcs11: are not files). */
static const char *file_source(const char *src)
{
    return src && strncmp(src, "file:", 5) == 0 ? src + 5 : NULL;
}

int phc_config_check_files(const phc_config *cfg, const char *config_path, phc_log_fn log,
                           void *userdata, phc_errbuf *err)
{
    if (!cfg)
        return phc__err(err, PHC_ERR_INTERNAL, "phc_config_check_files: cfg is NULL");
    if (cfg->strict_modes == PHC__MODES_OFF)
        return PHC_OK;
    phc_log lg = {.fn = log, .ud = userdata, .level = PHC_LOG_WARN};
    struct look l = {.cfg = cfg, .log = &lg, .err = err, .rc = PHC_OK};
    look(&l, "config file", config_path, 0);
    look(&l, "CA file (ca_file)", cfg->ca_file, 0);
    look(&l, "PKCS#11 module (pkcs11_module)", cfg->pkcs11_module, 0);
    if (cfg->cert && strncmp(cfg->cert, "pkcs11:", 7) != 0)
        look(&l, "certificate file (cert)", cfg->cert, 0);
    look(&l, "PIN file (pin)", file_source(cfg->pin), 1);
    look(&l, "client secret file (client_secret)", file_source(cfg->client_secret), 1);
    return l.rc;
}
