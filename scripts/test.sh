#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: install, build (warnings are
# errors), run the whole suite, then the unit tests again under AddressSanitizer and UBSan.
# Set HS_SKIP_SANITIZE=1 to skip the sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/setup.sh --tests
scripts/build.sh build -DHS_WERROR=ON
echo "== tests (build/)"
# setup.sh --tests installed PyTorch: its checks must run, not skip.
(cd build && HS_REQUIRE_TORCH=1 ctest --output-on-failure --timeout 900)
if [ "${HS_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== unit tests under address,undefined sanitizers (build-asan/)"
  scripts/build.sh build-asan -DHS_WERROR=ON -DHS_SANITIZE=address,undefined -DHS_BUILD_BENCH=OFF
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -L unit --timeout 900)
fi
echo "== all tests passed in $(( $(date +%s) - start )) s"
