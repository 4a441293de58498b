/* The words install and status use for how a tie on the very same notBefore and notAfter was
 * broken (tools/phc_tie.c): one sentence per case of the rule (token.h, phc_install_order),
 * exactly - both recorded, only the winner recorded, and neither recorded with the record
 * read, absent, or unreadable (a session that is not logged in: SoftHSM always asks for a
 * login, so this case is reached here rather than from a token). */
#include "phc_admin.h"
#include "testutil.h"

static phc_pair_info pair(long seq, phc_install_order order)
{
    phc_pair_info p;
    memset(&p, 0, sizeof(p));
    p.install_seq = seq;
    p.install_order = order;
    return p;
}

static void check_reason(long ws, long ls, phc_install_order order, const char *want)
{
    char buf[400];
    phc_pair_info w = pair(ws, order), l = pair(ls, order);
    const char *got = phc_admin_tie_reason(buf, sizeof(buf), &w, &l, "the other");
    CHECK(got == buf && strcmp(got, want) == 0);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "  got:  %s\n  want: %s\n", got, want);
}

int main(void)
{
    check_reason(3, 1, PHC_ORDER_RECORDED,
                 "it was installed later (the token's install-order record), and the later "
                 "installation wins");
    check_reason(0, -1, PHC_ORDER_RECORDED,
                 "it is in the token's install-order record and the other is not (installed "
                 "before phc kept the record, or by another tool), so it counts as the later "
                 "installation");
    check_reason(-1, -1, PHC_ORDER_RECORDED,
                 "neither is in the token's install-order record, so a fixed order of the two "
                 "certificates (their DER encodings) decides");
    check_reason(-1, -1, PHC_ORDER_NONE,
                 "the token has no install-order record (no certificate was installed by a phc "
                 "that keeps one), so a fixed order of the two certificates (their DER "
                 "encodings) decides");
    check_reason(-1, -1, PHC_ORDER_UNREADABLE,
                 "the token's install-order record could not be read (it is a private object: "
                 "the session is not logged in), so a fixed order of the two certificates "
                 "(their DER encodings) decides");
    /* a short buffer is cut, never overrun */
    char small[16];
    phc_pair_info w = pair(1, PHC_ORDER_RECORDED), l = pair(0, PHC_ORDER_RECORDED);
    CHECK(strlen(phc_admin_tie_reason(small, sizeof(small), &w, &l, "x")) == sizeof(small) - 1);
    TEST_MAIN_END();
}
