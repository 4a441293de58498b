#include "lists.h"

#include "err.h"

#include <openssl/crypto.h>

struct phc_pair_list {
    size_t n;
    phc_pair_info *v;
};

struct phc_ca_list {
    size_t n;
    phc_ca_info *v;
};

int phc__pair_list_take(phc_pair_list **out, phc_pair_info *v, size_t n, phc_errbuf *err)
{
    phc_pair_list *l = OPENSSL_zalloc(sizeof(*l));
    *out = NULL;
    if (!l) {
        OPENSSL_free(v);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    l->n = v ? n : 0;
    l->v = v;
    *out = l;
    return PHC_OK;
}

size_t phc_pair_list_count(const phc_pair_list *l)
{
    return l ? l->n : 0;
}

const phc_pair_info *phc_pair_list_get(const phc_pair_list *l, size_t i)
{
    return l && i < l->n ? &l->v[i] : NULL;
}

void phc_pair_list_free(phc_pair_list *l)
{
    if (!l)
        return;
    OPENSSL_free(l->v);
    OPENSSL_free(l);
}

int phc__ca_list_take(phc_ca_list **out, phc_ca_info *v, size_t n, phc_errbuf *err)
{
    phc_ca_list *l = OPENSSL_zalloc(sizeof(*l));
    *out = NULL;
    if (!l) {
        OPENSSL_free(v);
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    l->n = v ? n : 0;
    l->v = v;
    *out = l;
    return PHC_OK;
}

size_t phc_ca_list_count(const phc_ca_list *l)
{
    return l ? l->n : 0;
}

const phc_ca_info *phc_ca_list_get(const phc_ca_list *l, size_t i)
{
    return l && i < l->n ? &l->v[i] : NULL;
}

void phc_ca_list_free(phc_ca_list *l)
{
    if (!l)
        return;
    OPENSSL_free(l->v);
    OPENSSL_free(l);
}

void phc_pair_info_free(phc_pair_info *p)
{
    OPENSSL_free(p);
}
