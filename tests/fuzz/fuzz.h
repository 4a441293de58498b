/* Shared by the fuzz targets (tests/fuzz/fuzz_*.c) and the corpus driver (driver.c).
 * A target checks the library's promises, not only its memory safety: a broken promise
 * aborts, which libFuzzer and the driver both report as a failure with the input. */
#ifndef PHC_FUZZ_H
#define PHC_FUZZ_H

#include <phconnect/phconnect.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: promise broken: %s\n", __FILE__, __LINE__, #cond);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Every failure carries a one-line message (the CLI prints it as the one line after
 * "phc: "), and the code in the buffer is the code returned. */
static inline void fuzz_check_err(int rc, const phc_errbuf *err)
{
    if (rc == PHC_OK)
        return;
    FUZZ_CHECK(rc < 0 && rc >= PHC_ERR_INTERNAL);
    FUZZ_CHECK(err->code == rc);
    FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
    FUZZ_CHECK(err->msg[0] != '\0');
    if (strpbrk(err->msg, "\r\n")) {
        fprintf(stderr, "message spans lines: %s\n", err->msg);
        FUZZ_CHECK(!"one-line message");
    }
}

/* A NUL-terminated copy of the input (the library's string APIs take C strings). */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
