#!/usr/bin/env bash
# phc secret store: the client secret comes from standard input (never argv; no echo on a
# terminal), lands in a private token data object where client_secret points, replaces an
# older value, and is what the connector then authenticates with.
. "$(dirname "$0")/lib.sh"

make_empty_token
SECRET='Xk9vQ2-mP7wL4:zR8s/3cr3t+Q='
cat >"$TMP/creds" <<EOF2
cid-1 $SECRET valid
EOF2
launch_mock creds --cert "$PHC_PKI/server.pem" --key "$PHC_PKI/server.key" \
    --credentials "$TMP/creds" || exit 1
PORT=$MOCK_PORT
URI='pkcs11:token=phc-test;object=client-secret;type=data'
CFG=$TMP/phc.cnf
cat >"$CFG" <<EOF2
[phconnect]
url = https://api.powerhub.test:$PORT
ca_file = $PHC_PKI/ca.pem
pinned_ips = 127.0.0.1
pkcs11_module = $SOFTHSM_MODULE
pin = file:$TMP/tok/pin
client_id = cid-1
client_secret = $URI
EOF2
phc() { "$PHC_BIN" --config "$CFG" "$@"; }
read_back() { # the data object's value, as pkcs11-tool reads it after a login
    pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin 1234 --read-object --type data \
        --label client-secret 2>/dev/null
}
count() {
    pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin 1234 --list-objects --type data 2>/dev/null |
        grep -c "label: *'client-secret'"
}

expect 2 "never from the command line" "a secret on the command line is refused" -- phc secret store "$SECRET"
check "... and not echoed" bash -c "! grep -qF -- '$SECRET' '$TMP/err'"
expect 2 "phc: secret needs the word 'store' (phc secret store;" "phc secret without store" -- phc secret
expect 2 "no client secret on standard input" "empty standard input" -- bash -c "phc() { '$PHC_BIN' --config '$CFG' \"\$@\"; }; phc secret store </dev/null"
check "nothing stored for empty input" test "$(count)" -eq 0

printf 'old-secret-value\n' | phc secret store >"$TMP/out" 2>"$TMP/err"
check "store from a pipe" test $? -eq 0
check "store says where" grep -q "stored in the token data object $URI" "$TMP/out"
check "the value is on the token (trailing newline dropped)" test "$(read_back)" = "old-secret-value"
check "the object is private (no value without login)" bash -c "! pkcs11-tool --module '$SOFTHSM_MODULE' --list-objects --type data 2>/dev/null | grep -q client-secret"

printf '%s' "$SECRET" | phc secret store >/dev/null 2>"$TMP/err"
check "replacing the value" test $? -eq 0
check "the new value is on the token" test "$(read_back)" = "$SECRET"
check "one copy left after replacing" test "$(count)" -eq 1
check "the secret is not in phc's output" bash -c "! grep -qF -- '$SECRET' '$TMP/err'"

expect 0 "" "the connector authenticates with the stored secret" -- phc request /v2/asset/sites
check "... and gets the sites" grep -q STE-0001 "$TMP/out"

# On a terminal the secret is not echoed.
python3 - "$PHC_BIN" "$CFG" <<'EOF2'
import os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--config", sys.argv[2], "secret", "store"])
out, sent = b"", False
deadline = time.time() + 20
while time.time() < deadline:
    if not sent and b"(not shown)" in out:
        os.write(fd, b"typed-on-a-tty-42\n")
        sent = True
    if not select.select([fd], [], [], 0.2)[0]:
        continue
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
else:
    os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out
assert b"typed-on-a-tty-42" not in out, out
assert b"stored in the token data object" in out, out
EOF2
check "on a terminal: prompt, no echo, stored" test $? -eq 0
check "the typed value is on the token" test "$(read_back)" = "typed-on-a-tty-42"

# client_secret that is not a token object: explained, nothing read.
sed -i "s|^client_secret = .*|client_secret = env:PHC_TEST_SECRET|" "$CFG"
echo "key = pkcs11:token=phc-test;object=client;type=private" >>"$CFG"
expect 2 "writes to a token data object" "client_secret from env: is refused" -- bash -c "printf x | '$PHC_BIN' --config '$CFG' secret store"
echo 9999 >"$TMP/wrongpin"
sed -i "s|^client_secret = .*|client_secret = $URI|; s|^pin = .*|pin = file:$TMP/wrongpin|" "$CFG"
expect 4 "not retried" "a wrong PIN stores nothing" -- bash -c "printf new | '$PHC_BIN' --config '$CFG' secret store"
check "the old value is still there" test "$(read_back)" = "typed-on-a-tty-42"

finish
