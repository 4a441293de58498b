#!/usr/bin/env bash
# IPv6: pinned_ips with ::1, for a URL whose host is the bracketed literal and for a host name;
# the server certificate is checked against the IPv6 address; a URL address outside pinned_ips
# is refused. (A connection to an unpinned IPv6 address is refused by the socket guard with
# exit 6: tests/unit/http_test.c, since configuration validation never lets one get that far.)
. "$(dirname "$0")/lib.sh"

if ! python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
    echo "# skipped: no IPv6 loopback here"
    echo "0 passed, 0 failed"
    exit 0
fi

make_token
start_mock v6 --listen ::1
CFG=$TMP/v6.cnf

write_config "$CFG" "$MOCK_PORT"
set_key "$CFG" url "https://[::1]:$MOCK_PORT"
set_key "$CFG" pinned_ips "::1"
expect 0 "connection to ::1 port $MOCK_PORT" "url https://[::1]:P with pinned_ips = ::1" -- "$PHC_BIN" --config "$CFG" -v request /v2/asset/sites
check "the sites came back" grep -q STE-0001 "$TMP/out"
check "no CURLOPT_RESOLVE complaint" bash -c '! grep -q RESOLVE "$1"' _ "$TMP/err"
check "the mock saw the request from ::1" grep -q '::1' "$TMP/v6.log"

# The long form of the same address is the same address.
set_key "$CFG" pinned_ips "0:0:0:0:0:0:0:1"
expect 0 "" "pinned_ips in the long form of ::1" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites

write_config "$TMP/name.cnf" "$MOCK_PORT"
set_key "$TMP/name.cnf" pinned_ips "::1"
expect 0 "connection to ::1 port $MOCK_PORT" "host name with pinned_ips = ::1" -- "$PHC_BIN" --config "$TMP/name.cnf" -v request /v2/asset/sites

# Addresses in order, across families: a dead IPv4 address first, then ::1.
set_key "$TMP/name.cnf" pinned_ips "127.0.0.9, ::1"
expect 0 "" "a dead pinned IPv4 address, then ::1" -- "$PHC_BIN" --config "$TMP/name.cnf" request /v2/asset/sites

# Only an address where nothing listens: a network error, not a connection elsewhere.
set_key "$TMP/name.cnf" pinned_ips "127.0.0.1"
expect 7 "cannot connect" "the server is only on ::1, pinned_ips only 127.0.0.1" -- "$PHC_BIN" --config "$TMP/name.cnf" request /v2/asset/sites

set_key "$CFG" pinned_ips "127.0.0.1"
expect 2 "the address ::1 in 'url' is not one of 'pinned_ips'" "an IPv6 url outside pinned_ips is a config error" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites

# The certificate must name the IPv6 address.
start_mock v6wrong --listen ::1 --cert "$PHC_PKI/server-wrongname.pem" --key "$PHC_PKI/server-wrongname.key"
write_config "$TMP/wrong.cnf" "$MOCK_PORT"
set_key "$TMP/wrong.cnf" url "https://[::1]:$MOCK_PORT"
set_key "$TMP/wrong.cnf" pinned_ips "::1"
expect 5 "server certificate 'CN=wrong.powerhub.test,O=Tesla Test' issued by 'CN=Powerhub Test Root CA,O=Tesla Test' refused: not valid for host '::1'" \
    "a certificate without IP:::1 refused for https://[::1]" -- "$PHC_BIN" --config "$TMP/wrong.cnf" request /v2/asset/sites

# A server refusing our certificate over IPv6 is named the same way.
launch_mock v6refuse --listen ::1 --cert "$PHC_PKI/server.pem" --key "$PHC_PKI/server.key" --client-ca "$PHC_PKI/other-ca.pem"
write_config "$TMP/refuse.cnf" "$MOCK_PORT"
set_key "$TMP/refuse.cnf" url "https://[::1]:$MOCK_PORT"
set_key "$TMP/refuse.cnf" pinned_ips "::1"
expect 5 "server https://[::1]:$MOCK_PORT refused client certificate 'CN=phc-test-client,O=Test Energy'" \
    "a refusal over IPv6" -- "$PHC_BIN" --config "$TMP/refuse.cnf" request /v2/asset/sites

finish
