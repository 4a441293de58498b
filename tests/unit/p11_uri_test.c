/* p11_uri unit: the one PKCS#11 URI parser and its case rule. The parser's verdicts on
 * their own, then the same URIs through each of its users - config validation, the key
 * loader (hsm.c), the token administration and client-secret lookup (p11.c) - so that a URI
 * is refused or taken alike everywhere: "PKCS11:" used to pass validation and then fail at
 * the first token request as a certificate file or secret source that is not there. */
#include "hsm.h"
#include "p11.h"
#include "p11_uri.h"
#include "testutil.h"

#include <phconnect/phconnect.h>

#define MOD "/nonexistent/phc-uri-test/module.so"

static phc_p11_uri_fault parse(const char *uri, CK_OBJECT_CLASS want)
{
    phc_p11_uri u;
    phc_p11_uri_fault f = phc__p11_uri_parse(&u, uri, want, NULL);
    phc__p11_uri_clear(&u);
    return f;
}

static void test_parser(void)
{
    CHECK(phc__p11_uri_scheme("pkcs11:token=a") == 1);
    CHECK(phc__p11_uri_scheme("PKCS11:token=a") == -1);
    CHECK(phc__p11_uri_scheme("Pkcs11:") == -1);
    CHECK(phc__p11_uri_scheme("file:/x") == 0);
    CHECK(phc__p11_uri_scheme("pkcs11") == 0);
    CHECK(phc__p11_uri_scheme(NULL) == 0);

    phc_p11_uri u;
    const char *why = NULL;
    CHECK(phc__p11_uri_parse(&u, "pkcs11:token=phc%20test;object=client;id=%01%02;type=private",
                             CKO_PRIVATE_KEY, &why) == PHC_P11_URI_OK);
    CHECK(u.label && strcmp(u.label, "client") == 0);
    CHECK(u.has_id && u.id_len == 2 && u.id[0] == 1 && u.id[1] == 2);
    CHECK(u.has_cls && u.cls == CKO_PRIVATE_KEY);
    CHECK(u.kit && memcmp(p11_kit_uri_get_token_info(u.kit)->label, "phc test ", 9) == 0);
    phc__p11_uri_clear(&u);

    CHECK(parse("pkcs11:object=client", CKO_PRIVATE_KEY) == PHC_P11_URI_OK);
    CHECK(parse("pkcs11:id=%01", CKO_CERTIFICATE) == PHC_P11_URI_OK);
    CHECK(parse("pkcs11:token=t", PHC_P11_NO_OBJECT) == PHC_P11_URI_OK);
    CHECK(parse("pkcs11:object=x;type=data", PHC_P11_ANY_OBJECT) == PHC_P11_URI_OK);
    /* The case rule, whatever else is right. */
    CHECK(parse("PKCS11:object=client", CKO_PRIVATE_KEY) == PHC_P11_URI_CASE);
    CHECK(parse("Pkcs11:token=t", PHC_P11_NO_OBJECT) == PHC_P11_URI_CASE);
    CHECK(parse("file:/etc/x", CKO_PRIVATE_KEY) == PHC_P11_URI_NOT_URI);
    CHECK(parse("", CKO_PRIVATE_KEY) == PHC_P11_URI_NOT_URI);
    CHECK(phc__p11_uri_parse(&u, "pkcs11:object=%zz", CKO_PRIVATE_KEY, &why) ==
          PHC_P11_URI_MALFORMED);
    CHECK(why && *why);
    CHECK(parse("pkcs11:object=c;pin-value=1234", CKO_PRIVATE_KEY) == PHC_P11_URI_PIN);
    CHECK(parse("pkcs11:object=c?pin-source=file:/p", CKO_PRIVATE_KEY) == PHC_P11_URI_PIN);
    CHECK(parse("pkcs11:objetc=c", CKO_PRIVATE_KEY) == PHC_P11_URI_UNKNOWN);
    CHECK(parse("pkcs11:token=t", CKO_PRIVATE_KEY) == PHC_P11_URI_NO_OBJECT);
    CHECK(parse("pkcs11:token=t", PHC_P11_ANY_OBJECT) == PHC_P11_URI_NO_OBJECT);
    CHECK(phc__p11_uri_parse(&u, "pkcs11:object=c;type=cert", CKO_PRIVATE_KEY, NULL) ==
          PHC_P11_URI_WRONG_CLASS);
    CHECK(u.has_cls && u.cls == CKO_CERTIFICATE && !u.kit && !u.label);
    CHECK(strcmp(phc__p11_uri_class_word(CKO_DATA), "data") == 0);
}

/* Every user refuses "PKCS11:" alike, as a config error naming the rule. */
static void test_case_rule_everywhere(void)
{
    phc_config *c = NULL;
    phc_errbuf e = {0};
    CHECK(phc_config_new(&c, &e) == PHC_OK);
    CHECK_ERR(phc_config_set(c, "key", "PKCS11:token=t;object=client", &e), e, PHC_ERR_CONFIG,
              "write the URI scheme 'pkcs11:' in lower case");
    CHECK_ERR(phc_config_set(c, "cert", "PKCS11:token=t;object=client", &e), e, PHC_ERR_CONFIG,
              "write the URI scheme 'pkcs11:' in lower case");
    CHECK_ERR(phc_config_set(c, "client_secret", "PKCS11:token=t;object=s;type=data", &e), e,
              PHC_ERR_CONFIG, "write the URI scheme 'pkcs11:' in lower case");
    /* The lower-case spelling passes validation, as before. */
    CHECK(phc_config_set(c, "key", "pkcs11:token=t;object=client", &e) == PHC_OK);
    CHECK(phc_config_set(c, "client_secret", "pkcs11:token=t;object=s;type=data", &e) == PHC_OK);
    phc_config_free(c);

    /* The key loader refuses it before loading anything (the module does not exist). */
    phc_hsm *h = NULL;
    CHECK_ERR(phc__hsm_open(&h, MOD, "PKCS11:token=t;object=client", "env:NOPE", NULL, &e), e,
              PHC_ERR_CONFIG, "key URI: write its scheme 'pkcs11:' in lower case");
    CHECK_ERR(
        phc__hsm_open(&h, MOD, "pkcs11:token=t;object=client;type=cert", "env:NOPE", NULL, &e), e,
        PHC_ERR_CONFIG, "key URI has type= other than 'private'");
    CHECK_ERR(phc__hsm_open(&h, MOD, "pkcs11:token=t;object=client", "env:NOPE", NULL, &e), e,
              PHC_ERR_HSM, "cannot load PKCS#11 module '" MOD "': file does not exist");

    /* Token administration and the client-secret lookup. */
    phc_p11 *p = NULL;
    CHECK_ERR(phc__p11_open(&p, MOD, "PKCS11:token=t", "env:NOPE", NULL, &e), e, PHC_ERR_CONFIG,
              "PKCS#11 URI: write its scheme 'pkcs11:' in lower case");
    char *v = NULL;
    size_t n = 0;
    CHECK_ERR(phc__p11_read_data(&v, &n, MOD, "PKCS11:token=t;object=s;type=data", "env:NOPE", &e),
              e, PHC_ERR_CONFIG, "PKCS#11 URI: write its scheme 'pkcs11:' in lower case");
    CHECK_ERR(phc__p11_read_data(&v, &n, MOD, "pkcs11:token=t;object=s;type=cert", "env:NOPE", &e),
              e, PHC_ERR_CONFIG, "data object URI has type= other than 'data'");
    CHECK_ERR(phc__p11_read_data(&v, &n, MOD, "pkcs11:token=t;objetc=s", "env:NOPE", &e), e,
              PHC_ERR_CONFIG, "does not understand (a typo?)");
    CHECK(v == NULL && p == NULL && h == NULL);
}

/* The one token matching rule, as both stacks apply it. */
static void test_token_match(void)
{
    phc_p11_uri u;
    char want[200];
    phc_p11_token_id t = {"phc test", "0001", "SoftHSM project", "SoftHSM v2", "slot 1", "x", 7};
    CHECK(phc__p11_uri_parse(&u, "pkcs11:token=phc%20test;serial=0001;object=k", CKO_PRIVATE_KEY,
                             NULL) == PHC_P11_URI_OK);
    CHECK(phc__p11_uri_token_matches(u.kit, &t) == 1);
    phc__p11_uri_token_wanted(u.kit, want, sizeof(want));
    CHECK(strcmp(want, "label 'phc test', serial '0001'") == 0);
    t.serial = "0002";
    CHECK(phc__p11_uri_token_matches(u.kit, &t) == 0);
    t.serial = NULL; /* read as "" */
    CHECK(phc__p11_uri_token_matches(u.kit, &t) == 0);
    phc__p11_uri_clear(&u);
    CHECK(phc__p11_uri_parse(&u, "pkcs11:slot-id=7;model=SoftHSM%20v2;object=k", CKO_PRIVATE_KEY,
                             NULL) == PHC_P11_URI_OK);
    CHECK(phc__p11_uri_token_matches(u.kit, &t) == 1);
    phc__p11_uri_token_wanted(u.kit, want, sizeof(want));
    CHECK(strcmp(want, "model 'SoftHSM v2', slot-id 7") == 0);
    t.slot_id = 8;
    CHECK(phc__p11_uri_token_matches(u.kit, &t) == 0);
    phc__p11_uri_clear(&u);
    /* Naming no token matches any. */
    CHECK(phc__p11_uri_parse(&u, "pkcs11:object=k", CKO_PRIVATE_KEY, NULL) == PHC_P11_URI_OK);
    CHECK(phc__p11_uri_token_matches(u.kit, &t) == 1);
    phc__p11_uri_token_wanted(u.kit, want, sizeof(want));
    CHECK(want[0] == '\0');
    phc__p11_uri_clear(&u);
    char tr[8];
    phc__p11_trim(tr, sizeof(tr), (const unsigned char *)"ab  \0\0", 6);
    CHECK(strcmp(tr, "ab") == 0);
    phc__p11_trim(tr, sizeof(tr), (const unsigned char *)"abcdefghij", 10);
    CHECK(strcmp(tr, "abcdefg") == 0);
}

/* The token search verdict, worded once for both stacks. */
static void test_token_verdict(void)
{
    phc_errbuf e = {0};
    CHECK(phc__p11_token_verdict(&e, "/m.so", "key URI", 2, 1, "label 'a'", "'a', 'b'") == 0);
    CHECK_ERR(phc__p11_token_verdict(&e, "/m.so", "key URI", 0, 0, "label 'a'", "none"), e,
              PHC_ERR_HSM,
              "no token with label 'a' in module '/m.so' (no initialised token present)");
    CHECK_ERR(phc__p11_token_verdict(&e, "/m.so", "URI", 0, 0, "", "none"), e, PHC_ERR_HSM,
              "no token with any label in module '/m.so'");
    CHECK_ERR(phc__p11_token_verdict(&e, "/m.so", "URI", 2, 0, "label 'c'", "'a', 'b'"), e,
              PHC_ERR_HSM, "no token with label 'c' in module '/m.so' (tokens present: 'a', 'b')");
    CHECK_ERR(
        phc__p11_token_verdict(&e, "/m.so", "key URI", 2, 2, "", "'a', 'b'"), e, PHC_ERR_HSM,
        "module '/m.so' has 2 tokens ('a', 'b') and the key URI names none: add token= to it");
    CHECK_ERR(phc__p11_token_verdict(&e, "/m.so", "URI", 2, 2, "label 'a'", "'a', 'a'"), e,
              PHC_ERR_HSM,
              "2 tokens match label 'a' in module '/m.so' (tokens present: 'a', 'a'): add serial= "
              "to the URI");
}

int main(void)
{
    test_parser();
    test_token_verdict();
    test_token_match();
    test_case_rule_everywhere();
    TEST_MAIN_END();
}
