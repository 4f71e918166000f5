#!/usr/bin/env bash
# CurveZMQ: with keys on, a worker and a client whose public keys are on the coordinator's
# allow-list work; a client whose key is not on it is refused: none of its requests gets in.
source "$(dirname "$0")/lib.sh"
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
model=$(zoo_model mobilenet_v2)
for k in server worker client intruder; do "$HS" keygen -o "$TMP/$k.key" >/dev/null || exit 1; done
grep -h public "$TMP/worker.key.pub" "$TMP/client.key.pub" >"$TMP/allow.txt"
ep=tcp://127.0.0.1:$(free_port)
start_coordinator "$TMP/coord.log" --cluster "$CONFIGS/loopback2.yaml" --model "$model" \
  --listen "$ep" --curve-keys "$TMP/server.key" --curve-allow "$TMP/allow.txt" || exit 1
start_worker "$TMP/w1.log" dev1 "$ep" "$model" --curve-keys "$TMP/worker.key" \
  --curve-server "$TMP/server.key.pub"
check "the allowed worker joins" wait_for "$TMP/coord.log" "worker dev1 joined" 20
wait_for "$TMP/coord.log" "commit plan 2" 20 >/dev/null
check "an allowed client is served, correctly" \
  timeout 60 "$HS" load --coordinator "$ep" --rate 10 --duration 2 --model "$model" --verify \
  --curve-keys "$TMP/client.key" --curve-server "$TMP/server.key.pub"
admitted_before=$(grep -c . "$TMP/coord.log")
check "a client with a key not on the list gets nothing" \
  bash -c "! timeout 60 '$HS' load --coordinator '$ep' --rate 10 --duration 1 \
    --model '$model' --drain 2 --curve-keys '$TMP/intruder.key' \
    --curve-server '$TMP/server.key.pub' >'$TMP/intruder.out' 2>&1"
grep -v "^load:" "$TMP/intruder.out"
check "none of the intruder's requests was answered" grep -q "answered 0," "$TMP/intruder.out"
check "a worker without keys cannot join" bash -c "
  '$HS' worker --name dev1 --coordinator '$ep' --model '$model' >'$TMP/plain.log' 2>&1 &
  p=\$!; sleep 2; kill \$p 2>/dev/null; wait \$p 2>/dev/null
  [ \$(grep -c 'worker dev1 joined' '$TMP/coord.log') -eq 1 ]"
finish
