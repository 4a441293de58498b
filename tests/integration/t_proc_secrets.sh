#!/usr/bin/env bash
# What another process can learn about a running phc's secrets. A stalled server keeps one
# phc waiting while the test looks at it from outside:
# - pin = env:NAME and client_secret = env:NAME leave the environment once the config is read:
#   /proc/PID/environ no longer shows them, and the environment a child would inherit lacks
#   them (the library still reads the value it took);
# - phc is not dumpable: a process of the same (non-root) user can read neither
#   /proc/PID/environ nor /proc/PID/mem (those files belong to root), so it cannot lift the
#   PIN, the client secret or a token from the process's memory;
# - the same in the agent (phc agent, the phc-agent program): not dumpable, PHC_T_PIN out of
#   its environment, and it still serves requests with the PIN it took.
. "$(dirname "$0")/lib.sh"

make_token
start_mock stall --fault stall
PIN=$(cat "$TMP/tok/pin")
write_config "$TMP/env.cnf" "$MOCK_PORT" "timeout = 20"
set_key "$TMP/env.cnf" pin "env:PHC_T_PIN"

# run_stalled NAME CMD...: runs CMD in the background until the stalled mock logged its API
# request (so the config was read and the secrets used); sets STALLED to its pid.
run_stalled() {
    local log=$1
    shift
    "$@" >"$TMP/stalled.out" 2>"$TMP/stalled.err" &
    STALLED=$!
    wait_for "$log" "GET /v2/asset/sites" 20
}
stop_stalled() {
    kill "$STALLED" 2>/dev/null
    wait "$STALLED" 2>/dev/null
}
environ_has() { tr '\0' '\n' <"/proc/$1/environ" | grep -q -- "$2"; }

# --- pin = env:NAME ------------------------------------------------------------------
check "phc logged in with the PIN from env:PHC_T_PIN and waits for the stalled server" \
    run_stalled "$TMP/stall.log" env PHC_T_PIN="$PIN" PHC_T_OTHER=kept "$PHC_BIN" --config "$TMP/env.cnf" \
    request /v2/asset/sites
check "a variable phc does not use is still in /proc/PID/environ (the check is real)" \
    environ_has "$STALLED" "^PHC_T_OTHER=kept$"
check "PHC_T_PIN is gone from /proc/PID/environ" bash -c "! tr '\0' '\n' </proc/$STALLED/environ | grep -q '^PHC_T_PIN='"
check "the PIN value is not in /proc/PID/environ" bash -c "! grep -qaF 'PHC_T_PIN=$PIN' /proc/$STALLED/environ"
stop_stalled

# --- client_secret = env:NAME ---------------------------------------------------------
. "$(dirname "$0")/auth_lib.sh"
start_creds_mock creds --fault stall
CREDS_PORT=$MOCK_PORT
write_creds_config "$TMP/creds.cnf" "$CREDS_PORT" "timeout = 20"
check "phc got a token with the secret from env:PHC_TEST_SECRET and waits for the stalled server" \
    run_stalled "$TMP/creds.log" "$PHC_BIN" --config "$TMP/creds.cnf" request /v2/asset/sites
check "PHC_TEST_SECRET is gone from /proc/PID/environ" bash -c "! tr '\0' '\n' </proc/$STALLED/environ | grep -q '^PHC_TEST_SECRET='"
check "the secret is not in /proc/PID/environ" bash -c "! grep -qaF -- '$SECRET' /proc/$STALLED/environ"
stop_stalled

# --- not dumpable: a same-user process cannot look inside --------------------------------
# phc runs as an unprivileged user (nobody) with a client-credential config it can read; a
# second process of that same user tries to read its environment and memory.
NOBODY=65534
AS_NOBODY=(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups) # exec'd: $! is the command
chmod 0711 "$TMP"
mkdir -m 0755 "$TMP/pub"
cp "$PHC_PKI/ca.pem" "$TMP/pub/ca.pem"
write_creds_config "$TMP/pub/creds.cnf" "$CREDS_PORT" "timeout = 20"
set_key "$TMP/pub/creds.cnf" ca_file "$TMP/pub/ca.pem"
chmod 0644 "$TMP/pub/creds.cnf" "$TMP/pub/ca.pem"
before=$(grep -c "GET /v2/asset/sites" "$TMP/creds.log")
"${AS_NOBODY[@]}" env HOME=/ PHC_TEST_SECRET="$SECRET" "$PHC_BIN" --config "$TMP/pub/creds.cnf" \
    request /v2/asset/sites >"$TMP/nobody.out" 2>"$TMP/nobody.err" &
STALLED=$!
for _ in $(seq 1 200); do
    [ "$(grep -c "GET /v2/asset/sites" "$TMP/creds.log")" -gt "$before" ] && break
    kill -0 "$STALLED" 2>/dev/null || break
    sleep 0.1
done
check "phc runs as uid $NOBODY and waits for the stalled server" \
    test "$(awk '/^Uid:/ {print $2}' "/proc/$STALLED/status" 2>/dev/null)" = $NOBODY
check "its /proc/PID/environ belongs to root, not to its user" test "$(stat -c %u "/proc/$STALLED/environ")" = 0
check "the same user cannot read its /proc/PID/environ" bash -c "! ${AS_NOBODY[*]} cat /proc/$STALLED/environ >/dev/null 2>&1"
check "the same user cannot open its /proc/PID/mem" bash -c "! ${AS_NOBODY[*]} sh -c 'exec 3</proc/$STALLED/mem' 2>/dev/null"
# The control: a process of that user that did not make itself non-dumpable is readable.
"${AS_NOBODY[@]}" sleep 30 &
SLEEPER=$!
for _ in $(seq 1 100); do
    [ "$(cat "/proc/$SLEEPER/comm" 2>/dev/null)" = sleep ] && break
    sleep 0.05
done
check "(control) the same user can read an ordinary process's environ" \
    bash -c "${AS_NOBODY[*]} cat /proc/$SLEEPER/environ >/dev/null"
check "(control) the same user can open an ordinary process's /proc/PID/mem" \
    bash -c "${AS_NOBODY[*]} sh -c 'exec 3</proc/$SLEEPER/mem'"
kill "$SLEEPER" 2>/dev/null
wait "$SLEEPER" 2>/dev/null
stop_stalled
sed 's/^/    phc as nobody: /' "$TMP/nobody.err" | head -5

# --- the same in the agent --------------------------------------------------------------
# phc agent runs the phc-agent program in its place (execve), which makes a process dumpable
# again: phc-agent must harden itself. It holds the PIN, the client secret and the API tokens
# for its whole life. It runs as nobody on a token nobody owns, with pin = env:PHC_T_PIN.
. "$(dirname "$0")/agent_lib.sh"
start_mock amock
chown -R $NOBODY:$NOBODY "$TMP/tok"
mkdir -m 0700 "$TMP/run"
chown $NOBODY:$NOBODY "$TMP/run"
ASOCK=$TMP/run/agent.sock
agent_config "$TMP/pub/agent.cnf" "$MOCK_PORT" "$ASOCK"
set_key "$TMP/pub/agent.cnf" ca_file "$TMP/pub/ca.pem"
set_key "$TMP/pub/agent.cnf" pin "env:PHC_T_PIN"
chmod 0644 "$TMP/pub/agent.cnf"
"${AS_NOBODY[@]}" env HOME=/ PHC_T_PIN="$PIN" PHC_T_OTHER=kept "$PHC_BIN" --config "$TMP/pub/agent.cnf" \
    agent 2>"$TMP/nobody-agent.err" &
AGENT=$!
T_PIDS+=("$AGENT")
if ! wait_for "$TMP/nobody-agent.err" "listening on" 30; then
    sed 's/^/    agent as nobody: /' "$TMP/nobody-agent.err" | head -20
fi
check "phc-agent runs as uid $NOBODY in the process phc agent started (pid $AGENT)" \
    test "$(cat "/proc/$AGENT/comm" 2>/dev/null):$(awk '/^Uid:/ {print $2}' "/proc/$AGENT/status" 2>/dev/null)" = "phc-agent:$NOBODY"
acurl "$ASOCK" -o "$TMP/a-sites.out" -w '%{http_code}' http://localhost/v2/asset/sites >"$TMP/a-code"
check "the agent forwards a request to the server: 200" test "$(cat "$TMP/a-code")" = 200
check "its /proc/PID/environ belongs to root, not to its user" test "$(stat -c %u "/proc/$AGENT/environ")" = 0
check "its /proc/PID/mem belongs to root, not to its user" test "$(stat -c %u "/proc/$AGENT/mem")" = 0
check "the same user cannot read its /proc/PID/environ" bash -c "! ${AS_NOBODY[*]} cat /proc/$AGENT/environ >/dev/null 2>&1"
check "the same user cannot open its /proc/PID/mem" bash -c "! ${AS_NOBODY[*]} sh -c 'exec 3</proc/$AGENT/mem' 2>/dev/null"
check "a variable the agent does not use is still in its /proc/PID/environ (the check is real)" \
    environ_has "$AGENT" "^PHC_T_OTHER=kept$"
check "PHC_T_PIN is gone from the agent's /proc/PID/environ" bash -c "! tr '\0' '\n' </proc/$AGENT/environ | grep -q '^PHC_T_PIN='"
check "the PIN value is not in the agent's /proc/PID/environ" bash -c "! grep -qaF 'PHC_T_PIN=$PIN' /proc/$AGENT/environ"
acurl "$ASOCK" -o "$TMP/a-health.json" -w '%{http_code}' http://localhost/_phc/health >"$TMP/a-code"
check "the agent still serves: /_phc/health 200 with the token open" \
    test "$(cat "$TMP/a-code"):$(json_field "['token']" <"$TMP/a-health.json" 2>/dev/null)" = "200:true"
acurl "$ASOCK" -o "$TMP/a-sites2.out" -w '%{http_code}' http://localhost/v2/asset/sites >"$TMP/a-code"
check "the agent still forwards a request: 200, the same body" \
    bash -c "test '$(cat "$TMP/a-code")' = 200 && cmp -s '$TMP/a-sites.out' '$TMP/a-sites2.out'"
stop_agent "$AGENT"
check "the agent exits 0 on SIGTERM" test "$AGENT_RC" = 0
sed 's/^/    agent as nobody: /' "$TMP/nobody-agent.err" | grep -v ' GET ' | head -5

finish
