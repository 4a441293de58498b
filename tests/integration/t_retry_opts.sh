#!/usr/bin/env bash
# The 429/503 retry as a library user chooses it in phc_client_opts (retry_max_attempts,
# retry_max_wait_ms), through tests/integration/retry_driver.c against the mock answering 429
# with Retry-After: 1 every time. Attempts are counted in the mock's own log.
. "$(dirname "$0")/lib.sh"

make_token ec:P-256

SLACK=4000
T0=0
t_start() { T0=$(date +%s%N); }
elapsed_ms() { echo $((($(date +%s%N) - T0) / 1000000)); }
between() { # between DESCRIPTION MIN_MS MAX_MS: the last command's duration
    local ms
    ms=$(elapsed_ms)
    check "$1 took ${ms} ms (wanted ${2}..${3} ms)" test "$ms" -ge "$2" -a "$ms" -le "$3"
}
seen() { grep -cE " GET /v2/asset/sites 429 " "$TMP/$1.log" 2>/dev/null; }

# mock NAME: a fresh mock answering 429 (Retry-After: 1) to every request, and its config
mock() {
    start_mock "$1" --fault status429always=1
    write_config "$TMP/$1.cnf" "$MOCK_PORT" "connect_timeout = 2" "timeout = 10"
}

# --- retries off: retry_max_attempts = 1 sends one request and returns its answer at once ---
mock off
t_start
expect 1 "" "retry_max_attempts 1: the 429 is returned (exit 1)" -- "$PHC_RETRY" "$TMP/off.cnf" /v2/asset/sites 1 0
between "retry_max_attempts 1: no wait" 0 $SLACK
check "retry_max_attempts 1: the answer is the 429" grep -qx "HTTP 429" "$TMP/out"
check "retry_max_attempts 1: exactly one request reached the server ($(seen off))" test "$(seen off)" -eq 1

# --- the default (0, 0): 3 attempts, 2 waits of 1 s, as phc does -------------------------
mock dflt
t_start
expect 1 "" "defaults: the last 429 is returned (exit 1)" -- "$PHC_RETRY" "$TMP/dflt.cnf" /v2/asset/sites 0 0
between "defaults: two waits of 1 s" 2000 $((2000 + SLACK))
check "defaults: 3 requests reached the server ($(seen dflt))" test "$(seen dflt)" -eq 3

# --- more attempts than the default --------------------------------------------------------
mock five
t_start
expect 1 "" "retry_max_attempts 5: the last 429 is returned (exit 1)" -- "$PHC_RETRY" "$TMP/five.cnf" /v2/asset/sites 5 0
between "retry_max_attempts 5: four waits of 1 s" 4000 $((4000 + SLACK))
check "retry_max_attempts 5: 5 requests reached the server ($(seen five))" test "$(seen five)" -eq 5

# --- a wait budget of 1 s: one wait fits, the second would not ----------------------------
mock budget
t_start
expect 1 "" "retry_max_wait_ms 1000: the 429 is returned (exit 1)" -- "$PHC_RETRY" "$TMP/budget.cnf" /v2/asset/sites 5 1000
between "retry_max_wait_ms 1000: one wait of 1 s" 1000 $((1000 + SLACK))
check "retry_max_wait_ms 1000: 2 requests reached the server ($(seen budget))" test "$(seen budget)" -eq 2

# --- a negative attempt count is refused before anything is opened -------------------------
mock neg
expect 2 "phc: phc_client_opts.retry_max_attempts is -1: it must be 0 (the default, 3), 1 (no retry) or more" \
    "retry_max_attempts -1 is refused (exit 2)" -- "$PHC_RETRY" "$TMP/neg.cnf" /v2/asset/sites -1 0
check "retry_max_attempts -1: no request reached the server" test "$(seen neg)" -eq 0

finish
