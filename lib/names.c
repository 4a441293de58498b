#include "names.h"

#include <stdio.h>
#include <string.h>

void phc__hex(char *out, size_t outlen, const unsigned char *p, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o + 3 <= outlen; i++, o += 2)
        snprintf(out + o, outlen - o, "%02x", p[i]);
    if (n && o < 2 * n && outlen > 4)
        memcpy(out + outlen - 4, "...", 4);
}

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
