#!/usr/bin/env bash
# The command's habits, as curl, git and OpenSSH users expect them: `phc help SUB` and
# `phc SUB --help` print the same text; an unknown subcommand gets "did you mean"; -v, -vv
# and --verbose work after the subcommand too; every usage error is exactly one line that
# starts with "phc: ", with exit 2 (3, UNKNOWN, for the monitoring plugin `check`).
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
phc() { "$PHC_BIN" --config "$CFG" "$@"; }

# only_line EXIT LINE DESCRIPTION -- COMMAND...: exit EXIT and stderr exactly that one line.
only_line() {
    local code=$1 line=$2 what=$3
    shift 4
    "$@" >"$TMP/out" 2>"$TMP/err"
    local got=$?
    if [ "$got" -eq "$code" ] && [ "$(cat "$TMP/err")" = "$line" ] && [ ! -s "$TMP/out" ]; then
        ok "$what (exit $got, one line)"
    else
        not_ok "$what: wanted exit $code and exactly '$line', got exit $got"
        sed 's/^/    stderr: /' "$TMP/err" | head -5
    fi
}

SUBS=$(sed -n 's/^PHC_SUBCOMMAND(\([a-z0-9_]*\),.*/\1/p' "$PHC_SRC/tools/subcommands.def" | tr _ -)
check "the subcommands are read from tools/subcommands.def" \
    test "$(wc -w <<<"$SUBS")" -ge 12 -a -n "$(grep -x request <<<"$SUBS")"

# --- help --------------------------------------------------------------------------------
expect 0 "" "phc help" -- phc help
cp "$TMP/out" "$TMP/help.txt"
expect 0 "" "phc --help" -- phc --help
check "phc help prints what phc --help prints" cmp -s "$TMP/help.txt" "$TMP/out"
check "phc --help lists help SUBCOMMAND" grep -q '^  help ' "$TMP/out"
expect 0 "" "phc help help" -- phc help help
check "... is phc --help too" cmp -s "$TMP/help.txt" "$TMP/out"
for sub in $SUBS; do
    phc help "$sub" >"$TMP/h1" 2>"$TMP/h1.err"
    r1=$?
    phc "$sub" --help >"$TMP/h2" 2>"$TMP/h2.err"
    r2=$?
    phc "$sub" -h >"$TMP/h3" 2>&1
    check "$sub: phc help $sub and phc $sub --help exit 0" test "$r1/$r2" = 0/0
    check "$sub: the same text, starting 'usage: phc $sub'" \
        bash -c "cmp -s '$TMP/h1' '$TMP/h2' && cmp -s '$TMP/h1' '$TMP/h3' && head -1 '$TMP/h1' | grep -q '^usage: phc $sub\\b'"
    check "$sub: nothing on stderr" test ! -s "$TMP/h1.err" -a ! -s "$TMP/h2.err"
    # -v, -vv and --verbose are options of every subcommand too.
    check "$sub: -v, -vv and --verbose accepted after the subcommand" \
        bash -c "'$PHC_BIN' --config '$CFG' $sub -v --help >/dev/null && '$PHC_BIN' --config '$CFG' $sub -vv --help >/dev/null &&
                 '$PHC_BIN' --config '$CFG' $sub --verbose -h >/dev/null"
done
expect 0 "" "phc help engine_conf (the C spelling) works too" -- phc help engine_conf
check "... with the same text" cmp -s "$TMP/out" <(phc engine-conf --help)

# --- did you mean ----------------------------------------------------------------------------
only_line 2 "phc: unknown subcommand 'reqest' (did you mean 'request'?)" \
    "a misspelt subcommand gets a suggestion" -- phc reqest
only_line 2 "phc: unknown subcommand 'engine-cnf' (did you mean 'engine-conf'?)" \
    "engine-cnf: the suggestion is spelt with '-'" -- phc engine-cnf
only_line 2 "phc: unknown subcommand 'stauts' (did you mean 'status'?)" \
    "phc help with a misspelt subcommand gets a suggestion" -- phc help stauts
only_line 2 "phc: unknown subcommand 'hlep' (did you mean 'help'?)" "hlep: help is suggested" -- phc hlep
only_line 2 "phc: unknown subcommand 'frobnicate' (see phc --help)" \
    "nothing close: no suggestion" -- phc frobnicate
only_line 2 "phc: help takes one subcommand name: 'extra'" "help with two names" -- phc help status extra
only_line 2 "phc: no subcommand given (see phc --help)" "no subcommand: one line, not the usage text" -- phc
only_line 2 "phc: unknown option '--bogus' (see phc --help)" "unknown global option" -- phc --bogus status

# --- -v after the subcommand ------------------------------------------------------------------
expect 0 "" "phc request PATH without -v" -- phc request /v2/asset/sites
check "... logs nothing at info level" bash -c "! grep -q '^phc: \\[info\\]' '$TMP/err'"
expect 0 "[info]" "phc request -v PATH (curl's order)" -- phc request -v /v2/asset/sites
check "... the body still on standard output" grep -q STE-0001 "$TMP/out"
cp "$TMP/err" "$TMP/after.err"
expect 0 "[info]" "phc -v request PATH (global order)" -- phc -v request /v2/asset/sites
check "-v after the subcommand logs the same lines as before it" \
    test "$(sed 's/[0-9.]\+ *ms//g' "$TMP/after.err" | cut -c1-40 | sort)" = "$(sed 's/[0-9.]\+ *ms//g' "$TMP/err" | cut -c1-40 | sort)"
expect 0 "[info]" "phc request PATH --verbose (after the path)" -- phc request /v2/asset/sites --verbose
# (Token administration logs at debug level what a plain request does not.)
expect 0 "[info]" "phc status -v" -- phc status -v
check "... not at debug level" bash -c "! grep -q '^phc: \[debug\]' '$TMP/err'"
expect 0 "[debug]" "phc status -vv: debug level" -- phc status -vv
expect 0 "[debug]" "phc -v status -v: the counts add up to debug" -- phc -v status -v
expect 0 "" "a -v that is the value of -H stays a header value" -- phc request -H "X-Note: -v" -H "X-Other: x" /echo
check "... and does not raise the level" bash -c "! grep -q '^phc: \\[info\\]' '$TMP/err'"

# --- every usage error: one line, phc: SUB: ... ---------------------------------------------------
for sub in $SUBS; do
    code=2
    [ "$sub" = check ] && code=3
    only_line $code "phc: $sub: unknown option '--no-such-option' (see 'phc help $sub')" \
        "$sub --no-such-option" -- phc "$sub" --no-such-option
    only_line $code "phc: $sub: unknown option '-Q' (see 'phc help $sub')" "$sub -Q" -- phc "$sub" -Q
done
# An option that needs a value, given none (last on the line), for each subcommand with one.
while read -r sub opt; do
    code=2
    [ "$sub" = check ] && code=3
    only_line $code "phc: $sub: option '$opt' needs a value (see 'phc help $sub')" \
        "$sub $opt without its value" -- phc "$sub" "$opt"
done <<'EOF'
request -o
request --header
engine-conf --template
bench --mode
enrol --subject
csr --csr-out
install --probe-path
check -w
check --crit-days
firewall --format
EOF
only_line 2 "phc: prune: option '--yes' takes no value (see 'phc help prune')" \
    "a value for a flag that takes none" -- phc prune --yes=please
only_line 3 "phc: check: option '--c' is ambiguous (see 'phc help check')" \
    "an ambiguous abbreviation (--chain, --crit-days)" -- phc check --c 5
only_line 2 "phc: request needs exactly one PATH (e.g. /v2/asset/sites)" \
    "request without PATH" -- phc request
only_line 2 "phc: secret needs the word 'store' (phc secret store; the secret comes from standard input, never from the command line)" \
    "secret without store" -- phc secret
only_line 3 "phc: check: unknown option '--bogus' (see 'phc help check')" \
    "check: a usage error is UNKNOWN (3) for the monitoring system" -- phc check --bogus

finish
