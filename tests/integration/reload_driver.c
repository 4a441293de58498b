/* Test driver for reloads driven step by step: one client, commands on stdin, one answer line
 * each on stdout, so a test can change files between steps.
 *   req PATH    one request (keep-alive: the connection stays in the client's pool)
 *               -> "req <exit class> <status> <message or client serial>"
 *   post FLAGS PATH   a POST with a small body and PHC_REQ_* FLAGS (a number) -> as req
 *   reload      phc_client_reload -> "reload <exit class> <changed> <message>"
 * Usage: reload_driver CONFIG < commands */
#include <phconnect/phconnect.h>

#include "driver.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG < commands\n", argv[0]);
        return 2;
    }
    int code = 0;
    phc_client *client = driver_client(argv[1], NULL, &code);
    if (!client)
        return code;
    char line[512];
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        phc_errbuf err = {0};
        unsigned flags = 0;
        int off = 0;
        int post = sscanf(line, "post %u %n", &flags, &off) == 1 && off > 0;
        if (post || strncmp(line, "req ", 4) == 0) {
            phc_request req = {.version = PHC_REQUEST_VERSION,
                               .path = post ? line + off : line + 4};
            if (post) {
                req.method = "POST";
                req.body = "{\"asset\":\"STE-0001\"}";
                req.body_len = strlen(req.body);
                req.flags = flags;
            }
            phc_response *resp = NULL;
            int rc = phc_client_request(client, &resp, &req, &err);
            char serial[80] = "";
            const char *body = resp ? phc_response_body(resp, NULL) : NULL;
            const char *p = body ? strstr(body, "\"client_serial\":\"") : NULL;
            if (p)
                sscanf(p + 17, "%79[0-9A-F]", serial);
            printf("req %d %ld %s\n", phc_err_exit_code(rc), resp ? phc_response_status(resp) : 0,
                   rc == PHC_OK ? serial : err.msg);
            phc_response_free(resp);
        } else if (strcmp(line, "reload") == 0) {
            int changed = 0;
            int rc = phc_client_reload(client, &changed, &err);
            printf("reload %d %d %s\n", phc_err_exit_code(rc), changed, err.msg);
        } else {
            printf("? %s\n", line);
        }
        fflush(stdout);
    }
    phc_client_free(client);
    phc_global_cleanup();
    return 0;
}
