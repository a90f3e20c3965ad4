#!/usr/bin/env bash
# Installs what attn needs to build and test on Debian/Ubuntu: a C compiler, CMake,
# pkg-config, zlib (gzip IDX image files), libpng + FreeType + fontconfig + a CJK font
# (for PNG pictures with Chinese labels), chromium (tests/cli_html.sh opens the attention
# explorer page in it, headless). All are optional for the library itself.
# Skips packages that are already installed; uses sudo when not root.
set -euo pipefail
pkgs=(gcc make cmake pkg-config zlib1g-dev libpng-dev libfreetype-dev libfontconfig-dev fonts-wqy-microhei chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
