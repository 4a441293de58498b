/* The PKCS#11 module file, as the libp11 side (hsm.c), the raw side (p11.c) and the
 * certificate reader (certobj.c) all need it: checked with a message an operator can act
 * on, opened, and its function list found. */
#ifndef PHC_MODULE_H
#define PHC_MODULE_H

#include <p11-kit/pkcs11.h>
#include <sys/stat.h>

#include <phconnect/phconnect.h>

/* The module path names an existing regular file; *st identifies it (device and inode), so
 * two paths to one library are one module. PHC_ERR_HSM naming the path otherwise. */
int phc__module_stat(const char *module, struct stat *st, phc_errbuf *err);

/* Opens the library (flags for dlopen: RTLD_NOLOAD to reach only a copy already loaded) and
 * gets its function list, without initialising it. *dl is the caller's to dlclose.
 * PHC_ERR_HSM: not loadable (the loader's reason) or not a PKCS#11 library. */
int phc__module_open(const char *module, int flags, void **dl, CK_FUNCTION_LIST_PTR *fn,
                     phc_errbuf *err);

#endif
