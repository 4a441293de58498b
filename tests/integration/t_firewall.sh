#!/usr/bin/env bash
# phc firewall: egress rules that allow only pinned_ips on the URL's port, in nft and
# iptables-restore syntax (checked with nft -c / iptables-restore --test where available),
# including a config listing old and new addresses during a transition.
. "$(dirname "$0")/lib.sh"

make_token
CFG=$TMP/phc.cnf
write_config "$CFG" 8443
set_key "$CFG" url "https://api.powerhub.test:8443"
set_key "$CFG" pinned_ips "203.0.113.10, 2001:db8::10, 198.51.100.20"
phc() { "$PHC_BIN" --config "$CFG" "$@"; }

# --- nft (default) ---------------------------------------------------------------------------
expect 0 "" "firewall (nft)" -- phc firewall
cp "$TMP/out" "$TMP/rules.nft"
check "IPv4 addresses allowed on the URL's port" grep -q 'ip daddr { 203.0.113.10, 198.51.100.20 } tcp dport 8443 accept' "$TMP/rules.nft"
check "IPv6 address allowed on the URL's port" grep -q 'ip6 daddr { 2001:db8::10 } tcp dport 8443 accept' "$TMP/rules.nft"
check "everything else on that port rejected, last" bash -c "grep -v '^\s*}' '$TMP/rules.nft' | tail -1 | grep -q 'tcp dport 8443 reject with tcp reset'"
check "an output chain by default" grep -q 'type filter hook output priority filter' "$TMP/rules.nft"
check "no other port is touched" bash -c "! grep -Eo 'dport [0-9]+' '$TMP/rules.nft' | grep -vq 'dport 8443'"
if command -v nft >/dev/null && nft -c -f "$TMP/rules.nft" >/dev/null 2>&1; then
    ok "nft -c accepts the rules"
elif command -v nft >/dev/null && nft -c -f - </dev/null >/dev/null 2>&1; then
    not_ok "nft -c rejects the rules: $(nft -c -f "$TMP/rules.nft" 2>&1 | head -3)"
else
    echo "# nft -c not available here (needs nftables and CAP_NET_ADMIN): syntax not checked"
fi

# The perimeter firewall: a forward chain matched by this host's source address.
expect 2 "needs this host's address" "a forward chain needs a source address" -- phc firewall --chain forward
expect 0 "" "forward chain with --source" -- phc firewall --chain forward --source 192.0.2.99
cp "$TMP/out" "$TMP/forward.nft"
check "forward hook" grep -q 'type filter hook forward priority filter' "$TMP/forward.nft"
check "rules match the host's address" grep -q 'ip saddr 192.0.2.99 ip daddr { 203.0.113.10, 198.51.100.20 } tcp dport 8443 accept' "$TMP/forward.nft"
check "an IPv4 source leaves the IPv6 destinations out" bash -c "! grep -q 'ip6 daddr' '$TMP/forward.nft'"
check "the reject is for that host only" grep -q 'ip saddr 192.0.2.99 tcp dport 8443 reject' "$TMP/forward.nft"
if command -v nft >/dev/null && nft -c -f "$TMP/rules.nft" >/dev/null 2>&1; then
    check "nft -c accepts the forward rules" nft -c -f "$TMP/forward.nft"
fi
set_key "$CFG" source_address 192.0.2.99
expect 0 "" "source_address from the config" -- phc firewall --chain forward
check "... is used" grep -q 'ip saddr 192.0.2.99 ' "$TMP/out"
grep -v '^source_address' "$CFG" >"$CFG.new" && mv "$CFG.new" "$CFG"

# --- iptables-restore / ip6tables-restore -------------------------------------------------------
expect 0 "" "firewall --format iptables" -- phc firewall --format iptables
cp "$TMP/out" "$TMP/rules.ipt"
check "jump from OUTPUT for the port" grep -qx -- '-A OUTPUT -p tcp --dport 8443 -j PHC-EGRESS' "$TMP/rules.ipt"
check "first IPv4 address accepted" grep -q -- '^-A PHC-EGRESS -d 203.0.113.10/32 -p tcp --dport 8443 .*-j ACCEPT$' "$TMP/rules.ipt"
check "second IPv4 address accepted" grep -q -- '^-A PHC-EGRESS -d 198.51.100.20/32 -p tcp --dport 8443 .*-j ACCEPT$' "$TMP/rules.ipt"
check "the rest rejected" grep -q -- '^-A PHC-EGRESS -p tcp --dport 8443 .*-j REJECT --reject-with tcp-reset$' "$TMP/rules.ipt"
check "the IPv6 address is pointed to ip6tables" grep -q '^# IPv6 addresses (2001:db8::10): phc firewall --format ip6tables' "$TMP/rules.ipt"
check "no IPv6 address in IPv4 rules" bash -c "! grep -q '^-A.*2001:db8' '$TMP/rules.ipt'"
expect 0 "" "firewall --format ip6tables" -- phc firewall --format ip6tables
cp "$TMP/out" "$TMP/rules.ip6"
check "IPv6 address accepted" grep -q -- '^-A PHC-EGRESS -d 2001:db8::10/128 -p tcp --dport 8443 .*-j ACCEPT$' "$TMP/rules.ip6"
if command -v iptables-restore >/dev/null && iptables-restore --test <"$TMP/rules.ipt" >/dev/null 2>&1; then
    ok "iptables-restore --test accepts the rules"
    check "ip6tables-restore --test accepts the rules" bash -c "ip6tables-restore --test <'$TMP/rules.ip6'"
else
    echo "# iptables-restore --test not available here: syntax not checked"
fi
expect 2 "--chain forward needs" "iptables forward chain without a source" -- phc firewall --format iptables --chain forward
expect 0 "" "iptables forward chain" -- phc firewall --format iptables --chain forward --source 192.0.2.99
check "FORWARD jump for the host" grep -qx -- '-A FORWARD -s 192.0.2.99 -p tcp --dport 8443 -j PHC-EGRESS' "$TMP/out"

# --- refusals ----------------------------------------------------------------------------------
expect 2 "must be nft, iptables or ip6tables" "unknown format" -- phc firewall --format pf
expect 2 "must be output or forward" "unknown chain" -- phc firewall --chain input
expect 2 "numeric IPv4/IPv6 address" "a source that is not an address" -- phc firewall --source host.example
set_key "$CFG" pinned_ips "2001:db8::10"
expect 2 "pinned_ips has no IPv4 address: use --format ip6tables" "iptables without IPv4 addresses" -- phc firewall --format iptables
grep -v '^pinned_ips' "$CFG" >"$CFG.new" && mv "$CFG.new" "$CFG"
expect 2 "has no 'pinned_ips'" "no pinned_ips, no rules" -- phc firewall
check "nothing printed without pinned_ips" test ! -s "$TMP/out"

finish
