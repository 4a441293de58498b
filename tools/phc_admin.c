#include "phc_admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int phc_admin_open(const phc_globals *g, phc_config **cfg, phc_token **t)
{
    *t = NULL;
    int rc = phc_tool_load_config(g, cfg);
    if (rc)
        return rc;
    phc_client_opts o = phc_tool_log_opts(g);
    phc_errbuf err = {0};
    if (phc_token_open(t, *cfg, &o, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        phc_admin_quit_if_stuck(&err, rc);
        phc_config_free(*cfg);
        *cfg = NULL;
        return rc;
    }
    return 0;
}

void phc_admin_quit_if_stuck(const phc_errbuf *err, int rc)
{
    if (!err || err->code != PHC_ERR_HSM || !strstr(err->msg, "phc stopped waiting"))
        return;
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
}

int phc_admin_read_file(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    *out = NULL;
    *len = 0;
    if (!f)
        return phc_tool_usage("cannot read %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n > max) {
            rc = phc_tool_usage("%s is larger than %zu bytes", path, max);
            break;
        }
        if (n == cap) {
            char *p = realloc(buf, (cap *= 2) + 1);
            if (!p) {
                free(buf);
                buf = NULL;
            }
            buf = p;
        }
    }
    if (!buf)
        rc = phc_tool_usage("out of memory reading %s", path);
    else if (!rc && ferror(f))
        rc = phc_tool_usage("cannot read %s: %s", path, strerror(errno));
    if (f != stdin)
        fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

const char *phc_admin_time(char *buf, size_t len, long long t, int style)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!t || !gmtime_r(&tt, &tm) ||
        !strftime(buf, len, style ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, len, "-");
    return buf;
}

void phc_admin_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

#ifdef PHC_TEST_HOOKS
void phc_admin_pause(const char *step)
{
    const char *at = getenv("PHC_TEST_PAUSE_AT");
    if (!at || strcmp(at, step) != 0)
        return;
    const char *secs = getenv("PHC_TEST_PAUSE_SECONDS");
    int n = secs ? atoi(secs) : 30;
    fprintf(stderr, "phc: [test] paused at %s (pid %ld)\n", step, (long)getpid());
    fflush(stderr);
    while (n-- > 0)
        sleep(1);
}
#else
/* A shipped phc has no test hook: the environment cannot make it stop anywhere. */
void phc_admin_pause(const char *step)
{
    (void)step;
}
#endif
