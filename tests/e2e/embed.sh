#!/usr/bin/env bash
# The source embedded in the application, from the command line: `hotsplit load --cluster`
# runs the coordinator in its own process and hands it the inputs in memory. A worker process
# joins over TCP, the plan splits over both devices, every request is answered once and
# bit-identical to one device, and the worker leaves when the application does (both devices
# polling 2 ms after each stage before they sleep, --spin-us). Without the worker it says how
# many devices registered and serves on the source alone. Contradictory options are refused
# with a one-line reason.
source "$(dirname "$0")/lib.sh"
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
model=$(zoo_model mobilenet_v2)

ep=tcp://127.0.0.1:$(free_port)
start_worker "$TMP/w1.log" dev1 "$ep" "$model" --spin-us 2000
worker=$WORKER_PID
# run_logged OUT ERR COMMAND...: runs it with stdout to OUT and stderr to ERR; shows both when it
# fails (check's own ok/FAIL line stays on the test's output).
run_logged() {
  local out=$1 err=$2
  shift 2
  "$@" >"$out" 2>"$err" && return 0
  echo "failed: $*"; cat "$out"; tail -20 "$err"; return 1
}
check "30 requests through the embedded source and the worker, answered once, bit-identical" \
  run_logged "$TMP/embed.out" "$TMP/embed.log" \
  timeout 300 "$HS" load --cluster "$CONFIGS/loopback2.yaml" --listen "$ep" --model "$model" \
  --objective throughput --rate 10 --duration 3 --fixed --verify --drain 120 --verbose \
  --spin-us 2000 --json "$TMP/embed.json"
cat "$TMP/embed.out"
check "it waited for both devices" grep -q "waiting for 2 devices" "$TMP/embed.log"
check "the plan split over both devices" grep -qE "prepare plan [0-9]+: dev0.*-> dev1" \
  "$TMP/embed.log"
grep "prepare plan" "$TMP/embed.log" | tail -1
check "the worker ran stages" bash -c "for _ in \$(seq 100); do
  grep -qE 'ran [1-9][0-9]* stages' '$TMP/w1.log' && exit 0; sleep 0.1; done; exit 1"
check "the worker left with the application" bash -c "for _ in \$(seq 100); do
  kill -0 $worker 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
check "the JSON summary counts 30 answers, none lost" python3 -c "
import json, sys
j = json.load(open('$TMP/embed.json'))
sys.exit(not (j['answered'] == 30 and j['lost'] == 0 and j['wrong'] == 0 and j['verified']))"

ep=tcp://127.0.0.1:$(free_port)
check "with no worker it starts after --wait on the source alone, every answer right" \
  run_logged "$TMP/alone.out" "$TMP/alone.log" \
  timeout 120 "$HS" load --cluster "$CONFIGS/loopback2.yaml" --listen "$ep" --model "$model" \
  --concurrency 2 --duration 1 --wait 1 --verify
check "and says how many devices registered" grep -q "1 of 2 devices registered after 1 s" \
  "$TMP/alone.log"

ep=tcp://127.0.0.1:$(free_port)
start_worker "$TMP/w2.log" dev1 "$ep" "$model"
worker=$WORKER_PID
"$HS" load --cluster "$CONFIGS/loopback2.yaml" --listen "$ep" --model "$model" --rate 5 \
  --duration 60 >"$TMP/term.out" 2>"$TMP/term.log" &
loader=$!
PIDS+=($loader)
wait_for "$TMP/term.log" "sent [0-9]+ +answered [1-9]" 60 >/dev/null
kill -TERM $loader
check "SIGTERM ends the embedded source's run with its summary" bash -c "
  for _ in \$(seq 100); do kill -0 $loader 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
check "and its worker leaves with it" bash -c "
  for _ in \$(seq 100); do kill -0 $worker 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
grep -E "^sent" "$TMP/term.out"

refused() { # refused ARGS...: exit status 2, the reason in one line (then the --help hint)
  "$HS" load "$@" --model "$model" --rate 1 --duration 1 >/dev/null 2>"$TMP/err"
  local rc=$?
  echo "exit $rc: $(head -1 "$TMP/err")"
  [ "$rc" -eq 2 ] && head -1 "$TMP/err" | grep -q "^hotsplit load: " &&
    [ "$(grep -vc "^Try 'hotsplit load --help'" "$TMP/err")" -eq 1 ]
}
check "--coordinator and --cluster together are refused" \
  refused --coordinator "$ep" --cluster "$CONFIGS/loopback2.yaml" --listen "$ep"
check "--cluster without --listen is refused" refused --cluster "$CONFIGS/loopback2.yaml"
check "--listen without --cluster is refused" refused --coordinator "$ep" --listen "$ep"
check "--input-shape with --cluster is refused" \
  refused --cluster "$CONFIGS/loopback2.yaml" --listen "$ep" --input-shape 2x3x224x224
finish
