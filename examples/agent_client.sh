#!/bin/sh
# The Powerhub API through the local phconnect agent with stock curl: no PIN, no key, no CA
# file, no address pinning here (the agent does all of it).
#   agent_client.sh [SOCKET] [PATH]
# The host name in the URL only fills the Host header; the agent always talks to its
# configured url. An agent's own failure comes back with a Phc-Error header and a JSON body.
set -eu
SOCK=${1:-/run/phconnect/agent.sock}
API_PATH=${2:-/v2/asset/sites}
curl --silent --show-error --fail-with-body --unix-socket "$SOCK" "http://localhost$API_PATH"
echo
