/* For the C test drivers: a client made from a config file the way an application makes
 * one. */
#ifndef PHC_TEST_DRIVER_H
#define PHC_TEST_DRIVER_H

#include <phconnect/phconnect.h>

#include <stdio.h>

/* phc_global_init, then config and client. On failure prints "phc: <message>", undoes the
 * init and returns NULL with *exit_code set to the failure's exit class. opts may be NULL. */
static phc_client *driver_client(const char *config, const phc_client_opts *opts, int *exit_code)
{
    phc_errbuf err = {0};
    phc_config *cfg = NULL;
    phc_client *client = NULL;
    if (phc_global_init() != PHC_OK) {
        *exit_code = 9;
        return NULL;
    }
    int rc = phc_config_load(&cfg, config, &err);
    if (rc == PHC_OK)
        rc = phc_client_new(&client, cfg, opts, &err);
    phc_config_free(cfg);
    if (rc != PHC_OK) {
        fprintf(stderr, "phc: %s\n", err.msg);
        phc_global_cleanup();
        *exit_code = phc_err_exit_code(rc);
        return NULL;
    }
    return client;
}

#endif
