#!/usr/bin/env bash
# Two hosts in network namespaces joined by a veth pair shaped with tc tbf (this kernel has tbf
# but no netem): the worker runs on the far side of a 20 Mbit/s link. The split model still
# answers every request once and correctly.
# Skipped (exit 0 with a message) where namespaces or tc are not allowed.
source "$(dirname "$0")/lib.sh"
CONFIGS=$(cd "$(dirname "$0")/../../configs/clusters" && pwd)
NS_A=hs-a-$$ NS_B=hs-b-$$
skip() { echo "netns: skipped: $1"; echo "netns: 0 passed, 0 failed, 1 skipped"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root for ip netns"
command -v ip >/dev/null && command -v tc >/dev/null || skip "ip/tc not installed (iproute2)"
ip netns add "$NS_A" 2>/dev/null || skip "ip netns add is not permitted here"
ns_cleanup() { ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null; cleanup; }
trap ns_cleanup EXIT
ip netns add "$NS_B" || skip "ip netns add is not permitted here"
ip link add "va$$" type veth peer name "vb$$" || skip "veth pairs are not permitted here"
ip link set "va$$" netns "$NS_A" && ip link set "vb$$" netns "$NS_B"
ip -n "$NS_A" addr add 10.250.0.1/24 dev "va$$" && ip -n "$NS_A" link set "va$$" up
ip -n "$NS_B" addr add 10.250.0.2/24 dev "vb$$" && ip -n "$NS_B" link set "vb$$" up
ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up
for ns in "$NS_A" "$NS_B"; do
  dev=$([ "$ns" = "$NS_A" ] && echo "va$$" || echo "vb$$")
  ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate 20mbit burst 32kbit latency 50ms \
    || skip "tc tbf is not available"
done
model=$(zoo_model mobilenet_v2)
cat >"$TMP/cluster.yaml" <<YAML
source: dev0
devices:
  - {name: dev0, speed: 1, memory_mb: 4096}
  - {name: dev1, speed: 1, memory_mb: 4096}
links:
  - {from: dev0, to: dev1, bandwidth_mbps: 20, latency_ms: 0.2}
YAML
ep=tcp://10.250.0.1:$(free_port)
ip netns exec "$NS_A" "$HS" coordinator --verbose --cluster "$TMP/cluster.yaml" --model "$model" \
  --listen "$ep" --advertise 10.250.0.1 --objective throughput >"$TMP/coord.log" 2>&1 &
PIDS+=($!)
wait_for "$TMP/coord.log" "listening on" 20 >/dev/null
ip netns exec "$NS_B" "$HS" worker --verbose --name dev1 --coordinator "$ep" --model "$model" \
  --advertise 10.250.0.2 --listen tcp://10.250.0.2:0 >"$TMP/w1.log" 2>&1 &
PIDS+=($!)
check "the worker across the shaped link joins" wait_for "$TMP/coord.log" "worker dev1 joined" 30
wait_for "$TMP/coord.log" "commit plan 2" 30 >/dev/null
grep "prepare plan" "$TMP/coord.log" | tail -1
check "requests over the 20 Mbit/s link: none lost, none twice, all correct" \
  ip netns exec "$NS_A" timeout 120 "$HS" load --coordinator "$ep" --rate 5 --duration 4 \
  --model "$model" --verify
finish
