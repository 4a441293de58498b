#!/usr/bin/env bash
# Installs the Debian 12 packages phconnect needs. Idempotent: when everything is present it
# changes nothing and asks no mirror.
#
#   install-deps.sh          everything: build, demo and the whole test suite (tests/run.sh)
#   install-deps.sh --demo   only what ./tools/demo.sh needs: the build, SoftHSM and openssl
#   install-deps.sh --list [--demo]   print the package names instead of installing them
set -euo pipefail
# The demo: build phc and the mock Powerhub, make a PKI with openssl, a SoftHSM token.
DEMO_PKGS=(
  build-essential cmake pkg-config
  libssl-dev openssl libp11-dev libcurl4-openssl-dev libp11-kit-dev libjansson-dev
  libmicrohttpd-dev libsystemd-dev
  softhsm2
)
# The tests on top: the second compiler and the formatter, nginx, stock curl with the libp11
# engine, pkcs11-tool (opensc), p11-kit's remoting (server and client module), valgrind, the firewall tools, packaging, the man-page linter and systemd's unit tools (systemd-analyze, systemd-socket-activate).
TEST_PKGS=(
  clang clang-format
  opensc libengine-pkcs11-openssl p11-kit p11-kit-modules
  nginx curl python3 valgrind procps nftables iptables
  dpkg-dev file
  mandoc
  systemd
)
demo=0 list=0
for a in "$@"; do
  case $a in
  --demo) demo=1 ;;
  --list) list=1 ;;
  -h | --help)
    sed -n '5,7s/^# \{0,1\}//p' "$0"
    exit 0
    ;;
  *)
    echo "install-deps.sh: unknown option '$a' (--demo, --list)" >&2
    exit 2
    ;;
  esac
done
PKGS=("${DEMO_PKGS[@]}")
[ $demo = 1 ] || PKGS+=("${TEST_PKGS[@]}")
if [ $list = 1 ]; then
  printf '%s\n' "${PKGS[@]}"
  exit 0
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
