/* The one PKCS#11 module layer of the process. Every user of a PKCS#11 library - libp11 for
 * the TLS key (hsm.c), the raw calls for token administration and data objects (p11.c), the
 * certificate reader (certobj.c) - takes a reference on the library's entry here, and only
 * this unit loads, initialises and finalises it:
 *
 *  - one entry per library file (device and inode: two paths to one file are one module);
 *  - one load and one C_Initialize (CKF_OS_LOCKING_OK) per entry, done through libp11's
 *    PKCS11_CTX_load, and one function list: the raw calls use the very list libp11
 *    initialised. A remoting client such as p11-kit-client.so makes a new, uninitialised
 *    module instance for every C_GetFunctionList call, so a second call would not do;
 *  - libp11's slot list, its login and C_Finalize (PKCS11_CTX_unload) happen only when the
 *    last reference goes: libp11 ends every session of a slot when it releases it and
 *    finalises the module when it unloads it, which would otherwise kill the raw sessions
 *    (and a libp11 handle would die under a raw user's C_Finalize).
 *
 * libp11 0.4.12 facts this relies on (src/p11_load.c, src/libpkcs11.c, src/p11_slot.c):
 * C_LoadModule dlopens with RTLD_LAZY|RTLD_LOCAL and calls C_GetFunctionList once
 * (libpkcs11.c:67,96); PKCS11_CTX_load calls C_Initialize with CKF_OS_LOCKING_OK and accepts
 * CKR_CRYPTOKI_ALREADY_INITIALIZED (p11_load.c:83-87); PKCS11_CTX_unload calls C_Finalize
 * whenever the process has not forked (p11_load.c:146-147); releasing a slot calls
 * C_CloseAllSessions (p11_slot.c:433). libp11 has no accessor for its function list: it is
 * read from the context's private part (first member), after checking libp11's module
 * handle magic and that the list belongs to the library this unit opened; a libp11 build
 * laid out otherwise falls back to a list of our own (see p11_module.c). */
#ifndef PHC_P11_MODULE_H
#define PHC_P11_MODULE_H

#include "log.h"

#include <libp11.h>
#include <p11-kit/pkcs11.h>
#include <sys/stat.h>

#include <phconnect/phconnect.h>

typedef struct phc_p11_module phc_p11_module;

/* The module path names an existing regular file; *st identifies it. PHC_ERR_HSM naming the
 * path otherwise. */
int phc__p11_module_stat(const char *module, struct stat *st, phc_errbuf *err);

/* One reference on the loaded, initialised module at path, loading it on first use. log:
 * borrowed for the call. Errors: PHC_ERR_HSM naming the path (missing, not loadable with the
 * loader's reason, not a PKCS#11 library, initialisation refused with the CK_RV name). */
PHC_WUR int phc__p11_module_get(phc_p11_module **out, const char *module, const phc_log *log,
                                phc_errbuf *err);

/* Drops a reference; the last one logs libp11 out, releases its slots, finalises and unloads
 * the module. NULL allowed. */
void phc__p11_module_put(phc_p11_module *m);

/* The initialised function list, shared by every user. Borrowed: valid while the reference
 * is held. */
CK_FUNCTION_LIST *phc__p11_module_fn(const phc_p11_module *m);

/* libp11's view of the module: its context and slot list (listed on first call, then kept
 * until the last reference goes) and, per slot, whether this process logged in through
 * libp11. The caller serialises libp11 calls on them (hsm.c's lock). Borrowed. */
typedef struct phc_p11_slots {
    PKCS11_CTX *ctx;
    PKCS11_SLOT *slots;
    unsigned int n;
    unsigned char *logged_in;
} phc_p11_slots;

PHC_WUR int phc__p11_module_slots(phc_p11_module *m, phc_p11_slots **out, const char *module,
                                  phc_errbuf *err);

/* How many entries are loaded and how many references the entry for path holds (0 when
 * none): for tests of the reference count. */
int phc__p11_module_refs(const char *module, unsigned int *loaded);

/* ---------------------------------------------------------------------------------- */
/* Transient token states (SoftHSM under several processes)
 *
 * SoftHSM 2.6 rewrites its token.object on every C_Login and the bytes reach the file only
 * after it released its file lock (upstream SoftHSMv2 issue #757): another process reading
 * the token at that moment sees an empty file, reports the token uninitialised or answers
 * CKR_GENERAL_ERROR, and may keep the token marked invalid until C_Finalize. Both stacks'
 * open paths (p11.c, hsm.c) therefore retry such answers here, bounded and logged: up to
 * PHC_P11_ATTEMPTS attempts, sleeping 10/20/40/80 ms (150 ms in all, and never past the
 * operation's deadline), re-initialising the module in between when this process holds its
 * only reference. A wrong or locked PIN is never retried (the caller does not ask). */
#define PHC_P11_ATTEMPTS 5

typedef struct phc_p11_retry {
    unsigned int attempt; /* the attempt being made, from 1 */
    int pin_initialised;  /* CKF_USER_PIN_INITIALIZED seen in this open */
    char token[40];       /* the token's label, for the messages */
    char cause[160];      /* "CKR_GENERAL_ERROR at C_GetTokenInfo" */
    int answered;         /* cause is "answered CKR_X while <step>": an operation's */
} phc_p11_retry;

/* Starts an open's attempts (attempt 1). */
void phc__p11_retry_init(phc_p11_retry *r);

/* The last attempt failed in a transient way (r->token and r->cause filled): warns naming
 * the token, the cause and the next attempt, sleeps, re-initialises the module when refs
 * allow (the caller holds no session of it), and returns 1 to try again; 0 when the attempts
 * or the deadline are used up (the caller reports, with phc__p11_retry_final). */
int phc__p11_retry_again(phc_p11_retry *r, phc_p11_module *m, const char *module,
                         const phc_log *log);

/* Appends " after N attempts" to err's message when more than one attempt was made. */
void phc__p11_retry_final(const phc_p11_retry *r, phc_errbuf *err);

/* The deadline (CLOCK_MONOTONIC, ms) of the bounded operation this thread runs, 0 for none:
 * set by the time-bounded runners (gen_open.c, the admin bound) for the worker's thread. */
void phc__p11_deadline_set(long long mono_ms);
long long phc__p11_deadline_get(void);
long long phc__p11_mono_ms(void);

/* The store lock (SoftHSM under several processes, the second race)
 *
 * SoftHSM 2.6 creates an object in some thirty rewrites of its file (the empty object, one
 * per default attribute, then the template: SoftHSM.cpp CreateObject, P11Objects.cpp
 * init/saveTemplate), and its C_GetAttributeValue gives the object it holds every attribute
 * it lacks, with its default, writing the object out (P11Object::init via newP11Object). A
 * process that read an object while another was creating it thus writes defaults over the
 * finished object, with a newer generation number: the certificate or key just made is gone
 * for every process (no CKA_ID, no value), found by strace in the stress test
 * (tests/integration/t_softhsm_stress.sh). No retry brings it back.
 *
 * So when the library is SoftHSM (its C_GetInfo manufacturerID; a remoting client's store is
 * on another host) and its token directory is known (tokendir.h), every call of this process
 * goes through a copy of the function list - libp11's calls too: its context is pointed at
 * the copy - in which C_GetAttributeValue holds a shared flock(2) on the token directory
 * and the calls that create, modify or delete objects (C_CreateObject, C_CopyObject,
 * C_SetAttributeValue, C_DestroyObject, C_GenerateKey(Pair), C_UnwrapKey, C_DeriveKey) hold
 * it exclusively. A reader then never catches an object half-made by another phconnect
 * process, and rereads it whole (its generation changed) once the writer is done. The token
 * file of the first race (#757, above) is kept the same way: C_Login, C_InitPIN, C_SetPIN
 * and C_InitToken, which rewrite it, hold the lock exclusively, C_GetTokenInfo and
 * C_Initialize, which read it, shared - the first load too when the library's file name is
 * SoftHSM's (libsofthsm2*): its C_GetInfo can be asked only once it is loaded. The retry
 * stays for the writers that take no lock. Other programs using the same store
 * (softhsm2-util, pkcs11-tool) do not take it. A wait
 * lasts at most until the thread's deadline (phc__p11_deadline_set), else
 * PHC_P11_STORE_WAIT_MS; then the call goes ahead without the lock, counted for
 * phc__p11_store_report. Never for another module. */
#define PHC_P11_STORE_WAIT_MS 5000

/* Warns once on log when this thread went ahead without the store lock since the last
 * report (another process held it past the bound), naming the wait. */
void phc__p11_store_report(const phc_log *log);

/* Re-initialises the module (C_Finalize, C_Initialize; libp11's slot list is dropped and
 * listed again on next use) when ref is its only reference. 1 done, 0 not (shared). */
int phc__p11_module_reinit(phc_p11_module *m, const char *module, const phc_log *log);

#endif
