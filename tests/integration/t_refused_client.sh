#!/usr/bin/env bash
# A server that refuses our client certificate (its TLS alert) is a trust error (exit 5) whose
# one line names our certificate - subject, issuer, serial - the alert and what to check; with
# TLS 1.3 (alert on the first read) and TLS 1.2 (alert in the handshake); for a request, for
# `install --probe` and for the token request of the client-credentials path. libcurl's own
# host name check names the server certificate too. No one-line message carries OpenSSL's raw
# error text; -vv does.
. "$(dirname "$0")/lib.sh"

make_token
SUBJ="CN=phc-test-client,O=Test Energy"
ROOT="CN=Powerhub Test Root CA,O=Tesla Test"
SERIAL=$(cert_serial "$TMP/client.pem")

# raw_free DESCRIPTION: the last run's stderr has none of OpenSSL's or libcurl's raw text.
raw_free() {
    check "$1: no raw OpenSSL/libcurl text on stderr" \
        bash -c '! grep -qE "error:0A|SSL routines|errno|OpenSSL|SSL_read|SSL_connect|SSL_write" "$1"' _ "$TMP/err"
}

# refused WANT_ALERT DESCRIPTION -- COMMAND...: exit 5 naming our certificate and the alert.
refused() {
    local alert=$1 what=$2
    shift 3
    expect 5 "refused client certificate '$SUBJ' issued by '$ROOT' (serial $SERIAL): TLS alert $alert" \
        "$what" -- "$@"
    raw_free "$what"
}

# --- the server trusts another client CA ----------------------------------------------------
launch_mock other13 --cert "$PHC_PKI/server.pem" --key "$PHC_PKI/server.key" --client-ca "$PHC_PKI/other-ca.pem"
write_config "$TMP/o13.cnf" "$MOCK_PORT"
refused unknown_ca "TLS 1.3: another client CA" -- "$PHC_BIN" --config "$TMP/o13.cnf" request /v2/asset/sites
check "it says what to check" grep -qF "is this certificate registered with the vendor?" "$TMP/err"
check "it names the server" grep -qF "server https://api.powerhub.test:$MOCK_PORT refused" "$TMP/err"
check "the message is one line" test "$(wc -l <"$TMP/err")" -eq 1
check "the refused client sent no request" test ! -s "$TMP/other13.log"

expect 5 "TLS alert unknown_ca" "TLS 1.3 with -vv: same class and message" -- "$PHC_BIN" --config "$TMP/o13.cnf" -vv request /v2/asset/sites
# libcurl's text depends on whether it read the alert or failed on the send first.
check "-vv shows libcurl's raw detail" grep -qF "[debug] libcurl: " "$TMP/err"
check "-vv shows the alert as received" grep -qF "[debug] TLS alerts: from the server 48 (unknown_ca)" "$TMP/err"
check "TLS 1.3: the alert came after the handshake (not CURLcode 35)" bash -c '! grep -q "CURLcode 35)" "$1"' _ "$TMP/err"

# The TLS 1.3 alert arrives after our request went out, sometimes after the server has reset
# the connection: it must be caught every time, not only when libcurl happens to read first.
n5=0
for i in $(seq 1 15); do
    "$PHC_BIN" --config "$TMP/o13.cnf" request /v2/asset/sites >/dev/null 2>"$TMP/loop.err"
    [ $? -eq 5 ] && grep -qF "TLS alert unknown_ca" "$TMP/loop.err" && n5=$((n5 + 1))
done
check "TLS 1.3: 15 of 15 refusals reported as the server's alert (got $n5)" test "$n5" -eq 15

launch_mock other12 --cert "$PHC_PKI/server.pem" --key "$PHC_PKI/server.key" --client-ca "$PHC_PKI/other-ca.pem" --tls12-only
write_config "$TMP/o12.cnf" "$MOCK_PORT"
refused unknown_ca "TLS 1.2: another client CA" -- "$PHC_BIN" --config "$TMP/o12.cnf" request /v2/asset/sites
expect 5 "TLS alert unknown_ca" "TLS 1.2 with -vv" -- "$PHC_BIN" --config "$TMP/o12.cnf" -vv request /v2/asset/sites
check "TLS 1.2: the alert ended the handshake (CURLcode 35)" grep -q "CURLcode 35)" "$TMP/err"
check "-vv shows OpenSSL's raw error" grep -qF "[debug] libcurl: OpenSSL/3" "$TMP/err"
check "-vv shows OpenSSL's reason" grep -qF "alert unknown ca" "$TMP/err"

# --- the server's clock says our certificate has expired ---------------------------------
for v in 13 12; do
    extra=()
    [ $v = 12 ] && extra=(--tls12-only)
    launch_mock exp$v --client-ca "$PHC_PKI/ca.pem" --cert "$PHC_PKI/server.pem" --key "$PHC_PKI/server.key" \
        --verify-at $(($(date +%s) + 3 * 365 * 86400)) "${extra[@]}"
    write_config "$TMP/exp$v.cnf" "$MOCK_PORT"
    refused certificate_expired "TLS 1.${v#1}: the server finds our certificate expired" -- "$PHC_BIN" --config "$TMP/exp$v.cnf" request /v2/asset/sites
    check "TLS 1.${v#1}: it says to renew" grep -qF "renew it (phc csr, then phc install --probe)" "$TMP/err"
done

# --- a server that requires a client certificate, and the configuration has none ----------
. "$(dirname "$0")/auth_lib.sh"
for v in 13 12; do
    extra=()
    [ $v = 12 ] && extra=(--tls12-only)
    start_creds_mock req$v --client-ca "$PHC_PKI/ca.pem" "${extra[@]}"
    write_creds_config "$TMP/req$v.cnf" "$MOCK_PORT"
    aexpect 5 "requesting an API token from https://api.powerhub.test:$MOCK_PORT/v1/auth/token: server https://api.powerhub.test:$MOCK_PORT requires a client certificate and this configuration has none (client credentials only)" \
        "TLS 1.${v#1}: credentials only, server requires a certificate" -- "$PHC_BIN" --config "$TMP/req$v.cnf" request /v2/asset/sites
    raw_free "TLS 1.${v#1}: certificate required"
    want=certificate_required
    [ $v = 12 ] && want=handshake_failure # TLS 1.2 has no certificate_required alert
    check "TLS 1.${v#1}: the alert is named ($want)" grep -qF "TLS alert $want; set pkcs11_module, key and pin" "$TMP/err"
    check "TLS 1.${v#1}: no token was issued to the refused client" test "$(count_log req$v 'POST /v1/auth/token')" -eq 0
done

# --- client credentials with a client certificate: the token request is refused -----------
start_creds_mock both --client-ca "$PHC_PKI/other-ca.pem"
write_config "$TMP/both.cnf" "$MOCK_PORT" "client_id = cid-1" "client_secret = env:PHC_TEST_SECRET"
aexpect 5 "requesting an API token from https://api.powerhub.test:$MOCK_PORT/v1/auth/token: server https://api.powerhub.test:$MOCK_PORT refused client certificate '$SUBJ' issued by '$ROOT' (serial $SERIAL): TLS alert unknown_ca" \
    "client credentials + certificate: token request refused by the server" -- "$PHC_BIN" --config "$TMP/both.cnf" request /v2/asset/sites
raw_free "token request refused"
check "no client secret in any message" bash -c '! grep -qF -e "$1" "$2"' _ "$SECRET" "$LOGS"

# --- install --probe: the probe names the certificate being installed ----------------------
# A renewal with the same key: a second certificate for key 01, not yet on the token.
bash "$FIX/pki.sh" issue-client "$PHC_PKI" "$TMP/tok/pub.pem" "/O=Test Energy/CN=phc-test-client" \
    "$TMP/renew.pem" 400 >/dev/null
RSERIAL=$(cert_serial "$TMP/renew.pem")
expect 5 "probe with $TMP/renew.pem failed, nothing was installed: server https://api.powerhub.test:" \
    "install --probe against a server that refuses the certificate" -- "$PHC_BIN" --config "$TMP/o13.cnf" install --probe "$TMP/renew.pem"
check "the probe names the new certificate's serial" grep -qF "(serial $RSERIAL): TLS alert unknown_ca" "$TMP/err"
raw_free "install --probe refused"
check "nothing was installed" test "$(pair_states "$TMP/o13.cnf")" = "01:active"

# --- libcurl's own host name check names the server certificate ---------------------------
# Subject CN=api.powerhub.test but only an iPAddress SAN: libcurl refuses a host name that
# none of the SANs match, whichever check runs first the message names the certificate.
export OPENSSL_CONF=/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/ipsan.key" 2>/dev/null
openssl req -new -key "$TMP/ipsan.key" -subj "/O=Tesla Test/CN=api.powerhub.test" -out "$TMP/ipsan.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n' >"$TMP/ipsan.ext"
openssl x509 -req -in "$TMP/ipsan.csr" -CA "$PHC_PKI/ca.pem" -CAkey "$PHC_PKI/ca.key" -set_serial 0x51ab \
    -days 30 -extfile "$TMP/ipsan.ext" -out "$TMP/ipsan.pem" 2>/dev/null
unset OPENSSL_CONF
start_mock ipsan --cert "$TMP/ipsan.pem" --key "$TMP/ipsan.key"
write_config "$TMP/ipsan.cnf" "$MOCK_PORT"
expect 5 "server certificate 'CN=api.powerhub.test,O=Tesla Test' issued by '$ROOT' refused: not valid for host 'api.powerhub.test'" \
    "a certificate whose SANs do not name the host" -- "$PHC_BIN" --config "$TMP/ipsan.cnf" request /v2/asset/sites
raw_free "host name refused"
check "the refused server got no request" test ! -s "$TMP/ipsan.log"
set_key "$TMP/ipsan.cnf" url "https://127.0.0.1:$MOCK_PORT"
expect 0 "" "the same certificate is accepted for its IP address" -- "$PHC_BIN" --config "$TMP/ipsan.cnf" request /v2/asset/sites

# --- failures that are not a refusal stay network errors, in our words ---------------------
start_mock reset --fault reset-handshake
write_config "$TMP/reset.cnf" "$MOCK_PORT"
expect 7 "TLS handshake with https://api.powerhub.test:$MOCK_PORT (address 127.0.0.1) failed: the connection ended without a TLS alert" \
    "reset mid-handshake" -- "$PHC_BIN" --config "$TMP/reset.cnf" request /v2/asset/sites
raw_free "reset mid-handshake"

finish
