/* Inside the raw PKCS#11 unit, shared by its three files (p11.c: core, p11_keys.c,
 * p11_data.c): the handle and the helpers that word the token's answers. */
#ifndef PHC_P11_INT_H
#define PHC_P11_INT_H

#include "err.h"
#include "p11.h"
#include "p11_attr.h"
#include "p11_module.h"
#include "p11_uri.h"
#include "p11_watch.h"

struct phc_p11 {
    phc_p11_module *mod; /* one reference on the process's module (p11_module.h) */
    CK_FUNCTION_LIST *fn;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    int has_session;
    char label[33];
    char serial[17];
    const phc_log *log;
};

/* "<what> on token 'T' failed (CKR_X)" as PHC_ERR_HSM, or the PIN / token-gone wording for
 * the CK_RVs an operator acts on differently. token may be "" (before one is chosen). */
int phc__p11_fail(phc_errbuf *err, const char *token, CK_RV rv, const char *fmt, ...)
    PHC_PRINTF(4, 5);

/* Parses uri with the one parser (p11_uri.c) and words its refusals. want: CKO_DATA for a
 * data object URI, PHC_P11_NO_OBJECT when only its token is used. */
int phc__p11_uri_get(phc_p11_uri *out, const char *uri, CK_OBJECT_CLASS want, phc_errbuf *err);

/* One attribute (p11_attr.c); secure: the value is a secret (secure heap, wiped on every
 * path). 0, 1 when the token does not reveal it, or an error. */
int phc__p11_attr_get(phc_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, int secure,
                      unsigned char **val, size_t *len, phc_errbuf *err);

#endif
