#!/usr/bin/env bash
# Token administration under a time bound: a token that stops answering (the hang shim holds
# one PKCS#11 call) makes every admin subcommand - enrol, csr, install (and --probe), status,
# prune, rollback, secret store, check - end with exit 3 within connect_timeout plus slack,
# naming the token, the module and the call that hung, and leave nothing half-done: no
# request file, the certificate file read but untouched, the token as it was. Each command
# also runs once through the same shim without a hang, so that a bound that fires on a
# healthy token fails here too.
. "$(dirname "$0")/lib.sh"

BOUND_MS=2000
SLACK_MS=4000 # process start, module load, SoftHSM's login under load; a hang lasts 60 s
make_empty_token
start_mock mock
CFG=$TMP/phc.cnf # SoftHSM directly: to set up and to look at the token
write_config "$CFG" "$MOCK_PORT"
HCFG=$TMP/hang.cnf # through the shim, with the bound
write_config "$HCFG" "$MOCK_PORT" "connect_timeout = $((BOUND_MS / 1000))"
set_key "$HCFG" pkcs11_module "$PHC_HANG_MODULE"
export PHC_HANG_FILE=$TMP/hang PHC_HANG_TARGET=$SOFTHSM_MODULE
MODULE=$PHC_HANG_MODULE

msg() { # msg CALL: the refusal's exact text
    echo "phc: token 'phc-test' in PKCS#11 module '$MODULE' did not answer $1 within $BOUND_MS ms (connect_timeout); phc stopped waiting, the call may still complete on the token"
}

# hung CALL WHAT -- COMMAND...: with CALL held, COMMAND ends with exit 3 within the bound plus
# slack and the message naming CALL as its first line of stderr.
hung() {
    local call=$1 what=$2 start end ms got
    shift 3
    touch "$PHC_HANG_FILE"
    start=$(date +%s%N)
    PHC_HANG_CALLS=$call "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    end=$(date +%s%N)
    rm -f "$PHC_HANG_FILE"
    ms=$(((end - start) / 1000000))
    if [ "$got" -eq 3 ]; then ok "$what: exit 3"; else not_ok "$what: exit $got, wanted 3"; fi
    if [[ "$(head -1 "$TMP/err")" == "$(msg "$call")"* ]]; then
        ok "$what: the message names the token, the module and $call"
    else
        not_ok "$what: message"
        sed 's/^/    stderr: /' "$TMP/err" | head -5
        echo "    wanted: $(msg "$call")"
    fi
    check "$what: ended within the bound plus slack (${ms} ms <= $((BOUND_MS + SLACK_MS)))" \
        test "$ms" -le $((BOUND_MS + SLACK_MS))
}

hphc() { "$PHC_BIN" --config "$HCFG" "$@"; }
states() { pair_states "$CFG"; }
status_json() { # the token's pairs without what moves with the clock
    "$PHC_BIN" --config "$CFG" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(json.dumps([{k: v for k, v in p.items() if k != "days_left"} for p in s["pairs"]], sort_keys=True))'
}
unchanged() { # unchanged WHAT: the token's pairs are as in $TMP/before.json
    status_json >"$TMP/after.json"
    check "$1: token unchanged" cmp -s "$TMP/before.json" "$TMP/after.json"
}

# --- the open itself: slot list, login, object search ---------------------------------------
for call in C_Initialize C_GetSlotList C_Login; do
    hung "$call" "status, $call held" -- hphc status
done
hung C_FindObjectsInit "status, C_FindObjectsInit held" -- hphc status
hung C_Login "check, C_Login held" -- hphc check
check "check reports UNKNOWN with the same message" grep -q "^PHC UNKNOWN - token 'phc-test' in PKCS#11 module '$MODULE' did not answer C_Login" "$TMP/out"

# --- enrol ----------------------------------------------------------------------------------
hung C_GenerateKeyPair "enrol, C_GenerateKeyPair held" -- \
    hphc enrol --subject "/O=Test Energy/CN=phc-hang" --csr-out "$TMP/01.csr"
check "enrol: no request file" test ! -e "$TMP/01.csr"
check "enrol: no key on the token" test -z "$(states)"
hung C_Sign "enrol, C_Sign of its request held" -- \
    hphc enrol --subject "/O=Test Energy/CN=phc-hang" --csr-out "$TMP/01.csr"
check "enrol: no request file after a hung signature" test ! -e "$TMP/01.csr"
"$PHC_BIN" --config "$CFG" prune --pending --yes >/dev/null # the key it made before the hang
check "setup: the token is empty again" test -z "$(states)"
expect 0 "" "enrol through the shim without a hang" -- \
    hphc enrol --subject "/O=Test Energy/CN=phc-hang" --csr-out "$TMP/01.csr"
check "enrol wrote its request" grep -q "BEGIN CERTIFICATE REQUEST" "$TMP/01.csr"
sign_csr "$TMP/01.csr" "$TMP/01.pem"

# --- install ----------------------------------------------------------------------------------
status_json >"$TMP/before.json"
sha256sum "$TMP/01.pem" >"$TMP/01.sum"
hung C_CreateObject "install, C_CreateObject held" -- hphc install "$TMP/01.pem"
check "install: the certificate file is untouched" sha256sum -c --quiet "$TMP/01.sum"
unchanged "install"
check "install: 01 still pending" test "$(states)" = "01:pending"
expect 0 "" "install through the shim without a hang" -- hphc install "$TMP/01.pem"
check "01 is active" test "$(states)" = "01:active"

# --- csr --------------------------------------------------------------------------------------
hung C_Sign "csr, C_Sign held" -- hphc csr --csr-out "$TMP/again.csr"
check "csr: no request file" test ! -e "$TMP/again.csr"
hung C_GenerateKeyPair "csr --new-key, C_GenerateKeyPair held" -- hphc csr --new-key --csr-out "$TMP/02.csr"
check "csr --new-key: no request file" test ! -e "$TMP/02.csr"
check "csr --new-key: no new key" test "$(states)" = "01:active"
expect 0 "" "csr --new-key through the shim without a hang" -- hphc csr --new-key --csr-out "$TMP/02.csr"
check "csr wrote its request" grep -q "BEGIN CERTIFICATE REQUEST" "$TMP/02.csr"
sleep 1 # 02 starts later than 01
sign_csr "$TMP/02.csr" "$TMP/02.pem"

# --- install --probe: the probe's signature, and the store after it ---------------------------
status_json >"$TMP/before.json"
sha256sum "$TMP/02.pem" >"$TMP/02.sum"
touch "$PHC_HANG_FILE"
start=$(date +%s%N)
PHC_HANG_CALLS=C_Sign hphc install --probe "$TMP/02.pem" >"$TMP/out" 2>"$TMP/err"
got=$?
ms=$((($(date +%s%N) - start) / 1000000))
rm -f "$PHC_HANG_FILE"
check "install --probe, C_Sign held: exit 3 (got $got)" test "$got" -eq 3
# The probe is a request: its handshake's signature is bounded as every request's is, and the
# client reopens the token once (a warning) before it gives up, as t_hsm_hang.sh shows.
check "install --probe: the probe's message names the token and the bound" \
    test "$(tail -1 "$TMP/err")" = "phc: probe with $TMP/02.pem failed, nothing was installed: token 'phc-test' did not answer a signing request within $BOUND_MS ms"
check "install --probe: within two bounds plus slack (${ms} ms)" test "$ms" -le $((2 * BOUND_MS + SLACK_MS))
unchanged "install --probe (probe)"
hung C_CreateObject "install --probe, C_CreateObject held after the probe" -- \
    hphc install --probe "$TMP/02.pem"
check "install --probe: the probe ran first" grep -q "^probe: GET /v2/asset/sites .*HTTP 200" "$TMP/out"
check "install --probe: the certificate file is untouched" sha256sum -c --quiet "$TMP/02.sum"
unchanged "install --probe (store)"
expect 0 "" "install --probe through the shim without a hang" -- hphc install --probe "$TMP/02.pem"
check "02 is active, 01 retired" test "$(states)" = "01:retired 02:active"

# --- rollback ---------------------------------------------------------------------------------
status_json >"$TMP/before.json"
hung C_DestroyObject "rollback, C_DestroyObject held" -- hphc rollback --yes
unchanged "rollback"
expect 0 "" "rollback through the shim without a hang" -- hphc rollback --yes
check "01 is active again, 02 pending" test "$(states)" = "01:active 02:pending"
"$PHC_BIN" --config "$CFG" install "$TMP/02.pem" >/dev/null

# --- prune ------------------------------------------------------------------------------------
status_json >"$TMP/before.json"
hung C_DestroyObject "prune, C_DestroyObject held" -- hphc prune --yes
unchanged "prune"
expect 0 "" "prune through the shim without a hang" -- hphc prune --yes
check "01's certificate and key are gone" test "$(states)" = "02:active"

# --- status and secret store ------------------------------------------------------------------
expect 0 "" "status through the shim without a hang" -- hphc status
set_key "$HCFG" client_id cid-1
set_key "$HCFG" client_secret 'pkcs11:token=phc-test;object=client-secret;type=data'
secret_objects() {
    pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin 1234 --list-objects --type data 2>/dev/null |
        grep -c "label:.*client-secret"
}
echo 'Xk9vQ2-mP7wL4:zR8s' >"$TMP/secret"
hung C_CreateObject "secret store, C_CreateObject held" -- bash -c "'$PHC_BIN' --config '$HCFG' secret store <'$TMP/secret'"
check "secret store: no data object" test "$(secret_objects)" = 0
expect 0 "" "secret store through the shim without a hang" -- bash -c "'$PHC_BIN' --config '$HCFG' secret store <'$TMP/secret'"
check "secret store: one data object" test "$(secret_objects)" = 1
hung C_DestroyObject "secret store replacing it, C_DestroyObject held" -- bash -c "'$PHC_BIN' --config '$HCFG' secret store <'$TMP/secret'"
finish
