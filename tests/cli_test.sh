#!/usr/bin/env bash
# End-to-end checks of the hotsplit command: exit codes (0 ok, 1 runtime, 2 usage), one-line
# errors naming the file, and the info/infer/zoo round trip on a real zoo model.
# Usage: tests/cli_test.sh HOTSPLIT_BINARY MODEL_DIR
set -uo pipefail
hs=$1
models=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$models"
pass=0
fail=0

# expect CODE DESCRIPTION -- COMMAND...: runs the command, checks its exit code and, for
# failures, that stderr is a single line (plus an optional "Try ..." hint for usage errors).
expect() {
  local code=$1 what=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  local lines
  lines=$(grep -vc "^Try 'hotsplit" "$tmp/err")
  if [ "$got" -ne "$code" ]; then
    echo "FAIL: $what: exit $got, wanted $code"; sed 's/^/  | /' "$tmp/err"; fail=$((fail + 1))
  elif [ "$code" -ne 0 ] && [ "$lines" -ne 1 ]; then
    echo "FAIL: $what: stderr has $lines lines, wanted 1"; sed 's/^/  | /' "$tmp/err"
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}

# contains FILE TEXT DESCRIPTION
contains() {
  if grep -qF -- "$2" "$1"; then pass=$((pass + 1)); else
    echo "FAIL: $3: '$2' not in output"; sed 's/^/  | /' "$1" | head -20; fail=$((fail + 1)); fi
}

expect 0 "--help" -- "$hs" --help
contains "$tmp/out" "infer" "--help lists commands"
expect 0 "--version" -- "$hs" --version
contains "$tmp/out" "hotsplit " "--version"
expect 2 "no command" -- "$hs"
expect 2 "unknown command" -- "$hs" frobnicate
for cmd in info infer zoo demo; do
  expect 0 "$cmd --help" -- "$hs" $cmd --help
  contains "$tmp/out" "usage: hotsplit $cmd" "$cmd --help"
done
expect 2 "info without model" -- "$hs" info
expect 2 "info unknown option" -- "$hs" info --bogus x.onnx
expect 2 "infer bad --threads" -- "$hs" infer --threads 0 x.onnx
expect 2 "infer bad --repeat" -- "$hs" infer --repeat abc x.onnx
expect 2 "info bad --input-shape" -- "$hs" info --input-shape 1x-3 x.onnx
expect 2 "zoo unknown model" -- "$hs" zoo lenet -o "$tmp/x.onnx"
contains "$tmp/err" "unknown zoo model 'lenet'" "zoo unknown model message"
expect 2 "zoo without -o" -- "$hs" zoo resnet18

expect 1 "info on a missing file" -- "$hs" info "$tmp/none.onnx"
contains "$tmp/err" "$tmp/none.onnx: cannot open" "missing file message"
printf 'garbage\377\377\377' >"$tmp/garbage.onnx"
expect 1 "info on garbage" -- "$hs" info "$tmp/garbage.onnx"
contains "$tmp/err" "garbage.onnx: not a valid ONNX model" "garbage message"
: >"$tmp/empty.onnx"
expect 1 "info on an empty file" -- "$hs" info "$tmp/empty.onnx"

model="$models/resnet18.onnx"
if [ ! -f "$model" ]; then
  expect 0 "zoo resnet18" -- "$hs" zoo resnet18 -o "$tmp/resnet18.onnx"
  mv "$tmp/resnet18.onnx" "$model"
fi
head -c 100000 "$model" >"$tmp/truncated.onnx"
expect 1 "info on a truncated model" -- "$hs" info "$tmp/truncated.onnx"
contains "$tmp/err" "truncated.onnx: " "truncated message names the file"

expect 0 "info resnet18" -- "$hs" info "$model"
contains "$tmp/out" "params: 11689512" "resnet18 parameter count"
contains "$tmp/out" "flops: " "flops total line"
expect 0 "info --json" -- "$hs" info --json "$model"
contains "$tmp/out" "\"params\": 11689512" "json params"
expect 1 "info with a wrong --input-shape" -- "$hs" info --input-shape 1x4x224x224 "$model"
contains "$tmp/err" "(Conv)" "shape error names the node"

expect 0 "infer with seeded input" -- "$hs" infer "$model" --repeat 2 --seed 7 --output "$tmp/a.f32"
contains "$tmp/out" "top-5:" "infer prints top-5"
contains "$tmp/out" "latency: p50" "infer prints latency"
head -c 602112 /dev/urandom >"$tmp/in.f32"
expect 0 "infer from a file" -- "$hs" infer "$model" --repeat 1 --input "$tmp/in.f32" --output "$tmp/b.f32"
[ "$(stat -c %s "$tmp/b.f32")" = 4000 ] && pass=$((pass + 1)) || { echo "FAIL: output size"; fail=$((fail + 1)); }
head -c 1000 "$tmp/in.f32" >"$tmp/short.f32"
expect 1 "infer with a short input file" -- "$hs" infer "$model" --input "$tmp/short.f32"
contains "$tmp/err" "short.f32: holds fewer bytes" "short input message"
expect 0 "infer --profile" -- "$hs" infer "$model" --repeat 1 --profile
contains "$tmp/out" "per op type:" "profile per op"
"$hs" infer "$model" --repeat 1 --seed 7 --output "$tmp/c.f32" >/dev/null 2>&1
cmp -s "$tmp/a.f32" "$tmp/c.f32" && pass=$((pass + 1)) || { echo "FAIL: same seed, different output"; fail=$((fail + 1)); }

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
