# Shared helpers for the integration tests (sourced). Each test gets its own temp dir, its
# own SoftHSM token and its own servers; everything is torn down on exit.
# Environment (set by ctest): PHC_SRC PHC_BUILD PHC_PKI PHC_BIN PHC_MOCK PHC_MULTI.
set -uo pipefail

: "${PHC_SRC:?run through ctest}" "${PHC_PKI:?}" "${PHC_BIN:?}" "${PHC_MOCK:?}"
FIX="$PHC_SRC/tests/fixtures"
SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
T_PASS=0
T_FAIL=0
T_PIDS=()
T_NGINX=()
TMP=$(mktemp -d /tmp/phc-it.XXXXXX)

t_cleanup() {
    local pid dir
    for pid in "${T_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${T_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    for dir in "${T_NGINX[@]}"; do bash "$FIX/nginx.sh" stop "$dir" >/dev/null 2>&1; done
    [ "${PHC_KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"
}
trap t_cleanup EXIT

ok() {
    T_PASS=$((T_PASS + 1))
    echo "ok - $*"
}

not_ok() {
    T_FAIL=$((T_FAIL + 1))
    echo "not ok - $*"
}

check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# expect EXIT_CODE MESSAGE_FRAGMENT DESCRIPTION -- COMMAND...
# Runs COMMAND, keeping stdout in $TMP/out and stderr in $TMP/err; asserts the exit code and
# that stderr contains the fragment (empty fragment: anything).
expect() {
    local code=$1 frag=$2 what=$3
    shift 4
    "$@" >"$TMP/out" 2>"$TMP/err"
    local got=$?
    if [ "$got" -eq "$code" ] && { [ -z "$frag" ] || grep -qF -- "$frag" "$TMP/err"; }; then
        ok "$what (exit $got)"
    else
        not_ok "$what: wanted exit $code with '$frag', got exit $got"
        sed 's/^/    stderr: /' "$TMP/err" | head -20
    fi
}

finish() {
    echo "$T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ]
    exit $?
}

# make_token [KEYTYPE]: a fresh token in $TMP/tok with key 'client' id 01 and a certificate
# for it issued by the test vendor CA (unless NOCERT=1).
make_token() {
    local keytype=${1:-rsa:2048}
    eval "$(bash "$FIX/token.sh" init "$TMP/tok" phc-test "$keytype")"
    export SOFTHSM2_CONF
    if [ "${NOCERT:-0}" != 1 ]; then
        bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub.pem" "/O=Test Energy/CN=phc-test-client" \
            "$TMP/client.pem" 365 >/dev/null
        bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client.pem" client 01
    fi
}

wait_port_file() { # wait_port_file FILE PID
    local i
    for i in $(seq 1 100); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# start_mock NAME [mock options...]: starts a mock Powerhub; sets MOCK_PORT.
# Defaults: server.pem from the vendor CA, client certificates from the vendor CA required.
start_mock() {
    local name=$1
    shift
    local args=("$@")
    local have_cert=0 a
    for a in "${args[@]}"; do [ "$a" = --cert ] && have_cert=1; done
    if [ $have_cert = 0 ]; then
        args=(--cert "$PHC_PKI/server.pem" --key "$PHC_PKI/server.key" "${args[@]}")
    fi
    launch_mock "$name" --client-ca "$PHC_PKI/ca.pem" "${args[@]}"
}

# launch_mock NAME [mock options...]: starts mock_powerhub with exactly these options plus
# its port, log and output files under $TMP, waits until it listens; sets MOCK_PORT.
launch_mock() {
    local name=$1
    shift
    "$PHC_MOCK" --port 0 --port-file "$TMP/$name.port" --log "$TMP/$name.log" "$@" \
        >"$TMP/$name.stdout" 2>&1 &
    local pid=$!
    T_PIDS+=("$pid")
    if ! wait_port_file "$TMP/$name.port" "$pid"; then
        echo "mock $name did not start:" >&2
        cat "$TMP/$name.stdout" >&2
        return 1
    fi
    MOCK_PORT=$(cat "$TMP/$name.port")
}

# write_config FILE PORT [extra "key = value" lines...]: a config for the mock on PORT.
write_config() {
    local file=$1 port=$2
    shift 2
    {
        echo "[phconnect]"
        echo "url = https://api.powerhub.test:$port"
        echo "ca_file = $PHC_PKI/ca.pem"
        echo "pinned_ips = 127.0.0.1"
        echo "pkcs11_module = $SOFTHSM_MODULE"
        echo "key = pkcs11:token=phc-test;object=client;type=private"
        echo "pin = file:$TMP/tok/pin"
        local line
        for line in "$@"; do echo "$line"; done
    } >"$file"
}

# Replaces (or adds) a key in a config file.
set_key() { # set_key FILE KEY VALUE
    local file=$1 key=$2 value=$3
    grep -v "^$key *=" "$file" >"$file.new"
    echo "$key = $value" >>"$file.new"
    mv "$file.new" "$file"
}

mock_stat() { # mock_stat CONFIG FIELD: one numeric field of /_stats, via phc itself
    "$PHC_BIN" --config "$1" request /_stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# --- token administration (phc enrol, csr, install, status, prune) ---------------------

# make_empty_token [LABEL]: a fresh initialised token without any key in $TMP/tok (user PIN
# 1234 in $TMP/tok/pin), for phc enrol. Exports SOFTHSM2_CONF.
make_empty_token() {
    local label=${1:-phc-test}
    rm -rf "$TMP/tok"
    mkdir -p "$TMP/tok/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$TMP/tok/tokens" >"$TMP/tok/softhsm2.conf"
    (
        umask 077
        printf 1234 >"$TMP/tok/pin"
    )
    printf '%s' "$label" >"$TMP/tok/label"
    export SOFTHSM2_CONF=$TMP/tok/softhsm2.conf
    softhsm2-util --init-token --free --label "$label" --so-pin 12345678 --pin 1234 >/dev/null
}

# sign_csr CSR OUT [DAYS] [EXTRA...]: the test vendor CA signs a request as a client
# certificate (pki.sh sign-csr; EXTRA: noclientauth, expired, otherca, notyet).
sign_csr() {
    bash "$FIX/pki.sh" sign-csr "$PHC_PKI" "$@" >/dev/null
}

# pair_states CONFIG: "ID:STATE ..." for every pair on the token, from phc status --json.
pair_states() {
    "$PHC_BIN" --config "$1" status --json |
        python3 -c 'import json,sys; print(" ".join(p["id"]+":"+p["state"] for p in json.load(sys.stdin)["pairs"]))'
}

# cert_serial PEM: the serial as phc and the mock print it (uppercase hex).
cert_serial() {
    openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'
}

# kill_at STEP CMD...: runs CMD with PHC_TEST_PAUSE_AT=STEP (a phc built with
# -DPHC_TEST_HOOKS=ON, as tests/run.sh builds it), waits until it reports that it
# paused there, then kill -9's it (a crash at exactly that step). Fails if the step is never
# reached. The command's output is in $TMP/killed.out and $TMP/killed.err.
kill_at() {
    local step=$1 pid i
    shift
    if [ "${PHC_TEST_HOOKS:-OFF}" != ON ]; then
        echo "# phc was built without its test hooks: configure with -DPHC_TEST_HOOKS=ON" \
            "(tests/run.sh does) to run the crash tests"
        return 1
    fi
    PHC_TEST_PAUSE_AT=$step PHC_TEST_PAUSE_SECONDS=60 "$@" >"$TMP/killed.out" 2>"$TMP/killed.err" &
    pid=$!
    for i in $(seq 1 400); do
        if grep -q "paused at $step" "$TMP/killed.err" 2>/dev/null; then
            kill -9 "$pid"
            wait "$pid" 2>/dev/null
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    sed 's/^/    killed: /' "$TMP/killed.err" | head -5
    return 1
}

# wait_for FILE PATTERN [SECONDS]: waits (bounded, default 30 s) until a line of FILE
# matches the extended regular expression PATTERN. Tests wait for what they need to see
# instead of sleeping a guessed time, so a slow machine makes them slower, not flaky.
wait_for() {
    local file=$1 pattern=$2 limit=${3:-30} i
    for ((i = 0; i < limit * 10; i++)); do
        grep -qE -- "$pattern" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "# timed out after ${limit}s waiting for /$pattern/ in $file"
    return 1
}

# p11remote_client: CLIENT_MODULE = p11-kit's client module, the pkcs11_module of a token
# remoted by tests/fixtures/p11remote.sh; when p11-kit or the module is missing, one failed
# check and the end of the test.
p11remote_client() {
    CLIENT_MODULE=$(bash "$FIX/p11remote.sh" client-module)
    if ! command -v p11-kit >/dev/null || [ ! -r "$CLIENT_MODULE" ]; then
        echo "# p11-kit or $CLIENT_MODULE missing (tools/install-deps.sh installs p11-kit-modules)"
        not_ok "p11-kit remoting available"
        finish
    fi
}

# p11remote_start DIR: `p11-kit server` exporting the test token 'phc-test' on DIR/sock
# (tests/fixtures/p11remote.sh; a restart after a kill reuses the address); exports
# P11_KIT_SERVER_ADDRESS, sets P11_KIT_SERVER_PID. p11remote_stop DIR stops it and its
# per-connection children: the appliance going away is all of them.
p11remote_start() {
    bash "$FIX/p11remote.sh" start "$1" phc-test >"$1.env" || return 1
    . "$1.env"
    T_PIDS+=("$P11_KIT_SERVER_PID")
}
p11remote_stop() { bash "$FIX/p11remote.sh" stop "$1"; }
