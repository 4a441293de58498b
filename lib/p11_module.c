/* The one PKCS#11 module layer (see p11_module.h for the contract and the libp11 facts). */
#include "p11_module.h"
#include "tokendir.h"

#include "err.h"
#include "p11_rv.h"
#include "p11_watch.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

struct phc_p11_module {
    struct phc_p11_module *next;
    dev_t dev; /* identity of the library file: the dynamic loader shares by it too */
    ino_t ino;
    void *dl;        /* ours: keeps the library mapped until the entry goes */
    PKCS11_CTX *ctx; /* libp11's context: the one load and C_Initialize */
    CK_FUNCTION_LIST *fn;
    int loaded;   /* PKCS11_CTX_load succeeded: PKCS11_CTX_unload finalises */
    int own_init; /* fallback list (see shared_list): finalised by us after libp11 */
    unsigned int refs;
    pthread_mutex_t slots_mu; /* the listing below: a token that hangs there holds up only */
    phc_p11_slots lp;         /* this module's libp11 users, not the layer's lock */
    int listed;
    int store_locked; /* SoftHSM: every user calls through the store lock's list (below) */
};

/* Guards the list and every entry's refs. hsm.c takes its own lock first. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static phc_p11_module *g_modules;

int phc__p11_module_stat(const char *module, struct stat *st, phc_errbuf *err)
{
    if (!module || !*module)
        return phc__err(err, PHC_ERR_HSM, "no PKCS#11 module configured");
    if (stat(module, st) != 0)
        return phc__err(err, PHC_ERR_HSM, "cannot load PKCS#11 module '%s': %s", module,
                        errno == ENOENT ? "file does not exist" : strerror(errno));
    if (!S_ISREG(st->st_mode))
        return phc__err(err, PHC_ERR_HSM, "cannot load PKCS#11 module '%s': not a regular file",
                        module);
    return PHC_OK;
}

static CK_C_GetFunctionList get_list_fn(void *dl)
{
    CK_C_GetFunctionList get = NULL;
    void *sym = dlsym(dl, "C_GetFunctionList");
    memcpy(&get, &sym, sizeof(get)); /* POSIX: a data pointer holds a function pointer */
    return get;
}

/* Opened here before libp11 sees it: libp11's loader prints dlerror() to stderr and reports
 * only "load module error", so a file that is no PKCS#11 library is refused here with the
 * loader's reason. C_GetFunctionList is looked up, not called: for a remoting client each
 * call makes a module instance. */
static int open_library(void **dl, const char *module, phc_errbuf *err)
{
    *dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (!*dl) {
        const char *why = dlerror();
        return phc__err(err, PHC_ERR_HSM, "cannot load PKCS#11 module '%s': %s", module,
                        why ? why : "dlopen failed");
    }
    if (!get_list_fn(*dl)) {
        dlclose(*dl);
        *dl = NULL;
        return phc__err(err, PHC_ERR_HSM,
                        "cannot load PKCS#11 module '%s': not a PKCS#11 library (no "
                        "C_GetFunctionList)",
                        module);
    }
    return PHC_OK;
}

/* The first members of libp11 0.4.12's private context (libp11-int.h: struct
 * pkcs11_ctx_private) and module handle (libpkcs11.c: struct sc_pkcs11_module). */
struct libp11_ctx_head {
    CK_FUNCTION_LIST_PTR method;
    void *handle;
};
struct libp11_mod_head {
    unsigned int magic;
    void *dl;
};
#define LIBP11_MOD_MAGIC 0xd00bed00u

/* The function list libp11 loaded and initialised, when libp11's private layout is the one
 * described above and the list is the library's we opened; NULL otherwise. */
static CK_FUNCTION_LIST *libp11_list(const phc_p11_module *m)
{
    const struct libp11_ctx_head *c = m->ctx ? m->ctx->_private : NULL;
    if (!c || !c->method || !c->handle)
        return NULL;
    const struct libp11_mod_head *h = c->handle;
    if (h->magic != LIBP11_MOD_MAGIC || !h->dl || get_list_fn(h->dl) != get_list_fn(m->dl))
        return NULL;
    return c->method;
}

/* The list every raw call uses: libp11's. Should libp11 ever be laid out otherwise, a list
 * of our own, initialised here: that is one module instance more for a remoting client, but
 * still correct, since it is initialised and finalised with the entry. */
static int shared_list(phc_p11_module *m, const char *module, const phc_log *log, phc_errbuf *err)
{
    if ((m->fn = libp11_list(m)) != NULL)
        return PHC_OK;
    phc__log(log, PHC_LOG_DEBUG,
             "libp11's function list is out of reach; initialising PKCS#11 module '%s' a "
             "second time for direct calls",
             module);
    CK_FUNCTION_LIST *fn = NULL;
    CK_C_GetFunctionList get = get_list_fn(m->dl);
    if (!get || get(&fn) != CKR_OK || !fn)
        return phc__err(err, PHC_ERR_HSM,
                        "cannot load PKCS#11 module '%s': not a PKCS#11 library (no "
                        "C_GetFunctionList)",
                        module);
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = fn->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        char name[40];
        return phc__err(err, PHC_ERR_HSM,
                        "cannot load PKCS#11 module '%s': initialisation failed (%s)", module,
                        phc__p11_rv_str(name, sizeof(name), rv));
    }
    m->fn = fn;
    m->own_init = rv == CKR_OK;
    return PHC_OK;
}

/* ------------------------------------------------------------------------------------ */
/* SoftHSM's object store under several processes (see p11_module.h, "The store lock") */

struct store_lock {
    CK_FUNCTION_LIST list; /* the module's list with the entries below in place */
    CK_FUNCTION_LIST *real;
    char dir[PATH_MAX]; /* the token directory, flock(2)ed */
};
static struct store_lock *g_store; /* one SoftHSM library per process; g_lock guards it */

static __thread unsigned int t_store_skipped; /* waits given up, for phc__p11_store_report */
static __thread long long t_store_waited;

/* The store's lock, shared (LOCK_SH) or exclusive (LOCK_EX), on a descriptor of its own (a
 * flock belongs to the open file: threads must not share one). Waits at most until the
 * thread's deadline, else PHC_P11_STORE_WAIT_MS; -1 when given up (counted) or the directory
 * cannot be opened: the call then goes ahead as it would without the lock. */
static int store_lock_at(const char *dir, int how)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (flock(fd, how | LOCK_NB) == 0)
        return fd;
    long long start = phc__p11_mono_ms();
    long long until = phc__p11_deadline_get();
    if (!until || until > start + PHC_P11_STORE_WAIT_MS)
        until = start + PHC_P11_STORE_WAIT_MS;
    long pause_us = 100;
    for (;;) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            break;
        long long now = phc__p11_mono_ms();
        if (now >= until) {
            t_store_skipped++;
            t_store_waited = now - start;
            break;
        }
        struct timespec ts = {0, pause_us * 1000L};
        nanosleep(&ts, NULL);
        if (pause_us < 2000)
            pause_us *= 2;
        if (flock(fd, how | LOCK_NB) == 0)
            return fd;
    }
    close(fd);
    return -1;
}

static int store_lock(int how)
{
    return store_lock_at(g_store->dir, how);
}

static void store_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* Readers: SoftHSM's C_GetAttributeValue gives the object it holds every attribute it lacks,
 * with its default, and writes the object out (P11Object::init). A process that read an
 * object while another was creating it holds part of it, and writes defaults over the
 * finished object: the certificate or key just made is gone for everyone. */
static CK_RV store_get_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    int fd = store_lock(LOCK_SH);
    CK_RV rv = g_store->real->C_GetAttributeValue(s, h, t, n);
    store_unlock(fd);
    return rv;
}

/* Writers: SoftHSM creates an object in some thirty rewrites of its file (one per default
 * attribute, then the template), modifies and deletes whole files. */
static CK_RV store_set_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_SetAttributeValue(s, h, t, n);
    store_unlock(fd);
    return rv;
}

static CK_RV store_create(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                          CK_OBJECT_HANDLE_PTR out)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_CreateObject(s, t, n, out);
    store_unlock(fd);
    return rv;
}

static CK_RV store_copy(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                        CK_OBJECT_HANDLE_PTR out)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_CopyObject(s, h, t, n, out);
    store_unlock(fd);
    return rv;
}

static CK_RV store_destroy(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_DestroyObject(s, h);
    store_unlock(fd);
    return rv;
}

static CK_RV store_keygen(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                          CK_OBJECT_HANDLE_PTR out)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_GenerateKey(s, m, t, n, out);
    store_unlock(fd);
    return rv;
}

static CK_RV store_keypair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pubt,
                           CK_ULONG npub, CK_ATTRIBUTE_PTR privt, CK_ULONG npriv,
                           CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_GenerateKeyPair(s, m, pubt, npub, privt, npriv, pub, priv);
    store_unlock(fd);
    return rv;
}

static CK_RV store_unwrap(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k,
                          CK_BYTE_PTR w, CK_ULONG wn, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                          CK_OBJECT_HANDLE_PTR out)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_UnwrapKey(s, m, k, w, wn, t, n, out);
    store_unlock(fd);
    return rv;
}

static CK_RV store_derive(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k,
                          CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR out)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_DeriveKey(s, m, k, t, n, out);
    store_unlock(fd);
    return rv;
}

/* The token file: SoftHSM rewrites token.object at every C_Login (and C_InitPIN, C_SetPIN,
 * C_InitToken) and its bytes reach the file only after the file lock is released (upstream
 * issue #757); C_GetTokenInfo and C_Initialize read it, and one read while it is empty marks
 * the token invalid in the reading process. Among phconnect processes the lock keeps the two
 * apart; the bounded retry (below) stays for every other writer. */
static CK_RV store_login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG n)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_Login(s, u, pin, n);
    store_unlock(fd);
    return rv;
}

static CK_RV store_init_pin(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG n)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_InitPIN(s, pin, n);
    store_unlock(fd);
    return rv;
}

static CK_RV store_set_pin(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR old, CK_ULONG nold,
                           CK_UTF8CHAR_PTR pin, CK_ULONG n)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_SetPIN(s, old, nold, pin, n);
    store_unlock(fd);
    return rv;
}

static CK_RV store_init_token(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG n,
                              CK_UTF8CHAR_PTR label)
{
    int fd = store_lock(LOCK_EX);
    CK_RV rv = g_store->real->C_InitToken(slot, pin, n, label);
    store_unlock(fd);
    return rv;
}

static CK_RV store_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    int fd = store_lock(LOCK_SH);
    CK_RV rv = g_store->real->C_GetTokenInfo(slot, info);
    store_unlock(fd);
    return rv;
}

static CK_RV store_initialize(CK_VOID_PTR args)
{
    int fd = store_lock(LOCK_SH); /* a re-initialisation reads every token file */
    CK_RV rv = g_store->real->C_Initialize(args);
    store_unlock(fd);
    return rv;
}

/* A SoftHSM library (its own C_GetInfo says so: a remoting client's store is on another
 * host, out of this lock's reach) with a file store found: every user of the entry, libp11
 * included, calls through the locking list from here on. g_lock held. */
static void store_lock_install(phc_p11_module *m, const char *module, const phc_log *log)
{
    const char *maker = m->ctx ? m->ctx->manufacturer : NULL;
    if (!maker || strncmp(maker, "SoftHSM", 7) != 0)
        return;
    struct libp11_ctx_head *c = m->ctx->_private;
    int libp11_shared = c && c->method == m->fn;
    if (g_store || !libp11_shared) {
        phc__log(log, PHC_LOG_DEBUG,
                 "PKCS#11 module '%s' is SoftHSM, but %s: its store lock is not taken", module,
                 g_store ? "another SoftHSM library of this process has it"
                         : "libp11 does not share its function list");
        return;
    }
    struct store_lock *w = OPENSSL_zalloc(sizeof(*w));
    if (!w || phc__tokendir_store(w->dir, sizeof(w->dir)) != 0) {
        phc__log(log, PHC_LOG_DEBUG,
                 "PKCS#11 module '%s': no SoftHSM token directory found; its store lock is "
                 "not taken",
                 module);
        OPENSSL_free(w);
        return;
    }
    w->real = m->fn;
    w->list = *m->fn;
    w->list.C_GetAttributeValue = store_get_attr;
    w->list.C_SetAttributeValue = store_set_attr;
    w->list.C_CreateObject = store_create;
    w->list.C_CopyObject = store_copy;
    w->list.C_DestroyObject = store_destroy;
    w->list.C_GenerateKey = store_keygen;
    w->list.C_GenerateKeyPair = store_keypair;
    w->list.C_UnwrapKey = store_unwrap;
    w->list.C_DeriveKey = store_derive;
    w->list.C_Login = store_login;
    w->list.C_InitPIN = store_init_pin;
    w->list.C_SetPIN = store_set_pin;
    w->list.C_InitToken = store_init_token;
    w->list.C_GetTokenInfo = store_token_info;
    w->list.C_Initialize = store_initialize;
    g_store = w;
    m->fn = &w->list;
    if (libp11_shared)
        c->method = &w->list; /* libp11 calls through the same list */
    m->store_locked = 1;
    phc__log(log, PHC_LOG_DEBUG,
             "PKCS#11 module '%s' is SoftHSM: object and token-file reads and writes take the "
             "lock on its token directory %s",
             module, w->dir);
}

/* After the module's C_Finalize: nobody calls through the list any more. g_lock held. */
static void store_lock_drop(phc_p11_module *m)
{
    if (!m->store_locked)
        return;
    OPENSSL_free(g_store);
    g_store = NULL;
    m->store_locked = 0;
}

void phc__p11_store_report(const phc_log *log)
{
    if (!t_store_skipped)
        return;
    phc__log(log, PHC_LOG_WARN,
             "another process held SoftHSM's token directory lock for over %lld ms; went on "
             "without it %u time(s) (an object written meanwhile may be read half-made)",
             t_store_waited, t_store_skipped);
    t_store_skipped = 0;
}

/* The last reference is gone: libp11's login and slots, then its C_Finalize, then ours
 * (fallback only), then the library. g_lock held. */
static void unload(phc_p11_module *m)
{
    for (phc_p11_module **pp = &g_modules; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    for (unsigned int i = 0; i < m->lp.n; i++)
        if (m->lp.logged_in && m->lp.logged_in[i])
            PKCS11_logout(&m->lp.slots[i]);
    if (m->lp.slots)
        PKCS11_release_all_slots(m->ctx, m->lp.slots, m->lp.n);
    if (m->ctx) {
        if (m->loaded) {
            phc__p11_watch_enter("C_Finalize");
            PKCS11_CTX_unload(m->ctx);
            phc__p11_watch_leave(CKR_OK);
        }
        PKCS11_CTX_free(m->ctx);
    }
    if (m->own_init)
        m->fn->C_Finalize(NULL);
    store_lock_drop(m);
    if (m->dl)
        dlclose(m->dl);
    OPENSSL_free(m->lp.logged_in);
    pthread_mutex_destroy(&m->slots_mu);
    OPENSSL_free(m);
    ERR_clear_error();
}

int phc__p11_module_get(phc_p11_module **out, const char *module, const phc_log *log,
                        phc_errbuf *err)
{
    struct stat st;
    char ckr[64];
    int rc;
    *out = NULL;
    if ((rc = phc__p11_module_stat(module, &st, err)) != PHC_OK)
        return rc;
    pthread_mutex_lock(&g_lock);
    for (phc_p11_module *m = g_modules; m; m = m->next)
        if (m->dev == st.st_dev && m->ino == st.st_ino) {
            m->refs++;
            pthread_mutex_unlock(&g_lock);
            *out = m;
            phc__log(log, PHC_LOG_DEBUG, "PKCS#11 module '%s' already loaded", module);
            return PHC_OK;
        }
    phc_p11_module *m = OPENSSL_zalloc(sizeof(*m));
    if (!m) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    pthread_mutex_init(&m->slots_mu, NULL);
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->refs = 1;
    m->next = g_modules;
    g_modules = m;
    if ((rc = open_library(&m->dl, module, err)) != PHC_OK)
        goto fail;
    if (!(m->ctx = PKCS11_CTX_new())) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        goto fail;
    }
    ERR_clear_error();
    /* SoftHSM reads every token file in C_Initialize: under the store lock when the library
     * is known to be SoftHSM by its name already (its C_GetInfo is asked only once loaded). */
    char dir[PATH_MAX];
    int pre = phc__tokendir_named_softhsm(module) && phc__tokendir_store(dir, sizeof(dir)) == 0
                  ? store_lock_at(dir, LOCK_SH)
                  : -1;
    phc__p11_watch_enter("C_Initialize"); /* a time-bounded admin operation names it */
    int loaded = PKCS11_CTX_load(m->ctx, module);
    phc__p11_watch_leave(CKR_OK);
    store_unlock(pre);
    if (loaded != 0) {
        phc__p11_rv_last(ckr, sizeof(ckr));
        rc = phc__err(err, PHC_ERR_HSM,
                      "cannot load PKCS#11 module '%s': initialisation failed (%s)", module, ckr);
        goto fail;
    }
    m->loaded = 1;
    if ((rc = shared_list(m, module, log, err)) != PHC_OK)
        goto fail;
    store_lock_install(m, module, log);
    phc__log(log, PHC_LOG_INFO, "PKCS#11 module '%s' loaded (%s, %s)", module,
             m->ctx->manufacturer ? m->ctx->manufacturer : "?",
             m->ctx->description ? m->ctx->description : "?");
    *out = m;
    goto out;
fail:
    if (--m->refs == 0)
        unload(m);
out:
    pthread_mutex_unlock(&g_lock);
    return rc;
}

void phc__p11_module_put(phc_p11_module *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&g_lock);
    if (--m->refs == 0)
        unload(m);
    pthread_mutex_unlock(&g_lock);
}

CK_FUNCTION_LIST *phc__p11_module_fn(const phc_p11_module *m)
{
    return m->fn;
}

/* What the module answers for its slot list and each token's information. libp11 0.4.12
 * leaks the slots it listed so far when a token's C_GetTokenInfo fails inside
 * PKCS11_enumerate_slots (SoftHSM answers CKR_GENERAL_ERROR while another process rewrites
 * its token file), so the module is asked first, directly. */
static CK_RV tokens_answer(CK_FUNCTION_LIST *fn)
{
    CK_ULONG n = 0;
    CK_SLOT_ID *slots = NULL;
    CK_RV rv = PHC_P11_CALL(fn, C_GetSlotList, CK_TRUE, NULL, &n);
    if (rv != CKR_OK || n == 0)
        return rv;
    if (!(slots = OPENSSL_malloc(n * sizeof(*slots))))
        return CKR_HOST_MEMORY;
    rv = PHC_P11_CALL(fn, C_GetSlotList, CK_TRUE, slots, &n);
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
        CK_TOKEN_INFO ti;
        rv = PHC_P11_CALL(fn, C_GetTokenInfo, slots[i], &ti);
        if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED)
            rv = CKR_OK; /* libp11 skips these */
    }
    OPENSSL_free(slots);
    return rv;
}

int phc__p11_module_slots(phc_p11_module *m, phc_p11_slots **out, const char *module,
                          phc_errbuf *err)
{
    char ckr[64];
    int rc = PHC_OK;
    *out = NULL;
    pthread_mutex_lock(&m->slots_mu);
    if (!m->listed) {
        PKCS11_SLOT *slots = NULL;
        unsigned int n = 0;
        CK_RV rv = tokens_answer(m->fn);
        if (rv != CKR_OK) {
            rc = phc__err(err, PHC_ERR_HSM, "cannot list the slots of PKCS#11 module '%s' (%s)",
                          module, phc__p11_rv_str(ckr, sizeof(ckr), rv));
            goto out;
        }
        ERR_clear_error();
        /* libp11 asks the module for its slots and tokens: a bounded admin operation that
         * hangs in there names the listing. */
        phc__p11_watch_enter("C_GetSlotList");
        int listed = PKCS11_enumerate_slots(m->ctx, &slots, &n);
        phc__p11_watch_leave(CKR_OK);
        if (listed) {
            phc__p11_rv_last(ckr, sizeof(ckr));
            rc = phc__err(err, PHC_ERR_HSM, "cannot list the slots of PKCS#11 module '%s' (%s)",
                          module, ckr);
            goto out;
        }
        if (!(m->lp.logged_in = OPENSSL_zalloc(n ? n : 1))) {
            PKCS11_release_all_slots(m->ctx, slots, n);
            rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
            goto out;
        }
        m->lp.slots = slots;
        m->lp.n = n;
        m->listed = 1;
    }
    *out = &m->lp;
out:
    pthread_mutex_unlock(&m->slots_mu);
    return rc;
}

int phc__p11_module_refs(const char *module, unsigned int *loaded)
{
    struct stat st;
    int refs = 0;
    unsigned int n = 0;
    int known = module && stat(module, &st) == 0;
    pthread_mutex_lock(&g_lock);
    for (phc_p11_module *m = g_modules; m; m = m->next) {
        n++;
        if (known && m->dev == st.st_dev && m->ino == st.st_ino)
            refs = (int)m->refs;
    }
    pthread_mutex_unlock(&g_lock);
    if (loaded)
        *loaded = n;
    return refs;
}

/* ------------------------------------------------------------------------------------ */
/* Transient token states (see p11_module.h) */

static __thread long long t_deadline; /* the bounded operation's, on this thread */

void phc__p11_deadline_set(long long mono_ms)
{
    t_deadline = mono_ms;
}

long long phc__p11_deadline_get(void)
{
    return t_deadline;
}

long long phc__p11_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int phc__p11_module_reinit(phc_p11_module *m, const char *module, const phc_log *log)
{
    int done = 0;
    pthread_mutex_lock(&g_lock);
    if (m->refs == 1) {
        /* Nobody else holds a session or a libp11 slot of it: SoftHSM forgets a token it
         * marked invalid only at C_Finalize. libp11's slots go first (they close their
         * sessions) and are listed again on next use. */
        pthread_mutex_lock(&m->slots_mu);
        if (m->listed) {
            PKCS11_release_all_slots(m->ctx, m->lp.slots, m->lp.n);
            OPENSSL_free(m->lp.logged_in);
            memset(&m->lp, 0, sizeof(m->lp));
            m->listed = 0;
        }
        pthread_mutex_unlock(&m->slots_mu);
        CK_C_INITIALIZE_ARGS args;
        memset(&args, 0, sizeof(args));
        args.flags = CKF_OS_LOCKING_OK;
        PHC_P11_CALL(m->fn, C_Finalize, NULL);
        CK_RV rv = PHC_P11_CALL(m->fn, C_Initialize, &args);
        if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
            char name[40];
            phc__log(log, PHC_LOG_WARN, "re-initialising PKCS#11 module '%s' failed (%s)", module,
                     phc__p11_rv_str(name, sizeof(name), rv));
        } else {
            done = 1;
        }
        ERR_clear_error();
    }
    pthread_mutex_unlock(&g_lock);
    return done;
}

void phc__p11_retry_init(phc_p11_retry *r)
{
    memset(r, 0, sizeof(*r));
    r->attempt = 1;
}

int phc__p11_retry_again(phc_p11_retry *r, phc_p11_module *m, const char *module,
                         const phc_log *log)
{
    if (r->attempt >= PHC_P11_ATTEMPTS)
        return 0;
    /* Token files this user cannot read are a permission, not a state that passes: the
     * caller's refusal (tokendir.c words it) comes at once, without warnings. */
    char why[8];
    if (module && phc__tokendir_unreadable(module, why, sizeof(why)))
        return 0;
    long pause = 10L << (r->attempt - 1); /* 10, 20, 40, 80 ms */
    long long deadline = phc__p11_deadline_get();
    if (deadline && phc__p11_mono_ms() + pause >= deadline)
        return 0; /* the operation's bound comes first */
    r->attempt++;
    if (r->answered)
        phc__log(log, PHC_LOG_WARN,
                 "token '%s' %s; SoftHSM's token file may be being rewritten by another "
                 "process: reopening (attempt %u of %d)",
                 r->token[0] ? r->token : "?", r->cause, r->attempt, PHC_P11_ATTEMPTS);
    else
        phc__log(log, PHC_LOG_WARN,
                 "token '%s' read as not initialised (%s); SoftHSM's token file may be being "
                 "rewritten by another process: reopening (attempt %u of %d)",
                 r->token[0] ? r->token : "?", r->cause, r->attempt, PHC_P11_ATTEMPTS);
    struct timespec ts = {0, pause * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    if (m && phc__p11_module_reinit(m, module, log))
        phc__log(log, PHC_LOG_DEBUG, "PKCS#11 module '%s' re-initialised", module);
    r->pin_initialised = 0;
    r->cause[0] = '\0';
    return 1;
}

void phc__p11_retry_final(const phc_p11_retry *r, phc_errbuf *err)
{
    if (!err || r->attempt < 2)
        return;
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof(err->msg) - n, " after %u attempts", r->attempt);
}
