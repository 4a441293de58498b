#!/usr/bin/env bash
# SoftHSM under several processes (issue 11): the investigation harness (strace, details kept
# in OUT_DIR); the pass/fail check in the suite is tests/integration/t_softhsm_stress.sh. The
# runbook's renewal with a new key (docs/runbook-rotation.md section 3, then
# prune) is run ROUNDS times on one token while READERS processes keep making requests, each
# a separate `phc request` process, as a busy host does. Every failure is counted with its
# exact message; the summary goes to stdout, the details to OUT_DIR (kept).
#
#   tests/bench/softhsm_stress.sh [BUILD_DIR]          (default build)
# Environment: ROUNDS (25), READERS (4), OUT_DIR (a new /tmp/phc-stress.XXXXXX),
#   READER_PAUSE (0): seconds each reader sleeps between its requests (0: back to back),
#   LONG (1): also one long-lived client (hsm_fault_driver: one process, a full handshake
#   every 20 ms, rotation reloads included) whose failed requests are counted too,
#   STRACE=1 runs every phc under `strace -f -tt -e trace=file,flock,fcntl,desc` into
#   OUT_DIR/strace/ (slow; for the investigation), INSTALL ("install --probe" or "install").
# Exit status: 0 when nothing failed, 1 otherwise.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
ROUNDS=${ROUNDS:-25}
READERS=${READERS:-4}
INSTALL=${INSTALL:-install --probe}
OUT=${OUT_DIR:-$(mktemp -d /tmp/phc-stress.XXXXXX)}
mkdir -p "$OUT"
export PHC_SRC=$SRC PHC_BUILD=$BUILD PHC_PKI=$OUT/pki
export PHC_BIN=$BUILD/tools/phc PHC_MOCK=$BUILD/tests/mock_powerhub
PHC_FAULT=$BUILD/tests/hsm_fault_driver
LONG=${LONG:-1}
[ -x "$PHC_BIN" ] && [ -x "$PHC_MOCK" ] || { echo "softhsm_stress.sh: build phc and mock_powerhub in $BUILD first" >&2; exit 1; }
bash "$SRC/tests/fixtures/pki.sh" "$PHC_PKI" >/dev/null
# lib.sh: token, mock and config helpers, a temp dir and the cleanup of what it started.
# shellcheck source=../integration/lib.sh
. "$SRC/tests/integration/lib.sh"
[ "${KEEP:-0}" = 1 ] && PHC_KEEP_TMP=1

make_empty_token
start_mock mock || exit 1
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
PHC=("$PHC_BIN")
if [ "${STRACE:-0}" = 1 ]; then
    mkdir -p "$OUT/strace"
    PHC=(strace -f -tt -e trace=file,flock,fcntl,desc -o "$OUT/strace/phc" -ff "$PHC_BIN")
fi
phc() { "${PHC[@]}" --config "$CFG" "$@"; }
stamp() { date +%H:%M:%S.%N | cut -c1-12; }

# First enrolment, before any load.
phc enrol --subject "/O=Test Energy/CN=phc-stress" --key-type ec:P-256 --csr-out "$TMP/c0.csr" >/dev/null &&
    sign_csr "$TMP/c0.csr" "$TMP/c0.pem" && phc install "$TMP/c0.pem" >/dev/null ||
    { echo "softhsm_stress.sh: the first enrolment failed" >&2; exit 1; }

# Readers: phc request in a loop until told to stop; one line per failure.
reader() { # reader N
    local n=0 fail=0 rc
    while [ ! -e "$TMP/stop" ]; do
        n=$((n + 1))
        phc request /v2/asset/sites >/dev/null 2>"$TMP/r$1.err"
        rc=$?
        if [ $rc -ne 0 ]; then
            fail=$((fail + 1))
            echo "$(stamp) reader $1 request $n exit $rc: $(head -1 "$TMP/r$1.err")" >>"$OUT/failures.log"
        fi
        [ "${READER_PAUSE:-0}" = 0 ] || sleep "$READER_PAUSE"
    done
    echo "$n $fail" >"$OUT/reader$1.count"
}
# The long-lived client starts before the load (its start is not what is measured).
if [ "$LONG" = 1 ]; then
    "$PHC_FAULT" "$CFG" 3600 20 "$TMP/stop" >"$OUT/long.out" 2>"$OUT/long.err" &
    T_PIDS+=("$!")
    wait_for "$OUT/long.out" "^[0-9.]+ 0 " 30 || { cat "$OUT/long.err" >&2; exit 1; }
fi
for i in $(seq 1 "$READERS"); do
    reader "$i" &
    T_PIDS+=("$!")
done

# step ROUND NAME CMD...: one runbook step; a failure is logged with its message.
step() {
    local round=$1 name=$2 rc
    shift 2
    "$@" >"$TMP/step.out" 2>"$TMP/step.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "$(stamp) round $round $name exit $rc: $(head -1 "$TMP/step.err")" >>"$OUT/failures.log"
        return 1
    fi
}
: >"$OUT/failures.log"
failed_rounds=0
for r in $(seq 1 "$ROUNDS"); do
    ok=1
    step "$r" "csr --new-key" phc csr --new-key --csr-out "$TMP/r$r.csr" || ok=0
    if [ $ok = 1 ]; then
        sign_csr "$TMP/r$r.csr" "$TMP/r$r.pem"
        # shellcheck disable=SC2086 # INSTALL is words on purpose
        step "$r" "$INSTALL" phc $INSTALL "$TMP/r$r.pem" || ok=0
    fi
    step "$r" "prune --yes" phc prune --yes || ok=0
    # A failed round leaves a pending key: the runbook's "abandoned renewal" clears it.
    [ $ok = 1 ] || step "$r" "prune --pending --yes" phc prune --pending --yes || true
    [ $ok = 1 ] || failed_rounds=$((failed_rounds + 1))
done
touch "$TMP/stop"
wait "${T_PIDS[@]:1}" 2>/dev/null
requests=0
rfail=0
for i in $(seq 1 "$READERS"); do
    read -r n f <"$OUT/reader$i.count"
    requests=$((requests + n))
    rfail=$((rfail + f))
done
echo "rounds: $ROUNDS, failed rounds: $failed_rounds; requests: $requests by $READERS readers, failed: $rfail"
if [ "$LONG" = 1 ]; then
    lfail=$(awk '$2 != 0' "$OUT/long.out" | wc -l)
    echo "long-lived client: $(wc -l <"$OUT/long.out") requests, failed: $lfail"
    awk '$2 != 0 {$1 = ""; $3 = ""; print "long-lived client exit" $0}' "$OUT/long.out" |
        sed -E 's/  +/ /g' >>"$OUT/failures.log"
    rfail=$((rfail + lfail))
fi
echo "final pairs: $(pair_states "$CFG")"
if [ -s "$OUT/failures.log" ]; then
    echo "failures (by message):"
    sed -E 's/^[0-9:.]+ (round|reader) [0-9]+ //; s/request [0-9]+ //; s/(id|serial) [0-9A-F]+/\1 N/g' \
        "$OUT/failures.log" | sort | uniq -c | sort -rn
fi
echo "details: $OUT"
[ "$failed_rounds" -eq 0 ] && [ "$rfail" -eq 0 ]
