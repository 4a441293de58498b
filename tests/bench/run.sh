#!/usr/bin/env bash
# The performance run behind README.md's "Performance" table (NOT a test: timed runs are not
# tests; tests/integration/t_bench_smoke.sh checks only that `phc bench` works).
#
#   tests/bench/run.sh [BUILD_DIR]
#
# Builds phc into BUILD_DIR (default: build-bench-run; or set PHC_BIN to use a built phc),
# makes a fresh test PKI and a fresh SoftHSM token with an RSA-2048 client key in a temp dir,
# starts nginx (mutual TLS, keep-alive) on 127.0.0.1, and runs `phc bench` in every mode, plus
# keep-alive with 2 threads. Each run measures, in the same process and minutes, the token's
# signing rate and the stock curl CLI (libp11 engine) doing the same job. Writes
# tests/bench/RESULTS.md (machine, versions, command, table, targets) and prints it.
# Request counts (environment): BENCH_ONESHOT (200), BENCH_KEEPALIVE (20000), BENCH_FULL (1000);
# sized so the whole run takes well under 2 minutes on 2 cores.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$SRC/tests/fixtures
. "$SRC/tests/bench/bench_lib.sh"
OUT=${BENCH_RESULTS:-$SRC/tests/bench/RESULTS.md}
N_ONESHOT=${BENCH_ONESHOT:-200}
N_KEEPALIVE=${BENCH_KEEPALIVE:-20000}
N_FULL=${BENCH_FULL:-1000}
BENCH_PATH=/v2/asset/sites

# How this run was started, for RESULTS.md.
INVOCATION="tests/bench/run.sh${1:+ $1}"
[ -n "${PHC_BIN:-}" ] && INVOCATION="PHC_BIN=$PHC_BIN $INVOCATION"
if [ -z "${PHC_BIN:-}" ]; then
    BUILD=${1:-$SRC/build-bench-run}
    echo "== building phc in $BUILD" >&2
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target phc >/dev/null
    PHC_BIN=$BUILD/tools/phc
fi
[ -x "$PHC_BIN" ] || { echo "run.sh: no phc at $PHC_BIN" >&2; exit 1; }
for tool in nginx curl openssl softhsm2-util pkcs11-tool python3; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
        { echo "run.sh: $tool is missing (tools/install-deps.sh installs it)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/phc-bench-run.XXXXXX)
trap 'bench_cleanup "$TMP"' EXIT

echo "== fresh PKI, SoftHSM token (RSA-2048), nginx on 127.0.0.1" >&2
bench_setup "$TMP" rsa:2048 /usr/lib/softhsm/libsofthsm2.so 1

RUNS=(
    "--mode oneshot --requests $N_ONESHOT"
    "--mode keepalive --requests $N_KEEPALIVE --threads 2"
    "--mode full,resumed --requests $N_FULL"
)
: >"$TMP/results.jsonl"
for args in "${RUNS[@]}"; do
    echo "== phc bench $args $BENCH_PATH" >&2
    # shellcheck disable=SC2086 # the options are words on purpose
    if ! "$PHC_BIN" --config "$TMP/phc.cnf" bench --json $args "$BENCH_PATH" >"$TMP/run.jsonl"; then
        echo "run.sh: phc bench $args failed" >&2
        exit 1
    fi
    # Each run carries its own signing-rate line; tag lines with the run they came from.
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line); o["run"] = sys.argv[2]; print(json.dumps(o))
' "$TMP/run.jsonl" "$args" >>"$TMP/results.jsonl"
done

MACHINE=$(
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores online, $(free -g | awk '/^Mem:/ {print $2}') GiB"
    echo "- Kernel: $(uname -sr); $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Versions: $("$PHC_BIN" --version | head -1), $(openssl version | cut -d' ' -f1-2), curl $(curl --version | head -1 | cut -d' ' -f2), libp11 $(dpkg-query -W -f '${Version}' libp11-3 2>/dev/null || echo '?'), SoftHSM $(softhsm2-util --version), $(nginx -v 2>&1 | sed 's/.*: //')"
)

python3 - "$TMP/results.jsonl" "$OUT" "$MACHINE" "$N_ONESHOT" "$N_KEEPALIVE" "$N_FULL" "$INVOCATION" <<'EOF'
import json, sys
path, out, machine, n1, nk, nf, invocation = sys.argv[1:8]
rows = [json.loads(l) for l in open(path)]

def get(mode, run_has, threads=None):
    for r in rows:
        if r["mode"] == mode and run_has in r["run"] and (threads is None or r["threads"] == threads):
            return r
    return None

sign_full = get("sign", "full")
targets = []
def target(name, ratio, limit, at_most):
    if ratio is None:
        targets.append((name, "not measured", limit, at_most, "n/a"))
        return
    ok = ratio <= limit if at_most else ratio >= limit
    targets.append((name, f"{ratio:.2f}x", limit, at_most, "PASS" if ok else "MISS"))

one, c1 = get("oneshot", "oneshot"), get("curl-oneshot", "oneshot")
target("oneshot: p50 wall time vs curl one-shot", one and c1 and one["p50_ms"] / c1["p50_ms"], 0.8, True)
target("oneshot: peak RSS vs curl", one and c1 and one["peak_rss_kb"] / c1["peak_rss_kb"], 1.0, True)
ka, cka = get("keepalive", "keepalive", 1), get("curl-keepalive", "keepalive")
target("keepalive: steady-state rate vs curl (N URLs minus 1 URL)", ka and cka and ka["rps"] / cka["rps"], 1.2, False)
full, res = get("full", "full"), get("resumed", "full")
target("resumed: rate vs full", full and res and res["rps"] / full["rps"], 3.0, False)
target("full: client CPU per handshake vs one token signature (p50)",
       full and sign_full and full["cpu_ms_per_request"] / sign_full["p50_ms"], 1.5, True)
ka2 = get("keepalive", "keepalive", 2)
target("keepalive, 2 threads: CPU per request vs 1 thread", ka2 and ka and ka2["cpu_ms_per_request"] / ka["cpu_ms_per_request"], 1.1, True)

lines = []
lines.append("Machine:\n" + machine + "\n")
lines.append(f"Command: `{invocation}` (nginx 1 worker, mutual TLS, keep-alive, on 127.0.0.1; "
             f"fresh SoftHSM token with an RSA-2048 key; oneshot {n1}, keepalive {nk}, full/resumed {nf} "
             "requests of `GET /v2/asset/sites`). Each `phc bench` run also measures the token's "
             "signing rate (`sign`: RSA-PSS C_Sign through libp11) and the curl CLI with the libp11 "
             "engine doing the same job (`curl-*`). Oneshot: `phc request` and curl processes alternate, "
             "so load from elsewhere falls on both; the steady-state curl rows are one curl with N URLs "
             "minus one with 1 URL; CPU and peak RSS of children come from wait4.\n")
lines.append("| run | mode | threads | requests | req/s | p50 ms | p99 ms | CPU ms/req | peak RSS kB | failures |")
lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    lines.append(f"| `{r['run'].split()[1]}` | {r['mode']} | {r['threads']} | {r['requests']} | {r['rps']:.1f} | "
                 f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['cpu_ms_per_request']:.3f} | {r['peak_rss_kb']} | {r['failures']} |")
lines.append("")
lines.append("| target | measured | limit | result |")
lines.append("| --- | ---: | ---: | --- |")
for name, got, limit, at_most, verdict in targets:
    lines.append(f"| {name} | {got} | {'≤' if at_most else '≥'} {limit}x | {verdict} |")
text = "\n".join(lines) + "\n"
with open(out, "w") as f:
    f.write("# phc bench results\n\nWritten by `tests/bench/run.sh`; README.md's \"Performance\" section shows the latest.\n\n" + text)
print(text)
EOF
