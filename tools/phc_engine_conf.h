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

/* The key and certificate the stock tools are to use, as a file that phc engine-conf rendered
 * names them in its header ("# Key:" and "# Cert:" lines): URIs with the active pair's id, so
 * that they select one object after a rotation too. *key and *cert are malloc'd. 0, or -1
 * when the file cannot be read or lacks either line. */
int phc_engine_conf_uris(const char *path, char **key, char **cert);

#endif
