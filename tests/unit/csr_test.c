/* lib/csr.c: the subject parser (OpenSSL's -subj form and RFC 4514, escapes, refusals). The
 * requests themselves, signed on a token, are checked in token_test.c's life cycle. */
#include "csr.h"
#include "testutil.h"

#include <openssl/bio.h>
#include <openssl/x509.h>

static void test_dn(void)
{
    X509_NAME *a = NULL, *b = NULL;
    phc_errbuf e = {0};
    char s[256];
    CHECK(phc__dn_parse(&a, "/O=Test Energy/CN=client 1", &e) == 0);
    CHECK(phc__dn_parse(&b, "  CN=client 1, O=Test Energy ", &e) == 0);
    CHECK(a && b && X509_NAME_cmp(a, b) == 0);
    if (a) {
        BIO *o = BIO_new(BIO_s_mem());
        X509_NAME_print_ex(o, a, 0, XN_FLAG_RFC2253);
        int n = BIO_read(o, s, sizeof(s) - 1);
        s[n > 0 ? n : 0] = '\0';
        BIO_free(o);
        CHECK(strcmp(s, "CN=client 1,O=Test Energy") == 0);
    }
    X509_NAME_free(a);
    X509_NAME_free(b);
    a = NULL;
    CHECK(phc__dn_parse(&a, "CN=a\\,b,O=x\\2by,C=DE", &e) == 0);
    if (a) {
        CHECK(X509_NAME_entry_count(a) == 3);
        X509_NAME_ENTRY *cn = X509_NAME_get_entry(a, 2);
        ASN1_STRING *v = X509_NAME_ENTRY_get_data(cn);
        CHECK(v && ASN1_STRING_length(v) == 3 && memcmp(ASN1_STRING_get0_data(v), "a,b", 3) == 0);
        ASN1_STRING *o = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(a, 1));
        CHECK(o && memcmp(ASN1_STRING_get0_data(o), "x+y", 3) == 0);
    }
    X509_NAME_free(a);
    a = NULL;
    CHECK(phc__dn_parse(&a, "/CN=a\\/b/2.5.4.10=OID Org", &e) == 0);
    X509_NAME_free(a);
    a = NULL;

    int rc = phc__dn_parse(&a, "", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "the subject is empty");
    rc = phc__dn_parse(&a, "/CN=x/XX=y", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 2: unknown attribute 'XX'");
    rc = phc__dn_parse(&a, "/CN=", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 1 ('CN') has an empty value");
    rc = phc__dn_parse(&a, "/CN=x//O=y", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 2 is not NAME=value");
    rc = phc__dn_parse(&a, "client", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 1 is not NAME=value");
    rc = phc__dn_parse(&a, "/C=Germany", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "subject component 1: value not acceptable for 'C'");
    rc = phc__dn_parse(&a, "CN=a+OU=b", &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "multi-valued RDNs");
    CHECK(a == NULL);
}

int main(void)
{
    test_dn();
    TEST_MAIN_END();
}
