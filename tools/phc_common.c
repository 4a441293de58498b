#include "phc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int phc_tool_fail(const phc_errbuf *err)
{
    fprintf(stderr, "phc: %s\n", err->msg[0] ? err->msg : phc_err_name(err->code));
    return phc_err_exit_code(err->code);
}

int phc_tool_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("phc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return phc_err_exit_code(PHC_ERR_CONFIG);
}

static void log_to_stderr(void *ud, phc_log_level level, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "phc: [%s] %s\n", names[level <= PHC_LOG_DEBUG ? level : PHC_LOG_DEBUG], msg);
}

phc_client_opts phc_tool_log_opts(const phc_globals *g)
{
    phc_client_opts o = {
        .log = log_to_stderr,
        .log_userdata = NULL,
        .level = g->verbose >= 2   ? PHC_LOG_DEBUG
                 : g->verbose == 1 ? PHC_LOG_INFO
                                   : PHC_LOG_WARN,
    };
    return o;
}

/* write(2) until all of len is out; 0, or -1 with errno set. */
static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int phc_tool_write_atomic(const char *path, const void *a, size_t alen, const void *b, size_t blen,
                          mode_t mode)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    char *dcopy = strdup(path);
    int fd = -1, rc = -1, saved = 0;
    if (!tmp || !dcopy) {
        saved = ENOMEM;
        goto out;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        saved = errno;
        tmp[0] = '\0';
        goto out;
    }
    if (write_all(fd, a, alen) != 0 || write_all(fd, b, blen) != 0 || fchmod(fd, mode) != 0 ||
        fsync(fd) != 0) {
        saved = errno;
        goto out;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0 || rename(tmp, path) != 0) {
        saved = errno;
        goto out;
    }
    /* The rename itself must reach the disk for "either old or new" to hold after a crash. */
    int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc && tmp && tmp[0])
        unlink(tmp);
    free(tmp);
    free(dcopy);
    if (rc)
        errno = saved;
    return rc;
}

int phc_tool_load_config(const phc_globals *g, phc_config **out)
{
    phc_errbuf err = {0};
    if (phc_config_load(out, g->config_path, &err) != PHC_OK)
        return phc_tool_fail(&err);
    return 0;
}

int phc_tool_open_client(const phc_globals *g, phc_client **out)
{
    phc_config *cfg = NULL;
    int rc = phc_tool_load_config(g, &cfg);
    if (rc != 0)
        return rc;
    phc_client_opts opts = phc_tool_log_opts(g);
    phc_errbuf err = {0};
    int prc = phc_client_new(out, cfg, &opts, &err);
    phc_config_free(cfg);
    return prc == PHC_OK ? 0 : phc_tool_fail(&err);
}
