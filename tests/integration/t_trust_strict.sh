#!/usr/bin/env bash
# Certificates the pinned CA issued but a careful client refuses (x509_profile = strict), the
# TLS policy whatever OPENSSL_CONF says, and the offline trust self-test `phc check --trust`.
# Certificates: tests/fixtures/pki_strict.sh; every refusal is exit 5 with the rule's words.
. "$(dirname "$0")/lib.sh"

make_token
CFG=$TMP/phc.cnf
S=$TMP/strict
bash "$FIX/pki_strict.sh" "$PHC_PKI" "$S" >/dev/null || {
    not_ok "pki_strict.sh fixture"
    finish
}
REQ=(request /v2/asset/sites)

# The mock may present weak certificates only with its own OpenSSL security level lowered, which
# its OpenSSL configuration does (system_default applies to every SSL_CTX it makes).
cat >"$TMP/weak-server.cnf" <<EOF
openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = sd
[sd]
CipherString = DEFAULT:@SECLEVEL=0
EOF

serve() { # serve NAME [mock options...]: mock presenting $S/NAME.pem, config pointing at it
    local name=$1
    shift
    OPENSSL_CONF=$TMP/weak-server.cnf start_mock "$name" --cert "$S/$name.pem" --key "$S/$name.key" "$@"
    write_config "$CFG" "$MOCK_PORT"
}
LEAF="server certificate 'CN=api.powerhub.test,O=Tesla Test' issued by 'CN=Powerhub Test Root CA,O=Tesla Test' refused:"

# --- names only from subjectAltName ------------------------------------------------------
serve cnonly
expect 5 "$LEAF not valid for host 'api.powerhub.test' (it has no subjectAltName; a host name only in the subject CN is not accepted)" \
    "host name only in the subject CN refused" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
check "the refused client sent no request" test ! -s "$TMP/cnonly.log"
set_key "$CFG" x509_profile compatible
expect 5 "no subjectAltName" "CN-only refused under compatible too" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"

# --- security level 2: a trust refusal naming the certificate, not a network failure ------
serve rsa1024
expect 5 "$LEAF key too weak for security level 2 (RSA/DSA below 2048 bits, EC below 224 bits) (certificate 'CN=api.powerhub.test,O=Tesla Test')" \
    "RSA-1024 server key refused (TLS 1.3)" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
set_key "$CFG" x509_profile compatible
expect 5 "key too weak for security level 2" "RSA-1024 refused under compatible too" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
serve rsa1024 --tls12-only
expect 5 "key too weak for security level 2" "RSA-1024 server key refused (TLS 1.2)" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"

serve sha1
expect 5 "$LEAF signature too weak for security level 2 (SHA-1 or MD5) (certificate 'CN=api.powerhub.test,O=Tesla Test')" \
    "SHA-1 signature on the leaf refused" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
serve sha1int
expect 5 "issued by 'CN=SHA-1 Issuing CA,O=Tesla Test' refused: signature too weak for security level 2 (SHA-1 or MD5) (certificate 'CN=SHA-1 Issuing CA,O=Tesla Test')" \
    "SHA-1 signature on the intermediate refused" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"

# --- the server leaf profile --------------------------------------------------------------
serve caleaf
expect 5 "$LEAF it is a CA certificate, not a server (end-entity) certificate (RFC 5280 4.2.1.9)" \
    "a CA certificate as the server certificate refused" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
serve anyeku
expect 5 "$LEAF its extendedKeyUsage includes anyExtendedKeyUsage (CA/B BR 7.1.2.7.10)" \
    "anyExtendedKeyUsage refused" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
serve noeku
expect 5 "$LEAF it has no extendedKeyUsage; a server certificate must list serverAuth (CA/B BR 7.1.2.7.10)" \
    "no extendedKeyUsage refused" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
set_key "$CFG" x509_profile compatible
expect 0 "" "no extendedKeyUsage accepted under x509_profile = compatible" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
serve noaki
expect 5 "$LEAF no authorityKeyIdentifier key id (RFC 5280 4.2.1.1)" \
    "missing authorityKeyIdentifier refused (X509_STRICT)" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
set_key "$CFG" x509_profile compatible
expect 0 "" "missing authorityKeyIdentifier accepted under compatible" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
set_key "$CFG" x509_profile lenient
expect 2 "key 'x509_profile': must be strict or compatible" "unknown x509_profile refused" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"

# --- partial chains only at an intermediate pin, and -v says so ----------------------------
start_mock chain --cert "$PHC_PKI/server-int.pem" --key "$PHC_PKI/server-int.key"
write_config "$CFG" "$MOCK_PORT"
set_key "$CFG" ca_file "$PHC_PKI/int.pem"
expect 0 "trusted at the pinned intermediate 'CN=Powerhub Test Issuing CA,O=Tesla Test' (partial chain: ca_file pins a CA that is not self-signed)" \
    "intermediate pin accepted and reported at -v" -- "$PHC_BIN" --config "$CFG" -v "${REQ[@]}"
set_key "$CFG" ca_file "$PHC_PKI/ca.pem"
expect 0 "" "root pin: full chain" -- "$PHC_BIN" --config "$CFG" -v "${REQ[@]}"
check "nothing said about a partial chain with a root pin" bash -c "! grep -q 'partial chain' '$TMP/err'"

# --- TLS policy: min_tls_version, and OPENSSL_CONF cannot weaken a connection ------------
start_mock tls12 --tls12-only
write_config "$CFG" "$MOCK_PORT" "min_tls_version = 1.3"
expect 7 "TLS handshake with https://api.powerhub.test:$MOCK_PORT (address 127.0.0.1) failed" \
    "min_tls_version = 1.3 refuses a TLS 1.2-only server" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
set_key "$CFG" min_tls_version 1.2
expect 0 "" "the same server with min_tls_version = 1.2" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
set_key "$CFG" min_tls_version 1.1
expect 2 "key 'min_tls_version': must be 1.2 or 1.3" "min_tls_version 1.1 refused" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"

cat >"$TMP/null.cnf" <<EOF
openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = sd
[sd]
CipherString = eNULL:@SECLEVEL=0
MinProtocol = TLSv1
Options = UnsafeLegacyRenegotiation
EOF
OPENSSL_CONF=$TMP/null.cnf start_mock plain --tls12-only
write_config "$CFG" "$MOCK_PORT"
OPENSSL_CONF=$TMP/null.cnf expect 7 "TLS handshake with https://api.powerhub.test:$MOCK_PORT (address 127.0.0.1) failed" \
    "an OPENSSL_CONF allowing only eNULL ciphers gets no plaintext connection" -- "$PHC_BIN" --config "$CFG" "${REQ[@]}"
check "the plaintext server saw no request" test ! -s "$TMP/plain.log"
OPENSSL_CONF=$TMP/null.cnf openssl s_client -connect "127.0.0.1:$MOCK_PORT" -cipher 'eNULL:@SECLEVEL=0' \
    </dev/null >"$TMP/sclient.out" 2>&1
check "control: a client following that OPENSSL_CONF does get a NULL cipher" grep -q "Cipher is .*NULL" "$TMP/sclient.out"

# --- phc check --trust: the offline self-test ---------------------------------------------
write_config "$CFG" 1 "ca_sha256 = $(cat "$PHC_PKI/ca-sha256.txt")"
mkdir -p "$TMP/tmpd"
TMPDIR=$TMP/tmpd expect 0 "" "check --trust passes with the pinned CA" -- "$PHC_BIN" --config "$CFG" check --trust --prometheus "$TMP/metrics.prom"
check "summary line" grep -q "^PHC OK - trust self-test passed" "$TMP/out"
check "the decoy was refused, and a careless client would have taken it" \
    grep -q "^decoy: pass - a decoy CA in SSL_CERT_FILE, SSL_CERT_DIR and the connection's own store was refused (a careless client accepts it): server certificate 'CN=api.powerhub.test' issued by 'CN=phc trust self-test decoy CA' refused: not issued by a pinned CA" "$TMP/out"
check "ca_sha256 checked" grep -q "^ca_sha256: pass" "$TMP/out"
check "metrics: phc_trust_selftest 0" grep -qx "phc_trust_selftest 0" "$TMP/metrics.prom"
check "metrics: the decoy finding" grep -qx 'phc_trust_selftest_finding{name="decoy"} 0' "$TMP/metrics.prom"
check "the decoy's directory is gone" test -z "$(ls -A "$TMP/tmpd")"

write_config "$CFG" 1 "ca_sha256 = $(cat "$PHC_PKI/int-sha256.txt")"
expect 2 "" "check --trust: ca_file no longer matches ca_sha256 is CRITICAL" -- "$PHC_BIN" --config "$CFG" check --trust
check "the finding names the fingerprint" grep -q "^ca_sha256: fail - CA certificate 'CN=Powerhub Test Root CA,O=Tesla Test' in $PHC_PKI/ca.pem has SHA-256 $(cat "$PHC_PKI/ca-sha256.txt"), which is not listed in ca_sha256" "$TMP/out"

write_config "$CFG" 1
set_key "$CFG" ca_file "$S/near-ca.pem"
expect 2 "" "check --trust: CA expiring in 5 days is CRITICAL (crit 7)" -- "$PHC_BIN" --config "$CFG" check --trust
check "the expiry finding" grep -q "^ca_expiry: fail - the first pinned CA in $S/near-ca.pem expires in 4 days (within the warning window)" "$TMP/out"
expect 1 "" "check --trust: ... WARNING with --crit-days 3" -- "$PHC_BIN" --config "$CFG" check --trust --crit-days 3
check "still a passed decoy" grep -q "^decoy: pass" "$TMP/out"

write_config "$CFG" 1
expect 0 "" "check --trust --chain: the fixture's chain passes strict" -- "$PHC_BIN" --config "$CFG" check --trust --chain "$PHC_PKI/server-int.pem"
check "chain: pass" grep -q "^chain: pass - the chain of 'CN=api.powerhub.test,O=Tesla Test' passes every rule (x509_profile = strict)" "$TMP/out"
expect 2 "" "check --trust --chain: SHA-1 intermediate and no AKI are CRITICAL" -- "$PHC_BIN" --config "$CFG" check --trust --chain "$S/sha1int.pem"
check "names the level2-signature rule" grep -q "^chain:level2-signature: fail - .*signature too weak for security level 2" "$TMP/out"
expect 2 "" "check --trust --chain: a chain failing two rules" -- "$PHC_BIN" --config "$CFG" check --trust --chain "$S/noaki.pem"
check "x509-strict rule named" grep -q "^chain:x509-strict: fail - .*no authorityKeyIdentifier key id" "$TMP/out"
set_key "$CFG" x509_profile compatible
expect 1 "" "check --trust --chain: under compatible the same chain is a WARNING" -- "$PHC_BIN" --config "$CFG" check --trust --chain "$S/noaki.pem"
check "lifted by compatible" grep -q "^chain:x509-strict: warn - .*(lifted by x509_profile = compatible)" "$TMP/out"
check "the verdict says strict refuses it" grep -q "^chain: warn - the chain of 'CN=api.powerhub.test,O=Tesla Test' is accepted under x509_profile = compatible only; strict refuses it (rules: x509-strict)" "$TMP/out"
expect 2 "" "check --trust --chain: several rules named at once" -- "$PHC_BIN" --config "$CFG" check --trust --chain "$S/cnonly.pem"
check "san-only named" grep -q "^chain:san-only: fail" "$TMP/out"
expect 3 "cannot read chain file $TMP/none.pem" "check --trust --chain of a missing file is UNKNOWN" -- "$PHC_BIN" --config "$CFG" check --trust --chain "$TMP/none.pem"

# plain check and status carry the self-test too
write_config "$CFG" 1
"$PHC_BIN" --config "$CFG" status >"$TMP/status.out" 2>&1
check "status: a trust self-test line" grep -q "^trust self-test: pass (x509_profile strict, min_tls_version 1.2)" "$TMP/status.out"
"$PHC_BIN" --config "$CFG" check --prometheus "$TMP/plain.prom" >/dev/null 2>&1
check "plain check: phc_trust_selftest in the metrics" grep -qx "phc_trust_selftest 0" "$TMP/plain.prom"

finish
