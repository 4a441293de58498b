/* Certificate objects read straight from the token, every time. libp11 0.4.12 caches a
 * token's certificate objects by handle and never re-reads one: a certificate it first saw
 * while another process was still writing it (SoftHSM's file store shows such half-written
 * objects) would stay unreadable to a running client for good, and a hot rotation would
 * never happen. Reading afresh costs one object search per reload. */
#ifndef PHC_CERTOBJ_H
#define PHC_CERTOBJ_H

#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <stddef.h>

#include <phconnect/phconnect.h>

typedef struct phc_certobj {
    unsigned char *id;
    size_t id_len;
    char *label; /* NUL-terminated, "" when absent */
    X509 *x509;  /* NULL when the value does not parse (yet) */
    long seq;    /* place in the install-order record (install_order.h), -1: not recorded */
} phc_certobj;

/* Lists the certificate objects on the token in slot_id through f, the module's initialised
 * function list (p11_module.h: the one libp11 uses too), with each one's place in the
 * token's install-order record, read in the same session (private: read only when this
 * process is logged in; otherwise every seq is -1). *out is owned by the caller:
 * phc__certobj_free. Errors: PHC_ERR_HSM naming the token label given. A record that cannot
 * be read leaves every seq -1 (ties then go by the fixed order, rotation.h). */
int phc__certobj_list(phc_certobj **out, size_t *n, CK_FUNCTION_LIST *f, unsigned long slot_id,
                      const char *token, phc_errbuf *err);

void phc__certobj_free(phc_certobj *objs, size_t n);

#endif
