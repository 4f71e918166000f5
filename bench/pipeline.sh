#!/usr/bin/env bash
# Pipeline throughput: a 2-stage pipeline over 2 workers (coordinator + 1 worker process, each
# with 1 OpenBLAS thread, over loopback) divided by 1 worker running the whole model, measured
# back to back in one run with the same closed-loop load, for resnet50, mobilenet_v2 and
# efficientnet_b0, with the solver's throughput plan priced by a profile measured here first.
# The coordinator (device 0) is pinned to CPU 0 and the worker (device 1) to CPU 1, as two
# devices would be: unpinned, the scheduler sometimes stacks both stages on one core and the
# result flips between two modes from run to run.
# Usage: bench/pipeline.sh [BUILD_DIR] [OUT_DIR]    (writes pipeline.csv/.json/.png)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
out=${2:-$root/out/bench}
hs=$build/cli/hotsplit
models=$build/models
duration=${HS_BENCH_DURATION:-15}
mkdir -p "$out" "$models"
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run_cluster MODEL CLUSTER N_WORKERS PROFILE: prints the closed-loop throughput.
run_cluster() {
  local model=$1 cluster=$2 workers=$3 profile=$4 ep log
  ep=tcp://127.0.0.1:$(port)
  log=$tmp/coord.log
  taskset -c 0 "$hs" coordinator --verbose --cluster "$cluster" --model "$model" --listen "$ep" \
    --objective throughput --profile "$profile" >"$log" 2>&1 &
  local coord=$!
  pids+=($coord)
  for i in $(seq 1 $((workers - 1))); do
    taskset -c "$i" "$hs" worker --name "dev$i" --coordinator "$ep" --model "$model" \
      >"$tmp/w$i.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 300); do
    [ "$(grep -c 'commit plan' "$log")" -ge "$workers" ] && break
    sleep 0.1
  done
  grep "prepare plan" "$log" | tail -1 | sed 's/^coordinator: /  /' >&2
  "$hs" load --coordinator "$ep" --concurrency 4 --duration "$duration" --model "$model" \
    --json "$tmp/load.json" >/dev/null 2>"$tmp/load.err"
  kill -TERM "$coord"
  wait "$coord" 2>/dev/null || true
  python3 -c "import json; print(json.load(open('$tmp/load.json'))['throughput_rps'])"
}

# ceiling MODEL: what 2 cores give this model here at best: two independent single-device runs
# at once (one per core) against one alone. Cores that share an FPU or memory bandwidth (SMT
# siblings on the host of a VM) put it well below 2 for GEMM-bound models.
p50() { grep -oE "latency: p50 [0-9.]+" "$1" | grep -oE "[0-9.]+$"; }
ceiling() {
  taskset -c 0 "$hs" infer "$1" --repeat 20 >"$tmp/alone.txt"
  taskset -c 0 "$hs" infer "$1" --repeat 20 >"$tmp/c0.txt" &
  taskset -c 1 "$hs" infer "$1" --repeat 20 >"$tmp/c1.txt"
  wait
  python3 -c "print(f'{2 * $(p50 "$tmp/alone.txt") / (($(p50 "$tmp/c0.txt") + $(p50 "$tmp/c1.txt")) / 2):.3f}')"
}

echo "model,one_worker_rps,two_stage_rps,ratio,two_core_ceiling,of_ceiling" >"$out/pipeline.csv"
for name in resnet50 mobilenet_v2 efficientnet_b0; do
  model=$models/$name.onnx
  [ -f "$model" ] || "$hs" zoo "$name" -o "$model" >/dev/null
  echo "== $name: profiling" >&2
  "$hs" profile "$model" -o "$tmp/$name.profile.yaml" --repeat 10 2>/dev/null | grep machine >&2
  echo "== $name: 1 worker" >&2
  one=$(run_cluster "$model" "$root/configs/clusters/loopback1.yaml" 1 "$tmp/$name.profile.yaml")
  echo "== $name: 2-stage pipeline over 2 workers" >&2
  two=$(run_cluster "$model" "$root/configs/clusters/loopback2.yaml" 2 "$tmp/$name.profile.yaml")
  ratio=$(python3 -c "print(f'{$two / $one:.3f}')")
  echo "== $name: two independent runs at once (the 2-core ceiling)" >&2
  ceil=$(ceiling "$model")
  of=$(python3 -c "print(f'{$ratio / $ceil:.3f}')")
  echo "$name: 1 worker $one/s, 2 workers $two/s, ratio $ratio (target >= 1.9);" \
       "2-core ceiling $ceil, pipeline at $of of it" >&2
  echo "$name,$one,$two,$ratio,$ceil,$of" >>"$out/pipeline.csv"
done
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/pipeline.csv")))
json.dump(rows, open(f"{out}/pipeline.json", "w"), indent=1)
with open(f"{out}/pipeline.dat", "w") as f:
    for r in rows:
        f.write(f"{r['model']} {r['one_worker_rps']} {r['two_stage_rps']} {r['ratio']} "
                f"{r['two_core_ceiling']}\n")
PY
gnuplot <<GP
set terminal pngcairo size 800,450
set output "$out/pipeline.png"
set title "Throughput: 2-stage pipeline over 2 workers vs 1 worker (loopback, 1 thread each)"
set style data histograms
set style fill solid 0.8
set ylabel "requests/s"
set key top right
plot "$out/pipeline.dat" using 2:xtic(1) title "1 worker", "" using 3 title "2 workers"
GP
column -s, -t "$out/pipeline.csv"
