/* sign_guard unit: the time bound on a token key's signatures, with a software RSA key whose
 * private operation (a legacy RSA_METHOD, as libp11's keys are) blocks while a gate is shut:
 * a guarded signature verifies under the key's public half; a stuck one fails within the
 * bound and names the token, later ones fail at once; the guarded key can be freed while
 * its worker is stuck, and the worker lets go when the "token" answers. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sign_guard.h"

#include "testutil.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_gate = 1, g_calls;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int slow_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                         int padding)
{
    atomic_fetch_add(&g_calls, 1);
    while (!atomic_load(&g_gate))
        usleep(1000);
    return RSA_meth_get_priv_enc(RSA_PKCS1_OpenSSL())(flen, from, to, rsa, padding);
}

/* A legacy RSA key whose private operation goes through slow_priv_enc. */
static EVP_PKEY *token_like_key(RSA_METHOD **meth)
{
    EVP_PKEY *gen = EVP_RSA_gen(2048);
    RSA *rsa = gen ? EVP_PKEY_get1_RSA(gen) : NULL;
    *meth = RSA_meth_dup(RSA_PKCS1_OpenSSL());
    EVP_PKEY *k = EVP_PKEY_new();
    int ok = rsa && *meth && k && RSA_meth_set_priv_enc(*meth, slow_priv_enc) &&
             RSA_set_method(rsa, *meth) && EVP_PKEY_assign_RSA(k, rsa);
    CHECK(ok);
    EVP_PKEY_free(gen);
    return k;
}

static int sign_verify(EVP_PKEY *signer, EVP_PKEY *verifier)
{
    unsigned char msg[32] = "guarded signature", sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, signer) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(md);
    if (!ok || !verifier) {
        ERR_clear_error();
        return ok;
    }
    md = EVP_MD_CTX_new();
    ok = md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, verifier) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

int main(void)
{
    RSA_METHOD *meth = NULL;
    EVP_PKEY *key = token_like_key(&meth), *guarded = NULL;
    phc_errbuf e = {0};
    CHECK(phc__guard_key(&guarded, key, 200, "test-token", &e) == PHC_OK);
    if (!guarded) {
        fprintf(stderr, "guard: %s\n", e.msg);
        TEST_MAIN_END();
    }

    /* Answered in time: the signature is the key's. */
    CHECK(sign_verify(guarded, key));
    CHECK(atomic_load(&g_calls) == 1);
    CHECK(phc__guard_stuck(guarded) == NULL);
    double t0 = now_ms();
    int all = 1;
    for (int i = 0; i < 100; i++)
        all &= sign_verify(guarded, NULL);
    CHECK(all);
    CHECK(now_ms() - t0 < 20000);

    /* Stuck: the caller gets its answer at the bound, the key reports why. */
    atomic_store(&g_gate, 0);
    t0 = now_ms();
    CHECK(!sign_verify(guarded, NULL));
    double took = now_ms() - t0;
    CHECK(took >= 199 && took < 3000);
    const char *why = phc__guard_stuck(guarded);
    CHECK(why && strstr(why, "token 'test-token' did not answer a signing request within 200 ms"));
    /* While the worker is out, later signatures fail at once and reach no token. */
    int calls = atomic_load(&g_calls);
    t0 = now_ms();
    CHECK(!sign_verify(guarded, NULL));
    CHECK(now_ms() - t0 < 150);
    CHECK(atomic_load(&g_calls) == calls);

    /* The guarded key goes while its worker is stuck; the worker lets go later. */
    EVP_PKEY_free(guarded);
    atomic_store(&g_gate, 1);
    usleep(100000);
    /* The token key itself is still the caller's and still works. */
    CHECK(sign_verify(key, key));
    EVP_PKEY_free(key);
    RSA_meth_free(meth);
    TEST_MAIN_END();
}
