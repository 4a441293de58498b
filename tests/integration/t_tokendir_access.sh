#!/usr/bin/env bash
# A user who is not root and cannot read the SoftHSM token files hears that, not "no
# initialised token" or a bare CKR_GENERAL_ERROR: phc runs as nobody (setpriv) against a
# token whose files only root can read, in each of the three shapes SoftHSM shows - a token
# directory it skips (no token), the directory of all tokens and the configuration (its
# C_Initialize fails) - through a request (the client) and phc status (the token handle).
. "$(dirname "$0")/lib.sh"

command -v setpriv >/dev/null || { echo "setpriv missing (util-linux)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root to make a token only root can read"; exit 1; }
NOBODY=65534

make_token
start_mock mock
chmod 0711 "$TMP"
chmod 0755 "$TMP/tok" "$TMP/tok/tokens"
chmod 0644 "$TMP/tok/softhsm2.conf"
install -o $NOBODY -m 0600 "$TMP/tok/pin" "$TMP/nobody-pin"
write_config "$TMP/c.cnf" "$MOCK_PORT" "strict_modes = off"
set_key "$TMP/c.cnf" pin "file:$TMP/nobody-pin"
chmod 0644 "$TMP/c.cnf"
TOKEN=$(find "$TMP/tok/tokens" -mindepth 1 -maxdepth 1 -type d)
as_nobody() { setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups env HOME=/ SOFTHSM2_CONF="$SOFTHSM2_CONF" "$PHC_BIN" --config "$TMP/c.cnf" "$@"; }

# readable by everyone (the token's files themselves stay root's 0600: SoftHSM opens them
# read-write, so the request needs them; status only lists): the setup is right
chmod -R a+rwX "$TOKEN"
expect 0 "" "setup: nobody can use a token it can read" -- as_nobody request /v2/asset/sites

chmod 0700 "$TOKEN"
expect 3 "phc: the token directory $TOKEN (owner uid 0, mode 0700) is not readable by uid $NOBODY, so PKCS#11 module '$SOFTHSM_MODULE' shows no token to this user (the module said:" \
    "a token directory only root can read: request says so" -- as_nobody request /v2/asset/sites
check "one line" test "$(wc -l <"$TMP/err")" -eq 1
expect 3 "phc: the token directory $TOKEN (owner uid 0, mode 0700) is not readable by uid $NOBODY" \
    "the same through phc status" -- as_nobody status
chmod 0755 "$TOKEN"

chmod 0700 "$TMP/tok/tokens"
expect 3 "phc: the token directory $TMP/tok/tokens (owner uid 0, mode 0700) is not readable by uid $NOBODY, so PKCS#11 module" \
    "the directory of all tokens (C_Initialize fails): said so" -- as_nobody request /v2/asset/sites
check "the module's own words kept at the end" grep -q "(the module said: .*CKR_GENERAL_ERROR)" "$TMP/err"
chmod 0755 "$TMP/tok/tokens"

chmod 0600 "$TMP/tok/softhsm2.conf"
expect 3 "phc: the SoftHSM configuration $SOFTHSM2_CONF (owner uid 0, mode 0600) is not readable by uid $NOBODY" \
    "the SoftHSM configuration: said so" -- as_nobody status
chmod 0644 "$TMP/tok/softhsm2.conf"

# root, the same token: no such words (the check looks only when the module found nothing)
chmod 0700 "$TOKEN"
expect 0 "" "root still uses the token" -- "$PHC_BIN" --config "$TMP/c.cnf" request /v2/asset/sites

finish
