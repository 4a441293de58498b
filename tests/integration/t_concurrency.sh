#!/usr/bin/env bash
# One client shared by 16 threads x 500 requests, kept-alive and new connections mixed, with
# a certificate rotation half-way: zero failures, and nothing grows - PKCS#11 sessions open
# at the token (counted at the PKCS#11 boundary by OpenSC's pkcs11-spy.so), file descriptors
# and resident memory of the process. Runs in every build, and alone under ThreadSanitizer
# (label concurrency, tests/run.sh). PHC_CONC_THREADS / PHC_CONC_PER_THREAD change the load
# for a manual run.
. "$(dirname "$0")/lib.sh"

DRIVER=$PHC_BUILD/tests/concurrency
SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
THREADS=${PHC_CONC_THREADS:-16}
PER_THREAD=${PHC_CONC_PER_THREAD:-500}
FRESH_EVERY=10 # every 10th request a new connection, every 50th a full handshake
[ -x "$DRIVER" ] || { echo "concurrency driver missing: $DRIVER"; exit 1; }
[ -r "$SPY" ] || { echo "pkcs11-spy.so missing (package opensc-pkcs11)"; exit 1; }
# Under ThreadSanitizer (build-tsan): a race anywhere fails the driver (exit 66).
export TSAN_OPTIONS="suppressions=$PHC_SRC/tests/tsan.supp:second_deadlock_stack=1:${TSAN_OPTIONS:-}"

make_token ec:P-256
bash "$FIX/token.sh" addkey "$TMP/tok" ec:P-256 client 02 # the pending key of the rotation
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
# Sessions are counted through the spy in the plain and the TSan build. Under ASan the spy's
# own allocations, made in a module libp11 unloads before LeakSanitizer looks, could only be
# told from phconnect's by switching leak detection off: there the driver talks to SoftHSM
# directly and every leak counts.
SPYING=1
[ "${PHC_SANITIZE:-OFF}" = ON ] && SPYING=0
if [ $SPYING = 1 ]; then
    set_key "$CFG" pkcs11_module "$SPY"
    export PKCS11SPY=$SOFTHSM_MODULE PKCS11SPY_OUTPUT=$TMP/spy.log
fi
OLD=$(openssl x509 -in "$TMP/client.pem" -noout -serial | cut -d= -f2)

# The certificate for the pending key is made now (a second after the first one: notBefore
# has one-second resolution and the newer must win) and put on the token half-way through.
sleep 1.1
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub-02.pem" "/O=Test Energy/CN=phc-test-client" \
    "$TMP/client2.pem" 400 >/dev/null
NEW=$(openssl x509 -in "$TMP/client2.pem" -noout -serial | cut -d= -f2)
mkdir "$TMP/sync"
"$DRIVER" "$CFG" /echo "$THREADS" "$PER_THREAD" "$FRESH_EVERY" "$TMP/sync" \
    >"$TMP/conc.out" 2>"$TMP/conc.err" &
PID=$!
for _ in $(seq 1 1200); do
    [ -e "$TMP/sync/half" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
done
if [ -e "$TMP/sync/half" ]; then
    bash "$FIX/token.sh" putcert "$TMP/tok" "$TMP/client2.pem" client 02
    touch "$TMP/sync/go"
fi
wait "$PID"
rc=$?
sed 's/^/    /' "$TMP/conc.out"
sed 's/^/    stderr: /' "$TMP/conc.err" | head -20

total=$((THREADS * PER_THREAD))
read -r requests failures stale changed < <(awk '$1 == "requests" { print $2, $4, $6, $8 }' "$TMP/conc.out")
check "$THREADS threads x $PER_THREAD requests on one client: driver exit 0" test "$rc" -eq 0
check "all $total requests made ($requests with the ones during the rotation)" test "${requests:-0}" -ge "$total"
check "zero failed requests" test "${failures:-1}" -eq 0
check "the rotation in the middle changed the identity" test "${changed:-0}" -eq 1
check "no request after the rotation used the old certificate's connections or sessions" test "${stale:-1}" -eq 0

# Growth between a quarter of the way (connections warm) and the end (all threads done, the
# client not yet freed).
field() { awk -v p="$1" -v f="$2" '$1 == "sample" && $2 == p { for (i = 3; i < NF; i++) if ($i == f) print $(i + 1) }' "$TMP/conc.out"; }
fd25=$(field warm fds) fd100=$(field end fds)
rss25=$(field warm rss_kb) rss100=$(field end rss_kb)
check "file descriptors flat: $fd25 warm, $fd100 at the end" test -n "$fd25" -a -n "$fd100" -a "${fd100:-999}" -le $((${fd25:-0} + 4))
# Sanitizer builds keep freed memory in quarantine, and their shadow memory grows with it:
# only the plain build's resident size says something about leaks.
if grep -q ' sanitized 1$' "$TMP/conc.out"; then
    echo "# resident memory: $rss25 kB warm, $rss100 kB at the end (not judged in a sanitizer build)"
else
    check "resident memory flat: $rss25 kB warm, $rss100 kB at the end (bound +8 MiB)" \
        test -n "$rss25" -a -n "$rss100" -a "${rss100:-0}" -le $((${rss25:-0} + 8192))
fi

if [ $SPYING = 1 ]; then
    # PKCS#11 sessions: the most ever open at once, and the balance when the run ended.
    read -r opened closed peak < <(awk '
        /^[0-9]+: C_OpenSession$/ { open++; opened++; if (open > peak) peak = open }
        /^[0-9]+: C_CloseSession$/ { open--; closed++ }
        /^[0-9]+: C_CloseAllSessions$/ { open = 0 }
        END { print opened + 0, closed + 0, peak + 0 }' "$TMP/spy.log")
    echo "# PKCS#11 sessions: $opened opened, $closed closed, at most $peak open at once"
    check "the spy saw the token's sessions" test "$opened" -ge 1
    check "sessions open at once stay bounded ($peak <= $((2 * THREADS + 8)))" test "$peak" -le $((2 * THREADS + 8))
    check "sessions opened stay bounded by the generations, not the requests ($opened <= $((4 * THREADS + 16)))" \
        test "$opened" -le $((4 * THREADS + 16))
    logins=$(grep -cE '^[0-9]+: C_Login$' "$TMP/spy.log")
    check "one login per token opening ($logins: the first client and the rotation at most)" test "$logins" -ge 1 -a "$logins" -le 2
else
    echo "# PKCS#11 sessions: counted in the plain and the TSan build"
fi

# After the run the server sees the new certificate from a new process too.
expect 0 "" "a new process presents the rotated certificate" -- "$PHC_BIN" --config "$CFG" request /echo
check "server saw serial $NEW, not $OLD" grep -q "\"client_serial\":\"$NEW\"" "$TMP/out"

finish
