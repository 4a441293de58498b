/* The one attribute reader: C_GetAttributeValue's two calls (length, then value) for one
 * attribute of one object, for the raw calls (p11.c) and the certificate reader
 * (certobj.c). */
#ifndef PHC_P11_ATTR_H
#define PHC_P11_ATTR_H

#include <p11-kit/pkcs11.h>
#include <stddef.h>

/* One attribute's value in a fresh buffer (NUL-terminated for convenience, the NUL not
 * counted in *len), from the secure heap when secure (a secret). Returns 0; 1 when the token
 * does not reveal it (CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID, or an unavailable
 * length: *val NULL); -1 on any other failure, with the CK_RV in *rv (CKR_HOST_MEMORY when
 * the buffer could not be had). */
int phc__p11_attr_read(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                       CK_ATTRIBUTE_TYPE type, int secure, unsigned char **val, size_t *len,
                       CK_RV *rv);

/* Frees what phc__p11_attr_read returned with the same secure and len (wiped when secure).
 * NULL allowed. */
void phc__p11_attr_free(unsigned char *val, size_t len, int secure);

#endif
