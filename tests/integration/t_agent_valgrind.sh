#!/usr/bin/env bash
# The agent under valgrind memcheck: concurrent clients, its own endpoints, refusals, a body
# over the limit, a client gone mid-answer, a SIGHUP reload and the SIGTERM drain, with no
# invalid access, no use of uninitialised memory and no leak of its own (exit 99 otherwise).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

if [ "${PHC_SANITIZE:-OFF}" = ON ]; then
    echo "# skipped: valgrind does not run ASan binaries (this suite runs in the plain build)"
    echo "0 passed, 0 failed"
    exit 0
fi
command -v valgrind >/dev/null || { echo "valgrind missing"; exit 1; }

make_token
start_mock mock
SOCK=$TMP/agent.sock
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"
# phc agent execs the agent's own program; valgrind runs that one directly.
AGENT_BIN=$(dirname "$PHC_BIN")/phc-agent
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect --suppressions="$PHC_SRC/tests/valgrind.supp" \
    "$AGENT_BIN" --config "$TMP/a.cnf" agent 2>"$TMP/vg.err" &
AGENT_PID=$!
T_PIDS+=("$AGENT_PID")
wait_for "$TMP/vg.err" "listening on" 120 || { not_ok "agent starts under valgrind"; sed 's/^/    /' "$TMP/vg.err" | head; finish; }
ok "agent starts under valgrind"

for i in 1 2 3 4 5 6 7 8; do
    acurl "$SOCK" -o /dev/null -w '%{http_code}\n' "http://localhost/v2/asset/sites?[1-10]" >"$TMP/c.$i" &
    CURLS+=($!)
done
for p in "${CURLS[@]}"; do wait "$p"; done
check "8 clients x 10 requests under valgrind: all 200" test "$(cat "$TMP"/c.* | grep -c '^200$')" -eq 80
check "health" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/_phc/health)" = 200
check "metrics" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/_phc/metrics)" = 200
check "absolute-form refused" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' --request-target http://evil/ http://localhost/)" = 400
check "upstream 404 passed on" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/nope)" = 404
head -c $((1024 * 1024 + 1)) /dev/zero >"$TMP/big"
check "413" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' --data-binary @"$TMP/big" http://localhost/echo)" = 413
check "POST with hop-by-hop headers" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' -H 'Connection: close, X-A' -H 'X-A: 1' -d body http://localhost/echo)" = 200
python3 - "$SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"GET /v2/asset/sites HTTP/1.1\r\nHost: x\r\n\r\n")
s.close()
PY
kill -HUP "$AGENT_PID"
check "SIGHUP reload under valgrind" wait_for "$TMP/vg.err" "reloaded" 60
check "served after SIGHUP" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites)" = 200
stop_agent "$AGENT_PID"
check "SIGTERM under valgrind: exit 0, no memory error, no leak ($AGENT_RC)" test "$AGENT_RC" = 0
grep -v '^phc: agent' "$TMP/vg.err" | sed 's/^/    /' | head -30
finish
