/* phc bench, in child processes: N `phc request` processes, N curl processes, and one curl
 * process fetching N URLs. Wall time is taken around posix_spawn .. wait4, CPU time and peak
 * RSS come from the child's own rusage (wait4), so the parent's bookkeeping is not counted. */
#include "phc_bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What one child did. */
struct child {
    double wall; /* seconds, spawn to reaped */
    double cpu;  /* user + system seconds */
    long maxrss_kb;
    int status;    /* exit status, or 128 + signal */
    int timed_out; /* killed at the deadline */
};

static double tv_sec(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Waits for pid until deadline (monotonic seconds), then kills it. A pidfd gives the
 * deadline without polling (which would add its period to every measured latency). */
static void reap(pid_t pid, double deadline, struct child *c)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd >= 0) {
        for (;;) {
            double left = deadline - bench_now();
            struct pollfd p = {.fd = pfd, .events = POLLIN};
            int n = left > 0 ? poll(&p, 1, (int)(left * 1000) + 1) : 0;
            if (n > 0)
                break;
            if (n < 0 && errno == EINTR)
                continue;
            kill(pid, SIGKILL);
            c->timed_out = 1;
            break;
        }
        close(pfd);
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
        ;
    c->cpu = tv_sec(ru.ru_utime) + tv_sec(ru.ru_stime);
    c->maxrss_kb = ru.ru_maxrss;
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Runs argv (PATH search when search) with stdin and stdout on /dev/null and stderr into
 * errfile (truncated). Returns 0, or -1 with errno when it could not be started. */
static int run_child(char *const argv[], char *const envp[], int search, const char *errfile,
                     double deadline, struct child *c)
{
    memset(c, 0, sizeof(*c));
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -1;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    double t0 = bench_now();
    int e = search ? posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp)
                   : posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        errno = e;
        return -1;
    }
    reap(pid, deadline, c);
    c->wall = bench_now() - t0;
    return 0;
}

/* The child's first stderr line that says something, for the failure message. */
static void first_line(const char *file, const char *fallback, char *out, size_t size)
{
    FILE *f = fopen(file, "re");
    char line[512];
    snprintf(out, size, "%s", fallback);
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0]) {
            /* Cut to fit: the first words name the cause. */
            snprintf(out, size, "%.*s", (int)size - 1,
                     strncmp(line, "phc: ", 5) == 0 ? line + 5 : line);
            break;
        }
    }
    if (f)
        fclose(f);
}

/* ---- N processes, T at a time, phc and curl interleaved ----------------------------------- */

/* One program's tally in a spawner thread. */
struct side {
    double *lat; /* its slice of the result's latency array */
    int attempted, failures, first_exit;
    char first_msg[PHC_ERRMSG_MAX];
    double cpu, wall;
    long maxrss_kb;
};

/* One thread of the oneshot run. phc and curl alternate (and swap who goes first each round)
 * so that both see the same machine: on a shared host, load that comes and goes during the
 * run falls on both sides alike instead of skewing the ratio. */
struct spawner {
    const bench_env *env;
    int index, n;
    double deadline;
    struct side side[2]; /* 0: phc request, 1: curl (when env->curl) */
};

static void tally(struct side *sd, const struct child *c, const char *errfile, const char *who,
                  int is_curl)
{
    sd->lat[sd->attempted++] = c->wall * 1000.0;
    sd->cpu += c->cpu;
    sd->wall += c->wall;
    if (c->maxrss_kb > sd->maxrss_kb)
        sd->maxrss_kb = c->maxrss_kb;
    if (c->status == 0)
        return;
    sd->failures++;
    if (!sd->first_exit) {
        char why[200];
        first_line(errfile, c->timed_out ? "killed at the --timeout deadline" : "", why,
                   sizeof(why));
        sd->first_exit = is_curl ? 1 : (c->status > 9 ? 9 : c->status);
        snprintf(sd->first_msg, sizeof(sd->first_msg), "%s exited %d%s%s", who, c->status,
                 why[0] ? ": " : "", why);
    }
}

static void give_up(struct side *sd, int left, int exit_code, const char *msg)
{
    sd->failures += left;
    if (!sd->first_exit) {
        sd->first_exit = exit_code;
        snprintf(sd->first_msg, sizeof(sd->first_msg), "%s", msg);
    }
}

static void *spawner_main(void *arg)
{
    struct spawner *s = arg;
    const bench_env *env = s->env;
    char errfile[4200];
    snprintf(errfile, sizeof(errfile), "%s/child-%d.err", env->tmpdir, s->index);
    /* argv: ours as `phc --config CFG request PATH`, curl's as its prepared options + URL. */
    char *phc_argv[] = {(char *)env->self_exe,
                        "--config",
                        (char *)env->g->config_path,
                        "request",
                        (char *)env->path,
                        NULL,
                        NULL,
                        NULL};
    if (env->agent_arg) { /* through the agent: phc request --agent unix:PATH PATH */
        phc_argv[4] = "--agent";
        phc_argv[5] = (char *)env->agent_arg;
        phc_argv[6] = (char *)env->path;
    }
    size_t ncurl = 0;
    while (env->curl && env->curl_args[ncurl])
        ncurl++;
    char **curl_argv = env->curl ? calloc(ncurl + 4, sizeof(char *)) : NULL;
    int sides = env->curl ? 2 : 1;
    if (env->curl && !curl_argv) {
        give_up(&s->side[0], s->n, 9, "out of memory");
        give_up(&s->side[1], s->n, 9, "out of memory");
        return NULL;
    }
    if (curl_argv) {
        curl_argv[0] = (char *)env->curl;
        memcpy(curl_argv + 1, env->curl_args, ncurl * sizeof(char *));
        curl_argv[ncurl + 1] = "--fail";
        curl_argv[ncurl + 2] = env->url;
    }
    for (int i = 0; i < s->n; i++) {
        for (int j = 0; j < sides; j++) {
            int k = sides == 2 ? (i + j) % 2 : 0;
            struct side *sd = &s->side[k];
            if (sd->attempted + sd->failures > i)
                continue; /* this side already gave up */
            char msg[PHC_ERRMSG_MAX];
            if (bench_now() > s->deadline) {
                snprintf(msg, sizeof(msg),
                         "measurement stopped by --timeout after %d of %d processes", i, s->n);
                give_up(sd, s->n - i, 7, msg);
                continue;
            }
            struct child c;
            int rc = k ? run_child(curl_argv, env->curl_envp, 1, errfile, s->deadline, &c)
                       : run_child(phc_argv, environ, 0, errfile, s->deadline, &c);
            if (rc != 0) {
                snprintf(msg, sizeof(msg), "cannot run %.300s: %s", k ? env->curl : env->self_exe,
                         strerror(errno));
                give_up(sd, s->n - i, 9, msg);
                continue;
            }
            tally(sd, &c, errfile, k ? "curl" : "phc request", k);
        }
    }
    free(curl_argv);
    return NULL;
}

static void side_result(bench_result *out, const char *mode, const bench_env *env,
                        const struct spawner *s, int started, int k, double *lat)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->mode, sizeof(out->mode), "%s", mode);
    out->requests = env->requests;
    out->threads = env->threads;
    double cpu = 0, wall = 0;
    size_t nlat = 0;
    for (int i = 0; i < env->threads; i++) {
        if (i >= started) {
            out->failures += s[i].n;
            continue;
        }
        const struct side *sd = &s[i].side[k];
        memmove(lat + nlat, sd->lat, (size_t)sd->attempted * sizeof(*lat));
        nlat += (size_t)sd->attempted;
        cpu += sd->cpu;
        wall += sd->wall;
        out->failures += sd->failures;
        if (sd->maxrss_kb > out->peak_rss_kb)
            out->peak_rss_kb = sd->maxrss_kb;
        if (!out->first_exit && sd->first_exit) {
            out->first_exit = sd->first_exit;
            snprintf(out->first_msg, sizeof(out->first_msg), "%s", sd->first_msg);
        }
    }
    if (started < env->threads && !out->first_exit) {
        out->first_exit = 9;
        snprintf(out->first_msg, sizeof(out->first_msg), "cannot start spawner threads");
    }
    /* The time this side's processes ran, spread over the threads that ran them: with the
     * other side interleaved, the elapsed time of the whole run belongs to neither. */
    out->seconds = wall / env->threads;
    bench_percentiles(out, lat, nlat);
    out->cpu_ms_per_request = env->requests ? cpu * 1000.0 / env->requests : 0;
}

int bench_run_oneshot(const bench_env *env, bench_result *phc_out, bench_result *curl_out)
{
    int threads = env->threads, rc = 0, started = 0;
    size_t n = (size_t)env->requests;
    double *lat = calloc(2 * n + 2, sizeof(*lat));
    struct spawner *s = calloc((size_t)threads, sizeof(*s));
    pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
    if (!lat || !s || !tid) {
        fprintf(stderr, "phc: out of memory\n");
        rc = 9;
        goto out;
    }
    double deadline = bench_now() + env->timeout;
    for (int i = 0, off = 0; i < threads; i++) {
        s[i].env = env;
        s[i].index = i;
        s[i].n = env->requests / threads + (i < env->requests % threads);
        s[i].side[0].lat = lat + off;
        s[i].side[1].lat = lat + n + 1 + off;
        s[i].deadline = deadline;
        off += s[i].n;
    }
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, spawner_main, &s[started]) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    side_result(phc_out, "oneshot", env, s, started, 0, lat);
    if (env->curl)
        side_result(curl_out, "curl-oneshot", env, s, started, 1, lat + n + 1);
out:
    free(lat);
    free(s);
    free(tid);
    return rc;
}

/* ---- one curl process, many URLs ---------------------------------------------------------- */

struct curl_run {
    struct child c;
    int ok;        /* transfers with a 2xx status */
    double *lat;   /* time_total of each transfer after the first, ms */
    size_t nlat;   /* filled */
    char msg[256]; /* first curl error line */
};

/* One curl with n URLs from a -K file; per-transfer status and time come back on stderr
 * through -w, so the bodies can go to /dev/null. */
static int curl_urls(const bench_env *env, const char *mode, int n, double deadline,
                     struct curl_run *r)
{
    char kfile[4200], errfile[4200];
    snprintf(kfile, sizeof(kfile), "%s/urls-%d.curlrc", env->tmpdir, n);
    snprintf(errfile, sizeof(errfile), "%s/curl-%d.err", env->tmpdir, n);
    FILE *k = fopen(kfile, "we");
    if (!k)
        return -1;
    /* Inside double quotes curl's config parser takes backslash escapes. */
    for (int i = 0; i < n; i++) {
        fputs("url = \"", k);
        for (const char *c = env->url; *c; c++) {
            if (*c == '"' || *c == '\\')
                fputc('\\', k);
            fputc(*c, k);
        }
        fputs("\"\n", k);
    }
    if (fclose(k) != 0)
        return -1;
    size_t ncurl = 0;
    while (env->curl_args[ncurl])
        ncurl++;
    char **argv = calloc(ncurl + 12, sizeof(char *));
    if (!argv)
        return -1;
    size_t a = 0;
    argv[a++] = (char *)env->curl;
    for (size_t i = 0; i < ncurl; i++)
        argv[a++] = env->curl_args[i];
    argv[a++] = "-w";
    argv[a++] = "%{stderr}@@ %{http_code} %{time_total}\\n";
    /* Connection: close makes every transfer open a new connection, as the in-process
     * full/resumed modes do; --no-sessionid turns off resumption for full. */
    if (strcmp(mode, "keepalive") != 0) {
        argv[a++] = "-H";
        argv[a++] = "Connection: close";
    }
    if (strcmp(mode, "full") == 0)
        argv[a++] = "--no-sessionid";
    argv[a++] = "-K";
    argv[a++] = kfile;
    argv[a] = NULL;
    int rc = run_child(argv, env->curl_envp, 1, errfile, deadline, &r->c);
    free(argv);
    unlink(kfile);
    if (rc != 0)
        return -1;
    FILE *f = fopen(errfile, "re");
    char line[512];
    int seen = 0;
    while (f && fgets(line, sizeof(line), f)) {
        int code = 0;
        double t = 0;
        if (sscanf(line, "@@ %d %lf", &code, &t) == 2) {
            if (code >= 200 && code <= 299)
                r->ok++;
            if (seen++ > 0 && r->lat && r->nlat < (size_t)n)
                r->lat[r->nlat++] = t * 1000.0;
        } else if (!r->msg[0] && line[0] != '\n') {
            line[strcspn(line, "\r\n")] = '\0';
            snprintf(r->msg, sizeof(r->msg), "%.*s", (int)sizeof(r->msg) - 1, line);
        }
    }
    if (f)
        fclose(f);
    unlink(errfile);
    return 0;
}

int bench_run_curl_steady(const bench_env *env, const char *mode, bench_result *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->mode, sizeof(out->mode), "curl-%s", mode);
    out->threads = 1;
    int n = env->requests;
    out->requests = n - 1;
    struct curl_run one = {0}, many = {0};
    many.lat = calloc((size_t)n + 1, sizeof(double));
    if (!many.lat) {
        fprintf(stderr, "phc: out of memory\n");
        return 9;
    }
    double deadline = bench_now() + env->timeout;
    if (curl_urls(env, mode, 1, deadline, &one) != 0 ||
        curl_urls(env, mode, n, deadline, &many) != 0) {
        out->failures = n;
        out->first_exit = 9;
        snprintf(out->first_msg, sizeof(out->first_msg), "cannot run %s: %s", env->curl,
                 strerror(errno));
        free(many.lat);
        return 0;
    }
    /* The difference is n - 1 transfers of a curl already started and connected: its
     * start-up, engine load, login and first handshake cancel out. */
    out->seconds = many.c.wall - one.c.wall;
    if (out->seconds < 1e-6)
        out->seconds = 1e-6;
    double cpu = many.c.cpu - one.c.cpu;
    out->cpu_ms_per_request = cpu > 0 ? cpu * 1000.0 / out->requests : 0;
    out->peak_rss_kb = many.c.maxrss_kb;
    out->failures = (n - many.ok) + (1 - one.ok);
    if (out->failures) {
        const char *why = many.msg[0] ? many.msg : one.msg;
        out->first_exit = 1;
        snprintf(out->first_msg, sizeof(out->first_msg), "curl: %d of %d transfers failed%s%s",
                 out->failures, n + 1, why[0] ? ": " : "", why);
    }
    if (many.c.timed_out || one.c.timed_out) {
        out->first_exit = 7;
        snprintf(out->first_msg, sizeof(out->first_msg), "curl killed at the --timeout deadline");
    }
    bench_percentiles(out, many.lat, many.nlat);
    free(many.lat);
    return 0;
}
