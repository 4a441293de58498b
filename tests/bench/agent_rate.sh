#!/usr/bin/env bash
# The agent's steady rate next to the in-process keep-alive rate (NOT a test: timed runs are
# not tests; t_agent_load.sh checks that `phc bench --mode agent` works).
#
#   tests/bench/agent_rate.sh [BUILD_DIR]
#
# Builds phc and phc-agent into BUILD_DIR (default: build-bench-run; or set PHC_BIN to use a
# built phc with its phc-agent next to it), makes a fresh test PKI, a SoftHSM token with an
# RSA-2048 key and nginx (mutual TLS, keep-alive, 1 worker) on 127.0.0.1, then runs
# `phc bench --mode agent --threads 8 --no-curl` BENCH_AGENT_RUNS times (default 3) with
# BENCH_AGENT_REQUESTS requests (default 5000; at 1000 the in-process side lasts ~40 ms and
# the ratio is mostly noise) and prints each run's keepalive and agent rows: the rate ratio
# and the agent's own CPU per request (the figure that load from elsewhere distorts least).
# Each run also starts REQUESTS one-shot `phc request` processes: ~1 minute a run when quiet.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$SRC/tests/fixtures
. "$SRC/tests/bench/bench_lib.sh"
RUNS=${BENCH_AGENT_RUNS:-3}
REQUESTS=${BENCH_AGENT_REQUESTS:-5000}

if [ -z "${PHC_BIN:-}" ]; then
    BUILD=${1:-$SRC/build-bench-run}
    echo "== building phc and phc-agent in $BUILD" >&2
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target phc phc-agent >/dev/null
    PHC_BIN=$BUILD/tools/phc
fi
[ -x "$PHC_BIN" ] || { echo "agent_rate.sh: no phc at $PHC_BIN" >&2; exit 1; }

TMP=$(mktemp -d /tmp/phc-agent-rate.XXXXXX)
trap 'bench_cleanup "$TMP"' EXIT

echo "== fresh PKI, SoftHSM token (RSA-2048), nginx on 127.0.0.1" >&2
bench_setup "$TMP" rsa:2048 /usr/lib/softhsm/libsofthsm2.so 1
mkdir -p "$TMP/benchtmp"

echo "== $RUNS x phc bench --mode agent --threads 8 --requests $REQUESTS --no-curl /v2/asset/sites" >&2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$RUNS"); do
    echo "-- run $i"
    TMPDIR=$TMP/benchtmp "$PHC_BIN" --config "$TMP/phc.cnf" bench --mode agent --threads 8 \
        --requests "$REQUESTS" --no-curl /v2/asset/sites | grep -E '^(mode|keepalive|agent) '
done
