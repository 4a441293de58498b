#!/usr/bin/env bash
# phc check and pinned_ips: without pinned_ips connections go wherever DNS points for the
# url's host (the pinned CA and the host name are still checked). phc check says so on its
# summary line and is WARNING (exit 1) unless --allow-unpinned says it is intended; a worse
# state (CRITICAL) stays; the metrics carry the number of pinned addresses.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
write_config "$TMP/pinned.cnf" "$MOCK_PORT"
grep -v '^pinned_ips' "$TMP/pinned.cnf" >"$TMP/unpinned.cnf"
NOTE="pinned_ips is unset: connections go to whatever address DNS gives for api.powerhub.test"

expect 0 "" "pinned: OK" -- "$PHC_BIN" --config "$TMP/pinned.cnf" check
check "pinned: no note about pinning" bash -c "grep -q '^PHC OK - ' '$TMP/out' && ! grep -q pinned_ips '$TMP/out'"

expect 1 "" "unpinned: WARNING (exit 1)" -- "$PHC_BIN" --config "$TMP/unpinned.cnf" check
check "unpinned: the summary says why and what to do" \
    grep -q "^PHC WARNING - certificate .*; $NOTE (set pinned_ips, or --allow-unpinned)" "$TMP/out"

expect 0 "" "unpinned with --allow-unpinned: OK (exit 0)" -- \
    "$PHC_BIN" --config "$TMP/unpinned.cnf" check --allow-unpinned
check "--allow-unpinned: the summary still says it" grep -q "^PHC OK - .*; $NOTE (--allow-unpinned)" "$TMP/out"

expect 2 "" "unpinned and a certificate inside --crit-days: CRITICAL stays (exit 2)" -- \
    "$PHC_BIN" --config "$TMP/unpinned.cnf" check --warn-days 3700 --crit-days 3700
check "CRITICAL: the pinning note is there too" grep -q "^PHC CRITICAL - .*; $NOTE" "$TMP/out"

expect 1 "" "unpinned --prometheus" -- "$PHC_BIN" --config "$TMP/unpinned.cnf" check --prometheus "$TMP/u.prom"
check "metrics: phc_pinned_ips 0" grep -qx "phc_pinned_ips 0" "$TMP/u.prom"
check "metrics: status 1" grep -qx "phc_check_status 1" "$TMP/u.prom"
expect 0 "" "pinned --prometheus" -- "$PHC_BIN" --config "$TMP/pinned.cnf" check --prometheus "$TMP/p.prom"
check "metrics: phc_pinned_ips 1" grep -qx "phc_pinned_ips 1" "$TMP/p.prom"
if command -v promtool >/dev/null; then
    check "promtool accepts the metrics" promtool check metrics <"$TMP/u.prom"
fi

finish
