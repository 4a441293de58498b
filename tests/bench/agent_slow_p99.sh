#!/usr/bin/env bash
# The agent's latency with a slow token (NOT a test: the measurement behind issue 11's "the
# agent with a 20 ms token: 8 clients x 200 requests, p99 not above the keep-alive p99 + 5 ms
# after warm-up"; tests/integration/t_agent_slow_token.sh asserts its cause, no token
# signature on the request path).
#
# The key is on SoftHSM behind tests/fixtures/slow_pkcs11.c (a network HSM: PHC_SLOW_CALL_US
# per call, PHC_SLOW_SIGN_US per signature, defaults 1000 and 20000); nginx (2 workers, mutual
# TLS, keep-alive) on 127.0.0.1. Each round, the two sides one after the other:
#   keepalive  one in-process client, T threads (`phc bench --mode keepalive`, its own warm-up)
#   agent      one `phc agent` on the same token (started once): a warm-up of T clients x
#              WARMUP requests, then T kept-alive local clients x PER_CLIENT requests
#              (tests/integration/agent_load.c, built as build/tests/agent_load)
# Then one `phc bench --mode oneshot,agent` run for scale: a `phc request` process per request
# straight on the slow token (a login and a full handshake each), and through an agent.
# Prints a row per side and round, the median p99 difference against the 5 ms target, and the
# agent's token signatures (phc_token_signatures_total) before and after the measured runs.
#
#   tests/bench/agent_slow_p99.sh [BUILD_DIR]     (default build; needs phc, slow_pkcs11, agent_load)
# Environment: ROUNDS (3), CLIENTS (8), PER_CLIENT (200), WARMUP (25), ONESHOT (100),
# KEYTYPE (rsa:2048), PHC_SLOW_CALL_US, PHC_SLOW_SIGN_US, SLOW_TARGET (default SoftHSM).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$SRC/tests/fixtures
. "$SRC/tests/bench/bench_lib.sh"
BUILD=${1:-$SRC/build}
PHC=$BUILD/tools/phc
SLOW=$BUILD/tests/libslow_pkcs11.so
LOAD=$BUILD/tests/agent_load
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-8}
PER_CLIENT=${PER_CLIENT:-200}
WARMUP=${WARMUP:-25}
ONESHOT=${ONESHOT:-100}
KEYTYPE=${KEYTYPE:-rsa:2048}
BENCH_PATH=/v2/asset/sites
for f in "$PHC" "$SLOW" "$LOAD"; do
    [ -r "$f" ] || { echo "agent_slow_p99.sh: $f is missing: build phc, slow_pkcs11 and agent_load in $BUILD" >&2; exit 1; }
done
export PHC_SLOW_CALL_US=${PHC_SLOW_CALL_US:-1000} PHC_SLOW_SIGN_US=${PHC_SLOW_SIGN_US:-20000}
export PHC_SLOW_TARGET=${SLOW_TARGET:-/usr/lib/softhsm/libsofthsm2.so}

TMP=$(mktemp -d /tmp/phc-agent-p99.XXXXXX)
AGENT=
cleanup() {
    [ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
    bench_cleanup "$TMP"
}
trap cleanup EXIT

bench_setup "$TMP" "$KEYTYPE" "$SLOW" 2 "reload_interval = 0"

SOCK=$TMP/agent.sock
"$PHC" --config "$TMP/phc.cnf" agent --listen "unix:$SOCK" 2>"$TMP/agent.err" &
AGENT=$!
for _ in $(seq 1 200); do
    grep -q "listening on" "$TMP/agent.err" 2>/dev/null && break
    kill -0 "$AGENT" 2>/dev/null || { cat "$TMP/agent.err" >&2; exit 1; }
    sleep 0.05
done
signatures() {
    curl -sS --max-time 30 --unix-socket "$SOCK" http://localhost/_phc/metrics |
        awk '$1 == "phc_token_signatures_total" {print $2}'
}
field() { # field KEY: a value from agent_load's line on stdin
    awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'
}

echo "# slow token: ${PHC_SLOW_CALL_US} us a call, ${PHC_SLOW_SIGN_US} us a signature; key $KEYTYPE;" \
    "nginx 2 workers; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $CLIENTS clients/threads x $PER_CLIENT requests of GET $BENCH_PATH per side and round"
printf '%-6s %-10s %9s %8s %8s %8s %9s\n' round side requests req/s p50_ms p99_ms failures
: >"$TMP/diffs"
sig_before=
for r in $(seq 1 "$ROUNDS"); do
    "$PHC" --config "$TMP/phc.cnf" bench --json --no-curl --signatures 1 --mode keepalive \
        --threads "$CLIENTS" --requests $((CLIENTS * PER_CLIENT)) "$BENCH_PATH" >"$TMP/ka.jsonl"
    read -r ka_n ka_rps ka50 ka99 ka_f < <(python3 -c "import json
for l in open('$TMP/ka.jsonl'):
    o = json.loads(l)
    if o['mode'] == 'keepalive': print(o['requests'], o['rps'], o['p50_ms'], o['p99_ms'], o['failures'])")
    printf '%-6s %-10s %9s %8.1f %8.3f %8.3f %9s\n' "$r" keepalive "$ka_n" "$ka_rps" "$ka50" "$ka99" "$ka_f"

    "$LOAD" "$SOCK" "$BENCH_PATH" "$CLIENTS" "$WARMUP" >/dev/null
    [ -n "$sig_before" ] || sig_before=$(signatures)
    t0=$(date +%s.%N)
    "$LOAD" "$SOCK" "$BENCH_PATH" "$CLIENTS" "$PER_CLIENT" >"$TMP/agent.out" || true
    t1=$(date +%s.%N)
    ag_n=$(field requests <"$TMP/agent.out")
    ag50=$(field p50_ms <"$TMP/agent.out")
    ag99=$(field p99_ms <"$TMP/agent.out")
    ag_f=$(field failures <"$TMP/agent.out")
    printf '%-6s %-10s %9s %8.1f %8.3f %8.3f %9s\n' "$r" agent "$ag_n" \
        "$(python3 -c "print($ag_n / ($t1 - $t0))")" "$ag50" "$ag99" "$ag_f"
    python3 -c "print($ag99 - $ka99)" >>"$TMP/diffs"
done
sig_after=$(signatures)
python3 - "$TMP/diffs" <<'EOF'
import statistics, sys
d = [float(x) for x in open(sys.argv[1])]
m = statistics.median(d)
print(f"# agent p99 - keep-alive p99: {', '.join(f'{x:.3f}' for x in d)} ms; median {m:.3f} ms "
      f"(target <= 5 ms: {'PASS' if m <= 5 else 'MISS'})")
EOF
echo "# agent's token signatures: $sig_before after the first warm-up, $sig_after after $ROUNDS measured rounds"

# One process per request, one at a time: straight on the slow token (a login and a full
# handshake each) and through an agent of its own (bench --mode agent; its 1-thread rate rows
# are left in for completeness).
echo "# for scale: phc bench --mode oneshot,agent --threads 1 --requests $ONESHOT (same token)"
"$PHC" --config "$TMP/phc.cnf" bench --no-curl --signatures 1 --mode oneshot,agent \
    --threads 1 --requests "$ONESHOT" "$BENCH_PATH" | sed 's/^/  /'
