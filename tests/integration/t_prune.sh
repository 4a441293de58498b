#!/usr/bin/env bash
# phc prune: lists (without --yes) or deletes expired and retired pairs; never the active
# pair, never its key, never a pair still to come; pending keys only with --pending.
. "$(dirname "$0")/lib.sh"

make_empty_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
phc() { "$PHC_BIN" --config "$CFG" "$@"; }
putcert() { bash "$FIX/token.sh" putcert "$TMP/tok" "$1" client "$2"; }
objects() { # objects ID: how many objects of any class the token holds with that id
    pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin 1234 --list-objects 2>/dev/null |
        grep -c "ID: *$1\$"
}
serial_seen() {
    phc request /echo >"$TMP/echo" 2>&1 && grep -q "\"client_serial\":\"$(cert_serial "$1")\"" "$TMP/echo" && return 0
    sed 's/^/    got: /' "$TMP/echo" | head -5
    return 1
}

# 01 active, alone: nothing to prune.
phc enrol --subject "/O=Test Energy/CN=phc-prune" --csr-out "$TMP/01.csr" >/dev/null
sign_csr "$TMP/01.csr" "$TMP/01.pem"
phc install "$TMP/01.pem" >/dev/null
expect 0 "" "prune with only the active pair" -- phc prune --yes
check "... has nothing to prune" grep -q "^nothing to prune on token 'phc-test'" "$TMP/out"
check "... and keeps it" test "$(pair_states "$CFG")" = "01:active"
expect 0 "" "prune --pending with only the active pair" -- phc prune --yes --pending
check "... keeps it too" test "$(pair_states "$CFG")" = "01:active"

# 02 expired, 03 not yet valid (as a token might hold them: stored by other tools),
# 04 the renewal that becomes active (01 retired), 05 pending.
for id in 02 03 04 05; do
    phc csr --new-key --csr-out "$TMP/$id.csr" >/dev/null
    case $id in
    02) sign_csr "$TMP/02.csr" "$TMP/02.pem" 365 expired && putcert "$TMP/02.pem" 02 ;;
    03) sign_csr "$TMP/03.csr" "$TMP/03.pem" 365 notyet && putcert "$TMP/03.pem" 03 ;;
    04) sleep 1 && sign_csr "$TMP/04.csr" "$TMP/04.pem" 365 && phc install "$TMP/04.pem" >/dev/null ;;
    esac
done
check "setup: every state at once" test "$(pair_states "$CFG")" = "01:retired 02:expired 03:not-yet-valid 04:active 05:pending"
phc status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print([(p["id"], p["state"], p["serial"]) for p in s["pairs"]])' >"$TMP/before.json"

expect 0 "" "prune without --yes" -- phc prune
check "lists the retired pair" grep -q "^would delete: id 01 (retired) 'CN=phc-prune,O=Test Energy'" "$TMP/out"
check "lists the expired pair" grep -q "^would delete: id 02 (expired)" "$TMP/out"
check "lists no other pair" test "$(grep -c '^would delete: id' "$TMP/out")" -eq 2
# The private keys that go with them are named too, in the dry run as for real.
check "dry run: names the private key of 01 (id, label, type)" \
    grep -qx "would delete: private key id 01, label 'client', type RSA 2048" "$TMP/out"
check "dry run: names the private key of 02" \
    grep -qx "would delete: private key id 02, label 'client', type RSA 2048" "$TMP/out"
check "dry run: no other private key (not the active, future or pending ones)" \
    test "$(grep -c '^would delete: private key' "$TMP/out")" -eq 2
check "says how to delete, and that the keys go for good" grep -qx \
    "nothing deleted: run 'phc prune --yes' to delete them (and the private keys above, for good)" "$TMP/out"
phc status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print([(p["id"], p["state"], p["serial"]) for p in s["pairs"]])' >"$TMP/after.json"
check "without --yes nothing was deleted" cmp -s "$TMP/before.json" "$TMP/after.json"

expect 0 "" "prune --yes" -- phc prune --yes
check "reports what it deleted" test "$(grep -c '^deleted: id 0[12] ' "$TMP/out")" -eq 2
check "reports the private keys it deleted" test "$(grep -c "^deleted: private key id 0[12], label 'client', type RSA 2048\$" "$TMP/out")" -eq 2
check "the active, future and pending pairs remain" test "$(pair_states "$CFG")" = "03:not-yet-valid 04:active 05:pending"
check "no object of 01 is left (certificate, private and public key)" test "$(objects 01)" -eq 0
check "no object of 02 is left" test "$(objects 02)" -eq 0
check "the active pair keeps its certificate and both key halves" test "$(objects 04)" -eq 3
check "requests use the active pair after prune" serial_seen "$TMP/04.pem"

expect 0 "" "prune --pending (dry run)" -- phc prune --pending
check "dry run names the pending private key" grep -qx "would delete: private key id 05, label 'client', type RSA 2048" "$TMP/out"
check "... and says to add --yes" grep -q "^nothing deleted: run 'phc prune --yes --pending' to delete it (and the private key above, for good)" "$TMP/out"
expect 0 "" "prune -y -p (short forms)" -- phc prune -y -p
check "deletes the pending key" grep -q "^deleted: id 05 (pending key" "$TMP/out"
check "... naming its private key" grep -qx "deleted: private key id 05, label 'client', type RSA 2048" "$TMP/out"
check "and nothing else" test "$(pair_states "$CFG")" = "03:not-yet-valid 04:active"
check "no object of 05 is left" test "$(objects 05)" -eq 0

# Same-key renewal: the older certificate of the active key is retired; prune deletes that
# certificate only, never the key the active certificate needs.
phc csr --csr-out "$TMP/04b.csr" >/dev/null
sign_csr "$TMP/04b.csr" "$TMP/04b.pem" 730
sleep 1 # a later notBefore than the first certificate of key 04
sign_csr "$TMP/04b.csr" "$TMP/04b.pem" 730
phc install "$TMP/04b.pem" >/dev/null
check "same key, two certificates: the newer is active" test "$(pair_states "$CFG")" = "03:not-yet-valid 04:retired 04:active"
expect 0 "" "prune after a same-key renewal (dry run)" -- phc prune
check "lists the old certificate" grep -q "^would delete: id 04 (retired)" "$TMP/out"
check "... and no private key: the active certificate still needs it" bash -c "! grep -q '^would delete: private key' '$TMP/out'"
check "... and says so" grep -qx "nothing deleted: run 'phc prune --yes' to delete it (no private key among them)" "$TMP/out"
expect 0 "" "prune after a same-key renewal" -- phc prune --yes
check "... deletes no private key" bash -c "! grep -q 'private key' '$TMP/out'"
check "only the old certificate went" test "$(pair_states "$CFG")" = "03:not-yet-valid 04:active"
check "key 04 keeps both halves and one certificate" test "$(objects 04)" -eq 3
check "requests use the renewed certificate" serial_seen "$TMP/04b.pem"

# Nothing valid at all: an expired-only token is pruned empty, and there was no active pair to
# protect.
make_empty_token
phc enrol --subject "/CN=phc-prune-expired" --csr-out "$TMP/e.csr" >/dev/null
sign_csr "$TMP/e.csr" "$TMP/e.pem" 365 expired
putcert "$TMP/e.pem" 01
check "an expired pair only" test "$(pair_states "$CFG")" = "01:expired"
expect 0 "" "prune --yes with only an expired pair" -- phc prune --yes
check "the token is empty" test "$(pair_states "$CFG")" = ""

expect 2 "takes no arguments" "prune with an argument" -- phc prune 01

finish
