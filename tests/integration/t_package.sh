#!/usr/bin/env bash
# The library as a package, used the way a developer and an operator use it:
#  (a) `cmake --install --prefix P` into a scratch prefix: pkg-config and find_package(phconnect
#      0.2 CONFIG) point into P and build examples/request.c, which then makes a real request;
#      P/bin/phc runs without LD_LIBRARY_PATH;
#  (b) the .deb from cpack: its files and dependencies, then installed for real with apt-get
#      (root only; the machine is put back as it was, also on failure), /usr/bin/phc and a
#      program built against /usr make real requests, and the package is purged.
. "$(dirname "$0")/lib.sh"

make_token
start_mock mock
CFG=$TMP/phc.cnf
write_config "$CFG" "$MOCK_PORT"
EXAMPLE=$PHC_SRC/examples/request.c
VERSION=$(sed -n 's/^#define PHC_VERSION_STRING "\(.*\)"$/\1/p' "$PHC_BUILD/include/phconnect/version.h")
# A consumer of a sanitizer build must be instrumented too (the runtime must load first).
SAN_FLAGS=()
[ "${PHC_SANITIZE:-OFF}" = ON ] && SAN_FLAGS=(-fsanitize=address,undefined)
unset LD_LIBRARY_PATH PKG_CONFIG_PATH PKG_CONFIG_LIBDIR CMAKE_PREFIX_PATH

check "the version is generated (phconnect/version.h: '$VERSION')" test -n "$VERSION"

# inside DIR PATH...: every PATH resolves to a place inside DIR.
inside() {
    local dir p
    dir=$(realpath "$1")
    shift
    for p in "$@"; do
        case "$(realpath -m "$p")/" in "$dir"/*) ;; *)
            echo "    $p is outside $dir"
            return 1
            ;;
        esac
    done
}

# loads_from BINARY DIR: the dynamic loader takes BINARY's libphconnect.so.0 from DIR.
loads_from() {
    local lib
    lib=$(ldd "$1" | sed -n 's/^[[:space:]]*libphconnect\.so\.0 => \(.*\) (0x.*$/\1/p')
    [ -n "$lib" ] && [ "$(dirname "$(realpath "$lib")")" = "$(realpath "$2")" ]
}

# runs_request NAME COMMAND...: COMMAND makes GET /v2/asset/sites through the mock.
runs_request() {
    local what=$1
    shift
    expect 0 "" "$what" -- "$@"
    check "$what: got the sites" grep -q STE-0001 "$TMP/out"
}

# --- (a) a prefix install ---------------------------------------------------------------
P=$TMP/prefix
expect 0 "" "cmake --install into a scratch prefix" -- cmake --install "$PHC_BUILD" --prefix "$P"
PCDIR=$(dirname "$(find "$P" -name phconnect.pc | head -1)")
pc() { PKG_CONFIG_PATH=$PCDIR pkg-config "$@" phconnect; }
expect 0 "" "pkg-config finds phconnect in the prefix" -- pc --cflags --libs
echo "    pkg-config --cflags --libs phconnect: $(cat "$TMP/out")"
read -ra FLAGS <"$TMP/out"
DIRS=()
for f in "${FLAGS[@]}"; do
    case $f in -I* | -L*) DIRS+=("${f:2}") ;; esac
done
check "pkg-config gives an -I and an -L" test "${#DIRS[@]}" -eq 2
check "pkg-config's -I and -L point into the prefix" inside "$P" "${DIRS[@]}"
check "pkg-config's libdir holds the library" test -e "$(pc --variable=libdir)/libphconnect.so"
check "pkg-config --modversion is $VERSION" test "$(pc --modversion)" = "$VERSION"

expect 0 "" "examples/request.c builds with pkg-config" -- \
    cc "${SAN_FLAGS[@]}" -Wall -Wextra -Werror -o "$TMP/example-pc" "$EXAMPLE" "${FLAGS[@]}" \
    -Wl,-rpath,"$(pc --variable=libdir)"
runs_request "the pkg-config build of the example makes a request" \
    "$TMP/example-pc" "$CFG" /v2/asset/sites
check "it ran with the prefix's library" loads_from "$TMP/example-pc" "$(pc --variable=libdir)"

# A tiny consumer project, as a developer writes it.
mkdir -p "$TMP/consumer"
cat >"$TMP/consumer/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(phconnect \${WANT} CONFIG REQUIRED)
message(STATUS "phconnect \${phconnect_VERSION} from \${phconnect_DIR}")
add_executable(example "$EXAMPLE")
target_link_libraries(example PRIVATE phconnect::phconnect)
EOF
consumer() { # consumer BUILD_DIR VERSION
    cmake -S "$TMP/consumer" -B "$1" -DWANT="$2" -DCMAKE_PREFIX_PATH="$P" \
        -DCMAKE_C_FLAGS="${SAN_FLAGS[*]}" -DCMAKE_BUILD_TYPE=Release
}
expect 0 "" "find_package(phconnect 0.2 CONFIG REQUIRED) with CMAKE_PREFIX_PATH=P" -- \
    consumer "$TMP/consumer/build" 0.2
grep -- '-- phconnect ' "$TMP/out" | sed 's/^/    /'
check "find_package found $VERSION in the prefix" \
    grep -q -- "-- phconnect $VERSION from $P/" "$TMP/out"
expect 0 "" "the consumer project builds" -- cmake --build "$TMP/consumer/build"
runs_request "the find_package build of the example makes a request" \
    "$TMP/consumer/build/example" "$CFG" /v2/asset/sites
expect 1 "compatible with requested version \"0.3\"" "find_package(phconnect 0.3) refused" -- \
    consumer "$TMP/consumer/build-0.3" 0.3
expect 1 "compatible with requested version \"1\"" "find_package(phconnect 1) refused" -- \
    consumer "$TMP/consumer/build-1" 1

PHC=$P/bin/phc
check "phc is installed in the prefix" test -x "$PHC"
check "its RUNPATH is \$ORIGIN-relative" bash -c "readelf -d '$PHC' | grep -q 'RUNPATH.*\\\$ORIGIN/'"
expect 0 "" "the installed phc --version without LD_LIBRARY_PATH" -- "$PHC" --version
sed 's/^/    /' "$TMP/out"
check "--version says phc $VERSION" test "$(head -1 "$TMP/out")" = "phc $VERSION"
check "--version names OpenSSL, libcurl and libp11" \
    grep -qE '^OpenSSL/[0-9.]+ libcurl/[0-9.]+ libp11/' "$TMP/out"
check "the installed phc loads the prefix's library" loads_from "$PHC" "$(pc --variable=libdir)"
runs_request "the installed phc makes a request" "$PHC" --config "$CFG" request /v2/asset/sites
expect 0 "" "the installed phc requests /echo" -- "$PHC" --config "$CFG" request /echo
check "the User-Agent is phconnect/$VERSION" test "$(python3 -c \
    'import json,sys; print(json.load(sys.stdin)["headers"]["user-agent"])' <"$TMP/out")" \
    = "phconnect/$VERSION"
check "the installed engine_conf template is found" bash -c \
    "'$PHC' --config '$CFG' engine-conf | grep -q '^MODULE_PATH = '"
expect 0 "usage: phc agent" "the installed phc agent finds its program in libexec" -- bash -c "'$PHC' agent --help >&2"
check "the systemd units are installed" test -f "$P/lib/systemd/system/phconnect-agent.service"

# --- (b) the Debian package -------------------------------------------------------------
expect 0 "" "cpack builds the .deb" -- bash -c "cd '$PHC_BUILD' && cpack -G DEB -B '$TMP/deb'"
DEB=$(ls "$TMP"/deb/phconnect_"$VERSION"_*.deb 2>/dev/null | head -1)
check "the package is phconnect_${VERSION}_ARCH.deb" test -f "$DEB"
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$TMP/deb.files"
for f in /usr/bin/phc /usr/lib/libphconnect.so.0 /usr/include/phconnect/phconnect.h \
    /usr/include/phconnect/token.h /usr/include/phconnect/version.h \
    /usr/lib/pkgconfig/phconnect.pc /usr/lib/cmake/phconnect/phconnectConfig.cmake \
    /usr/lib/cmake/phconnect/phconnectConfigVersion.cmake \
    /usr/share/phconnect/engine_conf/pkcs11.cnf.in /usr/share/doc/phconnect/README.md \
    /usr/share/doc/phconnect/contract.md; do
    check "the package holds $f" grep -qx -- "$f" "$TMP/deb.files"
done
for page in "$PHC_SRC"/docs/man/*.[1-9]; do
    [ -e "$page" ] || continue
    name=$(basename "$page")
    check "the package holds the man page $name" \
        grep -qx -- "/usr/share/man/man${name##*.}/$name" "$TMP/deb.files"
done
DEPENDS=$(dpkg-deb -f "$DEB" Depends)
echo "    Depends: $DEPENDS"
for dep in libc6 libssl3 libcurl4 libp11-3 libp11-kit0 libjansson4; do
    check "it depends on $dep" grep -qE "(^|, )$dep( |,|$)" <<<"$DEPENDS"
done
# libcurl is dlopen'd, invisible to dpkg-shlibdeps: cmake/Packaging.cmake names it.
check "it depends on libcurl4 (>= 7.88), which the library loads at run time" \
    grep -qE "(^|, )libcurl4 \(>= 7\.88\)(,|$)" <<<"$DEPENDS"
check "it runs ldconfig after installing" bash -c "dpkg-deb -I '$DEB' postinst | grep -q ldconfig"

INSTALLED=0
# Puts the machine back as it was: the package goes if this test installed it.
deb_cleanup() {
    if [ "$INSTALLED" = 1 ]; then
        flock /tmp/apt.lock env DEBIAN_FRONTEND=noninteractive \
            apt-get purge -y -q -o DPkg::Lock::Timeout=120 phconnect >"$TMP/purge.log" 2>&1
        INSTALLED=0
    fi
}
trap 'deb_cleanup; t_cleanup' EXIT
trap 'exit 130' INT TERM HUP

skip_deb=
if [ "$(id -u)" != 0 ]; then
    skip_deb="not root: installing a package needs root"
elif dpkg-query -W -f='${Status}' phconnect 2>/dev/null | grep -q 'ok installed'; then
    skip_deb="phconnect is installed on this machine already; left alone"
elif [ -e /usr/bin/phc ] || [ -e /usr/lib/libphconnect.so.0 ]; then
    skip_deb="/usr/bin/phc or /usr/lib/libphconnect.so.0 exists outside the package; left alone"
fi
if [ -n "$skip_deb" ]; then
    echo "# SKIP installing the .deb: $skip_deb"
    finish
fi

# One installed copy at a time, whichever build tree runs this test.
exec 9>/tmp/phc-package-test.lock
flock -w 120 9 || { not_ok "another run holds /tmp/phc-package-test.lock"; finish; }
INSTALLED=1
expect 0 "" "apt-get install ./phconnect_${VERSION}_*.deb" -- flock /tmp/apt.lock \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=120 "$DEB"
check "dpkg knows phconnect $VERSION" \
    test "$(dpkg-query -W -f='${Status} ${Version}' phconnect)" = "install ok installed $VERSION"
check "ldconfig knows libphconnect.so.0" bash -c "ldconfig -p | grep -q 'libphconnect.so.0 '"
check "/usr/bin/phc loads /usr's library" loads_from /usr/bin/phc /usr/lib
expect 0 "" "/usr/bin/phc --version" -- /usr/bin/phc --version
check "/usr/bin/phc --version says phc $VERSION" test "$(head -1 "$TMP/out")" = "phc $VERSION"
runs_request "/usr/bin/phc makes a request" /usr/bin/phc --config "$CFG" request /v2/asset/sites
expect 0 "" "examples/request.c builds against /usr with pkg-config" -- \
    bash -c "cc ${SAN_FLAGS[*]} -Wall -Werror -o '$TMP/example-usr' '$EXAMPLE' \$(pkg-config --cflags --libs phconnect)"
runs_request "the /usr build of the example makes a request" \
    "$TMP/example-usr" "$CFG" /v2/asset/sites

expect 0 "" "apt-get purge phconnect" -- flock /tmp/apt.lock \
    env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=120 phconnect
INSTALLED=0
check "the package is gone" bash -c "! dpkg-query -W -f='\${Status}' phconnect 2>/dev/null | grep -q 'ok installed'"
check "/usr/bin/phc and the library are gone" bash -c \
    "! [ -e /usr/bin/phc ] && ! ls /usr/lib/libphconnect.so* >/dev/null 2>&1"
check "ldconfig forgot libphconnect.so.0" bash -c "! ldconfig -p | grep -q 'libphconnect.so.0 '"
finish
