#!/usr/bin/env bash
# Installs what the experiments need beyond the build (tools/install-deps.sh) on Debian/Ubuntu:
# Fashion-MNIST (dataset-fashion-mnist: IDX files under /usr/share/datasets/fashion-mnist/,
# for experiments/visual_attention.sh) and PyTorch (python3-torch: the reference models of the
# benchmarks and fixtures). Skips packages that are already installed; uses sudo when not root.
set -euo pipefail
pkgs=(dataset-fashion-mnist python3-torch python3-numpy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
