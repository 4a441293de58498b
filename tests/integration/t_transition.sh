#!/usr/bin/env bash
# An announced transition: a config listing old and new addresses, or old and new CA
# certificates side by side (ca_file holding both, ca_sha256 listing both), works with either
# side - and phc install accepts a client certificate from the new CA. "Public Test CA"
# (other-ca) plays the vendor's new CA here.
. "$(dirname "$0")/lib.sh"

make_token
CFG=$TMP/phc.cnf
OLD_FP=$(cat "$PHC_PKI/ca-sha256.txt")
NEW_FP=$(openssl x509 -in "$PHC_PKI/other-ca.pem" -outform DER | sha256sum | cut -d' ' -f1)

# --- addresses: old and new side by side --------------------------------------------------------
start_mock v4
# ::1 stands for an address that does not answer (yet, or any more); nothing listens there.
write_config "$CFG" "$MOCK_PORT"
set_key "$CFG" pinned_ips "::1, 127.0.0.1"
expect 0 "" "old address silent, new one answers" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites
set_key "$CFG" pinned_ips "127.0.0.1, ::1"
expect 0 "" "old address answers, new one not yet" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites
expect 0 "" "the firewall rules cover both addresses" -- "$PHC_BIN" --config "$CFG" firewall
check "... IPv4" grep -q "ip daddr { 127.0.0.1 } tcp dport $MOCK_PORT accept" "$TMP/out"
check "... IPv6" grep -q "ip6 daddr { ::1 } tcp dport $MOCK_PORT accept" "$TMP/out"
expect 0 "" "status lists both addresses" -- "$PHC_BIN" --config "$CFG" status
check "... in order" grep -q "^pinned addresses: 127.0.0.1, ::1$" "$TMP/out"
set_key "$CFG" pinned_ips "::1"
expect 7 "" "with only the silent address the connection fails" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites

# --- CA certificates: old and new side by side -----------------------------------------------------
start_mock oldca
OLD_PORT=$MOCK_PORT
start_mock newca --cert "$PHC_PKI/server-other.pem" --key "$PHC_PKI/server-other.key"
NEW_PORT=$MOCK_PORT
both() { # both PORT: the transition config for the mock on PORT
    write_config "$CFG" "$1" "ca_sha256 = $OLD_FP, $NEW_FP"
    set_key "$CFG" ca_file "$PHC_PKI/ca-both.pem"
}
both "$OLD_PORT"
expect 0 "" "server from the old CA, both CAs pinned" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites
both "$NEW_PORT"
expect 0 "" "server from the new CA, both CAs pinned" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites
expect 0 "" "status shows both CAs" -- "$PHC_BIN" --config "$CFG" status --json
check "... with their fingerprints" python3 -c "
import json; s = json.load(open('$TMP/out'))
assert sorted(c['sha256'] for c in s['ca']) == sorted(['$OLD_FP', '$NEW_FP']), s['ca']"
write_config "$CFG" "$NEW_PORT"
expect 5 "Public Test CA" "before the transition the new CA is refused" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites
write_config "$CFG" "$NEW_PORT" "ca_sha256 = $OLD_FP"
set_key "$CFG" ca_file "$PHC_PKI/ca-both.pem"
expect 2 "not listed in ca_sha256" "ca_file with the new CA but ca_sha256 without it is refused" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites

# The new CA issues the client certificate: phc install accepts it under the transition config,
# and a server that trusts only the new CA for clients accepts the connector.
both "$NEW_PORT"
"$PHC_BIN" --config "$CFG" csr --new-key --csr-out "$TMP/new.csr" >/dev/null
sleep 1.1 # notBefore has one-second resolution: the new pair must be strictly the newest
sign_csr "$TMP/new.csr" "$TMP/new.pem" 365 otherca
write_config "$TMP/oldonly.cnf" "$NEW_PORT"
expect 5 "not trusted" "without the new CA pinned its client certificate is refused" -- "$PHC_BIN" --config "$TMP/oldonly.cnf" install "$TMP/new.pem"
expect 0 "" "with both pinned the new CA's client certificate installs" -- "$PHC_BIN" --config "$CFG" install "$TMP/new.pem"
start_mock newclients --cert "$PHC_PKI/server-other.pem" --key "$PHC_PKI/server-other.key" --client-ca "$PHC_PKI/other-ca.pem"
both "$MOCK_PORT"
expect 0 "" "a server that takes only new-CA clients accepts the connector" -- "$PHC_BIN" --config "$CFG" request /echo
check "... with the new certificate" grep -q "\"client_issuer\":\"CN=Public Test CA,O=Some Public CA\"" "$TMP/out"

finish
