#include "util_hex.h"

#include <string.h>

void phc__hex(char *out, size_t outlen, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    if (outlen == 0)
        return;
    for (size_t i = 0; i < n && o + 3 <= outlen; i++) {
        out[o++] = digits[p[i] >> 4];
        out[o++] = digits[p[i] & 0x0f];
    }
    out[o] = '\0';
    if (n && o < 2 * n && outlen > 4)
        memcpy(out + outlen - 4, "...", 4);
}

int phc__hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int phc__unhex(unsigned char *out, size_t max, size_t *len, const char *hex)
{
    size_t n = strlen(hex);
    if (n == 0 || n % 2 || n / 2 > max)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = phc__hex_digit((unsigned char)hex[i]);
        int lo = phc__hex_digit((unsigned char)hex[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (unsigned char)(hi * 16 + lo);
    }
    *len = n / 2;
    return 0;
}
