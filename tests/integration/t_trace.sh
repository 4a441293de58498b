#!/usr/bin/env bash
# -vv traces each request and response: the request line, header names and values that are
# not secret, the status line and response headers, and the time each phase took (connect,
# TLS, first byte, total, from libcurl's CURLINFO_*_TIME_T); Authorization, Cookie,
# Set-Cookie and every header or query parameter whose name says it carries a token, key or
# secret are redacted before the log callback sees them. --log-time puts a UTC timestamp on
# every log line, before or after the subcommand. The PIN, the client secret, the Basic
# credential and the bearer tokens the mock issued never appear (auth_lib.sh's leak check).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/auth_lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
PIN=$(cat "$TMP/tok/pin")
COOKIE_SECRET=ck-9Qz2w7Vb
APIKEY_SECRET=ak-4Lr8x1Tn
QUERY_SECRET=qt-6Hs3m5Pe

aexpect 0 "" "-vv request with secret-bearing headers and query" -- \
    "$PHC_BIN" --config "$CFG" -vv request -H "Cookie: sid=$COOKIE_SECRET" \
    -H "X-Api-Key: $APIKEY_SECRET" -H "X-Mock-Set-Cookie: sess=$COOKIE_SECRET; Secure" \
    -H 'X-Trace-Me: visible-42' "/echo?site=STE-1&access_token=$QUERY_SECRET"
E=$TMP/err
check "request line, query value of access_token redacted" \
    grep -qF "phc: [debug] > GET /echo?site=STE-1&access_token=[redacted] HTTP/1.1" "$E"
check "Host header shown" grep -qF "phc: [debug] > Host: api.powerhub.test:$MOCK_PORT" "$E"
check "a plain header shown with its value" grep -qF "phc: [debug] > X-Trace-Me: visible-42" "$E"
check "Cookie redacted" grep -qF "phc: [debug] > Cookie: [redacted]" "$E"
check "X-Api-Key redacted" grep -qF "phc: [debug] > X-Api-Key: [redacted]" "$E"
check "status line" grep -qF "phc: [debug] < HTTP/1.1 200 OK" "$E"
check "Set-Cookie redacted" grep -qF "phc: [debug] < Set-Cookie: [redacted]" "$E"
check "a response header shown" grep -qiF "phc: [debug] < Content-Type: application/json" "$E"
check "timing line with the four phases" \
    grep -qE '^phc: \[debug\] timing: connect [0-9]+\.[0-9]{3} ms, TLS [0-9]+\.[0-9]{3} ms, first byte [0-9]+\.[0-9]{3} ms, total [0-9]+\.[0-9]{3} ms$' "$E"
check "-v's connection line comes before the request it carries" \
    bash -c 'grep -nE "\[info\] new connection|\] > GET /echo" "$1" | head -1 | grep -q "new connection"' _ "$E"
check "no cookie, key or query secret in the trace" \
    bash -c '! grep -qF -e "$1" -e "$2" -e "$3" "$4"' _ "$COOKIE_SECRET" "$APIKEY_SECRET" "$QUERY_SECRET" "$E"
check "the server did get them (the trace hides, the request does not)" \
    bash -c 'grep -qF "$1" "$2" && grep -qF "$3" "$2"' _ "$COOKIE_SECRET" "$TMP/out" "$APIKEY_SECRET"
check "no PIN in the trace" bash -c '! grep -qF -- "$1" "$2"' _ "$PIN" "$E"
check "no body in the trace" bash -c '! grep -q "client_subject" "$1"' _ "$E"

aexpect 0 "" "-v only: no trace" -- "$PHC_BIN" --config "$CFG" -v request /v2/asset/sites
check "-v: no header lines, no timing" bash -c '! grep -qE "\[debug\] (>|<|timing)" "$1"' _ "$E"

# --log-time, before and after the subcommand
aexpect 0 "" "--log-time -vv" -- "$PHC_BIN" --config "$CFG" --log-time -vv request /v2/asset/sites
check "every log line stamped (UTC, milliseconds)" bash -c \
    '[ -s "$1" ] && ! grep -vE "^phc: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z \[(debug|info|warning)\] " "$1"' _ "$E"
aexpect 0 "" "-vv --log-time after the subcommand" -- "$PHC_BIN" --config "$CFG" request -vv --log-time /v2/asset/sites
check "after the subcommand: stamped trace" grep -qE '^phc: [0-9T:.-]+Z \[debug\] timing: ' "$E"
expect 0 "" "--log-time without -v: no log line, nothing stamped" -- "$PHC_BIN" --config "$CFG" --log-time request /v2/asset/sites
check "--log-time alone adds nothing to stderr" test ! -s "$E"

# A reused connection says so (two requests on one client: the bench driver is overkill; an
# HTTP error still traces): 404 traced with its status line and timing.
aexpect 1 "server answered HTTP 404" "a 404 is traced too" -- "$PHC_BIN" --config "$CFG" -vv request /nope
check "404 status line traced" grep -qF "phc: [debug] < HTTP/1.1 404" "$E"

# Client credentials: Basic to the token endpoint, Bearer to the API, both redacted.
start_creds_mock creds
write_creds_config "$TMP/c.cnf" "$MOCK_PORT"
aexpect 0 "" "-vv with client credentials" -- "$PHC_BIN" --config "$TMP/c.cnf" -vv request /v2/asset/sites
check "token request traced, Basic credential redacted" grep -qF "phc: [debug] > Authorization: Basic [redacted]" "$E"
check "API request traced, bearer token redacted" grep -qF "phc: [debug] > Authorization: Bearer [redacted]" "$E"
check "token endpoint's request line" grep -qF "phc: [debug] > POST /v1/auth/token HTTP/1.1" "$E"
leak_check

finish
