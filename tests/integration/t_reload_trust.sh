#!/usr/bin/env bash
# A reload re-reads the trust (issue 13, item 3): a running client, connected (keep-alive) to
# a server whose certificate is from the old vendor CA, is reloaded after the operator removed
# the old CA from ca_file - the last step of the CA change in docs/runbook-rotation.md. Fresh
# connections then refuse the old-CA server (exit 5) and the kept connection is not reused; a
# server under the new CA works. A reload that fails (broken ca_file, a fingerprint that does
# not match, a broken config) keeps the trust the client has and says why, naming the file;
# pinned_ips is re-read too.
. "$(dirname "$0")/lib.sh"
: "${PHC_RELOAD:?}"

make_token
start_mock old # server.pem: from the old vendor CA ("Powerhub Test Root CA")
PORT=$MOCK_PORT
OLD_PID=${T_PIDS[-1]}
CFG=$TMP/phc.cnf
cat "$PHC_PKI/ca.pem" "$PHC_PKI/other-ca.pem" >"$TMP/vendor-ca.pem" # the transition: both CAs
write_config "$CFG" "$PORT"
set_key "$CFG" ca_file "$TMP/vendor-ca.pem"
SERIAL=$(cert_serial "$TMP/client.pem")

mkfifo "$TMP/cmd"
"$PHC_RELOAD" "$CFG" <"$TMP/cmd" >"$TMP/drv.out" 2>"$TMP/drv.err" &
T_PIDS+=("$!")
exec 3>"$TMP/cmd"
# step WHAT CMD EXPECTED-REGEX: sends CMD, waits for its answer line, checks it.
n=0
step() {
    local what=$1 cmd=$2 want=$3
    echo "$cmd" >&3
    n=$((n + 1))
    for _ in $(seq 1 300); do
        [ "$(wc -l <"$TMP/drv.out")" -ge "$n" ] && break
        sleep 0.1
    done
    local got
    got=$(sed -n "${n}p" "$TMP/drv.out")
    if [[ $got =~ $want ]]; then
        ok "$what"
    else
        not_ok "$what: wanted /$want/, got '$got'"
    fi
}

step "both CAs pinned: the old-CA server is accepted" "req /echo" "^req 0 200 $SERIAL\$"
step "the connection is kept: a second request on it" "req /echo" "^req 0 200 $SERIAL\$"

# The operator removes the old CA and reloads.
cp "$PHC_PKI/other-ca.pem" "$TMP/vendor-ca.pem"
step "reload after the old CA was removed: done, reported as a change" "reload" "^reload 0 1 \$"
step "the old-CA server is refused on a fresh connection (exit 5, naming its CA)" "req /echo" \
    "^req 5 0 .*Powerhub Test Root CA"
step "... every time (no connection or TLS session made under the old anchors is used)" "req /echo" \
    "^req 5 0 "

# The vendor's server moves to the new CA (same address and port).
kill "$OLD_PID"
wait "$OLD_PID" 2>/dev/null
"$PHC_MOCK" --port "$PORT" --log "$TMP/new.log" --cert "$PHC_PKI/server-other.pem" \
    --key "$PHC_PKI/server-other.key" --client-ca "$PHC_PKI/ca.pem" >"$TMP/new.stdout" 2>&1 &
T_PIDS+=("$!")
for _ in $(seq 1 100); do
    (exec 4<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.05
done
step "a server under the new CA works" "req /echo" "^req 0 200 $SERIAL\$"

# Reloads that fail keep the state and say why.
printf 'not a certificate\n' >"$TMP/vendor-ca.pem"
step "broken ca_file: the reload fails naming the file, the client keeps its trust" "reload" \
    "^reload 2 0 trust not re-read, the client keeps the trust it has: .*$TMP/vendor-ca.pem"
step "... and still serves under the new CA" "req /echo" "^req 0 200 $SERIAL\$"
cp "$PHC_PKI/other-ca.pem" "$TMP/vendor-ca.pem"
set_key "$CFG" ca_sha256 "$(cat "$PHC_PKI/ca-sha256.txt")"
step "ca_sha256 that does not cover ca_file: the reload fails, saying so" "reload" \
    "^reload 2 0 trust not re-read, the client keeps the trust it has: .*not listed in ca_sha256"
step "... and the client still serves" "req /echo" "^req 0 200 $SERIAL\$"
cp "$CFG" "$TMP/good.cnf"
echo "ca_file\\" >>"$CFG"
step "broken config: the reload fails naming the file and line" "reload" \
    "^reload 2 0 trust not re-read, the client keeps the trust it has: config $CFG line [0-9]+: ends in a backslash"
cp "$TMP/good.cnf" "$CFG"
set_key "$CFG" ca_sha256 "$(openssl x509 -in "$PHC_PKI/other-ca.pem" -outform DER | sha256sum | cut -d' ' -f1)"
step "the matching fingerprint: the reload succeeds, nothing changed" "reload" "^reload 0 0 \$"

# pinned_ips is re-read: an address where nothing listens is all that is left.
set_key "$CFG" pinned_ips 127.0.0.3
step "pinned_ips changed: the reload is a change" "reload" "^reload 0 1 \$"
step "... and requests go only to the new address (nothing listens there: exit 7)" "req /echo" "^req 7 0 .*127\.0\.0\.3"
set_key "$CFG" pinned_ips 127.0.0.1
step "pinned_ips back" "reload" "^reload 0 1 \$"
step "... served again" "req /echo" "^req 0 200 $SERIAL\$"

exec 3>&-
sed 's/^/# driver: /' "$TMP/drv.out" | cut -c1-200
finish
