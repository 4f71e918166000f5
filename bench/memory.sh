#!/usr/bin/env bash
# Memory per device: what a device holds to run a model, alone and as one stage of a 2-device
# pipeline.
#   infer peak: peak resident memory of `hotsplit infer MODEL` (load, one run), against the
#       model file's size;
#   pipeline: resident memory of the source process (`hotsplit load --cluster`, the
#       coordinator with its embedded source worker and the load generator) and of the worker
#       process (stage 1), read after 6 s of 4 requests in flight on the throughput plan, with
#       elastic hand-off (--elastic 0.1, the default) and without it (--elastic 0). Of the
#       source's, the model file's pages are listed apart: the coordinator maps the file to
#       serve workers that fetch the model; they are clean page cache, dropped under pressure.
#   Resident figures include the weights each process holds (by default those of the ranges
#   its plans may run, elastic window included; with --hold-all-weights the whole model's,
#   shown for comparison) and each executor's arena and workspace.
#
# Usage: bench/memory.sh [BUILD_DIR] [OUT_DIR]   (writes memory.csv/.json/.png). HS_BENCH_MODELS
#        overrides the model list. Takes about a minute per model.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
out=${2:-$root/out/bench}
hs=$build/cli/hotsplit
models=$build/models
model_list=${HS_BENCH_MODELS:-resnet50 mobilenet_v2 efficientnet_b0}
cluster=$root/configs/clusters/loopback2.yaml
[ "$(nproc)" -ge 2 ] || { echo "memory: needs 2 cores (the devices are pinned to CPU 0 and 1)" >&2; exit 1; }
mkdir -p "$out" "$models"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# peak_kb CMD...: the peak resident memory (kB) of CMD, which must succeed.
peak_kb() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}

# field PID NAME: a kB field of /proc/PID/status or /proc/PID/smaps_rollup.
field() { awk -v n="$2:" '$1 == n { print $2 }' "/proc/$1/status" "/proc/$1/smaps_rollup"; }

# pipeline MODEL ELASTIC [--hold-all-weights]: sets SRC, SRC_FILE and WRK (kB resident) after
# 8 s of load (weights a plan does not need are let go 5 s after loading).
pipeline() {
  local model=$1 elastic=$2 ep lp wp
  shift 2
  ep=tcp://127.0.0.1:$(port)
  taskset -c 0 "$hs" load --cluster "$cluster" --listen "$ep" --model "$model" \
    --concurrency 4 --duration 11 --objective throughput --elastic "$elastic" "$@" \
    >"$tmp/load.log" 2>&1 &
  lp=$!
  pids+=($lp)
  taskset -c 1 "$hs" worker --name dev1 --coordinator "$ep" --model "$model" "$@" \
    >"$tmp/worker.log" 2>&1 &
  wp=$!
  pids+=($wp)
  for _ in $(seq 300); do
    grep -q "answered" "$tmp/load.log" 2>/dev/null && break
    sleep 0.1
  done
  sleep 8
  SRC=$(field "$lp" VmRSS) SRC_FILE=$(field "$lp" Pss_File) WRK=$(field "$wp" VmRSS)
  if ! wait "$lp" || ! grep -q "lost 0, duplicated 0, failed 0" "$tmp/load.log"; then
    echo "memory: the 2-device run of $(basename "$model") failed:" >&2
    tail -3 "$tmp/load.log" >&2
    exit 1
  fi
  # The source's BYE ends the worker; one that missed it is not waited for long.
  for _ in $(seq 50); do kill -0 "$wp" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$wp" 2>/dev/null || true
  wait "$wp" 2>/dev/null || true
  pids=()
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f MiB", $2 / 1024 }' /proc/meminfo)" >&2
csv=$out/memory.csv
echo "model,file_mb,infer_peak_mb,source_mb,source_file_mb,worker_mb,source_mb_fixed_cut,worker_mb_fixed_cut,source_mb_all_weights,worker_mb_all_weights" >"$csv"
for name in $model_list; do
  model=$models/$name.onnx
  [ -f "$model" ] || "$hs" zoo "$name" -o "$model" >/dev/null
  file_kb=$(( $(stat -c %s "$model") / 1024 ))
  echo "== $name: hotsplit infer" >&2
  infer=$(peak_kb "$hs" infer "$model")
  echo "== $name: 2 devices, elastic hand-off" >&2
  pipeline "$model" 0.1
  src=$SRC src_file=$SRC_FILE wrk=$WRK
  echo "== $name: 2 devices, fixed cut" >&2
  pipeline "$model" 0
  src_fixed=$SRC wrk_fixed=$WRK
  echo "== $name: 2 devices, elastic hand-off, every weight held" >&2
  pipeline "$model" 0.1 --hold-all-weights
  echo "$name,$(mb "$file_kb"),$(mb "$infer"),$(mb "$src"),$(mb "$src_file"),$(mb "$wrk"),$(mb "$src_fixed"),$(mb "$wrk_fixed"),$(mb "$SRC"),$(mb "$WRK")" >>"$csv"
done

python3 - "$csv" "$out/memory.json" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    for k in r:
        if k != "model":
            r[k] = float(r[k])
json.dump({"unit": "MiB", "rows": rows}, open(sys.argv[2], "w"), indent=2)
PY
tail -n +2 "$csv" | tr , ' ' >"$tmp/memory.dat"
gnuplot <<GP
set terminal pngcairo size 860,480 noenhanced
set output "$out/memory.png"
set title "Memory per device (MiB): a model alone, and each device of a 2-device pipeline"
set style data histograms
set style histogram clustered gap 2
set style fill solid 0.8
set ylabel "MiB"
set yrange [0:*]
set key outside bottom center horizontal
plot "$tmp/memory.dat" using 2:xtic(1) title "model file", \
     "" using 3 title "hotsplit infer (peak)", \
     "" using 4 title "source process (resident)", \
     "" using 6 title "worker process (resident)", \
     "" using 9 title "source, every weight held", \
     "" using 10 title "worker, every weight held"
GP
column -s, -t "$csv"
