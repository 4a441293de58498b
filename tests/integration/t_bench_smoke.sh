#!/usr/bin/env bash
# phc bench works: every mode against nginx with tiny counts, the --json lines have exactly the
# documented keys and no failures, the curl comparison and the signing rate are in the same
# run, the PIN copy for curl does not outlive the run, and bad options are refused.
# Timings are not asserted: a benchmark is not a test (tests/bench/run.sh measures).
. "$(dirname "$0")/lib.sh"

make_token
PORT=$(bash "$FIX/nginx.sh" free-port)
mkdir -p "$TMP/nginx"
T_NGINX+=("$TMP/nginx")
bash "$FIX/nginx.sh" start "$TMP/nginx" "$PORT" "$PHC_PKI/server.pem" "$PHC_PKI/server.key" \
    "$PHC_PKI/ca.pem" >/dev/null
CFG=$TMP/phc.cnf
write_config "$CFG" "$PORT"
mkdir -p "$TMP/benchtmp"
bench() { TMPDIR=$TMP/benchtmp "$PHC_BIN" --config "$CFG" bench --timeout 120 "$@"; }
# Oneshot runs start many `phc request` processes. Under ASan their leak checks belong to
# t_request.sh and t_valgrind.sh: here one intermittent exit-time report among them would
# turn a shape test flaky. Runs without oneshot keep the bench process itself leak-checked.
oneshot_bench() {
    if [ "${PHC_SANITIZE:-OFF}" = ON ]; then
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 bench "$@"
    else
        bench "$@"
    fi
}

# check_json FILE MODE[:THREADS]...: every line is an object with exactly the documented keys,
# sane values and no failures, and each listed mode (with that thread count) is present.
check_json() {
    python3 - "$@" <<'EOF'
import json, sys
keys = {"mode", "requests", "threads", "seconds", "rps", "p50_ms", "p99_ms",
        "cpu_ms_per_request", "peak_rss_kb", "failures"}
lines = open(sys.argv[1]).read().splitlines()
seen = set()
for line in lines:
    o = json.loads(line)
    assert set(o) == keys, f"keys {sorted(o)}"
    assert isinstance(o["mode"], str) and o["failures"] == 0, line
    assert o["requests"] >= 1 and o["threads"] >= 1 and o["peak_rss_kb"] > 0, line
    assert o["seconds"] > 0 and o["rps"] > 0 and 0 <= o["p50_ms"] <= o["p99_ms"], line
    assert o["cpu_ms_per_request"] >= 0, line
    seen.add((o["mode"], o["threads"]))
for want in sys.argv[2:]:
    mode, _, threads = want.partition(":")
    assert (mode, int(threads or 1)) in seen, f"missing {want} in {sorted(seen)}"
EOF
}

expect 0 "" "every mode, 5 requests, --json" -- oneshot_bench --json --requests 5 /v2/asset/sites
cp "$TMP/out" "$TMP/all.jsonl"
check "JSON lines: exact keys, zero failures, all modes and curl's" check_json "$TMP/all.jsonl" \
    sign oneshot curl-oneshot keepalive curl-keepalive full curl-full resumed curl-resumed
check "nine lines, one per measurement" test "$(wc -l <"$TMP/all.jsonl")" -eq 9
check "nothing on stderr" test ! -s "$TMP/err"
requests_sum=$(grep -c '"GET /v2/asset/sites' "$TMP/nginx/access.log")
check "nginx served the benchmark's requests ($requests_sum)" test "$requests_sum" -ge 40
check "full handshakes were not resumed" grep -q 'reused=\.' "$TMP/nginx/access.log"
check "resumed handshakes were resumed" grep -q 'reused=r' "$TMP/nginx/access.log"
check "the engine config with the PIN is gone" test -z "$(ls -A "$TMP/benchtmp")"

expect 0 "" "the in-process modes and curl, leak-checked" -- \
    bench --json --mode keepalive,full,resumed --requests 3 /v2/asset/sites
check "their lines" check_json "$TMP/out" sign keepalive curl-keepalive full curl-full resumed curl-resumed

expect 0 "" "keepalive with 2 threads" -- bench --json --mode keepalive --threads 2 --requests 6 /v2/asset/sites
cp "$TMP/out" "$TMP/ka.jsonl"
check "one- and two-thread keepalive lines" check_json "$TMP/ka.jsonl" sign keepalive:1 keepalive:2 curl-keepalive

expect 0 "" "human table" -- bench --mode full,resumed --requests 3 /v2/asset/sites
check "targets block" grep -q '^targets:' "$TMP/out"
check "table header" grep -q '^mode .*req/s .*p50 ms .*cpu ms/req' "$TMP/out"
check "ratios beside the figures" grep -q 'x 1 signature' "$TMP/out"
check "verdicts against the targets" grep -Eq 'resumed: rate vs full .*(PASS|MISS)' "$TMP/out"

expect 0 "" "a PATH that curl would glob is sent literally" -- \
    bench --json --mode keepalive --requests 2 '/echo?a=[1]{2,3}'
check "curl fetched it too, without failures" check_json "$TMP/out" keepalive curl-keepalive

expect 0 "no curl comparison" "runs without curl" -- bench --json --mode keepalive --requests 3 \
    --curl "$TMP/no-such-curl" /v2/asset/sites
check "no curl lines without curl" bash -c "! grep -q curl- '$TMP/out'"
expect 0 "" "--no-curl" -- oneshot_bench --json --no-curl --mode oneshot --requests 2 /v2/asset/sites
check "oneshot without curl" check_json "$TMP/out" sign oneshot

# Interrupted mid-run: the PIN copy for curl is removed by the signal handler.
TMPDIR=$TMP/benchtmp "$PHC_BIN" --config "$CFG" bench --mode oneshot --requests 100000 \
    /v2/asset/sites >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 200); do
    ls "$TMP"/benchtmp/phc-bench.*/engine.cnf >/dev/null 2>&1 && break
    sleep 0.05
done
check "the engine config is mode 0600 while curl uses it" \
    test "$(stat -c %a "$TMP"/benchtmp/phc-bench.*/engine.cnf 2>/dev/null)" = 600
kill -TERM "$pid"
wait "$pid" 2>/dev/null
check "SIGTERM removes the engine config with the PIN" \
    bash -c "! ls '$TMP'/benchtmp/phc-bench.*/engine.cnf >/dev/null 2>&1"
rm -rf "$TMP"/benchtmp/phc-bench.*

# Failures are counted and exit with the failure's class.
write_config "$TMP/down.cnf" "$(bash "$FIX/nginx.sh" free-port)"
expect 7 "cannot connect" "a server that is down fails the client with exit 7" -- \
    "$PHC_BIN" --config "$TMP/down.cnf" bench --no-curl --mode keepalive --requests 2 /v2/asset/sites
expect 1 "HTTP 404" "an HTTP error counts as a failure" -- \
    bench --json --no-curl --mode keepalive --requests 2 /nope
check "the failures are in the JSON" grep -q '"mode":"keepalive".*"failures":2' "$TMP/out"

expect 2 "--requests must be 1..100000" "--requests 0 refused" -- bench --requests 0 /x
expect 2 "--requests must be 1..100000" "--requests 100001 refused" -- bench --requests 100001 /x
expect 2 "--threads must be 1..64" "--threads 65 refused" -- bench --threads 65 /x
expect 2 "--timeout must be" "--timeout 0 refused" -- bench --timeout 0 /x
expect 2 "--mode takes" "unknown mode refused" -- bench --mode turbo /x
expect 2 "exactly one PATH" "missing PATH refused" -- bench --requests 2
expect 2 "must start with '/'" "relative PATH refused" -- bench v2/asset/sites

finish
