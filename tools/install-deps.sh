#!/usr/bin/env bash
# Installs the Debian 12 packages phconnect builds, tests and demos with. Idempotent: when
# everything is present it changes nothing and asks no mirror.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config clang clang-format
  libssl-dev openssl libp11-dev libcurl4-openssl-dev libp11-kit-dev libjansson-dev
  libmicrohttpd-dev libsystemd-dev
  softhsm2 opensc libengine-pkcs11-openssl
  nginx curl python3 valgrind procps nftables iptables
  dpkg-dev file
)
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
