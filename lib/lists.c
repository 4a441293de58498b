#include "lists.h"

#include "err.h"

#include <openssl/crypto.h>

/* The public list types are the same thing, an owned array of records and its count, kept as
 * distinct opaque types so that callers cannot mix them up: one implementation below. The
 * public structs hold it as their first member, so a pointer to either is a pointer to it. */
struct phc__list {
    size_t n;
    void *v;
};

struct phc_pair_list {
    struct phc__list l;
};

struct phc_ca_list {
    struct phc__list l;
};

/* Takes v (OPENSSL_malloc'ed, n records) whatever the outcome. The allocation is the size of
 * the public struct, which is exactly one struct phc__list. */
static struct phc__list *list_take(void *v, size_t n, phc_errbuf *err)
{
    struct phc__list *l = OPENSSL_zalloc(sizeof(*l));
    if (!l) {
        OPENSSL_free(v);
        phc__err(err, PHC_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    l->n = v ? n : 0;
    l->v = v;
    return l;
}

static const void *list_get(const struct phc__list *l, size_t i, size_t size)
{
    return l && i < l->n ? (const char *)l->v + i * size : NULL;
}

static void list_free(struct phc__list *l)
{
    if (!l)
        return;
    OPENSSL_free(l->v);
    OPENSSL_free(l);
}

int phc__pair_list_take(phc_pair_list **out, phc_pair_info *v, size_t n, phc_errbuf *err)
{
    *out = (phc_pair_list *)list_take(v, n, err);
    return *out ? PHC_OK : PHC_ERR_INTERNAL;
}

size_t phc_pair_list_count(const phc_pair_list *l)
{
    return l ? l->l.n : 0;
}

const phc_pair_info *phc_pair_list_get(const phc_pair_list *l, size_t i)
{
    return list_get(l ? &l->l : NULL, i, sizeof(phc_pair_info));
}

void phc_pair_list_free(phc_pair_list *l)
{
    list_free(l ? &l->l : NULL);
}

int phc__ca_list_take(phc_ca_list **out, phc_ca_info *v, size_t n, phc_errbuf *err)
{
    *out = (phc_ca_list *)list_take(v, n, err);
    return *out ? PHC_OK : PHC_ERR_INTERNAL;
}

size_t phc_ca_list_count(const phc_ca_list *l)
{
    return l ? l->l.n : 0;
}

const phc_ca_info *phc_ca_list_get(const phc_ca_list *l, size_t i)
{
    return list_get(l ? &l->l : NULL, i, sizeof(phc_ca_info));
}

void phc_ca_list_free(phc_ca_list *l)
{
    list_free(l ? &l->l : NULL);
}

void phc_pair_info_free(phc_pair_info *p)
{
    OPENSSL_free(p);
}
