# Helpers shared by the client-credential tests t_auth*.sh (sourced after lib.sh).
# Every phc run goes through aexpect, which keeps its stderr (-vv output and messages) in
# $LOGS; leak_check at the end asserts that neither the secrets nor any token the mock
# issued (it writes them to $TMP/tokens) nor the Basic header appear there.

AUTH_DRIVER="$PHC_BUILD/tests/auth_driver"
LOGS=$TMP/phc-logs
: >"$LOGS"
: >"$TMP/tokens"

# The secret holds a ':' (the server must split id:secret at the first one) and characters
# that need care in a shell; the mock's credential file format forbids blanks.
SECRET='Xk9vQ2-mP7wL4:zR8s/3cr3t+Q='
DEL_SECRET='dEl3ted-7Yw2pQ'
export PHC_TEST_SECRET=$SECRET
cat >"$TMP/creds" <<EOF
# client_id secret state
cid-1 $SECRET valid
cid-exp expired-9fT3xQ expired
cid-del $DEL_SECRET deleted-after-issue
EOF

# aexpect: as expect (lib.sh), and the run's stderr and stdout messages are kept for the
# leak check (stdout only when it is not a response body that legitimately echoes a token).
aexpect() {
    expect "$@"
    cat "$TMP/err" >>"$LOGS"
}

# start_creds_mock NAME [mock options...]: a mock Powerhub that wants no client certificate
# (client credentials only) and knows the credentials above. Sets MOCK_PORT.
start_creds_mock() {
    local name=$1
    shift
    launch_mock "$name" --cert "$PHC_PKI/server.pem" --key "$PHC_PKI/server.key" \
        --credentials "$TMP/creds" --token-log "$TMP/tokens" "$@"
}

# write_creds_config FILE PORT [extra "key = value" lines...]: client credentials only.
write_creds_config() {
    local file=$1 port=$2
    shift 2
    {
        echo "[phconnect]"
        echo "url = https://api.powerhub.test:$port"
        echo "ca_file = $PHC_PKI/ca.pem"
        echo "pinned_ips = 127.0.0.1"
        echo "client_id = cid-1"
        echo "client_secret = env:PHC_TEST_SECRET"
        local line
        for line in "$@"; do echo "$line"; done
    } >"$file"
}

# creds_stat PORT FIELD: a /_stats field of a credentials-only mock, read with curl so that
# reading it does not itself request a token.
creds_stat() {
    curl -s --max-time 10 --cacert "$PHC_PKI/ca.pem" \
        --resolve "api.powerhub.test:$1:127.0.0.1" "https://api.powerhub.test:$1/_stats" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# count_log NAME PATTERN: lines of mock NAME's request log matching PATTERN (grep -E).
count_log() {
    grep -cE -- "$2" "$TMP/$1.log"
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

leak_check() {
    local basic
    basic=$(printf '%s' "cid-1:$SECRET" | base64 -w0)
    check "the runs logged something to check ($(wc -l <"$LOGS") lines)" test -s "$LOGS"
    check "the mock issued tokens to look for ($(wc -l <"$TMP/tokens") tokens)" test -s "$TMP/tokens"
    check "no client secret in any -vv output, log or message" \
        bash -c '! grep -qF -e "$1" -e "$2" "$3"' _ "$SECRET" "$DEL_SECRET" "$LOGS"
    check "no Basic credential in any -vv output, log or message" \
        bash -c '! grep -qF -e "$1" "$2"' _ "$basic" "$LOGS"
    check "no issued token in any -vv output, log or message" \
        bash -c '! grep -qF -f "$1" "$2"' _ "$TMP/tokens" "$LOGS"
}
