/* Test and bench driver: T local clients of a phc agent, each on its own kept-alive Unix-socket
 * connection, each making N requests (or requests until a file exists), timing every one.
 * Usage: agent_load [--until FILE] [--gap-ms MS] [--serials FILE] SOCKET PATH THREADS N
 *   --until FILE    each client keeps going until FILE exists (N is then ignored)
 *   --gap-ms MS     each client pauses MS between requests: a steady load, not a flood
 *   --serials FILE  with a PATH answering the mock's /echo JSON: each time a client sees a
 *                   "client_serial" other than its previous one, one line
 *                   "EPOCH_MS CLIENT SERIAL" (wall clock, milliseconds) is appended to FILE
 * Prints one line on stdout:
 *   requests R failures F p50_ms A p90_ms B p99_ms C max_ms D
 * and exits 0 when every answer was a complete 2xx, 1 when one was not (the first failure is
 * described on stderr), 2 on bad usage. It speaks just enough HTTP/1.1 for the agent's answers
 * (Content-Length bodies): a different answer shape counts as a failure and says so. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX (1 << 20)

static const char *sock_path, *target, *until_file, *serials_path;
static long gap_ms;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* guards first_failure and serials */
static char first_failure[300];
static FILE *serials;

struct client {
    int id, n, failures;
    double *lat; /* milliseconds, one per request */
    size_t len, cap;
    char serial[128];
};

static double now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fail_note(int id, const char *what)
{
    pthread_mutex_lock(&mu);
    if (!first_failure[0])
        snprintf(first_failure, sizeof(first_failure), "client %d: %s", id, what);
    pthread_mutex_unlock(&mu);
}

static int connect_agent(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* recv(2) after poll(2) for input, as libcurl, Python's http.client with a timeout and event
 * loops wait. A reader blocked in recv(2) on a Unix socket is also woken each time the agent
 * takes bytes off the socket (the kernel's write-space wake-up, which poll(POLLIN) filters
 * out): that costs the client a wake-up per request, and the agent the waking. */
static ssize_t recv_ready(int fd, void *buf, size_t len)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR)
            return -1;
    return recv(fd, buf, len, 0);
}

/* Reads one answer into buf (NUL-terminated). Returns the status, or -1 with why set. Sets
 * *close_after when the agent said it closes the connection. */
static int read_answer(int fd, char *buf, size_t cap, int *close_after, const char **why)
{
    size_t len = 0;
    char *end;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
        ssize_t n = len < cap - 1 ? recv_ready(fd, buf + len, cap - 1 - len) : -1;
        if (n <= 0) {
            *why = n == 0 ? "the agent closed the connection before answering"
                          : "cannot read the answer";
            return -1;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) {
        *why = "not an HTTP/1.1 status line";
        return -1;
    }
    size_t head = (size_t)(end + 4 - buf);
    *end = '\0';
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    *close_after = strcasestr(buf, "\r\nConnection: close") != NULL;
    if (!cl) {
        *why = "an answer without Content-Length";
        return -1;
    }
    size_t body = strtoul(cl + 17, NULL, 10);
    if (head + body > cap - 1) {
        *why = "an answer larger than 1 MiB";
        return -1;
    }
    /* The body moves to the start of buf, so callers can search it. */
    memmove(buf, buf + head, len - head);
    len -= head;
    while (len < body) {
        ssize_t n = recv_ready(fd, buf + len, body - len);
        if (n <= 0) {
            *why = "the answer's body was cut short";
            return -1;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    return status;
}

/* Notes a change of the client certificate serial the upstream saw (mock /echo JSON). */
static void note_serial(struct client *c, const char *body)
{
    const char *p = strstr(body, "\"client_serial\":\"");
    if (!p || !serials)
        return;
    p += 17;
    size_t n = strcspn(p, "\"");
    if (n >= sizeof(c->serial) || (strlen(c->serial) == n && memcmp(c->serial, p, n) == 0))
        return;
    memcpy(c->serial, p, n);
    c->serial[n] = '\0';
    pthread_mutex_lock(&mu);
    fprintf(serials, "%.0f %d %s\n", now_ms(CLOCK_REALTIME), c->id, c->serial);
    fflush(serials);
    pthread_mutex_unlock(&mu);
}

static int add_latency(struct client *c, double ms)
{
    if (c->len == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        double *p = realloc(c->lat, cap * sizeof(*p));
        if (!p)
            return -1;
        c->lat = p;
        c->cap = cap;
    }
    c->lat[c->len++] = ms;
    return 0;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    char req[4200], *buf = malloc(BUF_MAX), why[200];
    int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", target);
    int fd = -1;
    struct timespec gap = {gap_ms / 1000, (gap_ms % 1000) * 1000000L};
    if (!buf) {
        fail_note(c->id, "out of memory");
        c->failures = c->n;
        return NULL;
    }
    for (int i = 0; until_file ? access(until_file, F_OK) != 0 : i < c->n; i++) {
        double t = now_ms(CLOCK_MONOTONIC);
        const char *err = NULL;
        int close_after = 0, status = -1;
        if (fd < 0 && (fd = connect_agent()) < 0)
            err = "cannot connect to the agent's socket";
        else if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != (ssize_t)len)
            err = "cannot send the request";
        else if ((status = read_answer(fd, buf, BUF_MAX, &close_after, &err)) >= 0 &&
                 (status < 200 || status > 299)) {
            snprintf(why, sizeof(why), "HTTP %d: %.150s", status, buf);
            err = why;
        }
        if (add_latency(c, now_ms(CLOCK_MONOTONIC) - t) != 0)
            err = "out of memory";
        if (err) {
            c->failures++;
            fail_note(c->id, err);
        } else {
            note_serial(c, buf);
        }
        if ((err || close_after) && fd >= 0) {
            close(fd);
            fd = -1;
        }
        if (gap_ms > 0)
            nanosleep(&gap, NULL);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least q percent of the samples at or below it. */
static double pct(const double *v, size_t n, unsigned q)
{
    return n ? v[(n * q + 99) / 100 - 1] : 0;
}

static int usage(void)
{
    fputs("usage: agent_load [--until FILE] [--gap-ms MS] [--serials FILE] SOCKET PATH THREADS N\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    int i = 1, rc = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--until") == 0)
            until_file = argv[i + 1];
        else if (strcmp(argv[i], "--gap-ms") == 0)
            gap_ms = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--serials") == 0)
            serials_path = argv[i + 1];
        else
            return usage();
    }
    if (argc - i != 4)
        return usage();
    sock_path = argv[i];
    target = argv[i + 1];
    int threads = atoi(argv[i + 2]), n = atoi(argv[i + 3]);
    if (threads < 1 || threads > 1024 || n < 0 || gap_ms < 0 || target[0] != '/')
        return usage();
    if (serials_path && !(serials = fopen(serials_path, "a"))) {
        fprintf(stderr, "agent_load: cannot open %s: %s\n", serials_path, strerror(errno));
        return 2;
    }
    struct client *c = calloc((size_t)threads, sizeof(*c));
    pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
    double *all = NULL;
    size_t total = 0, k = 0;
    int started = 0, failures = 0;
    if (!c || !tid)
        goto out;
    for (; started < threads; started++) {
        c[started].id = started;
        c[started].n = n;
        if (pthread_create(&tid[started], NULL, client_main, &c[started]) != 0)
            break;
    }
    for (int t = 0; t < started; t++) {
        pthread_join(tid[t], NULL);
        total += c[t].len;
        failures += c[t].failures;
    }
    if (started < threads) {
        fprintf(stderr, "agent_load: started only %d of %d clients\n", started, threads);
        failures++;
    }
    if (total && !(all = malloc(total * sizeof(*all))))
        goto out;
    for (int t = 0; t < started; t++) {
        if (c[t].len)
            memcpy(all + k, c[t].lat, c[t].len * sizeof(*all));
        k += c[t].len;
    }
    if (total)
        qsort(all, total, sizeof(*all), cmp_double);
    printf("requests %zu failures %d p50_ms %.3f p90_ms %.3f p99_ms %.3f max_ms %.3f\n", total,
           failures, pct(all, total, 50), pct(all, total, 90), pct(all, total, 99),
           total ? all[total - 1] : 0.0);
    if (failures)
        fprintf(stderr, "agent_load: %d failed; first: %s\n", failures, first_failure);
    rc = failures ? 1 : 0;
out:
    if (rc == 1 && (!c || !tid))
        fputs("agent_load: out of memory\n", stderr);
    for (int t = 0; c && t < threads; t++)
        free(c[t].lat);
    free(c);
    free(tid);
    free(all);
    if (serials)
        fclose(serials);
    return rc;
}
