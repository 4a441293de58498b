/* The words for how a tie on the very same notBefore and notAfter was broken (token.h,
 * phc_install_order), shared by install's warning and status's tie line; apart from
 * phc_admin.c so that its unit test links it alone. */
#include "phc_admin.h"

#include <stdio.h>

const char *phc_admin_tie_reason(char *buf, size_t len, const phc_pair_info *winner,
                                 const phc_pair_info *loser, const char *other)
{
    const char *fixed = "a fixed order of the two certificates (their DER encodings) decides";
    if (winner->install_seq >= 0 && loser->install_seq >= 0)
        snprintf(buf, len,
                 "it was installed later (the token's install-order record), and the later "
                 "installation wins");
    else if (winner->install_seq >= 0)
        snprintf(buf, len,
                 "it is in the token's install-order record and %s is not (installed before "
                 "phc kept the record, or by another tool), so it counts as the later "
                 "installation",
                 other);
    else if (winner->install_order == PHC_ORDER_UNREADABLE)
        snprintf(buf, len,
                 "the token's install-order record could not be read (it is a private object: "
                 "the session is not logged in), so %s",
                 fixed);
    else if (winner->install_order == PHC_ORDER_NONE)
        snprintf(buf, len,
                 "the token has no install-order record (no certificate was installed by a phc "
                 "that keeps one), so %s",
                 fixed);
    else
        snprintf(buf, len, "neither is in the token's install-order record, so %s", fixed);
    return buf;
}
