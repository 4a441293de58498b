#include "p11_rv.h"

#include <libp11.h>
#include <openssl/err.h>
#include <stdio.h>

const char *phc__p11_rv_name(CK_RV rv)
{
    switch (rv) {
#define N(x)                                                                                       \
    case x:                                                                                        \
        return #x;
        N(CKR_OK)
        N(CKR_HOST_MEMORY)
        N(CKR_SLOT_ID_INVALID)
        N(CKR_GENERAL_ERROR)
        N(CKR_FUNCTION_FAILED)
        N(CKR_ARGUMENTS_BAD)
        N(CKR_ATTRIBUTE_READ_ONLY)
        N(CKR_ATTRIBUTE_SENSITIVE)
        N(CKR_ATTRIBUTE_TYPE_INVALID)
        N(CKR_ATTRIBUTE_VALUE_INVALID)
        N(CKR_ACTION_PROHIBITED)
        N(CKR_DATA_INVALID)
        N(CKR_DATA_LEN_RANGE)
        N(CKR_DEVICE_ERROR)
        N(CKR_DEVICE_MEMORY)
        N(CKR_DEVICE_REMOVED)
        N(CKR_FUNCTION_NOT_SUPPORTED)
        N(CKR_KEY_HANDLE_INVALID)
        N(CKR_KEY_SIZE_RANGE)
        N(CKR_KEY_TYPE_INCONSISTENT)
        N(CKR_KEY_FUNCTION_NOT_PERMITTED)
        N(CKR_MECHANISM_INVALID)
        N(CKR_MECHANISM_PARAM_INVALID)
        N(CKR_OBJECT_HANDLE_INVALID)
        N(CKR_OPERATION_ACTIVE)
        N(CKR_OPERATION_NOT_INITIALIZED)
        N(CKR_PIN_INCORRECT)
        N(CKR_PIN_INVALID)
        N(CKR_PIN_LEN_RANGE)
        N(CKR_PIN_EXPIRED)
        N(CKR_PIN_LOCKED)
        N(CKR_SESSION_CLOSED)
        N(CKR_SESSION_COUNT)
        N(CKR_SESSION_HANDLE_INVALID)
        N(CKR_SESSION_READ_ONLY)
        N(CKR_TEMPLATE_INCOMPLETE)
        N(CKR_TEMPLATE_INCONSISTENT)
        N(CKR_TOKEN_NOT_PRESENT)
        N(CKR_TOKEN_NOT_RECOGNIZED)
        N(CKR_TOKEN_WRITE_PROTECTED)
        N(CKR_USER_ALREADY_LOGGED_IN)
        N(CKR_USER_NOT_LOGGED_IN)
        N(CKR_USER_PIN_NOT_INITIALIZED)
        N(CKR_USER_TYPE_INVALID)
        N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
        N(CKR_BUFFER_TOO_SMALL)
        N(CKR_CRYPTOKI_NOT_INITIALIZED)
        N(CKR_CRYPTOKI_ALREADY_INITIALIZED)
#undef N
    default:
        return NULL;
    }
}

const char *phc__p11_rv_str(char *buf, size_t len, CK_RV rv)
{
    const char *n = phc__p11_rv_name(rv);
    if (n)
        snprintf(buf, len, "%s", n);
    else
        snprintf(buf, len, "CK_RV 0x%lx", (unsigned long)rv);
    return buf;
}

/* libp11 pushes a failing call's CK_RV as the reason of an error whose library is
 * ERR_get_CKR_code(), and clears the whole queue after each successful call. */
unsigned long phc__p11_rv_last(char *buf, size_t len)
{
    unsigned long e, rv = 0;
    int lib = ERR_get_CKR_code();
    while ((e = ERR_get_error()) != 0)
        if (ERR_GET_LIB(e) == lib)
            rv = ERR_GET_REASON(e);
    if (!rv)
        snprintf(buf, len, "no PKCS#11 error code");
    else
        phc__p11_rv_str(buf, len, rv);
    return rv;
}
