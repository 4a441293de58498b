/* Hex text for bytes and back: the one encoder and decoder every unit uses (ids, fingerprints,
 * key hashes in messages). */
#ifndef PHC_UTIL_HEX_H
#define PHC_UTIL_HEX_H

#include <phconnect/phconnect.h>

#include <stddef.h>

/* Lower-case hex of the n bytes at p into out (always NUL-terminated when outlen > 0). When
 * out is too small the text ends in "..." so a cut id never passes for a whole one. */
void phc__hex(char *out, size_t outlen, const unsigned char *p, size_t n);

/* The value of one hex digit (either case), or -1. */
int phc__hex_digit(int ch);

/* Decodes hex (an even number of digits, either case, nothing else) into out, at most max
 * bytes; *len receives the count. Returns 0, or -1 for empty, odd, too long or non-hex text
 * (out may then hold part of it). */
PHC_WUR int phc__unhex(unsigned char *out, size_t max, size_t *len, const char *hex);

#endif
