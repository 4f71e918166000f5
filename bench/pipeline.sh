#!/usr/bin/env bash
# Pipeline throughput: a 2-stage pipeline over 2 workers (coordinator + 1 worker process, each
# with 1 OpenBLAS thread, over loopback) divided by 1 worker running the whole model, with the
# same closed-loop load, for resnet50, mobilenet_v2 and efficientnet_b0, with the solver's
# throughput plan priced by a profile measured here first.
#
# A machine shared with other tenants drifts by 20% and more within a minute, so the two
# set-ups run side by side, idle when not loaded, and bench_pipeline loads them in many short
# alternating rounds (every answer checked against a single-device run): each round's ratio
# compares two rates taken a second or two apart, and the median round is reported with its
# bootstrap 95% interval. Two ways:
#   client over TCP: the set-ups are `hotsplit coordinator` processes, the coordinators
#       (device 0) pinned to CPU 0 and the worker (device 1) to CPU 1, as two devices would be
#       (unpinned, the scheduler sometimes stacks both stages on one core); bench_pipeline is
#       the load generator, unpinned, sending every input over loopback TCP. A second 1-device
#       coordinator on CPU 1 gives each round a third set-up, both 1-device coordinators
#       loaded at once: their summed rate over one alone ("machine") is what two cores give
#       two processes of the whole model, the ceiling of any split here, and the pipeline's
#       rate over that sum ("kept") is what the split and the runtime keep of it;
#   source embedded, as a camera application runs it: bench_pipeline hosts both coordinators
#       on CPU 0 and hands them its inputs in memory, without a copy (hs_coordinator_client);
#       the worker process is on CPU 1.
# Then bench_stages measures the limit of the TCP way's final cut: the same two stages flat
# out on two pinned threads of one process, no transport, no coordinator, no load generator,
# against one thread running the whole model; and the two parts of that limit, what two cores
# give two copies of the whole model ("copies") and how evenly the cut shares the work
# ("balance"). The pipeline's ratio over the limit is what the runtime itself costs.
#
# Usage: bench/pipeline.sh [BUILD_DIR] [OUT_DIR]    (writes pipeline.csv/.json/.png and every
#        round in pipeline_rounds.csv). HS_BENCH_ROUNDS (default 25) rounds of HS_BENCH_SECONDS
#        (default 1.5) seconds per set-up and way, with HS_BENCH_CONCURRENCY (default 4)
#        requests in flight; HS_BENCH_MODELS overrides the model list; HS_BENCH_SPIN_US
#        (default 0) is every device's --spin-us, HS_BENCH_ELASTIC (default 0.1, 0: off) the
#        2-stage set-ups' --elastic.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
out=${2:-$root/out/bench}
hs=$build/cli/hotsplit
models=$build/models
rounds=${HS_BENCH_ROUNDS:-25}
seconds=${HS_BENCH_SECONDS:-1.5}
concurrency=${HS_BENCH_CONCURRENCY:-4}
model_list=${HS_BENCH_MODELS:-resnet50 mobilenet_v2 efficientnet_b0}
spin=(--spin-us "${HS_BENCH_SPIN_US:-0}")
elastic=(--elastic "${HS_BENCH_ELASTIC:-0.1}")
mkdir -p "$out" "$models"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
# start_cluster NAME MODEL CLUSTER N_DEVICES PROFILE: starts a coordinator (CPU 0) and
# N_DEVICES - 1 workers (CPU 1, 2, ...), waits for the last plan to commit, and sets EP to the
# coordinator's endpoint (not printed: a command substitution would lose the pids).
start_cluster() {
  local name=$1 model=$2 cluster=$3 devices=$4 profile=$5 ep log
  ep=tcp://127.0.0.1:$(port)
  log=$tmp/$name.log
  taskset -c 0 "$hs" coordinator --verbose --cluster "$cluster" --model "$model" --listen "$ep" \
    --objective throughput --profile "$profile" "${spin[@]}" "${elastic[@]}" >"$log" 2>&1 &
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

# pipeline_rounds WAY NAME MODEL ARGS...: bench_pipeline's rounds (shown as they come, appended
# to pipeline_rounds.csv under WAY) with ARGS choosing the way; sets RATIO, LO, HI (the median
# ratio and its 95% interval), ONE and TWO (median rates), MACHINE and KEPT (median and
# interval, with --pair-at), all "nan" when the run failed (its log's last lines are shown).
pipeline_rounds() {
  local way=$1 name=$2 model=$3 log=$tmp/$1.$2.log
  shift 3
  : >"$tmp/rounds.out" # before tail -f opens it: the child's redirection may come later
  "$build/bench/bench_pipeline" "$model" "$@" --rounds "$rounds" --seconds "$seconds" \
    --concurrency "$concurrency" --csv "$tmp/rounds.csv" >"$tmp/rounds.out" 2>"$log" &
  local bench_pid=$!
  pids+=($bench_pid)
  tail -f --pid=$bench_pid "$tmp/rounds.out" | { grep --line-buffered "^round" || true; } |
    sed -u 's/^/  /' >&2
  RATIO=nan LO=nan HI=nan ONE=nan TWO=nan MACHINE=(nan nan nan) KEPT=(nan nan nan)
  if wait $bench_pid; then
    read -r _ RATIO _ LO _ HI < <(grep "^ratio " "$tmp/rounds.out")
    read -r _ ONE TWO < <(grep "^rates " "$tmp/rounds.out")
    read -r _ MACHINE[0] _ MACHINE[1] _ MACHINE[2] < <(grep "^machine " "$tmp/rounds.out") || true
    read -r _ KEPT[0] _ KEPT[1] _ KEPT[2] < <(grep "^kept " "$tmp/rounds.out") || true
    MACHINE=("${MACHINE[0]:-nan}" "${MACHINE[1]:-nan}" "${MACHINE[2]:-nan}")
    KEPT=("${KEPT[0]:-nan}" "${KEPT[1]:-nan}" "${KEPT[2]:-nan}")
    tail -n +2 "$tmp/rounds.csv" | sed "s/^/$name,$way,/" >>"$out/pipeline_rounds.csv"
  else
    echo "pipeline: bench_pipeline ($way) failed on $name:" >&2
    tail -3 "$log" >&2
  fi
}

# final_cut LOG: K of the last committed plan "dev0[0,K) -> dev1[K,n)" in a coordinator's
# --verbose log; empty when that plan is not a 2-stage split.
final_cut() {
  local epoch
  epoch=$(grep -oE "commit plan [0-9]+$" "$1" | tail -1 | grep -oE "[0-9]+$")
  grep -E "prepare plan ${epoch:-0}: " "$1" | tail -1 | grep -oE "dev0\[0,[0-9]+\) ->" |
    grep -oE "[0-9]+" | tail -1
}

# stop_all: ends every process started for a model (a coordinator's BYE takes its worker too).
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

echo "model,way,round,one_worker_rps,two_stage_rps,ratio,pair_rps,machine,kept" \
  >"$out/pipeline_rounds.csv"
echo "model,one_worker_rps,two_stage_rps,ratio,ratio_lo,ratio_hi,machine,machine_lo,machine_hi,"\
"kept,kept_lo,kept_hi,embedded_ratio,embedded_lo,embedded_hi,limit,limit_lo,limit_hi,copies,"\
"balance,cut,embedded_cut,rounds,seconds,concurrency,spin_us,elastic" >"$out/pipeline.csv"
for name in $model_list; do
  model=$models/$name.onnx
  [ -f "$model" ] || "$hs" zoo "$name" -o "$model" >/dev/null
  echo "== $name: profiling" >&2
  "$hs" profile "$model" -o "$tmp/$name.profile.yaml" --repeat 10 2>/dev/null | grep machine >&2
  profile=$tmp/$name.profile.yaml

  echo "== $name: client over TCP ($rounds rounds of $seconds s per set-up)" >&2
  start_cluster one "$model" "$root/configs/clusters/loopback1.yaml" 1 "$profile"
  one_ep=$EP
  start_cluster two "$model" "$root/configs/clusters/loopback2.yaml" 2 "$profile"
  two_ep=$EP
  pair_ep=tcp://127.0.0.1:$(port)
  taskset -c 1 "$hs" coordinator --cluster "$root/configs/clusters/loopback1.yaml" \
    --model "$model" --listen "$pair_ep" --profile "$profile" "${spin[@]}" \
    >"$tmp/pair.log" 2>&1 &
  pids+=($!)
  pipeline_rounds tcp "$name" "$model" --one-at "$one_ep" --two-at "$two_ep" --pair-at "$pair_ep"
  tcp=("$RATIO" "$LO" "$HI") one=$ONE two=$TWO machine=("${MACHINE[@]}") kept=("${KEPT[@]}")
  cut=$(final_cut "$tmp/two.log")
  echo "  two: $(grep -c "measured stage times move the plan" "$tmp/two.log" || true) re-splits;" \
       "final $(grep "prepare plan" "$tmp/two.log" | tail -1 | sed 's/^coordinator: //')" >&2
  stop_all
  echo "$name: client over TCP: 1 worker $one/s, 2 workers $two/s, median ratio ${tcp[0]}" \
       "(95% interval ${tcp[1]}-${tcp[2]}; target >= 1.9); two 1-device processes at once" \
       "${machine[0]} (${machine[1]}-${machine[2]}), of which the pipeline kept ${kept[0]}" \
       "(${kept[1]}-${kept[2]})" >&2

  echo "== $name: source embedded (in-process clients, no copy)" >&2
  ep=tcp://127.0.0.1:$(port)
  taskset -c 1 "$hs" worker --name dev1 --coordinator "$ep" --model "$model" "${spin[@]}" \
    >"$tmp/$name.embedded.w1.log" 2>&1 &
  pids+=($!)
  pipeline_rounds embedded "$name" "$model" --one "$root/configs/clusters/loopback1.yaml" \
    --two "$root/configs/clusters/loopback2.yaml" --listen "$ep" --profile "$profile" \
    --verbose "${spin[@]}" "${elastic[@]}"
  embedded=("$RATIO" "$LO" "$HI")
  embedded_cut=$(final_cut "$tmp/embedded.$name.log")
  stop_all
  echo "$name: source embedded: median ratio ${embedded[0]} (95% interval" \
       "${embedded[1]}-${embedded[2]}; target >= 1.9)" >&2

  # The limit of the TCP way's final cut: the same stages flat out, no runtime.
  limit=(nan nan nan) copies=nan balance=nan
  if [ -n "$cut" ]; then
    echo "== $name: in-process limit of cut $cut ($rounds rounds)" >&2
    "$build/bench/bench_stages" "$model" "$cut" --rounds "$rounds" --seconds "$seconds" \
      >"$tmp/stages.out" 2>&1 || { echo "pipeline: bench_stages failed:" >&2; tail -3 "$tmp/stages.out" >&2; }
    read -r _ limit[0] _ limit[1] _ limit[2] < <(grep "^limit " "$tmp/stages.out") || true
    copies=$(grep -oE "^copies [0-9.]+" "$tmp/stages.out" | cut -d' ' -f2 || echo nan)
    balance=$(grep -oE "^balance [0-9.]+" "$tmp/stages.out" | cut -d' ' -f2 || echo nan)
    echo "$name: limit ${limit[0]} (95% interval ${limit[1]}-${limit[2]}); two copies of the" \
         "whole model $copies; balance of the cut $balance" >&2
  fi
  echo "$name,$one,$two,${tcp[0]},${tcp[1]},${tcp[2]},${machine[0]},${machine[1]},"\
"${machine[2]},${kept[0]},${kept[1]},${kept[2]},${embedded[0]},${embedded[1]},"\
"${embedded[2]},${limit[0]},${limit[1]},${limit[2]},$copies,$balance,${cut:-},${embedded_cut:-},"\
"$rounds,$seconds,$concurrency,${spin[1]},${elastic[1]}" >>"$out/pipeline.csv"
done
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/pipeline.csv")))
rounds = list(csv.DictReader(open(f"{out}/pipeline_rounds.csv")))
for r in rows:
    for way in ("tcp", "embedded"):
        r[f"{way}_rounds"] = [x for x in rounds if x["model"] == r["model"] and x["way"] == way]
json.dump(rows, open(f"{out}/pipeline.json", "w"), indent=1)
with open(f"{out}/pipeline.dat", "w") as f:
    for r in rows:
        f.write(" ".join([r["model"]] + [r[k] for k in (
            "ratio", "ratio_lo", "ratio_hi", "embedded_ratio", "embedded_lo", "embedded_hi",
            "limit", "limit_lo", "limit_hi", "machine", "machine_lo", "machine_hi")]) + "\n")
PY
gnuplot <<GP
set terminal pngcairo size 860,480 noenhanced
set output "$out/pipeline.png"
set title "2-stage pipeline over 2 workers / 1 worker (median round, 95% interval; loopback, 1 thread each)"
set style data histograms
set style histogram errorbars gap 2 lw 1.5
set style fill solid 0.8
set ylabel "throughput ratio"
set yrange [0:2.3]
set key outside bottom center horizontal
plot "$out/pipeline.dat" using 2:3:4:xtic(1) title "pipeline ratio (client over TCP)", \
     "" using 5:6:7 title "pipeline ratio (source embedded)", \
     "" using 8:9:10 title "in-process limit (same cut, no runtime)", \
     "" using 11:12:13 title "two 1-device processes at once (machine)", \
     1.9 with lines dashtype 2 title "target 1.9"
GP
column -s, -t "$out/pipeline.csv"
