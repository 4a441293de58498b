#!/usr/bin/env bash
# Usage and configuration errors: exit 2 with a message naming the problem.
. "$(dirname "$0")/lib.sh"

make_token
CFG=$TMP/phc.cnf
write_config "$CFG" 9

expect 2 "unknown subcommand" "unknown subcommand" -- "$PHC_BIN" --config "$CFG" frobnicate
expect 2 "PATH" "request without a path" -- "$PHC_BIN" --config "$CFG" request
expect 2 "must start with '/'" "relative path" -- "$PHC_BIN" --config "$CFG" request v2/asset/sites
expect 2 "/nonexistent/phc.cnf" "missing config file" -- "$PHC_BIN" --config /nonexistent/phc.cnf request /x
PHC_CONFIG=/nonexistent/env.cnf expect 2 "/nonexistent/env.cnf" "PHC_CONFIG is honoured" -- "$PHC_BIN" request /x

write_config "$TMP/typo.cnf" 9 "pinned_ip = 127.0.0.1"
expect 2 "pinned_ip" "unknown key is named" -- "$PHC_BIN" --config "$TMP/typo.cnf" request /x
check "and its line" grep -q 'line 8' "$TMP/err"

write_config "$TMP/http.cnf" 9
set_key "$TMP/http.cnf" url "http://api.powerhub.test:9"
expect 2 "https" "http:// url refused" -- "$PHC_BIN" --config "$TMP/http.cnf" request /x

write_config "$TMP/noca.cnf" 9
set_key "$TMP/noca.cnf" ca_file "$TMP/missing-ca.pem"
expect 2 "missing-ca.pem" "unreadable CA file named" -- "$PHC_BIN" --config "$TMP/noca.cnf" request /x

echo "not a certificate" >"$TMP/garbage.pem"
write_config "$TMP/garbage.cnf" 9
set_key "$TMP/garbage.cnf" ca_file "$TMP/garbage.pem"
expect 2 "garbage.pem" "CA file without certificates" -- "$PHC_BIN" --config "$TMP/garbage.cnf" request /x

finish
