#!/usr/bin/env bash
# Installs the Debian 12 packages hotsplit needs, only those missing. Safe to run twice.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libzmq3-dev libmsgpack-dev libopenblas-dev libcriterion-dev
  libonnx-dev protobuf-c-compiler libprotobuf-c-dev libcyaml-dev libyaml-dev
  libonnx-testdata gnuplot-nox iproute2 python3 bsdextrautils
)
# With --tests, also what only the tests need: PyTorch and torchvision (about 1.4 GB), to
# export each CNN family to ONNX and check hotsplit against PyTorch's own outputs.
if [ $# -eq 1 ] && [ "$1" = --tests ]; then
  packages+=(python3-torch python3-torchvision)
elif [ $# -gt 0 ]; then
  echo "usage: scripts/setup.sh [--tests]" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
