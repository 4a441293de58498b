#!/usr/bin/env bash
# The one-shot speed target of the agent (issue 10, "Speed": one `phc request` through the
# agent <= 0.3x curl + libp11 engine, fresh processes) and what libcurl on demand
# (lib/curl_load.c) changes in the process start. NOT a test: timed runs are not tests
# (tests/integration/t_agent_nocurl.sh checks that the agent path does not load libcurl).
#
#   tests/bench/agent_oneshot.sh [PHC_BIN...]
#
# For each phc given (default: build/tools/phc), with a fresh test PKI, a SoftHSM token
# (RSA-2048) and nginx (mutual TLS) on 127.0.0.1:
#  - the mean wall time of LOOPS (300) runs of `phc --help`, `phc --version` and
#    `phc request --agent unix:SOCK /v2/asset/sites` (an agent of that phc started for it);
#  - `phc bench --mode agent --threads 8 --requests N` (BENCH_AGENT, 1000): the agent-oneshot
#    vs curl-oneshot p50 ratio, the issue's figure, and each side's CPU per request (less
#    sensitive to a loaded machine than wall time).
# Give two phc binaries (before, after) to compare them in one run on the same machine state.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$SRC/tests/fixtures
LOOPS=${LOOPS:-300}
N_AGENT=${BENCH_AGENT:-1000}
BENCH_PATH=/v2/asset/sites
[ $# -gt 0 ] || set -- "$SRC/build/tools/phc"
for b in "$@"; do [ -x "$b" ] || { echo "agent_oneshot.sh: no phc at $b" >&2; exit 1; }; done

TMP=$(mktemp -d /tmp/phc-agent-oneshot.XXXXXX)
AGENT_PID=
cleanup() {
    [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    bash "$FIX/nginx.sh" stop "$TMP/nginx" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "== fresh PKI, SoftHSM token (RSA-2048), nginx on 127.0.0.1" >&2
bash "$FIX/pki.sh" "$TMP/pki" >/dev/null
eval "$(bash "$FIX/token.sh" init "$TMP/tok" phc-bench rsa:2048)"
export SOFTHSM2_CONF
bash "$FIX/pki.sh" issue-client "$TMP/pki" "$TMP/tok/pub.pem" "/O=Bench Energy/CN=phc-bench" \
    "$TMP/client.pem" 30 >/dev/null
bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client.pem" client 01
PORT=$(bash "$FIX/nginx.sh" free-port)
mkdir -p "$TMP/nginx"
bash "$FIX/nginx.sh" start "$TMP/nginx" "$PORT" "$TMP/pki/server.pem" "$TMP/pki/server.key" \
    "$TMP/pki/ca.pem" 1 >/dev/null
SOCK=$TMP/agent.sock
cat >"$TMP/phc.cnf" <<EOF
[phconnect]
url = https://api.powerhub.test:$PORT
ca_file = $TMP/pki/ca.pem
pinned_ips = 127.0.0.1
pkcs11_module = /usr/lib/softhsm/libsofthsm2.so
key = pkcs11:token=phc-bench;object=client;type=private
pin = file:$TMP/tok/pin
agent_listen = unix:$SOCK
reload_interval = 0
EOF

# mean_us CMD...: mean wall time of LOOPS runs, in microseconds.
mean_us() {
    local s e i
    s=$(date +%s%N)
    for ((i = 0; i < LOOPS; i++)); do "$@" >/dev/null 2>&1; done
    e=$(date +%s%N)
    echo $(((e - s) / LOOPS / 1000))
}

echo "| phc | --help us | --version us | request --agent us | agent-oneshot p50 ms | CPU ms/req | curl-oneshot p50 ms | CPU ms/req | ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for PHC in "$@"; do
    rm -f "$SOCK"
    "$PHC" --config "$TMP/phc.cnf" agent 2>"$TMP/agent.err" &
    AGENT_PID=$!
    for _ in $(seq 200); do grep -q "listening on" "$TMP/agent.err" 2>/dev/null && break; sleep 0.05; done
    "$PHC" request --agent "unix:$SOCK" "$BENCH_PATH" >/dev/null ||
        { echo "agent_oneshot.sh: $PHC request --agent failed" >&2; exit 1; }
    help=$(mean_us "$PHC" --help)
    version=$(mean_us "$PHC" --version)
    req=$(mean_us "$PHC" request --agent "unix:$SOCK" "$BENCH_PATH")
    kill "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=
    "$PHC" --config "$TMP/phc.cnf" bench --json --mode agent --threads 8 --requests "$N_AGENT" \
        "$BENCH_PATH" >"$TMP/bench.jsonl"
    python3 - "$TMP/bench.jsonl" "$PHC" "$help" "$version" "$req" <<'EOF'
import json, sys
path, phc, help_us, version_us, req_us = sys.argv[1:6]
rows = {}
for line in open(path):
    o = json.loads(line)
    rows.setdefault(o["mode"], o)
a, c = rows.get("agent-oneshot"), rows.get("curl-oneshot")
ratio = f"{a['p50_ms'] / c['p50_ms']:.2f}x" if a and c and c["p50_ms"] else "?"
def f(r, k):
    return r[k] if r else "?"
print(f"| {phc} | {help_us} | {version_us} | {req_us} | {f(a, 'p50_ms')} | "
      f"{f(a, 'cpu_ms_per_request')} | {f(c, 'p50_ms')} | {f(c, 'cpu_ms_per_request')} | {ratio} |")
EOF
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores" >&2
