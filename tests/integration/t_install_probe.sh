#!/usr/bin/env bash
# phc install --probe tries exactly the bytes it then stores: the certificate read into
# memory, not the file read again by name. Here the file is replaced while install is
# stopped between reading it and probing (PHC_TEST_PAUSE_AT=opened): the probe must still
# present the certificate that was read - and stored -, never the replacement. Also: the
# shipped tool has no test hook (a build without -DPHC_TEST_HOOKS ignores PHC_TEST_PAUSE_AT).
. "$(dirname "$0")/lib.sh"

make_empty_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
phc() { "$PHC_BIN" --config "$CFG" "$@"; }

phc enrol --subject "/O=Test Energy/CN=phc-probe" --key-type ec:P-256 --csr-out "$TMP/01.csr" >/dev/null
sign_csr "$TMP/01.csr" "$TMP/01.pem"
phc install "$TMP/01.pem" >/dev/null
phc csr --new-key --csr-out "$TMP/02.csr" >/dev/null
sleep 1 # 02 starts later than 01
sign_csr "$TMP/02.csr" "$TMP/02.pem"
check "setup: 01 active, 02 pending" test "$(pair_states "$CFG")" = "01:active 02:pending"
S01=$(cert_serial "$TMP/01.pem")
S02=$(cert_serial "$TMP/02.pem")

# no_pause BIN: BIN, told to stop at 'opened', does not: it ends by itself with no
# "[test] paused" line (bounded: a binary that did pause is killed by timeout, exit 124).
no_pause() {
    local bin=$1
    cp "$TMP/01.pem" "$TMP/again.pem"
    PHC_TEST_PAUSE_AT=opened PHC_TEST_PAUSE_SECONDS=60 timeout 20 "$bin" --config "$CFG" \
        install "$TMP/again.pem" >"$TMP/np.out" 2>"$TMP/np.err"
    local rc=$?
    [ "$rc" -ne 124 ] && ! grep -q "paused at" "$TMP/np.err" && grep -q "already on the token" "$TMP/np.out"
}

if [ "${PHC_TEST_HOOKS:-OFF}" = ON ]; then
    cp "$TMP/02.pem" "$TMP/new.pem"
    PHC_TEST_PAUSE_AT=opened PHC_TEST_PAUSE_SECONDS=2 "$PHC_BIN" --config "$CFG" \
        install --probe "$TMP/new.pem" >"$TMP/inst.out" 2>"$TMP/inst.err" &
    INST=$!
    check "install stopped after reading the certificate" wait_for "$TMP/inst.err" "paused at opened" 30
    # The replacement: the active pair's certificate, which the server would accept as well.
    cp "$TMP/01.pem" "$TMP/new.pem.tmp" && mv "$TMP/new.pem.tmp" "$TMP/new.pem"
    wait "$INST"
    check "install --probe succeeded (exit 0)" test $? -eq 0
    check "the probe presented the certificate that was read (serial $S02)" \
        grep -q "client_serial=$S02" "$TMP/mock.log"
    check "the probe never presented the replacement file's certificate (serial $S01)" \
        bash -c "! grep -q 'client_serial=$S01' '$TMP/mock.log'"
    check "what was probed is what was stored: 02 is active" test "$(pair_states "$CFG")" = "01:retired 02:active"
    check "the hook-less build ignores PHC_TEST_PAUSE_AT" no_pause "$PHC_BIN_NOHOOKS"
    check "the hook-less build does not even hold the name" bash -c "! grep -qa PHC_TEST_PAUSE_AT '$PHC_BIN_NOHOOKS'"
    check "(control) the test build holds it" grep -qa PHC_TEST_PAUSE_AT "$PHC_BIN"
else
    echo "# phc built without -DPHC_TEST_HOOKS: the replaced-file probe test needs them (tests/run.sh)"
    check "this build (no test hooks) ignores PHC_TEST_PAUSE_AT" no_pause "$PHC_BIN"
    check "this build does not even hold the name" bash -c "! grep -qa PHC_TEST_PAUSE_AT '$PHC_BIN'"
    not_ok "the replaced-file probe test did not run (configure with -DPHC_TEST_HOOKS=ON)"
fi

finish
