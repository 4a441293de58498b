/* gen_open unit: the time-bounded opening of a generation. Through a PKCS#11 shim that
 * forwards to SoftHSM (tests/fixtures/hang_pkcs11.c): it succeeds while the token answers; when
 * the token stops answering it fails within the bound naming the module, a second call fails
 * at once without starting another worker, and the late answer is taken by the next call
 * once the token answers again. A wrong PIN comes back as the PIN error it is. */
#include "gen_open.h"
#include "testclient.h"
#include "trust.h"

#include <time.h>

static long long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void)
{
    phc_errbuf e = {0};
    phc_trust *trust = NULL;
    phc_config *c = NULL, *bad = NULL;
    phc_gen *g = NULL;
    phc_gen_job *pending = NULL;
    phc_pin_latch latch = {0};
    char hang[PATH_MAX + 8], want[PATH_MAX + 128];
    tok t;
    const char *shim = getenv("PHC_HANG_MODULE");
    CHECK(shim != NULL);
    if (!shim || tt_begin("genopen") || !tt_have_softhsm())
        TEST_MAIN_END();
    if (tc_token(&t, "tok", "/CN=gen-open"))
        goto out;
    snprintf(hang, sizeof(hang), "%s/hang", g_tmp);
    setenv("PHC_HANG_TARGET", MODULE, 1);
    setenv("PHC_HANG_FILE", hang, 1);
    setenv("PHC_HANG_CALLS", "C_Sign,C_OpenSession,C_GetSlotList,C_Login,C_FindObjectsInit", 1);
    if (!(c = tc_config(&t, 1, "https://127.0.0.1:1")))
        goto out;
    CHECK(phc_config_set(c, "pkcs11_module", shim, &e) == 0);
    CHECK(phc__trust_load(&trust, c->ca_file, NULL, 0, &e) == 0);
    long long now = (long long)time(NULL);

    /* The token answers: a generation within the bound. */
    int rc = phc__gen_open_bounded(&pending, &g, c, trust, NULL, now, 10000, &latch, &e);
    CHECK(rc == 0 && g != NULL && pending == NULL);
    if (rc)
        fprintf(stderr, "open: %s\n", e.msg);
    CHECK(g && phc__gen_has_key(g) == 1);
    phc__gen_unref(g);
    g = NULL;

    /* The token stops answering: refused within the bound, naming the module. */
    FILE *f = fopen(hang, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    snprintf(want, sizeof(want),
             "the token behind PKCS#11 module '%s' did not answer within 300 ms while being "
             "opened",
             shim);
    long long t0 = ms_now();
    rc = phc__gen_open_bounded(&pending, &g, c, trust, NULL, now, 300, &latch, &e);
    long long took = ms_now() - t0;
    CHECK_ERR(rc, e, PHC_ERR_HSM, want);
    CHECK(took >= 280 && took < 2000);
    CHECK(g == NULL && pending != NULL);

    /* While that worker is out, no second one: the next call fails at once. */
    t0 = ms_now();
    rc = phc__gen_open_bounded(&pending, &g, c, trust, NULL, now, 5000, &latch, &e);
    took = ms_now() - t0;
    CHECK_ERR(rc, e, PHC_ERR_HSM,
              "has not answered an earlier attempt to open it; not trying "
              "again until it does");
    CHECK(strstr(e.msg, shim) != NULL);
    CHECK(took < 1000);
    CHECK(g == NULL && pending != NULL);

    /* The token answers again: the late result is the next call's. */
    unlink(hang);
    rc = -1;
    for (int i = 0; i < 100 && pending; i++) {
        rc = phc__gen_open_bounded(&pending, &g, c, trust, NULL, now, 5000, &latch, &e);
        if (pending)
            usleep(100000);
    }
    CHECK(rc == 0 && g != NULL && pending == NULL);
    CHECK(g && phc__gen_has_key(g) == 1);
    phc__gen_unref(g);
    g = NULL;

    /* Another failure than silence passes through as it is: a wrong PIN. */
    char pinsrc[PATH_MAX + 32];
    tok_pin_file(&t, "wrongpin", "99999999\n", pinsrc, sizeof(pinsrc));
    if (!(bad = tc_config(&t, 1, "https://127.0.0.1:1")))
        goto out;
    CHECK(phc_config_set(bad, "pkcs11_module", shim, &e) == 0);
    CHECK(phc_config_set(bad, "pin", pinsrc, &e) == 0);
    rc = phc__gen_open_bounded(&pending, &g, bad, trust, NULL, now, 10000, &latch, &e);
    CHECK_ERR(rc, e, PHC_ERR_PIN,
              "PIN rejected by token 'phc-test' (CKR_PIN_INCORRECT); not retried");
    CHECK(g == NULL && pending == NULL);
    /* The worker's copy of the latch came back: the refused PIN is remembered. */
    CHECK(latch.set == 1);
    phc__gen_job_release(NULL);
out:
    unlink(hang);
    phc__gen_job_release(pending);
    phc__gen_unref(g);
    phc__trust_free(trust);
    phc_config_free(c);
    phc_config_free(bad);
    tt_end();
    TEST_MAIN_END();
}
