/* The 429/503 retry as a library user chooses it (phc_client_opts.retry_max_attempts and
 * retry_max_wait_ms): one GET, its status and error printed, exit status the error class.
 * Usage: retry_driver CONFIG PATH MAX_ATTEMPTS MAX_WAIT_MS */
#include "driver.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: retry_driver CONFIG PATH MAX_ATTEMPTS MAX_WAIT_MS\n");
        return 2;
    }
    phc_client_opts opts = PHC_CLIENT_OPTS_INIT;
    opts.retry_max_attempts = atoi(argv[3]);
    opts.retry_max_wait_ms = (unsigned int)strtoul(argv[4], NULL, 10);
    int code = 0;
    phc_client *client = driver_client(argv[1], &opts, &code);
    if (!client)
        return code;
    phc_request req = PHC_REQUEST_INIT;
    req.path = argv[2];
    phc_response *resp = NULL;
    phc_errbuf err = {0};
    int rc = phc_client_request(client, &resp, &req, &err);
    printf("HTTP %ld\n", resp ? phc_response_status(resp) : 0L);
    if (rc != PHC_OK)
        fprintf(stderr, "phc: %s\n", err.msg);
    phc_response_free(resp);
    phc_client_free(client);
    phc_global_cleanup();
    return phc_err_exit_code(rc);
}
