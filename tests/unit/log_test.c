/* lib/log.c: the callback is the only output, called only up to its level, with the text
 * formatted and cut to one bounded line; no callback or no log is silence. */
#include "log.h"
#include "testutil.h"

static int g_calls;
static phc_log_level g_level;
static char g_text[2048];
static void *g_ud;

static void logger(void *ud, phc_log_level level, const char *msg)
{
    g_calls++;
    g_level = level;
    g_ud = ud;
    snprintf(g_text, sizeof(g_text), "%s", msg);
}

int main(void)
{
    int marker = 0;
    phc_log log = {.fn = logger, .ud = &marker, .level = PHC_LOG_INFO};
    phc__log(&log, PHC_LOG_WARN, "token '%s' answered in %d ms", "phc-test", 12);
    CHECK(g_calls == 1 && g_level == PHC_LOG_WARN && g_ud == &marker);
    CHECK(strcmp(g_text, "token 'phc-test' answered in 12 ms") == 0);
    phc__log(&log, PHC_LOG_INFO, "info");
    CHECK(g_calls == 2 && g_level == PHC_LOG_INFO);
    /* above the level: not called */
    phc__log(&log, PHC_LOG_DEBUG, "debug");
    CHECK(g_calls == 2);
    log.level = PHC_LOG_DEBUG;
    phc__log(&log, PHC_LOG_DEBUG, "debug");
    CHECK(g_calls == 3 && strcmp(g_text, "debug") == 0);
    /* a long message is cut, not overrun */
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    phc__log(&log, PHC_LOG_INFO, "%s", big);
    CHECK(g_calls == 4 && strlen(g_text) == 1023);
    /* no callback, no log: nothing, and no crash */
    log.fn = NULL;
    phc__log(&log, PHC_LOG_WARN, "lost");
    phc__log(NULL, PHC_LOG_WARN, "lost");
    CHECK(g_calls == 4);
    TEST_MAIN_END();
}
