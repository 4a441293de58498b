#!/usr/bin/env bash
# Two answers made exact (issue 13, info item):
#  - 304 Not Modified is not a redirect: an ordinary non-2xx answer, exit 1 with the status
#    shown (a redirect is still policy, exit 6);
#  - a non-idempotent request (POST) is never sent twice: not by libcurl when a reused
#    connection gives no answer, and not by the connector when a network error coincides with
#    a token failure. It is sent again only when it provably never reached the server (its new
#    connection's TLS handshake never completed). The mock logs every request, so the POSTs
#    it received are counted.
. "$(dirname "$0")/lib.sh"
: "${PHC_RELOAD:?}" "${PHC_HANG_MODULE:?}"

make_token

# --- 304 -------------------------------------------------------------------------------------------
start_mock m304 --fault status304
write_config "$TMP/304.cnf" "$MOCK_PORT"
expect 1 "phc: server answered HTTP 304 for GET /v2/asset/sites" "304: an HTTP answer (exit 1), not a redirect" \
    -- "$PHC_BIN" --config "$TMP/304.cnf" request -i /v2/asset/sites
check "304: the status line is shown with -i" grep -q "^HTTP/1.1 304" "$TMP/out"
start_mock m302 --fault redirect
write_config "$TMP/302.cnf" "$MOCK_PORT"
expect 6 "redirects are never followed" "302: still a redirect, refused by policy (exit 6)" \
    -- "$PHC_BIN" --config "$TMP/302.cnf" request /v2/asset/sites

# --- POST and a reused connection that gives no answer ---------------------------------------------
posts() { # posts MOCKNAME: POSTs to /v2/asset/tokens the mock received
    grep -c "POST /v2/asset/tokens" "$TMP/$1.log" 2>/dev/null
}
# drive NAME CONFIG: a reload_driver on CONFIG fed from a FIFO; step WHAT CMD REGEX as in
# t_reload_trust.sh.
drive() {
    rm -f "$TMP/$1.cmd" "$TMP/$1.out"
    mkfifo "$TMP/$1.cmd"
    : >"$TMP/$1.out"
    "$PHC_RELOAD" "$2" <"$TMP/$1.cmd" >"$TMP/$1.out" 2>"$TMP/$1.err" &
    T_PIDS+=("$!")
    exec 3>"$TMP/$1.cmd"
    DRV=$1
    n=0
}
step() {
    local what=$1 cmd=$2 want=$3 got
    echo "$cmd" >&3
    n=$((n + 1))
    for _ in $(seq 1 300); do
        [ "$(wc -l <"$TMP/$DRV.out")" -ge "$n" ] && break
        sleep 0.1
    done
    got=$(sed -n "${n}p" "$TMP/$DRV.out")
    if [[ $got =~ $want ]]; then ok "$what"; else not_ok "$what: wanted /$want/, got '$got'"; fi
}

start_mock drop --fault drop-post-once
write_config "$TMP/drop.cnf" "$MOCK_PORT"
drive a "$TMP/drop.cnf"
step "a GET leaves a kept connection" "req /v2/asset/sites" "^req 0 200 "
step "a POST the server takes and then drops without an answer: a network error (exit 7)" \
    "post 0 /v2/asset/tokens" "^req 7 0 "
check "... and the server received it once ($(posts drop))" test "$(posts drop)" -eq 1
step "the next POST is answered" "post 0 /v2/asset/tokens" "^req 0 200 "
check "... two POSTs in all ($(posts drop))" test "$(posts drop)" -eq 2
exec 3>&-

# --- a network error after the POST was sent, and the token stops signing at that moment ----------
export PHC_HANG_FAIL_SIGN_FILE=$TMP/failsign
start_mock both --fault drop-post-once
write_config "$TMP/both.cnf" "$MOCK_PORT"
set_key "$TMP/both.cnf" pkcs11_module "$PHC_HANG_MODULE"
drive b "$TMP/both.cnf"
step "a first request (full handshake, one signature)" "req /echo" "^req 0 200 "
echo 1 >"$TMP/failsign" # the next signature - the connector's test signature - fails
step "POST sent, dropped, token fails its test signature: not sent again (exit 7)" \
    "post 1 /v2/asset/tokens" "^req 7 0 .*not sent again: the request may have reached the server \(the token also stopped signing: token 'phc-test' did not sign"
check "... the token's failure was seen (the failing signature was used)" grep -qx 0 "$TMP/failsign"
check "... and the server received the POST once ($(posts both))" test "$(posts both)" -eq 1
# A POST whose new connection could not complete its handshake because the token failed never
# reached the server: after reopening the token it is sent, once.
echo 2 >"$TMP/failsign" # the handshake's signature and the test signature fail
step "POST whose handshake failed on the token: sent after the token was reopened" \
    "post 3 /v2/asset/tokens" "^req 0 200 "
check "... both failing signatures were used" grep -qx 0 "$TMP/failsign"
check "... and the server received that POST once ($(posts both) in all)" test "$(posts both)" -eq 2
exec 3>&-
if [ "$T_FAIL" -gt 0 ]; then
    sed 's/^/# a: /' "$TMP/a.out"
    sed 's/^/# b: /' "$TMP/b.out"
    sed 's/^/# both.log: /' "$TMP/both.log"
fi
finish
