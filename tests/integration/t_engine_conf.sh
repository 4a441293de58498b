#!/usr/bin/env bash
# phc engine-conf: the rendered OpenSSL config lets the stock openssl and curl use the token
# key; the PIN is written only when asked for, and then only into a 0600 file; curl with
# --capath to an empty directory trusts only the pinned CA. The URIs it writes name the
# active pair's id, so that after a rotation (two pairs with the same label on the token) a
# stock curl with them presents the new certificate.
. "$(dirname "$0")/lib.sh"

make_token
URI='pkcs11:token=phc-test;object=client;type=private'
CERT_URI='pkcs11:token=phc-test;object=client;type=cert'
start_mock good
GOOD_PORT=$MOCK_PORT
CFG=$TMP/phc.cnf
write_config "$CFG" "$GOOD_PORT"
phc() { "$PHC_BIN" --config "$CFG" "$@"; }

# --- rendering -------------------------------------------------------------------------
expect 0 "" "renders to standard output" -- phc engine-conf
check "engine loaded from its dynamic_path" grep -q '^dynamic_path = /.*pkcs11\.so$' "$TMP/out"
check "module path from the config" grep -qx "MODULE_PATH = $SOFTHSM_MODULE" "$TMP/out"
check "no PIN without --with-pin" bash -c "! grep -q '^PIN' '$TMP/out'"
check "no placeholder left" bash -c "! grep -q '@[A-Z_]*@' '$TMP/out'"
check "key URI in the header, with the active pair's id" grep -qx "# Key:  $URI;id=%01" "$TMP/out"
check "certificate URI in the header, with the active pair's id" grep -qx "# Cert: $CERT_URI;id=%01" "$TMP/out"

expect 2 "never standard output" "--with-pin without -o refused" -- phc engine-conf --with-pin
check "nothing printed for --with-pin to stdout" test ! -s "$TMP/out"

expect 0 "" "renders without the PIN to a file" -- phc engine-conf -o "$TMP/prompt.cnf"
check "file without PIN holds no PIN" bash -c "! grep -q '^PIN' '$TMP/prompt.cnf'"

# An existing world-readable file is replaced, not rewritten in place: the PIN never sits in
# a file others can read.
echo old >"$TMP/pin.cnf"
chmod 644 "$TMP/pin.cnf"
expect 0 "" "renders with the PIN to a file" -- phc engine-conf --with-pin -o "$TMP/pin.cnf"
check "PIN file is mode 0600" test "$(stat -c %a "$TMP/pin.cnf")" = 600
check "PIN control present" grep -qx 'PIN = "1234"' "$TMP/pin.cnf"
check "PIN not printed" bash -c "! grep -qw 1234 '$TMP/out' '$TMP/err'"

# The installed phc finds the installed template (<prefix>/share/phconnect/engine-conf).
cmake --install "$PHC_BUILD" --prefix "$TMP/inst" >/dev/null 2>&1
libdir=$(dirname "$(find "$TMP/inst" -name 'libphconnect.so.0' | head -1)")
expect 0 "" "the installed phc renders the installed template" -- \
    env LD_LIBRARY_PATH="$libdir" "$TMP/inst/bin/phc" --config "$CFG" engine-conf
check "installed rendering matches the build tree's" bash -c \
    "diff <(grep -v '^# Rendered' '$TMP/out') <('$PHC_BIN' --config '$CFG' engine-conf | grep -v '^# Rendered')"

# --- stock openssl signs with the token key ----------------------------------------------
req() { # req CONF CSR: openssl req with the engine key
    OPENSSL_CONF=$1 openssl req -new -engine pkcs11 -keyform engine -key "$URI" \
        -subj /CN=engine-test -out "$2"
}
expect 0 "" "openssl req with the engine key and the stored PIN" -- req "$TMP/pin.cnf" "$TMP/a.csr"
check "the CSR's signature verifies" openssl req -verify -noout -in "$TMP/a.csr"
openssl req -in "$TMP/a.csr" -noout -pubkey >"$TMP/a.pub" 2>/dev/null
check "the CSR carries the token's public key" cmp -s "$TMP/a.pub" "$TMP/tok/pub.pem"
# Without a stored PIN the engine prompts; with no terminal it reads standard input.
expect 0 "Enter PKCS#11 token PIN" "openssl req prompts for the PIN" -- \
    bash -c "printf '1234\n' | OPENSSL_CONF='$TMP/prompt.cnf' openssl req -new -engine pkcs11 \
        -keyform engine -key '$URI' -subj /CN=engine-test -out '$TMP/b.csr'"
check "the prompted CSR verifies" openssl req -verify -noout -in "$TMP/b.csr"

# --- stock curl with the engine key, trusting only the pinned CA --------------------------
mkdir -p "$TMP/empty-capath"
scurl() { # scurl CONF PORT: stock curl with the engine key and the pinned CA only
    OPENSSL_CONF=$1 curl -sS --max-time 20 --noproxy '*' --engine pkcs11 \
        --key-type ENG --key "$URI" --cert-type ENG --cert "$CERT_URI" \
        --cacert "$PHC_PKI/ca.pem" --capath "$TMP/empty-capath" \
        --resolve "api.powerhub.test:$2:127.0.0.1" "https://api.powerhub.test:$2/v2/asset/sites"
}
expect 0 "" "stock curl with the engine key reaches the mock" -- scurl "$TMP/pin.cnf" "$GOOD_PORT"
check "curl got the sites JSON" grep -q STE-0001 "$TMP/out"
check "the mock saw the token's client certificate" grep -q 'phc-test-client' "$TMP/good.log"

scurl_uris() { # scurl_uris CONF PORT KEY-URI CERT-URI: stock curl with the given URIs
    OPENSSL_CONF=$1 curl -sS --max-time 20 --noproxy '*' --engine pkcs11 \
        --key-type ENG --key "$3" --cert-type ENG --cert "$4" \
        --cacert "$PHC_PKI/ca.pem" --capath "$TMP/empty-capath" \
        --resolve "api.powerhub.test:$2:127.0.0.1" "https://api.powerhub.test:$2/v2/asset/sites"
}

start_mock other --cert "$PHC_PKI/server-other.pem" --key "$PHC_PKI/server-other.key"
expect 60 "" "curl --cacert pinned --capath EMPTY refuses a server from another CA" -- \
    scurl "$TMP/pin.cnf" "$MOCK_PORT"
check "the other-CA server saw no request" bash -c "! grep -q 'GET ' '$TMP/other.log'"

# --- after a rotation: a second pair with the same label, the URIs select the new one -----
# uri_of FILE Key|Cert: the URI the rendered file names.
uri_of() { sed -n "s/^# $2: *//p" "$1"; }
sleep 1 # the new certificate starts later than the first, as a real renewal does
expect 0 "" "rotation: a new key on the token (phc csr --new-key)" -- \
    phc csr --new-key --subject "/O=Test Energy/CN=phc-rotated-client" --csr-out "$TMP/new.csr"
sign_csr "$TMP/new.csr" "$TMP/new.pem"
expect 0 "" "rotation: phc install of its certificate" -- phc install "$TMP/new.pem"
check "rotation: two pairs on the token, the new one active" \
    test "$(pair_states "$CFG")" = "01:retired 02:active"
expect 0 "" "engine-conf rendered again after the rotation" -- phc engine-conf --with-pin -o "$TMP/rot.cnf"
check "the key URI names the new pair's id" test "$(uri_of "$TMP/rot.cnf" Key)" = "$URI;id=%02"
check "the certificate URI names the new pair's id" test "$(uri_of "$TMP/rot.cnf" Cert)" = "$CERT_URI;id=%02"
: >"$TMP/good.log"
expect 0 "" "stock curl with the rendered URIs reaches the mock after the rotation" -- \
    scurl_uris "$TMP/rot.cnf" "$GOOD_PORT" "$(uri_of "$TMP/rot.cnf" Key)" "$(uri_of "$TMP/rot.cnf" Cert)"
check "curl got the sites JSON with the new pair" grep -q STE-0001 "$TMP/out"
check "the mock saw the new certificate's serial" \
    grep -q "client_serial=$(cert_serial "$TMP/new.pem") client_subject=CN=phc-rotated-client" "$TMP/good.log"
check "... and not the old one's" bash -c "! grep -q 'client_serial=$(cert_serial "$TMP/client.pem") ' '$TMP/good.log'"
# phc bench's curl baseline takes the same URIs from the file it renders.
: >"$TMP/good.log"
mkdir -p "$TMP/benchtmp"
expect 0 "" "phc bench with its curl baseline after the rotation" -- \
    env TMPDIR="$TMP/benchtmp" "$PHC_BIN" --config "$CFG" bench --json --mode keepalive --requests 2 /v2/asset/sites
check "... curl's line has no failures" python3 -c "
import json
lines = [json.loads(l) for l in open('$TMP/out')]
curl = [l for l in lines if l['mode'] == 'curl-keepalive']
assert len(curl) == 1 and curl[0]['failures'] == 0, lines"
check "... every request the mock saw carried the new certificate" bash -c \
    "test \$(grep -c 'GET /v2/asset/sites' '$TMP/good.log') -ge 4 && ! grep 'GET /v2/asset/sites' '$TMP/good.log' | grep -vq 'client_serial=$(cert_serial "$TMP/new.pem") '"

# --- a PIN that OpenSSL's config parser would misread unquoted ----------------------------
# shellcheck disable=SC2016 # a literal $ is the point
ODD_PIN='a#b"c\$d e'
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label phc-test --login --pin 1234 \
    --change-pin --new-pin "$ODD_PIN" >/dev/null 2>&1
printf '%s' "$ODD_PIN" >"$TMP/tok/pin"
expect 0 "" "renders a PIN with # \" \\ \$ and a space" -- phc engine-conf --with-pin -o "$TMP/odd.cnf"
expect 0 "" "openssl logs in with that PIN from the file" -- req "$TMP/odd.cnf" "$TMP/c.csr"
check "that CSR verifies" openssl req -verify -noout -in "$TMP/c.csr"
printf '1234' >"$TMP/tok/pin"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label phc-test --login --pin "$ODD_PIN" \
    --change-pin --new-pin 1234 >/dev/null 2>&1

# --- refusals -----------------------------------------------------------------------------
write_config "$TMP/nokey.cnf" "$GOOD_PORT"
grep -v -e '^key' -e '^pkcs11_module' -e '^pin' "$TMP/nokey.cnf" >"$TMP/nokey2.cnf"
printf 'client_id = abc\nclient_secret = env:PHC_T_SECRET\n' >>"$TMP/nokey2.cnf"
expect 2 "no token key for the engine" "config without a token key refused" -- \
    "$PHC_BIN" --config "$TMP/nokey2.cnf" engine-conf
expect 3 "is not readable" "missing --engine-path refused" -- \
    phc engine-conf --engine-path "$TMP/nope.so"
expect 2 "cannot find the template" "missing --template refused" -- \
    phc engine-conf --template "$TMP/nope.in"
printf 'x = @ENGINE_PATH@\ny = @SOMETHING_NEW@\n' >"$TMP/bad.in"
expect 2 "placeholder" "template with an unknown placeholder refused" -- \
    phc engine-conf --template "$TMP/bad.in"
printf 'x = @ENGINE_PATH@ # mail@example\n' >"$TMP/ok.in"
expect 0 "" "an @ that starts no placeholder is kept" -- phc engine-conf --template "$TMP/ok.in"
check "the custom template was rendered" grep -q '^x = /.*pkcs11.so # mail@example$' "$TMP/out"
set_key "$CFG" pin "file:$TMP/no-such-pin"
expect 4 "no-such-pin" "unreadable PIN source refused with --with-pin" -- \
    phc engine-conf --with-pin -o "$TMP/x.cnf"
check "no file left behind" test ! -e "$TMP/x.cnf"
expect 4 "no-such-pin does not exist (engine-conf reads the token to name the active pair's id)" \
    "without --with-pin the PIN is still needed to read the token's pairs" -- phc engine-conf
set_key "$CFG" key "$URI;id=%01"
expect 0 "" "a key URI with its own id: the token is not read, nor the PIN source" -- phc engine-conf
check "... and that URI is written as it is" grep -qx "# Key:  $URI;id=%01" "$TMP/out"
expect 2 "phc: engine-conf takes no arguments besides its options: 'extra'" "stray argument refused" -- phc engine-conf extra
expect 2 "phc: engine-conf: unknown option '--bogus' (see 'phc help engine-conf')" \
    "unknown option refused" -- phc engine-conf --bogus

# A token without an active pair (a key, no certificate yet): no id to name, and it says so.
rm -rf "$TMP/tok"
NOCERT=1 make_token
write_config "$CFG" "$GOOD_PORT"
expect 0 "phc: [warning] no active pair on token 'phc-test': the URIs name no id and match whichever of its 1 key the engine finds first; render again after 'phc install'" \
    "no active pair: rendered with a warning" -- phc engine-conf
check "... the URIs as configured, without id" grep -qx "# Key:  $URI" "$TMP/out"

finish
