# Helpers for the agent tests t_agent*.sh (sourced after lib.sh).
# ThreadSanitizer build: the suppressions t_concurrency.sh uses (libp11/SoftHSM internals).
export TSAN_OPTIONS="suppressions=$PHC_SRC/tests/tsan.supp:second_deadlock_stack=1:${TSAN_OPTIONS:-}"

# start_agent NAME CONFIG [agent options...]: runs `phc agent` in the background with its
# stderr (the access log) in $TMP/NAME.err, waits until it listens; sets AGENT_PID.
start_agent() {
    local name=$1 cfg=$2
    shift 2
    # An agent that loads OpenSC's pkcs11-spy (PKCS11SPY set) runs without LeakSanitizer
    # under ASan: the spy keeps allocations of its own that libp11 unloads it with, and
    # LeakSanitizer then cannot name them ("<unknown module>"; t_pin_spy.sh says more). Every
    # other agent is leak-checked.
    local asan=${ASAN_OPTIONS:-}
    [ "${PHC_SANITIZE:-OFF}" = ON ] && [ -n "${PKCS11SPY:-}" ] && asan="${asan:+$asan:}detect_leaks=0"
    ASAN_OPTIONS=$asan "$PHC_BIN" --config "$cfg" agent "$@" 2>"$TMP/$name.err" &
    AGENT_PID=$!
    T_PIDS+=("$AGENT_PID")
    if ! wait_for "$TMP/$name.err" "listening on" 30; then
        sed 's/^/    agent: /' "$TMP/$name.err" | head -20
        return 1
    fi
}

# stop_agent PID: SIGTERM and wait; the exit status in AGENT_RC. (Not in a command
# substitution: wait works on this shell's own children only.)
stop_agent() {
    kill -TERM "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    AGENT_RC=$?
}

# acurl SOCKET CURL-ARGS...: curl over the agent's Unix socket, bounded in time.
acurl() {
    local sock=$1
    shift
    curl -sS --max-time 30 --unix-socket "$sock" "$@"
}

# agent_config FILE PORT SOCKET [extra lines...]: a mock config plus the agent's socket.
agent_config() {
    local file=$1 port=$2 sock=$3
    shift 3
    write_config "$file" "$port" "agent_listen = unix:$sock" "reload_interval = 0" "$@"
}

# json_field FIELD: one top-level field of the JSON document on stdin.
json_field() {
    python3 -c "import json,sys; v=json.load(sys.stdin)$1; print(v if not isinstance(v,bool) else str(v).lower())"
}

# clean_reports FILE...: no sanitizer report (ThreadSanitizer in the TSan build, ASan/UBSan
# in the sanitizer build) in the agents' stderr.
clean_reports() {
    ! grep -lE "WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$@" 2>/dev/null | grep -q .
}

# agent_bounded SECONDS CMD...: CMD (a request through an agent) with a time bound. The phc
# client waits up to ten minutes for an agent's answer, so a hung agent would otherwise end the
# test as a bare ctest time-out; on a time-out this prints the threads of every agent the test
# started (gdb) on the test's stderr first, so the hang can be read from the CI log.
exec 9>&2
agent_bounded() {
    local s=$1 rc p
    shift
    timeout "$s" "$@"
    rc=$?
    if [ $rc = 124 ]; then
        echo "# '$*' did not end within $s s; the agents' threads:" >&9
        for p in "${T_PIDS[@]}"; do
            [ "$(cat "/proc/$p/comm" 2>/dev/null)" = phc-agent ] || continue
            echo "# agent $p: $(tr '\0' ' ' <"/proc/$p/cmdline")" >&9
            if command -v gdb >/dev/null; then
                gdb -p "$p" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(#|Thread)' >&9
            fi
        done
    fi
    return $rc
}
