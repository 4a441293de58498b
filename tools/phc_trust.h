/* The trust self-test as phc runs it (check --trust, check, status). Public API only. */
#ifndef PHC_TRUST_TOOL_H
#define PHC_TRUST_TOOL_H

#include "phc.h"

/* Runs phc_trust_check for cfg with a careless client's trust prepared for it: a private
 * temporary directory for the decoy CA, SSL_CERT_FILE and SSL_CERT_DIR pointed at it for the
 * length of the test (the library never touches the environment; this short-lived process
 * may), restored and removed afterwards. chain: NULL or a PEM chain file. Returns PHC_OK with
 * *out (phc_trust_report_free), or the library's error in err. */
int phc_tool_trust_check(const phc_config *cfg, const char *chain, long warn_days, long crit_days,
                         phc_trust_report **out, phc_errbuf *err);

#endif
