#!/usr/bin/env bash
# Every zoo model on 2 and 3 devices (coordinator + workers as separate processes): every answer
# bit-identical to a single-device run of the same input, and the plan really uses every device.
# On 2 devices also under a closed loop of 4 requests, where the elastic hand-off moves each
# request's cut within its window (at least once on mobilenet_v2; tests/test_mix.c checks both
# ways on a small model, where timing matters less).
source "$(dirname "$0")/lib.sh"
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
MODEL_LIST=${HS_E2E_MODELS:-resnet18 resnet50 mobilenet_v2 efficientnet_b0 vgg16 alexnet}

for model in $MODEL_LIST; do
  path=$(zoo_model "$model")
  for n in 2 3; do
    port=$(free_port)
    ep=tcp://127.0.0.1:$port
    clog=$TMP/coord-$model-$n.log
    start_coordinator "$clog" --cluster "$CONFIGS/loopback$n.yaml" --model "$path" \
      --listen "$ep" --objective throughput || { FAILS=$((FAILS + 1)); continue; }
    for i in $(seq 1 $((n - 1))); do
      start_worker "$TMP/w$i-$model-$n.log" "dev$i" "$ep" "$path"
    done
    # The plan over all n devices is committed before the load starts.
    arrows=$(printf '%*s' $((n - 1)) '' | sed 's/ /-> .*/g')
    wait_for "$clog" "commit plan" 60 >/dev/null
    if wait_for "$clog" "prepare plan [0-9]+: dev0.*$arrows" 60 >/dev/null; then
      wait_for "$clog" "commit plan" 60 >/dev/null
      sleep 0.5
      check "$model on $n devices: the plan splits over all $n" true
    else
      check "$model on $n devices: the plan splits over all $n" false
    fi
    check "$model on $n devices: 12 requests answered once, bit-identical to one device" \
      timeout 300 "$HS" load --coordinator "$ep" --rate 4 --duration 3 --fixed \
      --model "$path" --verify --drain 120
    if [ "$n" = 2 ]; then
      # Elastic hand-off (on by default for throughput): with 4 requests in flight the source
      # hands each one over wherever the second stage has nothing waiting.
      check "$model on 2 devices, 4 in flight: every answer once, bit-identical to one device" \
        timeout 300 "$HS" load --coordinator "$ep" --concurrency 4 --duration 3 \
        --model "$path" --verify --drain 120
    fi
    grep "prepare plan" "$clog" | tail -1
    kill "$COORD_PID"
    wait "$COORD_PID" 2>/dev/null
    if [ "$n" = 2 ]; then
      grep "elastic hand-off" "$clog"
      [ "$model" = mobilenet_v2 ] &&
        check "$model on 2 devices: some requests were handed over elsewhere than the cut" \
          grep -qE "hand-off: ([1-9][0-9]* requests .* before|.*, [1-9][0-9]* after)" "$clog"
    fi
  done
done
finish
