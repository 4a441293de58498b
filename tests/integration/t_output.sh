#!/usr/bin/env bash
# Every file phc writes (request -o, enrol/csr --csr-out, check --prometheus, engine-conf -o)
# follows one rule: a regular file (or a name that does not exist yet) is replaced atomically
# through a temporary file; a character device, a FIFO, a symbolic link or /proc/self/fd/N is
# opened and written where it is, as curl does. `phc request -o /dev/null` as root once turned
# the machine's /dev/null into a regular file. The devices here are PRIVATE nodes made with
# mknod in the test's own directory (the null device's numbers, 1:3); the real /dev is never
# written to.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
phc() { "$PHC_BIN" --config "$CFG" "$@"; }
D=$TMP/out.d
mkdir -p "$D"
mknod "$D/null" c 1 3 || { echo "cannot mknod a private null device (needs root)"; exit 1; }
chmod 0666 "$D/null"
mkfifo "$D/fifo"
ln -s "$D/null" "$D/link"

# no_tmp_left DIR: nothing named *.tmp.* was left in DIR.
no_tmp_left() { ! ls "$1" | grep -q '\.tmp\.'; }

# fifo_expect FIFO CAPTURE CODE FRAGMENT DESCRIPTION -- CMD...: a reader copies what arrives
# on FIFO into CAPTURE while CMD runs (bounded: a writer that never opens the FIFO leaves the
# reader waiting, and the timeout ends it).
fifo_expect() {
    local fifo=$1 capture=$2
    shift 2
    timeout 60 cat "$fifo" >"$capture" &
    local reader=$!
    expect "$@"
    # A writer that replaced the FIFO instead of opening it never released the reader.
    if ! test -p "$fifo"; then kill "$reader" 2>/dev/null; fi
    wait "$reader" 2>/dev/null
}

# device_and_fifo WHAT CODE FRAGMENT OUTOPT...: runs `phc ... OUTOPT TARGET` once with the
# private null device, once with its symbolic link and once with the FIFO; asserts that each is
# what it was before and that the FIFO's reader got the content (FRAGMENT: text it must hold).
device_and_fifo() {
    local what=$1 code=$2 frag=$3
    shift 3
    expect "$code" "" "$what into a private character device" -- "$@" "$D/null"
    check "$what: the device is still a character device" test -c "$D/null"
    check "$what: the device kept its mode" test "$(stat -c %a "$D/null")" = 666
    expect "$code" "" "$what through a symbolic link to the device" -- "$@" "$D/link"
    check "$what: the link is still a link to the device" test -L "$D/link" -a -c "$D/link"
    fifo_expect "$D/fifo" "$TMP/fifo.got" "$code" "" "$what into a FIFO" -- "$@" "$D/fifo"
    check "$what: the FIFO is still a FIFO" test -p "$D/fifo"
    check "$what: the FIFO's reader got the content" grep -q -- "$frag" "$TMP/fifo.got"
    check "$what: no temporary file left beside them" no_tmp_left "$D"
}

# --- request -o ------------------------------------------------------------------------
device_and_fifo "request -o" 0 "STE-0001" phc request /v2/asset/sites -o
# A response body is no secret by default: -o FILE gets the user's umask, as curl's does.
expect 0 "" "request -o a new regular file (umask 022)" -- \
    bash -c "umask 022; exec '$PHC_BIN' --config '$CFG' request -o '$TMP/new.json' /v2/asset/sites"
check "the new file holds the body" grep -q STE-0001 "$TMP/new.json"
check "the new file is mode 0644 under umask 022 (like curl -o)" test "$(stat -c %a "$TMP/new.json")" = 644
expect 0 "" "request -o a new regular file (umask 077)" -- \
    bash -c "umask 077; exec '$PHC_BIN' --config '$CFG' request -o '$TMP/private.json' /v2/asset/sites"
check "the new file is mode 0600 under umask 077" test "$(stat -c %a "$TMP/private.json")" = 600
echo old >"$TMP/kept.json"
chmod 640 "$TMP/kept.json"
expect 0 "" "request -o an existing 0640 file (umask 022)" -- \
    bash -c "umask 022; exec '$PHC_BIN' --config '$CFG' request -o '$TMP/kept.json' /v2/asset/sites"
check "the replaced file keeps its mode 0640" test "$(stat -c %a "$TMP/kept.json")" = 640
check "... and holds the body" grep -q STE-0001 "$TMP/kept.json"
echo old >"$TMP/old.json"
ino=$(stat -c %i "$TMP/old.json")
expect 0 "" "request -o an existing regular file" -- phc request -o "$TMP/old.json" /v2/asset/sites
check "the regular file was replaced (a new inode: atomic rename)" test "$(stat -c %i "$TMP/old.json")" != "$ino"
check "the replaced file holds the body" grep -q STE-0001 "$TMP/old.json"
expect 0 "" "request -o - writes to standard output" -- phc request -o - /v2/asset/sites
check "-o -: the body is on standard output" grep -q STE-0001 "$TMP/out"
check "-o -: no file named '-' was made" test ! -e ./- -a ! -e "$TMP/-"
expect 0 "" "request -o /proc/self/fd/3 (fd 3 open on a file)" -- \
    bash -c "exec 3>'$TMP/fd3.json'; '$PHC_BIN' --config '$CFG' request -o /proc/self/fd/3 /v2/asset/sites"
check "/proc/self/fd/3: the file behind the descriptor got the body" grep -q STE-0001 "$TMP/fd3.json"
fifo_expect "$D/fifo" "$TMP/fifo.got" 0 "" "request -i -o FIFO" -- phc request -i -o "$D/fifo" /v2/asset/sites
check "request -i into the FIFO: status line and body" bash -c "head -1 '$TMP/fifo.got' | grep -q '^HTTP/1.1 200' && grep -q STE-0001 '$TMP/fifo.got'"
expect 2 "cannot write the response to $TMP/nodir/x.json" "a missing directory is refused" -- \
    phc request -o "$TMP/nodir/x.json" /v2/asset/sites

# --- csr --csr-out (current key) --------------------------------------------------------
device_and_fifo "csr --csr-out" 0 "BEGIN CERTIFICATE REQUEST" phc csr --subject "/CN=phc-output" --csr-out

# Certificate requests keep their mode 0644 whatever the umask (nothing secret; the vendor's
# portal and the operator read them).
expect 0 "" "csr --csr-out under umask 077" -- \
    bash -c "umask 077; exec '$PHC_BIN' --config '$CFG' csr --subject /CN=phc-output --csr-out '$TMP/mode.csr'"
check "the CSR is mode 0644 under umask 077" test "$(stat -c %a "$TMP/mode.csr")" = 644

# --- check --prometheus -----------------------------------------------------------------
device_and_fifo "check --prometheus" 0 "phc_certificate_not_after_seconds" phc check --prometheus

# --- engine-conf -o ---------------------------------------------------------------------
device_and_fifo "engine-conf -o" 0 "MODULE_PATH" phc engine-conf -o
expect 0 "" "engine-conf -o - writes to standard output" -- phc engine-conf -o -
check "engine-conf -o -: the config is on standard output" grep -q MODULE_PATH "$TMP/out"
# The PIN goes only into a regular 0600 file: never a device, a FIFO or standard output.
for target in "$D/null" "$D/fifo" -; do
    expect 2 "--with-pin writes the PIN into the file: give -o FILE, a regular file" \
        "engine-conf --with-pin -o $target refused" -- phc engine-conf --with-pin -o "$target"
done
check "--with-pin refusals left the device and the FIFO alone" test -c "$D/null" -a -p "$D/fifo"
# With the PIN the file is 0600 whatever the umask says.
expect 0 "" "engine-conf --with-pin -o FILE under umask 000" -- \
    bash -c "umask 000; exec '$PHC_BIN' --config '$CFG' engine-conf --with-pin -o '$TMP/pin-umask.cnf'"
check "the PIN file is mode 0600 under umask 000" test "$(stat -c %a "$TMP/pin-umask.cnf")" = 600

# --- enrol --csr-out (an empty token: enrol makes the first key) ------------------------
make_empty_token
fifo_expect "$D/fifo" "$TMP/fifo.got" 0 "" "enrol --csr-out FIFO" -- \
    phc enrol --subject "/CN=phc-output" --key-type ec:P-256 --csr-out "$D/fifo"
check "enrol: the FIFO is still a FIFO" test -p "$D/fifo"
check "enrol: the FIFO's reader got the request" grep -q "BEGIN CERTIFICATE REQUEST" "$TMP/fifo.got"
make_empty_token
expect 0 "" "enrol --csr-out a private character device" -- \
    phc enrol --subject "/CN=phc-output" --key-type ec:P-256 --csr-out "$D/null"
check "enrol: the device is still a character device" test -c "$D/null"
check "no temporary file left by enrol" no_tmp_left "$D"

finish
