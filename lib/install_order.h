/* The install-order record: which of the client's certificates was installed later, so that
 * two certificates with the very same notBefore and notAfter are told apart by the later
 * installation (rotation.h). `phc install` appends the SHA-256 of each certificate it stores;
 * the connector (certobj.c, hsm.c) and the token inventory (token.c) read the same record, so
 * `phc status`, install's message and the connector agree.
 *
 * On the token it is one CKO_DATA object, label PHC_ORDER_LABEL, application "phconnect",
 * CKA_PRIVATE: a public object can be written without the PIN (t_planted.sh), so a public
 * record is never read. Its value is text:
 *     phconnect install order 1 gen G\n
 *     <sha256 hex of the oldest recorded certificate>\n
 *     ...
 *     <sha256 hex of the newest>\n
 * at most PHC_ORDER_MAX entries (the oldest fall out first: a certificate not recorded ranks
 * below every recorded one, which keeps those old ones in their true order against the rest).
 * A certificate appears once; installing it again moves it to the end.
 *
 * Replacement is create-new-then-destroy-old with a generation counter: a reader that finds
 * several records (a writer stopped between the two steps, or two writers at once) takes the
 * highest generation; equal generations, the longer value, then the greater bytes - the same
 * answer for every reader. An unparseable record is ignored by readers and destroyed by the
 * next writer. */
#ifndef PHC_INSTALL_ORDER_H
#define PHC_INSTALL_ORDER_H

#include <phconnect/phconnect.h>

#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <stddef.h>

#define PHC_ORDER_LABEL "phconnect install order"
#define PHC_ORDER_APP "phconnect"
#define PHC_ORDER_MAX 48

typedef struct phc_order {
    phc_install_order state; /* PHC_ORDER_RECORDED, _NONE, _UNREADABLE (token.h) */
    unsigned long gen;
    size_t n;
    unsigned char fp[PHC_ORDER_MAX][32]; /* oldest first */
} phc_order;

/* Parses a record's value into o (state PHC_ORDER_RECORDED). -1 when it is not a record. */
int phc__order_parse(phc_order *o, const unsigned char *v, size_t len);

/* The value of o (generation o->gen) into out; returns its length, or 0 when cap is short. */
size_t phc__order_format(const phc_order *o, char *out, size_t cap);

/* The place of fp in o (0: the oldest recorded), or -1 when o does not record it. */
long phc__order_seq(const phc_order *o, const unsigned char fp[32]);

/* The place of certificate x in o (as phc__order_seq), -1 when unrecorded or unhashable. */
long phc__order_seq_of(const phc_order *o, X509 *x);

/* Records fp as the newest: an earlier entry of it is dropped, then the oldest entries while
 * more than PHC_ORDER_MAX. */
void phc__order_append(phc_order *o, const unsigned char fp[32]);

/* Reads the record through function list f on session s into o. Not logged in (the record is
 * private and invisible): state PHC_ORDER_UNREADABLE. No (readable, private) record:
 * PHC_ORDER_NONE. Returns 0, or -1 with the failing call's CK_RV in *rv and its name in
 * *step (static). */
int phc__order_read(phc_order *o, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_RV *rv,
                    const char **step);

/* Records fp as the newest installation: reads the record (as phc__order_read), appends fp
 * (phc__order_append), stores the result as a new record one generation above the highest
 * on the token, then destroys the older records. Needs a logged-in read-write session.
 * Returns 0, or -1 with *rv and *step as phc__order_read. A failure after the new record
 * exists leaves an older copy behind, which readers pass over by its generation. */
int phc__order_add(const unsigned char fp[32], CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_RV *rv,
                   const char **step);

#endif
