#!/usr/bin/env bash
# A remoted token: p11-kit's server exports the SoftHSM token on a Unix socket and phc loads
# p11-kit's client module as its pkcs11_module, the open stand-in for a network HSM's client
# library. That client makes a new module instance for every C_GetFunctionList call, so the
# certificate reader and the token administration must use the very function list libp11
# initialised (one module layer: lib/p11_module.c). Requests and status work through it; a
# killed server is exit 3 naming the module; a restarted one is used again by a running
# client without a restart.
. "$(dirname "$0")/lib.sh"

p11remote_client

make_token rsa:2048
start_mock mock

check "p11-kit server exports the token" p11remote_start "$TMP/p11"
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
set_key "$CFG" pkcs11_module "$CLIENT_MODULE"

expect 0 "" "phc request through the remoted token" -- \
    "$PHC_BIN" --config "$CFG" request /echo
check "server saw the token's client certificate" grep -q 'phc-test-client' "$TMP/out"
expect 0 "" "phc request -X POST through the remoted token" -- \
    "$PHC_BIN" --config "$CFG" request -X POST -d '{}' -H 'Content-Type: application/json' /v2/asset/tokens
expect 0 "" "phc status through the remoted token" -- "$PHC_BIN" --config "$CFG" status --json
check "status lists the active pair" grep -q '"state": *"active"' "$TMP/out"
expect 0 "" "4 threads x 10 requests on one client" -- "$PHC_MULTI" "$CFG" /v2/asset/sites 40 4

# The server goes away under a running client and comes back.
# p11-kit's client writes to its socket without MSG_NOSIGNAL: with the server gone, a process
# that has not ignored SIGPIPE dies of it. That is the application's to set (the library
# never changes signal dispositions), as for any socket-using library.
(
    trap '' PIPE
    exec "$PHC_FAULT" "$CFG" 120 100 "$TMP/stop"
) >"$TMP/fault.log" 2>"$TMP/fault.err" &
FAULT_PID=$!
T_PIDS+=("$FAULT_PID")
check "running client: requests succeed" wait_for "$TMP/fault.log" '^[0-9]+ 0 '
p11remote_stop "$TMP/p11"
expect 3 "PKCS#11 module '$CLIENT_MODULE'" "a new phc with the server gone: exit 3 naming the module" -- \
    "$PHC_BIN" --config "$CFG" request /echo
check "running client: fails with exit 3 while the server is gone" wait_for "$TMP/fault.log" '^[0-9]+ 3 '
n_down=$(wc -l <"$TMP/fault.log")
check "the failure names the module" bash -c "grep -E '^[0-9]+ 3 ' '$TMP/fault.log' | head -1 | grep -qF \"'$CLIENT_MODULE'\""
grep -E '^[0-9]+ 3 ' "$TMP/fault.log" | head -2 | sed 's/^/#   /'
p11remote_start "$TMP/p11"
check "running client: recovers once the server is back" \
    bash -c "for i in \$(seq 1 300); do tail -n +$((n_down + 1)) '$TMP/fault.log' | grep -qE '^[0-9]+ 0 ' && exit 0; sleep 0.1; done; exit 1"
touch "$TMP/stop"
wait "$FAULT_PID"
check "running client: every failure was exit 3 (token), none another class" \
    bash -c "! awk '\$2 != 0 && \$2 != 3' '$TMP/fault.log' | grep -q ."
expect 0 "" "phc request after the restart" -- "$PHC_BIN" --config "$CFG" request /echo
p11remote_stop "$TMP/p11"

finish
