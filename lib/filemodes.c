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
#include "config.h"
#include "err.h"
#include "log.h"

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

static void look(struct look *l, const char *what, const char *path, int secret)
{
    if (!path || !*path || l->rc != PHC_OK)
        return;
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(path, real) || stat(real, &st) != 0)
        return; /* missing: reported by whoever opens it */
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
