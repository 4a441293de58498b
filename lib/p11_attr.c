#include "p11_attr.h"
#include "p11_watch.h"

#include <openssl/crypto.h>

void phc__p11_attr_free(unsigned char *val, size_t len, int secure)
{
    if (!val)
        return;
    if (secure)
        OPENSSL_secure_clear_free(val, len + 1);
    else
        OPENSSL_free(val);
}

int phc__p11_attr_read(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                       CK_ATTRIBUTE_TYPE type, int secure, unsigned char **val, size_t *len,
                       CK_RV *rv)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    *val = NULL;
    *len = 0;
    *rv = PHC_P11_CALL(f, C_GetAttributeValue, s, o, &a, 1);
    if (*rv == CKR_ATTRIBUTE_SENSITIVE || *rv == CKR_ATTRIBUTE_TYPE_INVALID ||
        (*rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION))
        return 1;
    if (*rv != CKR_OK)
        return -1;
    size_t n = a.ulValueLen;
    unsigned char *buf = secure ? OPENSSL_secure_zalloc(n + 1) : OPENSSL_zalloc(n + 1);
    if (!buf) {
        *rv = CKR_HOST_MEMORY;
        return -1;
    }
    a.pValue = buf;
    *rv = PHC_P11_CALL(f, C_GetAttributeValue, s, o, &a, 1);
    /* The value may have changed between the calls (another process writing the object): a
     * longer one no longer fits and is a failure, never a read past the buffer. */
    if (*rv != CKR_OK || a.ulValueLen > n) {
        if (*rv == CKR_OK)
            *rv = CKR_BUFFER_TOO_SMALL;
        phc__p11_attr_free(buf, n, secure);
        return -1;
    }
    *val = buf;
    *len = a.ulValueLen;
    return 0;
}
