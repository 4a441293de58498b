#!/usr/bin/env bash
# The agent under systemd: the shipped units pass `systemd-analyze verify`; Type=notify
# works (READY=1 at start, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM, sent to
# a NOTIFY_SOCKET this test listens on); socket activation through systemd-socket-activate
# (sd_listen_fds) serves requests, and the agent leaves systemd's socket file alone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

UNITS=$PHC_SRC/dist/systemd
# --- systemd-analyze verify ---------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
    mkdir "$TMP/units"
    # ExecStart must name an existing program: the one just built.
    sed "s|^ExecStart=/usr/bin/phc |ExecStart=$PHC_BIN |" "$UNITS/phconnect-agent.service" >"$TMP/units/phconnect-agent.service"
    cp "$UNITS/phconnect-agent.socket" "$TMP/units/"
    if systemd-analyze verify "$TMP/units/phconnect-agent.service" "$TMP/units/phconnect-agent.socket" >"$TMP/verify.out" 2>&1; then
        check "systemd-analyze verify: the units pass without a warning" test ! -s "$TMP/verify.out"
        sed 's/^Type=notify/Type=notifyy/' "$TMP/units/phconnect-agent.service" >"$TMP/units/broken.service"
        systemd-analyze verify "$TMP/units/broken.service" >"$TMP/verify2.out" 2>&1
        check "systemd-analyze verify reports a broken unit (the check can fail)" grep -q "Failed to parse service type" "$TMP/verify2.out"
    elif grep -qiE "system has not been booted|failed to (connect|initialize)|no such file.*systemd" "$TMP/verify.out"; then
        echo "# systemd-analyze cannot run in this container: $(head -1 "$TMP/verify.out")"
    else
        not_ok "systemd-analyze verify: $(head -3 "$TMP/verify.out")"
    fi
    for key in "Type=notify" "NoNewPrivileges=yes" "ProtectSystem=strict" "PrivateTmp=yes" \
        "RuntimeDirectory=phconnect" "LoadCredential=pin:" "ExecReload=/bin/kill -HUP \$MAINPID"; do
        check "service unit: $key" grep -qF -- "$key" "$UNITS/phconnect-agent.service"
    done
    check "service unit: an empty capability set" grep -qx "CapabilityBoundingSet=" "$UNITS/phconnect-agent.service"
    check "socket unit: mode 0660" grep -qx "SocketMode=0660" "$UNITS/phconnect-agent.socket"
else
    echo "# systemd-analyze missing (package systemd): unit verification skipped"
fi

make_token
start_mock mock
SOCK=$TMP/agent.sock
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"

# --- Type=notify ---------------------------------------------------------------------------
python3 - "$TMP/notify.sock" "$TMP/notify.log" <<'PY' &
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode()
        for line in msg.split("\n"):
            log.write(line + "\n")
        if "STOPPING=1" in msg:
            break
PY
LISTENER=$!
T_PIDS+=("$LISTENER")
for _ in $(seq 1 50); do [ -S "$TMP/notify.sock" ] && break; sleep 0.05; done
NOTIFY_SOCKET=$TMP/notify.sock start_agent notify "$TMP/a.cnf" || not_ok "agent starts with NOTIFY_SOCKET"
check "notify: READY=1 once listening" wait_for "$TMP/notify.log" "^READY=1$" 10
check "notify: a STATUS line" grep -q '^STATUS=serving' "$TMP/notify.log"
kill -HUP "$AGENT_PID"
check "notify: RELOADING=1 on SIGHUP" wait_for "$TMP/notify.log" "^RELOADING=1$" 10
check "notify: RELOADING carries MONOTONIC_USEC" grep -qE '^MONOTONIC_USEC=[0-9]+$' "$TMP/notify.log"
# The first READY=1 is already in the log: wait for the second one itself (up to 10 s).
ready_twice() {
    local i
    for i in $(seq 1 200); do
        [ "$(grep -c '^READY=1$' "$TMP/notify.log")" -ge 2 ] && return 0
        sleep 0.05
    done
    return 1
}
check "notify: READY=1 again after the reload" ready_twice
check "notify: READY=1 twice in all" test "$(grep -c '^READY=1$' "$TMP/notify.log")" -eq 2
check "serves after the reload" test "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites)" = 200
stop_agent "$AGENT_PID"
check "notify: STOPPING=1 on SIGTERM" grep -q '^STOPPING=1$' "$TMP/notify.log"
check "notify: exit 0" test "$AGENT_RC" = 0
wait "$LISTENER" 2>/dev/null

# --- socket activation -----------------------------------------------------------------------
if command -v systemd-socket-activate >/dev/null; then
    ASOCK=$TMP/activated.sock
    # It passes on only the environment it is told to: the token store is in SOFTHSM2_CONF.
    systemd-socket-activate -E SOFTHSM2_CONF -l "$ASOCK" "$PHC_BIN" --config "$TMP/a.cnf" agent 2>"$TMP/act.err" &
    ACT=$!
    T_PIDS+=("$ACT")
    for _ in $(seq 1 100); do [ -S "$ASOCK" ] && break; sleep 0.05; done
    check "systemd-socket-activate holds the socket before the agent runs" test -S "$ASOCK"
    code=$(acurl "$ASOCK" -o "$TMP/act.out" -w '%{http_code}' http://localhost/v2/asset/sites)
    check "socket activation: the first request is answered ($code)" test "$code" = 200
    check "socket activation: the agent took systemd's socket" grep -q "(socket from systemd)" "$TMP/act.err"
    check "socket activation: the agent made no socket of its own" test ! -e "$SOCK"
    check "socket activation: more requests" test "$(acurl "$ASOCK" -o /dev/null -w '%{http_code}' http://localhost/echo)" = 200
    stop_agent "$ACT"
    check "socket activation: SIGTERM exit 0" test "$AGENT_RC" = 0
    check "socket activation: systemd's socket file is left to systemd" test -S "$ASOCK"
else
    echo "# systemd-socket-activate missing (package systemd): activation skipped"
fi
finish
