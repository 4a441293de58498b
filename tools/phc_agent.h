/* The phc agent (the phc-agent program, which `phc agent` runs): one long-lived phc_client
 * serving plain HTTP/1.1 to local programs over a Unix socket, on libmicrohttpd. One job per
 * file:
 *   phc_agent.c          options, settings, start-up, signals, drain
 *   phc_agent_listen.c   the listening socket: unix, loopback tcp or systemd's (sd_listen_fds)
 *   phc_agent_peer.c     SO_PEERCRED and agent_allow_users
 *   phc_agent_filter.c   pure request/response rules: target, hop-by-hop headers, agent_paths
 *   phc_agent_forward.c  the event loop: libmicrohttpd and the requests' fibers
 *   phc_agent_fiber.c    fibers (ucontext) with their stacks
 *   phc_agent_metrics.c  counters, /_phc/health and /_phc/metrics
 *   phc_agent_log.c      the access log line and the agent's own messages
 * Only the public API of libphconnect is used. */
#ifndef PHC_AGENT_H
#define PHC_AGENT_H

#include "phc.h"

#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- phc_agent_filter.c: pure functions (fuzzed by tests/fuzz/fuzz_agent_headers.c) ---- */

typedef struct phc_agent_hdr {
    const char *name;
    const char *value;
} phc_agent_hdr;

#define PHC_AGENT_MAX_HEADERS 100

/* The request headers to send upstream, as "Name: value" strings in *out (a NULL-terminated
 * array; free with phc_agent_headers_free). Dropped: hop-by-hop headers (Connection,
 * Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade and every header Connection
 * names), Host, Content-Length and Expect (the library sets its own), the agent's own Phc-*
 * headers, Authorization when drop_auth (the agent injects its bearer token), and any header
 * whose name is not an HTTP token or whose value holds a control character. At most
 * PHC_AGENT_MAX_HEADERS are kept. Returns 0, or -1 when out of memory. */
int phc_agent_filter_request(char ***out, const phc_agent_hdr *in, size_t n, int drop_auth);

void phc_agent_headers_free(char **h);

/* Calls add(ud, name, value) for each header of an upstream response that goes back to the
 * client: from the last header block of block (status line first, CRLF separated), without
 * hop-by-hop headers, Content-Length and Date (the server side sets its own). Lines that are
 * not "Name: value" are skipped. Returns the number of headers passed to add. */
size_t phc_agent_filter_response(const char *block, size_t len,
                                 void (*add)(void *ud, const char *name, const char *value),
                                 void *ud);

/* 0 when target is an origin-form path the agent forwards (starts with '/', printable
 * ASCII without blanks, '#' or '\'), else -1. Absolute-form ("http://host/..."),
 * authority-form and "*" are refused. */
int phc_agent_target_ok(const char *target);

/* 1 when method is one the agent forwards (not CONNECT or TRACE, an upper-case token). */
int phc_agent_method_ok(const char *method);

/* agent_paths: "METHOD /prefix" entries. NULL rules (no agent_paths) allow everything. */
typedef struct phc_agent_rules phc_agent_rules;
int phc_agent_rules_parse(phc_agent_rules **out, const char *spec);
/* 1 when method and path (without the query) match one entry. */
int phc_agent_rules_allow(const phc_agent_rules *r, const char *method, const char *path);
void phc_agent_rules_free(phc_agent_rules *r);

/* JSON string escaping of s into buf (always NUL-terminated, truncated to fit). */
void phc_agent_json_escape(char *buf, size_t len, const char *s);

/* ---- the running agent ---- */

struct phc_agent_loop;
typedef struct phc_agent_metrics phc_agent_metrics;

typedef struct phc_agent {
    phc_client *client;
    phc_config *cfg;
    int verbose;
    /* settings */
    char *listen; /* as configured or given with --listen */
    uid_t *allow; /* agent_allow_users, resolved */
    size_t n_allow;
    gid_t group; /* (gid_t)-1: none */
    phc_agent_rules *rules;
    unsigned max_clients;
    size_t max_body;
    int drop_auth; /* the agent holds client credentials */
    long drain_seconds;
    /* listening */
    int listen_fd;
    int is_unix;
    int from_systemd;
    char *unlink_path; /* socket file the agent made, removed at exit */
    /* the event loop (phc_agent_forward.c): one thread runs libmicrohttpd and every
     * forwarded request, each on a fiber of its own */
    struct phc_agent_loop *loop;
    int draining;     /* atomic: set by the main thread at SIGTERM */
    int stop;         /* atomic: the loop returns */
    long in_flight;   /* atomic: requests accepted and not yet answered */
    long connections; /* atomic: client connections open */
    phc_agent_metrics *metrics;
} phc_agent;

/* phc_agent_listen.c: sets a->listen_fd, is_unix, from_systemd, unlink_path. Returns 0 or
 * prints "phc: ..." and returns the exit status. */
int phc_agent_listen_open(phc_agent *a);
void phc_agent_listen_close(phc_agent *a);

/* phc_agent_peer.c */
int phc_agent_peer_setup(phc_agent *a); /* resolves agent_allow_users and agent_group */
/* Peer of a Unix-socket connection: 1 allowed, 0 refused; uid and pid set (-1 unknown). On a
 * TCP socket there is no peer identity: allowed, ids -1. */
int phc_agent_peer_check(const phc_agent *a, int fd, long *uid, long *pid);

/* phc_agent.c: the agent's main, argv[0] being "agent". */
int phc_agent_main(const phc_globals *g, int argc, char **argv);

/* phc_agent_forward.c */
int phc_agent_serve(phc_agent *a); /* starts libmicrohttpd on a->listen_fd; 0 or exit status */
void phc_agent_stop_accepting(phc_agent *a);
void phc_agent_shutdown(phc_agent *a);

/* phc_agent_metrics.c */
int phc_agent_metrics_new(phc_agent_metrics **out);
void phc_agent_metrics_free(phc_agent_metrics *m);
void phc_agent_metrics_request(phc_agent_metrics *m, unsigned status, const char *err_class,
                               double upstream_seconds);
/* Bodies for GET /_phc/health and /_phc/metrics (malloc'ed); the health status in *status. */
char *phc_agent_health(phc_agent *a, unsigned *status);
char *phc_agent_metrics_text(phc_agent *a, unsigned connections_open);

/* phc_agent_log.c */
typedef struct phc_agent_access {
    long uid, pid;
    const char *method, *target;
    unsigned status;
    size_t bytes;
    double ms;
    int reused, resumed; /* -1: not known (no upstream connection) */
    const char *cert_serial;
    const char *err_class; /* NULL when not the agent's own failure */
    int aborted;           /* the client went away before the whole answer */
} phc_agent_access;
void phc_agent_log_access(const phc_agent_access *x);
void phc_agent_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* On an event loop's thread: its lines are kept until phc_agent_log_flush (before the loop
 * waits, and when 16 KiB have gathered). */
void phc_agent_log_batch(int on);
void phc_agent_log_flush(void);

#endif
