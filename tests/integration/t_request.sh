#!/usr/bin/env bash
# A genuine mutually-authenticated request through phc and the library, against the mock.
. "$(dirname "$0")/lib.sh"

make_token rsa:2048
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"

expect 0 "" "GET /v2/asset/sites succeeds" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites
check "body is the sites fixture" grep -q STE-0001 "$TMP/out"

expect 0 "" "-i shows the status line" -- "$PHC_BIN" --config "$CFG" request -i /v2/asset/sites
check "status line first" grep -q '^HTTP/1.1 200' "$TMP/out"

expect 0 "" "POST /v2/asset/tokens" -- "$PHC_BIN" --config "$CFG" request -X POST -d '{}' -H 'Content-Type: application/json' /v2/asset/tokens
check "token JSON returned" grep -q '"token"' "$TMP/out"

# The server sees our token-held certificate and the headers/body we sent.
echo -n 'hello body' >"$TMP/body"
expect 0 "" "echo with body from a file" -- "$PHC_BIN" --config "$CFG" request -X PUT -H 'X-Test: 42' -d @"$TMP/body" /echo
check "server saw the client certificate" grep -q 'phc-test-client' "$TMP/out"
check "server saw the method" grep -q '"method":"PUT"' "$TMP/out"
check "server saw the body" grep -q 'hello body' "$TMP/out"
check "server saw the header" grep -qi 'x-test' "$TMP/out"

expect 0 "" "-o writes the body to a file" -- "$PHC_BIN" --config "$CFG" request -o "$TMP/sites.json" /v2/asset/sites
check "-o file holds the body" grep -q STE-0001 "$TMP/sites.json"
check "-o leaves stdout empty" test ! -s "$TMP/out"

expect 1 "HTTP 404" "unknown path is an HTTP error with the body still written" -- "$PHC_BIN" --config "$CFG" request /v2/nothing
check "404 body written" grep -q error "$TMP/out"

# -v shows the connection and never the PIN.
expect 0 "TLS session resumed" "-v describes the connection" -- "$PHC_BIN" --config "$CFG" -v request /v2/asset/sites
check "-v names the TLS version" grep -q 'TLSv1' "$TMP/err"
check "-v names the server and its issuer" grep -q "issued by 'CN=Powerhub Test Root CA" "$TMP/err"
check "-v names the client certificate" grep -q "client certificate '.*phc-test-client" "$TMP/err"
check "-v never shows the PIN" bash -c "! grep -q \"\$(cat '$TMP/tok/pin')\" '$TMP/err'"

# A Host header, and a control character in a header, are refused before anything is sent;
# the message names the header.
before=$(mock_stat "$CFG" requests)
expect 2 "phc: header 'Host' is refused" "-H 'Host: ...' refused" -- \
    "$PHC_BIN" --config "$CFG" request -H 'Host: other.powerhub.test' /v2/asset/sites
expect 2 "phc: header 'X-Test' contains a control character" "a CR in a header value refused" -- \
    "$PHC_BIN" --config "$CFG" request -H "$(printf 'X-Test: a\rb')" /v2/asset/sites
expect 2 "phc: header 'X-Test' contains a control character" "an ESC in a header value refused" -- \
    "$PHC_BIN" --config "$CFG" request -H "$(printf 'X-Test: a\033b')" /v2/asset/sites
after=$(mock_stat "$CFG" requests)
check "the refused requests never reached the server ($before -> $after)" test "$((after - before))" -eq 1
expect 0 "" "a tab inside a header value is fine" -- \
    "$PHC_BIN" --config "$CFG" request -H "$(printf 'X-Test: a\tb')" /echo

# Keep-alive and TLS resumption in one client: 20 requests, one TCP connection.
before=$(mock_stat "$CFG" connections)
expect 0 "" "20 requests on one client" -- "$PHC_MULTI" "$CFG" /v2/asset/sites 20 1
after=$(mock_stat "$CFG" connections)
# after counts the mock_stat connection itself: exactly one more for the 20 requests.
check "20 requests used one TCP connection ($before -> $after)" test "$((after - before))" -eq 2

# Several threads share the client: each thread's handle keeps a connection.
expect 0 "" "4 threads x 25 requests on one client" -- "$PHC_MULTI" "$CFG" /v2/asset/sites 100 4

# EC keys work as well as RSA.
rm -rf "$TMP/tok"
make_token ec:P-256
expect 0 "" "EC P-256 token key" -- "$PHC_BIN" --config "$CFG" request /echo
check "server saw the EC client" grep -q 'phc-test-client' "$TMP/out"

finish
