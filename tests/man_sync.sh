#!/usr/bin/env bash
# The man pages say what the code does: every subcommand of tools/subcommands.def has its
# section in phc(1) and every flag its tools/phc_<name>.c parses is in that section; every
# key of the key table in lib/config_keys.c is an item of the KEYS list of phconnect.cnf(5);
# every symbol of docs/abi.txt is in the SYNOPSIS and the DESCRIPTION of phconnect(3). And
# each page passes `mandoc -T lint -W warning`.
#
# Why hand-written mdoc rather than scdoc or pandoc sources: the pages are the documents
# themselves (installed as they are by cmake/Install.cmake, no generator at build time and no
# build dependency); mandoc's linter knows mdoc's semantics (macro arguments, section order,
# cross references) and catches what a plain roff check cannot; and man-db's groff renders
# mdoc natively. mandoc (Debian package mandoc, in tools/install-deps.sh) is needed only to
# test them.
#
# Flags are found where the tools parse them: the long names of each `struct option` table
# ({"name", no_argument|required_argument, ...}), the letters of each getopt/getopt_long
# option string, the literals compared with strcmp/strncmp ("--config", "-c",
# "--config=" -> --config; argv[1] against "store" for a word such as `secret store`), and
# the bracketed flags of the "usage: phc ..." lines (-v of the global options is parsed by
# hand). Pages are checked as rendered (mandoc -T ascii), section by section.
#
# Usage: man_sync.sh [SOURCE_DIR]   (default $PHC_SRC)
set -uo pipefail
SRC=${1:-${PHC_SRC:-}}
[ -n "$SRC" ] && [ -d "$SRC" ] || {
    echo "usage: man_sync.sh SOURCE_DIR" >&2
    exit 2
}
T_PASS=0
T_FAIL=0
TMP=$(mktemp -d /tmp/phc-man.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
ok() {
    T_PASS=$((T_PASS + 1))
    echo "ok - $*"
}
not_ok() {
    T_FAIL=$((T_FAIL + 1))
    echo "not ok - $*"
}

if ! command -v mandoc >/dev/null; then
    not_ok "mandoc is not installed: run tools/install-deps.sh (Debian package mandoc)"
    echo "$T_PASS passed, $T_FAIL failed"
    exit 1
fi

# ---- what the code has ------------------------------------------------------------------

subcommands() {
    sed -n 's/^PHC_SUBCOMMAND(\([a-z0-9_]*\),.*/\1/p' "$SRC/tools/subcommands.def"
}

# flags FILE...: every flag (and action word) the files parse, one per line.
flags() {
    {
        grep -ohE '\{"[A-Za-z0-9][A-Za-z0-9-]*", *(no|required|optional)_argument' "$@" |
            sed -E 's/^\{"([^"]+)".*/--\1/'
        grep -ohE '(getopt(_long)?\([^,]+,[^,]+|phc_tool_getopt\([^,]+,[^,]+,[^,]+), *"[^"]*"' "$@" |
            sed -E 's/.*"([^"]*)"$/\1/' | tr -d ':+' | grep -o '[A-Za-z0-9]' | sed 's/^/-/'
        grep -ohE 'str(n)?cmp\([^,()]+, *"-{1,2}[A-Za-z][^"]*"' "$@" | sed -E 's/.*"(-[^"=]*)=?"$/\1/'
        grep -ohE 'strcmp\(argv\[([0-9]+|optind)\], *"[a-z][a-z0-9-]*"\)' "$@" |
            sed -E 's/.*"([^"]+)".*/\1/'
        grep -hE '"usage: phc' "$@" | grep -oE '\[-{1,2}[A-Za-z][A-Za-z0-9-]*' | tr -d '['
    } | sort -u
}

# The files of subcommand NAME: tools/phc_NAME.c and its parts tools/phc_NAME_*.c.
sub_files() {
    local f
    for f in "$SRC/tools/phc_$1.c" "$SRC"/tools/phc_"$1"_*.c; do
        [ -f "$f" ] && echo "$f"
    done
}

config_keys() {
    grep -oE '^[[:space:]]*\[K_[A-Z0-9_]+\] = "[a-z0-9_]+"' "$SRC/lib/config_keys.c" |
        sed -E 's/.*"([^"]+)"/\1/'
}

abi_symbols() {
    grep -v '^#' "$SRC/docs/abi.txt" | grep -v '^[[:space:]]*$'
}

# ---- what the pages say -------------------------------------------------------------------

# render PAGE OUT: the page as text, wide enough that paragraphs do not wrap.
render() {
    mandoc -T ascii -O width=1000 "$1" 2>/dev/null | col -bx >"$2"
}

# section TEXT sh|ss TITLE: the lines of one section (.Sh) or subsection (.Ss) of a
# rendered page, up to the next heading of the same or a higher level.
section() {
    awk -v lvl="$2" -v t="$3" '
        on && ($0 ~ /^[^ ]/ || (lvl == "ss" && $0 ~ /^   [^ ]/)) { exit }
        on { print; next }
        (lvl == "sh" && $0 == t) || (lvl == "ss" && $0 == "   " t) { on = 1 }
    ' "$1"
}

# items FILE: the tag lines of the option lists in a rendered section (.It Fl ... renders
# at the list's indentation, starting with '-'), so that a flag counts as documented only
# as an item with its meaning, not because a synopsis line names it.
items() {
    grep -E '^     -' "${1:--}"
}

# has_word FILE WORD: WORD stands alone (not inside a longer flag or name).
has_word() {
    grep -qE -- "(^|[^[:alnum:]_-])$2([^[:alnum:]_-]|\$)" "$1"
}

# check_pages DIR: one line per disagreement between the code and the pages in DIR, saying
# what to add where; silent when they agree.
check_pages() {
    local dir=$1 page sub shown f flag key sym out=$TMP/out
    for page in phc.1 phconnect.cnf.5 phconnect.3; do
        if [ ! -f "$dir/$page" ]; then
            echo "docs/man/$page is missing"
            continue
        fi
        mandoc -T lint -W warning "$dir/$page" >"$out.lint" 2>&1
        if [ -s "$out.lint" ]; then
            echo "docs/man/$page: mandoc -T lint -W warning reports (fix each):"
            sed "s|$dir/|docs/man/|; s/^/      /" "$out.lint"
        fi
    done

    # phc(1)
    if [ -f "$dir/phc.1" ]; then
        render "$dir/phc.1" "$out.phc"
        section "$out.phc" sh DESCRIPTION | items >"$out.global"
        for flag in $(flags "$SRC/tools/phc.c" "$SRC/tools/phc_common.c"); do
            has_word "$out.global" "$flag" || echo "phc.1: the global option $flag (tools/phc.c parses it) is not an item of DESCRIPTION: add '.It Fl ${flag#-} ...' with its meaning to the '.Bl -tag' list of global options in docs/man/phc.1"
        done
        section "$out.phc" sh SUBCOMMANDS >"$out.subs"
        for sub in $(subcommands); do
            shown=${sub//_/-}
            section "$out.subs" ss "phc $shown" >"$out.sub"
            if [ ! -s "$out.sub" ]; then
                echo "phc.1: no section for the subcommand '$shown' (tools/subcommands.def): add '.Ss phc $shown' under '.Sh SUBCOMMANDS' in docs/man/phc.1, with its synopsis, what it does, its exit codes and every flag tools/phc_$sub.c parses"
                continue
            fi
            items "$out.sub" >"$out.items"
            f=$(sub_files "$sub")
            if [ -z "$f" ]; then
                echo "phc.1: tools/phc_$sub.c does not exist, so the flags of '$shown' cannot be checked"
                continue
            fi
            # shellcheck disable=SC2086 # one file name per word
            for flag in $(flags $f); do
                case $flag in
                -*) has_word "$out.items" "$flag" || echo "phc.1: section 'phc $shown' does not document $flag, which tools/phc_$sub.c parses: add '.It Fl ${flag#-} ...' (with its other spelling, its argument and its meaning) to the '.Ss phc $shown' option list in docs/man/phc.1" ;;
                *) has_word "$out.sub" "$flag" || echo "phc.1: section 'phc $shown' does not mention '$flag', which tools/phc_$sub.c accepts as a word: describe 'phc $shown $flag' in '.Ss phc $shown' in docs/man/phc.1" ;;
                esac
            done
        done
    fi

    # phconnect.cnf(5)
    if [ -f "$dir/phconnect.cnf.5" ]; then
        render "$dir/phconnect.cnf.5" "$out.cnf"
        section "$out.cnf" sh KEYS >"$out.keys"
        for key in $(config_keys); do
            grep -qE "^ +$key( |\$)" "$out.keys" ||
                echo "phconnect.cnf.5: the key '$key' (lib/config_keys.c key table) is not in KEYS: add '.It Cm $key' with its type, whether required, its default and its meaning to the KEYS list in docs/man/phconnect.cnf.5"
        done
    fi

    # phconnect(3)
    if [ -f "$dir/phconnect.3" ]; then
        render "$dir/phconnect.3" "$out.api"
        section "$out.api" sh SYNOPSIS >"$out.syn"
        section "$out.api" sh DESCRIPTION >"$out.desc"
        for sym in $(abi_symbols); do
            grep -qE "(^|[^[:alnum:]_])$sym\(" "$out.syn" ||
                echo "phconnect.3: $sym (docs/abi.txt) is not in SYNOPSIS: add '.Ft TYPE' and '.Fn $sym ARGS' (or .Fo/.Fa/.Fc) to the right group of the SYNOPSIS in docs/man/phconnect.3"
            has_word "$out.desc" "$sym" ||
                echo "phconnect.3: $sym (docs/abi.txt) is not described: say what '.Fn $sym' does, its ownership and its errors in the DESCRIPTION of docs/man/phconnect.3"
        done
    fi
}

# ---- the extraction finds what is known to be there ------------------------------------------
# (a broken pattern would otherwise find nothing and pass everything)

expect_in() { # WHAT LIST ITEM...
    local what=$1 list=$2 missing=
    shift 2
    for item in "$@"; do
        grep -qxF -- "$item" <<<"$list" || missing+="$item "
    done
    if [ -z "$missing" ]; then
        ok "$what: found $(wc -l <<<"$list") including $*"
    else
        not_ok "$what: the extraction misses $missing(found: $(tr '\n' ' ' <<<"$list"))"
    fi
}
expect_in "subcommands of tools/subcommands.def" "$(subcommands)" request engine_conf secret bench
expect_in "global options of tools/phc.c and phc_common.c" "$(flags "$SRC/tools/phc.c" "$SRC/tools/phc_common.c")" --config -c --verbose -v --version --help -h
expect_in "flags of tools/phc_request.c" "$(flags "$SRC/tools/phc_request.c")" --header -H --data -d --include -i
expect_in "flags of tools/phc_engine_conf.c" "$(flags "$SRC/tools/phc_engine_conf.c")" --with-pin --engine-path --template -o
expect_in "words of tools/phc_secret.c" "$(flags "$SRC/tools/phc_secret.c")" store --help -h
expect_in "keys of lib/config_keys.c" "$(config_keys)" url ca_file pin reload_interval
expect_in "symbols of docs/abi.txt" "$(abi_symbols)" phc_global_init phc_client_request phc_token_rollback

# ---- the pages --------------------------------------------------------------------------------

check_pages "$SRC/docs/man" >"$TMP/problems"
if [ ! -s "$TMP/problems" ]; then
    ok "docs/man: lint-clean; $(subcommands | wc -l) subcommands with every flag, $(config_keys | wc -l) keys, $(abi_symbols | wc -l) symbols documented"
else
    not_ok "docs/man disagrees with the code ($(wc -l <"$TMP/problems") lines):"
    sed 's/^/    /' "$TMP/problems"
fi

# ---- the check can fail: pages with one thing taken out are caught ----------------------------

mkdir -p "$TMP/cut"
cp "$SRC"/docs/man/phc.1 "$SRC"/docs/man/phconnect.cnf.5 "$SRC"/docs/man/phconnect.3 "$TMP/cut/"
# install's --probe-path, the key reload_interval, the function phc_token_rollback, and a
# macro mandoc does not know.
sed -i '/^\.It Fl P Ar path , Fl -probe-path Ar path$/d' "$TMP/cut/phc.1"
sed -i 's/^\.It Cm reload_interval$/.It Cm reload_interval_gone/' "$TMP/cut/phconnect.cnf.5"
sed -i 's/phc_token_rollback/phc_token_undo/g' "$TMP/cut/phconnect.3"
sed -i '$a .Xx not a macro' "$TMP/cut/phconnect.3"
check_pages "$TMP/cut" >"$TMP/cut.problems"
for want in "section 'phc install' does not document --probe-path" \
    "section 'phc install' does not document -P," \
    "the key 'reload_interval'" \
    "phc_token_rollback (docs/abi.txt) is not in SYNOPSIS" \
    "phc_token_rollback (docs/abi.txt) is not described" \
    "docs/man/phconnect.3: mandoc -T lint -W warning reports"; do
    if grep -qF -- "$want" "$TMP/cut.problems"; then
        ok "a page with it taken out is reported: $want"
    else
        not_ok "a page with it taken out is not reported: $want (got: $(tr '\n' '|' <"$TMP/cut.problems"))"
    fi
done
if [ "$(wc -l <"$TMP/cut.problems")" -le 12 ]; then
    ok "the cut pages get only those reports ($(wc -l <"$TMP/cut.problems") lines)"
else
    not_ok "the cut pages get more reports than the cuts explain: $(tr '\n' '|' <"$TMP/cut.problems")"
fi

echo "$T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" -eq 0 ]
