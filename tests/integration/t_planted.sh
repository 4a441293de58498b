#!/usr/bin/env bash
# Objects anyone can write to the token without the PIN (public objects) must not take over
# (issue 13, item 7):
#  - a certificate planted with the active key's id - for another key, or for the right key
#    but from another CA - is skipped with a warning naming it; requests keep working with
#    the real certificate, and `phc status` keeps the real pair active and marks the planted
#    one;
#  - a public data object in place of the client secret is refused, naming it.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
REAL=$(cert_serial "$TMP/client.pem")

# plant CERT.pem: written the way an intruder without the PIN can (no --login).
plant() {
    openssl x509 -in "$1" -outform DER -out "$TMP/planted.der"
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label phc-test --write-object "$TMP/planted.der" \
        --type cert --label client --id 01 >/dev/null 2>&1
}

# A certificate for another key, newer than the real one, under the key's id and label.
sleep 1.1 # notBefore has one-second resolution: the planted one must be strictly newer
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/other.key" 2>/dev/null
openssl pkey -in "$TMP/other.key" -pubout -out "$TMP/other.pub"
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/other.pub" "/O=Intruder/CN=planted" "$TMP/planted.pem" 365 >/dev/null
plant "$TMP/planted.pem"
check "the certificate was planted without login" bash -c "pkcs11-tool --module '$SOFTHSM_MODULE' --list-objects --type cert 2>/dev/null | grep -q planted"
expect 0 "certificate object 'CN=planted,O=Intruder' (serial" "request with a planted certificate for another key" \
    -- "$PHC_BIN" --config "$CFG" request /echo
check "... was served with the real certificate" grep -q "\"client_serial\":\"$REAL\"" "$TMP/out"
check "... and the warning says why" grep -q "on token 'phc-test' is not used: it does not match key 'client' (id 01)" "$TMP/err"
expect 0 "" "status with the planted certificate" -- "$PHC_BIN" --config "$CFG" status
check "status: the real pair stays active" grep -qE "active .*$REAL" "$TMP/out"
check "status: the planted one is marked" grep -q "CN=planted,O=Intruder.*(DOES NOT MATCH ITS KEY)" "$TMP/out"
grep -v "^$" "$TMP/out" | sed 's/^/# status: /'

# The right key, but issued by another CA (self-made with the public key, which is public).
sleep 1.1
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub.pem" "/O=Intruder/CN=planted-other-ca" "$TMP/planted2.pem" 365 otherca >/dev/null
plant "$TMP/planted2.pem"
expect 0 "certificate object 'CN=planted-other-ca,O=Intruder' (serial" "request with a planted certificate from another CA" \
    -- "$PHC_BIN" --config "$CFG" request /echo
check "... was served with the real certificate" grep -q "\"client_serial\":\"$REAL\"" "$TMP/out"
check "... and the warning names the CA" grep -q "is not used: certificate 'CN=planted-other-ca,O=Intruder' issued by 'CN=Public Test CA,O=Some Public CA' is not trusted" "$TMP/err"
expect 0 "" "status with the planted certificate from another CA" -- "$PHC_BIN" --config "$CFG" status
check "status: the real pair stays active" grep -qE "active .*$REAL" "$TMP/out"
check "status: the other-CA one is not active" bash -c "! grep -E '^01 +active .*planted-other-ca' '$TMP/out'"

# Only planted ones left: the refusal names the newest and why.
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label phc-test --login --pin "$(cat "$TMP/tok/pin")" \
    --delete-object --type cert --label client --id 01 >/dev/null 2>&1
while pkcs11-tool --module "$SOFTHSM_MODULE" --list-objects --type cert 2>/dev/null | grep -q "label: *client"; do
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label phc-test --login --pin "$(cat "$TMP/tok/pin")" \
        --delete-object --type cert --id 01 >/dev/null 2>&1 || break
done
plant "$TMP/planted.pem"
expect 3 "phc: client certificate 'CN=planted,O=Intruder' (serial" "only a planted certificate: HSM error naming it" \
    -- "$PHC_BIN" --config "$CFG" request /echo
check "... and why" grep -q "on token 'phc-test' is not used: it does not match key 'client' (id 01)" "$TMP/err"
check "... on one line (besides the warnings)" test "$(grep -v '^phc: \[warning\]' "$TMP/err" | wc -l)" -eq 1

# --- the client secret must be a private object --------------------------------------------------
. "$(dirname "$0")/auth_lib.sh"
start_creds_mock creds
write_creds_config "$TMP/s.cnf" "$MOCK_PORT" "pkcs11_module = $SOFTHSM_MODULE" "pin = file:$TMP/tok/pin"
set_key "$TMP/s.cnf" client_secret "pkcs11:token=phc-test;object=phc-client-secret;type=data"
printf '%s' "$SECRET" >"$TMP/secret.bin"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label phc-test --write-object "$TMP/secret.bin" \
    --type data --label phc-client-secret >/dev/null 2>&1
check "a public data object was written without login" test $? -eq 0
rm -f "$TMP/secret.bin"
aexpect 3 "phc: client secret (client_secret): data object label 'phc-client-secret' on token 'phc-test' is public (CKA_PRIVATE false): anyone can write one without the PIN, so phconnect takes no client secret from it; delete it and store the secret again with 'phc secret store'" \
    "public data object as the client secret: refused, naming it" \
    -- env -u PHC_TEST_SECRET "$PHC_BIN" --config "$TMP/s.cnf" request /v2/asset/sites
check "no token was requested with it" test "$(creds_stat "$MOCK_PORT" token_requests)" -eq 0
printf '%s\n' "$SECRET" | "$PHC_BIN" --config "$TMP/s.cnf" secret store >/dev/null 2>&1
check "phc secret store writes a private one" test $? -eq 0
aexpect 0 "" "after phc secret store the secret is read" \
    -- env -u PHC_TEST_SECRET "$PHC_BIN" --config "$TMP/s.cnf" request /v2/asset/sites

finish
