#!/usr/bin/env bash
# phc install says when the certificate it just stored does not become the active pair, and
# why, by the rotation rule: newest notBefore, then newest notAfter, then (the very same
# dates) a fixed order of the two certificates' encodings; the request that follows uses the
# pair status calls active. Which certificates install takes: one without any
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

# the very same dates: re-signed until the fixed order puts the new one second (SHA-1 of the
# DER, as OpenSSL's X509_cmp orders), so the tie message is what install must say
new_csr "$TMP/04.csr"
sha1() { openssl x509 -in "$1" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'; }
# (01's SHA-1 can itself be small: one run in six here needed more than 40 signings, so the
# bound is large; a signing takes ~10 ms and the loop stops at the first that sorts first.)
for i in $(seq 1 3000); do
    sign_csr "$TMP/04.csr" "$TMP/04.pem" "dates=$NB-$NA"
    [[ "$(sha1 "$TMP/04.pem")" < "$(sha1 "$TMP/01.pem")" ]] && break
done
check "fixture: 04 sorts before 01 (SHA-1 $(sha1 "$TMP/04.pem") < $(sha1 "$TMP/01.pem"))" \
    test "$(printf '%s\n%s\n' "$(sha1 "$TMP/04.pem")" "$(sha1 "$TMP/01.pem")" | LC_ALL=C sort | head -1)" = "$(sha1 "$TMP/04.pem")"
expect 0 "has the very same notBefore and notAfter, and such a tie is broken by a fixed order of the two certificates (their DER encodings), not by the later installation" \
    "the very same dates: install says the tie went to the other certificate" -- phc install "$TMP/04.pem"
check "tie: 01 still active, and the request uses it" test "$(active_serial)" = "$A1" -a "$(serial_used)" = "$A1"
expect 0 "" "the same certificate again: nothing stored" -- phc install "$TMP/04.pem"
check "the same certificate again: the reason is repeated" grep -q "very same notBefore and notAfter" "$TMP/err"

# a newer certificate without any extendedKeyUsage: installed, active, used by the server
new_csr "$TMP/05.csr"
sign_csr "$TMP/05.csr" "$TMP/05.pem" noeku
check "fixture: 05 has no extendedKeyUsage" bash -c "! openssl x509 -in '$TMP/05.pem' -noout -text | grep -q 'Extended Key Usage'"
expect 0 "" "no extendedKeyUsage (any purpose, RFC 5280): installed" -- phc install "$TMP/05.pem"
check "no extendedKeyUsage: active, no warning" bash -c "grep -q '^active pair: id 05' '$TMP/out' && test ! -s '$TMP/err'"
check "no extendedKeyUsage: the server accepts it for the request" test "$(serial_used)" = "$(active_serial)"

# anyExtendedKeyUsage alone: refused like a missing clientAuth, token unchanged
new_csr "$TMP/06.csr"
sign_csr "$TMP/06.csr" "$TMP/06.pem" anyeku
before=$(pair_states "$CFG")
expect 5 "lacks clientAuth): not installed" "anyExtendedKeyUsage alone: refused" -- phc install "$TMP/06.pem"
check "anyExtendedKeyUsage: token unchanged" test "$(pair_states "$CFG")" = "$before"

finish
