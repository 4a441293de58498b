#!/usr/bin/env bash
# The agent on a remoted token (issue 11): p11-kit's server exports the SoftHSM token and the
# agent loads p11-kit's client module, the open stand-in for a network HSM's client library.
# The server killed mid-run (the appliance lost) is, for a request that needs the token, exit 3
# through the agent naming the module, and the agent keeps serving what needs no token; the
# server restarted on the same address is used again by the running agent (same process, no
# restart, no SIGHUP).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

p11remote_client

make_token
check "p11-kit server exports the token" p11remote_start "$TMP/p11"

start_mock mock
MOCK1_PORT=$MOCK_PORT
MOCK1_PID=${T_PIDS[-1]}
SOCK=$TMP/agent.sock
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"
set_key "$TMP/a.cnf" pkcs11_module "$CLIENT_MODULE"
printf '[phconnect]\nagent = unix:%s\n' "$SOCK" >"$TMP/client.cnf"
start_agent agent "$TMP/a.cnf" || not_ok "agent starts on the remoted token"
APID=$AGENT_PID

expect 0 "" "a request through the agent on the remoted token" -- \
    agent_bounded 60 "$PHC_BIN" --config "$TMP/client.cnf" request /echo
check "the server saw the token's client certificate" grep -q 'phc-test-client' "$TMP/out"

# The appliance goes away. A kept-alive connection needs no signature, so the upstream is
# restarted too (its TLS sessions unknown to the new one): the next request needs a full
# handshake, which is where the token is needed.
check "the p11-kit server is killed" bash "$FIX/p11remote.sh" kill "$TMP/p11"
kill "$MOCK1_PID" 2>/dev/null
wait "$MOCK1_PID" 2>/dev/null
start_mock mock2 --port "$MOCK1_PORT"
expect 3 "PKCS#11 module '$CLIENT_MODULE'" "server gone: exit 3 through the agent, naming the module" -- \
    agent_bounded 60 "$PHC_BIN" --config "$TMP/client.cnf" request /echo
acurl "$SOCK" -i http://localhost/v2/asset/sites >"$TMP/hsm.out"
check "server gone: the agent answers 503 Phc-Error: hsm" \
    bash -c "grep -q '^HTTP/1.1 503' '$TMP/hsm.out' && grep -qi '^Phc-Error: hsm' '$TMP/hsm.out'"
check "server gone: the agent still runs (pid $APID)" kill -0 "$APID"
check "server gone: the agent still answers its own paths" \
    test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/_phc/metrics)" = 200

# Back on the same address: the running agent uses it again.
check "the p11-kit server is restarted on the same socket" p11remote_start "$TMP/p11"
ok_again=0
for _ in $(seq 1 100); do
    if agent_bounded 60 "$PHC_BIN" --config "$TMP/client.cnf" request /echo >"$TMP/again.out" 2>"$TMP/again.err"; then
        ok_again=1
        break
    fi
    sleep 0.2
done
check "server back: requests through the same agent succeed again" test $ok_again = 1
check "... with the token's client certificate" grep -q 'phc-test-client' "$TMP/again.out"
check "server back: the agent was not restarted (pid $APID)" kill -0 "$APID"
acurl "$SOCK" http://localhost/_phc/metrics >"$TMP/m.txt"
check "metrics count the token reopen" \
    awk '$1 == "phc_token_reopens_total" { found = 1; exit !($2 >= 1) } END { exit !found }' "$TMP/m.txt"

stop_agent "$APID"
check "SIGTERM: the agent exits 0" test "$AGENT_RC" -eq 0
check "no sanitizer report in the agent's log" clean_reports "$TMP/agent.err"
p11remote_stop "$TMP/p11" >/dev/null 2>&1
finish
