#!/usr/bin/env bash
# phc install says when the certificate it just stored does not become the active pair, and
# why, by the rotation rule: newest notBefore, then newest notAfter, then (the very same
# dates) the later installation, by the token's private install-order record (without it, a
# fixed order of the two certificates' encodings); the request that follows uses the pair
# status calls active. Which certificates install takes: one without any
# extendedKeyUsage is valid for every purpose (RFC 5280 4.2.1.12) and is installed and used;
# one whose extendedKeyUsage is anyExtendedKeyUsage alone, or lacks clientAuth, is refused
# (OpenSSL servers refuse such a client certificate too).
. "$(dirname "$0")/lib.sh"

make_empty_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
phc() { "$PHC_BIN" --config "$CFG" "$@"; }
stamp() { date -u -d "$1" +%Y%m%d%H%M%SZ; }
NB=$(stamp '-1 hour')
NA=$(stamp '+90 days')
serial_used() { # the serial of the client certificate the last /echo request presented
    phc request /echo | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_serial"])'
}
active_serial() {
    phc status --json | python3 -c '
import json, sys
print([p["serial"] for p in json.load(sys.stdin)["pairs"] if p["state"] == "active"][0])'
}
new_csr() { phc csr --new-key --csr-out "$1" >/dev/null; }

phc enrol --subject "/O=Test Energy/CN=phc-active" --key-type ec:P-256 --csr-out "$TMP/01.csr" >/dev/null
sign_csr "$TMP/01.csr" "$TMP/01.pem" "dates=$NB-$NA"
expect 0 "" "first certificate installed" -- phc install "$TMP/01.pem"
check "first certificate: active, no warning" bash -c "grep -q '^active pair: id 01' '$TMP/out' && test ! -s '$TMP/err'"
A1=$(active_serial)

# an older notBefore: stored, not active, and said so
new_csr "$TMP/02.csr"
sign_csr "$TMP/02.csr" "$TMP/02.pem" "dates=$(stamp '-2 hours')-$(stamp '+200 days')"
expect 0 "phc: [warning] the certificate is stored but is not the active pair: the active pair's certificate (id 01, serial $A1) has a later notBefore" \
    "older notBefore: stored, and install says it is not active" -- phc install "$TMP/02.pem"
check "older notBefore: the warning is one line" test "$(wc -l <"$TMP/err")" -eq 1
check "older notBefore: 02 retired, 01 still active" test "$(pair_states "$CFG")" = "01:active 02:retired"

# the same notBefore, an earlier notAfter
new_csr "$TMP/03.csr"
sign_csr "$TMP/03.csr" "$TMP/03.pem" "dates=$NB-$(stamp '+30 days')"
expect 0 "has the same notBefore and a later notAfter" \
    "same notBefore, earlier notAfter: not active, said so" -- phc install "$TMP/03.pem"
check "the request uses the pair status calls active" test "$(serial_used)" = "$A1"

# The very same dates: the later installation wins, by the token's private install-order
# record. 04 is tried in both orders against 01, so one of the two checks contradicts the
# fixed order (SHA-1 of the DER, X509_cmp) whichever way the signatures fall.
sha1() { openssl x509 -in "$1" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'; }
sha256() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'; }
new_csr "$TMP/04.csr"
sign_csr "$TMP/04.csr" "$TMP/04.pem" "dates=$NB-$NA"
A4=$(cert_serial "$TMP/04.pem")
check "fixture: 01 and 04 have the very same dates" test \
    "$(openssl x509 -in "$TMP/01.pem" -noout -dates)" = "$(openssl x509 -in "$TMP/04.pem" -noout -dates)"
# the pair the fixed order picks (the greater SHA-1), for a token without the record
if [[ "$(sha1 "$TMP/04.pem")" > "$(sha1 "$TMP/01.pem")" ]]; then FIXED=$A4; else FIXED=$A1; fi
echo "# fixed order (greater SHA-1) picks serial $FIXED of 01=$A1, 04=$A4"
tie_line() { phc status | grep '^tie: '; }

# 01 then 04: 04 active, without a warning, in status and for the server
expect 0 "" "tie, 01 then 04: installed" -- phc install "$TMP/04.pem"
check "tie, 01 then 04: installed and active, no warning" bash -c "grep -q '^active pair: id 04' '$TMP/out' && test ! -s '$TMP/err'"
check "tie, 01 then 04: status calls 04 active" test "$(active_serial)" = "$A4"
check "tie, 01 then 04: the request uses 04" test "$(serial_used)" = "$A4"
check "tie, 01 then 04: status says the later installation won" bash -c \
    "\"$PHC_BIN\" --config '$CFG' status | grep -qx \"tie: active pair 04 (serial $A4) and pair 01 (serial $A1) have the very same notBefore and notAfter; it was installed later (the token's install-order record), and the later installation wins\""
check "status --json: install_order recorded, 04 after 01" bash -c "\"$PHC_BIN\" --config '$CFG' status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = {p[\"id\"]: p[\"install_seq\"] for p in d[\"pairs\"]}
sys.exit(not (d[\"install_order\"] == \"recorded\" and s[\"04\"] > s[\"03\"] > s[\"02\"] > s[\"01\"] >= 0))'"

# installing 01 again stores nothing and says why it stays retired
expect 0 "has the very same notBefore and notAfter, and it was installed later (the token's install-order record), and the later installation wins ('phc rollback --yes' removes that certificate)" \
    "tie: 01 again, nothing stored, install says 04 was installed later" -- phc install "$TMP/01.pem"
check "tie: 01 again: nothing stored" grep -q "^already on the token, nothing stored" "$TMP/out"

# rollback keeps its contract: the previous pair (01) serves again; installing 04 again
# makes it the latest installation once more
expect 0 "" "tie: rollback --yes" -- phc rollback --yes
check "tie: after rollback 01 is active, in status and for the server" test "$(active_serial)" = "$A1" -a "$(serial_used)" = "$A1"
expect 0 "" "tie: 04 installed again after the rollback" -- phc install "$TMP/04.pem"
check "tie: 04 active again" test "$(active_serial)" = "$A4" -a "$(serial_used)" = "$A4"

# 04 then 01: remove 01's certificate object and install it again: now 01 is the later one
PIN=$(cat "$TMP/tok/pin")
p11() { pkcs11-tool --module "$SOFTHSM_MODULE" --token-label phc-test "$@" 2>/dev/null; }
p11 --login --pin "$PIN" --delete-object --type cert --id 01 >/dev/null
check "fixture: 01's certificate is gone" bash -c "! \"$PHC_BIN\" --config '$CFG' status --json | grep -q '\"serial\":\"$A1\"'"
expect 0 "" "tie, 04 then 01: 01 installed" -- phc install "$TMP/01.pem"
check "tie, 04 then 01: installed and active, no warning" bash -c "grep -q '^active pair: id 01' '$TMP/out' && test ! -s '$TMP/err'"
check "tie, 04 then 01: status calls 01 active and the request uses it" test "$(active_serial)" = "$A1" -a "$(serial_used)" = "$A1"

# the record is private: invisible without the PIN, there with it
p11 --list-objects --type data >"$TMP/public-data"
p11 --login --pin "$PIN" --list-objects --type data >"$TMP/private-data"
check "the install-order record is not readable without login" bash -c "! grep -q 'phconnect install order' '$TMP/public-data'"
check "the install-order record is there for a login, private" bash -c \
    "grep -A3 'phconnect install order' '$TMP/private-data' | grep -q 'private'"

# a public record (anyone can write one without the PIN) naming 04 as the latest is ignored
printf 'phconnect install order 1 gen 999999\n%s\n' "$(sha256 "$TMP/04.pem")" >"$TMP/forged"
p11 --write-object "$TMP/forged" --type data --label "phconnect install order" --application-label phconnect >/dev/null
check "fixture: the forged record was written without login" bash -c \
    "pkcs11-tool --module '$SOFTHSM_MODULE' --token-label phc-test --list-objects --type data 2>/dev/null | grep -q 'phconnect install order'"
check "a public install-order record is ignored: 01 stays active, for the server too" test "$(active_serial)" = "$A1" -a "$(serial_used)" = "$A1"

# a token without the record (installed before phc kept one): the fixed order, and status
# says so; the connector agrees
while p11 --login --pin "$PIN" --delete-object --type data --label "phconnect install order"; do :; done
check "fixture: no install-order record is left" bash -c \
    "! pkcs11-tool --module '$SOFTHSM_MODULE' --token-label phc-test --login --pin '$PIN' --list-objects --type data 2>/dev/null | grep -q 'phconnect install order'"
check "no record: the fixed order picks the active pair (serial $FIXED), in status and for the server" \
    test "$(active_serial)" = "$FIXED" -a "$(serial_used)" = "$FIXED"
check "no record: status says the fixed order decided, and why" bash -c \
    "\"$PHC_BIN\" --config '$CFG' status | grep -q \"^tie: active pair .* have the very same notBefore and notAfter; the token has no install-order record (no certificate was installed by a phc that keeps one), so a fixed order of the two certificates (their DER encodings) decides\$\""
check "no record: status --json says install_order none" bash -c \
    "\"$PHC_BIN\" --config '$CFG' status --json | grep -q '\"install_order\":\"none\"'"

# the first install on such a token starts the record: a recorded certificate counts as the
# later installation over the unrecorded ones, whatever the fixed order says
new_csr "$TMP/05.csr"
sign_csr "$TMP/05.csr" "$TMP/05.pem" "dates=$NB-$NA"
A5=$(cert_serial "$TMP/05.pem")
expect 0 "" "no record: a third tied certificate installed" -- phc install "$TMP/05.pem"
check "no record: the new one is active, in status and for the server" test "$(active_serial)" = "$A5" -a "$(serial_used)" = "$A5"
check "no record: status names the rule against the unrecorded ones" bash -c \
    "\"$PHC_BIN\" --config '$CFG' status | grep -q \"^tie: active pair 05 (serial $A5) and pair .* it is in the token's install-order record and the other is not\""

# a newer certificate without any extendedKeyUsage: installed, active, used by the server
new_csr "$TMP/06.csr"
sign_csr "$TMP/06.csr" "$TMP/06.pem" noeku
check "fixture: 06 has no extendedKeyUsage" bash -c "! openssl x509 -in '$TMP/06.pem' -noout -text | grep -q 'Extended Key Usage'"
expect 0 "" "no extendedKeyUsage (any purpose, RFC 5280): installed" -- phc install "$TMP/06.pem"
check "no extendedKeyUsage: active, no warning" bash -c "grep -q '^active pair: id 06' '$TMP/out' && test ! -s '$TMP/err'"
check "no extendedKeyUsage: the server accepts it for the request" test "$(serial_used)" = "$(active_serial)"

# anyExtendedKeyUsage alone: refused like a missing clientAuth, token unchanged
new_csr "$TMP/07.csr"
sign_csr "$TMP/07.csr" "$TMP/07.pem" anyeku
before=$(pair_states "$CFG")
expect 5 "lacks clientAuth): not installed" "anyExtendedKeyUsage alone: refused" -- phc install "$TMP/07.pem"
check "anyExtendedKeyUsage: token unchanged" test "$(pair_states "$CFG")" = "$before"

finish
