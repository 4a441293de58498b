#!/usr/bin/env bash
# The agent with a slow token, as a network HSM is (tests/fixtures/slow_pkcs11.c: 1 ms a call,
# 20 ms a signature): signatures stay off the request path. After a warm-up, 8 local clients x
# 200 requests through the agent make no token signature at all (counted at the PKCS#11
# boundary by OpenSC's pkcs11-spy in front of the slow module) and no request fails. The
# latencies of both sides are printed: the agent's 8 clients, and 8 threads of one in-process
# keep-alive client on the same slow token. Comparing their p99 is a measurement, not a test,
# on a shared 2-core machine: tests/bench/agent_slow_p99.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
[ -r "$SPY" ] || { echo "pkcs11-spy.so missing (package opensc-pkcs11)"; exit 1; }
: "${PHC_AGENT_LOAD:?run through ctest (agent_load driver)}"
export PHC_SLOW_TARGET=$SOFTHSM_MODULE PHC_SLOW_CALL_US=1000 PHC_SLOW_SIGN_US=20000
CLIENTS=8
PER_CLIENT=200

calls() { # calls NAME: how many times the spy saw NAME
    grep -cE "^[0-9]+: $1\$" "$TMP/spy.log" 2>/dev/null
}
field() { # field FILE KEY: a value from agent_load's line
    awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$1"
}

make_token
start_mock mock
SOCK=$TMP/agent.sock
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"
set_key "$TMP/a.cnf" pkcs11_module "$SPY"
# The spy in front of the slow module in front of SoftHSM; its log counts the calls.
export PKCS11SPY=$PHC_SLOW_MODULE PKCS11SPY_OUTPUT=$TMP/spy.log
start_agent agent "$TMP/a.cnf" || { not_ok "agent starts on the slow token"; finish; }
unset PKCS11SPY PKCS11SPY_OUTPUT
check "the spy log is real (the agent opened a session)" test "$(calls C_OpenSession)" -ge 1

# The first request makes the full handshake: one signature, at least 20 ms.
"$PHC_AGENT_LOAD" "$SOCK" /v2/asset/sites 1 1 >"$TMP/first.out" 2>"$TMP/first.err"
first_ms=$(field "$TMP/first.out" p50_ms)
echo "# first request through the agent (full handshake): ${first_ms:-?} ms"
check "the first request pays the slow signature (${first_ms:-?} ms >= 20 ms)" \
    python3 -c "import sys; sys.exit(not float('${first_ms:-0}') >= 20)"
check "... which the token was asked for ($(calls C_Sign) C_Sign)" test "$(calls C_Sign)" -ge 1

# Warm-up: the 8 clients at once, so the agent holds the upstream connections they need.
expect 0 "" "warm-up: $CLIENTS clients x 25 requests" -- \
    "$PHC_AGENT_LOAD" "$SOCK" /v2/asset/sites "$CLIENTS" 25
sign0=$(calls C_Sign)
calls0=$(grep -cE '^[0-9]+: C_' "$TMP/spy.log")
"$PHC_AGENT_LOAD" "$SOCK" /v2/asset/sites "$CLIENTS" "$PER_CLIENT" >"$TMP/run.out" 2>"$TMP/run.err"
rc=$?
sign1=$(calls C_Sign)
calls1=$(grep -cE '^[0-9]+: C_' "$TMP/spy.log")
sed 's/^/#   /' "$TMP/run.err" | head -3
check "$CLIENTS clients x $PER_CLIENT requests: driver exit 0" test "$rc" -eq 0
check "... $(field "$TMP/run.out" requests) requests, 0 failed" \
    test "$(field "$TMP/run.out" requests) $(field "$TMP/run.out" failures)" = "$((CLIENTS * PER_CLIENT)) 0"
check "... and 0 token signatures during the run ($((sign1 - sign0)); $sign0 before, in the warm-up)" \
    test "$((sign1 - sign0))" -eq 0
echo "# PKCS#11 calls of any kind during the run: $((calls1 - calls0))"
served=$(grep -c 'GET /v2/asset/sites 200 ' "$TMP/agent.err")
check "the agent logged every answer ($served)" test "$served" -eq $((1 + CLIENTS * 25 + CLIENTS * PER_CLIENT))

# The other side: 8 threads of one in-process client, kept-alive, on the same slow token.
write_config "$TMP/ka.cnf" "$MOCK_PORT" "reload_interval = 0"
set_key "$TMP/ka.cnf" pkcs11_module "$PHC_SLOW_MODULE"
expect 0 "" "in-process keep-alive: $CLIENTS threads x $PER_CLIENT requests (phc bench)" -- \
    "$PHC_BIN" --config "$TMP/ka.cnf" bench --json --no-curl --signatures 1 --mode keepalive \
    --threads "$CLIENTS" --requests $((CLIENTS * PER_CLIENT)) /v2/asset/sites
read -r ka50 ka99 < <(python3 -c "import json
for l in open('$TMP/out'):
    o = json.loads(l)
    if o['mode'] == 'keepalive': print(o['p50_ms'], o['p99_ms'])")
echo "# agent, $CLIENTS clients: p50 $(field "$TMP/run.out" p50_ms) ms, p99 $(field "$TMP/run.out" p99_ms) ms;" \
    "in-process keep-alive, $CLIENTS threads: p50 ${ka50:-?} ms, p99 ${ka99:-?} ms" \
    "(the p99 comparison: tests/bench/agent_slow_p99.sh)"

stop_agent "$AGENT_PID"
check "SIGTERM: exit 0" test "$AGENT_RC" = 0
check "no sanitizer report in the agent's stderr" clean_reports "$TMP/agent.err"
finish
