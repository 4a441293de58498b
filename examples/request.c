/* The whole API in one sitting: load the config, make a client, make a request.
 * Usage: phc_example CONFIG PATH */
#include <phconnect/phconnect.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONFIG PATH\n", argv[0]);
        return 2;
    }
    phc_errbuf err = {0};
    phc_config *cfg = NULL;
    phc_client *client = NULL;
    phc_response *resp = NULL;
    int rc = phc_global_init();
    if (rc == PHC_OK)
        rc = phc_config_load(&cfg, argv[1], &err);
    /* Structs passed in start from their _INIT (the defaults); set the fields wanted after it. */
    phc_client_opts opts = PHC_CLIENT_OPTS_INIT;
    opts.retry_max_wait_ms = 10000; /* a 429/503 retry waits 10 s at most in all */
    if (rc == PHC_OK)
        rc = phc_client_new(&client, cfg, &opts, &err);
    if (rc == PHC_OK) {
        phc_request req = PHC_REQUEST_INIT;
        req.path = argv[2];
        rc = phc_client_request(client, &resp, &req, &err);
    }
    if (resp) {
        size_t len = 0;
        const char *body = phc_response_body(resp, &len);
        printf("HTTP %ld\n%.*s\n", phc_response_status(resp), (int)len, body);
    }
    if (rc != PHC_OK)
        fprintf(stderr, "%s error: %s\n", phc_err_name(rc), err.msg);
    phc_response_free(resp);
    phc_client_free(client);
    phc_config_free(cfg);
    phc_global_cleanup();
    return phc_err_exit_code(rc);
}
