/* token unit (lib/token.c): the key/certificate life cycle on real SoftHSM tokens through
 * the public token API - opening, generation, requests, install, renewal, prune, rollback -,
 * the pair states (and their agreement with hsm.c's choice of identity, ties included), the
 * client secret on the token, CA and endpoint information. */
#include "tokentest.h"

/* enrol, request, install, renewal with a new key, prune, rollback: the whole life cycle. */
static void test_life_cycle(const char *name, const char *key_type, const char *desc)
{
    tok tk;
    phc_errbuf e = {0};
    if (tok_empty(&tk, name))
        return;
    phc_config *cfg = config_for(&tk, NULL, NULL, NULL);
    phc_token *t = open_tok(cfg);
    if (!t)
        goto out;
    CHECK(strcmp(phc_token_label(t), "phc-test") == 0);
    CHECK_STATES(t, "");

    /* First enrolment: id 01, pending. */
    char id[PHC_ID_HEX_MAX];
    CHECK(phc_token_generate(t, key_type, 0, id, &e) == 0 && strcmp(id, "01") == 0);
    CHECK_STATES(t, "01:pending");
    int rc = phc_token_generate(t, key_type, 0, id, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG,
              "token 'phc-test' already holds a key with label 'client' (id 01): to renew, make a "
              "new request for that key or generate a pending key");
    rc = phc_token_generate(t, NULL, 1, id, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "key id 01 on token 'phc-test' is already pending");

    /* The request: for the only pending key, subject as given. */
    char *csr = NULL;
    CHECK(phc_token_csr(t, NULL, "/O=Test Energy/CN=phc-unit", &csr, &e) == 0 && csr);
    EVP_PKEY *pub1 = csr ? csr_pub(csr) : NULL;
    if (csr)
        CHECK(strcmp(csr_subject(csr), "CN=phc-unit,O=Test Energy") == 0);
    phc_free(csr);
    csr = NULL;
    rc = phc_token_csr(t, NULL, NULL, &csr, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "key id 01 has no certificate to copy the subject from");

    /* Install: active. */
    char *pem = issue(pub1, "phc-unit", -60, 30 * DAY, 0);
    phc_pair_info *pi = NULL;
    int already = -1;
    phc_pair_info_free(pi);
    CHECK(pem && phc_token_check_cert(t, pem, strlen(pem), 0, &pi, &already, &e) == 0);
    CHECK(pi && already == 0 && pi->state == PHC_PAIR_ACTIVE && strcmp(pi->id_hex, "01") == 0);
    CHECK_STATES(t, "01:pending"); /* check changes nothing */
    phc_pair_info_free(pi);
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, &pi, &already, &e) == 0);
    CHECK(pi && already == 0 && pi->state == PHC_PAIR_ACTIVE);
    CHECK(pi && strstr(pi->subject, "CN=phc-unit") != NULL && pi->days_left >= 29 &&
          pi->days_left <= 30);
    CHECK(pi && strcmp(pi->key_type, desc) == 0);
    CHECK_STATES(t, "01:active");
    /* Installing the same certificate again stores nothing. */
    phc_pair_info_free(pi);
    CHECK(phc_token_install_cert(t, pem, strlen(pem), 0, &pi, &already, &e) == 0 && already == 1);
    CHECK_STATES(t, "01:active");
    free(pem);

    /* Renewal with the same key: CSR with the current key and its subject. */
    CHECK(phc_token_csr(t, NULL, NULL, &csr, &e) == 0 && csr);
    if (csr)
        CHECK(strcmp(csr_subject(csr), "CN=phc-unit,O=Test Energy") == 0);
    EVP_PKEY *again = csr ? csr_pub(csr) : NULL;
    CHECK(again && pub1 && EVP_PKEY_eq(again, pub1) == 1);
    EVP_PKEY_free(again);
    phc_free(csr);
    csr = NULL;

    /* Renewal with a new key: id 02 pending; the current pair keeps serving. */
    CHECK(phc_token_generate(t, NULL, 1, id, &e) == 0 && strcmp(id, "02") == 0);
    CHECK_STATES(t, "01:active 02:pending");
    rc = phc_token_generate(t, NULL, 1, id, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "key id 02 on token 'phc-test' is already pending");
    /* Without a subject the new key takes the active pair's. */
    CHECK(phc_token_csr(t, "02", NULL, &csr, &e) == 0 && csr);
    if (csr)
        CHECK(strcmp(csr_subject(csr), "CN=phc-unit,O=Test Energy") == 0);
    phc_free(csr);
    csr = NULL;
    CHECK(phc_token_csr(t, "02", "CN=phc-unit-2,O=Test Energy", &csr, &e) == 0 && csr);
    EVP_PKEY *pub2 = csr ? csr_pub(csr) : NULL;
    CHECK(pub2 && pub1 && EVP_PKEY_eq(pub1, pub2) != 1);
    phc_free(csr);
    csr = NULL;
    rc = phc_token_csr(t, "07", NULL, &csr, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "no key with label 'client' and id 07 on token 'phc-test'");
    rc = phc_token_csr(t, "0x", NULL, &csr, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "key id '0x' is not hex bytes");

    /* The new certificate (newer notBefore) becomes active, the old pair retired. */
    pem = issue(pub2, "phc-unit-2", -30, 60 * DAY, 0);
    phc_pair_info_free(pi);
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, &pi, NULL, &e) == 0);
    CHECK(pi && pi->state == PHC_PAIR_ACTIVE && strcmp(pi->id_hex, "02") == 0);
    CHECK_STATES(t, "01:retired 02:active");

    /* Rollback: 01 serves again, 02 is pending (its certificate can come back later). */
    phc_pair_info *from = NULL, *to = NULL;
    phc_pair_info_free(from);
    phc_pair_info_free(to);
    CHECK(phc_token_rollback(t, 0, 1, &from, &to, &e) == 0);
    CHECK(from && to && strcmp(from->id_hex, "02") == 0 && strcmp(to->id_hex, "01") == 0);
    CHECK_STATES(t, "01:retired 02:active"); /* dry run */
    phc_pair_info_free(from);
    phc_pair_info_free(to);
    CHECK(phc_token_rollback(t, 0, 0, &from, &to, &e) == 0);
    CHECK(from && to && from->state == PHC_PAIR_PENDING && to->state == PHC_PAIR_ACTIVE);
    CHECK_STATES(t, "01:active 02:pending");
    phc_pair_info_free(pi);
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, &pi, NULL, &e) == 0);
    CHECK_STATES(t, "01:retired 02:active");
    free(pem);
    phc_pair_info_free(pi);
    phc_pair_info_free(from);
    phc_pair_info_free(to);

    /* Prune: the retired pair goes (certificate, then key); never the active one. */
    phc_pair_list *gone = NULL;
    CHECK(phc_token_prune(t, 0, PHC_PRUNE_DRY_RUN, &gone, &e) == 0 &&
          phc_pair_list_count(gone) == 1);
    if (phc_pair_list_count(gone) == 1)
        CHECK(strcmp(phc_pair_list_get(gone, 0)->id_hex, "01") == 0 &&
              phc_pair_list_get(gone, 0)->state == PHC_PAIR_RETIRED);
    phc_pair_list_free(gone);
    CHECK_STATES(t, "01:retired 02:active");
    CHECK(phc_token_prune(t, 0, 0, &gone, &e) == 0 && phc_pair_list_count(gone) == 1);
    phc_pair_list_free(gone);
    CHECK_STATES(t, "02:active");
    CHECK(phc_token_prune(t, 0, PHC_PRUNE_PENDING, &gone, &e) == 0 &&
          phc_pair_list_count(gone) == 0);
    CHECK(gone != NULL && phc_pair_list_get(gone, 0) == NULL); /* an empty list, not NULL */
    phc_pair_list_free(gone);
    CHECK_STATES(t, "02:active");
    /* Nothing left to fall back to. */
    rc = phc_token_rollback(t, 0, 0, NULL, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "no other valid pair on token 'phc-test' to fall back to");
    CHECK_STATES(t, "02:active");

    EVP_PKEY_free(pub1);
    EVP_PKEY_free(pub2);
out:
    phc_token_free(t);
    phc_config_free(cfg);
    ERR_clear_error();
}

/* Several certificates at once: the states, and hsm.c picking the very pair status calls
 * active. */
static void test_states_agree_with_hsm(void)
{
    tok tk;
    phc_errbuf e = {0};
    if (tok_empty(&tk, "states"))
        return;
    phc_config *cfg = config_for(&tk, NULL, NULL, NULL);
    phc_token *t = open_tok(cfg);
    EVP_PKEY *pk[4] = {0};
    char id[PHC_ID_HEX_MAX];
    if (!t)
        goto out;
    CHECK(phc_token_generate(t, "ec:P-256", 0, id, &e) == 0);
    for (int i = 0; i < 4; i++) {
        char *csr = NULL;
        if (i > 0)
            CHECK(phc_token_generate(t, "ec:P-256", 1, id, &e) == 0);
        CHECK(phc_token_csr(t, id, "/CN=states", &csr, &e) == 0 && csr);
        pk[i] = csr ? csr_pub(csr) : NULL;
        phc_free(csr);
        /* 01 valid (older), 02 valid (newest), 03 expired, 04 not yet valid */
        long nb[] = {-5 * DAY, -2 * DAY, -20 * DAY, 5 * DAY};
        long na[] = {30 * DAY, 20 * DAY, -DAY, 40 * DAY};
        char *pem = issue(pk[i], "states", nb[i], na[i], 0);
        /* expired / future certificates cannot be installed: store them as a token tool
         * (or an older phc) might have */
        if (i >= 2) {
            char path[PATH_MAX + 16];
            snprintf(path, sizeof(path), "%s/c%d.pem", tk.dir, i);
            FILE *f = fopen(path, "w");
            CHECK(f && pem && fputs(pem, f) >= 0);
            if (f)
                fclose(f);
            CHECK(sh("openssl x509 -in '%s' -outform DER -out '%s.der' && pkcs11-tool --module "
                     "%s --token-label phc-test --login --pin 1234 --write-object '%s.der' "
                     "--type cert --label client --id %s >/dev/null 2>&1",
                     path, path, MODULE, path, id) == 0);
        } else {
            CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, NULL, NULL, &e) == 0);
        }
        free(pem);
    }
    CHECK_STATES(t, "01:retired 02:active 03:expired 04:not-yet-valid");
    /* A second certificate on 02's key (same-key renewal), older: retired. */
    char *pem = issue(pk[1], "states-old", -10 * DAY, 10 * DAY, 0);
    CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, NULL, NULL, &e) == 0);
    free(pem);
    CHECK_STATES(t, "01:retired 02:retired 02:active 03:expired 04:not-yet-valid");

    phc_pair_list *p = NULL;
    size_t n = 0;
    char active_serial[80] = "";
    CHECK(phc_token_pairs(t, 0, &p, &e) == 0 && (n = phc_pair_list_count(p)) == 5);
    CHECK(phc_pair_list_get(p, n) == NULL && phc_pair_list_get(NULL, 0) == NULL &&
          phc_pair_list_count(NULL) == 0);
    for (size_t i = 0; i < n; i++) {
        CHECK(!phc_pair_list_get(p, i)->key_mismatch && phc_pair_list_get(p, i)->key_supported &&
              phc_pair_list_get(p, i)->has_cert);
        CHECK(strlen(phc_pair_list_get(p, i)->sha256) == 64);
        if (phc_pair_list_get(p, i)->state == PHC_PAIR_ACTIVE)
            snprintf(active_serial, sizeof(active_serial), "%s", phc_pair_list_get(p, i)->serial);
    }
    if (n == 5)
        CHECK(phc_pair_list_get(p, 3)->days_left >= -2 &&
              phc_pair_list_get(p, 3)->days_left <= -1 &&
              phc_pair_list_get(p, 4)->days_left >= 39 && phc_pair_list_get(p, 4)->days_left <= 40);
    phc_pair_list_free(p);
    phc_token_free(t);
    t = NULL;

    /* hsm.c chooses the same certificate for the connector. */
    phc_hsm *h = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    CHECK(phc__hsm_open(&h, MODULE, KEY_URI, tk.pin, NULL, &e) == 0);
    CHECK(h && phc__hsm_identity(h, NULL, (long long)time(NULL), &key, &cert, &e) == 0);
    if (cert) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        char *hx = bn ? BN_bn2hex(bn) : NULL;
        CHECK(hx && strcmp(hx, active_serial) == 0);
        OPENSSL_free(hx);
        BN_free(bn);
    }
    X509_free(cert);
    phc__hsm_free(h);

    /* Prune removes the retired and expired certificates, the keys left without one (01,
     * 03), and keeps the active pair and the one still to come. */
    t = open_tok(cfg);
    phc_pair_list *gone = NULL;
    CHECK(t && phc_token_prune(t, 0, 0, &gone, &e) == 0 && phc_pair_list_count(gone) == 3);
    phc_pair_list_free(gone);
    CHECK_STATES(t, "02:active 04:not-yet-valid");
out:
    for (int i = 0; i < 4; i++)
        EVP_PKEY_free(pk[i]);
    phc_token_free(t);
    phc_config_free(cfg);
    ERR_clear_error();
}

/* Three certificates with the very same dates (issued in one second): the last installed is
 * the active pair (the install-order record), and status and hsm.c name the same one,
 * whatever order each meets them in. */
static void test_tie(void)
{
    tok tk;
    phc_errbuf e = {0};
    char id[PHC_ID_HEX_MAX];
    if (tok_empty(&tk, "tie"))
        return;
    phc_config *cfg = config_for(&tk, NULL, NULL, NULL);
    phc_token *t = open_tok(cfg);
    char active[80] = "", last[80] = "";
    g_fixed_nb = time(NULL) - 3600;
    g_fixed_na = time(NULL) + 30 * DAY;
    for (int i = 0; t && i < 3; i++) {
        char *csr = NULL;
        CHECK(phc_token_generate(t, "ec:P-256", i > 0, id, &e) == 0);
        CHECK(phc_token_csr(t, id, "/CN=tie", &csr, &e) == 0 && csr);
        EVP_PKEY *pk = csr ? csr_pub(csr) : NULL;
        char *pem = pk ? issue(pk, "tie", 0, 0, 0) : NULL;
        CHECK(pem && phc_token_install_cert(t, pem, strlen(pem), 0, NULL, NULL, &e) == 0);
        BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIGNUM *sn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
        char *hx = sn ? BN_bn2hex(sn) : NULL;
        snprintf(last, sizeof(last), "%s", hx ? hx : "?");
        OPENSSL_free(hx);
        BN_free(sn);
        X509_free(x);
        BIO_free(b);
        free(pem);
        phc_free(csr);
        EVP_PKEY_free(pk);
    }
    g_fixed_nb = g_fixed_na = 0;
    phc_pair_list *p = NULL;
    size_t n = 0, nactive = 0;
    CHECK(t && phc_token_pairs(t, 0, &p, &e) == 0 && (n = phc_pair_list_count(p)) == 3);
    for (size_t i = 0; i < n; i++)
        if (phc_pair_list_get(p, i)->state == PHC_PAIR_ACTIVE) {
            nactive++;
            snprintf(active, sizeof(active), "%s", phc_pair_list_get(p, i)->serial);
        }
    CHECK(nactive == 1);
    CHECK(strcmp(active, last) == 0);
    phc_pair_list_free(p);
    phc_token_free(t);
    phc_hsm *h = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    CHECK(phc__hsm_open(&h, MODULE, KEY_URI, tk.pin, NULL, &e) == 0);
    CHECK(h && phc__hsm_identity(h, NULL, (long long)time(NULL), &key, &cert, &e) == 0);
    if (cert) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        char *hx = bn ? BN_bn2hex(bn) : NULL;
        CHECK(hx && strcmp(hx, active) == 0);
        OPENSSL_free(hx);
        BN_free(bn);
    }
    X509_free(cert);
    phc__hsm_free(h);
    phc_config_free(cfg);
}

static void test_open_refusals(void)
{
    tok tk;
    phc_errbuf e = {0};
    phc_token *t = NULL;
    if (tok_empty(&tk, "open"))
        return;
    phc_config *c = NULL;
    CHECK(phc_config_new(&c, &e) == 0);
    CHECK(phc_config_set(c, "url", "https://x.example", &e) == 0 &&
          phc_config_set(c, "ca_file", g_ca_file, &e) == 0 &&
          phc_config_set(c, "client_id", "id", &e) == 0 &&
          phc_config_set(c, "client_secret", "env:X", &e) == 0);
    int rc = phc_token_open(&t, c, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "has no 'key'");
    rc = phc_token_store_secret(c, "s", 1, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "'client_secret' is a file: or env: source");
    phc_config_free(c);

    tok bad = tk;
    tok_pin_file(&tk, "wrong", "0000", bad.pin, sizeof(bad.pin));
    c = config_for(&bad, NULL, NULL, NULL);
    rc = phc_token_open(&t, c, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_PIN, "not retried");
    phc_config_free(c);
    c = config_for(&tk, "pkcs11:token=absent;object=client", NULL, NULL);
    rc = phc_token_open(&t, c, NULL, &e);
    CHECK_ERR(rc, e, PHC_ERR_HSM, "no token with label 'absent'");
    phc_config_free(c);
    CHECK(t == NULL);
    phc_token_free(NULL);
    CHECK(strcmp(phc_token_label(NULL), "") == 0);
    CHECK(strcmp(phc_pair_state_name(PHC_PAIR_NOT_YET_VALID), "not-yet-valid") == 0);
    phc_pair_list *p = NULL;
    size_t n = 0;
    rc = phc_token_pairs(NULL, 0, &p, &e);
    CHECK(rc == PHC_ERR_INTERNAL && p == NULL && n == 0);
}

static void test_secret_and_info(void)
{
    tok tk;
    phc_errbuf e = {0};
    if (tok_empty(&tk, "secret"))
        return;
    phc_config *c = config_for(&tk, NULL, NULL, NULL);
    const char *uri = "pkcs11:token=phc-test;object=client-secret;type=data";
    CHECK(c && phc_config_set(c, "client_id", "plant-7", &e) == 0 &&
          phc_config_set(c, "client_secret", uri, &e) == 0 &&
          phc_config_set(c, "pinned_ips", "192.0.2.1, 2001:db8::1", &e) == 0 &&
          phc_config_set(c, "credential_expires", "2030-01-02", &e) == 0);
    static char big[PHC_SECRET_MAX + 1];
    memset(big, 's', sizeof(big));
    CHECK_ERR(phc_token_store_secret(c, big, sizeof(big), &e), e, PHC_ERR_CONFIG,
              "the client secret is too long (at most 4096 bytes)");
    CHECK_ERR(phc_token_store_secret(c, big, 0, &e), e, PHC_ERR_CONFIG,
              "the client secret is empty (at most 4096 bytes)");
    CHECK(phc_token_store_secret(c, big, PHC_SECRET_MAX, &e) == 0);
    CHECK(phc_token_store_secret(c, "top secret", 10, &e) == 0);
    char *v = NULL;
    size_t n = 0;
    CHECK(phc__p11_read_data(&v, &n, MODULE, uri, tk.pin, &e) == 0 && v &&
          strcmp(v, "top secret") == 0);
    phc__secret_free(v, n);

    phc_endpoint ep = PHC_ENDPOINT_INIT;
    CHECK(phc_config_endpoint(c, &ep, &e) == PHC_OK && ep.version == PHC_ENDPOINT_VERSION);
    CHECK(ep.port == 8443 && strcmp(ep.host, "api.powerhub.test") == 0);
    CHECK(ep.n_pinned_ips == 2 && strcmp(ep.pinned_ips[1], "2001:db8::1") == 0);
    CHECK(ep.credential_expires == 1893542400LL && ep.source_address == NULL);

    phc_ca_list *ca = NULL;
    size_t nca = 0;
    CHECK(phc_config_ca_certs(c, 0, &ca, &e) == 0 && (nca = phc_ca_list_count(ca)) == 2);
    CHECK(phc_ca_list_get(ca, nca) == NULL && phc_ca_list_get(NULL, 0) == NULL &&
          phc_ca_list_count(NULL) == 0);
    for (size_t i = 0; i < nca; i++) {
        CHECK(strlen(phc_ca_list_get(ca, i)->sha256) == 64 &&
              phc_ca_list_get(ca, i)->days_left >= 3648 &&
              phc_ca_list_get(ca, i)->days_left <= 3650);
        CHECK(strstr(phc_ca_list_get(ca, i)->subject, "Test CA") != NULL);
    }
    phc_ca_list_free(ca);
    CHECK(phc_config_set(c, "ca_sha256",
                         "0000000000000000000000000000000000000000000000000000000000000000",
                         &e) == 0);
    int rc = phc_config_ca_certs(c, 0, &ca, &e);
    CHECK_ERR(rc, e, PHC_ERR_CONFIG, "not listed in ca_sha256");
    phc_config_free(c);
}

int main(void)
{
    if (token_test_begin("token"))
        return 1;
    test_open_refusals();
    test_life_cycle("life-rsa", "rsa:2048", "RSA 2048");
    test_life_cycle("life-p256", "ec:P-256", "EC P-256");
    test_life_cycle("life-p384", "ec:P-384", "EC P-384");
    test_states_agree_with_hsm();
    test_tie();
    test_secret_and_info();
    token_test_end();
    TEST_MAIN_END();
}
