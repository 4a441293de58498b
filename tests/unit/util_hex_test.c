/* Hex text for bytes and back (lib/util_hex.c). */
#include "testutil.h"
#include "util_hex.h"

static void test_hex(void)
{
    const unsigned char b[] = {0x00, 0x01, 0xab, 0xff};
    char out[16];
    phc__hex(out, sizeof(out), b, sizeof(b));
    CHECK(strcmp(out, "0001abff") == 0);
    phc__hex(out, sizeof(out), b, 0);
    CHECK(strcmp(out, "") == 0);
    /* exactly enough room */
    char nine[9];
    phc__hex(nine, sizeof(nine), b, sizeof(b));
    CHECK(strcmp(nine, "0001abff") == 0);
    /* too small: the cut shows */
    char eight[8];
    phc__hex(eight, sizeof(eight), b, sizeof(b));
    CHECK(strlen(eight) == 7 && strcmp(eight + 4, "...") == 0);
    char four[4];
    phc__hex(four, sizeof(four), b, sizeof(b));
    CHECK(strcmp(four, "00") == 0);
    char one[1] = {'x'};
    phc__hex(one, sizeof(one), b, sizeof(b));
    CHECK(one[0] == '\0');
    phc__hex(one, 0, b, sizeof(b)); /* writes nothing */
    CHECK(one[0] == '\0');
}

static void test_digit(void)
{
    CHECK(phc__hex_digit('0') == 0 && phc__hex_digit('9') == 9);
    CHECK(phc__hex_digit('a') == 10 && phc__hex_digit('F') == 15);
    CHECK(phc__hex_digit('g') == -1 && phc__hex_digit(':') == -1);
    CHECK(phc__hex_digit(' ') == -1 && phc__hex_digit(0) == -1 && phc__hex_digit(0xc3) == -1);
}

static void test_unhex(void)
{
    unsigned char out[4] = {0};
    size_t len = 0;
    CHECK(phc__unhex(out, sizeof(out), &len, "0aFf") == 0 && len == 2);
    CHECK(out[0] == 0x0a && out[1] == 0xff);
    CHECK(phc__unhex(out, sizeof(out), &len, "00112233") == 0 && len == 4);
    len = 9;
    CHECK(phc__unhex(out, sizeof(out), &len, "0011223344") == -1); /* too long */
    CHECK(phc__unhex(out, sizeof(out), &len, "") == -1);
    CHECK(phc__unhex(out, sizeof(out), &len, "abc") == -1);
    CHECK(phc__unhex(out, sizeof(out), &len, "0g") == -1);
    CHECK(phc__unhex(out, sizeof(out), &len, "0 ") == -1);
    CHECK(phc__unhex(out, sizeof(out), &len, "0x01") == -1);
    CHECK(len == 9); /* untouched on failure */
    /* round trip */
    unsigned char all[256], back[256];
    char text[513];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    phc__hex(text, sizeof(text), all, sizeof(all));
    CHECK(strlen(text) == 512);
    CHECK(phc__unhex(back, sizeof(back), &len, text) == 0 && len == 256);
    CHECK(memcmp(all, back, sizeof(all)) == 0);
}

int main(void)
{
    test_hex();
    test_digit();
    test_unhex();
    TEST_MAIN_END();
}
