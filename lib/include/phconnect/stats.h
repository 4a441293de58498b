/* Counters and identity facts of a running client, for long-running programs (the agent's
 * /_phc/health and /_phc/metrics, monitoring). Included by phconnect/phconnect.h. */
#ifndef PHCONNECT_STATS_H
#define PHCONNECT_STATS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Allocated by the caller and filled by the library: like the options it carries a version,
 * set by PHC_STATS_INIT (or phc_stats_init), which tells the library how much of it the
 * program knows. */
typedef struct phc_stats {
    unsigned int version;     /* PHC_STATS_VERSION */
    int token_ok;             /* 1: the token is open and a key/certificate pair is selected */
    char cert_serial[72];     /* serial of the client certificate in use (uppercase hex), or "" */
    long long cert_not_after; /* its notAfter as Unix time, 0 without one */
    /* Process-wide totals since the library was loaded (all clients of the process). */
    unsigned long long requests;           /* transfers that reached the server */
    unsigned long long connections_reused; /* of those, sent on a kept-alive connection */
    unsigned long long handshakes_full;    /* new connections with a full TLS handshake */
    unsigned long long handshakes_resumed; /* new connections that resumed a TLS session */
    unsigned long long token_signatures;   /* private-key operations asked of the token */
    unsigned long long token_reopens;      /* times a lost token was opened again */
} phc_stats;

#define PHC_STATS_VERSION 1
#ifdef __cplusplus
#define PHC_STATS_INIT                                                                             \
    {                                                                                              \
        PHC_STATS_VERSION                                                                          \
    }
#else
#define PHC_STATS_INIT                                                                             \
    {                                                                                              \
        .version = PHC_STATS_VERSION                                                               \
    }
#endif

/* Sets *out to PHC_STATS_INIT for version (PHC_STATS_VERSION); PHC_ERR_CONFIG when the library
 * does not know version (out is then left alone). */
PHC_API PHC_WUR int phc_stats_init(phc_stats *out, unsigned int version);

/* Fills *out (its version set as by PHC_STATS_INIT: an unknown one is PHC_ERR_CONFIG). Never
 * touches the token or the network (a cheap call for health checks). client and out must not be
 * NULL. */
PHC_API PHC_WUR int phc_client_stats(phc_client *client, phc_stats *out, phc_errbuf *err);

/* How the calling thread's most recent phc_client_request reached the server: *reused = 1
 * when it went over a kept-alive connection, *resumed = 1 when its new connection resumed a
 * TLS session. Both -1 when this thread's last request never reached the server. Either
 * pointer may be NULL. Set when the request's last transfer ends: requests that ran on this
 * thread during its waits (phconnect/wait.h) do not change what it says after it returns. */
PHC_API void phc_client_last_connection(int *reused, int *resumed);

#ifdef __cplusplus
}
#endif

#endif
