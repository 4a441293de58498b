/* lib/filemodes.c (phc_config_check_files): files and directories writable by others, secret
 * files readable by others, each reported naming the file and its mode - as warnings to the
 * log (strict_modes = warn), as the first error (error), or not at all (off); a missing file
 * and a sticky directory are not findings. */
#include "config.h"
#include "testutil.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64];
static int g_warnings;
static char g_last[1024];

static void logger(void *ud, phc_log_level level, const char *msg)
{
    (void)ud;
    if (level == PHC_LOG_WARN)
        g_warnings++;
    snprintf(g_last, sizeof(g_last), "%s", msg);
}

static void make(const char *name, mode_t mode, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("x\n", f);
        fclose(f);
    }
    CHECK(chmod(path, mode) == 0);
}

static phc_config *config(const char *ca, const char *pin_path, const char *modes)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    char pin[PATH_MAX + 8];
    snprintf(pin, sizeof(pin), "file:%s", pin_path);
    int ok = phc_config_new(&c, &e) == 0 && phc_config_set(c, "ca_file", ca, &e) == 0 &&
             phc_config_set(c, "pin", pin, &e) == 0 &&
             phc_config_set(c, "strict_modes", modes, &e) == 0;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "config: %s\n", e.msg);
    return c;
}

static int check(phc_config *c, phc_errbuf *e)
{
    g_warnings = 0;
    g_last[0] = '\0';
    memset(e, 0, sizeof(*e));
    return phc_config_check_files(c, NULL, logger, NULL, e);
}

int main(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/phc_filemodes_test.XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    char ca[PATH_MAX], pin[PATH_MAX], want[3 * PATH_MAX + 256];
    phc_errbuf e;
    make("ca.pem", 0644, ca, sizeof(ca));
    make("pin", 0600, pin, sizeof(pin));

    /* all in order: no finding */
    phc_config *c = config(ca, pin, "warn");
    CHECK(check(c, &e) == PHC_OK && g_warnings == 0);
    phc_config_free(c);

    /* a PIN file others can read: a warning naming it and its mode */
    CHECK(chmod(pin, 0644) == 0);
    c = config(ca, pin, "warn");
    CHECK(check(c, &e) == PHC_OK && g_warnings == 1);
    snprintf(want, sizeof(want), "PIN file (pin) %s is readable by others (mode 0644)", pin);
    CHECK(strstr(g_last, want) != NULL);
    CHECK(strstr(g_last, "strict_modes = error refuses this") != NULL);
    phc_config_free(c);

    /* the same with strict_modes = error: the first finding is the error */
    c = config(ca, pin, "error");
    CHECK_ERR(check(c, &e), e, PHC_ERR_CONFIG, want);
    CHECK_ERR(check(c, &e), e, PHC_ERR_CONFIG, "(strict_modes = error)");
    CHECK(g_warnings == 0);
    phc_config_free(c);

    /* off: not looked at */
    c = config(ca, pin, "off");
    CHECK(check(c, &e) == PHC_OK && g_warnings == 0);
    phc_config_free(c);
    CHECK(chmod(pin, 0600) == 0);

    /* a CA file anyone can write */
    CHECK(chmod(ca, 0666) == 0);
    c = config(ca, pin, "warn");
    CHECK(check(c, &e) == PHC_OK && g_warnings == 1);
    snprintf(want, sizeof(want), "CA file (ca_file) %s is writable by others (mode 0666)", ca);
    CHECK(strstr(g_last, want) != NULL);
    phc_config_free(c);
    CHECK(chmod(ca, 0644) == 0);

    /* a directory above the CA file its group can write (the sticky /tmp above it is fine) */
    CHECK(chmod(g_dir, 0770) == 0);
    c = config(ca, pin, "warn");
    CHECK(check(c, &e) == PHC_OK && g_warnings == 2); /* above ca.pem and above pin */
    CHECK(strstr(g_last, "is writable by its group (mode 0770)") != NULL);
    phc_config_free(c);
    CHECK(chmod(g_dir, 0700) == 0);

    /* a PIN file reached through a link another user owns: the secret reader refuses to
     * follow it, and the check names the link, its target and the owner (same rule) */
    if (geteuid() == 0) {
        char link[PATH_MAX + 16];
        snprintf(link, sizeof(link), "%s/pin-link", g_dir);
        CHECK(symlink(pin, link) == 0 && lchown(link, 65534, 65534) == 0);
        c = config(ca, link, "error");
        snprintf(want, sizeof(want),
                 "PIN file (pin) %s is a symbolic link to %s through an unsafe element: %s "
                 "belongs to uid 65534, neither root nor this user (uid 0)",
                 link, pin, link);
        CHECK_ERR(check(c, &e), e, PHC_ERR_CONFIG, want);
        phc_config_free(c);
        CHECK(lchown(link, 0, 0) == 0);
        c = config(ca, link, "error"); /* a safe link: no finding */
        CHECK(check(c, &e) == PHC_OK && g_warnings == 0);
        phc_config_free(c);
        unlink(link);
    }

    /* a missing file is left to whoever opens it */
    char gone[PATH_MAX + 16];
    snprintf(gone, sizeof(gone), "%s/missing.pem", g_dir);
    c = config(gone, pin, "error");
    CHECK(check(c, &e) == PHC_OK);
    phc_config_free(c);

    CHECK_ERR(phc_config_check_files(NULL, NULL, NULL, NULL, &e), e, PHC_ERR_INTERNAL,
              "cfg is NULL");
    unlink(ca);
    unlink(pin);
    rmdir(g_dir);
    TEST_MAIN_END();
}
