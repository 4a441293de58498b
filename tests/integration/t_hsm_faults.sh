#!/usr/bin/env bash
# Token faults in a running client: the token disappears (SoftHSM's token directory moved
# away), comes back, and later is re-initialised under the same label with a new key. Requests
# fail with an HSM error naming the token while it is gone - fast, with reopening attempts
# bounded - and succeed again once it is back, without restarting the client.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
OLD=$(openssl x509 -in "$TMP/client.pem" -noout -serial | cut -d= -f2)

"$PHC_FAULT" "$CFG" 90 100 "$TMP/stop" "$TMP/pause" >"$TMP/drv.out" 2>"$TMP/drv.err" &
DRIVER=$!
wait_for "$TMP/drv.out" " 0 [0-9]+ $OLD\$"
sleep 0.5
mv "$TMP/tok/tokens" "$TMP/tok/tokens.away"
mkdir "$TMP/tok/tokens"
wait_for "$TMP/drv.out" " 3 [0-9]+ "
sleep 1
rmdir "$TMP/tok/tokens"
mv "$TMP/tok/tokens.away" "$TMP/tok/tokens"
# Back: wait for a success after the first failure.
for _ in $(seq 1 300); do
    awk '$2 == 3 {f = 1} f && $2 == 0' "$TMP/drv.out" | grep -q . && break
    sleep 0.1
done
# Re-initialise: a new token with the same label, a new key and a new certificate. The
# running client sends nothing meanwhile (a maintenance window; it keeps its old, now dead,
# sessions): SoftHSM's file store does not survive another process logging in while the token
# is being initialised, which a hardware token serialises itself.
touch "$TMP/pause"
rm -rf "$TMP/tok/tokens"/*
softhsm2-util --init-token --free --label phc-test --so-pin 12345678 --pin "$(cat "$TMP/tok/pin")" >/dev/null
pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin "$(cat "$TMP/tok/pin")" --keypairgen \
    --key-type rsa:2048 --label client --id 01 --usage-sign --sensitive >/dev/null 2>&1
pkcs11-tool --module "$SOFTHSM_MODULE" --read-object --type pubkey --id 01 -o "$TMP/pub2.der" >/dev/null 2>&1
openssl pkey -pubin -inform DER -in "$TMP/pub2.der" -out "$TMP/pub2.pem"
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/pub2.pem" "/O=Test Energy/CN=phc-test-client" "$TMP/client2.pem" 365 >/dev/null
bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client2.pem" client 01
NEW=$(openssl x509 -in "$TMP/client2.pem" -noout -serial | cut -d= -f2)
rm -f "$TMP/pause"
wait_for "$TMP/drv.out" " 0 [0-9]+ $NEW\$"
sleep 0.5
touch "$TMP/stop"
wait $DRIVER
cat "$TMP/drv.err"
check "the driver ran throughout ($(wc -l <"$TMP/drv.out") requests)" test "$(wc -l <"$TMP/drv.out")" -ge 20

check "requests succeeded before the fault" grep -q " 0 [0-9]* $OLD\$" "$TMP/drv.out"
check "while the token was gone, requests failed with exit 3 naming the token" \
    grep -q " 3 [0-9]* .*phc-test" "$TMP/drv.out"
# (While the token is being re-initialised its user PIN is briefly not set: a PIN error.)
check "every failure was a token failure: HSM or PIN, never network, trust or internal" \
    bash -c "! awk '\$2 != 0 && \$2 != 3 && \$2 != 4' '$TMP/drv.out' | grep -q ."
check "no request hung: each took under 2 s" bash -c "! awk '\$3 > 2000' '$TMP/drv.out' | grep -q ."
first_fail=$(awk '$2 == 3 {print NR; exit}' "$TMP/drv.out")
check "after the token came back, requests succeeded again with the same key" \
    bash -c "tail -n +$first_fail '$TMP/drv.out' | grep -q ' 0 [0-9]* $OLD\$'"
check "after re-initialisation under the same label, the new key and certificate serve" \
    grep -q " 0 [0-9]* $NEW\$" "$TMP/drv.out"
check "the last request succeeded" bash -c "tail -1 '$TMP/drv.out' | grep -q ' 0 [0-9]* $NEW\$'"
# Reopening is rate-limited: the slow path (the reopen attempt itself) runs at most about
# once a second, the other failures answer at once.
slow=$(awk '$2 == 3 && $3 >= 1' "$TMP/drv.out" | wc -l)
fails=$(awk '$2 == 3' "$TMP/drv.out" | wc -l)
echo "# $fails HSM failures, of which $slow took 1 ms or more"
if [ "$T_FAIL" -gt 0 ]; then
    echo "# old $OLD new $NEW; the driver saw:"
    cut -d' ' -f2- "$TMP/drv.out" | cut -c1-120 | uniq -c | sed 's/^/# /'
fi
finish
