#!/usr/bin/env bash
# The demo: on a fresh Debian 12 machine, installs what is missing, builds phconnect, makes a
# demo PKI and an empty SoftHSM token in ./demo, starts a mock Powerhub on 127.0.0.1, then
# runs the operator's life cycle with phc alone: enrol (key generated ON the token, CSR out),
# the demo CA issues the certificate, install --probe, one real mutually-authenticated
# request, status. It ends with the commands to paste to go on by hand. With --agent it then
# starts the phconnect agent and has a Python program (standard library only, no PIN, no key,
# no CA) use the API through its Unix socket.
#
#   ./tools/demo.sh          the mock Powerhub stops when the demo ends
#   ./tools/demo.sh --keep   the mock keeps running for your own requests (the demo prints
#                            how to stop it)
#   ./tools/demo.sh --agent  also the agent and a Python program using it
# Environment: PHC_DEMO_DIR (default ./demo), PHC_DEMO_BUILD (an existing build directory to
# use as it is, instead of building ./build).
set -euo pipefail
WITH_AGENT=0
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=${PHC_DEMO_DIR:-$ROOT/demo}
FIX=$ROOT/tests/fixtures
KEEP=0
for a in "$@"; do
    case $a in
    --keep) KEEP=1 ;;
    --agent) WITH_AGENT=1 ;;
    -h | --help)
        sed -n '10,15s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *)
        echo "demo.sh: unknown option '$a' (--keep, --agent, --help)" >&2
        exit 2
        ;;
    esac
done

# Only what the demo needs; tests/run.sh installs the rest (nginx, clang, valgrind, ...).
bash tools/install-deps.sh --demo
if [ -n "${PHC_DEMO_BUILD:-}" ]; then
    BUILD=$PHC_DEMO_BUILD
    echo "== using the build in $BUILD"
else
    BUILD=$ROOT/build
    echo "== building phc, its agent and the mock Powerhub"
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target phc phc-agent mock_powerhub >/dev/null
fi
PHC=$BUILD/tools/phc

rm -rf "$DEMO"
mkdir -p "$DEMO"
echo "== demo PKI (vendor CA, server certificate for api.powerhub.test) in demo/pki"
bash "$FIX/pki.sh" "$DEMO/pki" >/dev/null
echo "== SoftHSM token 'phc-test' in demo/token (an empty token, as an HSM comes)"
mkdir -p "$DEMO/token/tokens"
cat >"$DEMO/token/softhsm2.conf" <<CONF
directories.tokendir = $DEMO/token/tokens
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF=$DEMO/token/softhsm2.conf
# A fresh random PIN for the demo token, kept in a 0600 file: phc reads it from there.
(umask 077 && openssl rand -hex 4 >"$DEMO/token/pin")
softhsm2-util --init-token --free --label phc-test --so-pin "$(openssl rand -hex 8)" \
    --pin "$(cat "$DEMO/token/pin")" >/dev/null
echo "== mock Powerhub on 127.0.0.1 (mutual TLS, client certificates from the demo CA only)"
"$BUILD/tests/mock_powerhub" --cert "$DEMO/pki/server.pem" --key "$DEMO/pki/server.key" \
    --client-ca "$DEMO/pki/ca.pem" --port 0 --port-file "$DEMO/mock.port" \
    --sites "$FIX/sites.json" >"$DEMO/mock.log" 2>&1 &
MOCK=$!
echo "$MOCK" >"$DEMO/mock.pid"
# Stopped when the demo ends, unless --keep (then also on a failure: nothing is left behind
# that the user was not told about).
trap 'if [ $KEEP = 0 ] || [ "${DONE:-0}" = 0 ]; then kill $MOCK 2>/dev/null; wait $MOCK 2>/dev/null; rm -f "$DEMO/mock.pid"; fi' EXIT
for _ in $(seq 1 100); do [ -s "$DEMO/mock.port" ] && break; sleep 0.05; done
PORT=$(cat "$DEMO/mock.port")

cat >"$DEMO/phc.cnf" <<CNF
[phconnect]
url = https://api.powerhub.test:$PORT
ca_file = $DEMO/pki/ca.pem
ca_sha256 = $(cat "$DEMO/pki/ca-sha256.txt")
pinned_ips = 127.0.0.1
pkcs11_module = /usr/lib/softhsm/libsofthsm2.so
key = pkcs11:token=phc-test;object=client;type=private
pin = file:$DEMO/token/pin
CNF
echo "== config demo/phc.cnf:"
sed 's/^/   /' "$DEMO/phc.cnf"
export PHC_CONFIG=$DEMO/phc.cnf
echo "== phc enrol: the key pair is generated ON the token; only the CSR comes out"
"$PHC" enrol --subject "/O=Demo Energy/CN=demo-energy-client" --key-type rsa:2048 \
    --csr-out "$DEMO/client.csr"
echo "== the demo CA (standing in for the vendor) issues the client certificate"
bash "$FIX/pki.sh" sign-csr "$DEMO/pki" "$DEMO/client.csr" "$DEMO/client.pem" 365 >/dev/null
echo "== phc install --probe: checked, tried for real, stored on the token"
"$PHC" install --probe "$DEMO/client.pem"
echo "== phc -v request /v2/asset/sites"
"$PHC" -v request /v2/asset/sites
echo
echo "== phc status"
"$PHC" status
if [ "$WITH_AGENT" = 1 ]; then
    echo "== phc agent: one token login for the host; local programs use its socket"
    "$PHC" agent --listen "unix:$DEMO/agent.sock" 2>"$DEMO/agent.log" &
    AGENT=$!
    trap 'kill $AGENT 2>/dev/null || true; wait $AGENT 2>/dev/null || true; if [ $KEEP = 0 ] || [ "${DONE:-0}" = 0 ]; then kill $MOCK 2>/dev/null; wait $MOCK 2>/dev/null; rm -f "$DEMO/mock.pid"; fi' EXIT
    for _ in $(seq 1 100); do [ -S "$DEMO/agent.sock" ] && break; sleep 0.05; done
    echo "== a Python program (examples/agent_client.py) through the agent: no PIN, no key, no CA"
    python3 "$ROOT/examples/agent_client.py" --socket "$DEMO/agent.sock" /v2/asset/sites
    echo "== curl --unix-socket $DEMO/agent.sock http://localhost/_phc/health"
    curl -sS --unix-socket "$DEMO/agent.sock" http://localhost/_phc/health
    echo "== phc request --agent unix:$DEMO/agent.sock /v2/asset/sites"
    "$PHC" request --agent "unix:$DEMO/agent.sock" /v2/asset/sites
    echo
    kill -TERM "$AGENT"
    wait "$AGENT" || true
    echo "== the agent's access log (demo/agent.log):"
    grep 'uid=' "$DEMO/agent.log" | sed 's/^/   /'
fi
echo "== done: the private key never left the token."
DONE=1
# The next commands, exactly as they are to be pasted (quoted for the shell when a path needs
# it); demo-next.sh holds the same lines.
q() { printf '%q' "$1"; }
{
    echo "export SOFTHSM2_CONF=$(q "$SOFTHSM2_CONF")"
    echo "export PHC_CONFIG=$(q "$PHC_CONFIG")"
    echo "export PATH=$(q "$BUILD/tools"):\$PATH"
    echo "phc status"
    echo "phc check"
    if [ $KEEP = 1 ]; then
        echo "phc -v request /v2/asset/sites"
        echo "phc request -i /v2/asset/sites"
    fi
    echo "man $(q "$ROOT/docs/man/phc.1")"
} >"$DEMO/demo-next.sh"
echo
if [ $KEEP = 1 ]; then
    echo "== the mock Powerhub keeps running (pid $MOCK, https://api.powerhub.test:$PORT on 127.0.0.1)"
    echo "   stop it with:  kill $MOCK"
else
    echo "== the mock Powerhub has stopped; ./tools/demo.sh --keep leaves it running for requests"
fi
echo "== next: paste these commands into your shell"
sed 's/^/    /' "$DEMO/demo-next.sh"
