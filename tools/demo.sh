#!/usr/bin/env bash
# The demo: on a fresh Debian 12 machine, installs what is missing, builds phconnect, makes a
# demo PKI and a SoftHSM token in ./demo, generates the client key ON the token, has the demo
# CA issue its certificate, starts a mock Powerhub on 127.0.0.1 and makes one real
# mutually-authenticated request with `phc request`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/demo
FIX=$ROOT/tests/fixtures

bash tools/install-deps.sh
echo "== building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
PHC=$ROOT/build/tools/phc

rm -rf "$DEMO"
mkdir -p "$DEMO"
echo "== demo PKI (vendor CA, server certificate for api.powerhub.test) in demo/pki"
bash "$FIX/pki.sh" "$DEMO/pki" >/dev/null
echo "== SoftHSM token 'phc-test' in demo/token; RSA-2048 key generated on the token"
eval "$(bash "$FIX/token.sh" init "$DEMO/token" phc-test rsa:2048)"
export SOFTHSM2_CONF
echo "== the demo CA issues the client certificate for the token's public key"
bash "$FIX/pki.sh" issue-client "$DEMO/pki" "$DEMO/token/pub.pem" "/O=Demo Energy/CN=demo-energy-client" \
    "$DEMO/client.pem" 365 >/dev/null
bash "$FIX/token.sh" putcert "$DEMO/token" "$DEMO/client.pem" client 01

echo "== mock Powerhub on 127.0.0.1 (mutual TLS, client certificates from the demo CA only)"
"$ROOT/build/tests/mock_powerhub" --cert "$DEMO/pki/server.pem" --key "$DEMO/pki/server.key" \
    --client-ca "$DEMO/pki/ca.pem" --port 0 --port-file "$DEMO/mock.port" \
    --sites "$FIX/sites.json" >"$DEMO/mock.log" 2>&1 &
MOCK=$!
trap 'kill $MOCK 2>/dev/null; wait $MOCK 2>/dev/null' EXIT
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
echo "== phc -v request /v2/asset/sites"
"$PHC" --config "$DEMO/phc.cnf" -v request /v2/asset/sites
echo
echo "== done: the private key never left the token (pkcs11-tool says:"
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --login --pin "$(cat "$DEMO/token/pin")" \
    --list-objects --type privkey 2>/dev/null | grep -E 'label|Access' | sed 's/^/   /'
echo ")"
