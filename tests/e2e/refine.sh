#!/usr/bin/env bash
# Adaptive re-split from measured stage times: the cluster file claims dev1 is 4x faster than
# it is, so the first throughput plan gives dev1 most of the model. Under load the workers'
# stage times correct the cost model, and the coordinator moves work back to dev0 by itself;
# every request is still answered exactly once and correctly across the moves.
source "$(dirname "$0")/lib.sh"
model=$(zoo_model mobilenet_v2)
cat >"$TMP/cluster.yaml" <<'YAML'
source: dev0
devices:
  - {name: dev0, speed: 1, memory_mb: 4096}
  - {name: dev1, speed: 4, memory_mb: 4096}
links:
  - {from: dev0, to: dev1, bandwidth_mbps: 1000, latency_ms: 0.1}
YAML
ep=tcp://127.0.0.1:$(free_port)
start_coordinator "$TMP/coord.log" --cluster "$TMP/cluster.yaml" --model "$model" \
  --listen "$ep" --objective throughput || exit 1
start_worker "$TMP/w1.log" dev1 "$ep" "$model"
check "dev1 joined and a plan splitting the model over both devices was made" \
  wait_for "$TMP/coord.log" "prepare plan [0-9]+: .*dev1\[" 30
check "load across the re-splits: none lost, none twice, all correct" \
  timeout 120 "$HS" load --coordinator "$ep" --concurrency 2 --duration 10 --model "$model" \
  --verify --json "$TMP/load.json"
cat "$TMP/load.json"
grep -E "prepare plan|move the plan|answered/s" "$TMP/coord.log"
# dev0's share of the nodes in the first and the last plan that split the model between the
# two devices: the K of "prepare plan N: dev0[0,K) -> dev1[K,n)".
splits=$(grep "prepare plan" "$TMP/coord.log" | grep -F "dev1[" | grep -oE "dev0\[0,[0-9]+\)" |
         grep -oE "[0-9]+\)" | tr -d ')')
first=$(echo "$splits" | head -1)
last=$(echo "$splits" | tail -1)
echo "dev0 ran [0,$first) in the first split, [0,$last) in the last"
check "measured stage times moved the plan" grep -q "measured stage times move the plan" "$TMP/coord.log"
check "the device slower than its declared speed lost work (dev0 [0,$first) -> [0,$last))" \
  [ "${last:-0}" -gt "${first:-999999}" ]
finish
