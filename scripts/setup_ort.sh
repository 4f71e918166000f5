#!/usr/bin/env bash
# Installs ONNX Runtime for node (onnxruntime-node, CPU build, the version pinned in
# bench/ort/package-lock.json) into bench/ort/node_modules, the baseline that
# `bench_models --ort` compares hotsplit with. The npm package ships the CPU libonnxruntime
# itself; ONNXRUNTIME_NODE_INSTALL=skip stops its install script from fetching anything else
# (GPU providers), so this needs only the npm registry. Safe to run twice: it does nothing when
# the pinned version is already installed and loads.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ort_dir="$root/bench/ort"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup_ort: installing nodejs and npm"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
fi

cd "$ort_dir"
want="$(node -e 'const l = require("./package-lock.json");
  process.stdout.write(l.packages["node_modules/onnxruntime-node"].version)')"

installed_version() {
  node -e 'const o = require("onnxruntime-node");
    process.stdout.write(String(o.env.versions && o.env.versions.node))' 2>/dev/null || true
}

have="$(installed_version)"
if [ "$have" = "$want" ]; then
  echo "setup_ort: onnxruntime-node $have already installed in bench/ort/node_modules"
  exit 0
fi

echo "setup_ort: installing onnxruntime-node $want (node $(node --version))"
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

have="$(installed_version)"
if [ "$have" != "$want" ]; then
  echo "setup_ort: onnxruntime-node did not load after install (got '$have', want '$want')" >&2
  exit 1
fi
echo "setup_ort: onnxruntime-node $have ready"
