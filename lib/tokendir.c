#include "tokendir.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOFTHSM_DEFAULT_CONF "/etc/softhsm/softhsm2.conf"

int phc__tokendir_named_softhsm(const char *module)
{
    const char *base = module ? strrchr(module, '/') : NULL;
    base = base ? base + 1 : module;
    return base && strncmp(base, "libsofthsm2", 11) == 0;
}

/* 1 with why when path exists and this process's effective uid cannot use it: read a file,
 * read and search a directory. */
static int unusable(const char *what, const char *path, char *why, size_t whylen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != EACCES || path[0] != '/')
            return 0; /* missing: the module's own message covers it */
        /* a directory above it cannot be searched: name the first such */
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        for (char *slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
            *slash = '\0';
            struct stat ds;
            if (stat(dir, &ds) == 0 && faccessat(AT_FDCWD, dir, X_OK, AT_EACCESS) != 0) {
                snprintf(why, whylen,
                         "the directory %s (owner uid %u, mode %04o) above %s %s is not "
                         "searchable by uid %u",
                         dir, (unsigned)ds.st_uid, (unsigned)ds.st_mode & 07777, what, path,
                         (unsigned)geteuid());
                return 1;
            }
            *slash = '/';
        }
        return 0;
    }
    int mode = S_ISDIR(st.st_mode) ? R_OK | X_OK : R_OK;
    if (faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0)
        return 0;
    snprintf(why, whylen, "%s %s (owner uid %u, mode %04o) is not readable by uid %u", what, path,
             (unsigned)st.st_uid, (unsigned)st.st_mode & 07777, (unsigned)geteuid());
    return 1;
}

/* The value of directories.tokendir in the SoftHSM configuration at conf, into dir. */
static int conf_tokendir(const char *conf, char *dir, size_t dirlen)
{
    FILE *f = fopen(conf, "re");
    if (!f)
        return -1;
    char line[PATH_MAX + 64];
    int found = -1;
    while (fgets(line, sizeof(line), f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "directories.tokendir", 20) != 0)
            continue;
        p += 20;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p++ != '=')
            continue;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, "\r\n");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n && n < dirlen) {
            memcpy(dir, p, n);
            dir[n] = '\0';
            found = 0; /* the last one counts, as SoftHSM reads it */
        }
    }
    fclose(f);
    return found;
}

static const char *conf_path(void)
{
    const char *conf = getenv("SOFTHSM2_CONF");
    return conf && *conf ? conf : SOFTHSM_DEFAULT_CONF;
}

int phc__tokendir_store(char *dir, size_t dirlen)
{
    return conf_tokendir(conf_path(), dir, dirlen);
}

int phc__tokendir_unreadable(const char *module, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (!why || whylen == 0 || !phc__tokendir_named_softhsm(module))
        return 0;
    const char *conf = conf_path();
    if (unusable("the SoftHSM configuration", conf, why, whylen))
        return 1;
    char dir[PATH_MAX];
    if (conf_tokendir(conf, dir, sizeof(dir)) != 0)
        return 0;
    if (unusable("the token directory", dir, why, whylen))
        return 1;
    /* each token is a directory of files inside it */
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        struct stat st;
        if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub) ||
            stat(sub, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        rc = unusable("the token directory", sub, why, whylen);
    }
    closedir(d);
    return rc;
}

int phc__tokendir_explain(int rc, const char *module, phc_errbuf *err)
{
    char why[512];
    if (rc != PHC_ERR_HSM || !err || !phc__tokendir_unreadable(module, why, sizeof(why)))
        return rc;
    char said[sizeof(err->msg)];
    snprintf(said, sizeof(said), "%s", err->msg);
    return phc__err(err, PHC_ERR_HSM,
                    "%s, so PKCS#11 module '%s' shows no token to this user (the module said: %s)",
                    why, module, said);
}
