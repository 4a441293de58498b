#!/usr/bin/env bash
# The request path under valgrind memcheck: no invalid access, no use of uninitialised memory,
# no leak of phconnect's own, on success and on the refusal paths (wrong PIN above all: stock
# curl with the libp11 engine crashes at exit there).
. "$(dirname "$0")/lib.sh"

if [ "${PHC_SANITIZE:-OFF}" = ON ]; then
    echo "# skipped: valgrind does not run ASan binaries (this suite runs in the plain build)"
    echo "0 passed, 0 failed"
    exit 0
fi
command -v valgrind >/dev/null || { echo "valgrind missing"; exit 1; }

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --suppressions="$PHC_SRC/tests/valgrind.supp")

expect 0 "" "request under valgrind" -- "${VG[@]}" "$PHC_BIN" --config "$CFG" -v request /v2/asset/sites
expect 0 "" "4 threads x 10 requests under valgrind" -- "${VG[@]}" "$PHC_MULTI" "$CFG" /v2/asset/sites 40 4

echo 0000 >"$TMP/wrongpin"
write_config "$TMP/w.cnf" "$MOCK_PORT" && set_key "$TMP/w.cnf" pin "file:$TMP/wrongpin"
expect 4 "not retried" "wrong PIN under valgrind exits cleanly" -- "${VG[@]}" "$PHC_BIN" --config "$TMP/w.cnf" request /v2/asset/sites

start_mock other --cert "$PHC_PKI/server-other.pem" --key "$PHC_PKI/server-other.key"
write_config "$TMP/o.cnf" "$MOCK_PORT"
expect 5 "Public Test CA" "trust refusal under valgrind" -- "${VG[@]}" "$PHC_BIN" --config "$TMP/o.cnf" request /v2/asset/sites

write_config "$TMP/t.cnf" "$MOCK_PORT" && set_key "$TMP/t.cnf" key "pkcs11:token=absent;object=client;type=private"
expect 3 "absent" "missing token under valgrind" -- "${VG[@]}" "$PHC_BIN" --config "$TMP/t.cnf" request /v2/asset/sites

finish
