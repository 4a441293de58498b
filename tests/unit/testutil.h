/* Minimal test helpers: CHECK records a failure and goes on, so one run shows every broken
 * expectation; TEST_MAIN_END prints the plain "N passed, N failed" line and sets the exit
 * status. */
#ifndef PHC_TESTUTIL_H
#define PHC_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* Asserts that a phc call failed with the expected code and that its message contains
 * the expected text. */
#define CHECK_ERR(rc, e, want_code, want_text)                                                     \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        if (rc_ == (want_code) && (e).code == (want_code) && strstr((e).msg, (want_text))) {       \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            fprintf(stderr, "%s:%d: expected %d '%s', got rc=%d code=%d msg='%s'\n", __FILE__,     \
                    __LINE__, (int)(want_code), (want_text), rc_, (e).code, (e).msg);              \
        }                                                                                          \
    } while (0)

#define TEST_MAIN_END()                                                                            \
    do {                                                                                           \
        printf("%d passed, %d failed\n", t_pass, t_fail);                                          \
        return t_fail ? 1 : 0;                                                                     \
    } while (0)

#endif
