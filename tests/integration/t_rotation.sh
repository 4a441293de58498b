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

# switched FILE THREADS SERIAL: every thread of a driver has seen SERIAL.
switched() {
    [ "$(grep -c " $3\$" "$1")" -ge "$2" ]
}
wait_switched() { # wait_switched FILE THREADS SERIAL: bounded wait for switched
    local i
    for ((i = 0; i < 300; i++)); do
        switched "$@" && return 0
        sleep 0.1
    done
    return 1
}

# 1. Renewal with a new key: a pending key 02 gets its certificate while 4 threads of one
# client and 2 threads of a client in another process keep making requests. (The other
# process is long-lived on purpose: SoftHSM's file store does not survive logins from other
# processes writing the token file while pkcs11-tool adds an object - a SoftHSM limitation,
# not the connector's; a hardware token serialises this itself.)
bash "$FIX/token.sh" addkey "$TMP/tok" rsa:2048 client 02
# Processes log in one after the other: SoftHSM's file store garbles the token file when
# two processes log in at the same moment.
"$PHC_ROTATE" "$CFG" 4 60 100 "$TMP/stop1" fresh >"$TMP/rot1.out" 2>"$TMP/rot1.err" &
DRIVER=$!
wait_for "$TMP/rot1.out" "^seen 3 $OLD\$"
"$PHC_ROTATE" "$CFG" 2 60 250 "$TMP/stop1" >"$TMP/rot1b.out" 2>"$TMP/rot1b.err" &
DRIVER2=$!
wait_for "$TMP/rot1b.out" "^seen 1 $OLD\$"
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub-02.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/client2.pem" 400 >/dev/null
bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client2.pem" client 02
NEW=$(openssl x509 -in "$TMP/client2.pem" -noout -serial | cut -d= -f2)
wait_switched "$TMP/rot1.out" 4 "$NEW"
wait_switched "$TMP/rot1b.out" 2 "$NEW"
sleep 0.5
touch "$TMP/stop1"
wait $DRIVER
rc=$?
wait $DRIVER2
rc2=$?
cat "$TMP/rot1.err" "$TMP/rot1b.err"
check "rotation to a new key under load: driver exit 0" test $rc -eq 0
check "zero failed requests in the running client" grep -q ' failures 0 ' "$TMP/rot1.out"
check "the running client reported one change" grep -q ' changes 1 ' "$TMP/rot1.out"
check "every thread went from the old serial to the new one and never back" \
    serials_are "$TMP/rot1.out" 4 "$OLD $NEW"
check "zero failed requests in the other process" test $rc2 -eq 0
check "the other process switched too, never back" serials_are "$TMP/rot1b.out" 2 "$OLD $NEW"
expect 0 "" "a new process now presents the new certificate" -- "$PHC_BIN" --config "$CFG" request /echo
check "server saw serial $NEW" grep -q "\"client_serial\":\"$NEW\"" "$TMP/out"

# 2. Renewal with the same key: a second certificate object for key 02, newer.
sleep 1.1 # notBefore has one-second resolution: the renewal must be strictly newer
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub-02.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/client3.pem" 500 >/dev/null
"$PHC_ROTATE" "$CFG" 2 60 100 "$TMP/stop2" >"$TMP/rot2.out" 2>"$TMP/rot2.err" &
DRIVER=$!
wait_for "$TMP/rot2.out" "^seen 1 $NEW\$"
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub-02.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/client3.pem" 500 >/dev/null
bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client3.pem" client 02
NEWER=$(openssl x509 -in "$TMP/client3.pem" -noout -serial | cut -d= -f2)
wait_switched "$TMP/rot2.out" 2 "$NEWER"
sleep 0.5
touch "$TMP/stop2"
wait $DRIVER
check "same-key renewal under load: zero failures" grep -q ' failures 0 ' "$TMP/rot2.out"
check "every thread switched from $NEW to $NEWER and never back" \
    serials_are "$TMP/rot2.out" 2 "$NEW $NEWER"
expect 0 "" "a new process presents the same-key renewal" -- "$PHC_BIN" --config "$CFG" request /echo
check "server saw serial $NEWER" grep -q "\"client_serial\":\"$NEWER\"" "$TMP/out"
if [ "$T_FAIL" -gt 0 ]; then
    for f in client.pem client2.pem client3.pem; do
        echo "# $f: $(openssl x509 -in "$TMP/$f" -noout -serial -startdate -enddate | tr '\n' ' ')"
    done
    pkcs11-tool --module "$SOFTHSM_MODULE" --list-objects --type cert 2>&1 | sed 's/^/# /'
    "$PHC_BIN" --config "$CFG" -v request /echo 2>&1 | grep 'client certificate' | sed 's/^/# /'
fi

finish
