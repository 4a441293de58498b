/* The agent's keys (agent, agent_listen, agent_allow_users, agent_group, agent_paths,
 * agent_max_clients, agent_max_request_bytes): the library only checks their syntax, so a typo
 * is a config error when the file is loaded; the phc agent and phc request read them back
 * with phc_config_get. */
#ifndef PHC_CONFIG_AGENT_H
#define PHC_CONFIG_AGENT_H

#include <stddef.h>

/* 0 when value is well-formed for key, else -1 with the reason (one line) in why. */
int phc__config_agent_check(const char *key, const char *value, char *why, size_t len);

#endif
