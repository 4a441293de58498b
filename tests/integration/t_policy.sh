#!/usr/bin/env bash
# Address, proxy, redirect and size policy: refusals exit 6; the network is never asked.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"

# pinned_ips: DNS is not consulted (api.powerhub.test does not resolve here) and addresses
# are tried in order: a dead first address falls over to the next.
write_config "$TMP/c.cnf" "$MOCK_PORT"
set_key "$TMP/c.cnf" pinned_ips "127.0.0.9, 127.0.0.1"
expect 0 "" "first pinned address down, second used" -- "$PHC_BIN" --config "$TMP/c.cnf" -v request /v2/asset/sites
check "-v shows the address used" grep -q 'connection to 127.0.0.1 port' "$TMP/err"

before=$(mock_stat "$CFG" connections)
set_key "$TMP/c.cnf" pinned_ips "127.0.0.9"
expect 7 "" "only a dead pinned address: network error" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites
after=$(mock_stat "$CFG" connections)
check "the live server at an unpinned address was not contacted" test "$((after - before))" -eq 1

write_config "$TMP/c.cnf" "$MOCK_PORT"
set_key "$TMP/c.cnf" url "https://127.0.0.1:$MOCK_PORT"
set_key "$TMP/c.cnf" pinned_ips "127.0.0.2"
expect 2 "pinned_ips" "an IP-literal url outside pinned_ips is a config error" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites

# source_address: requests leave from the allow-listed address.
start_mock allow --allow-ip 127.0.0.5
write_config "$TMP/s.cnf" "$MOCK_PORT"
expect 1 "HTTP 403" "source not on the server's allow-list" -- "$PHC_BIN" --config "$TMP/s.cnf" request /v2/asset/sites
set_key "$TMP/s.cnf" source_address 127.0.0.5
expect 0 "" "source_address on the allow-list" -- "$PHC_BIN" --config "$TMP/s.cnf" request /echo
check "server saw the source address" grep -q '"src":"127.0.0.5"' "$TMP/out"

# Proxies from the environment are ignored: a listener stands in for the proxy and must see
# no connection.
python3 - "$TMP/proxy.port" "$TMP/proxy.hits" <<'PY' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8); s.settimeout(0.2)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
hits = 0; end = time.time() + 60
while time.time() < end:
    try:
        c, _ = s.accept(); hits += 1; open(sys.argv[2], "w").write(str(hits)); c.close()
    except socket.timeout:
        pass
PY
T_PIDS+=($!)
wait_port_file "$TMP/proxy.port" $!
PP=$(cat "$TMP/proxy.port")
https_proxy=http://127.0.0.1:$PP HTTPS_PROXY=http://127.0.0.1:$PP ALL_PROXY=http://127.0.0.1:$PP all_proxy=http://127.0.0.1:$PP \
    expect 0 "" "https_proxy in the environment is ignored" -- "$PHC_BIN" --config "$CFG" request /v2/asset/sites
check "the proxy saw no connection" test ! -e "$TMP/proxy.hits"

# Redirects are never followed.
start_mock redirect --fault redirect
write_config "$TMP/r.cnf" "$MOCK_PORT"
expect 6 "redirects are never followed" "redirect refused" -- "$PHC_BIN" --config "$TMP/r.cnf" request /v2/asset/sites
check "message names the target" grep -q 'example.com' "$TMP/err"

# Oversized responses are refused without a crash, by Content-Length and by max_response_bytes.
start_mock big --fault oversize=20000000
write_config "$TMP/b.cnf" "$MOCK_PORT"
expect 6 "max_response_bytes" "20 MB body over the 16 MiB default refused" -- "$PHC_BIN" --config "$TMP/b.cnf" request /v2/asset/sites
write_config "$TMP/b.cnf" "$MOCK_PORT" "max_response_bytes = 100"
start_mock small
write_config "$TMP/b.cnf" "$MOCK_PORT" "max_response_bytes = 100"
expect 6 "max_response_bytes (100 bytes)" "small max_response_bytes enforced" -- "$PHC_BIN" --config "$TMP/b.cnf" request /v2/asset/sites

finish
