#!/usr/bin/env bash
# A worker started without --model fetches the model from the coordinator over its control
# connection, joins, and the split answers every request once, bit-identical to one device.
# With --model-cache it keeps the model on disk, holds weights per range, and on a second start
# fetches nothing. A
# name that is not a device of the cluster is refused the model. With CURVE, an allow-listed
# worker fetches the model and a worker whose key is not on the list gets nothing. A worker
# pointed at a port nobody listens on gives up within 15 s with one clear line, whether it was
# fetching the model or saying HELLO.
source "$(dirname "$0")/lib.sh"
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
model=$(zoo_model mobilenet_v2)

# start_doomed NAME ENDPOINT ARGS...: a worker dev1 in the background that should give up;
# NAME.log gets its output, NAME.rc its exit status and how many seconds it ran.
start_doomed() {
  local name=$1 endpoint=$2
  shift 2
  (
    t0=$SECONDS
    "$HS" worker --name dev1 --coordinator "$endpoint" "$@" >"$TMP/$name.log" 2>&1
    echo "$? $((SECONDS - t0))" >"$TMP/$name.rc"
  ) &
  PIDS+=($!)
}

# gave_up NAME ENDPOINT: the worker exited non-zero within 15 s, saying in one line that
# ENDPOINT did not answer.
gave_up() {
  local rc secs
  for _ in $(seq 300); do [ -s "$TMP/$1.rc" ] && break; sleep 0.1; done
  read -r rc secs <"$TMP/$1.rc" || { echo "still running"; return 1; }
  echo "exit $rc after $secs s: $(cat "$TMP/$1.log")"
  [ "$rc" -ne 0 ] && [ "$secs" -le 15 ] && [ "$(wc -l <"$TMP/$1.log")" -eq 1 ] &&
    grep -q "no answer from the coordinator at $2 in 10 s$" "$TMP/$1.log"
}

# The two workers with no coordinator wait in the background while the real cluster runs.
dead=tcp://127.0.0.1:$(free_port)
start_doomed dead-fetch "$dead"
start_doomed dead-hello "$dead" --model "$model"

ep=tcp://127.0.0.1:$(free_port)
start_coordinator "$TMP/coord.log" --cluster "$CONFIGS/loopback2.yaml" --model "$model" \
  --listen "$ep" --objective throughput || exit 1
"$HS" worker --name dev1 --coordinator "$ep" --verbose >"$TMP/w1.log" 2>&1 &
worker=$!
PIDS+=($worker)
check "the worker without --model fetches the model" wait_for "$TMP/w1.log" "fetched the model" 30
grep "fetched" "$TMP/w1.log"
check "it joins" wait_for "$TMP/coord.log" "worker dev1 joined" 30
check "the plan splits over both devices" \
  wait_for "$TMP/coord.log" "prepare plan [0-9]+: dev0.*-> dev1" 30
wait_for "$TMP/coord.log" "commit plan 2" 30 >/dev/null
grep "prepare plan" "$TMP/coord.log" | tail -1
check "12 requests over the split answered once, bit-identical to one device" \
  timeout 300 "$HS" load --coordinator "$ep" --rate 4 --duration 3 --fixed \
  --model "$model" --verify --drain 120
kill -TERM "$worker"
wait "$worker" 2>/dev/null
check "the fetching worker ran stages" grep -qE "ran [1-9][0-9]* stages" "$TMP/w1.log"

# With --model-cache the fetched model is kept on disk and loaded from there: the worker then
# holds weights per range, and a second start finds the model there and fetches nothing.
mkdir -p "$TMP/cache"
start_cached() { # start_cached LOG: worker dev1 with the cache; sets worker to its pid
  "$HS" worker --name dev1 --coordinator "$ep" --model-cache "$TMP/cache" --verbose >"$1" 2>&1 &
  worker=$!
  PIDS+=($worker)
}
start_cached "$TMP/w1-cache.log"
check "with --model-cache, the worker fetches the model and keeps it" \
  wait_for "$TMP/w1-cache.log" "fetched the model from .* kept in $TMP/cache" 30
check "the cache holds it under its digest, byte for byte" \
  bash -c "cmp -s '$model' '$TMP'/cache/*.onnx && [ \$(ls '$TMP/cache' | wc -l) -eq 1 ]"
check "it holds weights per range: lets go of those its plan does not run" \
  wait_for "$TMP/w1-cache.log" "holds .* of weights" 20
grep -h "holds" "$TMP/w1-cache.log"
kill -TERM "$worker"
wait "$worker" 2>/dev/null
start_cached "$TMP/w1-cached.log"
check "started again, it finds the model in the cache and fetches nothing" \
  wait_for "$TMP/w1-cached.log" "is in $TMP/cache .*: not fetched" 30
joined_thrice() { # the first worker, the one that filled the cache, and this one
  for _ in $(seq 300); do [ "$(grep -c 'worker dev1 joined' "$TMP/coord.log")" -ge 3 ] && return 0; sleep 0.1; done
  return 1
}
check "and joins" joined_thrice
check "12 requests over the split answered once, bit-identical to one device" \
  timeout 300 "$HS" load --coordinator "$ep" --rate 4 --duration 3 --fixed \
  --model "$model" --verify --drain 120
kill -TERM "$worker"
wait "$worker" 2>/dev/null
check "a --model-cache that is not a directory: one line, non-zero exit" bash -c "
  ! timeout 15 '$HS' worker --name dev1 --coordinator '$ep' --model-cache '$model' \
    >'$TMP/badcache.log' 2>&1 && [ \$(wc -l <'$TMP/badcache.log') -eq 1 ] &&
  grep -q 'model-cache $model: not a directory' '$TMP/badcache.log'"
cat "$TMP/badcache.log"
check "a name that is not a device of the cluster is refused the model" bash -c "
  ! timeout 15 '$HS' worker --name nobody --coordinator '$ep' >'$TMP/nobody.log' 2>&1 &&
  grep -q \"refused nobody: no device 'nobody'\" '$TMP/nobody.log'"
cat "$TMP/nobody.log"
kill "$COORD_PID"
wait "$COORD_PID" 2>/dev/null

for k in server worker intruder; do "$HS" keygen -o "$TMP/$k.key" >/dev/null || exit 1; done
grep -h public "$TMP/worker.key.pub" >"$TMP/allow.txt"
ep=tcp://127.0.0.1:$(free_port)
start_coordinator "$TMP/coord-curve.log" --cluster "$CONFIGS/loopback2.yaml" --model "$model" \
  --listen "$ep" --curve-keys "$TMP/server.key" --curve-allow "$TMP/allow.txt" || exit 1
start_doomed intruder "$ep" --curve-keys "$TMP/intruder.key" --curve-server "$TMP/server.key.pub"
"$HS" worker --name dev1 --coordinator "$ep" --curve-keys "$TMP/worker.key" \
  --curve-server "$TMP/server.key.pub" --verbose >"$TMP/w1-curve.log" 2>&1 &
PIDS+=($!)
check "with CURVE, the allow-listed worker fetches the model" \
  wait_for "$TMP/w1-curve.log" "fetched the model" 30
check "and joins" wait_for "$TMP/coord-curve.log" "worker dev1 joined" 30
check "a worker whose key is not allowed gets no model and gives up" gave_up intruder "$ep"
check "without a coordinator, the model fetch gives up with one line" gave_up dead-fetch "$dead"
check "without a coordinator, HELLO gives up with one line" gave_up dead-hello "$dead"
finish
