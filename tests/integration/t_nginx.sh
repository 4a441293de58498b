#!/usr/bin/env bash
# Interop: the same client against nginx configured for mutual TLS.
. "$(dirname "$0")/lib.sh"

make_token
PORT=$(bash "$FIX/nginx.sh" free-port)
mkdir -p "$TMP/nginx"
T_NGINX+=("$TMP/nginx")
bash "$FIX/nginx.sh" start "$TMP/nginx" "$PORT" "$PHC_PKI/server.pem" "$PHC_PKI/server.key" "$PHC_PKI/ca.pem" >/dev/null
CFG=$TMP/phc.cnf
write_config "$CFG" "$PORT"

expect 0 "" "request through nginx" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites
check "nginx answered the sites JSON" grep -q STE-0001 "$TMP/out"
expect 0 "" "nginx saw the token-held client certificate" -- "$PHC_BIN" --config "$CFG" request /echo
check "client DN in nginx's answer" grep -q 'phc-test-client' "$TMP/out"

expect 0 "" "30 requests over one client" -- "$PHC_MULTI" "$CFG" /v2/asset/sites 30 1
distinct=$(grep 'GET /v2/asset/sites' "$TMP/nginx/access.log" | tail -30 | grep -o 'conn=[0-9]*' | sort -u | wc -l)
check "nginx served 30 keep-alive requests on one connection ($distinct connection ids)" test "$distinct" -eq 1

expect 0 "" "-v against nginx" -- "$PHC_BIN" --config "$CFG" -v request /v2/asset/sites
check "TLS 1.3 negotiated with nginx" grep -q 'TLSv1.3' "$TMP/err"

finish
