#!/usr/bin/env bash
# Weights per range: each worker holds the weights of the ranges its plans may run and lets
# the others go; when a plan gives it nodes whose weights it let go (here: a device is killed
# and the survivor takes over its range), it loads them back before READY, in the background
# (its thread runs its other plans meanwhile), and every answer is still bit-identical to one
# device's.
source "$(dirname "$0")/lib.sh"
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
model=$(zoo_model resnet18)
ep=tcp://127.0.0.1:$(free_port)
# dev1 in the middle: once dev2 is gone, the solver's 2-device plan gives dev1 the model's
# end (layer3 and layer4, most of resnet18's 47 MB), which it let go of
cat >"$TMP/plan.json" <<'JSON'
{"plan": {"stages": [{"device": "dev0", "first": 0, "last": 8},
                     {"device": "dev1", "first": 8, "last": 19},
                     {"device": "dev2", "first": 19, "last": 32}]}}
JSON
start_coordinator "$TMP/coord.log" --cluster "$CONFIGS/loopback3.yaml" --model "$model" \
  --listen "$ep" --objective throughput --plan "$TMP/plan.json" || exit 1
start_worker "$TMP/w1.log" dev1 "$ep" "$model"
start_worker "$TMP/w2.log" dev2 "$ep" "$model"
victim=$WORKER_PID
wait_for "$TMP/coord.log" "prepare plan [0-9]+: dev0.*-> .*-> " 30 >/dev/null
wait_for "$TMP/coord.log" "commit plan" 30 >/dev/null
"$HS" load --coordinator "$ep" --rate 8 --duration 16 --model "$model" --verify \
  --json "$TMP/load.json" >"$TMP/load.out" 2>&1 &
load=$!
# "holds A MB of weights (was B MB)" lines: fewer (A < B) or more (A > B)
let_go() { awk '/holds .* of weights/ { a = $4; b = $9; sub(/\(/, "", b); if (a + 0 < b + 0) f = 1 } END { exit !f }' "$1"; }
loaded_back() { awk '/holds .* of weights/ { a = $4; b = $9; sub(/\(/, "", b); if (a + 0 > b + 0) f = 1 } END { exit !f }' "$1"; }
wait_for "$TMP/w1.log" "holds .* of weights" 15 >/dev/null
wait_for "$TMP/w2.log" "holds .* of weights" 15 >/dev/null
wait_for "$TMP/coord.log" "dev0: holds .* of weights" 15 >/dev/null # the source's own, too
grep "holds" "$TMP/w1.log" "$TMP/w2.log"
check "dev1 let go of the weights its plan does not run" let_go "$TMP/w1.log"
check "dev2 let go of the weights its plan does not run" let_go "$TMP/w2.log"
# The same bytes with a new modification time (a copy, a touch): the devices check the
# content's digest and load back from it all the same.
touch "$model"
kill -9 "$victim"
echo "touched the model file, then killed dev2 (pid $victim) under load"
wait_for "$TMP/coord.log" "recovered in" 20 >/dev/null
grep -E "recovered in|prepare plan" "$TMP/coord.log" | tail -2
check "the load run: none lost, none twice, all correct" wait "$load"
cat "$TMP/load.out"
grep "holds" "$TMP/w1.log"
check "dev1 loaded back the weights of the range it took over" loaded_back "$TMP/w1.log"
grep -h "in the background" "$TMP/w1.log" "$TMP/coord.log"
check "dev1 loaded them in the background, its thread free to run its other plans" \
  grep -q "dev1: plan [0-9]*: weights loaded back in .* in the background" "$TMP/w1.log"
check "every device prepared every plan" bash -c "! grep -q 'cannot prepare plan' '$TMP/coord.log'"
grep "dev0: holds" "$TMP/coord.log"
grep "dev0: holds" "$TMP/coord.log" >"$TMP/w0.log"
check "the source (dev0) let go of weights, then loaded back its new range and window" \
  bash -c "$(declare -f let_go loaded_back); let_go '$TMP/w0.log' && loaded_back '$TMP/w0.log'"
check "the source's elastic hand-off stays on after that" \
  bash -c "! grep -q 'no elastic hand-off' '$TMP/coord.log'"
check "the plan after the kill runs on dev1" \
  bash -c "grep -E 'prepare plan' '$TMP/coord.log' | tail -1 | grep -q 'dev1\\['"
finish
