#!/usr/bin/env bash
# The library's connection gate (lib/conn_gate.c): threads of one client that all need a new
# connection at once make them one at a time, each resuming the TLS session the one before
# stored - one full handshake (one token signature, counted at the PKCS#11 boundary by OpenSC's
# pkcs11-spy.so) for 16 threads, and a second burst on kept-alive connections makes none.
# Without the gate the threads find no session or the same one, and several sign.
. "$(dirname "$0")/lib.sh"

DRIVER=$PHC_BUILD/tests/concurrency
SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
[ -x "$DRIVER" ] || { echo "concurrency driver missing: $DRIVER"; exit 1; }
[ -r "$SPY" ] || { echo "pkcs11-spy.so missing (package opensc-pkcs11)"; exit 1; }
if [ "${PHC_SANITIZE:-OFF}" = ON ]; then
    # The spy's allocations, in a module libp11 unloads, read as leaks (t_concurrency.sh).
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
set_key "$CFG" pkcs11_module "$SPY"
export PKCS11SPY=$SOFTHSM_MODULE PKCS11SPY_OUTPUT=$TMP/spy.log

# 16 threads, 4 requests each on kept-alive connections (FRESH_EVERY 0: none fresh): each
# thread's first request needs a connection of its own, all at the same moment.
"$DRIVER" "$CFG" /v2/asset/sites 16 4 0 >"$TMP/conc.out" 2>"$TMP/conc.err"
rc=$?
sed 's/^/    /' "$TMP/conc.out"
sed 's/^/    stderr: /' "$TMP/conc.err" | head -10
read -r requests failures < <(awk '$1 == "requests" { print $2, $4 }' "$TMP/conc.out")
check "16 threads x 4 requests: driver exit 0" test "$rc" -eq 0
check "all 64 requests made, none failed" test "${requests:-0}" -ge 64 -a "${failures:-1}" -eq 0
signs=$(grep -cE '^[0-9]+: C_Sign$' "$TMP/spy.log")
# One in practice; two allowed for a host so loaded that the first handshake outlasts the
# gate's 1 s cap (without the gate: 10-16).
check "one token signature for 16 new connections made at once ($signs)" test "$signs" -ge 1 -a "$signs" -le 2
conns=$(grep -c 'GET /v2/asset/sites' "$TMP/mock.log")
check "the mock saw the 64 requests" test "$conns" -ge 64
finish
