#!/usr/bin/env bash
# Token-side refusals: each names what is missing or wrong and maps to exit 3 (HSM) or 4 (PIN).
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"

# The private key was generated on the token and can never leave it.
pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin "$(cat "$TMP/tok/pin")" --list-objects \
    --type privkey >"$TMP/objects" 2>&1
check "private key is sensitive" grep -q 'sensitive' "$TMP/objects"
check "private key is never extractable" grep -q 'never extractable' "$TMP/objects"
check "private key was always sensitive" grep -q 'always sensitive' "$TMP/objects"
check "private key was generated on the token (CKA_LOCAL)" grep -q 'local' "$TMP/objects"

write_config "$TMP/c.cnf" "$MOCK_PORT"
set_key "$TMP/c.cnf" pkcs11_module /nonexistent/libnothing.so
expect 3 "/nonexistent/libnothing.so" "missing PKCS#11 module named" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites

write_config "$TMP/c.cnf" "$MOCK_PORT"
set_key "$TMP/c.cnf" key "pkcs11:token=no-such-token;object=client;type=private"
expect 3 "no-such-token" "missing token named" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites

write_config "$TMP/c.cnf" "$MOCK_PORT"
set_key "$TMP/c.cnf" key "pkcs11:token=phc-test;object=no-such-key;type=private"
expect 3 "no-such-key" "missing key named" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites

echo 9999 >"$TMP/wrongpin"
write_config "$TMP/c.cnf" "$MOCK_PORT"
set_key "$TMP/c.cnf" pin "file:$TMP/wrongpin"
expect 4 "not retried" "wrong PIN is a PIN error" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites
check "the wrong PIN is not echoed" bash -c "! grep -q 9999 '$TMP/err'"
expect 0 "" "the token still accepts the right PIN afterwards" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites

write_config "$TMP/c.cnf" "$MOCK_PORT"
set_key "$TMP/c.cnf" pin "env:PHC_TEST_UNSET_PIN"
expect 4 "PHC_TEST_UNSET_PIN" "PIN variable not set" -- env -u PHC_TEST_UNSET_PIN "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites
set_key "$TMP/c.cnf" pin "env:PHC_TEST_PIN"
PHC_TEST_PIN=$(cat "$TMP/tok/pin") expect 0 "" "PIN from env:NAME" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites

# A certificate that does not belong to the token key is refused before any connection.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/stray.key" 2>/dev/null
openssl pkey -in "$TMP/stray.key" -pubout -out "$TMP/stray.pub"
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/stray.pub" "/CN=stray-client" "$TMP/stray.pem" 365 >/dev/null
before=$(mock_stat "$CFG" connections)
write_config "$TMP/c.cnf" "$MOCK_PORT" "cert = $TMP/stray.pem"
expect 3 "does not match" "certificate file for another key refused" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites
check "message names the certificate" grep -q 'stray-client' "$TMP/err"
after=$(mock_stat "$CFG" connections)
check "no connection was made for the mismatched pair" test "$((after - before))" -eq 1

write_config "$TMP/c.cnf" "$MOCK_PORT" "cert = $TMP/client.pem"
expect 0 "" "explicit certificate file matching the token key" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites

# No core file may keep the PIN: phc runs with a core-size limit of 0. A stalled server keeps
# one phc waiting long enough to read its limits.
start_mock stall --fault stall
write_config "$TMP/stall.cnf" "$MOCK_PORT" "timeout = 5"
"$PHC_BIN" --config "$TMP/stall.cnf" request /v2/asset/sites >/dev/null 2>&1 &
STALLED=$!
for _ in $(seq 1 50); do grep -q "/v2/asset/sites" "$TMP/stall.log" 2>/dev/null && break; sleep 0.1; done
check "phc runs with core files disabled" grep -qE "^Max core file size +0 +0" "/proc/$STALLED/limits"
kill "$STALLED" 2>/dev/null
wait "$STALLED" 2>/dev/null

# A token whose key has no certificate yet.
rm -rf "$TMP/tok"
NOCERT=1 make_token
expect 3 "no certificate" "key without a certificate on the token" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites

finish
