/* phc bench --mode agent: the agent against what it replaces, in one run. A phc agent is
 * started as a child on a private socket; then
 *  - agent-oneshot: N `phc request --agent` processes next to N curl + libp11 engine
 *    processes doing the same request directly (bench_run_oneshot, interleaved);
 *  - agent: T local clients, each on its own kept-alive connection to the agent, next to the
 *    in-process keep-alive rate of T threads (bench_run_inproc).
 * The agent is stopped (SIGTERM) at the end. */
#define _GNU_SOURCE
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
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Starts `phc --config CFG agent --listen unix:SOCK` and waits until it accepts. */
static pid_t start_agent(const bench_env *env, const char *sock, const char *errfile)
{
    char listen[4300];
    snprintf(listen, sizeof(listen), "unix:%s", sock);
    char *argv[] = {(char *)env->self_exe,
                    "--config",
                    (char *)env->g->config_path,
                    "agent",
                    "--listen",
                    listen,
                    NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    for (int i = 0; i < 600; i++) {
        int fd = connect_unix(sock);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        usleep(50 * 1000);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return -1;
}

/* recv(2) after poll(2) for input: a local client waits as libcurl (the in-process side),
 * curl, Python's http.client with a timeout and event loops do. A reader blocked in recv(2)
 * on a Unix socket is also woken each time the agent takes its bytes off the socket (the
 * kernel's write-space wake-up, which poll(POLLIN) filters out). */
static ssize_t recv_ready(int fd, void *buf, size_t len)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR)
            return -1;
    return recv(fd, buf, len, 0);
}

/* One kept-alive request: 0 when the answer was a complete 2xx. */
static int one_request(int fd, const char *req, size_t reqlen, char *buf, size_t cap)
{
    if (send(fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen)
        return -1;
    size_t len = 0;
    char *end = NULL;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
        if (len == cap)
            return -1;
        ssize_t n = recv_ready(fd, buf + len, cap - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    *end = '\0';
    long status = 0;
    if (sscanf(buf, "HTTP/1.1 %ld", &status) != 1)
        return -1;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
    size_t have = len - (size_t)(end + 4 - buf);
    while (have < body) {
        ssize_t n = recv_ready(fd, buf, cap);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    return status >= 200 && status <= 299 ? 0 : -1;
}

/* Warm-up requests per client before the clock starts, as the in-process side has
 * (phc_bench_inproc.c): the first connects to the agent and lets it open an upstream
 * connection for this client; the measured requests then find both open. */
#define WARMUP_REQUESTS 3

/* The start line, as in phc_bench_inproc.c: clients report ready after their warm-up; the
 * clock starts when all are ready, then the gate opens. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready, open;
};

struct client {
    const bench_env *env;
    const char *sock;
    struct gate *gate;
    int n, failures;
    double *lat;
    char msg[200];
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    char req[4200], *buf = malloc(1 << 20);
    int len =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", c->env->path);
    int fd = connect_unix(c->sock);
    /* Warm-up failures do not count: the measured requests will show the same cause. */
    for (int i = 0; i < WARMUP_REQUESTS && buf && fd >= 0; i++)
        if (one_request(fd, req, (size_t)len, buf, 1 << 20) != 0) {
            close(fd);
            fd = connect_unix(c->sock);
        }
    pthread_mutex_lock(&c->gate->mu);
    c->gate->ready++;
    pthread_cond_broadcast(&c->gate->cv);
    while (!c->gate->open)
        pthread_cond_wait(&c->gate->cv, &c->gate->mu);
    pthread_mutex_unlock(&c->gate->mu);
    for (int i = 0; i < c->n; i++) {
        double t = bench_now();
        if (!buf || fd < 0 || one_request(fd, req, (size_t)len, buf, 1 << 20) != 0) {
            if (!c->failures)
                snprintf(c->msg, sizeof(c->msg), "request %d through the agent failed", i + 1);
            c->failures++;
            if (fd >= 0)
                close(fd);
            fd = connect_unix(c->sock);
        }
        c->lat[i] = (bench_now() - t) * 1000.0;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

/* CPU seconds (user + system, all threads) the process pid has used so far; -1 unknown.
 * Clock-tick resolution (10 ms at 100 Hz): measure enough requests. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold blanks */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void rate(const bench_env *env, pid_t agent, const char *sock, bench_result *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->mode, sizeof(out->mode), "agent");
    out->requests = env->requests;
    out->threads = env->threads;
    struct client *c = calloc((size_t)env->threads, sizeof(*c));
    pthread_t *tid = calloc((size_t)env->threads, sizeof(*tid));
    double *lat = calloc((size_t)env->requests + 1, sizeof(*lat));
    if (!c || !tid || !lat) {
        out->failures = env->requests;
        out->first_exit = 9;
        snprintf(out->first_msg, sizeof(out->first_msg), "out of memory");
        goto out;
    }
    int started = 0, off = 0;
    struct gate gate = {.ready = 0, .open = 0};
    pthread_mutex_init(&gate.mu, NULL);
    pthread_cond_init(&gate.cv, NULL);
    for (int i = 0; i < env->threads; i++) {
        c[i].env = env;
        c[i].sock = sock;
        c[i].gate = &gate;
        c[i].n = env->requests / env->threads + (i < env->requests % env->threads);
        c[i].lat = lat + off;
        off += c[i].n;
    }
    for (; started < env->threads; started++)
        if (pthread_create(&tid[started], NULL, client_main, &c[started]) != 0)
            break;
    pthread_mutex_lock(&gate.mu);
    while (gate.ready < started)
        pthread_cond_wait(&gate.cv, &gate.mu);
    double cpu0 = bench_cpu_self(), agent0 = proc_cpu_s(agent), t0 = bench_now();
    gate.open = 1;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    out->seconds = bench_now() - t0;
    /* The clients' CPU; the agent's, its own process's, is shown next to it in the table. */
    out->cpu_ms_per_request = (bench_cpu_self() - cpu0) * 1000.0 / env->requests;
    double agent1 = proc_cpu_s(agent);
    out->server_cpu_ms =
        agent0 >= 0 && agent1 >= 0 ? (agent1 - agent0) * 1000.0 / env->requests : 0;
    for (int i = 0; i < env->threads; i++) {
        out->failures += i < started ? c[i].failures : c[i].n;
        if (!out->first_exit && i < started && c[i].failures) {
            out->first_exit = 7;
            snprintf(out->first_msg, sizeof(out->first_msg), "%s", c[i].msg);
        }
    }
    bench_percentiles(out, lat, (size_t)env->requests);
    out->peak_rss_kb = bench_peak_rss_kb(); /* the clients' process */
    pthread_mutex_destroy(&gate.mu);
    pthread_cond_destroy(&gate.cv);
out:
    free(c);
    free(tid);
    free(lat);
}

int bench_run_agent(const bench_env *env, bench_result *res, int *nres)
{
    char sock[4200], errfile[4200], arg[4300];
    snprintf(sock, sizeof(sock), "%s/agent.sock", env->tmpdir);
    snprintf(errfile, sizeof(errfile), "%s/agent.err", env->tmpdir);
    pid_t pid = start_agent(env, sock, errfile);
    if (pid < 0) {
        char why[300] = "";
        FILE *f = fopen(errfile, "r");
        if (f) {
            if (!fgets(why, sizeof(why), f))
                why[0] = '\0';
            fclose(f);
        }
        why[strcspn(why, "\n")] = '\0';
        fprintf(stderr, "phc: bench: the agent did not start%s%s\n", why[0] ? ": " : "", why);
        return 7;
    }
    /* One-shot processes through the agent, next to curl + engine doing it directly: one at a
     * time, as a script runs them (and SoftHSM's file store does not survive many processes
     * logging in at once, which curl + engine does for every request). */
    bench_env e = *env;
    e.threads = 1;
    snprintf(arg, sizeof(arg), "unix:%s", sock);
    e.agent_arg = arg;
    int rc = bench_run_oneshot(&e, &res[*nres], &res[*nres + 1]);
    res[*nres].threads = 1;
    snprintf(res[*nres].mode, sizeof(res[*nres].mode), "agent-oneshot");
    *nres += env->curl ? 2 : 1;
    /* The steady rate of T local clients, next to T threads in this process. */
    if (rc == 0)
        rc = bench_run_inproc(env, "keepalive", env->threads, &res[(*nres)++]);
    if (rc == 0)
        rate(env, pid, sock, &res[(*nres)++]);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    return rc;
}
