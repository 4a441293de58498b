#!/usr/bin/env bash
# phc install: every refused certificate (another CA, another key, expired, no clientAuth,
# not a certificate) is a trust error (exit 5) or usage error (exit 2) that leaves the token
# exactly as it was (phc status --json before/after); --probe makes one real request with
# exactly the new pair before anything is stored; and kill -9 of phc install at each of its
# steps leaves a token the connector still works with.
. "$(dirname "$0")/lib.sh"

make_empty_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
phc() { "$PHC_BIN" --config "$CFG" "$@"; }
serial_seen() { # serial_seen PEM: the last request presented this certificate
    expect 0 "" "request for the serial check" -- phc request /echo
    grep -q "\"client_serial\":\"$(cert_serial "$1")\"" "$TMP/out"
}

# Pair 01 active, pair 02 pending with a request for it.
phc enrol --subject "/O=Test Energy/CN=phc-install" --key-type ec:P-256 --csr-out "$TMP/01.csr" >/dev/null
sign_csr "$TMP/01.csr" "$TMP/01.pem"
phc install "$TMP/01.pem" >/dev/null
phc csr --new-key --csr-out "$TMP/02.csr" >/dev/null
check "setup: 01 active, 02 pending" test "$(pair_states "$CFG")" = "01:active 02:pending"
# status --json without what moves with the clock (days left), so that only the token counts.
snapshot() {
    phc status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
for p in s["pairs"]:
    p.pop("days_left", None)
for c in s["ca"]:
    c.pop("days_left", None)
s.pop("credential_days_left", None)
print(json.dumps(s, sort_keys=True))' >"$1"
}
snapshot "$TMP/before.json"
unchanged() { # unchanged WHAT: the token is as in before.json
    snapshot "$TMP/after.json"
    check "$1: token unchanged (status --json before/after)" cmp -s "$TMP/before.json" "$TMP/after.json"
}

# --- refusals ------------------------------------------------------------------------------
sign_csr "$TMP/02.csr" "$TMP/otherca.pem" 365 otherca
expect 5 "issued by 'CN=Public Test CA,O=Some Public CA' is not trusted" "certificate from another CA refused" -- phc install "$TMP/otherca.pem"
check "the refusal names the pinned CA file" grep -q "pinned CA file $PHC_PKI/ca.pem" "$TMP/err"
check "one line, starting phc:" test "$(wc -l <"$TMP/err")" -eq 1 -a "$(cut -c1-5 "$TMP/err")" = "phc: "
unchanged "another CA"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/stray.key" 2>/dev/null
openssl pkey -in "$TMP/stray.key" -pubout -out "$TMP/stray.pub"
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/stray.pub" "/CN=stray-client" "$TMP/stray.pem" 365 >/dev/null
expect 5 "is for a key that is not on token 'phc-test'" "certificate for another key refused" -- phc install "$TMP/stray.pem"
check "the refusal names the certificate" grep -q "CN=stray-client" "$TMP/err"
unchanged "another key"

sign_csr "$TMP/02.csr" "$TMP/expired.pem" 365 expired
expect 5 "expired on 2021-01-01" "expired certificate refused" -- phc install "$TMP/expired.pem"
unchanged "expired"

sign_csr "$TMP/02.csr" "$TMP/noclient.pem" 365 noclientauth
expect 5 "lacks clientAuth" "certificate without clientAuth refused" -- phc install "$TMP/noclient.pem"
unchanged "no clientAuth"

expect 5 "is a CA certificate" "the CA certificate itself refused" -- phc install "$PHC_PKI/ca.pem"
expect 5 "lacks clientAuth" "a server certificate refused" -- phc install "$PHC_PKI/server.pem"
echo "not a certificate" >"$TMP/garbage.pem"
expect 2 "no PEM certificate found" "a file without a certificate" -- phc install "$TMP/garbage.pem"
expect 2 "cannot read $TMP/missing.pem" "a missing file" -- phc install "$TMP/missing.pem"
expect 2 "exactly one certificate file" "install without a file" -- phc install
unchanged "CA, server, garbage, missing"

# min_rsa_bits: a 2048-bit RSA pair is weaker than a configured minimum of 3072.
write_config "$TMP/strict.cnf" "$MOCK_PORT" "min_rsa_bits = 3072"
"$PHC_BIN" --config "$CFG" prune --pending --yes >/dev/null
"$PHC_BIN" --config "$CFG" csr --new-key --key-type rsa:2048 --csr-out "$TMP/rsa.csr" >/dev/null
sign_csr "$TMP/rsa.csr" "$TMP/rsa.pem"
expect 5 "weaker than min_rsa_bits 3072" "RSA 2048 refused under min_rsa_bits = 3072" -- "$PHC_BIN" --config "$TMP/strict.cnf" install "$TMP/rsa.pem"
"$PHC_BIN" --config "$CFG" prune --pending --yes >/dev/null
phc csr --new-key --csr-out "$TMP/02.csr" >/dev/null
check "02 is the pending key again" test "$(pair_states "$CFG")" = "01:active 02:pending"
sleep 1 # 02 starts later than 01
sign_csr "$TMP/02.csr" "$TMP/02.pem"
snapshot "$TMP/before.json"

# --- probe: one real request with exactly this pair, before anything is stored ----------------
start_mock strict --client-ca "$PHC_PKI/other-ca.pem"
write_config "$TMP/strictmock.cnf" "$MOCK_PORT"
expect 5 "probe with $TMP/02.pem failed, nothing was installed: server https://api.powerhub.test:$MOCK_PORT refused client certificate" "a probe the server refuses stops the install" -- "$PHC_BIN" --config "$TMP/strictmock.cnf" install --probe "$TMP/02.pem"
unchanged "failed probe"
expect 2 "must start with '/'" "--probe-path must be a path" -- phc install --probe-path x "$TMP/02.pem"

# --- kill -9 at every step: the connector keeps working -------------------------------------
for step in opened checked probed; do
    check "install killed at '$step'" kill_at "$step" "$PHC_BIN" --config "$CFG" install --probe "$TMP/02.pem"
    unchanged "killed at '$step'"
    check "after a kill at '$step' requests use pair 01" serial_seen "$TMP/01.pem"
done
check "the probe presented the new certificate" grep -q "client_serial=$(cert_serial "$TMP/02.pem")" "$TMP/mock.log"
check "install killed at 'stored'" kill_at stored "$PHC_BIN" --config "$CFG" install --probe "$TMP/02.pem"
check "after a kill at 'stored' the new pair is active" test "$(pair_states "$CFG")" = "01:retired 02:active"
check "after a kill at 'stored' requests use pair 02" serial_seen "$TMP/02.pem"
expect 0 "" "installing it again" -- phc install "$TMP/02.pem"
check "... stores nothing" grep -q "^already on the token, nothing stored: id 02" "$TMP/out"
check "... and reports the active pair" grep -q "^active pair: id 02" "$TMP/out"

# --- a completed install with --probe, reported --------------------------------------------
phc rollback --yes >/dev/null
check "rolled back for the next install" test "$(pair_states "$CFG")" = "01:active 02:pending"
expect 0 "" "install --probe succeeds" -- phc install --probe "$TMP/02.pem"
check "the probe's answer is shown" grep -q "^probe: GET /v2/asset/sites with this certificate and its token key: HTTP 200" "$TMP/out"
check "install names the new pair" grep -q "^installed: id 02 (EC P-256)" "$TMP/out"
check "install reports the active pair" grep -q "^active pair: id 02" "$TMP/out"
check "requests use pair 02" serial_seen "$TMP/02.pem"

# --- an explicit 'cert' in the config is not what rotation changes ----------------------------
phc rollback --yes >/dev/null
write_config "$TMP/withcert.cnf" "$MOCK_PORT" "cert = $TMP/01.pem"
expect 0 "the config sets 'cert'" "install warns when 'cert' pins a certificate" -- "$PHC_BIN" --config "$TMP/withcert.cnf" install "$TMP/02.pem"

finish
