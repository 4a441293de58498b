#!/usr/bin/env bash
# The exported ABI is what docs/abi.txt says: the shared library's dynamic symbols, the
# PHC_API declarations of the public headers and the committed list are the same set, and
# every export carries the version node; the headers name no internal file and no missing
# document. Usage: abi.sh LIBRARY LIST INCLUDE_DIR
set -uo pipefail
LIB=$1 LIST=$2 INC=$3
NODE=PHCONNECT_0
T_PASS=0
T_FAIL=0
TMP=$(mktemp -d /tmp/phc-abi.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
ok() {
    T_PASS=$((T_PASS + 1))
    echo "ok - $*"
}
not_ok() {
    T_FAIL=$((T_FAIL + 1))
    echo "not ok - $*"
}

# name@@NODE for every defined dynamic symbol except the version node itself (type A).
nm -D --defined-only "$LIB" | awk '$2 != "A" { print $3 }' | sort >"$TMP/versioned"
sed 's/@.*//' "$TMP/versioned" | sort -u >"$TMP/exported"
# The name before "(" on each PHC_API line (declarations start on the PHC_API line).
grep -ho 'PHC_API[^(;]*(' "$INC"/*.h | grep -o 'phc_[a-z0-9_]*($' | tr -d '(' | sort -u \
    >"$TMP/declared"

# compare LIST: prints one line per disagreement, naming what to do; silent when they agree.
compare() {
    local list=$1 s
    grep -v '^#' "$list" | grep -v '^[[:space:]]*$' | sort -u >"$TMP/listed"
    s=$(comm -23 <(sort -u "$TMP/exported" "$TMP/declared") "$TMP/listed" | tr '\n' ' ')
    [ -z "$s" ] || echo "public symbols missing from docs/abi.txt; add these lines to it: $s"
    s=$(comm -13 "$TMP/exported" "$TMP/listed" | tr '\n' ' ')
    [ -z "$s" ] || echo "listed in docs/abi.txt but not exported (removing a symbol breaks libphconnect.so.0 users; restore it or change the SONAME): $s"
    s=$(comm -23 "$TMP/declared" "$TMP/exported" | tr '\n' ' ')
    [ -z "$s" ] || echo "declared PHC_API in a public header but not exported by the library (not defined?): $s"
    s=$(comm -23 "$TMP/exported" "$TMP/declared" | tr '\n' ' ')
    [ -z "$s" ] || echo "exported but declared PHC_API in no public header: $s"
}

if [ -s "$TMP/exported" ] && [ -s "$TMP/declared" ]; then
    ok "the library exports $(wc -l <"$TMP/exported") symbols, the headers declare $(wc -l <"$TMP/declared")"
else
    not_ok "no exported or declared symbols found in $LIB / $INC"
fi
compare "$LIST" >"$TMP/problems"
if [ ! -s "$TMP/problems" ]; then
    ok "exported symbols = PHC_API declarations = docs/abi.txt"
else
    not_ok "the exported ABI differs from docs/abi.txt:"
    sed 's/^/    /' "$TMP/problems"
fi
bad=$(grep -v "@@$NODE\$" "$TMP/versioned" | tr '\n' ' ')
if [ -z "$bad" ]; then
    ok "every export carries the version node $NODE"
else
    not_ok "exports without the version node $NODE (lib/phconnect.map): $bad"
fi
if nm -D --defined-only "$LIB" | grep -q " A $NODE\$"; then
    ok "the library defines the version node $NODE"
else
    not_ok "no version node $NODE in $LIB"
fi

# The check itself, on a list made from what the library and headers have (so it holds
# even while the committed list is out of date): a list without one public symbol, or with
# one too many, is caught and the message names the symbol.
sort -u "$TMP/exported" "$TMP/declared" >"$TMP/full.txt"
victim=$(head -1 "$TMP/exported")
grep -vx "$victim" "$TMP/full.txt" >"$TMP/short.txt"
compare "$TMP/short.txt" >"$TMP/short.out"
if grep -q "add these lines to it: $victim \$" "$TMP/short.out"; then
    ok "a list missing $victim is refused, naming it"
else
    not_ok "a list missing $victim was not refused by name"
fi
{
    cat "$TMP/full.txt"
    echo phc_removed_function
} >"$TMP/long.txt"
compare "$TMP/long.txt" >"$TMP/long.out"
if grep -q "^listed .* not exported .* phc_removed_function \$" "$TMP/long.out"; then
    ok "a listed symbol the library lacks is refused, naming it"
else
    not_ok "a listed symbol the library lacks was not refused by name"
fi

# The public headers send a user only to what a user has: no internal source file (lib/...,
# *.c, a private header) and only documents that exist and are installed (docs/*.md).
DOCS=$(dirname "$LIST")
internal=$(grep -noE '(lib|tools|tests)/[A-Za-z0-9_./-]+|[A-Za-z0-9_]+\.c\b|CONTRACT\.md' "$INC"/*.h |
    tr '\n' ' ')
if [ -z "$internal" ]; then
    ok "the public headers name no internal file"
else
    not_ok "the public headers name internal files: $internal"
fi
missing=
for doc in $(grep -ho 'docs/[A-Za-z0-9_.-]*\.md' "$INC"/*.h | sort -u); do
    [ -f "$DOCS/${doc#docs/}" ] || missing+="$doc "
done
if [ -z "$missing" ]; then
    ok "every document the public headers name exists ($(grep -ho 'docs/[A-Za-z0-9_.-]*\.md' "$INC"/*.h | sort -u | tr '\n' ' '))"
else
    not_ok "the public headers name documents that do not exist: $missing"
fi

echo "$T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" -eq 0 ]
