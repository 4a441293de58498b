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
. "$SRC/tests/bench/bench_lib.sh"
LOOPS=${LOOPS:-300}
N_AGENT=${BENCH_AGENT:-1000}
BENCH_PATH=/v2/asset/sites
[ $# -gt 0 ] || set -- "$SRC/build/tools/phc"
for b in "$@"; do [ -x "$b" ] || { echo "agent_oneshot.sh: no phc at $b" >&2; exit 1; }; done

TMP=$(mktemp -d /tmp/phc-agent-oneshot.XXXXXX)
AGENT_PID=
cleanup() {
    [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    bench_cleanup "$TMP"
}
trap cleanup EXIT

echo "== fresh PKI, SoftHSM token (RSA-2048), nginx on 127.0.0.1" >&2
SOCK=$TMP/agent.sock
bench_setup "$TMP" rsa:2048 /usr/lib/softhsm/libsofthsm2.so 1 "agent_listen = unix:$SOCK" \
    "reload_interval = 0"

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
