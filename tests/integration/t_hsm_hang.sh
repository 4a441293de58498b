#!/usr/bin/env bash
# A token that stops answering (a PKCS#11 shim holds its calls): first only signatures, then
# every call that opening the token makes too. Requests fail within the handshake's time
# bound (connect_timeout) with an HSM error naming the token - the client never hangs, and
# no pile of threads waits on the dead token - and succeed again once the token answers.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT" "connect_timeout = 2"
set_key "$CFG" pkcs11_module "$PHC_HANG_MODULE"
export PHC_HANG_FILE=$TMP/hang PHC_HANG_TARGET=$SOFTHSM_MODULE

expect 0 "" "the shim module forwards to SoftHSM" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites
"$PHC_FAULT" "$CFG" 60 100 "$TMP/stop" >"$TMP/drv.out" 2>"$TMP/drv.err" &
DRIVER=$!
sleep 1.5
touch "$TMP/hang"
sleep 4.5
rm -f "$TMP/hang"
sleep 3
touch "$TMP/stop"
wait $DRIVER
cat "$TMP/drv.err"
check "the driver ran throughout ($(wc -l <"$TMP/drv.out") requests)" test "$(wc -l <"$TMP/drv.out")" -ge 20
sed 's/^/# /' "$TMP/drv.out" | uniq -c -f3 | head -20

check "requests succeeded before the token hung" bash -c "head -3 '$TMP/drv.out' | grep -q ' 0 '"
check "while it hung, requests failed with exit 3 naming the token and the bound" \
    grep -q " 3 [0-9]* token 'phc-test' did not answer a signing request within 2000 ms" "$TMP/drv.out"
check "only HSM failures" bash -c "! awk '\$2 != 0 && \$2 != 3' '$TMP/drv.out' | grep -q ."
check "no request took longer than two bounds plus a second" \
    bash -c "! awk '\$3 > 5000' '$TMP/drv.out' | grep -q ."
check "requests succeed again after the token answers" bash -c "tail -3 '$TMP/drv.out' | grep -q ' 0 '"

# Every token call hangs: the signature, and then the reopening (session, slot list, login,
# object search). Each request still ends within a bound; reopening is not retried while an
# earlier attempt is still out.
export PHC_HANG_CALLS=C_Sign,C_OpenSession,C_GetSlotList,C_Login,C_FindObjectsInit
rm -f "$TMP/stop"
"$PHC_FAULT" "$CFG" 60 100 "$TMP/stop" >"$TMP/drv2.out" 2>"$TMP/drv2.err" &
DRIVER=$!
wait_for "$TMP/drv2.out" " 0 [0-9]+ "
touch "$TMP/hang"
wait_for "$TMP/drv2.out" "has not answered an earlier attempt" 20
sleep 1
rm -f "$TMP/hang"
for _ in $(seq 1 200); do
    awk '$2 == 3 {f = 1} f && $2 == 0' "$TMP/drv2.out" | grep -q . && break
    sleep 0.1
done
sleep 0.5
touch "$TMP/stop"
wait $DRIVER
sed 's/^/# /' "$TMP/drv2.out" | cut -c1-150 | uniq -c -f3 | head -20
check "a hung reopen is bounded: exit 3 naming the module and the bound" \
    grep -q " 3 [0-9]* the token behind PKCS#11 module '.*' did not answer within 2000 ms while being opened" "$TMP/drv2.out"
check "while the reopen is still out, requests fail at once saying so" \
    grep -q " 3 [0-9] .*has not answered an earlier attempt" "$TMP/drv2.out"
check "no request took longer than two bounds plus a second" \
    bash -c "! awk '\$3 > 5000' '$TMP/drv2.out' | grep -q ."
check "only HSM failures" bash -c "! awk '\$2 != 0 && \$2 != 3' '$TMP/drv2.out' | grep -q ."
check "requests succeed again once every call answers" bash -c "tail -2 '$TMP/drv2.out' | grep -q ' 0 '"
finish
