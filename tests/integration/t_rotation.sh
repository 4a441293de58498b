#!/usr/bin/env bash
# Hot rotation: a running client picks up a renewed certificate without a restart and
# without a failed request; once it has switched, no request goes out with the old one (no
# reused connection or TLS session), in kept-alive and in fresh connections alike.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
# serials_are FILE THREADS "S1 S2": every thread saw exactly S1 then S2, in that order.
serials_are() {
    [ "$(grep -c -x "serials $3" "$1")" -eq "$2" ] && [ "$(grep -c '^serials' "$1")" -eq "$2" ]
}
OLD=$(openssl x509 -in "$TMP/client.pem" -noout -serial | cut -d= -f2)

# 1. Renewal with a new key: a pending key 02 gets its certificate while 4 threads run.
bash "$FIX/token.sh" addkey "$TMP/tok" rsa:2048 client 02
"$PHC_ROTATE" "$CFG" 4 5 100 fresh >"$TMP/rot1.out" 2>"$TMP/rot1.err" &
DRIVER=$!
# A second process keeps making requests too, one client per request.
( for _ in $(seq 1 15); do "$PHC_BIN" --config "$CFG" request /echo >/dev/null 2>>"$TMP/procs.err" || echo fail >>"$TMP/procs.fail"; sleep 0.2; done ) &
PROCS=$!
sleep 2
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub-02.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/client2.pem" 400 >/dev/null
bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client2.pem" client 02
NEW=$(openssl x509 -in "$TMP/client2.pem" -noout -serial | cut -d= -f2)
wait $DRIVER
rc=$?
wait $PROCS
cat "$TMP/rot1.err"
check "rotation to a new key under load: driver exit 0" test $rc -eq 0
check "zero failed requests in the running client" grep -q ' failures 0 ' "$TMP/rot1.out"
check "the running client reported one change" grep -q ' changes 1 ' "$TMP/rot1.out"
check "every thread went from the old serial to the new one and never back" \
    serials_are "$TMP/rot1.out" 4 "$OLD $NEW"
check "zero failed requests in the other process" test ! -e "$TMP/procs.fail"
expect 0 "" "a new process now presents the new certificate" -- "$PHC_BIN" --config "$CFG" request /echo
check "server saw serial $NEW" grep -q "\"client_serial\":\"$NEW\"" "$TMP/out"

# 2. Renewal with the same key: a second certificate object for key 02, newer.
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub-02.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/client3.pem" 500 >/dev/null
sleep 1.1 # notBefore has one-second resolution: the renewal must be strictly newer
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub-02.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/client3.pem" 500 >/dev/null
"$PHC_ROTATE" "$CFG" 2 4 100 >"$TMP/rot2.out" 2>"$TMP/rot2.err" &
DRIVER=$!
sleep 1.5
bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client3.pem" client 02
NEWER=$(openssl x509 -in "$TMP/client3.pem" -noout -serial | cut -d= -f2)
wait $DRIVER
check "same-key renewal under load: zero failures" grep -q ' failures 0 ' "$TMP/rot2.out"
check "every thread switched from $NEW to $NEWER and never back" \
    serials_are "$TMP/rot2.out" 2 "$NEW $NEWER"

finish
