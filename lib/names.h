/* How PKCS#11 objects are named in operator messages, one wording for hsm.c and p11.c so a
 * key reads the same whichever unit reports on it. */
#ifndef PHC_NAMES_H
#define PHC_NAMES_H

#include "util_hex.h"

#include <stddef.h>

/* "<label_word>'client' (id 01)", "<label_word>'client'" (has_id 0) or "id 01" (no label).
 * label_word goes before a label: "label " where the kind of name needs saying, else "". */
void phc__key_name(char *out, size_t len, const char *label_word, const char *label,
                   const unsigned char *id, size_t id_len, int has_id);

#endif
