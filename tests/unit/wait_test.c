/* wait unit: the per-thread wait hook (phconnect/wait.h) with requests on coroutines of one
 * thread, the way an event loop runs them. The coroutines are ucontext fibers; the hook records
 * what it is asked to wait for and switches back to the main context, which polls every parked
 * coroutine's sockets and deadlines like a tiny event loop and resumes those that are ready.
 * Against the mock Powerhub (tests/fixtures/mock_powerhub.c) over mutual TLS with the key on a
 * SoftHSM token:
 *  - three coroutines, four requests each, all in flight together: all succeed, the hook saw
 *    the transfers' sockets, requests really interleaved, phc_client_stats counts each one and
 *    phc_client_last_connection after each describes that request (new connection first, then
 *    kept-alive), even with a request on a new connection started during a reused one's wait;
 *  - a 429 with Retry-After: 1 waits through the hook (nfds 0) while another request completes;
 *  - client credentials: two coroutines that need the API token at once: one token request,
 *    both succeed, no deadlock (alarm bounds the run);
 *  - a transfer's own timeout and a refused connection end the request as without a hook;
 *  - without a hook the same requests work as before. */
#include "testclient.h"

#include <phconnect/phconnect.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#define WT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WT_ASAN 1
#endif
#endif
#ifdef WT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define STACK_SIZE (2 * 1024 * 1024)
#define MAX_CO 4
#define MAX_FDS 16

/* ---- fibers and the tiny event loop ---- */

typedef struct co {
    ucontext_t ctx;
    char *stack;
    int started, done, parked;
    struct pollfd fds[MAX_FDS];
    unsigned int nfds;
    int64_t until; /* monotonic ms: resume by then even without a ready socket */
    void (*body)(struct co *);
    void *arg;
    int id;
#ifdef WT_ASAN
    void *fake;
#endif
} co;

static ucontext_t g_main;
static co *g_cur;
#ifdef WT_ASAN
static const void *g_main_bottom;
static size_t g_main_size;
#endif

/* What the hook was asked. */
static int g_calls, g_calls_fds, g_calls_nofds, g_calls_auth;
/* Calls with another userdata, fds that are not sockets to wait on, a bad timeout. */
static int g_bad_fds;
/* Requests under way on this thread, and those started while another was under way. */
static int g_in_flight, g_interleaved;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Main context -> c. */
static void resume(co *c)
{
    g_cur = c;
#ifdef WT_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, c->stack, STACK_SIZE);
#endif
    swapcontext(&g_main, &c->ctx);
#ifdef WT_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    g_cur = NULL;
}

/* c -> main context; returns when the loop resumes c. */
static void park(co *c)
{
#ifdef WT_ASAN
    __sanitizer_start_switch_fiber(&c->fake, g_main_bottom, g_main_size);
#endif
    swapcontext(&c->ctx, &g_main);
#ifdef WT_ASAN
    __sanitizer_finish_switch_fiber(c->fake, &g_main_bottom, &g_main_size);
#endif
}

static void entry(unsigned int hi, unsigned int lo)
{
    co *c = (co *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
#ifdef WT_ASAN
    __sanitizer_finish_switch_fiber(NULL, &g_main_bottom, &g_main_size);
#endif
    c->body(c);
    c->done = 1;
#ifdef WT_ASAN
    __sanitizer_start_switch_fiber(NULL, g_main_bottom, g_main_size); /* this fiber ends */
#endif
    setcontext(&g_main);
}

/* The library's wait hook: note what it asks, give the thread to the others until ready. */
static void hook(void *ud, struct pollfd *fds, unsigned int nfds, int timeout_ms)
{
    co *c = g_cur;
    g_calls++;
    if (nfds)
        g_calls_fds++;
    else
        g_calls_nofds++;
    if (!nfds && timeout_ms == 2)
        g_calls_auth++;
    if (ud != &g_main || nfds > MAX_FDS || (nfds && !fds) || timeout_ms < 0 || timeout_ms > 1000)
        g_bad_fds++;
    if (!c) { /* a wait outside any coroutine: block as the library would */
        if (nfds <= MAX_FDS)
            poll(fds, nfds, timeout_ms);
        return;
    }
    c->nfds = 0;
    for (unsigned int i = 0; i < nfds && i < MAX_FDS; i++) {
        if (fds[i].fd < 0 || !(fds[i].events & (POLLIN | POLLOUT)))
            g_bad_fds++;
        c->fds[c->nfds++] = (struct pollfd){.fd = fds[i].fd, .events = fds[i].events};
    }
    c->until = now_ms() + timeout_ms;
    c->parked = 1;
    park(c);
    c->parked = 0;
}

/* A coroutine's way to let the others run (not the library's hook). */
static void yield(co *c)
{
    c->nfds = 0;
    c->until = now_ms();
    c->parked = 1;
    park(c);
    c->parked = 0;
}

static void co_init(co *c, int id, void (*body)(co *), void *arg)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->body = body;
    c->arg = arg;
    c->stack = malloc(STACK_SIZE);
    CHECK(c->stack != NULL);
    if (c->stack)
        memset(c->stack, 0xa5, STACK_SIZE); /* for co_free's high-water mark */
    getcontext(&c->ctx);
    c->ctx.uc_stack.ss_sp = c->stack;
    c->ctx.uc_stack.ss_size = STACK_SIZE;
    c->ctx.uc_link = NULL;
    uintptr_t p = (uintptr_t)c;
    makecontext(&c->ctx, (void (*)(void))entry, 2, (unsigned int)(p >> 32),
                (unsigned int)(p & 0xffffffffu));
}

/* Runs the coroutines to their end: starts each in turn, then resumes parked ones whose
 * sockets are ready or whose deadline passed. */
static void run_all(co *cs, int n)
{
    for (int i = 0; i < n; i++) {
        cs[i].started = 1;
        resume(&cs[i]);
    }
    for (;;) {
        struct pollfd all[MAX_CO * MAX_FDS];
        nfds_t k = 0;
        int64_t now = now_ms(), wait = 1000;
        int left = 0;
        for (int i = 0; i < n; i++) {
            if (cs[i].done)
                continue;
            left++;
            if (cs[i].until - now < wait)
                wait = cs[i].until - now;
            for (unsigned int j = 0; j < cs[i].nfds; j++)
                all[k++] = cs[i].fds[j];
        }
        if (!left)
            return;
        poll(all, k, wait < 0 ? 0 : (int)wait);
        now = now_ms();
        k = 0;
        for (int i = 0; i < n; i++) {
            if (cs[i].done)
                continue;
            int ready = now >= cs[i].until;
            for (unsigned int j = 0; j < cs[i].nfds; j++, k++)
                ready |= all[k].revents != 0;
            if (ready && cs[i].parked)
                resume(&cs[i]);
        }
    }
}

/* The deepest stack any coroutine used (stacks grow down from the top), for the report. */
static size_t g_stack_used;

static void co_free(co *cs, int n)
{
    for (int i = 0; i < n; i++) {
        size_t untouched = 0;
        while (cs[i].stack && untouched < STACK_SIZE &&
               (unsigned char)cs[i].stack[untouched] == 0xa5)
            untouched++;
        if (cs[i].stack && STACK_SIZE - untouched > g_stack_used)
            g_stack_used = STACK_SIZE - untouched;
        free(cs[i].stack);
    }
}

/* ---- the mock ---- */

static pid_t g_mock = -1;

/* Starts the mock on an ephemeral port with extra arguments (up to 4, NULL-terminated list);
 * returns the port or -1. */
static int start_mock(const char *name, const char *a1, const char *a2, const char *a3)
{
    const char *mock = getenv("PHC_MOCK"), *pki = getenv("PHC_PKI");
    CHECK(mock && pki);
    if (!mock || !pki)
        return -1;
    char port_file[PATH_MAX], log[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
    snprintf(port_file, sizeof(port_file), "%s/%s.port", g_tmp, name);
    snprintf(log, sizeof(log), "%s/%s.log", g_tmp, name);
    snprintf(cert, sizeof(cert), "%s/server.pem", pki);
    snprintf(key, sizeof(key), "%s/server.key", pki);
    snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
    g_mock = fork();
    if (g_mock == 0) {
        execl(mock, mock, "--port", "0", "--port-file", port_file, "--log", log, "--cert", cert,
              "--key", key, "--client-ca", ca, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(port_file, "r");
        int port = -1;
        if (f && fscanf(f, "%d", &port) == 1 && port > 0) {
            fclose(f);
            return port;
        }
        if (f)
            fclose(f);
        usleep(50000);
    }
    fprintf(stderr, "mock did not start\n");
    return -1;
}

static void stop_mock(void)
{
    if (g_mock > 0) {
        kill(g_mock, SIGTERM);
        waitpid(g_mock, NULL, 0);
    }
    g_mock = -1;
}

/* A client of the mock on port; creds: with client credentials; timeout: the config's, or
 * NULL for the default. */
static phc_client *client_for(const tok *t, int port, int creds, const char *timeout)
{
    char url[64];
    phc_errbuf e = {0};
    phc_client *cl = NULL;
    snprintf(url, sizeof(url), "https://api.powerhub.test:%d", port);
    phc_config *c = tc_config(t, 1, url);
    if (!c)
        return NULL;
    CHECK(phc_config_set(c, "pinned_ips", "127.0.0.1", &e) == 0);
    if (timeout)
        CHECK(phc_config_set(c, "timeout", timeout, &e) == 0);
    if (creds)
        CHECK(phc_config_set(c, "client_id", "unit", &e) == 0 &&
              phc_config_set(c, "client_secret", "env:PHC_UNIT_TEST_SECRET", &e) == 0);
    CHECK(phc_client_new(&cl, c, NULL, &e) == 0);
    if (!cl)
        fprintf(stderr, "client: %s\n", e.msg);
    phc_config_free(c);
    return cl;
}

/* One GET; its result and how it reached the server. */
static int get_rc(phc_client *cl, const char *path, int *reused, int *resumed, phc_response **r,
                  phc_errbuf *e)
{
    phc_request req = PHC_REQUEST_INIT;
    req.path = path;
    if (g_in_flight > 0)
        g_interleaved++;
    g_in_flight++;
    int rc = phc_client_request(cl, r, &req, e);
    g_in_flight--;
    phc_client_last_connection(reused, resumed);
    return rc;
}

/* One GET; its status (0 on failure, said on stderr) and how it reached the server. */
static long get(phc_client *cl, const char *path, int *reused, int *resumed, char *body,
                size_t bodylen)
{
    phc_response *r = NULL;
    phc_errbuf e = {0};
    int rc = get_rc(cl, path, reused, resumed, &r, &e);
    long status = rc == PHC_OK ? phc_response_status(r) : 0;
    if (rc != PHC_OK)
        fprintf(stderr, "request %s: %s\n", path, e.msg);
    if (body && bodylen) {
        size_t n = 0;
        const char *b = r ? phc_response_body(r, &n) : NULL;
        snprintf(body, bodylen, "%.*s", b ? (int)n : 0, b ? b : "");
    }
    phc_response_free(r);
    return status;
}

static unsigned long long stat_requests(phc_client *cl)
{
    phc_stats s = PHC_STATS_INIT;
    phc_errbuf e = {0};
    CHECK(phc_client_stats(cl, &s, &e) == 0);
    return s.requests;
}

/* ---- case 1: many requests interleaved on one thread ---- */

#define ROUNDS 4

typedef struct {
    phc_client *cl;
    int ok, right_last, wrong_last;
} many_arg;

static void many_body(co *c)
{
    many_arg *a = c->arg;
    for (int i = 0; i < ROUNDS; i++) {
        int reused = 7, resumed = 7;
        long st = get(a->cl, "/v2/asset/sites", &reused, &resumed, NULL, 0);
        a->ok += st == 200;
        /* The first request of a coroutine takes a transfer handle nobody used (the pool was
         * empty while all three were under way): a new connection. The later ones take a
         * handle back from the pool, whose connection is kept alive. */
        int want = i == 0 ? 0 : 1;
        if (reused == want && (reused == 1 ? resumed == 0 : resumed >= 0))
            a->right_last++;
        else {
            a->wrong_last++;
            fprintf(stderr, "co %d request %d: last_connection reused=%d resumed=%d, want %d\n",
                    c->id, i + 1, reused, resumed, want);
        }
    }
}

/* A reuses its connection; B's first request (a new connection) starts while A's second waits
 * for its answer: the facts each sees are its own, whichever answer comes first. */
typedef struct {
    phc_client *cl;
    int a_second; /* A's second request is under way */
    int a_reused[2], b_reused, a_ok, b_ok;
} pair_arg;

static void pair_a(co *c)
{
    pair_arg *a = c->arg;
    int resumed;
    a->a_ok += get(a->cl, "/v2/asset/sites", &a->a_reused[0], &resumed, NULL, 0) == 200;
    a->a_second = 1;
    a->a_ok += get(a->cl, "/v2/asset/sites", &a->a_reused[1], &resumed, NULL, 0) == 200;
}

static void pair_b(co *c)
{
    pair_arg *a = c->arg;
    int resumed;
    while (!a->a_second)
        yield(c);
    yield(c); /* A is now waiting for its answer */
    a->b_ok += get(a->cl, "/v2/asset/sites", &a->b_reused, &resumed, NULL, 0) == 200;
}

static void test_many(const tok *t)
{
    /* Each answer takes 150 ms: every request waits, and the others run meanwhile. */
    int port = start_mock("many", "--fault", "delay=150", NULL);
    if (port < 0)
        return;
    phc_client *cl = client_for(t, port, 0, NULL);
    if (!cl)
        goto out;
    phc_set_thread_wait(hook, &g_main);
    unsigned long long before = stat_requests(cl);
    many_arg a[3] = {{cl, 0, 0, 0}, {cl, 0, 0, 0}, {cl, 0, 0, 0}};
    co cs[3];
    for (int i = 0; i < 3; i++)
        co_init(&cs[i], i, many_body, &a[i]);
    g_calls = g_calls_fds = g_calls_nofds = g_bad_fds = g_interleaved = 0;
    int64_t t0 = now_ms();
    run_all(cs, 3);
    int64_t took = now_ms() - t0;
    co_free(cs, 3);
    for (int i = 0; i < 3; i++) {
        CHECK(a[i].ok == ROUNDS);
        CHECK(a[i].right_last == ROUNDS && a[i].wrong_last == 0);
    }
    CHECK(g_calls > 0 && g_calls_fds > 0);
    CHECK(g_bad_fds == 0);
    /* Every request but the very first started while another was under way. */
    CHECK(g_interleaved >= 3 * ROUNDS - 3);
    CHECK(stat_requests(cl) == before + 3 * ROUNDS);
    /* 12 answers of 150 ms each, interleaved by three: far below 12 x 150 ms in sequence. */
    CHECK(took < 12 * 150);
    fprintf(stderr, "many: %d hook calls (%d with sockets), %d interleaved, %lld ms\n", g_calls,
            g_calls_fds, g_interleaved, (long long)took);

    /* A new connection's request started while a reused one waits for its answer. */
    phc_client_free(cl);
    cl = client_for(t, port, 0, NULL);
    if (!cl)
        goto out;
    before = stat_requests(cl);
    pair_arg p = {.cl = cl, .a_reused = {7, 7}, .b_reused = 7};
    co_init(&cs[0], 0, pair_a, &p);
    co_init(&cs[1], 1, pair_b, &p);
    run_all(cs, 2);
    co_free(cs, 2);
    CHECK(p.a_ok == 2 && p.b_ok == 1);
    CHECK(p.a_reused[0] == 0);
    CHECK(p.a_reused[1] == 1);
    CHECK(p.b_reused == 0);
    CHECK(stat_requests(cl) == before + 3);

    /* No hook: the same requests block as before, and report the same. */
    phc_set_thread_wait(NULL, NULL);
    int calls = g_calls, reused = 7, resumed = 7;
    CHECK(get(cl, "/v2/asset/sites", &reused, &resumed, NULL, 0) == 200);
    CHECK(reused == 1 && resumed == 0);
    CHECK(g_calls == calls);
    CHECK(stat_requests(cl) == before + 4);
out:
    phc_set_thread_wait(NULL, NULL);
    phc_client_free(cl);
    stop_mock();
}

/* ---- case 2: a retry's back-off through the hook ---- */

typedef struct {
    phc_client *cl;
    long status;
    int64_t took, done_at;
} backoff_arg;

static void backoff_body(co *c)
{
    backoff_arg *a = c->arg;
    int reused, resumed;
    int64_t t0 = now_ms();
    a->status = get(a->cl, "/v2/asset/sites", &reused, &resumed, NULL, 0);
    a->done_at = now_ms();
    a->took = a->done_at - t0;
}

static void test_backoff(const tok *t)
{
    /* The first request the mock sees is answered 429 with Retry-After: 1. */
    int port = start_mock("backoff", "--fault", "status429=1", NULL);
    if (port < 0)
        return;
    phc_client *cl = client_for(t, port, 0, NULL);
    if (!cl)
        goto out;
    phc_set_thread_wait(hook, &g_main);
    backoff_arg a[2] = {{cl, 0, 0, 0}, {cl, 0, 0, 0}};
    co cs[2];
    co_init(&cs[0], 0, backoff_body, &a[0]);
    co_init(&cs[1], 1, backoff_body, &a[1]);
    g_calls = g_calls_fds = g_calls_nofds = g_bad_fds = 0;
    run_all(cs, 2);
    co_free(cs, 2);
    CHECK(a[0].status == 200 && a[1].status == 200);
    /* One of them was told to wait a second, through the hook (nfds 0); the other finished
     * during that wait. */
    int slow = a[0].took >= 1000 ? 0 : 1;
    CHECK(a[slow].took >= 1000);
    CHECK(a[!slow].took < 1000 && a[!slow].done_at < a[slow].done_at);
    CHECK(g_calls_nofds > 0);
    CHECK(g_calls_fds > 0);
    CHECK(g_bad_fds == 0);
    fprintf(stderr, "backoff: %d hook calls without sockets, waited %lld ms\n", g_calls_nofds,
            (long long)a[slow].took);
out:
    phc_set_thread_wait(NULL, NULL);
    phc_client_free(cl);
    stop_mock();
}

/* ---- case 3: two coroutines need the API token at once ---- */

static void creds_body(co *c)
{
    backoff_arg *a = c->arg;
    int reused, resumed;
    a->status = get(a->cl, "/v2/asset/sites", &reused, &resumed, NULL, 0);
}

static void test_creds(const tok *t)
{
    char creds[PATH_MAX];
    snprintf(creds, sizeof(creds), "%s/creds", g_tmp);
    FILE *f = fopen(creds, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("unit s3cret valid\n", f);
    fclose(f);
    setenv("PHC_UNIT_TEST_SECRET", "s3cret", 1);
    int port = start_mock("creds", "--credentials", creds, NULL);
    if (port < 0)
        return;
    phc_client *cl = client_for(t, port, 1, NULL);
    if (!cl)
        goto out;
    phc_set_thread_wait(hook, &g_main);
    backoff_arg a[2] = {{cl, 0, 0, 0}, {cl, 0, 0, 0}};
    co cs[2];
    co_init(&cs[0], 0, creds_body, &a[0]);
    co_init(&cs[1], 1, creds_body, &a[1]);
    g_calls = g_calls_fds = g_calls_nofds = g_calls_auth = g_bad_fds = g_interleaved = 0;
    run_all(cs, 2);
    co_free(cs, 2);
    CHECK(a[0].status == 200 && a[1].status == 200);
    /* The second waited for the first one's token fetch through the hook. */
    CHECK(g_calls_auth > 0);
    CHECK(g_interleaved >= 1);
    CHECK(g_bad_fds == 0);
    /* Without the hook: the mock's count of token requests. */
    phc_set_thread_wait(NULL, NULL);
    char body[1024];
    int reused, resumed;
    CHECK(get(cl, "/_stats", &reused, &resumed, body, sizeof(body)) == 200);
    const char *tr = strstr(body, "\"token_requests\":");
    CHECK(tr && strtol(tr + 17, NULL, 10) == 1);
    if (!tr || strtol(tr + 17, NULL, 10) != 1)
        fprintf(stderr, "mock stats: %s\n", body);
out:
    phc_set_thread_wait(NULL, NULL);
    phc_client_free(cl);
    stop_mock();
}

/* ---- case 4: failures through the hook ---- */

typedef struct {
    phc_client *cl;
    const char *path;
    int rc, reused, resumed;
    phc_errbuf e;
    int64_t took, done_at;
} fail_arg;

static void fail_body(co *c)
{
    fail_arg *a = c->arg;
    phc_response *r = NULL;
    int64_t t0 = now_ms();
    a->rc = get_rc(a->cl, a->path, &a->reused, &a->resumed, &r, &a->e);
    a->done_at = now_ms();
    a->took = a->done_at - t0;
    phc_response_free(r);
}

static void test_faults(const tok *t)
{
    /* The mock reads /v2 requests and never answers them: libcurl's own timer (timeout = 1 s)
     * ends the transfer while it waits through the hook; /echo is answered meanwhile. */
    int port = start_mock("stall", "--fault", "stall", NULL);
    if (port < 0)
        return;
    phc_client *cl = client_for(t, port, 0, "1");
    if (!cl)
        goto out;
    phc_set_thread_wait(hook, &g_main);
    fail_arg a[2] = {{.cl = cl, .path = "/v2/asset/sites", .reused = 7, .resumed = 7},
                     {.cl = cl, .path = "/echo", .reused = 7, .resumed = 7}};
    co cs[2];
    co_init(&cs[0], 0, fail_body, &a[0]);
    co_init(&cs[1], 1, fail_body, &a[1]);
    g_calls = g_calls_fds = g_calls_nofds = g_bad_fds = 0;
    run_all(cs, 2);
    co_free(cs, 2);
    CHECK_ERR(a[0].rc, a[0].e, PHC_ERR_NETWORK, "timed out");
    CHECK(a[0].took >= 900 && a[0].took < 10000);
    CHECK(a[0].reused == -1 && a[0].resumed == -1); /* no answer: never counted */
    CHECK(a[1].rc == PHC_OK && a[1].done_at < a[0].done_at);
    CHECK(a[1].reused == 0);
    CHECK(g_calls_fds > 0 && g_bad_fds == 0);
    stop_mock();

    /* Nobody listens any more: a refused connection, reported as without a hook. */
    a[0] = (fail_arg){.cl = cl, .path = "/v2/asset/sites", .reused = 7, .resumed = 7};
    co_init(&cs[0], 0, fail_body, &a[0]);
    run_all(cs, 1);
    co_free(cs, 1);
    CHECK_ERR(a[0].rc, a[0].e, PHC_ERR_NETWORK, "cannot connect");
    CHECK(a[0].reused == -1 && a[0].resumed == -1);
out:
    phc_set_thread_wait(NULL, NULL);
    phc_client_free(cl);
    stop_mock();
}

static void on_alarm(int sig)
{
    static const char msg[] = "wait_test: timed out (a deadlock?)\n";
    (void)sig;
    (void)!write(2, msg, sizeof(msg) - 1);
    if (g_mock > 0)
        kill(g_mock, SIGTERM);
    _exit(1);
}

int main(void)
{
    tok t;
    signal(SIGALRM, on_alarm);
    alarm(90);
    /* No hook yet: the library's waits block. */
    CHECK(phc_global_init() == 0);
    if (tt_begin("wait") || !tt_have_softhsm())
        TEST_MAIN_END();
    if (tc_token(&t, "tok", "/CN=wait-client"))
        goto out;
    test_many(&t);
    test_backoff(&t);
    test_creds(&t);
    test_faults(&t);
    fprintf(stderr, "deepest coroutine stack: %zu KiB of %d KiB\n", g_stack_used / 1024,
            STACK_SIZE / 1024);
out:
    stop_mock();
    tt_end();
    TEST_MAIN_END();
}
