/* phc agent [--listen unix:PATH|tcp:127.0.0.1:PORT]: start-up, signals and shutdown. The
 * main thread only waits for signals; libmicrohttpd's threads do the rest.
 * SIGHUP: phc_client_reload (a new pair is used by new requests, in-flight ones finish on
 * theirs). SIGTERM/SIGINT: stop accepting, let in-flight requests finish within the config's
 * timeout, remove the socket, exit 0. */
#include "phc_agent.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_LISTEN "unix:/run/phconnect/agent.sock"
#define DEFAULT_MAX_CLIENTS 256
#define DEFAULT_MAX_BODY ((size_t)1024 * 1024)

static const char usage_text[] =
    "usage: phc agent [--listen unix:PATH|tcp:127.0.0.1:PORT]\n"
    "Serves plain HTTP/1.1 to local programs and forwards each request to url + path over\n"
    "the pinned mutual-TLS connection (see docs/agent.md). SIGHUP reloads the token's\n"
    "key/certificate pairs; SIGTERM finishes in-flight requests and exits.\n";

static void agent_log(void *ud, phc_log_level level, const char *msg)
{
    (void)ud;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "phc: agent: [%s] %s\n", names[level <= PHC_LOG_DEBUG ? level : 3], msg);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Settings from the config; the library has checked their syntax. */
static int settings(phc_agent *a, const char *listen_arg)
{
    const char *v = listen_arg ? listen_arg : phc_config_get(a->cfg, "agent_listen");
    if (listen_arg) {
        /* --listen gets the same check as the key: a config with it set is checked. */
        phc_config *probe = NULL;
        phc_errbuf err = {0};
        if (phc_config_new(&probe, &err) != PHC_OK)
            return phc_tool_fail(&err);
        int rc = phc_config_set(probe, "agent_listen", listen_arg, &err);
        phc_config_free(probe);
        if (rc != PHC_OK) {
            fprintf(stderr, "phc: --listen %s: %s\n", listen_arg,
                    strstr(err.msg, "': ") ? strstr(err.msg, "': ") + 3 : err.msg);
            return 2;
        }
    }
    if (!(a->listen = strdup(v ? v : DEFAULT_LISTEN)))
        return 9;
    v = phc_config_get(a->cfg, "agent_max_clients");
    a->max_clients = v ? (unsigned)strtoul(v, NULL, 10) : DEFAULT_MAX_CLIENTS;
    a->max_body = DEFAULT_MAX_BODY;
    if ((v = phc_config_get(a->cfg, "agent_max_request_bytes"))) {
        char *end = NULL;
        unsigned long long n = strtoull(v, &end, 10);
        if (end && (*end == 'k' || *end == 'K'))
            n *= 1024;
        else if (end && (*end == 'm' || *end == 'M'))
            n *= 1024 * 1024;
        a->max_body = (size_t)n;
    }
    if (phc_agent_rules_parse(&a->rules, phc_config_get(a->cfg, "agent_paths")) != 0) {
        fprintf(stderr, "phc: config key 'agent_paths': cannot be read\n");
        return 2;
    }
    a->drop_auth = phc_config_get(a->cfg, "client_id") != NULL;
    v = phc_config_get(a->cfg, "timeout");
    a->drain_seconds = v ? strtol(v, NULL, 10) : 30;
    return phc_agent_peer_setup(a);
}

/* Finishes what was accepted, within the deadline; 1 when all of it finished. */
static int drain(phc_agent *a)
{
    long long deadline = mono_ms() + a->drain_seconds * 1000;
    while (__atomic_load_n(&a->in_flight, __ATOMIC_RELAXED) > 0 && mono_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return __atomic_load_n(&a->in_flight, __ATOMIC_RELAXED) == 0;
}

static void reload(phc_agent *a)
{
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)mono_ms() * 1000);
    int changed = 0;
    phc_errbuf err = {0};
    if (phc_client_reload(a->client, &changed, &err) != PHC_OK) {
        phc_agent_logf("reload failed, still serving with the current pair: %s", err.msg);
    } else if (changed) {
        phc_stats st = PHC_STATS_INIT;
        phc_errbuf ignored = {0};
        if (phc_client_stats(a->client, &st, &ignored) == PHC_OK)
            phc_agent_logf("reloaded: now using client certificate serial %s",
                           st.cert_serial[0] ? st.cert_serial : "-");
    } else {
        phc_agent_logf("reloaded: the key/certificate pair in use is unchanged");
    }
    sd_notify(0, "READY=1\nSTATUS=serving");
}

static int run(phc_agent *a)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (;;) {
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGHUP) {
            reload(a);
        } else if (sig == SIGTERM || sig == SIGINT) {
            sd_notify(0, "STOPPING=1");
            phc_agent_logf("%s: no new connections; finishing %ld request(s) in flight",
                           sig == SIGTERM ? "SIGTERM" : "SIGINT",
                           __atomic_load_n(&a->in_flight, __ATOMIC_RELAXED));
            phc_agent_stop_accepting(a);
            phc_agent_listen_close(a);
            if (!drain(a)) {
                phc_agent_logf("%ld request(s) still in flight after %ld s; exiting anyway",
                               __atomic_load_n(&a->in_flight, __ATOMIC_RELAXED), a->drain_seconds);
                /* Connection threads still hold the client; the process ends without freeing it. */
                fflush(stderr);
                _exit(0);
            }
            return 0;
        }
    }
}

int phc_agent_main(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_arg = NULL;
    int c;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "l:h", longopts)) != -1) {
        switch (c) {
        case 'l':
            listen_arg = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default: /* phc_tool_getopt printed the one line */
            return 2;
        }
    }
    if (optind != argc)
        return phc_tool_usage("agent takes no arguments besides --listen");

    phc_agent a = {.listen_fd = -1, .group = (gid_t)-1, .verbose = g->verbose};
    /* Signals are taken by the main thread alone (sigtimedwait); every thread started from
     * here on inherits the mask. A client that goes away mid-answer must not kill us. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = phc_tool_load_config(g, &a.cfg);
    if (rc)
        goto out;
    if (phc_config_get(a.cfg, "agent") && !phc_config_get(a.cfg, "url")) {
        rc = phc_tool_usage("config %s is a client config (key 'agent'); the agent needs url, "
                            "ca_file and the client identity",
                            g->config_path);
        goto out;
    }
    if ((rc = settings(&a, listen_arg)) != 0)
        goto out;
    if (phc_agent_metrics_new(&a.metrics) != 0) {
        rc = 9;
        goto out;
    }
    phc_client_opts opts = {
        .version = PHC_CLIENT_OPTS_VERSION,
        .log = agent_log,
        .level = g->verbose >= 2 ? PHC_LOG_DEBUG
                 : g->verbose    ? PHC_LOG_INFO
                                 : PHC_LOG_WARN,
    };
    phc_errbuf err = {0};
    if (phc_client_new(&a.client, a.cfg, &opts, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        goto out;
    }
    if ((rc = phc_agent_listen_open(&a)) != 0)
        goto out;
    if ((rc = phc_agent_serve(&a)) != 0)
        goto out;
    phc_stats st = PHC_STATS_INIT;
    phc_errbuf ignored = {0};
    if (phc_client_stats(a.client, &st, &ignored) == PHC_OK)
        phc_agent_logf("listening on %s%s; client certificate serial %s", a.listen,
                       a.from_systemd ? " (socket from systemd)" : "",
                       st.cert_serial[0] ? st.cert_serial : "-");
    sd_notify(0, "READY=1\nSTATUS=serving");
    rc = run(&a);
out:
    phc_agent_shutdown(&a);
    phc_agent_listen_close(&a);
    phc_client_free(a.client);
    phc_config_free(a.cfg);
    phc_agent_rules_free(a.rules);
    phc_agent_metrics_free(a.metrics);
    free(a.allow);
    free(a.listen);
    return rc;
}
