#!/usr/bin/env bash
# Hot swap under load: a new plan every 50 ms for 10 s on 3 devices while requests keep
# coming; every request is answered exactly once and correctly.
source "$(dirname "$0")/lib.sh"
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
model=$(zoo_model mobilenet_v2)
ep=tcp://127.0.0.1:$(free_port)
start_coordinator "$TMP/coord.log" --cluster "$CONFIGS/loopback3.yaml" --model "$model" \
  --listen "$ep" --swap-every 50 || exit 1
start_worker "$TMP/w1.log" dev1 "$ep" "$model"
start_worker "$TMP/w2.log" dev2 "$ep" "$model"
wait_for "$TMP/coord.log" "worker dev2 joined" 30 >/dev/null
wait_for "$TMP/coord.log" "worker dev1 joined" 30 >/dev/null
check "load with a new plan every 50 ms: none lost, none twice, all correct" \
  timeout 120 "$HS" load --coordinator "$ep" --rate 25 --duration 10 --model "$model" \
  --verify --json "$TMP/load.json"
cat "$TMP/load.json"
plans=$(grep -c "commit plan" "$TMP/coord.log")
echo "plans committed: $plans"
check "at least 100 plans committed during the run" [ "$plans" -ge 100 ]
grep "answered/s" "$TMP/coord.log" | head -3
check "the coordinator reported its progress (answered/s) during the run" \
  grep -qE "coordinator: [0-9.]+ answered/s" "$TMP/coord.log"
finish
