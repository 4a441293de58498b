/* token_bound unit: the time bound on the public token calls, through the PKCS#11 shims that
 * forward to SoftHSM (tests/fixtures/hang_pkcs11.c, slow_pkcs11.c). A held call fails the
 * call within connect_timeout naming the token, the module and the call; the handle's next
 * call fails at once while that call is out, and works again once the token answered;
 * phc_token_free of a handle whose call is out returns at once; phc_token_store_secret does
 * not freeze the caller's config. A token slower than the bound in all, but answering each
 * call within it, is not cut off: the bound is per call. */
#include "testclient.h"

#include <time.h>

static long long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hold(const char *file, int on)
{
    if (!on) {
        unlink(file);
        return;
    }
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
}

/* A held call: refused within the bound, named; the handle waits for the token's answer. */
static void test_hang(const tok *t, const char *shim, const char *hang)
{
    phc_errbuf e = {0};
    phc_token *h = NULL;
    phc_pair_list *l = NULL;
    char *pem = NULL;
    char want[PATH_MAX + 256];
    phc_config *s = NULL, *c = tc_config(t, 1, "https://127.0.0.1:1");
    if (!c)
        return;
    CHECK(phc_config_set(c, "pkcs11_module", shim, &e) == 0);
    CHECK(phc_config_set(c, "connect_timeout", "1", &e) == 0);
    setenv("PHC_HANG_CALLS", "C_FindObjectsInit,C_CreateObject", 1);

    /* The token answers. */
    CHECK(phc_token_open(&h, c, NULL, &e) == 0 && h);
    if (!h)
        goto out;
    CHECK(phc_token_pairs(h, 0, &l, &e) == 0 && phc_pair_list_count(l) == 1);
    phc_pair_list_free(l);
    l = NULL;

    /* It stops answering: the call is refused within the bound, naming what hung. */
    hold(hang, 1);
    snprintf(want, sizeof(want),
             "token 'phc-test' in PKCS#11 module '%s' did not answer C_FindObjectsInit within "
             "1000 ms (connect_timeout); phc stopped waiting, the call may still complete on "
             "the token",
             shim);
    long long t0 = ms_now();
    int rc = phc_token_pairs(h, 0, &l, &e);
    long long took = ms_now() - t0;
    CHECK_ERR(rc, e, PHC_ERR_HSM, want);
    CHECK(strcmp(e.msg, want) == 0);
    CHECK(took >= 950 && took < 3000);
    CHECK(l == NULL);

    /* While that call is out the handle is not called into: the next call fails at once. */
    t0 = ms_now();
    rc = phc_token_csr(h, NULL, "/CN=x", &pem, &e);
    took = ms_now() - t0;
    CHECK_ERR(rc, e, PHC_ERR_HSM,
              "has not answered C_FindObjectsInit of an earlier call; phc stopped waiting and "
              "does not ask it again until it does");
    CHECK(strstr(e.msg, "token 'phc-test'") != NULL && strstr(e.msg, shim) != NULL);
    CHECK(took < 500 && pem == NULL);

    /* The token answers again: so does the handle. */
    hold(hang, 0);
    rc = -1;
    for (int i = 0; i < 50 && rc != 0; i++) {
        rc = phc_token_pairs(h, 0, &l, &e);
        if (rc)
            usleep(100000);
    }
    CHECK(rc == 0 && phc_pair_list_count(l) == 1);
    phc_pair_list_free(l);
    l = NULL;

    /* Freeing a handle whose call is out returns at once; the worker frees it later (a leak
     * here shows under LeakSanitizer). */
    hold(hang, 1);
    rc = phc_token_pairs(h, 0, &l, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "did not answer C_FindObjectsInit within 1000 ms");
    t0 = ms_now();
    phc_token_free(h);
    h = NULL;
    CHECK(ms_now() - t0 < 500);

    /* The secret: bounded too, and its config stays the caller's (a handle's is frozen). */
    s = tc_config(t, 1, "https://127.0.0.1:1");
    CHECK(s && phc_config_set(s, "pkcs11_module", shim, &e) == 0 &&
          phc_config_set(s, "connect_timeout", "1", &e) == 0 &&
          phc_config_set(s, "client_id", "unit", &e) == 0 &&
          phc_config_set(s, "client_secret", "pkcs11:token=phc-test;object=client-secret;type=data",
                         &e) == 0);
    setenv("PHC_HANG_CALLS", "C_CreateObject", 1);
    rc = phc_token_store_secret(s, "s3cret", 6, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "did not answer C_CreateObject within 1000 ms");
    CHECK(strstr(e.msg, "token 'phc-test' in PKCS#11 module") != NULL);
    CHECK(s && phc_config_set(s, "timeout", "20", &e) == 0);
    hold(hang, 0);
    usleep(500000); /* the held calls go on (the shim polls every 50 ms) and their workers end */
out:
    hold(hang, 0);
    phc_token_free(h);
    phc_config_free(c);
    phc_config_free(s);
}

/* Every call takes 100 ms, the bound is 1 s: a listing of several calls takes longer than the
 * bound in all and still succeeds. */
static void test_slow(const tok *t, const char *slow)
{
    phc_errbuf e = {0};
    phc_token *h = NULL;
    phc_pair_list *l = NULL;
    phc_config *c = tc_config(t, 1, "https://127.0.0.1:1");
    if (!c)
        return;
    setenv("PHC_SLOW_TARGET", MODULE, 1);
    setenv("PHC_SLOW_CALL_US", "100000", 1);
    setenv("PHC_SLOW_SIGN_US", "100000", 1);
    CHECK(phc_config_set(c, "pkcs11_module", slow, &e) == 0);
    CHECK(phc_config_set(c, "connect_timeout", "1", &e) == 0);
    long long t0 = ms_now();
    int rc = phc_token_open(&h, c, NULL, &e);
    if (rc)
        fprintf(stderr, "open: %s\n", e.msg);
    CHECK(rc == 0 && h);
    if (h) {
        rc = phc_token_pairs(h, 0, &l, &e);
        if (rc)
            fprintf(stderr, "pairs: %s\n", e.msg);
        CHECK(rc == 0 && phc_pair_list_count(l) == 1);
    }
    long long took = ms_now() - t0;
    fprintf(stderr, "# open and list through 100 ms per call: %lld ms\n", took);
    CHECK(took > 1000);
    phc_pair_list_free(l);
    phc_token_free(h);
    phc_config_free(c);
}

int main(void)
{
    char hang[PATH_MAX + 8];
    tok t;
    const char *shim = getenv("PHC_HANG_MODULE"), *slow = getenv("PHC_SLOW_MODULE");
    CHECK(shim != NULL && slow != NULL);
    if (!shim || !slow || tt_begin("tokenbound") || !tt_have_softhsm())
        TEST_MAIN_END();
    if (tc_token(&t, "tok", "/CN=token-bound"))
        goto out;
    snprintf(hang, sizeof(hang), "%s/hang", g_tmp);
    setenv("PHC_HANG_TARGET", MODULE, 1);
    setenv("PHC_HANG_FILE", hang, 1);
    test_hang(&t, shim, hang);
    test_slow(&t, slow);
out:
    unlink(hang);
    tt_end();
    TEST_MAIN_END();
}
