#!/usr/bin/env bash
# A rogue peer sends malformed, truncated, oversized, misaddressed and wrong-epoch messages to
# the coordinator, a worker and the sink while real load runs: the cluster goes on, every
# request is answered once and correctly, and the bad messages are counted.
# Usage: rogue.sh HOTSPLIT MODEL_DIR ROGUE_BINARY
source "$(dirname "$0")/lib.sh"
ROGUE=$3
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
model=$(zoo_model mobilenet_v2)
ep=tcp://127.0.0.1:$(free_port)
start_coordinator "$TMP/coord.log" --cluster "$CONFIGS/loopback2.yaml" --model "$model" \
  --listen "$ep" --max-message-mb 16 || exit 1
coord=$COORD_PID
start_worker "$TMP/w1.log" dev1 "$ep" "$model" --max-message-mb 16
worker=$WORKER_PID
wait_for "$TMP/coord.log" "prepare plan [0-9]+: dev0.*-> " 30 >/dev/null
wait_for "$TMP/coord.log" "commit plan 2" 30 >/dev/null
data=$(grep -oE "worker dev1 joined \(data at [^)]*" "$TMP/coord.log" | tail -1 | sed 's/.*data at //')
sink=$(grep -oE "results come back to .*" "$TMP/coord.log" | sed 's/results come back to //')
epoch=$(grep -oE "commit plan [0-9]+" "$TMP/coord.log" | tail -1 | grep -oE "[0-9]+$")
echo "worker data at $data, sink at $sink, plan $epoch"
"$HS" load --coordinator "$ep" --rate 10 --duration 6 --model "$model" --verify \
  >"$TMP/load.out" 2>&1 &
load=$!
sleep 1
check "the rogue's malformed SUBMIT is answered with an error" \
  "$ROGUE" "$ep" "$data" "$sink" "$epoch" $((32 << 20))
check "the coordinator is still running" kill -0 "$coord"
check "the worker is still running" kill -0 "$worker"
check "the load run: none lost, none twice, all correct" wait "$load"
cat "$TMP/load.out" | grep -v "^load:"
kill -TERM "$worker" "$coord"
wait "$worker" "$coord" 2>/dev/null
bad_c=$(grep -oE "bad messages [0-9]+" "$TMP/coord.log" | grep -oE "[0-9]+$")
bad_w=$(grep -oE "dropped [0-9]+ messages" "$TMP/w1.log" | grep -oE "[0-9]+")
echo "coordinator counted ${bad_c:-?} bad messages, worker dropped ${bad_w:-?}"
check "the coordinator counted the bad messages" [ "${bad_c:-0}" -ge 10 ]
check "the worker counted the bad messages" [ "${bad_w:-0}" -ge 10 ]
check "the worker refused a hand-off to a node past the model's end" \
  grep -q "cannot start at node 1073741824" "$TMP/w1.log"
check "each kind of bad message was logged once, not per message" \
  [ "$(grep -c 'dropped a message' "$TMP/coord.log")" -lt 30 ]
finish
