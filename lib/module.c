#include "module.h"

#include "err.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

int phc__module_stat(const char *module, struct stat *st, phc_errbuf *err)
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

int phc__module_open(const char *module, int flags, void **dl, CK_FUNCTION_LIST_PTR *fn,
                     phc_errbuf *err)
{
    *fn = NULL;
    *dl = dlopen(module, flags | RTLD_LOCAL);
    if (!*dl) {
        const char *why = dlerror();
        return phc__err(err, PHC_ERR_HSM, "cannot load PKCS#11 module '%s': %s", module,
                        why ? why : "dlopen failed");
    }
    CK_C_GetFunctionList get = NULL;
    void *sym = dlsym(*dl, "C_GetFunctionList");
    memcpy(&get, &sym, sizeof(get)); /* POSIX: a data pointer holds a function pointer */
    if (!get || get(fn) != CKR_OK || !*fn) {
        dlclose(*dl);
        *dl = NULL;
        *fn = NULL;
        return phc__err(err, PHC_ERR_HSM,
                        "cannot load PKCS#11 module '%s': not a PKCS#11 library (no "
                        "C_GetFunctionList)",
                        module);
    }
    return PHC_OK;
}
