#!/usr/bin/env bash
# Relative paths in a config file (ca_file, a cert file, pin = file:, client_secret = file:,
# pkcs11_module) name files beside the config file, whatever directory phc runs from; and PIN
# files: trailing whitespace or an empty file is refused with exit 4 before any C_Login
# (counted at the PKCS#11 boundary with OpenSC's pkcs11-spy), a PIN file behind symbolic links
# is followed when every link, directory and the file are root's or the user's and writable
# by no one else (Kubernetes' ..data layout), and refused naming the link, its target and the
# owner otherwise.
. "$(dirname "$0")/lib.sh"

SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
[ -r "$SPY" ] || { echo "pkcs11-spy.so missing (package opensc-pkcs11)"; exit 1; }
export PKCS11SPY=$SOFTHSM_MODULE

make_token
start_mock mock

# The spy keeps allocations of its own until the process ends and is unloaded before
# LeakSanitizer looks (t_pin_spy.sh says more): its runs go without leak detection in the
# sanitizer build, and the paths are run once more at the end straight on SoftHSM with it.
SPY_ASAN=${ASAN_OPTIONS:-}
[ "${PHC_SANITIZE:-OFF}" = ON ] && SPY_ASAN="${SPY_ASAN:+$SPY_ASAN:}detect_leaks=0"
spy_run() { # spy_run LOG EXPECTED_EXIT FRAGMENT DESCRIPTION -- COMMAND...
    local log=$1 code=$2 frag=$3 what=$4
    shift 5
    rm -f "$log"
    ASAN_OPTIONS=$SPY_ASAN PKCS11SPY_OUTPUT=$log expect "$code" "$frag" "$what" -- timeout 60 "$@" </dev/null
}
logins() { grep -cE '^[0-9]+: C_Login$' "$1" 2>/dev/null; }

# --- relative paths, resolved against the config file's directory -------------------------
D=$TMP/etc/phc
mkdir -p "$D/certs" "$TMP/elsewhere"
chmod 700 "$TMP/etc" "$D"
cp "$PHC_PKI/ca.pem" "$D/ca.pem"
cp "$TMP/client.pem" "$D/certs/client.pem"
install -m 600 "$TMP/tok/pin" "$D/pin"
ln -s "$SPY" "$D/p11.so"
cat >"$D/phc.cnf" <<CNF
[phconnect]
url = https://api.powerhub.test:$MOCK_PORT
ca_file = ca.pem
pinned_ips = 127.0.0.1
pkcs11_module = ./p11.so
key = pkcs11:token=phc-test;object=client;type=private
cert = certs/client.pem
pin = file:pin
CNF
cd "$TMP/elsewhere" || exit 1
spy_run "$TMP/spy-rel.log" 0 "" "relative paths, run from another directory" -- \
    "$PHC_BIN" --config "$D/phc.cnf" request /v2/asset/sites
check "relative pkcs11_module is the one beside the config (the spy saw the login)" \
    test "$(logins "$TMP/spy-rel.log")" -eq 1
spy_run "$TMP/spy-rel2.log" 0 "" "config named relatively (../etc/phc/phc.cnf)" -- \
    "$PHC_BIN" --config ../etc/phc/phc.cnf request /v2/asset/sites
cd / || exit 1
mv "$D/ca.pem" "$D/ca.moved"
expect 2 "phc: cannot read ca_file $D/ca.pem: no such file" "missing relative ca_file: the message names the file beside the config" -- \
    "$PHC_BIN" --config "$D/phc.cnf" request /v2/asset/sites
mv "$D/ca.moved" "$D/ca.pem"
# a file of the same name in the working directory is not used
cd "$TMP/elsewhere" || exit 1
echo 0000 >pin
chmod 600 pin
spy_run "$TMP/spy-cwd.log" 0 "" "pin = file:pin is not the working directory's pin" -- \
    "$PHC_BIN" --config "$D/phc.cnf" request /v2/asset/sites
cd / || exit 1

# --- PIN file content: refused before any login --------------------------------------------
pin=$(cat "$TMP/tok/pin")
write_config "$TMP/p.cnf" "$MOCK_PORT"
set_key "$TMP/p.cnf" pkcs11_module "$SPY"
set_key "$TMP/p.cnf" pin "file:$TMP/pinfile"
try_pin() { # try_pin CONTENT(printf format) FRAGMENT DESCRIPTION
    printf "$1" "$pin" >"$TMP/pinfile"
    chmod 600 "$TMP/pinfile"
    spy_run "$TMP/spy-p.log" 4 "$2" "$3" -- "$PHC_BIN" --config "$TMP/p.cnf" request /v2/asset/sites
    check "$3: no C_Login at all" test "$(logins "$TMP/spy-p.log")" -eq 0
    check "$3: one line, starting phc:" bash -c "[ \$(wc -l <'$TMP/err') -eq 1 ] && grep -q '^phc: ' '$TMP/err'"
    check "$3: the PIN is not echoed" bash -c "! grep -qF -- '$pin' '$TMP/err'"
}
try_pin '%s \n' "phc: PIN file $TMP/pinfile has whitespace after its value (1 byte beyond the one final newline that is dropped): remove it" "PIN followed by a blank"
try_pin '%s\n\n' "has whitespace after its value (1 byte beyond" "PIN followed by two newlines"
try_pin '%s\r\n\r\n' "has whitespace after its value (2 bytes beyond" "PIN followed by two CRLF"
try_pin '%s\t' "has whitespace after its value (1 byte beyond" "PIN followed by a tab, no newline"
try_pin '' "phc: PIN file $TMP/pinfile is empty" "empty PIN file"
try_pin '\n\n' "phc: PIN file $TMP/pinfile is empty (only whitespace)" "PIN file of blank lines"
printf '%s\r\n' "$pin" >"$TMP/pinfile"
spy_run "$TMP/spy-p.log" 0 "" "one final CRLF is dropped" -- "$PHC_BIN" --config "$TMP/p.cnf" request /v2/asset/sites
check "one final CRLF: one C_Login" test "$(logins "$TMP/spy-p.log")" -eq 1

# --- PIN files behind symbolic links --------------------------------------------------------
S=$TMP/secrets
mkdir -p "$S/..2026_11_29_08_00"
chmod 755 "$S" "$S/..2026_11_29_08_00"
install -m 600 "$TMP/tok/pin" "$S/..2026_11_29_08_00/pin"
ln -s ..2026_11_29_08_00 "$S/..data"
ln -s ..data/pin "$S/pin"
set_key "$TMP/p.cnf" pin "file:$S/pin"
spy_run "$TMP/spy-l.log" 0 "" "PIN file in Kubernetes' layout (pin -> ..data/pin, ..data -> dated dir)" -- \
    "$PHC_BIN" --config "$TMP/p.cnf" request /v2/asset/sites
check "followed link: exactly one C_Login" test "$(logins "$TMP/spy-l.log")" -eq 1
check "followed link: no warning" test ! -s "$TMP/err"

chmod 775 "$S/..2026_11_29_08_00"
spy_run "$TMP/spy-l.log" 4 "phc: PIN file $S/pin is a symbolic link to $S/..2026_11_29_08_00/pin, not followed: $S/..2026_11_29_08_00 is writable by its group (mode 0775)" \
    "link into a group-writable directory refused" -- "$PHC_BIN" --config "$TMP/p.cnf" request /v2/asset/sites
check "unsafe link: no C_Login" test "$(logins "$TMP/spy-l.log")" -eq 0
chmod 755 "$S/..2026_11_29_08_00"
if [ "$(id -u)" = 0 ]; then
    chown -h nobody "$S/..data"
    spy_run "$TMP/spy-l.log" 4 "not followed: $S/..data belongs to uid $(id -u nobody), neither root nor this user (uid 0)" \
        "link owned by another user refused" -- "$PHC_BIN" --config "$TMP/p.cnf" request /v2/asset/sites
    check "link of another user: no C_Login" test "$(logins "$TMP/spy-l.log")" -eq 0
    chown -h root "$S/..data"
fi
# readable by others stays a warning (one place: strict_modes), naming the file and its mode
chmod 644 "$S/..2026_11_29_08_00/pin"
spy_run "$TMP/spy-l.log" 0 "PIN file (pin) $S/pin is readable by others (mode 0644)" \
    "PIN file readable by others: a warning, the request still made" -- \
    "$PHC_BIN" --config "$TMP/p.cnf" request /v2/asset/sites

# client_secret = file: goes through the same reader: a relative name, beside the config
set_key "$D/phc.cnf" client_id plant-1
printf 'sec \n' >"$D/secret"
chmod 600 "$D/secret"
set_key "$D/phc.cnf" client_secret file:secret
spy_run "$TMP/spy-s.log" 2 "phc: client secret file $D/secret has whitespace after its value" \
    "client_secret = file:secret (relative, trailing blank): refused, exit 2" -- \
    "$PHC_BIN" --config "$D/phc.cnf" request /v2/asset/sites

if [ "${PHC_SANITIZE:-OFF}" = ON ]; then
    set_key "$D/phc.cnf" pkcs11_module "$SOFTHSM_MODULE"
    grep -v '^client_' "$D/phc.cnf" >"$D/n.cnf"
    expect 0 "" "relative paths straight on SoftHSM: no leak (ASan)" -- \
        "$PHC_BIN" --config "$D/n.cnf" request /v2/asset/sites
    set_key "$TMP/p.cnf" pkcs11_module "$SOFTHSM_MODULE"
    set_key "$TMP/p.cnf" pin "file:$TMP/pinfile"
    printf '%s \n' "$pin" >"$TMP/pinfile"
    expect 4 "has whitespace after its value" "PIN refusal straight on SoftHSM: no leak (ASan)" -- \
        "$PHC_BIN" --config "$TMP/p.cnf" request /v2/asset/sites
    set_key "$TMP/p.cnf" pin "file:$S/pin"
    chmod 775 "$S/..2026_11_29_08_00"
    expect 4 "not followed" "unsafe link straight on SoftHSM: no leak (ASan)" -- \
        "$PHC_BIN" --config "$TMP/p.cnf" request /v2/asset/sites
fi

finish
