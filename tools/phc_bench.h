/* phc bench: what its files share. phc_bench.c parses the options, orders the runs and
 * prints; phc_bench_inproc.c measures one client in this process (threads, signing);
 * phc_bench_spawn.c measures child processes (phc request, curl). */
#ifndef PHC_BENCH_H
#define PHC_BENCH_H

#include "phc.h"

#include <stddef.h>

#define BENCH_MAX_REQUESTS 100000
#define BENCH_MAX_THREADS 64

/* One line of the report (and of --json). */
typedef struct bench_result {
    char mode[24]; /* keepalive, full, resumed, oneshot, sign, curl-<mode> */
    int requests;  /* requests (or signatures) measured */
    int threads;
    double seconds; /* wall time of the measured part */
    double p50_ms, p99_ms;
    double cpu_ms_per_request; /* user + system */
    double server_cpu_ms;      /* agent mode: the agent's CPU per request (table only); else 0 */
    long peak_rss_kb;
    int failures;
    int first_exit;                 /* exit status class of the first failure; 0 when none */
    char first_msg[PHC_ERRMSG_MAX]; /* its message, for the operator */
} bench_result;

/* What every measurement needs; filled by phc_bench.c. */
typedef struct bench_env {
    const phc_globals *g;
    phc_client *client; /* for the in-process modes and signing */
    const char *path;   /* request path */
    int requests, threads;
    double timeout; /* seconds: bound of one measurement */
    /* Children (oneshot, curl). */
    char self_exe[4096];   /* our own binary, from /proc/self/exe */
    char tmpdir[4096];     /* private (0700), removed at the end */
    const char *curl;      /* curl binary (PATH search), NULL: no curl comparison */
    char **curl_args;      /* NULL-terminated: engine, key, cert, CA, resolve... (no URL) */
    char **curl_envp;      /* environ with OPENSSL_CONF pointing at the rendered engine conf */
    char *url;             /* base URL + path, for curl */
    const char *agent_arg; /* "unix:PATH": oneshot runs `phc request --agent PATH` */
} bench_env;

/* Sorts lat[0..n) and stores the nearest-rank p50/p99 in r. */
void bench_percentiles(bench_result *r, double *lat_ms, size_t n);

/* Peak RSS of this process since the last bench_reset_peak_rss, in kB. */
long bench_peak_rss_kb(void);
void bench_reset_peak_rss(void);

/* User + system CPU seconds of this process so far. */
double bench_cpu_self(void);

/* Monotonic seconds. */
double bench_now(void);

/* In-process: `mode` is keepalive, full or resumed; threads from the argument (not env). */
int bench_run_inproc(const bench_env *env, const char *mode, int threads, bench_result *out);

/* The token's signing rate through libp11: env->requests signatures, one at a time. */
int bench_run_sign(const bench_env *env, int n, bench_result *out);

/* N `phc request` processes and, when env->curl, N curl processes with one request each,
 * interleaved, T at a time. curl_out is filled only with env->curl. */
int bench_run_oneshot(const bench_env *env, bench_result *phc_out, bench_result *curl_out);

/* One curl process with N URLs minus one with 1 URL: the steady state of a long-running
 * curl. mode: keepalive (reused connection), full (new connection and handshake each, no
 * session reuse) or resumed (new connection each, resumed session). */
int bench_run_curl_steady(const bench_env *env, const char *mode, bench_result *out);

/* --mode agent (phc_bench_agent.c): starts an agent child, appends agent-oneshot (with
 * curl-oneshot), keepalive (T threads) and agent (T local clients) to res[*nres...]. */
int bench_run_agent(const bench_env *env, bench_result *res, int *nres);

#endif
