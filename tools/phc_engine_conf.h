/* What phc bench borrows from phc engine-conf: how the stock tools name the client
 * certificate for a configuration. */
#ifndef PHC_ENGINE_CONF_H
#define PHC_ENGINE_CONF_H

#include <phconnect/phconnect.h>

/* The certificate for curl's --cert: the config's `cert` when set (a pkcs11: URI or a PEM
 * file; *is_file says which), else the token object beside the key (the key URI with
 * type=cert), where phconnect finds it too. Returns a malloc'd string, NULL when out of
 * memory or the config has no key. */
char *phc_engine_conf_cert_ref(const phc_config *cfg, int *is_file);

#endif
