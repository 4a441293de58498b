#!/usr/bin/env bash
# A token that stops answering in the middle of a signature (a PKCS#11 shim holds C_Sign):
# requests fail within the handshake's time bound with an HSM error naming the token - the
# client never hangs - and succeed again once the token answers.
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
sed 's/^/# /' "$TMP/drv.out" | awk '{print}' | uniq -c -f3 | head -20

check "requests succeeded before the token hung" bash -c "head -3 '$TMP/drv.out' | grep -q ' 0 '"
check "while it hung, requests failed with exit 3 naming the token and the bound" \
    grep -q " 3 [0-9]* token 'phc-test' did not answer a signing request within 2000 ms" "$TMP/drv.out"
check "only HSM failures" bash -c "! awk '\$2 != 0 && \$2 != 3' '$TMP/drv.out' | grep -q ."
check "no request took longer than two bounds plus a second" \
    bash -c "! awk '\$3 > 5000' '$TMP/drv.out' | grep -q ."
check "requests succeed again after the token answers" bash -c "tail -3 '$TMP/drv.out' | grep -q ' 0 '"
finish
