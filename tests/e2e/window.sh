#!/usr/bin/env bash
# The plan's elastic window reaches stage 1: a worker holding weights per range holds the
# stretch before its first node where the source may hand a request over (--elastic), loaded at
# PREPARE rather than on the spot, and nothing of it when elastic hand-off is off. The same
# pinned 2-stage resnet18 plan runs twice, with --elastic 0 and 0.3, under verified load.
source "$(dirname "$0")/lib.sh"
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
model=$(zoo_model resnet18)
# the cut at node 20: layer3's weights (before it) are in a 0.3 window, not in stage 1's range
cat >"$TMP/plan.json" <<'JSON'
{"plan": {"stages": [{"device": "dev0", "first": 0, "last": 20},
                     {"device": "dev1", "first": 20, "last": 32}]}}
JSON

# run ELASTIC: the pipeline with --elastic ELASTIC under load; sets HELD to dev1's weights
# (MB) once it has let go of what its plan does not need, and LATER to how often its holding
# changed (1: the let-go alone, no load on the spot).
run() {
  local elastic=$1 ep log=$TMP/coord.$1.log wlog=$TMP/w1.$1.log
  ep=tcp://127.0.0.1:$(free_port)
  start_coordinator "$log" --cluster "$CONFIGS/loopback2.yaml" --model "$model" \
    --listen "$ep" --objective throughput --plan "$TMP/plan.json" --elastic "$elastic" || return 1
  local coord=$COORD_PID
  start_worker "$wlog" dev1 "$ep" "$model"
  wait_for "$log" "commit plan" 30 >/dev/null
  "$HS" load --coordinator "$ep" --rate 20 --duration 8 --model "$model" --verify \
    >"$TMP/load.$elastic.out" 2>&1
  LOAD_STATUS=$?
  wait_for "$wlog" "holds .* of weights" 15 >/dev/null
  grep "holds" "$wlog"
  HELD=$(awk '/holds .* of weights/ { a = $4 } END { print a }' "$wlog")
  LATER=$(grep -c "holds .* of weights" "$wlog")
  kill -TERM "$coord"
  wait "$coord" 2>/dev/null
  grep -oE "handed over early [0-9]+, late [0-9]+" "$log" | tail -1
}

run 0
off_held=$HELD
check "elastic off: the load run verified, none lost, none twice" test "$LOAD_STATUS" -eq 0
run 0.3
on_held=$HELD
check "elastic 0.3: the load run verified, none lost, none twice" test "$LOAD_STATUS" -eq 0
echo "dev1 holds $off_held MB with --elastic 0, $on_held MB with --elastic 0.3"
check "with a window, stage 1 holds the weights before its cut too" \
  awk -v a="$off_held" -v b="$on_held" 'BEGIN { exit !(b > a + 1) }'
check "with a window, stage 1 let go once and never loaded back on the spot" test "$LATER" -eq 1
finish
