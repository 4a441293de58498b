#!/usr/bin/env bash
# Hot rotation by the periodic check alone (reload_interval = 1, no reload calls): a running
# client switches to a renewed certificate without a restart and without a failed request,
# and once it has switched it never presents the old one again.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT" "reload_interval = 1"
OLD=$(openssl x509 -in "$TMP/client.pem" -noout -serial | cut -d= -f2)

"$PHC_ROTATE" "$CFG" 2 60 0 "$TMP/stop" fresh >"$TMP/rot.out" 2>"$TMP/rot.err" &
DRIVER=$!
wait_for "$TMP/rot.out" "^seen 1 $OLD\$"
sleep 1.1 # notBefore has one-second resolution: the renewal must be strictly newer
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/renewed.pem" 600 >/dev/null
bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/renewed.pem" client 01
NEW=$(openssl x509 -in "$TMP/renewed.pem" -noout -serial | cut -d= -f2)
for _ in $(seq 1 100); do
    [ "$(grep -c " $NEW\$" "$TMP/rot.out")" -ge 2 ] && break
    sleep 0.1
done
sleep 0.5
touch "$TMP/stop"
wait $DRIVER
rc=$?
cat "$TMP/rot.err"
check "periodic check under load: driver exit 0" test $rc -eq 0
check "zero failed requests" grep -q ' failures 0 ' "$TMP/rot.out"
check "the client changed identity once, with no reload call" grep -q ' reloads 0 changes 0 ' "$TMP/rot.out"
check "both threads went from $OLD to $NEW and never back" \
    test "$(grep -c -x "serials $OLD $NEW" "$TMP/rot.out")" -eq 2
finish
