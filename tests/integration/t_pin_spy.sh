#!/usr/bin/env bash
# The PIN is presented to the token exactly once per configured value, counted at the PKCS#11
# boundary: phc loads OpenSC's pkcs11-spy.so, which forwards every call to SoftHSM and logs
# it. A wrong PIN is one C_Login and exit 4 (a retry would burn the token's remaining tries),
# the process still exits cleanly (stock curl with the libp11 engine crashes at exit there),
# and without a terminal nothing waits for a PIN to be typed.
. "$(dirname "$0")/lib.sh"

SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
[ -r "$SPY" ] || { echo "pkcs11-spy.so missing (package opensc-pkcs11)"; exit 1; }
export PKCS11SPY=$SOFTHSM_MODULE

make_token
start_mock mock

# spy_run LOG EXPECTED_EXIT FRAGMENT DESCRIPTION -- COMMAND...: COMMAND through the spy,
# bounded in time, with no terminal on stdin.
spy_run() {
    local log=$1 code=$2 frag=$3 what=$4
    shift 5
    rm -f "$log"
    PKCS11SPY_OUTPUT=$log expect "$code" "$frag" "$what" -- timeout 60 "$@" </dev/null
}

calls() { # calls LOG NAME: how many times the spy saw NAME
    grep -cE "^[0-9]+: $2\$" "$1" 2>/dev/null
}

echo 9999 >"$TMP/wrongpin"
chmod 600 "$TMP/wrongpin" # a PIN file readable by others would add a warning line
write_config "$TMP/ok.cnf" "$MOCK_PORT"
set_key "$TMP/ok.cnf" pkcs11_module "$SPY"
write_config "$TMP/w.cnf" "$MOCK_PORT"
set_key "$TMP/w.cnf" pkcs11_module "$SPY"
set_key "$TMP/w.cnf" pin "file:$TMP/wrongpin"

# Leaks at exit: the spy keeps a few allocations of its own until the process ends and libp11
# unloads it before the leak checks look. valgrind names its frames with --keep-debuginfo and
# suppresses them; LeakSanitizer cannot (the module is gone), so in the ASan build the spy's
# processes run without leak detection and the wrong-PIN exit is checked once more below,
# straight on SoftHSM, with it.
if [ "${PHC_SANITIZE:-OFF}" = ON ]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi
VG=()
if [ "${PHC_SANITIZE:-OFF}" != ON ] && command -v valgrind >/dev/null; then
    printf '{\n   pkcs11-spy-own-allocations\n   Memcheck:Leak\n   ...\n   obj:*/pkcs11-spy.so\n}\n' \
        >"$TMP/spy.supp"
    VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
        --show-leak-kinds=definite,indirect --keep-debuginfo=yes
        --suppressions="$PHC_SRC/tests/valgrind.supp" --suppressions="$TMP/spy.supp")
fi

spy_run "$TMP/spy-ok.log" 0 "" "right PIN through pkcs11-spy" -- "$PHC_BIN" --config "$TMP/ok.cnf" request /v2/asset/sites
check "the spy saw the session (its log is real)" test "$(calls "$TMP/spy-ok.log" C_OpenSession)" -ge 1
check "right PIN: exactly one C_Login ($(calls "$TMP/spy-ok.log" C_Login))" test "$(calls "$TMP/spy-ok.log" C_Login)" -eq 1

spy_run "$TMP/spy-w.log" 4 "PIN rejected by token 'phc-test'" "wrong PIN through pkcs11-spy${VG:+, under valgrind}" -- "${VG[@]}" "$PHC_BIN" --config "$TMP/w.cnf" request /v2/asset/sites
check "wrong PIN: exactly one C_Login ($(calls "$TMP/spy-w.log" C_Login))" test "$(calls "$TMP/spy-w.log" C_Login)" -eq 1
check "wrong PIN: the token answered CKR_PIN_INCORRECT" grep -q CKR_PIN_INCORRECT "$TMP/spy-w.log"
check "wrong PIN: no signature was attempted" test "$(calls "$TMP/spy-w.log" C_SignInit)" -eq 0
check "wrong PIN: the module was finalised at exit" test "$(calls "$TMP/spy-w.log" C_Finalize)" -eq 1
check "wrong PIN: not echoed" bash -c "! grep -q 9999 '$TMP/err'"
check "wrong PIN: one line on stderr" test "$(wc -l <"$TMP/err")" -eq 1
check "wrong PIN: no prompt" bash -c "! grep -qi 'enter\|password' '$TMP/err'"

# The same wrong PIN again is again one attempt: nothing is cached or retried across runs,
# and the token still takes the right PIN (one wrong try does not lock it).
spy_run "$TMP/spy-w2.log" 4 "not retried" "wrong PIN a second time" -- "$PHC_BIN" --config "$TMP/w.cnf" request /v2/asset/sites
check "second run: exactly one C_Login" test "$(calls "$TMP/spy-w2.log" C_Login)" -eq 1
spy_run "$TMP/spy-ok2.log" 0 "" "right PIN still accepted after two wrong ones" -- "$PHC_BIN" --config "$TMP/ok.cnf" request /v2/asset/sites

if [ "${PHC_SANITIZE:-OFF}" = ON ]; then
    write_config "$TMP/wd.cnf" "$MOCK_PORT"
    set_key "$TMP/wd.cnf" pin "file:$TMP/wrongpin"
    ASAN_OPTIONS=${ASAN_OPTIONS%:detect_leaks=0} expect 4 "not retried" \
        "wrong PIN straight on SoftHSM: no leak, no invalid access at exit (ASan)" -- \
        "$PHC_BIN" --config "$TMP/wd.cnf" request /v2/asset/sites
fi

# No PIN at all and no terminal: a clear PIN error at once, and the token never asked.
set_key "$TMP/w.cnf" pin "env:PHC_TEST_UNSET_PIN"
spy_run "$TMP/spy-none.log" 4 "PHC_TEST_UNSET_PIN" "PIN source empty, stdin not a terminal: no prompt" -- env -u PHC_TEST_UNSET_PIN "$PHC_BIN" --config "$TMP/w.cnf" request /v2/asset/sites
check "no PIN: no C_Login at all" test "$(calls "$TMP/spy-none.log" C_Login)" -eq 0

# One client, many threads, many new connections: the PIN is presented once for all of them.
if [ -n "${PHC_MULTI:-}" ]; then
    spy_run "$TMP/spy-multi.log" 0 "" "4 threads x 10 requests through pkcs11-spy" -- "$PHC_MULTI" "$TMP/ok.cnf" /v2/asset/sites 40 4
    check "one client, 40 requests: exactly one C_Login" test "$(calls "$TMP/spy-multi.log" C_Login)" -eq 1
fi

finish
