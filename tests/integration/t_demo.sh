#!/usr/bin/env bash
# ./tools/demo.sh: runs through (with the tests' build, in a temporary directory), ends with
# the commands a user pastes next (the SOFTHSM2_CONF export included) and they work as
# printed; --keep leaves the mock Powerhub running and says how to stop it; the demo installs
# only what it needs (install-deps.sh --demo), the test set holds the rest.
. "$(dirname "$0")/lib.sh"

DEMO_SH=$PHC_SRC/tools/demo.sh
DEPS=$PHC_SRC/tools/install-deps.sh
demo() { # demo DIR [ARGS...]: the demo into DIR with this build
    local dir=$1
    shift
    PHC_DEMO_DIR=$dir PHC_DEMO_BUILD=$PHC_BUILD bash "$DEMO_SH" "$@"
}
# pasted FILE: the lines after "== next: paste these commands" (indented), as pasted.
pasted() { sed -n '/^== next: paste these commands/,$p' "$1" | sed -n 's/^    //p'; }
# run_pasted FILE: runs those lines in a fresh shell with nothing of ours in its environment.
run_pasted() {
    env -i HOME="$TMP" PATH=/usr/bin:/bin MANPAGER=cat MANWIDTH=80 bash -e -c "$(pasted "$1" | grep -v '^man ')"
}

# --- the package sets ----------------------------------------------------------------------
bash "$DEPS" --list --demo >"$TMP/demo.pkgs"
bash "$DEPS" --list >"$TMP/all.pkgs"
for p in nginx clang valgrind nftables iptables mandoc dpkg-dev; do
    check "$p is not in the demo set" bash -c "! grep -qx '$p' '$TMP/demo.pkgs'"
    check "$p is in the test set (install-deps.sh without --demo)" grep -qx "$p" "$TMP/all.pkgs"
done
for p in cmake libssl-dev libp11-dev softhsm2 openssl; do
    check "$p is in the demo set" grep -qx "$p" "$TMP/demo.pkgs"
done
check "the test set holds every package of the demo set" \
    bash -c "test -z \"\$(comm -23 <(sort '$TMP/demo.pkgs') <(sort '$TMP/all.pkgs'))\""
check "demo.sh installs with --demo" grep -q 'install-deps.sh --demo' "$DEMO_SH"
check "tests/run.sh installs everything (no --demo)" grep -qx 'bash tools/install-deps.sh' "$PHC_SRC/tests/run.sh"
expect 2 "install-deps.sh: unknown option '--bogus' (--demo, --list)" "install-deps.sh --bogus refused" -- bash "$DEPS" --bogus
expect 2 "demo.sh: unknown option '--bogus' (--keep, --agent, --help)" "demo.sh --bogus refused" -- bash "$DEMO_SH" --bogus
check "... as one line" test "$(wc -l <"$TMP/err")" -eq 1

# --- the demo, mock stopped at the end ---------------------------------------------------------
expect 0 "" "./tools/demo.sh runs through" -- demo "$TMP/d1"
cp "$TMP/out" "$TMP/d1.out"
check "one real request was made" grep -q STE-0001 "$TMP/d1.out"
check "it ends with the commands to paste" bash -c "tail -n +\$(grep -n '^== next: paste' '$TMP/d1.out' | cut -d: -f1) '$TMP/d1.out' | tail -1 | grep -q '^    man '"
check "... the SOFTHSM2_CONF export first" test "$(pasted "$TMP/d1.out" | head -1)" = "export SOFTHSM2_CONF=$TMP/d1/token/softhsm2.conf"
check "... PHC_CONFIG and PATH" bash -c "pasted() { sed -n '/^== next/,\$p' '$TMP/d1.out' | sed -n 's/^    //p'; }
    pasted | grep -qx 'export PHC_CONFIG=$TMP/d1/phc.cnf' && pasted | grep -qx 'export PATH=$PHC_BUILD/tools:\$PATH'"
check "... no request while the mock is stopped" bash -c "! sed -n '/^== next/,\$p' '$TMP/d1.out' | grep -q 'request'"
check "the mock has stopped" bash -c "! pgrep -f -- '[-]-port-file $TMP/d1/mock.port' >/dev/null && test ! -e '$TMP/d1/mock.pid'"
check "it says so, and how to keep it" grep -q "^== the mock Powerhub has stopped; ./tools/demo.sh --keep" "$TMP/d1.out"
expect 0 "" "the pasted commands work as printed (status, check)" -- run_pasted "$TMP/d1.out"
check "... phc status shows the active pair" grep -q "active" "$TMP/out"
check "... phc check is OK" grep -q "^PHC OK - certificate 'CN=demo-energy-client,O=Demo Energy'" "$TMP/out"

# --- --keep ------------------------------------------------------------------------------------
expect 0 "" "./tools/demo.sh --keep runs through" -- demo "$TMP/d2" --keep
cp "$TMP/out" "$TMP/d2.out"
MOCK_PID=$(cat "$TMP/d2/mock.pid" 2>/dev/null)
[ -n "$MOCK_PID" ] && T_PIDS+=("$MOCK_PID") # stopped by the test's cleanup whatever happens
check "the mock is still running" kill -0 "$MOCK_PID"
check "it says how to stop it" grep -qx "   stop it with:  kill $MOCK_PID" "$TMP/d2.out"
check "the pasted commands include requests now" bash -c "sed -n '/^== next/,\$p' '$TMP/d2.out' | grep -qx '    phc -v request /v2/asset/sites'"
expect 0 "" "the pasted commands work as printed (status, check, requests)" -- run_pasted "$TMP/d2.out"
check "... the request got the sites" grep -q STE-0001 "$TMP/out"
check "... with the certificate the demo installed" grep -q "client certificate 'CN=demo-energy-client,O=Demo Energy'" "$TMP/err"
expect 0 "" "the printed stop command stops it" -- bash -c "$(sed -n 's/^   stop it with:  //p' "$TMP/d2.out")"
for _ in $(seq 1 50); do kill -0 "$MOCK_PID" 2>/dev/null || break; sleep 0.1; done
check "... the mock is gone" bash -c "! kill -0 $MOCK_PID 2>/dev/null"

finish
