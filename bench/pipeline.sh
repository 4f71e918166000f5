#!/usr/bin/env bash
# Pipeline throughput: a 2-stage pipeline over 2 workers (coordinator + 1 worker process, each
# with 1 OpenBLAS thread, over loopback) divided by 1 worker running the whole model, with the
# same closed-loop load, for resnet50, mobilenet_v2 and efficientnet_b0, with the solver's
# throughput plan priced by a profile measured here first.
#
# The two set-ups run side by side, idle when not loaded, and are measured in alternating
# rounds; each round's ratio compares two runs seconds apart, and the median round is reported.
# A machine shared with other tenants drifts by 20% and more over a minute, so one long run of
# each, back to back, measures the drift as much as the pipeline. Each round also measures the
# limit of the 2-worker set-up's current cut with bench_stages: the same two stages flat out on
# two pinned threads of one process, no transport, no coordinator, no load generator, against
# one thread running the whole model; the pipeline's ratio over that limit is what the runtime
# itself costs.
# The coordinators (device 0) are pinned to CPU 0 and the worker (device 1) to CPU 1, as two
# devices would be: unpinned, the scheduler sometimes stacks both stages on one core.
#
# The same comparison is then made a second way, with the source embedded as a camera
# application runs it (bench_embedded): both set-ups' coordinators in one process on CPU 0, fed
# by in-process clients without a copy (hs_coordinator_client), so no input crosses TCP and no
# load-generator process shares the cores. Its median round is the "embedded" column. Its
# re-splits may settle on another cut than the TCP set-up's, so the limit is not set against it.
#
# Usage: bench/pipeline.sh [BUILD_DIR] [OUT_DIR]    (writes pipeline.csv/.json/.png,
#        pipeline_rounds.csv and pipeline_embedded_rounds.csv). HS_BENCH_ROUNDS (default 5)
#        rounds of HS_BENCH_SECONDS (default 4) seconds per set-up; HS_BENCH_MODELS overrides
#        the model list; HS_BENCH_SPIN_US (default 0) is every device's --spin-us.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
out=${2:-$root/out/bench}
hs=$build/cli/hotsplit
models=$build/models
rounds=${HS_BENCH_ROUNDS:-5}
seconds=${HS_BENCH_SECONDS:-4}
model_list=${HS_BENCH_MODELS:-resnet50 mobilenet_v2 efficientnet_b0}
spin=(--spin-us "${HS_BENCH_SPIN_US:-0}")
mkdir -p "$out" "$models"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# median X...: of the values that are numbers ("nan" rounds left out); "nan" if none is.
median() {
  python3 -c 'import math, statistics, sys
v = [float(x) for x in sys.argv[1:] if not math.isnan(float(x))]
print(f"{statistics.median(v):.3f}" if v else "nan")' "$@"
}
# divide A B: A / B to 3 decimals, "nan" when either is.
divide() { python3 -c "import math; a, b = float('$1'), float('$2'); print('nan' if math.isnan(a) or math.isnan(b) else f'{a / b:.3f}')"; }

# start_cluster NAME MODEL CLUSTER N_DEVICES PROFILE: starts a coordinator (CPU 0) and
# N_DEVICES - 1 workers (CPU 1, 2, ...), waits for the last plan to commit, and sets EP to the
# coordinator's endpoint (not printed: a command substitution would lose the pids).
start_cluster() {
  local name=$1 model=$2 cluster=$3 devices=$4 profile=$5 ep log
  ep=tcp://127.0.0.1:$(port)
  log=$tmp/$name.log
  taskset -c 0 "$hs" coordinator --verbose --cluster "$cluster" --model "$model" --listen "$ep" \
    --objective throughput --profile "$profile" "${spin[@]}" >"$log" 2>&1 &
  pids+=($!)
  for i in $(seq 1 $((devices - 1))); do
    taskset -c "$i" "$hs" worker --name "dev$i" --coordinator "$ep" --model "$model" \
      "${spin[@]}" >"$tmp/$name.w$i.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 300); do
    [ "$(grep -c 'commit plan' "$log")" -ge "$devices" ] && break
    sleep 0.1
  done
  grep "prepare plan" "$log" | tail -1 | sed "s/^coordinator: /  $name: /" >&2
  EP=$ep
}

# load EP MODEL SECONDS: the closed-loop throughput (requests/s) of one run.
load() {
  "$hs" load --coordinator "$1" --concurrency 4 --duration "$3" --drain 60 --model "$2" \
    --json "$tmp/load.json" >/dev/null 2>"$tmp/load.err" ||
    { echo "pipeline: load against $1 failed:" >&2; cat "$tmp/load.err" >&2; exit 1; }
  python3 -c "import json; print(json.load(open('$tmp/load.json'))['throughput_rps'])"
}

# limit_round MODEL: the limit, once, for the cut of the 2-worker set-up's committed plan
# ("prepare plan N: dev0[0,K) -> dev1[K,n)"); "nan" when that plan is not a 2-stage split
# (one stage, or an empty source stage), which bench_stages refuses.
limit_round() {
  local epoch cut
  epoch=$(grep -oE "commit plan [0-9]+$" "$tmp/two.log" | tail -1 | grep -oE "[0-9]+$")
  cut=$(grep -E "prepare plan ${epoch:-0}: " "$tmp/two.log" | tail -1 |
        grep -oE "dev0\[0,[0-9]+\)" | grep -oE "[0-9]+" | tail -1)
  "$build/bench/bench_stages" "$1" "${cut:-0}" --rounds 1 --seconds "$seconds" 2>/dev/null |
    grep -oE "^limit [0-9.]+" | cut -d' ' -f2 || echo nan
}

# embedded_rounds NAME MODEL PROFILE: bench_embedded's rounds (shown as they come, appended to
# pipeline_embedded_rounds.csv) with a worker for device 1 on CPU 1; sets EMBEDDED to the median
# ratio, "nan" when the run failed (its log's last lines are shown). Not run in a command
# substitution, so that both processes are in pids for the exit trap.
embedded_rounds() {
  local ep=tcp://127.0.0.1:$(port) log=$tmp/$1.embedded.log
  : >"$tmp/embedded.out"
  "$build/bench/bench_embedded" "$2" --one "$root/configs/clusters/loopback1.yaml" \
    --two "$root/configs/clusters/loopback2.yaml" --listen "$ep" --profile "$3" \
    --rounds "$rounds" --seconds "$seconds" --csv "$tmp/embedded.csv" --verbose "${spin[@]}" \
    2>"$log" >"$tmp/embedded.out" &
  local bench_pid=$!
  pids+=($bench_pid)
  taskset -c 1 "$hs" worker --name dev1 --coordinator "$ep" --model "$2" "${spin[@]}" \
    >"$tmp/$1.embedded.w1.log" 2>&1 &
  pids+=($!)
  tail -f --pid=$bench_pid "$tmp/embedded.out" | { grep --line-buffered "^round" || true; } |
    sed 's/^/  /' >&2
  EMBEDDED=nan
  if wait $bench_pid; then
    EMBEDDED=$(grep -oE "^ratio [0-9.]+" "$tmp/embedded.out" | cut -d' ' -f2 || echo nan)
    tail -n +2 "$tmp/embedded.csv" | sed "s/^/$1,/" >>"$out/pipeline_embedded_rounds.csv"
  else
    echo "pipeline: bench_embedded failed on $1:" >&2
    tail -3 "$log" >&2
  fi
  grep "prepare plan" "$log" | tail -1 | sed 's/^coordinator: /  embedded: final /' >&2 || true
  # The worker leaves on the coordinator's BYE; TERM covers a bench that died without one.
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

echo "model,round,one_worker_rps,two_stage_rps,ratio,limit,of_limit" >"$out/pipeline_rounds.csv"
echo "model,round,one_worker_rps,two_stage_rps,ratio" >"$out/pipeline_embedded_rounds.csv"
echo "model,one_worker_rps,two_stage_rps,ratio,limit,of_limit,rounds,embedded_ratio,spin_us" \
  >"$out/pipeline.csv"
for name in $model_list; do
  model=$models/$name.onnx
  [ -f "$model" ] || "$hs" zoo "$name" -o "$model" >/dev/null
  echo "== $name: profiling" >&2
  "$hs" profile "$model" -o "$tmp/$name.profile.yaml" --repeat 10 2>/dev/null | grep machine >&2
  echo "== $name: starting 1-worker and 2-worker set-ups" >&2
  start_cluster one "$model" "$root/configs/clusters/loopback1.yaml" 1 "$tmp/$name.profile.yaml"
  one_ep=$EP
  start_cluster two "$model" "$root/configs/clusters/loopback2.yaml" 2 "$tmp/$name.profile.yaml"
  two_ep=$EP
  load "$one_ep" "$model" 2 >/dev/null # warm-up; lets the 2-worker plan settle
  load "$two_ep" "$model" 2 >/dev/null
  ones=() twos=() ratios=() limits=() ofs=()
  for r in $(seq "$rounds"); do
    one=$(load "$one_ep" "$model" "$seconds")
    two=$(load "$two_ep" "$model" "$seconds")
    ratio=$(divide "$two" "$one")
    limit=$(limit_round "$model")
    of=$(divide "$ratio" "$limit")
    echo "  round $r/$rounds: 1 worker $one/s, 2 workers $two/s, ratio $ratio," \
         "in-process limit $limit ($of of it)" >&2
    echo "$name,$r,$one,$two,$ratio,$limit,$of" >>"$out/pipeline_rounds.csv"
    ones+=("$one") twos+=("$two") ratios+=("$ratio") limits+=("$limit") ofs+=("$of")
  done
  grep "measured stage times move the plan" "$tmp/two.log" | sed 's/^coordinator: /  two: /' >&2 || true
  grep "prepare plan" "$tmp/two.log" | tail -1 | sed 's/^coordinator: /  two: final /' >&2
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  # of_limit pairs each round's ratio with the limit measured in the same round.
  one=$(median "${ones[@]}") two=$(median "${twos[@]}")
  ratio=$(median "${ratios[@]}") limit=$(median "${limits[@]}") of=$(median "${ofs[@]}")
  echo "$name: median of $rounds rounds: 1 worker $one/s, 2 workers $two/s, ratio $ratio" \
       "(target >= 1.9); in-process limit $limit, pipeline at $of of it" >&2
  echo "== $name: the same with the source embedded (in-process clients, no copy)" >&2
  embedded_rounds "$name" "$model" "$tmp/$name.profile.yaml"
  echo "$name: embedded source: median ratio $EMBEDDED (target >= 1.9)" >&2
  echo "$name,$one,$two,$ratio,$limit,$of,$rounds,$EMBEDDED,${spin[1]}" >>"$out/pipeline.csv"
done
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/pipeline.csv")))
rounds = list(csv.DictReader(open(f"{out}/pipeline_rounds.csv")))
embedded = list(csv.DictReader(open(f"{out}/pipeline_embedded_rounds.csv")))
for r in rows:
    r["per_round"] = [x for x in rounds if x["model"] == r["model"]]
    r["embedded_per_round"] = [x for x in embedded if x["model"] == r["model"]]
json.dump(rows, open(f"{out}/pipeline.json", "w"), indent=1)
with open(f"{out}/pipeline.dat", "w") as f:
    for r in rows:
        f.write(f"{r['model']} {r['ratio']} {r['embedded_ratio']} {r['limit']}\n")
PY
gnuplot <<GP
set terminal pngcairo size 800,450 noenhanced
set output "$out/pipeline.png"
set title "2-stage pipeline over 2 workers / 1 worker (median round; loopback, 1 thread each)"
set style data histograms
set style fill solid 0.8
set ylabel "throughput ratio"
set yrange [0:2.2]
set key outside bottom center horizontal
plot "$out/pipeline.dat" using 2:xtic(1) title "pipeline ratio (client over TCP)", \
     "" using 3 title "pipeline ratio (source embedded)", \
     "" using 4 title "in-process limit (same cut, no runtime)", 1.9 with lines dashtype 2 title "target 1.9"
GP
column -s, -t "$out/pipeline.csv"
