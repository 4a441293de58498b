/* p11_module unit: the one module layer. Reference counting over libp11 handles (hsm.c) and
 * raw handles (p11.c) - one entry per library, C_Initialize once and C_Finalize only when
 * the last user is gone (counted by the pass-through test module, hang_pkcs11) - a raw
 * session that outlives a libp11 handle, and the public promise that replaced token.h's
 * caveat: a token handle stays usable while other threads make and free clients on the same
 * module. */
#include "hsm.h"
#include "p11.h"
#include "p11_int.h"
#include "p11_module.h"
#include "testtoken.h"
#include "tokendir.h"
#include "testutil.h"

#include <phconnect/phconnect.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

static const char *g_hang; /* hang_pkcs11: forwards to SoftHSM, counts init/finalize */
static char g_count[PATH_MAX];

/* Lines of the call log equal to call. */
static int calls(const char *call)
{
    FILE *f = fopen(g_count, "r");
    char line[64];
    int n = 0;
    while (f && fgets(line, sizeof(line), f))
        n += strncmp(line, call, strlen(call)) == 0 && line[strlen(call)] == '\n';
    if (f)
        fclose(f);
    return n;
}

static void test_refcount(const tok *t)
{
    phc_p11_module *a = NULL, *b = NULL;
    phc_errbuf e = {0};
    unsigned int loaded = 9;
    CHECK(phc__p11_module_refs(g_hang, &loaded) == 0 && loaded == 0);
    CHECK(phc__p11_module_get(&a, g_hang, NULL, &e) == PHC_OK);
    CHECK(phc__p11_module_get(&b, g_hang, NULL, &e) == PHC_OK);
    CHECK(a && a == b); /* one entry per library */
    CHECK(phc__p11_module_refs(g_hang, &loaded) == 2 && loaded == 1);
    CHECK(calls("C_Initialize") == 1);
    CHECK(calls("C_GetFunctionList") == 1); /* one instance: libp11's list is the raw one */

    /* A libp11 handle and a raw handle on the same module, same entry. */
    phc_hsm *h = NULL;
    phc_p11 *p = NULL;
    CHECK(phc__hsm_open(&h, g_hang, "pkcs11:token=phc-test;object=client", t->pin, NULL, &e) ==
          PHC_OK);
    CHECK(phc__p11_open(&p, g_hang, "pkcs11:token=phc-test", t->pin, NULL, &e) == PHC_OK);
    CHECK(phc__p11_module_refs(g_hang, NULL) == 4);
    CHECK(calls("C_Initialize") == 1);
    /* The libp11 handle goes: the raw session lives on. */
    phc__hsm_free(h);
    CHECK(calls("C_Finalize") == 0);
    phc_p11_match m = {CKO_PRIVATE_KEY, "client", NULL, 0, 0};
    CK_OBJECT_HANDLE *objs = NULL;
    size_t n = 0;
    CHECK(p && phc__p11_find(p, &m, &objs, &n, &e) == PHC_OK && n == 1);
    OPENSSL_free(objs);
    phc__p11_close(p);
    phc__p11_module_put(a);
    CHECK(calls("C_Finalize") == 0);
    CHECK(phc__p11_module_refs(g_hang, NULL) == 1);
    phc__p11_module_put(b); /* the last user */
    CHECK(calls("C_Finalize") == 1);
    CHECK(phc__p11_module_refs(g_hang, &loaded) == 0 && loaded == 0);

    /* Loaded again afterwards: initialised afresh. */
    CHECK(phc__p11_module_get(&a, g_hang, NULL, &e) == PHC_OK);
    CHECK(calls("C_Initialize") == 2);
    phc__p11_module_put(a);
    CHECK(calls("C_Finalize") == 2);
}

static void test_refusals(void)
{
    phc_p11_module *m = NULL;
    phc_errbuf e = {0};
    CHECK_ERR(phc__p11_module_get(&m, "/nonexistent/p11.so", NULL, &e), e, PHC_ERR_HSM,
              "cannot load PKCS#11 module '/nonexistent/p11.so': file does not exist");
    CHECK_ERR(phc__p11_module_get(&m, "/etc/hostname", NULL, &e), e, PHC_ERR_HSM,
              "cannot load PKCS#11 module '/etc/hostname': ");
    CHECK_ERR(phc__p11_module_get(&m, "/usr/lib/x86_64-linux-gnu/libz.so.1", NULL, &e), e,
              PHC_ERR_HSM, "not a PKCS#11 library (no C_GetFunctionList)");
    CHECK(m == NULL && phc__p11_module_refs(NULL, NULL) == 0);
}

/* The bounded retry of a token's transient states: 5 attempts, 10/20/40/80 ms apart, the
 * module re-initialised in between only while one reference holds it, never past the
 * thread's deadline, the final message saying how many attempts were made. */
static void test_retry(void)
{
    phc_p11_module *a = NULL, *b = NULL;
    phc_errbuf e = {0};
    CHECK(phc__p11_module_get(&a, g_hang, NULL, &e) == PHC_OK);
    int inits = calls("C_Initialize"), fins = calls("C_Finalize");
    phc_p11_retry r;
    phc__p11_retry_init(&r);
    snprintf(r.token, sizeof(r.token), "phc-test");
    long long t0 = phc__p11_mono_ms();
    int again = 0;
    while (phc__p11_retry_again(&r, a, g_hang, NULL))
        again++;
    long long took = phc__p11_mono_ms() - t0;
    CHECK(again == 4 && r.attempt == 5);
    if (took < 150 || took > 1000)
        fprintf(stderr, "retries took %lld ms\n", took);
    CHECK(took >= 150 && took <= 1000);
    CHECK(calls("C_Finalize") == fins + 4 && calls("C_Initialize") == inits + 4);
    snprintf(e.msg, sizeof(e.msg), "no token with label 'phc-test' in module 'x'");
    phc__p11_retry_final(&r, &e);
    CHECK(strcmp(e.msg, "no token with label 'phc-test' in module 'x' after 5 attempts") == 0);

    /* A second user: no re-initialisation under it. */
    CHECK(phc__p11_module_get(&b, g_hang, NULL, &e) == PHC_OK);
    phc__p11_retry_init(&r);
    CHECK(phc__p11_retry_again(&r, a, g_hang, NULL) == 1);
    CHECK(calls("C_Finalize") == fins + 4);
    phc__p11_module_put(b);

    /* The deadline comes first: 10 ms fit in 15, the next 20 do not. */
    phc__p11_retry_init(&r);
    phc__p11_deadline_set(phc__p11_mono_ms() + 15);
    CHECK(phc__p11_retry_again(&r, a, g_hang, NULL) == 1);
    CHECK(phc__p11_retry_again(&r, a, g_hang, NULL) == 0 && r.attempt == 2);
    phc__p11_deadline_set(0);
    phc__p11_retry_final(&r, NULL); /* no buffer: nothing to say */
    phc__p11_module_put(a);
}

/* ---------------------------------------------------------------------------------- */

struct churn {
    phc_config *cfg;
    int made;
    phc_errbuf err;
};

static void *make_free_clients(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < 6; i++) {
        phc_client *cl = NULL;
        if (phc_client_new(&cl, c->cfg, NULL, &c->err) != PHC_OK)
            break;
        c->made++;
        phc_client_free(cl);
    }
    return NULL;
}

static void test_token_held_while_clients_come_and_go(const tok *t)
{
    char ca[PATH_MAX + 16];
    const char *pki = getenv("PHC_PKI");
    snprintf(ca, sizeof(ca), "%s/ca.pem", pki ? pki : "");
    phc_config *cfg = NULL;
    phc_errbuf e = {0};
    int ok = phc_config_new(&cfg, &e) == PHC_OK &&
             phc_config_set(cfg, "url", "https://api.powerhub.test:8443", &e) == PHC_OK &&
             phc_config_set(cfg, "ca_file", ca, &e) == PHC_OK &&
             phc_config_set(cfg, "pkcs11_module", MODULE, &e) == PHC_OK &&
             phc_config_set(cfg, "key", "pkcs11:token=phc-test;object=client;type=private", &e) ==
                 PHC_OK &&
             phc_config_set(cfg, "pin", t->pin, &e) == PHC_OK;
    CHECK(ok);
    phc_token *tk = NULL;
    CHECK(ok && phc_token_open(&tk, cfg, NULL, &e) == PHC_OK);
    if (!tk) {
        fprintf(stderr, "setup: %s\n", e.msg);
        phc_config_free(cfg);
        return;
    }
    struct churn a = {cfg, 0, {0}}, b = {cfg, 0, {0}};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, make_free_clients, &a) == 0);
    CHECK(pthread_create(&tb, NULL, make_free_clients, &b) == 0);
    /* Meanwhile the held handle keeps reading the token. */
    int reads_ok = 1;
    for (int i = 0; i < 10; i++) {
        phc_pair_list *pairs = NULL;
        phc_errbuf re = {0};
        int rc = phc_token_pairs(tk, 0, &pairs, &re);
        size_t n = phc_pair_list_count(pairs);
        if (rc != PHC_OK || n != 1) {
            fprintf(stderr, "pairs while clients churn: rc=%d n=%zu %s\n", rc, n, re.msg);
            reads_ok = 0;
        }
        phc_pair_list_free(pairs);
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(reads_ok);
    if (a.made != 6 || b.made != 6)
        fprintf(stderr, "clients: %d/%d: %s %s\n", a.made, b.made, a.err.msg, b.err.msg);
    CHECK(a.made == 6 && b.made == 6);
    /* After every client is gone the handle still works. */
    phc_pair_list *pairs = NULL;
    CHECK(phc_token_pairs(tk, 0, &pairs, &e) == PHC_OK && phc_pair_list_count(pairs) == 1 &&
          phc_pair_list_get(pairs, 0)->has_cert);
    phc_pair_list_free(pairs);
    phc_token_free(tk);
    phc_config_free(cfg);
}

/* ---------------------------------------------------------------------------------- */
/* The store lock (p11_module.h): with SoftHSM, object reads hold a shared and object writes
 * an exclusive flock on the token directory, waiting at most until the thread's deadline,
 * then going ahead with one warning. */

static char g_logged[1024];

static void keep_log(void *ud, phc_log_level level, const char *msg)
{
    (void)ud;
    if (level == PHC_LOG_WARN)
        snprintf(g_logged, sizeof(g_logged), "%s", msg);
}

struct holder {
    int fd;
    int ms;
};

static void *release_later(void *arg)
{
    struct holder *h = arg;
    usleep((useconds_t)h->ms * 1000);
    close(h->fd);
    return NULL;
}

/* Another holder of the lock: a descriptor of its own (a flock belongs to the open file, so
 * it conflicts with the module layer's in this very process). */
static int hold_store(const char *dir, int how)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0 && flock(fd, how | LOCK_NB) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void test_store_lock(const tok *t)
{
    phc_p11 *p = NULL;
    phc_errbuf e = {0};
    phc_log log = {keep_log, NULL, PHC_LOG_DEBUG};
    char dir[PATH_MAX];
    CHECK(phc__tokendir_store(dir, sizeof(dir)) == 0);
    CHECK(phc__p11_open(&p, MODULE, "pkcs11:token=phc-test", t->pin, &log, &e) == PHC_OK);
    if (!p) {
        fprintf(stderr, "open: %s\n", e.msg);
        return;
    }
    /* Every user's list is the locking copy, not the library's own. */
    void *dl = dlopen(MODULE, RTLD_NOW | RTLD_NOLOAD);
    CK_C_GetFunctionList get = NULL;
    void *sym = dl ? dlsym(dl, "C_GetFunctionList") : NULL;
    memcpy(&get, &sym, sizeof(get));
    CK_FUNCTION_LIST *real = NULL;
    CHECK(get && get(&real) == CKR_OK && real);
    CHECK(real && p->fn != real && p->fn->C_GetAttributeValue != real->C_GetAttributeValue &&
          p->fn->C_CreateObject != real->C_CreateObject && p->fn->C_Login != real->C_Login &&
          p->fn->C_GetTokenInfo != real->C_GetTokenInfo && p->fn->C_Sign == real->C_Sign &&
          p->fn->C_FindObjects == real->C_FindObjects);
    if (dl)
        dlclose(dl);
    phc_p11_match m = {CKO_PRIVATE_KEY, "client", NULL, 0, 0};
    CK_OBJECT_HANDLE *objs = NULL;
    size_t n = 0;
    CHECK(phc__p11_find(p, &m, &objs, &n, &e) == PHC_OK && n == 1);
    CK_OBJECT_HANDLE key = n ? objs[0] : CK_INVALID_HANDLE;
    OPENSSL_free(objs);
    unsigned char id[64];
    CK_ATTRIBUTE a = {CKA_ID, id, sizeof(id)};

    /* Readers share: another reader does not hold a read up. */
    int fd = hold_store(dir, LOCK_SH);
    CHECK(fd >= 0);
    long long t0 = phc__p11_mono_ms();
    CHECK(p->fn->C_GetAttributeValue(p->session, key, &a, 1) == CKR_OK && a.ulValueLen == 1);
    CHECK(phc__p11_mono_ms() - t0 < 100);
    /* ... but a writer waits for it: until the deadline, then goes ahead, warned once. */
    phc__p11_deadline_set(phc__p11_mono_ms() + 150);
    t0 = phc__p11_mono_ms();
    CHECK(p->fn->C_DestroyObject(p->session, CK_INVALID_HANDLE) == CKR_OBJECT_HANDLE_INVALID);
    long long took = phc__p11_mono_ms() - t0;
    if (took < 150 || took > 1500)
        fprintf(stderr, "writer under a reader's lock: %lld ms\n", took);
    CHECK(took >= 150 && took <= 1500);
    phc__p11_deadline_set(0);
    g_logged[0] = '\0';
    phc__p11_store_report(&log);
    CHECK(strstr(g_logged, "another process held SoftHSM's token directory lock for over ") &&
          strstr(g_logged, " ms; went on without it 1 time(s) (an object written meanwhile may "
                           "be read half-made)"));
    g_logged[0] = '\0';
    phc__p11_store_report(&log); /* said once */
    CHECK(g_logged[0] == '\0');
    close(fd);

    /* A writer elsewhere: a read waits until it is done (100 ms here), then reads, unwarned. */
    struct holder h = {hold_store(dir, LOCK_EX), 100};
    CHECK(h.fd >= 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, release_later, &h) == 0);
    t0 = phc__p11_mono_ms();
    a.ulValueLen = sizeof(id);
    CHECK(p->fn->C_GetAttributeValue(p->session, key, &a, 1) == CKR_OK && a.ulValueLen == 1);
    took = phc__p11_mono_ms() - t0;
    pthread_join(th, NULL);
    if (took < 90 || took > 1500)
        fprintf(stderr, "read under a writer's lock: %lld ms\n", took);
    CHECK(took >= 90 && took <= 1500);
    phc__p11_store_report(&log);
    CHECK(g_logged[0] == '\0');
    phc__p11_close(p);
}

int main(void)
{
    tok t;
    if (tt_begin("p11mod") || !tt_have_softhsm())
        TEST_MAIN_END();
    g_hang = getenv("PHC_HANG_MODULE");
    CHECK(g_hang != NULL);
    snprintf(g_count, sizeof(g_count), "%s/calls.log", g_tmp);
    setenv("PHC_HANG_CALL_LOG", g_count, 1);
    const char *pki = getenv("PHC_PKI");
    if (g_hang && pki && tok_init(&t, "tok", "phc-test rsa:2048") == 0 &&
        sh("bash '%s/tests/fixtures/pki.sh' issue-client '%s' '%s/pub.pem' '/O=Test/CN=p11mod' "
           "'%s/client.pem' 30 >/dev/null && bash '%s/tests/fixtures/token.sh' putcert '%s' "
           "'%s/client.pem' client 01 >/dev/null",
           g_src, pki, t.dir, t.dir, g_src, t.dir, t.dir) == 0) {
        test_refcount(&t);
        test_refusals();
        test_retry();
        test_token_held_while_clients_come_and_go(&t);
        test_store_lock(&t);
    } else {
        CHECK(0);
    }
    tt_end();
    TEST_MAIN_END();
}
