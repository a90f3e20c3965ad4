#!/usr/bin/env bash
# Installs what attn needs to build and test on Debian/Ubuntu: a C compiler, CMake,
# pkg-config, zlib (gzip IDX image files), libpng + FreeType + fontconfig + a CJK font
# (for PNG pictures with Chinese labels), chromium (tests/cli_html.sh opens the attention
# explorer page in it, headless); help2man (the man pages, from the commands' --help), and for
# tests/install.sh: man-db (man -l), dpkg-dev (dpkg-shlibdeps, for cpack's .deb), file,
# binutils (readelf); Python 3 with its development files, numpy, venv and matplotlib (the
# Python module, python/; its attn.torch tests also use python3-torch when installed);
# strace (tests/cli_crash.sh kills training at every checkpoint write with it), clang (the
# libFuzzer targets of tests/fuzz/), OpenMPI (libopenmpi-dev, openmpi-bin: data-parallel
# training and ring attention, attn/dist.h, and their tests under mpirun). All are optional for
# the library itself.
# Skips packages that are already installed; uses sudo when not root.
set -euo pipefail
pkgs=(gcc make cmake pkg-config zlib1g-dev libpng-dev libfreetype-dev libfontconfig-dev fonts-wqy-microhei chromium
      help2man man-db dpkg-dev file binutils python3-dev python3-numpy python3-venv python3-matplotlib
      strace clang libopenmpi-dev openmpi-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
