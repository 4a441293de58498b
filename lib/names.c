#include "names.h"

#include <stdio.h>
#include <string.h>

void phc__key_name(char *out, size_t len, const char *label_word, const char *label,
                   const unsigned char *id, size_t id_len, int has_id)
{
    /* Room for a 35-byte id; longer ones are cut, visibly. */
    char idhex[72];
    phc__hex(idhex, sizeof(idhex), id, id_len);
    if (label && has_id)
        snprintf(out, len, "%s'%s' (id %s)", label_word, label, idhex);
    else if (label)
        snprintf(out, len, "%s'%s'", label_word, label);
    else
        snprintf(out, len, "id %s", idhex);
}
