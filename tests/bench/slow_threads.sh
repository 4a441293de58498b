#!/usr/bin/env bash
# Thread scaling of full handshakes against a slow token (NOT a test: a measurement for
# issue 11's table). The key is on SoftHSM behind tests/fixtures/slow_pkcs11.c (a network HSM:
# PHC_SLOW_CALL_US per call, PHC_SLOW_SIGN_US per signature, defaults 1000 and 20000), nginx
# on 127.0.0.1; `phc bench --mode full --threads T` for each T, one line per T:
#   threads  requests  req/s  p50_ms  p99_ms  cpu_ms/req  speed-up vs 1 thread
#
#   tests/bench/slow_threads.sh [BUILD_DIR]       (default build; needs phc and slow_pkcs11)
# Environment: THREADS ("1 2 4 8 16"), REQUESTS per thread (25), KEYTYPE (ec:P-256),
# PHC_SLOW_CALL_US, PHC_SLOW_SIGN_US, SLOW_TARGET (the module behind the shim, SoftHSM).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$SRC/tests/fixtures
. "$SRC/tests/bench/bench_lib.sh"
BUILD=${1:-$SRC/build}
PHC=$BUILD/tools/phc
SLOW=$BUILD/tests/libslow_pkcs11.so
THREADS=${THREADS:-1 2 4 8 16}
PER_THREAD=${REQUESTS:-25}
KEYTYPE=${KEYTYPE:-ec:P-256}
[ -x "$PHC" ] && [ -r "$SLOW" ] || { echo "slow_threads.sh: build phc and slow_pkcs11 in $BUILD first" >&2; exit 1; }
export PHC_SLOW_CALL_US=${PHC_SLOW_CALL_US:-1000} PHC_SLOW_SIGN_US=${PHC_SLOW_SIGN_US:-20000}
export PHC_SLOW_TARGET=${SLOW_TARGET:-/usr/lib/softhsm/libsofthsm2.so}

TMP=$(mktemp -d /tmp/phc-slow-threads.XXXXXX)
trap 'bench_cleanup "$TMP"' EXIT

bench_setup "$TMP" "$KEYTYPE" "$SLOW" 2

echo "# slow token: ${PHC_SLOW_CALL_US} us a call, ${PHC_SLOW_SIGN_US} us a signature; key $KEYTYPE; $(nproc) cores"
printf '%-8s %8s %8s %8s %8s %10s %8s\n' threads requests req/s p50_ms p99_ms cpu_ms/req speedup
base=
for t in $THREADS; do
    "$PHC" --config "$TMP/phc.cnf" bench --json --no-curl --signatures 10 --mode full \
        --threads "$t" --requests $((t * PER_THREAD)) /v2/asset/sites >"$TMP/run.jsonl"
    line=$(python3 - "$TMP/run.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["mode"] == "full":
        if o["failures"]:
            sys.exit(f"{o['failures']} failures")
        print(o["threads"], o["requests"], o["rps"], o["p50_ms"], o["p99_ms"], o["cpu_ms_per_request"])
PY
)
    read -r th rq rps p50 p99 cpu <<<"$line"
    [ -n "$base" ] || base=$rps
    printf '%-8s %8s %8.1f %8.1f %8.1f %10.2f %7.2fx\n' "$th" "$rq" "$rps" "$p50" "$p99" "$cpu" \
        "$(python3 -c "print($rps / $base)")"
done
