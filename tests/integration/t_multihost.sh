#!/usr/bin/env bash
# Several hosts, one HSM (the scale-out shape): three agents, separate processes with their own
# configs, sockets and source addresses (127.0.0.2, .3, .4), share one token exported by
# `p11-kit server` (the open stand-in for a network HSM; each agent loads p11-kit's client module
# as its pkcs11_module). The upstream allow-lists exactly those three addresses, as the vendor
# does. While all three serve a steady load, an operator installs a renewed certificate on the
# shared token once, through one host's config; every agent switches to it within
# reload_interval (plus slack), no request fails, and the upstream sees each host's source
# address and, after each host's switch, only the new serial from it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

p11remote_client
: "${PHC_AGENT_LOAD:?run through ctest (agent_load driver)}"
HOSTS=(2 3 4)
RELOAD=2
# How much later than reload_interval a switch may come: the periodic look runs on the first
# request past the interval, then reads the token through the remoting (slower under ASan).
SLACK=3
[ "${PHC_SANITIZE:-OFF}" = ON ] && SLACK=8

make_token
OLD=$(cert_serial "$TMP/client.pem")
check "p11-kit server exports the token" p11remote_start "$TMP/p11"

# The vendor's allow-list: the three hosts' addresses and nothing else.
start_mock mock --allow-ip 127.0.0.2 --allow-ip 127.0.0.3 --allow-ip 127.0.0.4
write_config "$TMP/outside.cnf" "$MOCK_PORT"
set_key "$TMP/outside.cnf" pkcs11_module "$CLIENT_MODULE"
expect 1 "server answered HTTP 403" "a host not on the allow-list (127.0.0.1) is refused upstream" -- \
    "$PHC_BIN" --config "$TMP/outside.cnf" request /echo
check "... with the allow-list's reason" grep -q "source address not allowed" "$TMP/out"

declare -A APID
for h in "${HOSTS[@]}"; do
    agent_config "$TMP/h$h.cnf" "$MOCK_PORT" "$TMP/h$h.sock" "source_address = 127.0.0.$h"
    set_key "$TMP/h$h.cnf" pkcs11_module "$CLIENT_MODULE"
    set_key "$TMP/h$h.cnf" reload_interval "$RELOAD"
    start_agent "h$h" "$TMP/h$h.cnf" || not_ok "agent of host 127.0.0.$h starts"
    APID[$h]=$AGENT_PID
done
for h in "${HOSTS[@]}"; do
    check "host 127.0.0.$h: health names the token's certificate ($OLD)" \
        test "$(acurl "$TMP/h$h.sock" http://localhost/_phc/health | json_field "['certificate_serial']")" = "$OLD"
done

# Steady load: two kept-alive local clients per host, one request every 20 ms each; every
# change of the client serial the upstream saw is noted with its wall-clock time.
declare -A LPID
for h in "${HOSTS[@]}"; do
    "$PHC_AGENT_LOAD" --until "$TMP/stop" --gap-ms 20 --serials "$TMP/serials.$h" \
        "$TMP/h$h.sock" /echo 2 0 >"$TMP/load.$h" 2>"$TMP/load.$h.err" &
    LPID[$h]=$!
    T_PIDS+=("${LPID[$h]}")
done
for h in "${HOSTS[@]}"; do
    for c in 0 1; do
        wait_for "$TMP/serials.$h" " $c $OLD\$" 30 || not_ok "host 127.0.0.$h client $c served with $OLD"
    done
done
sleep 1

# The operator renews once, on host 127.0.0.2, through the same remoted token: a new key,
# the vendor CA signs, install --probe (its probe goes out from 127.0.0.2 with the new pair).
phc2() { "$PHC_BIN" --config "$TMP/h2.cnf" "$@"; }
expect 0 "" "operator: csr --new-key on the shared token" -- phc2 csr --new-key --csr-out "$TMP/renew.csr"
sign_csr "$TMP/renew.csr" "$TMP/renew.pem"
NEW=$(cert_serial "$TMP/renew.pem")
expect 0 "" "operator: install --probe of the renewal, once" -- phc2 install --probe "$TMP/renew.pem"
t_install=$(date +%s%3N)
for h in "${HOSTS[@]}"; do
    for c in 0 1; do wait_for "$TMP/serials.$h" " $c $NEW\$" $((RELOAD + SLACK + 10)) >/dev/null; done
done
sleep 1
touch "$TMP/stop"
for h in "${HOSTS[@]}"; do
    wait "${LPID[$h]}"
    echo "# host 127.0.0.$h load: $(cat "$TMP/load.$h")"
    sed 's/^/#   /' "$TMP/load.$h.err" | head -3
done

# --- the switch -------------------------------------------------------------------------------
limit=$(((RELOAD + SLACK) * 1000))
for h in "${HOSTS[@]}"; do
    first=$(awk -v s="$NEW" '$3 == s {print $1; exit}' "$TMP/serials.$h")
    if [ -n "$first" ]; then
        delay=$((first - t_install))
        echo "# host 127.0.0.$h: first request with $NEW ${delay} ms after install returned"
        check "host 127.0.0.$h switched within reload_interval + ${SLACK} s (${delay} ms <= $limit ms)" \
            test "$delay" -le "$limit"
    else
        not_ok "host 127.0.0.$h switched within reload_interval + ${SLACK} s: never"
    fi
    # Each client: the old serial, then the new one, never back (two notes, in that order).
    check "host 127.0.0.$h: each client went $OLD -> $NEW and never back" \
        test "$(awk '{s[$2] = s[$2] " " $3} END {for (c in s) print c s[c]}' "$TMP/serials.$h" | sort)" = \
        "$(printf '0 %s %s\n1 %s %s' "$OLD" "$NEW" "$OLD" "$NEW")"
done

# --- no failure ---------------------------------------------------------------------------------
total=0
N=()
for h in "${HOSTS[@]}"; do
    read -r _ n _ f _ <"$TMP/load.$h"
    total=$((total + ${n:-0}))
    check "host 127.0.0.$h: 0 failed of ${n:-0} requests" test "${f:-1}" = 0
    check "host 127.0.0.$h: a steady load (>= 50 requests)" test "${n:-0}" -ge 50
    N[h]=${n:-0}
done
echo "# $total requests through three agents, one token"

# --- what the upstream saw ------------------------------------------------------------------------
LOG=$TMP/mock.log
for h in "${HOSTS[@]}"; do
    seen=$(grep -c "src=127.0.0.$h GET /echo 200 " "$LOG")
    check "upstream: host 127.0.0.$h's $seen requests came from its address (agent answered ${N[$h]})" \
        test "$seen" -eq "${N[$h]}"
    check "upstream: from 127.0.0.$h, $OLD then only $NEW" \
        bash -c "grep 'src=127.0.0.$h GET /echo 200 ' '$LOG' | sed 's/.* client_serial=\([^ ]*\) .*/\1/' | uniq |
            tr '\n' ' ' | grep -qx '$OLD $NEW '"
done
check "upstream: every answered request came from one of the three hosts" \
    bash -c "! grep ' 200 client_serial=' '$LOG' | grep -vE 'src=127\.0\.0\.[234] ' | grep -q ."
check "upstream: the operator's probe went out from 127.0.0.2 with the new pair" \
    grep -q "src=127.0.0.2 GET /v2/asset/sites 200 client_serial=$NEW " "$LOG"
for h in "${HOSTS[@]}"; do
    check "host 127.0.0.$h: health names the new certificate" \
        test "$(acurl "$TMP/h$h.sock" http://localhost/_phc/health | json_field "['certificate_serial']")" = "$NEW"
done

# The HSM's load: each host signs for its first connection and for the first one after the
# switch (a new identity cannot resume); every other connection resumes, every request reuses.
for h in "${HOSTS[@]}"; do
    sigs=$(acurl "$TMP/h$h.sock" http://localhost/_phc/metrics | awk '$1 == "phc_token_signatures_total" {print $2}')
    check "host 127.0.0.$h: ${sigs:-?} token signatures for ${N[$h]} requests (<= 4)" test "${sigs:-99}" -le 4
done

for h in "${HOSTS[@]}"; do
    stop_agent "${APID[$h]}"
    check "host 127.0.0.$h: SIGTERM, exit 0" test "$AGENT_RC" = 0
done
check "no sanitizer report in the agents' stderr" clean_reports "$TMP"/h?.err
p11remote_stop "$TMP/p11"
finish
