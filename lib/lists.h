/* The opaque lists token.h returns instead of arrays (phc_pair_list, phc_ca_list): callers
 * reach the elements only through the library, so the element structs can grow at their end
 * without breaking a program built against an older header. */
#ifndef PHC_LISTS_H
#define PHC_LISTS_H

#include <phconnect/phconnect.h>

/* Wraps the array v of n elements (allocated with OPENSSL_*alloc, may be NULL when n is 0)
 * into a new list at *out, taking v in every case (freed on failure). PHC_ERR_INTERNAL when
 * out of memory. */
PHC_WUR int phc__pair_list_take(phc_pair_list **out, phc_pair_info *v, size_t n, phc_errbuf *err);
PHC_WUR int phc__ca_list_take(phc_ca_list **out, phc_ca_info *v, size_t n, phc_errbuf *err);

#endif
