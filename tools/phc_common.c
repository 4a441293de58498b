#include "phc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int phc_tool_fail(const phc_errbuf *err)
{
    char msg[PHC_HINTED_MAX];
    fprintf(stderr, "phc: %s\n", phc_tool_hinted(err, msg, sizeof(msg)));
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

/* The subcommand as the user should type it: engine-conf, not engine_conf. */
static void shown_name(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s", name);
    for (char *p = buf; *p; p++)
        if (*p == '_')
            *p = '-';
}

/* The long option argv[optind - 1] names ("--name" or "--name=value"), for a message. */
static const char *long_name(int argc, char **argv, char *buf, size_t len)
{
    const char *a = optind - 1 < argc && optind >= 1 ? argv[optind - 1] : NULL;
    if (!a || strncmp(a, "--", 2) != 0)
        return NULL;
    snprintf(buf, len, "%.*s", (int)strcspn(a, "="), a);
    return buf;
}

/* How many long options start with prefix (getopt_long takes unambiguous abbreviations);
 * *one is the last of them. */
static size_t long_matches(const struct option *lo, const char *prefix, const struct option **one)
{
    size_t n = 0, plen = strlen(prefix);
    for (; lo->name; lo++)
        if (strncmp(lo->name, prefix, plen) == 0) {
            n++;
            *one = lo;
        }
    return n;
}

/* One line for what getopt_long refused ('?' or ':'). */
static void getopt_error(int c, int argc, char **argv, const char *sub,
                         const struct option *longopts)
{
    char name[64], lname[64];
    shown_name(name, sizeof(name), sub);
    const char *ln = long_name(argc, argv, lname, sizeof(lname));
    const struct option *one = NULL;
    size_t matches = ln ? long_matches(longopts, ln + 2, &one) : 0;
    if (c == ':') {
        if (ln)
            fprintf(stderr, "phc: %s: option '%s' needs a value (see 'phc help %s')\n", name, ln,
                    name);
        else
            fprintf(stderr, "phc: %s: option '-%c' needs a value (see 'phc help %s')\n", name,
                    optopt, name);
    } else if (ln && strchr(argv[optind - 1], '=') && matches == 1 && one->has_arg == no_argument &&
               one->val == optopt) {
        /* getopt_long's '?' for a known option: a value given to a flag that takes none. */
        fprintf(stderr, "phc: %s: option '%s' takes no value (see 'phc help %s')\n", name, ln,
                name);
    } else if (ln && optopt == 0 && matches > 1) {
        fprintf(stderr, "phc: %s: option '%s' is ambiguous (see 'phc help %s')\n", name, ln, name);
    } else if (ln && optopt == 0) {
        fprintf(stderr, "phc: %s: unknown option '%s' (see 'phc help %s')\n", name, ln, name);
    } else {
        fprintf(stderr, "phc: %s: unknown option '-%c' (see 'phc help %s')\n", name, optopt, name);
    }
}

/* --log-time's getopt value: outside every subcommand's option characters */
#define OPT_LOG_TIME 0x7f01

int phc_tool_getopt(const phc_globals *g, int argc, char **argv, const char *shortopts,
                    const struct option *longopts)
{
    /* shortopts and longopts with -v/--verbose added; ':' first so that a missing value is
     * told apart from an unknown option. */
    char so[128];
    struct option lo[48];
    size_t n = 0;
    snprintf(so, sizeof(so), ":%sv", shortopts);
    for (; longopts[n].name && n < sizeof(lo) / sizeof(lo[0]) - 3; n++)
        lo[n] = longopts[n];
    lo[n++] = (struct option){"verbose", no_argument, NULL, 'v'};
    lo[n++] = (struct option){"log-time", no_argument, NULL, OPT_LOG_TIME};
    lo[n] = (struct option){NULL, 0, NULL, 0};
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, so, lo, NULL);
        if (c == 'v') {
            /* phc.c's globals are a plain (non-const) object that every subcommand reads
             * through a const pointer: -v after the subcommand raises the one level. */
            ((phc_globals *)g)->verbose++;
            continue;
        }
        if (c == OPT_LOG_TIME) {
            ((phc_globals *)g)->log_time = 1;
            continue;
        }
        if (c == '?' || c == ':') {
            getopt_error(c, argc, argv, argv[0], longopts);
            return PHC_GETOPT_ERROR;
        }
        return c;
    }
}

/* Levenshtein distance, case-insensitive, of short words; large when too long. (The same
 * measure as the config's "unknown key" suggestion, which the library keeps to itself.) */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return (size_t)-1;
    size_t row[33];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + ((a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1);
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

const char *phc_tool_suggest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t bestd = 3; /* suggest only within distance 2 */
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, names[i]);
        if (d < bestd) {
            bestd = d;
            best = names[i];
        }
    }
    return best;
}

/* ud: the globals (may be NULL). With --log-time each line carries the UTC time to the
 * millisecond after "phc: ", so that lines still start with "phc: ". */
static void log_to_stderr(void *ud, phc_log_level level, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    const phc_globals *g = ud;
    char stamp[40] = "";
    if (g && g->log_time) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    }
    fprintf(stderr, "phc: %s[%s] %s\n", stamp,
            names[level <= PHC_LOG_DEBUG ? level : PHC_LOG_DEBUG], msg);
}

phc_client_opts phc_tool_log_opts(const phc_globals *g)
{
    phc_client_opts o = {
        .version = PHC_CLIENT_OPTS_VERSION,
        .log = log_to_stderr,
        .log_userdata = (void *)g,
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

/* The body of a new or regular file: a temporary file in the same directory, fsync'ed, given
 * mode and renamed into place, so path is either the complete new content or untouched. */
static int write_replace(const char *path, const void *a, size_t alen, const void *b, size_t blen,
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

/* What is already at path, opened and written where it is, as curl does: a device stays a
 * device, a FIFO's reader gets the data, a symbolic link keeps pointing where it pointed.
 * Nothing is renamed and no mode is changed; mode applies only if the open creates a file. */
static int write_in_place(const char *path, const void *a, size_t alen, const void *b, size_t blen,
                          mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = write_all(fd, a, alen) == 0 && write_all(fd, b, blen) == 0 ? 0 : -1;
    /* fsync only means something for a file (a FIFO answers EINVAL). */
    if (rc == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && fsync(fd) != 0)
        rc = -1;
    int saved = errno;
    if (close(fd) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

/* Whether path's directory is under /dev or /proc (after resolving links): nothing may be
 * created and renamed there, whatever path names. */
static int in_special_dir(const char *path)
{
    char *dcopy = strdup(path);
    if (!dcopy)
        return 0;
    char *real = realpath(dirname(dcopy), NULL);
    free(dcopy);
    if (!real)
        return 0;
    int special = strcmp(real, "/dev") == 0 || strncmp(real, "/dev/", 5) == 0 ||
                  strcmp(real, "/proc") == 0 || strncmp(real, "/proc/", 6) == 0;
    free(real);
    return special;
}

int phc_tool_output_kind(const char *path)
{
    if (strcmp(path, "-") == 0)
        return PHC_OUT_STDOUT;
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT && !in_special_dir(path) ? PHC_OUT_REPLACE : PHC_OUT_IN_PLACE;
    return S_ISREG(st.st_mode) && !in_special_dir(path) ? PHC_OUT_REPLACE : PHC_OUT_IN_PLACE;
}

int phc_tool_write_output_umask(const char *path, const void *a, size_t alen, const void *b,
                                size_t blen)
{
    /* The mode open(2) would give a new file (0666 less the umask), or the mode of the
     * regular file being replaced: what curl -o leaves, since curl truncates in place. The
     * umask is read by setting it back at once (phc is one thread here). */
    mode_t um = umask(077);
    umask(um);
    mode_t mode = 0666 & ~um;
    struct stat st;
    if (strcmp(path, "-") != 0 && lstat(path, &st) == 0 && S_ISREG(st.st_mode))
        mode = st.st_mode & 07777;
    return phc_tool_write_output(path, a, alen, b, blen, mode);
}

int phc_tool_write_output(const char *path, const void *a, size_t alen, const void *b, size_t blen,
                          mode_t mode)
{
    switch (phc_tool_output_kind(path)) {
    case PHC_OUT_STDOUT:
        /* What the command printed before (stdio-buffered) comes first. */
        if (fflush(stdout) != 0 || write_all(STDOUT_FILENO, a, alen) != 0 ||
            write_all(STDOUT_FILENO, b, blen) != 0)
            return -1;
        return 0;
    case PHC_OUT_REPLACE:
        return write_replace(path, a, alen, b, blen, mode);
    default:
        return write_in_place(path, a, alen, b, blen, mode);
    }
}

int phc_tool_config_ready(const phc_globals *g, const phc_config *cfg, phc_errbuf *err)
{
    /* Once per run: install loads the same config up to three times. */
    static int files_checked;
    int rc = PHC_OK;
    if (!files_checked) {
        rc = phc_config_check_files(cfg, g->config_path, log_to_stderr, (void *)g, err);
        files_checked = 1;
    }
    if (rc == PHC_OK && !g->keep_env_secrets)
        rc = phc_config_take_env_secrets(cfg, err);
    return rc;
}

/* The secrets its env: sources name leave the environment as soon as the config is loaded:
 * no child inherits them and /proc/PID/environ does not show them. */
int phc_tool_load_config(const phc_globals *g, phc_config **out)
{
    phc_errbuf err = {0};
    if (phc_config_load(out, g->config_path, &err) != PHC_OK)
        return phc_tool_fail(&err);
    int rc = phc_tool_config_ready(g, *out, &err) == PHC_OK ? 0 : phc_tool_fail(&err);
    if (rc != 0) {
        phc_config_free(*out);
        *out = NULL;
    }
    return rc;
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

void phc_tool_harden(void)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int phc_tool_global_opt(phc_globals *g, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
        if (++*i >= argc)
            return phc_tool_usage("--config needs a file name");
        g->config_path = argv[*i];
    } else if (strncmp(a, "--config=", 9) == 0) {
        g->config_path = a + 9;
    } else if (a[0] == '-' && a[1] && strspn(a + 1, "v") == strlen(a + 1)) {
        g->verbose += (int)strlen(a + 1);
    } else if (strcmp(a, "--verbose") == 0) {
        g->verbose++;
    } else if (strcmp(a, "--log-time") == 0) {
        g->log_time = 1;
    } else {
        return 0;
    }
    return 1;
}

int phc_tool_global_init(void)
{
    phc_global_opts o = PHC_GLOBAL_OPTS_INIT;
    o.flags = PHC_GLOBAL_WIPE_CURL_FREES;
    phc_errbuf err = {0};
    return phc_global_init_opts(&o, &err) == PHC_OK ? 0 : phc_tool_fail(&err);
}
