#!/usr/bin/env bash
# fork() after the client was made: the child gets a clear error from the inherited client
# and works with its own; the parent's token sessions keep signing.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
expect 0 "" "fork driver" -- "$PHC_FORK" "$CFG"
cat "$TMP/out"
check "the inherited client refused in the child, naming fork()" grep -q 'child with inherited client: exit 3: .*fork()' "$TMP/out"
check "a new client in the child works" grep -q 'child with its own client: ok' "$TMP/out"
check "the parent signs full handshakes after the child" test "$(grep -c 'parent after the child: ok' "$TMP/out")" -eq 3
finish
