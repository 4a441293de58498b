#!/usr/bin/env bash
# docs/runbook-rotation.md, played through: every command the runbook shows ("$ ..." lines in
# its sh blocks) is run here exactly as written (with PHC_CONFIG set and phc on PATH, in a
# directory holding the runbook's files), between the steps the vendor and the operator take
# by hand. The test fails when the runbook shows a command this script does not run.
# PHC_RUNBOOK_OUT=DIR keeps each command's output there (how the runbook's output was made).
. "$(dirname "$0")/lib.sh"

RUNBOOK=$PHC_SRC/docs/runbook-rotation.md
make_empty_token phconnect
start_mock mock
PORT=$MOCK_PORT
WORK=$TMP/work
mkdir -p "$WORK" "$TMP/bin" "$TMP/textfile"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$PHC_BIN" >"$TMP/bin/phc"
chmod +x "$TMP/bin/phc"
export PATH=$TMP/bin:$PATH
export PHC_CONFIG=$WORK/phconnect.cnf
export TEXTFILE_DIR=$TMP/textfile
cp "$PHC_PKI/ca.pem" "$WORK/vendor-ca.pem"
cat >"$PHC_CONFIG" <<EOF
[phconnect]
url           = https://api.powerhub.test:$PORT
ca_file       = $WORK/vendor-ca.pem
ca_sha256     = $(cat "$PHC_PKI/ca-sha256.txt")
pinned_ips    = 127.0.0.1
pkcs11_module = $SOFTHSM_MODULE
key           = pkcs11:token=phconnect;object=client;type=private
pin           = file:$TMP/tok/pin
EOF
: >"$TMP/ran"
N=0

# rb EXIT COMMAND: runs the runbook's COMMAND line as written, in $WORK; expects EXIT.
rb() {
    local want=$1 cmd=$2 got
    N=$((N + 1))
    printf '%s\n' "$cmd" >>"$TMP/ran"
    (cd "$WORK" && bash -c "$cmd") >"$TMP/out" 2>"$TMP/err" </dev/null
    got=$?
    if [ -n "${PHC_RUNBOOK_OUT:-}" ]; then
        mkdir -p "$PHC_RUNBOOK_OUT"
        { echo "\$ $cmd"; cat "$TMP/out" "$TMP/err"; } >"$PHC_RUNBOOK_OUT/$(printf %02d $N).txt"
    fi
    if [ "$got" -eq "$want" ]; then
        ok "runbook: $cmd (exit $got)"
    else
        not_ok "runbook: $cmd: wanted exit $want, got $got"
        sed 's/^/    /' "$TMP/err" | head -5
    fi
}
vendor_signs() { # vendor_signs CSR CERT [DAYS]: the vendor's part, done by the test CA
    sleep 1 # each certificate starts later than the one before, as real renewals do
    sign_csr "$WORK/$1" "$WORK/$2" "${3:-365}"
}
quiet() { "$@" >/dev/null 2>&1; }
serial_seen() {
    phc request /echo >"$TMP/echo" 2>&1 && grep -q "\"client_serial\":\"$(cert_serial "$WORK/$1")\"" "$TMP/echo"
}

# --- 1. First enrolment -----------------------------------------------------------------------
rb 0 'phc status'
rb 0 'phc enrol --subject "/O=Example Energy/CN=plant-7" --key-type ec:P-256 --csr-out client.csr'
rb 0 'openssl req -in client.csr -noout -subject -verify'
vendor_signs client.csr client.pem
rb 0 'phc install --probe client.pem'
rb 0 'phc status'
rb 0 'phc check'
check "first enrolment: requests use client.pem" serial_seen client.pem

# --- 2. Renewal with the same key -------------------------------------------------------------
rb 0 'phc csr --csr-out renew.csr'
vendor_signs renew.csr renew.pem
rb 0 'phc install --probe renew.pem'
rb 0 'phc status'
check "same-key renewal: requests use renew.pem" serial_seen renew.pem
rb 0 'phc prune'
rb 0 'phc prune --yes'

# --- 3. Renewal with a new key ------------------------------------------------------------------
rb 0 'phc csr --new-key --csr-out renew-newkey.csr'
rb 0 'phc status'
check "new key pending, current pair serving" serial_seen renew.pem
vendor_signs renew-newkey.csr renew-newkey.pem
rb 0 'phc install --probe renew-newkey.pem'
rb 0 'phc status'
check "new-key renewal: requests use renew-newkey.pem" serial_seen renew-newkey.pem

# --- 4. Rollback --------------------------------------------------------------------------------
rb 0 'phc rollback'
rb 0 'phc rollback --yes'
rb 0 'phc status'
check "after rollback requests use renew.pem again" serial_seen renew.pem
rb 0 'phc install renew-newkey.pem'
check "re-installed: requests use renew-newkey.pem" serial_seen renew-newkey.pem
rb 0 'phc prune --yes'
check "after prune only the new pair is left" test "$(pair_states "$PHC_CONFIG")" = "02:active"

# An abandoned renewal.
rb 0 'phc csr --new-key --csr-out abandoned.csr'
rb 0 'phc prune --pending --yes'
check "the abandoned key is gone" test "$(pair_states "$PHC_CONFIG")" = "02:active"

# An interrupted installation is simply run again.
phc csr --new-key --csr-out "$WORK/interrupted.csr" >/dev/null
vendor_signs interrupted.csr interrupted.pem
check "an install killed before storing" kill_at checked phc install --probe "$WORK/interrupted.pem"
check "... left the serving pair in place" serial_seen renew-newkey.pem
rb 0 'phc install --probe interrupted.pem'
check "... and the re-run installed it" serial_seen interrupted.pem
rb 0 'phc prune --yes'

# --- 5. The vendor changes its IP addresses --------------------------------------------------------
# Announced: old and new side by side (::1 plays the new address, not answering yet).
set_key "$PHC_CONFIG" pinned_ips "127.0.0.1, ::1"
rb 0 'phc firewall --format nft > phconnect-egress.nft'
check "the rules allow the old address" grep -q 'ip daddr { 127.0.0.1 }' "$WORK/phconnect-egress.nft"
check "... and the new one" grep -q 'ip6 daddr { ::1 }' "$WORK/phconnect-egress.nft"
rb 0 'phc firewall --format iptables'
rb 0 'phc request /v2/asset/sites'
rb 0 'phc status'

# --- 6. The vendor changes its CA ---------------------------------------------------------------
cp "$PHC_PKI/other-ca.pem" "$WORK/new-vendor-ca.pem"
rb 0 'openssl x509 -in new-vendor-ca.pem -noout -subject -enddate -fingerprint -sha256'
rb 0 'openssl x509 -in new-vendor-ca.pem -outform DER | sha256sum'
rb 0 'cat vendor-ca.pem new-vendor-ca.pem > vendor-cas.pem'
set_key "$PHC_CONFIG" ca_file "$WORK/vendor-cas.pem"
rb 2 'phc status'
check "a CA file the fingerprints do not cover is refused" grep -q "not listed in ca_sha256" "$TMP/err"
NEW_FP=$(openssl x509 -in "$WORK/new-vendor-ca.pem" -outform DER | sha256sum | cut -d' ' -f1)
set_key "$PHC_CONFIG" ca_sha256 "$(cat "$PHC_PKI/ca-sha256.txt"), $NEW_FP"
rb 0 'phc status'
rb 0 'phc request /v2/asset/sites'
# The vendor switches its server to the new CA: the same config keeps working.
start_mock newca --cert "$PHC_PKI/server-other.pem" --key "$PHC_PKI/server-other.key" \
    --client-ca "$PHC_PKI/ca-both.pem"
sed -i "s|^url .*|url = https://api.powerhub.test:$MOCK_PORT|" "$PHC_CONFIG"
check "the server from the new CA is accepted during the transition" quiet phc request /v2/asset/sites
# The vendor issues client certificates from the new CA: a new-key renewal installs.
rb 0 'phc csr --new-key --csr-out renew-newca.csr'
sleep 1
sign_csr "$WORK/renew-newca.csr" "$WORK/renew-newca.pem" 365 otherca
rb 0 'phc install --probe renew-newca.pem'
# After the cutover the old CA goes: ca_file and ca_sha256 hold only the new one.
cp "$WORK/new-vendor-ca.pem" "$WORK/vendor-ca.pem"
set_key "$PHC_CONFIG" ca_file "$WORK/vendor-ca.pem"
set_key "$PHC_CONFIG" ca_sha256 "$NEW_FP"
check "after the cutover only the new CA is pinned" quiet phc request /v2/asset/sites

# --- 7. Monitoring --------------------------------------------------------------------------------
rb 0 'phc check --warn-days 30 --crit-days 7 --prometheus "$TEXTFILE_DIR/phconnect.prom"'
check "metrics written" grep -q '^phc_check_status 0$' "$TEXTFILE_DIR/phconnect.prom"

# --- 8. Rotating the client credential ---------------------------------------------------------------
SECRET='runbook-Secr3t:42'
printf 'cid-runbook %s valid\n' "$SECRET" >"$TMP/creds"
launch_mock creds --cert "$PHC_PKI/server-other.pem" --key "$PHC_PKI/server-other.key" \
    --client-ca "$PHC_PKI/other-ca.pem" --credentials "$TMP/creds"
sed -i "s|^url .*|url = https://api.powerhub.test:$MOCK_PORT|" "$PHC_CONFIG"
cat >>"$PHC_CONFIG" <<EOF
client_id          = cid-runbook
client_secret      = pkcs11:token=phconnect;object=client-secret;type=data
credential_expires = $(date -u -d '+90 days' +%Y-%m-%d)
EOF
N=$((N + 1))
printf '%s\n' 'phc secret store' >>"$TMP/ran"
if printf '%s\n' "$SECRET" | (cd "$WORK" && phc secret store) >"$TMP/out" 2>"$TMP/err"; then
    ok "runbook: phc secret store"
else
    not_ok "runbook: phc secret store"
fi
rb 0 'phc request /v2/asset/sites'
rb 0 'phc check'
check "the check names the credential" grep -q "client credential expires in 8[89] days" "$TMP/out"

# --- every command the runbook shows was run above -----------------------------------------------
if [ ! -f "$RUNBOOK" ]; then
    not_ok "$RUNBOOK is missing"
else
    missing=0
    while IFS= read -r line; do
        cmd=${line#\$ }
        if ! grep -qxF -- "$cmd" "$TMP/ran"; then
            not_ok "the runbook shows a command this test does not run: $cmd"
            missing=$((missing + 1))
        fi
    done < <(awk '/^```sh/{f=1;next} /^```/{f=0} f && /^\$ /' "$RUNBOOK")
    shown=$(awk '/^```sh/{f=1;next} /^```/{f=0} f && /^\$ /' "$RUNBOOK" | wc -l)
    check "the runbook shows commands ($shown), all of them run here" test "$missing" -eq 0 -a "$shown" -gt 20
fi

finish
