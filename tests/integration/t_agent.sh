#!/usr/bin/env bash
# The agent, end to end: a real agent on a real SoftHSM token in front of the mock Powerhub;
# local programs (curl --unix-socket, Python's http.client, phc request) use it without the
# PIN, the key, the CA or the addresses. What it forwards, what it drops, what it refuses
# (and never forwards), its socket, its own endpoints and its shutdown.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

make_token
start_mock mock
SOCK=$TMP/agent.sock
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"
write_config "$TMP/direct.cnf" "$MOCK_PORT"
printf '[phconnect]\nagent = unix:%s\n' "$SOCK" >"$TMP/client.cnf"
SERIAL=$(cert_serial "$TMP/client.pem")

start_agent agent "$TMP/a.cnf" || { not_ok "agent starts"; finish; }
ok "agent starts and listens on $SOCK"
check "socket mode is 0660 (never world-writable)" test "$(stat -c %a "$SOCK")" = 660
check "socket is a socket" test -S "$SOCK"

# --- forwarding ------------------------------------------------------------------------
"$PHC_BIN" --config "$TMP/direct.cnf" request /v2/asset/sites >"$TMP/direct.out"
acurl "$SOCK" -o "$TMP/curl.out" -w '%{http_code}' http://localhost/v2/asset/sites >"$TMP/code"
check "curl --unix-socket: 200" test "$(cat "$TMP/code")" = 200
check "curl --unix-socket: the same body as direct" cmp -s "$TMP/direct.out" "$TMP/curl.out"

expect 0 "" "phc request with a config holding only 'agent'" -- "$PHC_BIN" --config "$TMP/client.cnf" request /v2/asset/sites
check "phc request through the agent: the same output as direct" cmp -s "$TMP/direct.out" "$TMP/out"
expect 0 "" "phc request --agent unix:PATH (no config file at all)" -- "$PHC_BIN" --config "$TMP/none.cnf" request --agent "unix:$SOCK" /v2/asset/sites
check "--agent: same output" cmp -s "$TMP/direct.out" "$TMP/out"
expect 0 "" "PHC_AGENT=unix:PATH" -- env PHC_AGENT="unix:$SOCK" "$PHC_BIN" --config "$TMP/none.cnf" request /v2/asset/sites
check "PHC_AGENT: same output" cmp -s "$TMP/direct.out" "$TMP/out"
expect 0 "" "phc request -i through the agent" -- "$PHC_BIN" --config "$TMP/client.cnf" request -i /v2/asset/sites
check "-i: status line and headers first" grep -q '^HTTP/1.1 200' "$TMP/out"

# Same exit code and message as direct mode for an upstream non-2xx.
expect 1 "server answered HTTP 404 for GET /nope" "upstream 404 direct" -- "$PHC_BIN" --config "$TMP/direct.cnf" request /nope
cp "$TMP/err" "$TMP/direct404.err"
expect 1 "server answered HTTP 404 for GET /nope" "upstream 404 through the agent: exit 1" -- "$PHC_BIN" --config "$TMP/client.cnf" request /nope
check "upstream 404: the same message as direct" cmp -s "$TMP/direct404.err" "$TMP/err"

# Method, path + query, body and end-to-end headers reach the server; hop-by-hop ones, the
# agent's own and the client's Host do not.
acurl "$SOCK" -X PUT "http://localhost/echo?a=b%20c&d=1" -d 'the body' \
    -H 'Connection: keep-alive, X-Hop' -H 'X-Hop: 1' -H 'X-Keep: 2' -H 'Keep-Alive: timeout=5' \
    -H 'TE: trailers' -H 'Proxy-Authorization: Basic c2VjcmV0' -H 'Upgrade: websocket' \
    -H 'Phc-Error: fake' -H 'Host: evil.example' -H 'Trailer: X-T' >"$TMP/echo.json"
check "method forwarded" test "$(json_field "['method']" <"$TMP/echo.json")" = PUT
check "path and query forwarded as sent" test "$(json_field "['path']" <"$TMP/echo.json")" = "/echo?a=b%20c&d=1"
check "body forwarded" test "$(json_field "['body']" <"$TMP/echo.json")" = "the body"
check "end-to-end header forwarded" test "$(json_field "['headers'].get('x-keep')" <"$TMP/echo.json")" = 2
for h in x-hop keep-alive te proxy-authorization upgrade phc-error trailer; do
    check "hop-by-hop/own header '$h' not forwarded" test "$(json_field "['headers'].get('$h')" <"$TMP/echo.json")" = None
done
check "Host header cannot choose the upstream" test "$(json_field "['headers']['host']" <"$TMP/echo.json")" = "api.powerhub.test:$MOCK_PORT"
check "the server saw the token's client certificate" test "$(json_field "['client_serial']" <"$TMP/echo.json")" = "$SERIAL"

# --- never an open proxy ----------------------------------------------------------------
before=$(wc -l <"$TMP/mock.log")
acurl "$SOCK" -i --request-target "http://evil.example/echo" http://localhost/ >"$TMP/abs.out"
check "absolute-form target: 400" grep -q '^HTTP/1.1 400' "$TMP/abs.out"
check "absolute-form target: Phc-Error: policy" grep -qi '^Phc-Error: policy' "$TMP/abs.out"
check "absolute-form target: JSON message" grep -q '"message": "the agent takes origin-form paths only' "$TMP/abs.out"
acurl "$SOCK" -i -X CONNECT --request-target "evil.example:443" http://localhost/ >"$TMP/connect.out"
check "CONNECT: 405 Phc-Error: policy" bash -c "grep -q '^HTTP/1.1 405' '$TMP/connect.out' && grep -qi '^Phc-Error: policy' '$TMP/connect.out'"
acurl "$SOCK" -i --request-target "*" -X OPTIONS http://localhost/ >"$TMP/star.out"
check "OPTIONS *: 400" grep -q '^HTTP/1.1 400' "$TMP/star.out"
acurl "$SOCK" -i http://localhost/_phc/nothing >"$TMP/phc404.out"
check "/_phc/ paths are the agent's: 404, not forwarded" grep -q '^HTTP/1.1 404' "$TMP/phc404.out"
check "none of these reached the server" test "$(wc -l <"$TMP/mock.log")" -eq "$before"

# --- the agent's own endpoints ----------------------------------------------------------
acurl "$SOCK" -o "$TMP/health.json" -w '%{http_code}' http://localhost/_phc/health >"$TMP/code"
check "health: 200" test "$(cat "$TMP/code")" = 200
check "health: the active certificate serial" test "$(json_field "['certificate_serial']" <"$TMP/health.json")" = "$SERIAL"
check "health: days left" test "$(json_field "['certificate_days_left']" <"$TMP/health.json")" -ge 360
acurl "$SOCK" http://localhost/_phc/metrics >"$TMP/metrics.txt"
check "metrics: requests by status class" grep -qE '^phc_agent_requests_total\{code="2xx"\} [1-9]' "$TMP/metrics.txt"
check "metrics: upstream latency histogram" grep -q '^phc_agent_upstream_duration_seconds_bucket{le="+Inf"}' "$TMP/metrics.txt"
check "metrics: full handshakes" grep -qE '^phc_tls_handshakes_total\{kind="full"\} [1-9]' "$TMP/metrics.txt"
check "metrics: token signatures" grep -qE '^phc_token_signatures_total [1-9]' "$TMP/metrics.txt"
check "metrics: reopen count" grep -qE '^phc_token_reopens_total 0' "$TMP/metrics.txt"
check "metrics: certificate days left" grep -qE "^phc_client_certificate_days_left\{serial=\"$SERIAL\"\} 3[0-9][0-9]" "$TMP/metrics.txt"
check "metrics: connections open" grep -qE '^phc_agent_connections_open [0-9]' "$TMP/metrics.txt"

# --- limits -----------------------------------------------------------------------------
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' a >"$TMP/big"
acurl "$SOCK" -i -X POST --data-binary @"$TMP/big" http://localhost/echo >"$TMP/big.out"
check "body over agent_max_request_bytes: 413 Phc-Error: policy" bash -c "grep -q '^HTTP/1.1 413' '$TMP/big.out' && grep -qi '^Phc-Error: policy' '$TMP/big.out'"
expect 6 "request body of 1048577 bytes is over agent_max_request_bytes (1048576)" "phc request -d @big through the agent: exit 6" -- "$PHC_BIN" --config "$TMP/client.cnf" request -d @"$TMP/big" /echo
head -c $((1024 * 1024)) /dev/zero | tr '\0' a >"$TMP/max"
expect 0 "" "a body of exactly agent_max_request_bytes is forwarded" -- "$PHC_BIN" --config "$TMP/client.cnf" request -d @"$TMP/max" /echo

# --- secrets never in the access log -----------------------------------------------------
acurl "$SOCK" -H 'Authorization: Bearer S3cr3tT0ken-xyz' -H 'X-Api-Key: K3y-abc' "http://localhost/echo?token=Q-s3cret" >/dev/null
wait_for "$TMP/agent.err" "GET /echo\?\.\.\. 200" 5
check "access log: uid, pid, method, path, status, bytes, ms, conn, cert" grep -qE "^phc: agent: uid=$(id -u) pid=[0-9]+ GET /v2/asset/sites 200 [0-9]+B [0-9.]+ms conn=(new|reused) tls=(full|resumed|-) cert=$SERIAL\$" "$TMP/agent.err"
check "access log: no header value, no query" bash -c "! grep -qE 'S3cr3t|K3y-abc|Q-s3cret' '$TMP/agent.err'"
check "access log: the agent's own failures carry their class" grep -qE 'GET http://evil.example/echo 400 .* error=policy' "$TMP/agent.err"

# --- the examples -------------------------------------------------------------------------
expect 0 "" "examples/agent_client.py (http.client over AF_UNIX)" -- python3 "$PHC_SRC/examples/agent_client.py" --socket "$SOCK" --count 3
check "python example prints the sites" grep -q 'STE-0001' "$TMP/out"
expect 0 "" "examples/agent_client.sh (curl --unix-socket)" -- sh "$PHC_SRC/examples/agent_client.sh" "$SOCK"
check "shell example prints the body" grep -q 'STE-0002' "$TMP/out"

# --- the client side's refusals ---------------------------------------------------------
expect 7 "cannot reach the phconnect agent at $TMP/none.sock" "unreachable agent: exit 7 naming the socket" -- "$PHC_BIN" --config "$TMP/direct.cnf" request --agent "unix:$TMP/none.sock" /v2/asset/sites
check "unreachable agent: no fallback to direct mode (nothing on stdout)" test ! -s "$TMP/out"
expect 2 "--agent tcp:127.0.0.1:1: must be unix:PATH" "--agent must be a Unix socket" -- "$PHC_BIN" request --agent tcp:127.0.0.1:1 /v2/asset/sites
expect 2 "PHC_AGENT relative.sock: must be unix:PATH" "PHC_AGENT is checked too" -- env PHC_AGENT=relative.sock "$PHC_BIN" request /v2/asset/sites

# --- the socket: live one refused, listen addresses -------------------------------------
expect 2 "another agent is already listening on $SOCK" "a second agent on a live socket is refused" -- timeout 20 "$PHC_BIN" --config "$TMP/a.cnf" agent
check "the live agent still serves" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites)" = 200
expect 2 "--listen tcp:0.0.0.0:8080: a tcp: address must be loopback" "--listen on a non-loopback address" -- timeout 20 "$PHC_BIN" --config "$TMP/a.cnf" agent --listen tcp:0.0.0.0:8080
agent_config "$TMP/wide.cnf" "$MOCK_PORT" "$SOCK"
set_key "$TMP/wide.cnf" agent_listen tcp:10.1.2.3:8080
expect 2 "key 'agent_listen': a tcp: address must be loopback" "agent_listen on a non-loopback address: config error" -- timeout 20 "$PHC_BIN" --config "$TMP/wide.cnf" agent
check "config error names the line" grep -q "wide.cnf line [0-9]*: key 'agent_listen'" "$TMP/err"

# --- SIGTERM, stale socket ---------------------------------------------------------------
stop_agent "$AGENT_PID"
check "SIGTERM: exit 0 ($AGENT_RC)" test "$AGENT_RC" = 0
check "SIGTERM: socket removed" test ! -e "$SOCK"
start_agent agent2 "$TMP/a.cnf" || not_ok "agent starts again"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
check "a killed agent leaves its socket behind" test -S "$SOCK"
start_agent agent3 "$TMP/a.cnf" || not_ok "agent starts over a stale socket"
check "the stale socket is replaced, with a message" grep -q "replaced the stale socket $SOCK" "$TMP/agent3.err"
check "the new agent serves" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites)" = 200
stop_agent "$AGENT_PID"
echo notasocket >"$SOCK"
expect 2 "$SOCK exists and is not a socket; not replacing it" "a regular file in the socket's place is left alone" -- timeout 20 "$PHC_BIN" --config "$TMP/a.cnf" agent
rm -f "$SOCK"

# --- loopback TCP -------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_agent tcp "$TMP/a.cnf" --listen "tcp:127.0.0.1:$PORT" || not_ok "agent on loopback TCP"
check "loopback TCP: curl gets the sites" test "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/asset/sites")" = 200
check "loopback TCP: no peer identity in the log" grep -q 'uid=- pid=- GET /v2/asset/sites 200' "$TMP/tcp.err"
stop_agent "$AGENT_PID"

# --- agent_paths ----------------------------------------------------------------------------
agent_config "$TMP/paths.cnf" "$MOCK_PORT" "$SOCK" "agent_paths = GET /v2/asset/, POST /echo"
start_agent paths "$TMP/paths.cnf" || not_ok "agent with agent_paths"
before=$(wc -l <"$TMP/mock.log")
check "agent_paths: GET /v2/asset/sites allowed" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites)" = 200
acurl "$SOCK" -i http://localhost/echo >"$TMP/p1.out"
check "agent_paths: GET /echo refused with 403 Phc-Error: policy" bash -c "grep -q '^HTTP/1.1 403' '$TMP/p1.out' && grep -qi '^Phc-Error: policy' '$TMP/p1.out'"
expect 6 "GET /echo is not in agent_paths of this agent" "agent_paths refusal through phc request: exit 6" -- "$PHC_BIN" --config "$TMP/client.cnf" request /echo
acurl "$SOCK" -i --path-as-is "http://localhost/v2/asset/../../echo" >"$TMP/p2.out"
check "agent_paths: a dot segment cannot climb out of a prefix" grep -q '^HTTP/1.1 403' "$TMP/p2.out"
acurl "$SOCK" -i -X DELETE http://localhost/v2/asset/sites >"$TMP/p3.out"
check "agent_paths: the method counts too" grep -q '^HTTP/1.1 403' "$TMP/p3.out"
check "agent_paths: POST /echo allowed" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' -d x http://localhost/echo)" = 200
check "refused requests never reached the server (2 forwarded)" test "$(($(wc -l <"$TMP/mock.log") - before))" -eq 2
stop_agent "$AGENT_PID"

finish
