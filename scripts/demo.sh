#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to the demo: install, build, run `hotsplit demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
exec build/cli/hotsplit demo "$@"
