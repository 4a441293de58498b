#!/usr/bin/env bash
# phc status (text and --json, with every field the runbook and monitoring rely on) and
# phc check (monitoring-plugin exit codes and thresholds, --prometheus textfile metrics).
. "$(dirname "$0")/lib.sh"

make_empty_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT" "client_id = plant-42" "client_secret = env:PHC_TEST_SECRET" \
    "credential_expires = 2099-06-30"
phc() { "$PHC_BIN" --config "$CFG" "$@"; }
json() { # json EXPR: evaluates a Python expression over status --json as s
    phc status --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}

# --- an empty token ---------------------------------------------------------------------
expect 0 "" "status of an empty token" -- phc status
check "no pairs yet, and what to do" grep -q "pairs: none (run 'phc enrol')" "$TMP/out"
expect 2 "" "check without a certificate is CRITICAL" -- phc check
check "CRITICAL line says what to do" grep -q "^PHC CRITICAL - no valid certificate on the token (run phc enrol)" "$TMP/out"

# --- a pair issued for 5 days, and a pending successor ------------------------------------------
phc enrol --subject "/O=Test Energy/CN=phc-status" --key-type ec:P-384 --csr-out "$TMP/01.csr" >/dev/null
sign_csr "$TMP/01.csr" "$TMP/01.pem" 5
phc install "$TMP/01.pem" >/dev/null
phc csr --new-key --key-type rsa:3072 --csr-out "$TMP/02.csr" >/dev/null

expect 0 "" "status --json" -- phc status --json
check "status --json parses as JSON" python3 -c "import json; json.load(open('$TMP/out'))"
check "pairs carry every field" python3 - "$TMP/out" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
want = {"id", "label", "key_type", "state", "has_cert", "subject", "issuer", "serial", "sha256",
        "not_before", "not_after", "not_after_epoch", "days_left", "key_matches"}
assert all(want <= set(p) for p in s["pairs"]), s["pairs"]
assert {"token", "pairs", "active", "ca", "url", "pinned_ips", "source_address", "client_id",
        "credential_expires", "credential_days_left"} <= set(s), s.keys()
EOF
check "pair 01 is active, EC P-384" test "$(json '[(p["state"], p["key_type"]) for p in s["pairs"] if p["id"] == "01"]')" = "[('active', 'EC P-384')]"
check "pair 02 is pending, RSA 3072, no certificate" test "$(json '[(p["state"], p["key_type"], p["subject"]) for p in s["pairs"] if p["id"] == "02"]')" = "[('pending', 'RSA 3072', None)]"
check "active names pair 01" test "$(json 's["active"]')" = "01"
check "subject, issuer, serial of the active pair" test "$(json '[p["subject"], p["issuer"], p["serial"]][0] if False else [(p["subject"], p["issuer"], p["serial"]) for p in s["pairs"] if p["id"]=="01"][0]')" = "('CN=phc-status,O=Test Energy', 'CN=Powerhub Test Root CA,O=Tesla Test', '$(cert_serial "$TMP/01.pem")')"
check "days left of a 5-day certificate" test "$(json '[p["days_left"] for p in s["pairs"] if p["id"]=="01"][0]')" -ge 4
check "not_after is the certificate's" test "$(json '[p["not_after"] for p in s["pairs"] if p["id"]=="01"][0]')" = "$(date -u -d "$(openssl x509 -in "$TMP/01.pem" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)"
check "sha256 is the certificate's" test "$(json '[p["sha256"] for p in s["pairs"] if p["id"]=="01"][0]')" = "$(openssl x509 -in "$TMP/01.pem" -outform DER | sha256sum | cut -d' ' -f1)"
check "CA expiry and fingerprint" test "$(json 's["ca"][0]["sha256"]')" = "$(cat "$PHC_PKI/ca-sha256.txt")"
check "CA days left" test "$(json 's["ca"][0]["days_left"]')" -ge 3600
check "pinned addresses" test "$(json 's["pinned_ips"]')" = "['127.0.0.1']"
check "credential expiry" test "$(json 's["credential_expires"]')" = "2099-06-30T00:00:00Z"
check "credential days left" test "$(json 's["credential_days_left"]')" -gt 20000
check "the PIN is not in the status" bash -c "! grep -qw 1234 '$TMP/out'"

expect 0 "" "status (text)" -- phc status
check "text lists pair 01 active" grep -Eq "^01 +active +EC P-384 " "$TMP/out"
check "text lists pair 02 pending" grep -Eq "^02 +pending +RSA 3072 .*no certificate yet" "$TMP/out"
check "text shows the CA" grep -q "^CA 'CN=Powerhub Test Root CA,O=Tesla Test': valid until" "$TMP/out"
check "text shows the pinned addresses" grep -q "^pinned addresses: 127.0.0.1$" "$TMP/out"
check "text shows the credential" grep -q "^client credential 'plant-42': expires 2099-06-30" "$TMP/out"

# --- check: thresholds ------------------------------------------------------------------------
expect 2 "" "a certificate issued for 5 days is CRITICAL at --crit-days 7" -- phc check --crit-days 7
check "CRITICAL names the certificate and days" grep -Eq "^PHC CRITICAL - certificate 'CN=phc-status,O=Test Energy' \(id 01\) expires in [45] days" "$TMP/out"
check "performance data" grep -Eq "\| cert_days=[45];30;7 ca_days=[0-9]+;30;7 credential_days=[0-9]+;30;7$" "$TMP/out"
expect 1 "" "WARNING between --crit-days and --warn-days" -- phc check --warn-days 10 --crit-days 3
check "WARNING line" grep -q "^PHC WARNING - certificate" "$TMP/out"
expect 0 "" "OK below both thresholds" -- phc check --warn-days 3 --crit-days 2
check "OK line with CA and credential" grep -Eq "^PHC OK - certificate .*; CA 'CN=Powerhub Test Root CA,O=Tesla Test' expires in [0-9]+ days; client credential expires in [0-9]+ days" "$TMP/out"
expect 3 "must not exceed" "crit above warn is UNKNOWN" -- phc check --warn-days 3 --crit-days 9
expect 3 "must be a number of days" "a bad number is UNKNOWN" -- phc check --warn-days x
expect 3 "/nonexistent.cnf" "an unreadable config is UNKNOWN" -- "$PHC_BIN" --config /nonexistent.cnf check
check "UNKNOWN line on stdout" grep -q "^PHC UNKNOWN - config /nonexistent.cnf" "$TMP/out"
echo 9999 >"$TMP/wrongpin"
write_config "$TMP/wrongpin.cnf" "$MOCK_PORT"
set_key "$TMP/wrongpin.cnf" pin "file:$TMP/wrongpin"
expect 3 "not retried" "a wrong PIN is UNKNOWN" -- "$PHC_BIN" --config "$TMP/wrongpin.cnf" check

# The credential and the CA count too.
write_config "$TMP/cred.cnf" "$MOCK_PORT" "client_id = plant-42" "client_secret = env:S" \
    "credential_expires = $(date -u -d '+3 days' +%Y-%m-%d)"
expect 2 "" "a credential expiring in 3 days is CRITICAL" -- "$PHC_BIN" --config "$TMP/cred.cnf" check --warn-days 3 --crit-days 3
check "... and says so" grep -q "client credential expires in [0-9] day" "$TMP/out"
expect 2 "" "a CA expiring within --crit-days is CRITICAL" -- phc check --warn-days 3700 --crit-days 3700
check "... and names the CA" grep -q "CA 'CN=Powerhub Test Root CA,O=Tesla Test' expires in" "$TMP/out"

# A successor installed before the active pair expires counts.
sign_csr "$TMP/02.csr" "$TMP/02.pem" 90
phc install "$TMP/02.pem" >/dev/null
expect 0 "" "after renewal the check is OK again" -- phc check --crit-days 7
check "... naming the new pair" grep -Eq "\(id 02\) expires in (89|90) days" "$TMP/out"

# --- --prometheus ------------------------------------------------------------------------------
expect 0 "" "check --prometheus" -- phc check --prometheus "$TMP/phc.prom"
check "metrics: status" grep -qx "phc_check_status 0" "$TMP/phc.prom"
check "metrics: active certificate" grep -Eq "^phc_certificate_not_after_seconds\{id=\"02\",state=\"active\",serial=\"$(cert_serial "$TMP/02.pem")\",subject=\"CN=phc-status,O=Test Energy\"\} [0-9]+$" "$TMP/phc.prom"
check "metrics: retired certificate" grep -q '^phc_certificate_not_after_seconds{id="01",state="retired"' "$TMP/phc.prom"
check "metrics: pairs by state" grep -qx 'phc_pairs{state="active"} 1' "$TMP/phc.prom"
check "metrics: CA" grep -q "^phc_ca_not_after_seconds{sha256=\"$(cat "$PHC_PKI/ca-sha256.txt")\"" "$TMP/phc.prom"
check "metrics: credential" grep -qx "phc_credential_expires_seconds 4086460800" "$TMP/phc.prom"
check "metrics file is world-readable (node_exporter)" test "$(stat -c %a "$TMP/phc.prom")" = 644
check "no temporary file left beside it" bash -c "! ls '$TMP' | grep -q 'phc.prom.tmp'"
expect 2 "" "CRITICAL is written as well" -- phc check --crit-days 3700 --warn-days 3700 --prometheus "$TMP/phc.prom"
check "metrics: status 2" grep -qx "phc_check_status 2" "$TMP/phc.prom"
expect 3 "" "UNKNOWN is written as well" -- "$PHC_BIN" --config "$TMP/wrongpin.cnf" check --prometheus "$TMP/phc.prom"
check "metrics: status 3" grep -qx "phc_check_status 3" "$TMP/phc.prom"
if command -v promtool >/dev/null; then
    check "promtool accepts the metrics" promtool check metrics <"$TMP/phc.prom"
fi
expect 3 "cannot write metrics to $TMP/no/dir/x.prom" "an unwritable metrics path is UNKNOWN" -- phc check --prometheus "$TMP/no/dir/x.prom"
check "... and the summary line says UNKNOWN and why (not OK)" grep -Eq "^PHC UNKNOWN - certificate .*; cannot write metrics to $TMP/no/dir/x.prom: No such file or directory( \||\$)" "$TMP/out"
# (the wrong-PIN run above leaves the token's "wrong PINs were entered recently" flag: a warning line)
check "... one line on stderr" test "$(grep -vc '^phc: \[warning\]' "$TMP/err")" -eq 1 -a "$(grep -v '^phc: \[warning\]' "$TMP/err" | cut -c1-5)" = "phc: "
expect 2 "" "a CRITICAL result stays CRITICAL when the metrics cannot be written" -- \
    phc check -w 3700 -c 3700 --prometheus "$TMP/no/dir/x.prom"
check "... and its summary names the metrics file too" grep -q "^PHC CRITICAL - .*; cannot write metrics to $TMP/no/dir/x.prom" "$TMP/out"

# --- -w / -c, the plugin convention's short forms ----------------------------------------------
expect 2 "" "check -w 3700 -c 3700: CRITICAL" -- phc check -w 3700 -c 3700
check "... the thresholds in the performance data" grep -q "cert_days=[0-9]*;3700;3700" "$TMP/out"
expect 1 "" "check -w 3700 -c 1: WARNING" -- phc check -w 3700 -c 1
expect 3 "phc: --crit-days (40) must not exceed --warn-days (30)" "check -c 40 -w 30 refused (UNKNOWN)" -- phc check -c 40 -w 30
expect 3 "phc: --warn-days must be a number of days from 0 to 36500: 'x'" "check -w x refused" -- phc check -w x

# --- --json -----------------------------------------------------------------------------------
expect 0 "" "check --json" -- phc check --json
check "check --json: one JSON object with every field" python3 -c "
import json, sys
text = open('$TMP/out').read()
assert text.count('\n') == 1, text
c = json.loads(text)
assert set(c) == {'state', 'exit_code', 'summary', 'perfdata', 'findings', 'prometheus'}, c.keys()
assert c['state'] == 'OK' and c['exit_code'] == 0, c
assert c['summary'].startswith(\"certificate 'CN=phc-status,O=Test Energy' (id 02) expires in\"), c
assert set(c['perfdata']) == {'cert_days', 'ca_days', 'credential_days'}, c['perfdata']
assert c['perfdata']['cert_days']['warn'] == 30 and c['perfdata']['cert_days']['crit'] == 7, c
assert c['perfdata']['cert_days']['value'] in (89, 90), c
assert any(f['name'] == 'decoy' and f['result'] == 'pass' and f['detail'] for f in c['findings']), c
assert c['prometheus'] is None, c"
expect 2 "" "check --json -w 3700 -c 3700: CRITICAL" -- phc check --json -w 3700 -c 3700
check "... state CRITICAL, exit_code 2" python3 -c "import json; c=json.load(open('$TMP/out')); assert (c['state'], c['exit_code']) == ('CRITICAL', 2), c"
expect 3 "cannot write metrics" "check --json --prometheus unwritable" -- phc check --json --prometheus "$TMP/no/dir/x.prom"
check "... state UNKNOWN, the reason in the summary, written false" python3 -c "
import json; c = json.load(open('$TMP/out'))
assert (c['state'], c['exit_code']) == ('UNKNOWN', 3), c
assert 'cannot write metrics to $TMP/no/dir/x.prom' in c['summary'], c
assert c['prometheus'] == {'file': '$TMP/no/dir/x.prom', 'written': False}, c"
expect 0 "" "check --json --prometheus FILE" -- phc check --json --prometheus "$TMP/j.prom"
check "... written true" python3 -c "
import json; c = json.load(open('$TMP/out'))
assert c['prometheus'] == {'file': '$TMP/j.prom', 'written': True}, c"
check "... and the file holds the metrics" grep -qx "phc_check_status 0" "$TMP/j.prom"
expect 0 "" "check --json --trust" -- phc check --json --trust
check "... every finding of the self-test" python3 -c "
import json; c = json.load(open('$TMP/out'))
names = [f['name'] for f in c['findings']]
assert {'ca_sha256', 'decoy', 'ca_expiry'} <= set(names), names"
expect 3 "" "check --json with a wrong PIN: UNKNOWN as JSON" -- "$PHC_BIN" --config "$TMP/wrongpin.cnf" check --json
check "... state UNKNOWN and the reason" python3 -c "
import json; c = json.load(open('$TMP/out'))
assert c['state'] == 'UNKNOWN' and c['exit_code'] == 3 and c['summary'], c"

# --- status without a token (client credentials only) -------------------------------------------
cat >"$TMP/cred-only.cnf" <<EOF
[phconnect]
url = https://api.powerhub.test:$MOCK_PORT
ca_file = $PHC_PKI/ca.pem
client_id = plant-42
client_secret = env:PHC_TEST_SECRET
EOF
expect 0 "" "status without a key" -- "$PHC_BIN" --config "$TMP/cred-only.cnf" status --json
check "no token, no pairs" test "$(python3 -c "import json; s=json.load(open('$TMP/out')); print(s['token'], s['pairs'], s['pinned_ips'])")" = "None [] []"

finish
