/* Runs a libFuzzer target without libFuzzer: every file named on the command line, and every
 * regular file in every directory named there, is fed once to LLVMFuzzerTestOneInput, in
 * name order so that a failure reproduces the same way each time. This is how the committed
 * corpora run as ordinary ctests with any compiler; a crash or sanitizer report fails the
 * test, and so does an empty corpus (a test that runs nothing proves nothing).
 * Usage: fuzz_<target> PATH... */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Targets that need one-time setup define it; the others link without. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz driver: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            unsigned char *p = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!p) {
                fprintf(stderr, "fuzz driver: out of memory reading %s\n", path);
                rc = -1;
                goto out;
            }
            buf = p;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    if (ferror(f)) {
        fprintf(stderr, "fuzz driver: cannot read %s\n", path);
        rc = -1;
        goto out;
    }
    /* An exact-size copy, so that ASan catches a read one byte past the input as libFuzzer
     * would. */
    unsigned char *exact = malloc(len ? len : 1);
    if (!exact) {
        rc = -1;
        goto out;
    }
    memcpy(exact, buf, len);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
out:
    free(buf);
    fclose(f);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the number of inputs run, or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz driver: cannot open directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    long done = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **p = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));
            if (!p) {
                done = -1;
                goto out;
            }
            names = p;
        }
        size_t plen = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(plen))) {
            done = -1;
            goto out;
        }
        snprintf(names[n++], plen, "%s/%s", dir, e->d_name);
    }
    if (n)
        qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i < n && done >= 0; i++) {
        struct stat sb;
        if (stat(names[i], &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        done = run_file(names[i]) == 0 ? done + 1 : -1;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return done;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize && LLVMFuzzerInitialize(&argc, &argv) != 0)
        return 1;
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        long n;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "fuzz driver: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        n = S_ISDIR(sb.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "fuzz driver: no inputs found\n");
        return 1;
    }
    printf("%s: %ld inputs ran\n", argv[0], total);
    return 0;
}
