#!/usr/bin/env bash
# A wrong PIN is offered to the token once, not once per reopening (issue 13, item 1),
# counted at the PKCS#11 boundary with OpenSC's pkcs11-spy.so:
#  - a long-running client whose token goes away and comes back with its PIN changed sends
#    exactly one wrong C_Login however many requests follow, and logs in again once the PIN
#    file holds the new PIN;
#  - a token that reports CKF_USER_PIN_FINAL_TRY or CKF_USER_PIN_LOCKED gets no C_Login at all
#    (SoftHSM never reaches those states: tests/fixtures/hang_pkcs11.c reports the flag on top
#    of SoftHSM), and `phc status` says so;
#  - an explicit phc_client_reload offers the refused PIN once more (the operator's word).
. "$(dirname "$0")/lib.sh"

SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
[ -r "$SPY" ] || { echo "pkcs11-spy.so missing (package opensc-pkcs11)"; exit 1; }
: "${PHC_FAULT:?}" "${PHC_HANG_MODULE:?}"
# The spy's own allocations outlive its unloading (see t_pin_spy.sh).
if [ "${PHC_SANITIZE:-OFF}" = ON ]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi

make_token
start_mock mock
calls() { # calls LOG NAME: how many times the spy saw NAME
    grep -cE "^[0-9]+: $2\$" "$1" 2>/dev/null
}

# --- 1. the PIN changed on the token while it was away ------------------------------------------
export PKCS11SPY=$SOFTHSM_MODULE PKCS11SPY_OUTPUT=$TMP/spy.log
CFG=$TMP/phc.cnf
cp "$TMP/tok/pin" "$TMP/pinfile" && chmod 600 "$TMP/pinfile" # a PIN file readable by others is a warning line (strict_modes)
write_config "$CFG" "$MOCK_PORT"
set_key "$CFG" pkcs11_module "$SPY"
set_key "$CFG" pin "file:$TMP/pinfile"

"$PHC_FAULT" "$CFG" 120 100 "$TMP/stop" >"$TMP/drv.out" 2>"$TMP/drv.err" &
DRIVER=$!
T_PIDS+=("$DRIVER")
wait_for "$TMP/drv.out" " 0 [0-9]+ [0-9A-F]+\$"
check "one C_Login to start with" test "$(calls "$TMP/spy.log" C_Login)" -eq 1
mv "$TMP/tok/tokens" "$TMP/tok/tokens.away"
mkdir "$TMP/tok/tokens"
wait_for "$TMP/drv.out" " 3 [0-9]+ "
# The PIN changes on the token (another SoftHSM configuration reaches it where it is now).
sed "s|$TMP/tok/tokens|$TMP/tok/tokens.away|" "$SOFTHSM2_CONF" >"$TMP/away.conf"
SOFTHSM2_CONF=$TMP/away.conf PKCS11SPY= pkcs11-tool --module "$SOFTHSM_MODULE" --login \
    --pin "$(cat "$TMP/tok/pin")" --change-pin --new-pin 5678 >/dev/null 2>&1
check "the PIN was changed on the token" test $? -eq 0
rmdir "$TMP/tok/tokens"
mv "$TMP/tok/tokens.away" "$TMP/tok/tokens"
wait_for "$TMP/drv.out" " 4 [0-9]+ .*CKR_PIN_INCORRECT"
# Many requests and several reopenings later ...
n0=$(wc -l <"$TMP/drv.out")
for _ in $(seq 1 100); do
    [ "$(wc -l <"$TMP/drv.out")" -ge $((n0 + 30)) ] && break
    sleep 0.1
done
sleep 2.5 # at least two more reopening attempts (at most one a second)
wrong=$(calls "$TMP/spy.log" C_Login)
check "one wrong C_Login over $(($(wc -l <"$TMP/drv.out") - n0)) requests (C_Login in all: $wrong)" \
    test "$wrong" -eq 2
check "the token answered CKR_PIN_INCORRECT once" test "$(grep -c CKR_PIN_INCORRECT "$TMP/spy.log")" -eq 1
check "later requests fail with exit 4, saying the PIN is not offered again" \
    grep -q " 4 [0-9]* PIN of token 'phc-test' was refused (CKR_PIN_INCORRECT) and PIN source 'file:$TMP/pinfile' still holds the same PIN: not offered again until the source changes or the client is reloaded" "$TMP/drv.out"
# The driver's first three fields are its own numbers (start ms, exit code, ms taken): a start
# time of 11234 ms is not a PIN. Its messages and stderr must not hold either PIN as a word.
check "the PIN never shows" bash -c "! { cut -d' ' -f4- '$TMP/drv.out'; cat '$TMP/drv.err'; } | grep -qw '5678\|1234'"
# The operator puts the new PIN into the PIN file: the client logs in by itself.
(umask 077 && printf 5678 >"$TMP/pinfile.new") && mv "$TMP/pinfile.new" "$TMP/pinfile"
n1=$(wc -l <"$TMP/drv.out")
for _ in $(seq 1 100); do
    tail -n +$((n1 + 1)) "$TMP/drv.out" | grep -qE " 0 [0-9]+ [0-9A-F]+\$" && break
    sleep 0.1
done
check "after the PIN file was updated, requests succeed again" \
    bash -c "tail -n +$((n1 + 1)) '$TMP/drv.out' | grep -qE ' 0 [0-9]+ [0-9A-F]+\$'"
check "... with one more C_Login ($(calls "$TMP/spy.log" C_Login) in all)" test "$(calls "$TMP/spy.log" C_Login)" -eq 3
touch "$TMP/stop"
wait "$DRIVER"
check "every failure was HSM (token away) or PIN" bash -c "! awk '\$2 != 0 && \$2 != 3 && \$2 != 4' '$TMP/drv.out' | grep -q ."
if [ "$T_FAIL" -gt 0 ]; then
    cut -d' ' -f2,4- "$TMP/drv.out" | cut -c1-150 | uniq -c | sed 's/^/# /'
    sed 's/^/# drv.err: /' "$TMP/drv.err"
fi

# --- 2. a token that is one wrong PIN from locking, or locked ------------------------------------
export PKCS11SPY=$PHC_HANG_MODULE
write_config "$TMP/f.cnf" "$MOCK_PORT"
set_key "$TMP/f.cnf" pkcs11_module "$SPY"
set_key "$TMP/f.cnf" pin "file:$TMP/pinfile"
spy_run() { # spy_run FLAGS EXIT FRAGMENT WHAT -- COMMAND...
    local flags=$1 code=$2 frag=$3 what=$4
    shift 5
    rm -f "$TMP/spy-f.log"
    PHC_HANG_TOKEN_FLAGS=$flags PKCS11SPY_OUTPUT=$TMP/spy-f.log expect "$code" "$frag" "$what" -- \
        timeout 60 "$@" </dev/null
}
FINAL="phc: token 'phc-test' reports that the next wrong PIN locks it (CKF_USER_PIN_FINAL_TRY): phconnect does not log in to it on its own; check the PIN, then log in once by hand (pkcs11-tool --login --test) to reset the count"
LOCKED="phc: PIN of token 'phc-test' is locked (CKF_USER_PIN_LOCKED): unlock it with the SO PIN; phconnect does not log in to it"
spy_run 0x20000 4 "$FINAL" "FINAL_TRY: request refused" -- "$PHC_BIN" --config "$TMP/f.cnf" request /v2/asset/sites
check "FINAL_TRY: the fixture's flag reached the spy" grep -q "CKF_USER_PIN_FINAL_TRY" "$TMP/spy-f.log"
check "FINAL_TRY: no C_Login" test "$(calls "$TMP/spy-f.log" C_Login)" -eq 0
check "FINAL_TRY: one line on stderr" test "$(wc -l <"$TMP/err")" -eq 1
spy_run 0x20000 4 "$FINAL" "FINAL_TRY: phc status says so" -- "$PHC_BIN" --config "$TMP/f.cnf" status
check "FINAL_TRY: status made no C_Login" test "$(calls "$TMP/spy-f.log" C_Login)" -eq 0
spy_run 0x40000 4 "$LOCKED" "LOCKED: request refused" -- "$PHC_BIN" --config "$TMP/f.cnf" request /v2/asset/sites
check "LOCKED: no C_Login" test "$(calls "$TMP/spy-f.log" C_Login)" -eq 0
spy_run 0x40000 4 "$LOCKED" "LOCKED: phc status says so" -- "$PHC_BIN" --config "$TMP/f.cnf" status
# COUNT_LOW alone (what SoftHSM itself reports after wrong PINs) is only a warning.
spy_run 0x10000 0 "" "COUNT_LOW: one login, request served" -- "$PHC_BIN" -v --config "$TMP/f.cnf" request /v2/asset/sites
check "COUNT_LOW: one C_Login" test "$(calls "$TMP/spy-f.log" C_Login)" -eq 1
check "COUNT_LOW: warned" grep -q "wrong PINs were entered recently" "$TMP/err"

# --- 3. an explicit reload is the operator's word: the refused PIN is offered once more --------
: "${PHC_RELOAD:?}"
export PKCS11SPY=$PHC_HANG_MODULE PKCS11SPY_OUTPUT=$TMP/spy-r.log PHC_HANG_FAIL_SIGN_FILE=$TMP/failsign
rm -f "$TMP/spy-r.log"
write_config "$TMP/r.cnf" "$MOCK_PORT"
set_key "$TMP/r.cnf" pkcs11_module "$SPY"
set_key "$TMP/r.cnf" pin "file:$TMP/pinfile" # holds 5678, the token's PIN now
mkfifo "$TMP/r.cmd"
"$PHC_RELOAD" "$TMP/r.cnf" <"$TMP/r.cmd" >"$TMP/r.out" 2>"$TMP/r.err" &
T_PIDS+=("$!")
exec 3>"$TMP/r.cmd"
n=0
step() { # step WHAT CMD REGEX: one driver command and its answer line
    local what=$1 cmd=$2 want=$3 got
    echo "$cmd" >&3
    n=$((n + 1))
    for _ in $(seq 1 300); do
        [ "$(wc -l <"$TMP/r.out")" -ge "$n" ] && break
        sleep 0.1
    done
    got=$(sed -n "${n}p" "$TMP/r.out")
    if [[ $got =~ $want ]]; then ok "$what"; else not_ok "$what: wanted /$want/, got '$got'"; fi
}
step "reload test: a first request" "req /echo" "^req 0 200 "
# The PIN changes on the token while the client runs; then the token fails two signatures (a
# handshake and the connector's test signature), so the client reopens it and logs in.
pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin 5678 --change-pin --new-pin 2468 >/dev/null 2>&1
check "reload test: PIN changed on the token" test $? -eq 0
echo 2 >"$TMP/failsign"
step "reopened after the token failed: the old PIN is refused (exit 4)" "post 3 /echo" \
    "^req 4 0 PIN rejected by token 'phc-test' \(CKR_PIN_INCORRECT\); not retried"
sleep 1.2 # past the reopening interval
step "the next reopening does not offer it again" "req /echo" "^req 4 0 .*not offered again until the source changes or the client is reloaded"
check "reload test: so far two C_Login ($(calls "$TMP/spy-r.log" C_Login)), one of them wrong" test "$(calls "$TMP/spy-r.log" C_Login)" -eq 2
step "phc_client_reload: the same PIN is offered once more and refused" "reload" \
    "^reload 4 0 PIN rejected by token 'phc-test' \(CKR_PIN_INCORRECT\)"
check "reload test: the reload made one more C_Login ($(calls "$TMP/spy-r.log" C_Login))" test "$(calls "$TMP/spy-r.log" C_Login)" -eq 3
sleep 1.2
step "... and the latch holds again afterwards" "req /echo" "^req 4 0 .*not offered again"
check "reload test: still three C_Login" test "$(calls "$TMP/spy-r.log" C_Login)" -eq 3
printf 2468 >"$TMP/pinfile.new" && mv "$TMP/pinfile.new" "$TMP/pinfile"
sleep 1.2
step "the PIN file updated: served again" "req /echo" "^req 0 200 "
check "reload test: four C_Login in all" test "$(calls "$TMP/spy-r.log" C_Login)" -eq 4
exec 3>&-
[ "$T_FAIL" -gt 0 ] && sed 's/^/# r: /' "$TMP/r.out"

finish
