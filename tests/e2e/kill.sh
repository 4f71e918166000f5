#!/usr/bin/env bash
# kill -9 of a worker under load: nothing lost or answered twice, the recovery time printed;
# then a new worker joins under the same name and takes work.
source "$(dirname "$0")/lib.sh"
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
model=$(zoo_model resnet18)
ep=tcp://127.0.0.1:$(free_port)
start_coordinator "$TMP/coord.log" --cluster "$CONFIGS/loopback3.yaml" --model "$model" \
  --listen "$ep" --objective throughput || exit 1
start_worker "$TMP/w1.log" dev1 "$ep" "$model"
victim=$WORKER_PID
start_worker "$TMP/w2.log" dev2 "$ep" "$model"
wait_for "$TMP/coord.log" "prepare plan [0-9]+: dev0.*-> .*-> " 30 >/dev/null
wait_for "$TMP/coord.log" "commit plan" 30 >/dev/null
"$HS" load --coordinator "$ep" --rate 8 --duration 12 --model "$model" --verify \
  --json "$TMP/load.json" >"$TMP/load.out" 2>&1 &
load=$!
sleep 3
kill -9 "$victim"
echo "killed dev1 (pid $victim) under load"
wait_for "$TMP/coord.log" "recovered in" 20
grep "recovered in" "$TMP/coord.log"
sleep 2
start_worker "$TMP/w1b.log" dev1 "$ep" "$model"
wait_for "$TMP/coord.log" "prepare plan [0-9]+: .*dev1" 30 >/dev/null
joined_at=$(grep -n "worker dev1 joined" "$TMP/coord.log" | tail -1 | cut -d: -f1)
check "the load run: none lost, none twice, all correct" wait "$load"
cat "$TMP/load.out"
check "a plan after the rejoin uses dev1 again" \
  bash -c "tail -n +$joined_at '$TMP/coord.log' | grep -qE 'commit plan'"
kill -TERM "$WORKER_PID"
wait "$WORKER_PID" 2>/dev/null
check "the new dev1 ran stages" grep -qE "ran [1-9][0-9]* stages" "$TMP/w1b.log"
grep "ran" "$TMP/w1b.log"
finish
