#!/usr/bin/env bash
# More response header fields than the connector reads (128) is a refusal (exit 6) naming the
# limit, not a silent drop of the fields past it: a dropped Retry-After would change the retry.
# At the limit the answer is taken as usual.
. "$(dirname "$0")/lib.sh"

make_token ec:P-256

start_mock many --fault manyheaders=200
write_config "$TMP/many.cnf" "$MOCK_PORT"
expect 6 "phc: response from https://api.powerhub.test:$MOCK_PORT refused: the response has more than 128 header fields, the most the connector reads" \
    "200 header fields: refused with exit 6, naming the limit" -- "$PHC_BIN" --config "$TMP/many.cnf" request /v2/asset/sites
check "200 header fields: no body written" test ! -s "$TMP/out"

# The mock's own fields (Content-Type, Content-Length, ...) come on top of the 100.
start_mock some --fault manyheaders=100
write_config "$TMP/some.cnf" "$MOCK_PORT"
expect 0 "" "100 extra header fields: read as usual" -- "$PHC_BIN" --config "$TMP/some.cnf" request /v2/asset/sites
check "100 extra header fields: the body is the sites list" grep -q STE-0001 "$TMP/out"

finish
