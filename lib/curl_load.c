/* libcurl on demand. Linked at start, libcurl's dependency tree (krb5, ldap, rtmp and gnutls,
 * ssh2, nghttp2, psl, idn2, brotli, zstd...) costs every process ~3 ms before main(), and a
 * one-shot `phc request --agent` never makes an HTTPS transfer of its own. So libphconnect.so
 * has no DT_NEEDED on libcurl: this unit dlopen's libcurl.so.4 (RTLD_LOCAL: its symbols do not
 * join the process's global scope) the first time the library needs HTTP, resolves the
 * functions the library calls into a table, and initialises libcurl (curl_global_init, or
 * curl_global_init_mem with curl_wipe.c's allocators when the application asked for them).
 *
 * How the rest of the library calls libcurl: by libcurl's own names, through functions of
 * those names defined below, that forward to the table. So http.c and the other units keep
 * libcurl's compile-time type checks (curl/typecheck-gcc.h wraps curl_easy_setopt/getinfo in
 * macros that end in a call to the function of that name) with no change. These definitions
 * have hidden visibility and lib/phconnect.map exports only phc_*, so they never leave
 * libphconnect.so and cannot interpose on a libcurl the application uses itself. A program
 * linking the library's objects statically (the unit tests) and libcurl.so as well is fine
 * too: its own calls go to these forwarders (a definition in an object beats a shared
 * library's), which reach the same libcurl.so.4 - dlopen of a loaded soname returns that
 * object, and dlsym on its handle searches libcurl and its dependencies only, never the
 * executable, so a forwarder never finds itself. Prefixed names (phc__curl_easy_setopt) were
 * the alternative; they would lose the type checks or need a copy of typecheck-gcc.h.
 *
 * A function the library starts to call without a forwarder here leaves an undefined symbol:
 * the link of libphconnect.so refuses it (-z defs, CMakeLists.txt), and t_agent_nocurl.sh
 * checks that the shared library, phc and phc-agent have no libcurl NEEDED and no undefined
 * curl_ symbol.
 *
 * libcurl is never dlclose'd: it registers OpenSSL and thread-local state that must not
 * outlive its code, and phc_global_cleanup may be followed by another phc_global_init. */
#include "curl_load.h"

#include "curl_wipe.h"
#include "err.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* These are the functions behind typecheck-gcc.h's macros (libcurl's own sources do this). */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#undef curl_multi_setopt

/* Every libcurl function the library calls; each has a forwarder below (but the global
 * ones, which only this unit calls). */
#define PHC_CURL_FUNCTIONS(X)                                                                      \
    X(curl_global_init)                                                                            \
    X(curl_global_init_mem)                                                                        \
    X(curl_global_cleanup)                                                                         \
    X(curl_version_info)                                                                           \
    X(curl_easy_init)                                                                              \
    X(curl_easy_duphandle)                                                                         \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_strerror)                                                                          \
    X(curl_multi_init)                                                                             \
    X(curl_multi_cleanup)                                                                          \
    X(curl_multi_setopt)                                                                           \
    X(curl_multi_add_handle)                                                                       \
    X(curl_multi_remove_handle)                                                                    \
    X(curl_multi_perform)                                                                          \
    X(curl_multi_poll)                                                                             \
    X(curl_multi_timeout)                                                                          \
    X(curl_multi_socket_action)                                                                    \
    X(curl_multi_info_read)                                                                        \
    X(curl_multi_strerror)                                                                         \
    X(curl_share_init)                                                                             \
    X(curl_share_setopt)                                                                           \
    X(curl_share_cleanup)                                                                          \
    X(curl_slist_append)                                                                           \
    X(curl_slist_free_all)

/* Typed from libcurl's own declarations: a forwarder cannot pass the wrong arguments. */
struct curl_table {
#define PHC_CURL_FIELD(name) __typeof__(name) *name;
    PHC_CURL_FUNCTIONS(PHC_CURL_FIELD)
#undef PHC_CURL_FIELD
};

static struct curl_table fn; /* complete once loaded is set */
static int loaded;           /* atomic: 1 when fn is complete */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[PHC_ERRMSG_MAX]; /* why loading failed; written once, in load() */
static const char *soname = PHC_CURL_SONAME;

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static int inited;     /* atomic; 1 between our curl_global_init and curl_global_cleanup */
static unsigned flags; /* PHC_GLOBAL_*; set before threads (phc_global_init_opts) */

static void load(void)
{
    struct curl_table t;
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof(load_error), "cannot load libcurl (%s): %s", soname, dlerror());
        return;
    }
    /* memcpy: ISO C has no cast from dlsym's void * to a function pointer. */
#define PHC_CURL_RESOLVE(name)                                                                     \
    {                                                                                              \
        void *p = dlsym(h, #name);                                                                 \
        if (!p) {                                                                                  \
            snprintf(load_error, sizeof(load_error), "cannot load libcurl (%s): %s", soname,       \
                     dlerror());                                                                   \
            dlclose(h);                                                                            \
            return;                                                                                \
        }                                                                                          \
        memcpy(&t.name, &p, sizeof(p));                                                            \
    }
    PHC_CURL_FUNCTIONS(PHC_CURL_RESOLVE)
#undef PHC_CURL_RESOLVE
    fn = t;
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
}

int phc__curl_load(phc_errbuf *err)
{
    pthread_once(&load_once, load);
    if (__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
        return PHC_OK;
    /* Keep the loader's one line: a multi-line dlerror would break the one-line contract. */
    char line[PHC_ERRMSG_MAX];
    snprintf(line, sizeof(line), "%s", load_error);
    line[strcspn(line, "\r\n")] = '\0';
    return phc__err(err, PHC_ERR_INTERNAL, "%s", line);
}

int phc__curl_ready(phc_errbuf *err)
{
    if (__atomic_load_n(&inited, __ATOMIC_ACQUIRE))
        return PHC_OK;
    int rc = phc__curl_load(err);
    if (rc != PHC_OK)
        return rc;
    pthread_mutex_lock(&init_mu);
    if (!inited) {
        /* libcurl keeps the allocators of its first curl_global_init*: when the application
         * initialised it before us, these do nothing but count (phconnect.h says so). */
        const phc_curl_allocs *a = &phc__curl_wiping_allocs;
        CURLcode cc = (flags & PHC_GLOBAL_WIPE_CURL_FREES)
                          ? fn.curl_global_init_mem(CURL_GLOBAL_DEFAULT, a->malloc_fn, a->free_fn,
                                                    a->realloc_fn, a->strdup_fn, a->calloc_fn)
                          : fn.curl_global_init(CURL_GLOBAL_DEFAULT);
        if (cc == CURLE_OK)
            __atomic_store_n(&inited, 1, __ATOMIC_RELEASE);
        else
            rc = phc__err(err, PHC_ERR_INTERNAL, "cannot initialise libcurl: %s",
                          fn.curl_easy_strerror(cc));
    }
    pthread_mutex_unlock(&init_mu);
    return rc;
}

int phc__curl_is_loaded(void)
{
    return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE);
}

void phc__curl_set_flags(unsigned f)
{
    flags = f;
}

void phc__curl_set_soname(const char *name)
{
    soname = name;
}

void phc__curl_cleanup(void)
{
    pthread_mutex_lock(&init_mu);
    if (inited) {
        fn.curl_global_cleanup();
        __atomic_store_n(&inited, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_mu);
}

/* ---- the forwarders ------------------------------------------------------------------------
 * Entry points call phc__curl_ready first (with an error buffer); a forwarder reached without
 * it loads libcurl itself and, when that fails, returns libcurl's own failure value for the
 * call, so no path dereferences an empty table. */

#define PHC_CURL_FWD __attribute__((visibility("hidden")))

static int have(void)
{
    return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE) || phc__curl_load(NULL) == PHC_OK;
}

PHC_CURL_FWD curl_version_info_data *curl_version_info(CURLversion v)
{
    return have() ? fn.curl_version_info(v) : NULL;
}

PHC_CURL_FWD CURL *curl_easy_init(void)
{
    return have() ? fn.curl_easy_init() : NULL;
}

PHC_CURL_FWD CURL *curl_easy_duphandle(CURL *h)
{
    return have() ? fn.curl_easy_duphandle(h) : NULL;
}

PHC_CURL_FWD void curl_easy_cleanup(CURL *h)
{
    if (have())
        fn.curl_easy_cleanup(h);
}

/* libcurl reads the argument by the option's type range (CURLOPTTYPE_*): so do we. The
 * OBJECTPOINT range also holds STRINGPOINT, SLISTPOINT and CBPOINT; BLOB is a pointer to a
 * struct curl_blob. Function pointers travel as one function pointer type (all have the same
 * representation on the platforms libcurl runs on) and libcurl reads its own type. */
PHC_CURL_FWD CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    if (!have())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, opt);
    CURLcode cc;
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        cc = fn.curl_easy_setopt(h, opt, va_arg(ap, long));
    else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
        cc = fn.curl_easy_setopt(h, opt, va_arg(ap, void *));
    else if (opt < CURLOPTTYPE_OFF_T)
        cc = fn.curl_easy_setopt(h, opt, va_arg(ap, void (*)(void)));
    else if (opt < CURLOPTTYPE_BLOB)
        cc = fn.curl_easy_setopt(h, opt, va_arg(ap, curl_off_t));
    else
        cc = fn.curl_easy_setopt(h, opt, va_arg(ap, void *));
    va_end(ap);
    return cc;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
PHC_CURL_FWD CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    if (!have())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    void *out = va_arg(ap, void *);
    va_end(ap);
    return fn.curl_easy_getinfo(h, info, out);
}

PHC_CURL_FWD const char *curl_easy_strerror(CURLcode cc)
{
    return have() ? fn.curl_easy_strerror(cc) : "libcurl is not loaded";
}

PHC_CURL_FWD CURLM *curl_multi_init(void)
{
    return have() ? fn.curl_multi_init() : NULL;
}

PHC_CURL_FWD CURLMcode curl_multi_cleanup(CURLM *m)
{
    return have() ? fn.curl_multi_cleanup(m) : CURLM_BAD_HANDLE;
}

/* CURLMOPT_* use the same type ranges as CURLOPT_*. */
PHC_CURL_FWD CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...)
{
    if (!have())
        return CURLM_BAD_HANDLE;
    va_list ap;
    va_start(ap, opt);
    CURLMcode mc;
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        mc = fn.curl_multi_setopt(m, opt, va_arg(ap, long));
    else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
        mc = fn.curl_multi_setopt(m, opt, va_arg(ap, void *));
    else if (opt < CURLOPTTYPE_OFF_T)
        mc = fn.curl_multi_setopt(m, opt, va_arg(ap, void (*)(void)));
    else if (opt < CURLOPTTYPE_BLOB)
        mc = fn.curl_multi_setopt(m, opt, va_arg(ap, curl_off_t));
    else
        mc = fn.curl_multi_setopt(m, opt, va_arg(ap, void *));
    va_end(ap);
    return mc;
}

PHC_CURL_FWD CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
    return have() ? fn.curl_multi_add_handle(m, h) : CURLM_BAD_HANDLE;
}

PHC_CURL_FWD CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
    return have() ? fn.curl_multi_remove_handle(m, h) : CURLM_BAD_HANDLE;
}

PHC_CURL_FWD CURLMcode curl_multi_perform(CURLM *m, int *running)
{
    return have() ? fn.curl_multi_perform(m, running) : CURLM_BAD_HANDLE;
}

PHC_CURL_FWD CURLMcode curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned int nextra,
                                       int timeout_ms, int *ret)
{
    return have() ? fn.curl_multi_poll(m, extra, nextra, timeout_ms, ret) : CURLM_BAD_HANDLE;
}

PHC_CURL_FWD CURLMcode curl_multi_timeout(CURLM *m, long *timeout_ms)
{
    return have() ? fn.curl_multi_timeout(m, timeout_ms) : CURLM_BAD_HANDLE;
}

PHC_CURL_FWD CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t s, int ev_bitmask,
                                                int *running)
{
    return have() ? fn.curl_multi_socket_action(m, s, ev_bitmask, running) : CURLM_BAD_HANDLE;
}

PHC_CURL_FWD CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
    return have() ? fn.curl_multi_info_read(m, left) : NULL;
}

PHC_CURL_FWD const char *curl_multi_strerror(CURLMcode mc)
{
    return have() ? fn.curl_multi_strerror(mc) : "libcurl is not loaded";
}

PHC_CURL_FWD CURLSH *curl_share_init(void)
{
    return have() ? fn.curl_share_init() : NULL;
}

/* As libcurl's share.c reads them: SHARE/UNSHARE an int (a curl_lock_data), LOCKFUNC and
 * UNLOCKFUNC a function, USERDATA a pointer; any other option takes no argument (libcurl
 * answers CURLSHE_BAD_OPTION). */
PHC_CURL_FWD CURLSHcode curl_share_setopt(CURLSH *sh, CURLSHoption opt, ...)
{
    if (!have())
        return CURLSHE_INVALID;
    va_list ap;
    va_start(ap, opt);
    CURLSHcode sc;
    switch (opt) {
    case CURLSHOPT_SHARE:
    case CURLSHOPT_UNSHARE:
        sc = fn.curl_share_setopt(sh, opt, va_arg(ap, int));
        break;
    case CURLSHOPT_LOCKFUNC:
    case CURLSHOPT_UNLOCKFUNC:
        sc = fn.curl_share_setopt(sh, opt, va_arg(ap, void (*)(void)));
        break;
    case CURLSHOPT_USERDATA:
        sc = fn.curl_share_setopt(sh, opt, va_arg(ap, void *));
        break;
    default:
        sc = fn.curl_share_setopt(sh, opt);
        break;
    }
    va_end(ap);
    return sc;
}

PHC_CURL_FWD CURLSHcode curl_share_cleanup(CURLSH *sh)
{
    return have() ? fn.curl_share_cleanup(sh) : CURLSHE_INVALID;
}

PHC_CURL_FWD struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
    return have() ? fn.curl_slist_append(list, s) : NULL;
}

PHC_CURL_FWD void curl_slist_free_all(struct curl_slist *list)
{
    if (have())
        fn.curl_slist_free_all(list);
}
