#!/usr/bin/env bash
# Upstream faults through the agent map to the agent's Phc-Error classes and to the same
# exit codes and messages as direct mode: a server certificate from another CA (5), an
# upstream that is down (7), a stalled one (504, 7), the token removed (3, then recovery
# without restarting the agent). Then rotation: 8 clients keep requesting while a new pair is
# installed and SIGHUP (and, in a second agent, the periodic reload_interval) switches to it:
# 0 failed requests, and the server sees only the new serial afterwards.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

make_token
SOCK=$TMP/agent.sock
printf '[phconnect]\nagent = unix:%s\n' "$SOCK" >"$TMP/client.cnf"

# same_as_direct CODE FRAGMENT WHAT PATH: direct and through the agent, same exit code and
# the same message.
same_as_direct() {
    local code=$1 frag=$2 what=$3 path=$4
    expect "$code" "$frag" "$what: direct" -- timeout 30 "$PHC_BIN" --config "$TMP/a.cnf" request "$path"
    cp "$TMP/err" "$TMP/direct.err"
    expect "$code" "$frag" "$what: through the agent" -- timeout 30 "$PHC_BIN" --config "$TMP/client.cnf" request "$path"
    # curl's own text carries the time it took ("after 0 ms"), which differs between any
    # two runs under load: compared without it.
    check "$what: the same message as direct" \
        cmp -s <(sed -E 's/after [0-9]+ ms/after N ms/' "$TMP/direct.err") \
        <(sed -E 's/after [0-9]+ ms/after N ms/' "$TMP/err")
}
phc_error_is() { # phc_error_is STATUS CLASS WHAT
    acurl "$SOCK" -i http://localhost/v2/asset/sites >"$TMP/fault.out"
    check "$3: $1 Phc-Error: $2" bash -c "grep -q '^HTTP/1.1 $1' '$TMP/fault.out' && grep -qi '^Phc-Error: $2' '$TMP/fault.out'"
    check "$3: JSON body with the class" grep -q "{\"error\": \"$2\", \"message\": \"" "$TMP/fault.out"
}

# --- a server certificate from another CA --------------------------------------------------
start_mock other --cert "$PHC_PKI/server-other.pem" --key "$PHC_PKI/server-other.key"
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"
start_agent other "$TMP/a.cnf" || { not_ok "agent starts"; finish; }
phc_error_is 502 trust "server from another CA"
same_as_direct 5 "issued by 'CN=Public Test CA" "server from another CA" /v2/asset/sites
check "the other server saw no request" test ! -s "$TMP/other.log"
stop_agent "$AGENT_PID"

# --- upstream down ------------------------------------------------------------------------
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
agent_config "$TMP/a.cnf" "$DEAD" "$SOCK"
start_agent down "$TMP/a.cnf" || not_ok "agent starts with its upstream down"
phc_error_is 502 network "upstream down"
same_as_direct 7 "127.0.0.1" "upstream down" /v2/asset/sites
stop_agent "$AGENT_PID"

# --- a stalled upstream: 504 ----------------------------------------------------------------
start_mock stall --fault stall
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK" "timeout = 2"
start_agent stall "$TMP/a.cnf" || not_ok "agent starts (stalled upstream)"
phc_error_is 504 network "stalled upstream"
expect 7 "timed out" "stalled upstream through the agent: exit 7" -- timeout 30 "$PHC_BIN" --config "$TMP/client.cnf" request /v2/asset/sites
stop_agent "$AGENT_PID"

# --- the token removed, then back -------------------------------------------------------------
start_mock mock
MOCK1_PORT=$MOCK_PORT
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"
start_agent tok "$TMP/a.cnf" || not_ok "agent starts (token test)"
expect 0 "" "before: a request through the agent" -- agent_bounded 60 "$PHC_BIN" --config "$TMP/client.cnf" request /v2/asset/sites
mv "$TMP/tok/tokens" "$TMP/tok/tokens.away"
mkdir "$TMP/tok/tokens"
# Kept-alive connections need no signature; a new server (its sessions unknown) forces a
# full handshake, which is where the token is needed.
kill "${T_PIDS[-2]}" 2>/dev/null
wait "${T_PIDS[-2]}" 2>/dev/null
start_mock mock2 --port "$MOCK1_PORT"
expect 3 "phc-test" "token removed: exit 3 naming the token" -- agent_bounded 60 "$PHC_BIN" --config "$TMP/client.cnf" request /v2/asset/sites
acurl "$SOCK" -i http://localhost/v2/asset/sites >"$TMP/hsm.out"
check "token removed: 503 Phc-Error: hsm" bash -c "grep -q '^HTTP/1.1 503' '$TMP/hsm.out' && grep -qi '^Phc-Error: hsm' '$TMP/hsm.out'"
acurl "$SOCK" -o "$TMP/health.json" -w '%{http_code}' http://localhost/_phc/health >"$TMP/code"
check "token removed: health says 503" test "$(cat "$TMP/code")" = 503
rmdir "$TMP/tok/tokens"
mv "$TMP/tok/tokens.away" "$TMP/tok/tokens"
ok_again=0
for _ in $(seq 1 50); do
    if agent_bounded 60 "$PHC_BIN" --config "$TMP/client.cnf" request /v2/asset/sites >/dev/null 2>&1; then ok_again=1; break; fi
    sleep 0.2
done
check "token back: requests succeed again without restarting the agent" test $ok_again = 1
check "token back: health 200" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/_phc/health)" = 200
acurl "$SOCK" http://localhost/_phc/metrics >"$TMP/m.txt"
check "token back: the reopen is counted" grep -qE '^phc_token_reopens_total [1-9]' "$TMP/m.txt"
stop_agent "$AGENT_PID"

# --- rotation under load: SIGHUP ------------------------------------------------------------
OLD=$(cert_serial "$TMP/client.pem")
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"
start_agent rot "$TMP/a.cnf" || not_ok "agent starts (rotation)"
# loop_clients N STOPFILE: N curl loops; each answer's code and client serial go to rot.N.
loop_clients() {
    local n=$1 stop=$2 i
    for ((i = 0; i < n; i++)); do
        (
            while [ ! -e "$stop" ]; do
                acurl "$SOCK" -w ' %{http_code}\n' http://localhost/echo 2>&1 |
                    sed -E 's/.*"client_serial":"([0-9A-F]*)".* ([0-9]+)$/\2 \1/'
            done
        ) >"$TMP/rot.$i" &
        CLIENTS+=($!)
    done
}
CLIENTS=()
loop_clients 8 "$TMP/stop1"
wait_for "$TMP/rot.7" "^200 $OLD\$"
bash "$FIX/token.sh" addkey "$TMP/tok" rsa:2048 client 02 2>/dev/null ||
    echo "# addkey while the agent is logged in"
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub-02.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/client2.pem" 400 >/dev/null
bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client2.pem" client 02
NEW=$(cert_serial "$TMP/client2.pem")
kill -HUP "$AGENT_PID"
check "SIGHUP: the agent says which serial it now uses" wait_for "$TMP/rot.err" "reloaded: now using client certificate serial $NEW" 30
for i in 0 1 2 3 4 5 6 7; do wait_for "$TMP/rot.$i" "^200 $NEW\$" 30 >/dev/null; done
sleep 0.5
touch "$TMP/stop1"
for p in "${CLIENTS[@]}"; do wait "$p"; done
total=$(cat "$TMP"/rot.[0-7] | wc -l)
bad=$(cat "$TMP"/rot.[0-7] | grep -vc '^200 ')
check "SIGHUP rotation with 8 clients: 0 failed of $total requests" test "$bad" -eq 0
check "every client saw the new serial" bash -c "for i in 0 1 2 3 4 5 6 7; do grep -q '^200 $NEW\$' '$TMP/rot.'\$i || exit 1; done"
check "after the switch, only the new serial (never back to the old)" \
    bash -c "for i in 0 1 2 3 4 5 6 7; do awk '\$2==\"$NEW\"{n=1} n && \$2!=\"$NEW\"{exit 1}' '$TMP/rot.'\$i || exit 1; done"
acurl "$SOCK" http://localhost/_stats >"$TMP/stats.json"
check "the server's last client serial is the new one" test "$(json_field "['last_client_serial']" <"$TMP/stats.json")" = "$NEW"
check "health reports the new serial" test "$(acurl "$SOCK" http://localhost/_phc/health | json_field "['certificate_serial']")" = "$NEW"
stop_agent "$AGENT_PID"
check "SIGTERM after the rotation: exit 0" test "$AGENT_RC" = 0

# --- rotation under load: the periodic reload_interval, no signal ---------------------------
agent_config "$TMP/p.cnf" "$MOCK_PORT" "$SOCK"
set_key "$TMP/p.cnf" reload_interval 1
start_agent periodic "$TMP/p.cnf" || not_ok "agent starts (periodic reload)"
rm -f "$TMP"/rot.[0-7]
CLIENTS=()
loop_clients 8 "$TMP/stop2"
wait_for "$TMP/rot.7" "^200 $NEW\$"
bash "$FIX/token.sh" addkey "$TMP/tok" rsa:2048 client 03 2>/dev/null
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub-03.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/client3.pem" 500 >/dev/null
bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client3.pem" client 03
NEW3=$(cert_serial "$TMP/client3.pem")
for i in 0 1 2 3 4 5 6 7; do wait_for "$TMP/rot.$i" "^200 $NEW3\$" 30 >/dev/null; done
sleep 0.5
touch "$TMP/stop2"
for p in "${CLIENTS[@]}"; do wait "$p"; done
total=$(cat "$TMP"/rot.[0-7] | wc -l)
bad=$(cat "$TMP"/rot.[0-7] | grep -vc '^200 ')
check "periodic reload with 8 clients: 0 failed of $total requests" test "$bad" -eq 0
check "periodic reload: every client switched to the new serial, never back" \
    bash -c "for i in 0 1 2 3 4 5 6 7; do grep -q '^200 $NEW3\$' '$TMP/rot.'\$i && awk '\$2==\"$NEW3\"{n=1} n && \$2!=\"$NEW3\"{exit 1}' '$TMP/rot.'\$i || exit 1; done"
stop_agent "$AGENT_PID"

check "no sanitizer report in the agent's stderr" clean_reports "$TMP"/*.err
finish
