#!/usr/bin/env bash
# The agent with client credentials: it fetches and caches the bearer token and injects it;
# a client's own Authorization header is dropped (the library would refuse a request carrying
# one), the token is fetched once for many clients, neither the secret nor the token reaches
# the agent's log, and a refused credential is Phc-Error: auth / exit 8 as in direct mode.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/auth_lib.sh"
. "$(dirname "$0")/agent_lib.sh"

start_creds_mock mock
SOCK=$TMP/agent.sock
write_creds_config "$TMP/a.cnf" "$MOCK_PORT" "agent_listen = unix:$SOCK" "reload_interval = 0"
start_agent agent "$TMP/a.cnf" || { not_ok "agent starts with client credentials"; finish; }

acurl "$SOCK" -H 'Authorization: Bearer mine' http://localhost/echo >"$TMP/echo.json"
check "the server saw the agent's bearer token, not the client's" \
    grep -qF "\"authorization\":\"Bearer $(tail -1 "$TMP/tokens")\"" "$TMP/echo.json"
check "the client's Authorization header was dropped" bash -c "! grep -q 'Bearer mine' '$TMP/echo.json'"
for i in 1 2 3 4; do
    acurl "$SOCK" -o /dev/null -w '%{http_code}\n' "http://localhost/v2/asset/sites?[1-5]" >"$TMP/c.$i" &
    CURLS+=($!)
done
for p in "${CURLS[@]}"; do wait "$p"; done
check "4 clients x 5 requests: all 200" test "$(cat "$TMP"/c.* | grep -c '^200$')" -eq 20
check "one token request for all of them (the agent's cache)" test "$(count_log mock 'POST /v1/auth/token')" -eq 1
expect 0 "" "phc request through the agent: no secret needed on the client side" -- env -u PHC_TEST_SECRET "$PHC_BIN" request --agent "unix:$SOCK" /v2/asset/sites
stop_agent "$AGENT_PID"
cat "$TMP/agent.err" >>"$LOGS"
check "neither the secret nor a token in the agent's log" \
    bash -c '! grep -qF -e "$1" -f "$2" "$3"' _ "$SECRET" "$TMP/tokens" "$TMP/agent.err"

# A credential the server refuses: the agent's own failure, class auth; exit 8 as direct.
write_creds_config "$TMP/x.cnf" "$MOCK_PORT" "agent_listen = unix:$SOCK" "reload_interval = 0"
set_key "$TMP/x.cnf" client_id cid-exp
set_key "$TMP/x.cnf" client_secret env:PHC_TEST_EXP
export PHC_TEST_EXP=expired-9fT3xQ
start_agent exp "$TMP/x.cnf" || not_ok "agent starts with an expired credential"
acurl "$SOCK" -i http://localhost/v2/asset/sites >"$TMP/exp.out"
check "refused credential: 502 Phc-Error: auth" bash -c "grep -q '^HTTP/1.1 502' '$TMP/exp.out' && grep -qi '^Phc-Error: auth' '$TMP/exp.out'"
expect 8 "" "refused credential direct: exit 8" -- "$PHC_BIN" --config "$TMP/x.cnf" request /v2/asset/sites
cp "$TMP/err" "$TMP/direct.err"
expect 8 "" "refused credential through the agent: exit 8" -- "$PHC_BIN" request --agent "unix:$SOCK" /v2/asset/sites
check "refused credential: the same message as direct" cmp -s "$TMP/direct.err" "$TMP/err"
stop_agent "$AGENT_PID"
check "no sanitizer report in the agent's stderr" clean_reports "$TMP"/*.err
finish
