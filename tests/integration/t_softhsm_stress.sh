#!/usr/bin/env bash
# SoftHSM under several processes (issue 11): the runbook's renewal with a new key
# (docs/runbook-rotation.md: csr --new-key, the CA signs, install --probe, prune --yes) runs
# ROUNDS times on one token while READERS processes keep making requests (each request a
# separate `phc request`, as on a busy host) and one long-lived client makes a handshake every
# 20 ms. Required: no failed round, no failed request (each failure printed with its
# message), and at the end the token holds the active pair's three objects and nothing else.
# SoftHSM 2.6 races two ways here (p11_module.h): every login of any process rewrites
# token.object, which a reader may catch empty (tolerated by the bounded, logged retry; the
# retries taken are counted from the warnings every process logged); and a reader's
# C_GetAttributeValue on an object another process is still creating writes defaults over
# it, so the new certificate or key is lost for good, leaving a certificate object without
# id or value behind. Among phconnect processes the store lock prevents both; without it 4
# rounds of 50 failed in each of three runs (7 such leftovers each; 153 to 470 retries
# logged); with it none fail, and the only retries left are keys deleted while being listed.
# Environment: ROUNDS (50), READERS (4), PHC_V=-v (phc logs its info lines too), KEEP_ERR=DIR
# (every step's output, per round, into DIR/roundN.log). About 50-70 s on 2 loaded cores, about
# 60 s under ASan + UBSan.
# By hand (a bench on a quiet machine):
#   B=$PWD/build; PHC_SRC=$PWD PHC_BUILD=$B PHC_PKI=$B/testpki PHC_BIN=$B/tools/phc
#   PHC_MOCK=$B/tests/mock_powerhub bash tests/integration/t_softhsm_stress.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-50}
READERS=${READERS:-4}
FAULT=${PHC_BUILD:?}/tests/hsm_fault_driver

make_empty_token
start_mock mock || exit 1
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
phc() { "$PHC_BIN" --config "$CFG" ${PHC_V:-} "$@"; }
: >"$TMP/failures" # one line per failure: what, exit code, the refusal's line
: >"$TMP/warnings" # every warning any phc logged

# A command's stderr: warnings counted, the refusal (the line that is no warning) kept.
record() { # record WHAT RC ERRFILE
    grep -F 'phc: [warning]' "$3" >>"$TMP/warnings"
    [ "$2" -eq 0 ] && return 0
    echo "$1 exit $2: $(grep -v '^phc: \[' "$3" | head -1)" >>"$TMP/failures"
    return 1
}

phc enrol --subject "/O=Test Energy/CN=phc-stress" --key-type ec:P-256 --csr-out "$TMP/c0.csr" >/dev/null &&
    sign_csr "$TMP/c0.csr" "$TMP/c0.pem" && phc install "$TMP/c0.pem" >/dev/null
check "the first enrolment, before any load" test $? -eq 0

reader() { # reader N: phc request until told to stop
    local n=0 rc
    while [ ! -e "$TMP/stop" ]; do
        n=$((n + 1))
        phc request /v2/asset/sites >/dev/null 2>"$TMP/r$1.err"
        rc=$?
        [ $rc -eq 0 ] || [ -z "${KEEP_ERR:-}" ] || cp "$TMP/r$1.err" "$KEEP_ERR/reader$1-$n.err"
        record "reader $1 request $n" "$rc" "$TMP/r$1.err"
    done
    echo "$n" >"$TMP/reader$1.count"
}
# The long-lived client (hsm_fault_driver: one process, a full handshake every 20 ms,
# rotation reloads included) starts before the load.
"$FAULT" "$CFG" 3600 20 "$TMP/stop" >"$TMP/long.out" 2>"$TMP/long.err" &
T_PIDS+=("$!")
wait_for "$TMP/long.out" "^[0-9.]+ 0 " 30 || sed 's/^/    long-lived: /' "$TMP/long.err" | head -5
for i in $(seq 1 "$READERS"); do
    reader "$i" &
    T_PIDS+=("$!")
done

step() { # step ROUND NAME CMD...
    local round=$1 name=$2 rc
    shift 2
    "$@" >"$TMP/step.out" 2>"$TMP/step.err"
    rc=$?
    [ -z "${KEEP_ERR:-}" ] || { echo "== $name: exit $rc"; cat "$TMP/step.out" "$TMP/step.err"; } >>"$KEEP_ERR/round$round.log"
    record "round $round $name" "$rc" "$TMP/step.err"
}
start=$SECONDS
failed_rounds=0
for r in $(seq 1 "$ROUNDS"); do
    ok=1
    step "$r" "csr --new-key" phc csr --new-key --csr-out "$TMP/r$r.csr" || ok=0
    if [ $ok = 1 ]; then
        # Each renewal's certificate must start later than the one before (notBefore has
        # whole seconds; two in one second leave the newest pair to a tie-break, and prune
        # may then delete the pair just installed as retired): wait for a second later than
        # the one the last signing ended in (it may have begun in the second before).
        while [ "$(date +%s)" -le "${signed_at:-0}" ]; do sleep 0.05; done
        sign_csr "$TMP/r$r.csr" "$TMP/r$r.pem"
        signed_at=$(date +%s)
        step "$r" "install --probe" phc install --probe "$TMP/r$r.pem" || ok=0
    fi
    step "$r" "prune --yes" phc prune --yes || ok=0
    # A failed round leaves a pending key: the runbook's "abandoned renewal" clears it.
    [ $ok = 1 ] || step "$r" "prune --pending --yes" phc prune --pending --yes
    [ $ok = 1 ] || failed_rounds=$((failed_rounds + 1))
done
elapsed=$((SECONDS - start))
touch "$TMP/stop"
for pid in "${T_PIDS[@]:1}"; do wait "$pid" 2>/dev/null; done
requests=0
for i in $(seq 1 "$READERS"); do requests=$((requests + $(cat "$TMP/reader$i.count"))); done
long=$(wc -l <"$TMP/long.out")
awk '$2 != 0 {$1 = ""; print "long-lived client request exit" $0}' "$TMP/long.out" >>"$TMP/failures"
grep -F '[warning]' "$TMP/long.err" >>"$TMP/warnings"
nfail=$(wc -l <"$TMP/failures")
nreq=$(grep -vc '^round ' "$TMP/failures") # the failed requests among them
echo "# $ROUNDS rounds in ${elapsed}s, $failed_rounds failed; $requests requests by $READERS" \
    "readers and $long by the long-lived client; $nfail failures;" \
    "$(wc -l <"$TMP/warnings") retries logged"
sed -E 's/^.*phc: \[warning\] //; s/(id|serial|attempt) [0-9A-Fa-f]+/\1 N/g' "$TMP/warnings" |
    sort | uniq -c | sort -rn | sed 's/^/#   retry: /'
sed 's/^/    failure: /' "$TMP/failures"
check "the renewal ran $ROUNDS times under load without a failed round" test "$failed_rounds" -eq 0
check "no request failed ($requests by the readers, $long by the long-lived client)" \
    test "$nreq" -eq 0
check "the readers made requests all along" test "$requests" -ge "$ROUNDS"
check "the long-lived client made requests all along" test "$long" -ge 10
check "the rotations ended with one active pair" test "$(pair_states "$CFG" | wc -w)" -eq 1
# A certificate or key overwritten with defaults by another process stays on the token as an
# object phc does not list (no id): count the files. The fourth is install's private
# install-order record (one object: a rewrite creates the new one, then deletes the old).
objects=$(find "$TMP/tok/tokens" -name '*.object' ! -name token.object | wc -l)
check "the token holds the active pair's 3 objects, the install-order record and nothing else (found $objects)" \
    test "$objects" -eq 4
finish
