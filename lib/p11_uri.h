/* The one PKCS#11 URI parser (RFC 7512, through p11-kit), used by config validation, the key
 * loader (hsm.c), the token administration and the client-secret lookup (p11.c), so a URI
 * that passes validation is read the same way everywhere.
 *
 * The case rule: the scheme is written "pkcs11:" in lower case, as RFC 7512 and every
 * PKCS#11 tool write it. p11-kit alone would also take "PKCS11:" (it compares the scheme
 * case-insensitively), but code that only tells a URI from a file name or a secret source
 * looks for "pkcs11:": a scheme in another case is therefore refused here, by every caller,
 * instead of being a URI to one unit and a file name to the next. */
#ifndef PHC_P11_URI_H
#define PHC_P11_URI_H

#include <p11-kit/uri.h>
#include <stddef.h>

#include <phconnect/phconnect.h>

/* 1: v starts with "pkcs11:"; -1: with the scheme in another case ("PKCS11:"); 0: neither. */
int phc__p11_uri_scheme(const char *v);

typedef enum phc_p11_uri_fault {
    PHC_P11_URI_OK = 0,
    PHC_P11_URI_NOT_URI,     /* no "pkcs11:" scheme at all */
    PHC_P11_URI_CASE,        /* the scheme in another case: the case rule above */
    PHC_P11_URI_MALFORMED,   /* p11-kit refused it (*detail: its reason) */
    PHC_P11_URI_PIN,         /* pin-value= or pin-source= */
    PHC_P11_URI_UNKNOWN,     /* an attribute p11-kit does not know: a typo would widen the match */
    PHC_P11_URI_NO_OBJECT,   /* neither object= nor id= (when an object is asked for) */
    PHC_P11_URI_WRONG_CLASS, /* type= names another class than the one asked for */
    PHC_P11_URI_NOMEM,
} phc_p11_uri_fault;

/* A parsed, vetted URI. kit keeps the token and slot attributes for matching. */
typedef struct phc_p11_uri {
    P11KitUri *kit;
    char *label; /* object=, NUL-terminated; NULL when absent */
    unsigned char *id;
    size_t id_len;
    int has_id;
    CK_OBJECT_CLASS cls; /* type=, when has_cls */
    int has_cls;
} phc_p11_uri;

/* Object classes for want: any object, or none named at all (a token URI). */
#define PHC_P11_ANY_OBJECT ((CK_OBJECT_CLASS)-1)
#define PHC_P11_NO_OBJECT ((CK_OBJECT_CLASS)-2)

/* Parses and vets uri. want: the class its object must be (type= may be left out), or
 * PHC_P11_ANY_OBJECT (object= or id= needed, any type=), or PHC_P11_NO_OBJECT (only the token
 * is used). On PHC_P11_URI_OK *out is filled (phc__p11_uri_clear); otherwise it is empty and
 * *detail (may be NULL) is p11-kit's reason for PHC_P11_URI_MALFORMED. The URI itself never
 * goes into a message: it could carry a PIN. */
phc_p11_uri_fault phc__p11_uri_parse(phc_p11_uri *out, const char *uri, CK_OBJECT_CLASS want,
                                     const char **detail);

void phc__p11_uri_clear(phc_p11_uri *u);

/* A token as both stacks see it (libp11's trimmed strings in hsm.c, CK_TOKEN_INFO and
 * CK_SLOT_INFO in p11.c): trimmed strings, NULL read as "". */
typedef struct phc_p11_token_id {
    const char *label, *serial, *manufacturer, *model;
    const char *slot_description, *slot_manufacturer;
    CK_SLOT_ID slot_id;
} phc_p11_token_id;

/* The one token matching rule: 1 when t satisfies every token and slot attribute the URI
 * names (token=, serial=, manufacturer=, model=, slot-description=, slot-manufacturer=,
 * slot-id=); a URI naming none matches every token. */
int phc__p11_uri_token_matches(P11KitUri *u, const phc_p11_token_id *t);

/* "label 'x', serial 'y', slot-id 3": the token attributes the URI names, for messages; ""
 * when none. */
void phc__p11_uri_token_wanted(P11KitUri *u, char *out, size_t len);

/* The URI's token= label, trimmed, or "" when it names none. */
void phc__p11_uri_token_label(P11KitUri *u, char *out, size_t len);

/* The verdict of a token search, worded once for both stacks: 0 when exactly one of the
 * ntokens initialised tokens matched, else PHC_ERR_HSM saying what was looked for (want, from
 * phc__p11_uri_token_wanted), what is there (present: "'a', 'b'") and what to add to the URI
 * (uri_name: "key URI", "URI"). */
int phc__p11_token_verdict(phc_errbuf *err, const char *module, const char *uri_name,
                           unsigned int ntokens, unsigned int nmatch, const char *want,
                           const char *present);

/* A blank-padded PKCS#11 string field as a trimmed C string. */
void phc__p11_trim(char *out, size_t outlen, const unsigned char *field, size_t n);

/* The type= word of a class: "private", "public", "cert", "data", "secret-key", "other". */
const char *phc__p11_uri_class_word(CK_OBJECT_CLASS cls);

#endif
