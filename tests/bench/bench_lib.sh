# The set-up every benchmark script shares (sourced; FIX must name tests/fixtures): a fresh
# test PKI, a SoftHSM token with a key and its certificate, nginx with mutual TLS and
# keep-alive on 127.0.0.1, and a phc config for them. Benchmarks are not tests: they make
# their own PKI and token rather than use ctest's fixtures, so they run from any build.

# bench_setup DIR KEYTYPE MODULE WORKERS [extra "key = value" lines...]: everything in DIR
# (DIR/pki, DIR/tok, DIR/nginx, DIR/phc.cnf); MODULE is the config's pkcs11_module (SoftHSM,
# or the slow shim in front of it), WORKERS nginx's worker count. Exports SOFTHSM2_CONF,
# sets PORT.
bench_setup() {
    local dir=$1 keytype=$2 module=$3 workers=$4 line
    shift 4
    bash "$FIX/pki.sh" "$dir/pki" >/dev/null
    eval "$(bash "$FIX/token.sh" init "$dir/tok" phc-bench "$keytype")"
    export SOFTHSM2_CONF
    bash "$FIX/pki.sh" issue-client "$dir/pki" "$dir/tok/pub.pem" "/O=Bench Energy/CN=phc-bench" \
        "$dir/client.pem" 30 >/dev/null
    bash "$FIX/token.sh" putcert "$dir/tok" "$dir/client.pem" client 01
    PORT=$(bash "$FIX/nginx.sh" free-port)
    mkdir -p "$dir/nginx"
    bash "$FIX/nginx.sh" start "$dir/nginx" "$PORT" "$dir/pki/server.pem" "$dir/pki/server.key" \
        "$dir/pki/ca.pem" "$workers" >/dev/null
    {
        echo "[phconnect]"
        echo "url = https://api.powerhub.test:$PORT"
        echo "ca_file = $dir/pki/ca.pem"
        echo "pinned_ips = 127.0.0.1"
        echo "pkcs11_module = $module"
        echo "key = pkcs11:token=phc-bench;object=client;type=private"
        echo "pin = file:$dir/tok/pin"
        for line in "$@"; do echo "$line"; done
    } >"$dir/phc.cnf"
}

# bench_cleanup DIR: stops DIR's nginx and removes DIR.
bench_cleanup() {
    bash "$FIX/nginx.sh" stop "$1/nginx" >/dev/null 2>&1 || true
    rm -rf "$1"
}
