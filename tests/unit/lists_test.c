/* lists unit: the opaque pair and CA lists token.h hands out instead of arrays. The list takes
 * the array it is given (freed with it, also when the list cannot be made), counts and gets
 * by index, and every accessor takes NULL and an index past the end. */
#include "lists.h"
#include "testutil.h"

#include <openssl/crypto.h>

#include <string.h>

static phc_pair_info *pairs(size_t n)
{
    phc_pair_info *v = OPENSSL_zalloc(n * sizeof(*v));
    for (size_t i = 0; v && i < n; i++)
        snprintf(v[i].id_hex, sizeof(v[i].id_hex), "%02zx", i + 1);
    return v;
}

static void test_pair_list(void)
{
    phc_errbuf err = {0};
    phc_pair_list *l = NULL;
    CHECK(phc__pair_list_take(&l, pairs(3), 3, &err) == PHC_OK);
    CHECK(l != NULL);
    CHECK(phc_pair_list_count(l) == 3);
    for (size_t i = 0; i < 3; i++) {
        const phc_pair_info *p = phc_pair_list_get(l, i);
        char want[8];
        snprintf(want, sizeof(want), "%02zx", i + 1);
        CHECK(p && strcmp(p->id_hex, want) == 0);
    }
    /* Past the end, and the same entry twice: borrowed, stable pointers. */
    CHECK(phc_pair_list_get(l, 3) == NULL);
    CHECK(phc_pair_list_get(l, (size_t)-1) == NULL);
    CHECK(phc_pair_list_get(l, 1) == phc_pair_list_get(l, 1));
    phc_pair_list_free(l);

    /* An empty list (no array) counts 0 and gets nothing, whatever n says. */
    CHECK(phc__pair_list_take(&l, NULL, 5, &err) == PHC_OK);
    CHECK(l != NULL && phc_pair_list_count(l) == 0);
    CHECK(phc_pair_list_get(l, 0) == NULL);
    phc_pair_list_free(l);

    /* NULL everywhere. */
    CHECK(phc_pair_list_count(NULL) == 0);
    CHECK(phc_pair_list_get(NULL, 0) == NULL);
    phc_pair_list_free(NULL);
    phc_pair_info_free(NULL);
    phc_pair_info_free(pairs(1));
}

static void test_ca_list(void)
{
    phc_errbuf err = {0};
    phc_ca_list *l = NULL;
    phc_ca_info *v = OPENSSL_zalloc(2 * sizeof(*v));
    CHECK(v != NULL);
    if (!v)
        return;
    strcpy(v[0].subject, "CN=Root A");
    strcpy(v[1].subject, "CN=Root B");
    v[1].days_left = -3;
    CHECK(phc__ca_list_take(&l, v, 2, &err) == PHC_OK);
    CHECK(phc_ca_list_count(l) == 2);
    CHECK(phc_ca_list_get(l, 0) && strcmp(phc_ca_list_get(l, 0)->subject, "CN=Root A") == 0);
    CHECK(phc_ca_list_get(l, 1) && phc_ca_list_get(l, 1)->days_left == -3);
    CHECK(phc_ca_list_get(l, 2) == NULL);
    phc_ca_list_free(l);

    CHECK(phc__ca_list_take(&l, NULL, 2, &err) == PHC_OK);
    CHECK(phc_ca_list_count(l) == 0 && phc_ca_list_get(l, 0) == NULL);
    phc_ca_list_free(l);
    CHECK(phc_ca_list_count(NULL) == 0);
    CHECK(phc_ca_list_get(NULL, 0) == NULL);
    phc_ca_list_free(NULL);
}

int main(void)
{
    test_pair_list();
    test_ca_list();
    TEST_MAIN_END();
}
