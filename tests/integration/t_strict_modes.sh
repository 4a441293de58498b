#!/usr/bin/env bash
# Ownership and permissions of the files the config names, as OpenSSH's StrictModes: the
# config itself, ca_file, pkcs11_module and every directory above them may be written only by
# root or the user phc runs as; the PIN file (and a client-secret file) must not be readable by
# others. strict_modes = warn (default): a warning line naming the file and its mode, the
# command goes on; error: exit 2 with that line; off: not looked at.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
D=$TMP/cfg
mkdir -m 0755 "$D"
cp "$PHC_PKI/ca.pem" "$D/ca.pem"
cp "$TMP/tok/pin" "$D/pin"
chmod 0600 "$D/pin"
write_config "$D/phc.cnf" "$MOCK_PORT"
set_key "$D/phc.cnf" ca_file "$D/ca.pem"
set_key "$D/phc.cnf" pin "file:$D/pin"
run() { "$PHC_BIN" --config "$D/phc.cnf" "$@"; }

expect 0 "" "safe files: the request succeeds" -- run request /v2/asset/sites
check "safe files (in a tree under the sticky /tmp): no warning" test ! -s "$TMP/err"

# --- the PIN file readable by others -----------------------------------------------------
chmod 0644 "$D/pin"
expect 0 "phc: [warning] PIN file (pin) $D/pin is readable by others (mode 0644): chmod o-rwx it" \
    "PIN file mode 0644: a warning naming the file and its mode, the request goes on" -- run request /v2/asset/sites
check "the warning is one line" test "$(grep -c warning "$TMP/err")" -eq 1
check "the request still answered" grep -q STE-0001 "$TMP/out"
set_key "$D/phc.cnf" strict_modes error
expect 2 "phc: PIN file (pin) $D/pin is readable by others (mode 0644): chmod o-rwx it (strict_modes = error)" \
    "strict_modes = error: the same finding is a config error" -- run request /v2/asset/sites
check "strict_modes = error: nothing was sent" test ! -s "$TMP/out"
set_key "$D/phc.cnf" strict_modes off
expect 0 "" "strict_modes = off: not looked at" -- run request /v2/asset/sites
check "strict_modes = off: no warning" test ! -s "$TMP/err"
set_key "$D/phc.cnf" strict_modes warn
chmod 0640 "$D/pin"
expect 0 "" "PIN file readable by its group only (0640): fine" -- run request /v2/asset/sites
check "0640 PIN file: no warning" test ! -s "$TMP/err"
chmod 0600 "$D/pin"

# --- trust files writable by others -------------------------------------------------------
chmod 0664 "$D/ca.pem"
expect 0 "phc: [warning] CA file (ca_file) $D/ca.pem is writable by its group (mode 0664)" \
    "group-writable CA file warned about" -- run request /v2/asset/sites
chmod 0644 "$D/ca.pem"
chown 65534 "$D/ca.pem"
expect 0 "CA file (ca_file) $D/ca.pem belongs to uid 65534, neither root nor this user (uid 0)" \
    "CA file of another user warned about" -- run request /v2/asset/sites
chown 0 "$D/ca.pem"
chmod 0666 "$D/phc.cnf"
expect 0 "config file $D/phc.cnf is writable by others (mode 0666)" "world-writable config warned about" -- \
    run request /v2/asset/sites
chmod 0644 "$D/phc.cnf"
chmod 0777 "$D"
expect 0 "directory $D above CA file (ca_file) $D/ca.pem is writable by others (mode 0777)" \
    "a world-writable directory above the CA file warned about" -- run request /v2/asset/sites
chmod 1777 "$D"
expect 0 "" "a sticky world-writable directory (like /tmp) is fine" -- run request /v2/asset/sites
check "sticky directory: no warning about it" bash -c "! grep -q 'directory $D ' '$TMP/err'"
chmod 0755 "$D"

# --- what is checked in every subcommand that reads the config -------------------------------
chmod 0644 "$D/pin"
set_key "$D/phc.cnf" strict_modes error
expect 2 "PIN file (pin) $D/pin is readable by others" "status refuses too" -- run status
expect 3 "" "check says UNKNOWN (exit 3)" -- run check
check "check's UNKNOWN summary names the file" grep -q "^PHC UNKNOWN - PIN file (pin) $D/pin is readable by others" "$TMP/out"
expect 2 "key 'strict_modes': must be warn, error or off" "a bad strict_modes value is a config error" -- \
    bash -c "sed -i 's/^strict_modes = .*/strict_modes = maybe/' '$D/phc.cnf' && '$PHC_BIN' --config '$D/phc.cnf' status"

finish
