#!/usr/bin/env bash
# libcurl on demand (lib/curl_load.c): libphconnect.so, phc and phc-agent do not link libcurl
# (readelf: no NEEDED; nm: no undefined curl_ symbol), so a `phc request` through the agent
# never loads it - the issue's one-shot speed target is mostly libcurl's dependency tree -
# while a direct request and `phc --version` do. The loader's own trace (LD_DEBUG=files: every
# object it opens, dlopen included) is the witness; each "not loaded" check has a "loaded"
# control in the same run, so the check can fail. A libcurl.so.4 that is not libcurl is the
# one-line refusal, exit 9.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

BIN_DIR=$(dirname "$PHC_BIN")
LIB=$(readlink -f "$PHC_BUILD/libphconnect.so")
AGENT_BIN=$BIN_DIR/phc-agent

# --- link time --------------------------------------------------------------------------
# (grep reads all its input, not -q: with pipefail an early exit would fail the pipe.)
needs_curl() { readelf -d "$1" | grep -E 'NEEDED.*\[libcurl\.so' >/dev/null; }
calls_curl() { nm -D --undefined-only "$1" | grep -E ' curl_[a-z_]+(@|$)' >/dev/null; }
# Control: a unit test that links libcurl itself shows both.
check "control: readelf sees libcurl NEEDED by http_test" needs_curl "$PHC_BUILD/tests/http_test"
check "control: nm sees http_test's undefined curl_ symbols" calls_curl "$PHC_BUILD/tests/http_test"
no_needed() { ! needs_curl "$1"; }
no_calls() { ! calls_curl "$1"; }
for f in "$LIB" "$PHC_BIN" "$AGENT_BIN"; do
    check "$(basename "$f"): no NEEDED libcurl" no_needed "$f"
    check "$(basename "$f"): no undefined curl_ symbol" no_calls "$f"
done
exports_curl() { nm -D --defined-only "$1" | grep -E ' curl_' >/dev/null; }
check "control: nm sees libcurl's exported curl_ symbols" exports_curl "$(ldconfig -p |
    awk '/libcurl\.so\.4 .*x86-64/ { print $NF; exit }')"
check "libphconnect.so exports no curl_ symbol (the forwarders are hidden)" \
    bash -c "! nm -D --defined-only '$LIB' | grep -E ' curl_' >/dev/null"

# --- run time ---------------------------------------------------------------------------
# traced NAME COMMAND...: runs COMMAND with the loader's trace in $TMP/ld.NAME.<pid>; its
# stdout/stderr in $TMP/NAME.out/.err; returns its exit status.
traced() {
    local name=$1
    shift
    LD_DEBUG=files LD_DEBUG_OUTPUT="$TMP/ld.$name" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
}
# loaded NAME: the traced process (and any child) opened libcurl; not_loaded NAME: it did not.
loaded() { grep -qE 'file=[^ ]*libcurl\.so' "$TMP"/ld."$1".*; }
not_loaded() { ! loaded "$1"; }
# saw NAME: the trace exists and names libphconnect (the trace itself works).
saw() { grep -qE 'file=[^ ]*libphconnect\.so' "$TMP"/ld."$1".*; }

check "phc --help: runs" traced help "$PHC_BIN" --help
check "phc --help: the trace shows libphconnect" saw help
check "phc --help: libcurl not loaded" not_loaded help
check "phc --version: runs" traced version "$PHC_BIN" --version
check "phc --version: loads libcurl (control)" loaded version
check "phc --version names the loaded libcurl" grep -qE ' libcurl/[0-9]+\.[0-9]+' "$TMP/version.out"

make_token
start_mock mock
SOCK=$TMP/agent.sock
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"
write_config "$TMP/direct.cnf" "$MOCK_PORT"
printf '[phconnect]\nagent = unix:%s\n' "$SOCK" >"$TMP/client.cnf"
start_agent agent "$TMP/a.cnf" || { not_ok "agent starts"; finish; }
ok "agent starts"

check "direct phc request: exit 0" traced direct "$PHC_BIN" --config "$TMP/direct.cnf" request /v2/asset/sites
check "direct phc request: the trace shows libphconnect" saw direct
check "direct phc request: loads libcurl (control)" loaded direct
for how in config flag env; do
    case $how in
    config) cmd=("$PHC_BIN" --config "$TMP/client.cnf" request /v2/asset/sites) ;;
    flag) cmd=("$PHC_BIN" --config "$TMP/none.cnf" request --agent "unix:$SOCK" /v2/asset/sites) ;;
    env) cmd=(env PHC_AGENT="unix:$SOCK" "$PHC_BIN" --config "$TMP/none.cnf" request /v2/asset/sites) ;;
    esac
    check "phc request through the agent ($how): exit 0" traced "agent-$how" "${cmd[@]}"
    check "phc request through the agent ($how): the same output as direct" \
        cmp -s "$TMP/direct.out" "$TMP/agent-$how.out"
    check "phc request through the agent ($how): the trace shows libphconnect" saw "agent-$how"
    check "phc request through the agent ($how): libcurl not loaded" not_loaded "agent-$how"
done
# The agent itself (its own program) loads libcurl when it makes its client: it served the
# requests above, so it has it mapped.
check "the agent has libcurl mapped (it makes the HTTPS transfers)" \
    grep -qE '/libcurl\.so' "/proc/$AGENT_PID/maps"
stop_agent "$AGENT_PID"
check "agent stops with exit 0" test "$AGENT_RC" = 0

# --- a libcurl.so.4 that is not libcurl -------------------------------------------------
# The loader finds libcurl.so.4 in LD_LIBRARY_PATH first: here zlib under that name. The
# request fails with the library's one line, exit 9 (internal), before touching the token.
mkdir -p "$TMP/fakelib"
ZLIB=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64|libz\.so\.1 \(libc6,x86-64/ { print $NF; exit }')
[ -n "$ZLIB" ] || ZLIB=$(ldconfig -p | awk '/libz\.so\.1 / { print $NF; exit }')
cp "$ZLIB" "$TMP/fakelib/libcurl.so.4"
expect 9 "phc: cannot load libcurl (libcurl.so.4): $TMP/fakelib/libcurl.so.4: undefined symbol: curl_global_init" \
    "a libcurl.so.4 without libcurl's functions: one line, exit 9" -- \
    env LD_LIBRARY_PATH="$TMP/fakelib" "$PHC_BIN" --config "$TMP/direct.cnf" request /v2/asset/sites
check "  ... and that is the only line" test "$(wc -l <"$TMP/err")" = 1
check "  ... and nothing was written to stdout" test ! -s "$TMP/out"
expect 0 "" "phc --version with that libcurl.so.4 still answers" -- \
    env LD_LIBRARY_PATH="$TMP/fakelib" "$PHC_BIN" --version
check "  ... naming no libcurl version" grep -q ' libcurl/? ' "$TMP/out"
finish
