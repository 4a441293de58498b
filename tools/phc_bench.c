/* phc bench [--mode LIST] [--requests N] [--threads T] [--json] [--timeout S]
 *           [--signatures N] [--curl PROG | --no-curl] PATH
 *
 * Measures the configured client against the configured server, and in the same run the two
 * things it must be judged by: the token's own signing rate (the floor of a handshake) and
 * the stock curl CLI doing the same job with the libp11 engine (what an operator would
 * otherwise script). Ratios against the targets of the performance issue are printed beside
 * the figures. A benchmark, never a test: nothing here asserts timings. */
#include "phc_bench.h"
#include "phc_engine_conf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MODE_ONESHOT 0x1u
#define MODE_KEEPALIVE 0x2u
#define MODE_FULL 0x4u
#define MODE_RESUMED 0x8u
#define MODE_ALL 0xfu
#define MODE_AGENT 0x10u /* not in all: it starts an agent */
#define MAX_RESULTS 16

/* The PIN-bearing engine config for curl, removed even when the bench is interrupted. */
static char pin_conf_path[4200];

static void on_signal(int sig)
{
    if (pin_conf_path[0])
        unlink(pin_conf_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_modes(const char *arg, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"oneshot", MODE_ONESHOT}, {"keepalive", MODE_KEEPALIVE}, {"full", MODE_FULL},
                 {"resumed", MODE_RESUMED}, {"agent", MODE_AGENT},         {"all", MODE_ALL}};
    for (const char *p = arg; *p;) {
        size_t len = strcspn(p, ",");
        size_t i = 0;
        for (; i < sizeof(names) / sizeof(names[0]); i++)
            if (strlen(names[i].name) == len && strncmp(p, names[i].name, len) == 0)
                break;
        if (i == sizeof(names) / sizeof(names[0]))
            return -1;
        *out |= names[i].bit;
        p += len + (p[len] == ',');
    }
    return 0;
}

static char *find_in_path(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0 ? strdup(prog) : NULL;
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t len = strcspn(p, ":");
        char cand[PATH_MAX];
        if (len > 0 &&
            snprintf(cand, sizeof(cand), "%.*s/%s", (int)len, p, prog) < (int)sizeof(cand) &&
            access(cand, X_OK) == 0)
            return strdup(cand);
        p += len + (p[len] == ':');
    }
    return NULL;
}

/* ---- curl's side: the same URL, key, certificate, CA and pinned address ------------------ */

struct curl_setup {
    char *args[48];
    int nargs;
    char *owned[16]; /* strings built here, freed at the end */
    int nowned;
    char **envp;
};

static char *own(struct curl_setup *cs, char *s)
{
    if (s && cs->nowned < (int)(sizeof(cs->owned) / sizeof(cs->owned[0])))
        cs->owned[cs->nowned++] = s;
    else {
        free(s);
        s = NULL;
    }
    return s;
}

static void curl_setup_free(struct curl_setup *cs)
{
    for (int i = 0; i < cs->nowned; i++)
        free(cs->owned[i]);
    if (cs->envp) {
        for (char **e = cs->envp; *e; e++)
            if (strncmp(*e, "OPENSSL_CONF=", 13) == 0)
                free(*e);
        free(cs->envp);
    }
    memset(cs, 0, sizeof(*cs));
}

/* Splits url = https://host[:port][/] into the base URL and host/port for --resolve. */
static int split_url(const char *url, char **base, char **host, int *port)
{
    if (strncmp(url, "https://", 8) != 0)
        return -1;
    const char *auth = url + 8, *end = auth + strcspn(auth, "/");
    const char *h = auth, *hend, *colon;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(end - h));
        if (!hend)
            return -1;
        h++;
        colon = hend + 1 < end && hend[1] == ':' ? hend + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hend = colon ? colon : end;
    }
    *port = colon ? atoi(colon + 1) : 443;
    *host = strndup(h, (size_t)(hend - h));
    *base = strndup(url, (size_t)(end - url));
    return *host && *base && *port > 0 ? 0 : -1;
}

static int build_curl(bench_env *env, const phc_config *cfg, const char *engine_conf,
                      const char *capath, struct curl_setup *cs)
{
    char *base = NULL, *host = NULL;
    int port = 0, is_file = 0;
    if (split_url(phc_config_get(cfg, "url"), &base, &host, &port) != 0) {
        free(base);
        free(host);
        return -1;
    }
    size_t ulen = strlen(base) + strlen(env->path) + 1;
    env->url = own(cs, malloc(ulen));
    if (env->url)
        snprintf(env->url, ulen, "%s%s", base, env->path);
    free(base);
    /* The URIs engine-conf wrote (with the active pair's id): the config's key URI alone
     * matches every pair of the client after a rotation, and curl would take any. */
    char *key = NULL, *cert = NULL;
    free(phc_engine_conf_cert_ref(cfg, &is_file)); /* only is_file is needed */
    if (phc_engine_conf_uris(engine_conf, &key, &cert) == 0) {
        key = own(cs, key);
        cert = own(cs, cert);
    }
    char *timeout = own(cs, malloc(32));
    if (!env->url || !key || !cert || !timeout) {
        free(host);
        return -1;
    }
    snprintf(timeout, 32, "%d", (int)env->timeout);
    /* -q first: no ~/.curlrc. No URL globbing: PATH is literal. HTTP/1.1 as phconnect
     * speaks it; no proxy, as phconnect. */
    char *fixed[] = {"-q", "-sS", "--globoff", "--http1.1", "--noproxy", "*", "--max-time", timeout,
                     "--engine", "pkcs11", "--key-type", "ENG", "--key", key, "--cacert",
                     (char *)phc_config_get(cfg, "ca_file"),
                     /* Debian's curl adds /etc/ssl/certs to --cacert unless a CA path is
                      * given: an empty one leaves the pinned CA as the only anchor. */
                     "--capath", (char *)capath};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        cs->args[cs->nargs++] = fixed[i];
    if (!is_file) {
        cs->args[cs->nargs++] = "--cert-type";
        cs->args[cs->nargs++] = "ENG";
    }
    cs->args[cs->nargs++] = "--cert";
    cs->args[cs->nargs++] = cert;
    const char *pinned = phc_config_get(cfg, "pinned_ips");
    if (pinned) {
        /* --resolve host:port:ip1,[ip6],...: curl connects to the pinned addresses, no DNS. */
        size_t rlen = strlen(host) + strlen(pinned) * 2 + 32;
        char *r = own(cs, malloc(rlen));
        if (!r) {
            free(host);
            return -1;
        }
        int off = snprintf(r, rlen, "%s:%d:", host, port);
        for (const char *p = pinned; *p;) {
            p += strspn(p, " \t,");
            size_t len = strcspn(p, " \t,");
            if (!len)
                break;
            int v6 = memchr(p, ':', len) != NULL;
            off += snprintf(r + off, rlen - (size_t)off, "%s%s%.*s%s", r[off - 1] == ':' ? "" : ",",
                            v6 ? "[" : "", (int)len, p, v6 ? "]" : "");
            p += len;
        }
        cs->args[cs->nargs++] = "--resolve";
        cs->args[cs->nargs++] = r;
    }
    free(host);
    const char *src = phc_config_get(cfg, "source_address");
    if (src) {
        char *iface = own(cs, malloc(strlen(src) + 8));
        if (!iface)
            return -1;
        sprintf(iface, "host!%s", src);
        cs->args[cs->nargs++] = "--interface";
        cs->args[cs->nargs++] = iface;
    }
    cs->args[cs->nargs] = NULL;

    size_t n = 0;
    while (environ[n])
        n++;
    cs->envp = calloc(n + 2, sizeof(char *));
    if (!cs->envp)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OPENSSL_CONF=", 13) != 0)
            cs->envp[k++] = environ[i];
    size_t clen = strlen(engine_conf) + 16;
    if (!(cs->envp[k] = malloc(clen)))
        return -1;
    snprintf(cs->envp[k], clen, "OPENSSL_CONF=%s", engine_conf);
    env->curl_args = cs->args;
    env->curl_envp = cs->envp;
    return 0;
}

/* `phc engine_conf --with-pin -o FILE` for our configuration: the engine conf curl loads, with
 * the PIN in the engine's PIN control (never in argv), 0600 inside our 0700 directory. */
static int render_engine_conf(const bench_env *env, const char *out)
{
    char errfile[4200];
    snprintf(errfile, sizeof(errfile), "%s/engine-conf.err", env->tmpdir);
    char *argv[] = {(char *)env->self_exe, "--config",   (char *)env->g->config_path,
                    "engine_conf",         "--with-pin", "-o",
                    (char *)out,           NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st = 0, e = posix_spawn_file_actions_init(&fa);
    if (e == 0) {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    if (e == 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    if (e == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        unlink(errfile);
        return 0;
    }
    FILE *f = fopen(errfile, "re");
    char line[512] = "";
    if (f && fgets(line, sizeof(line), f))
        line[strcspn(line, "\n")] = '\0';
    if (f)
        fclose(f);
    unlink(errfile);
    fprintf(stderr, "phc: no curl comparison: cannot render the engine config (%s)\n",
            line[0] ? line
            : e     ? strerror(e)
                    : "engine_conf failed");
    return -1;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* ---- output ------------------------------------------------------------------------------- */

static double rps(const bench_result *r)
{
    return r->seconds > 0 ? r->requests / r->seconds : 0;
}

static void print_json(const bench_result *r)
{
    printf("{\"mode\":\"%s\",\"requests\":%d,\"threads\":%d,\"seconds\":%.6f,\"rps\":%.3f,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"cpu_ms_per_request\":%.4f,\"peak_rss_kb\":%ld,"
           "\"failures\":%d}\n",
           r->mode, r->requests, r->threads, r->seconds, rps(r), r->p50_ms, r->p99_ms,
           r->cpu_ms_per_request, r->peak_rss_kb, r->failures);
    fflush(stdout);
}

static const bench_result *find(const bench_result *res, int n, const char *mode, int threads)
{
    for (int i = 0; i < n; i++)
        if (strcmp(res[i].mode, mode) == 0 && (threads == 0 || res[i].threads == threads) &&
            res[i].requests > 0 && res[i].failures == 0)
            return &res[i];
    return NULL;
}

struct target {
    const char *what;
    double ratio; /* < 0: not measured */
    double limit;
    int at_most; /* 1: ratio <= limit passes; 0: ratio >= limit passes */
};

static void ratio_note(char *buf, size_t size, const bench_result *r, const bench_result *all,
                       int n, int threads)
{
    const bench_result *c;
    buf[0] = '\0';
    if (strcmp(r->mode, "oneshot") == 0 && (c = find(all, n, "curl-oneshot", 0)) && c->p50_ms > 0)
        snprintf(buf, size, "p50 %.2fx curl, RSS %.2fx curl", r->p50_ms / c->p50_ms,
                 c->peak_rss_kb ? (double)r->peak_rss_kb / (double)c->peak_rss_kb : 0);
    else if (strcmp(r->mode, "keepalive") == 0 && r->threads == 1 &&
             (c = find(all, n, "curl-keepalive", 0)) && rps(c) > 0)
        snprintf(buf, size, "rate %.2fx curl", rps(r) / rps(c));
    else if (strcmp(r->mode, "keepalive") == 0 && r->threads > 1 &&
             (c = find(all, n, "keepalive", 1)) && c->cpu_ms_per_request > 0)
        snprintf(buf, size, "cpu/req %.2fx 1 thread",
                 r->cpu_ms_per_request / c->cpu_ms_per_request);
    else if (strcmp(r->mode, "full") == 0 && (c = find(all, n, "sign", 0)) && c->p50_ms > 0)
        snprintf(buf, size, "cpu/req %.2fx 1 signature", r->cpu_ms_per_request / c->p50_ms);
    else if (strcmp(r->mode, "agent-oneshot") == 0 && (c = find(all, n, "curl-oneshot", 0)) &&
             c->p50_ms > 0)
        snprintf(buf, size, "p50 %.2fx curl", r->p50_ms / c->p50_ms);
    else if (strcmp(r->mode, "agent") == 0 && (c = find(all, n, "keepalive", threads)) &&
             rps(c) > 0)
        snprintf(buf, size, "rate %.2fx in-process; agent CPU %.3f ms/req", rps(r) / rps(c),
                 r->server_cpu_ms);
    else if (strcmp(r->mode, "resumed") == 0 && (c = find(all, n, "full", threads)) && rps(c) > 0)
        snprintf(buf, size, "rate %.2fx full", rps(r) / rps(c));
    else if (strncmp(r->mode, "curl-", 5) == 0 && strcmp(r->mode, "curl-oneshot") != 0 &&
             (c = find(all, n, r->mode + 5, threads)) && rps(r) > 0)
        snprintf(buf, size, "phc %.2fx its rate", rps(c) / rps(r));
}

static void print_table(const bench_result *res, int n, int threads)
{
    printf("%-14s %8s %3s %9s %10s %8s %8s %10s %8s %4s  %s\n", "mode", "requests", "thr",
           "seconds", "req/s", "p50 ms", "p99 ms", "cpu ms/req", "RSS kB", "fail", "ratio");
    for (int i = 0; i < n; i++) {
        char note[96];
        ratio_note(note, sizeof(note), &res[i], res, n, threads);
        printf("%-14s %8d %3d %9.3f %10.1f %8.3f %8.3f %10.3f %8ld %4d  %s\n", res[i].mode,
               res[i].requests, res[i].threads, res[i].seconds, rps(&res[i]), res[i].p50_ms,
               res[i].p99_ms, res[i].cpu_ms_per_request, res[i].peak_rss_kb, res[i].failures, note);
    }
    const bench_result *one = find(res, n, "oneshot", 0), *c1 = find(res, n, "curl-oneshot", 0);
    const bench_result *ka = find(res, n, "keepalive", 1), *cka = find(res, n, "curl-keepalive", 0);
    const bench_result *kat = threads > 1 ? find(res, n, "keepalive", threads) : NULL;
    const bench_result *full = find(res, n, "full", threads), *sign = find(res, n, "sign", 0);
    const bench_result *resumed = find(res, n, "resumed", threads);
    const bench_result *aone = find(res, n, "agent-oneshot", 0), *ag = find(res, n, "agent", 0);
    struct target t[] = {
        {"oneshot: p50 wall vs curl's one-shot request",
         one && c1 && c1->p50_ms > 0 ? one->p50_ms / c1->p50_ms : -1, 0.8, 1},
        {"oneshot: peak RSS vs curl's",
         one && c1 && c1->peak_rss_kb ? (double)one->peak_rss_kb / (double)c1->peak_rss_kb : -1,
         1.0, 1},
        {"keepalive: steady rate vs curl's (N URLs minus 1)",
         ka && cka && rps(cka) > 0 ? rps(ka) / rps(cka) : -1, 1.2, 0},
        {"resumed: rate vs full", resumed && full && rps(full) > 0 ? rps(resumed) / rps(full) : -1,
         3.0, 0},
        {"full: client CPU per handshake vs one signature (p50)",
         full && sign && sign->p50_ms > 0 ? full->cpu_ms_per_request / sign->p50_ms : -1, 1.5, 1},
        {"keepalive: CPU per request, T threads vs 1",
         kat && ka && ka->cpu_ms_per_request > 0 ? kat->cpu_ms_per_request / ka->cpu_ms_per_request
                                                 : -1,
         1.1, 1},
        {"agent: one-shot phc request wall vs curl + engine",
         aone && c1 && c1->p50_ms > 0 ? aone->p50_ms / c1->p50_ms : -1, 0.3, 1},
        {"agent: T clients' rate vs in-process keep-alive",
         ag && kat && rps(kat) > 0                 ? rps(ag) / rps(kat)
         : ag && ka && threads == 1 && rps(ka) > 0 ? rps(ag) / rps(ka)
                                                   : -1,
         0.5, 0},
    };
    printf("\ntargets:\n");
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (t[i].ratio < 0)
            continue;
        int pass = t[i].at_most ? t[i].ratio <= t[i].limit : t[i].ratio >= t[i].limit;
        printf("  %-52s %6.2fx  (%s %.1fx)  %s\n", t[i].what, t[i].ratio,
               t[i].at_most ? "<=" : ">=", t[i].limit, pass ? "PASS" : "MISS");
    }
}

static void progress(int json, const char *what)
{
    if (!json && isatty(STDERR_FILENO))
        fprintf(stderr, "phc bench: %s...\n", what);
}

/* ---- the subcommand ----------------------------------------------------------------------- */

int phc_cmd_bench(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, 'm'},    {"requests", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 'T'}, {"signatures", required_argument, NULL, 's'},
        {"curl", required_argument, NULL, 'C'},    {"no-curl", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    unsigned modes = 0;
    int requests = 200, threads = 1, json = 0, timeout = 300, signatures = -1, no_curl = 0, c;
    const char *curl_prog = "curl";
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "m:n:t:jh", longopts)) != -1) {
        switch (c) {
        case 'm':
            if (parse_modes(optarg, &modes) != 0)
                return phc_tool_usage(
                    "--mode takes oneshot, keepalive, full, resumed, agent or all "
                    "(comma-separated), not '%s'",
                    optarg);
            break;
        case 'n':
            if (parse_int(optarg, 1, BENCH_MAX_REQUESTS, &requests) != 0)
                return phc_tool_usage("--requests must be 1..%d", BENCH_MAX_REQUESTS);
            break;
        case 't':
            if (parse_int(optarg, 1, BENCH_MAX_THREADS, &threads) != 0)
                return phc_tool_usage("--threads must be 1..%d", BENCH_MAX_THREADS);
            break;
        case 'j':
            json = 1;
            break;
        case 'T':
            if (parse_int(optarg, 1, 3600, &timeout) != 0)
                return phc_tool_usage("--timeout must be 1..3600 seconds");
            break;
        case 's':
            if (parse_int(optarg, 1, BENCH_MAX_REQUESTS, &signatures) != 0)
                return phc_tool_usage("--signatures must be 1..%d", BENCH_MAX_REQUESTS);
            break;
        case 'C':
            curl_prog = optarg;
            break;
        case 'N':
            no_curl = 1;
            break;
        case 'h':
            printf("usage: phc bench [--mode oneshot|keepalive|full|resumed|agent|all[,...]] "
                   "[--requests N]\n                 [--threads T] [--json] [--timeout S] "
                   "[--signatures N]\n                 [--curl PROG | --no-curl] PATH\n"
                   "Requests to url + PATH: oneshot = N `phc request` processes; keepalive = "
                   "reused\nconnections; full = new connection and handshake each; resumed = "
                   "new connections\nresuming the TLS session. In the same run: the token's "
                   "signing rate and curl\nwith the libp11 engine doing the same job. Each "
                   "measurement stops after --timeout\nseconds (default 300).\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc - 1)
        return phc_tool_usage("bench needs exactly one PATH (e.g. /v2/asset/sites)");
    if (argv[optind][0] != '/')
        return phc_tool_usage("PATH must start with '/': '%s'", argv[optind]);
    if (!modes)
        modes = MODE_ALL;
    if (signatures < 0)
        signatures = requests < 10 ? 10 : requests > 2000 ? 2000 : requests;

    bench_env env;
    memset(&env, 0, sizeof(env));
    env.g = g;
    env.path = argv[optind];
    env.requests = requests;
    env.threads = threads;
    env.timeout = timeout;
    struct curl_setup cs;
    memset(&cs, 0, sizeof(cs));
    bench_result res[MAX_RESULTS];
    int nres = 0, rc = 0;
    phc_config *cfg = NULL;
    char *curl_path = NULL;
    char capath[4200]; /* curl's empty CA path: referenced by its arguments until the end */
    struct sigaction sa, old_int, old_term, old_hup;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);

    ssize_t len = readlink("/proc/self/exe", env.self_exe, sizeof(env.self_exe) - 1);
    if (len <= 0) {
        fprintf(stderr, "phc: cannot find our own binary through /proc/self/exe: %s\n",
                strerror(errno));
        rc = 9;
        goto out;
    }
    env.self_exe[len] = '\0';
    const char *tmp = getenv("TMPDIR");
    snprintf(env.tmpdir, sizeof(env.tmpdir), "%s/phc-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(env.tmpdir)) {
        fprintf(stderr, "phc: cannot make a temporary directory in %s: %s\n",
                tmp && *tmp ? tmp : "/tmp", strerror(errno));
        env.tmpdir[0] = '\0';
        rc = 2;
        goto out;
    }
    if ((rc = phc_tool_load_config(g, &cfg)) != 0)
        goto out;
    if ((rc = phc_tool_open_client(g, &env.client)) != 0)
        goto out;

    if (!no_curl && !(curl_path = find_in_path(curl_prog)))
        fprintf(stderr, "phc: no curl comparison: '%s' not found\n", curl_prog);
    if (curl_path) {
        snprintf(pin_conf_path, sizeof(pin_conf_path), "%s/engine.cnf", env.tmpdir);
        snprintf(capath, sizeof(capath), "%s/empty-capath", env.tmpdir);
        if (mkdir(capath, 0700) != 0 || render_engine_conf(&env, pin_conf_path) != 0 ||
            build_curl(&env, cfg, pin_conf_path, capath, &cs) != 0) {
            fprintf(stderr, "phc: no curl comparison\n");
            free(curl_path);
            curl_path = NULL;
        }
        env.curl = curl_path;
    }

    /* A client-credentials-only configuration has no token key: nothing to sign with. */
    if (phc_config_get(cfg, "key")) {
        progress(json, "token signing rate");
        bench_run_sign(&env, signatures, &res[nres]);
        if (json)
            print_json(&res[nres]);
        nres++;
    }
    static const struct {
        unsigned bit;
        const char *name;
    } order[] = {{MODE_ONESHOT, "oneshot"},
                 {MODE_KEEPALIVE, "keepalive"},
                 {MODE_FULL, "full"},
                 {MODE_RESUMED, "resumed"},
                 {MODE_AGENT, "agent"}};
    for (size_t m = 0; m < sizeof(order) / sizeof(order[0]) && rc == 0; m++) {
        if (!(modes & order[m].bit))
            continue;
        const char *name = order[m].name;
        /* What this mode adds to res: ours first, then curl's doing the same job. */
        int first = nres;
        progress(json, name);
        if (order[m].bit == MODE_ONESHOT) {
            rc = bench_run_oneshot(&env, &res[nres], &res[nres + 1]);
            nres += env.curl ? 2 : 1;
        } else if (order[m].bit == MODE_AGENT) {
            rc = bench_run_agent(&env, res, &nres);
        } else {
            if (order[m].bit == MODE_KEEPALIVE && threads > 1) {
                /* The one-thread baseline for the per-request CPU of T threads. */
                rc = bench_run_inproc(&env, name, 1, &res[nres++]);
            }
            if (rc == 0)
                rc = bench_run_inproc(&env, name, threads, &res[nres++]);
            if (rc == 0 && env.curl && requests >= 2)
                rc = bench_run_curl_steady(&env, name, &res[nres++]);
        }
        for (int i = first; i < nres && rc == 0; i++) {
            if (json)
                print_json(&res[i]);
            if (res[i].failures && strncmp(res[i].mode, "curl-", 5) == 0)
                fprintf(stderr, "phc: %s: %d of %d failed: %s\n", res[i].mode, res[i].failures,
                        res[i].requests, res[i].first_msg);
        }
    }
    /* The PIN copy goes as soon as curl is done with it. */
    if (pin_conf_path[0]) {
        unlink(pin_conf_path);
        pin_conf_path[0] = '\0';
    }
    if (!json && nres > 0)
        print_table(res, nres, threads);
    for (int i = 0; i < nres; i++) {
        if (res[i].failures && strncmp(res[i].mode, "curl-", 5) != 0) {
            fprintf(stderr, "phc: %s: %d of %d failed: %s\n", res[i].mode, res[i].failures,
                    res[i].requests, res[i].first_msg);
            if (!rc)
                rc = res[i].first_exit ? res[i].first_exit : 9;
        }
    }
out:
    if (pin_conf_path[0])
        unlink(pin_conf_path);
    pin_conf_path[0] = '\0';
    if (env.tmpdir[0])
        remove_tree(env.tmpdir);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    curl_setup_free(&cs);
    free(curl_path);
    phc_client_free(env.client);
    phc_config_free(cfg);
    return rc;
}
