/* Test driver for fork(): a client is made and used, then the process forks. The child's
 * use of the inherited client must fail with a clear error (never sign with the parent's
 * sessions); a new client made in the child works; the parent keeps working, with full
 * handshakes (token signatures) after the child has come and gone.
 * Usage: fork_driver CONFIG. Prints one line per step; exit 0 when every step behaved. */
#include <phconnect/phconnect.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int request(phc_client *c, phc_errbuf *err)
{
    phc_request req = {.version = PHC_REQUEST_VERSION,
                       .path = "/echo",
                       .flags = PHC_REQ_FRESH_CONNECTION | PHC_REQ_NO_SESSION_REUSE};
    phc_response *resp = NULL;
    int rc = phc_client_request(c, &resp, &req, err);
    phc_response_free(resp);
    return rc;
}

static phc_client *make(const char *path, phc_errbuf *err)
{
    phc_config *cfg = NULL;
    phc_client *c = NULL;
    if (phc_config_load(&cfg, path, err) == PHC_OK && phc_client_new(&c, cfg, NULL, err) != PHC_OK)
        c = NULL;
    phc_config_free(cfg);
    return c;
}

int main(int argc, char **argv)
{
    if (argc != 2 || phc_global_init() != PHC_OK)
        return 2;
    phc_errbuf err = {0};
    phc_client *c = make(argv[1], &err);
    if (!c || request(c, &err) != PHC_OK) {
        printf("parent before fork: %s\n", err.msg);
        return 1;
    }
    printf("parent before fork: ok\n");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        int rc = request(c, &err);
        printf("child with inherited client: exit %d: %s\n", phc_err_exit_code(rc), err.msg);
        bad |= rc != PHC_ERR_HSM || !strstr(err.msg, "fork");
        phc_client *mine = make(argv[1], &err);
        rc = mine ? request(mine, &err) : -1;
        printf("child with its own client: %s\n", rc == PHC_OK ? "ok" : err.msg);
        bad |= rc != PHC_OK;
        phc_client_free(mine);
        phc_client_free(c);
        fflush(stdout);
        _exit(bad);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int bad = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    for (int i = 0; i < 3; i++) {
        int rc = request(c, &err);
        printf("parent after the child: %s\n", rc == PHC_OK ? "ok" : err.msg);
        bad |= rc != PHC_OK;
    }
    phc_client_free(c);
    phc_global_cleanup();
    return bad;
}
