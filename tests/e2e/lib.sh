# Shared helpers of the end-to-end tests: real processes, real ZeroMQ sockets on loopback.
# Usage from a test: source lib.sh; then HS (the hotsplit binary) and MODELS are set from $1, $2.
set -uo pipefail
HS=$1
MODELS=$2
TMP=$(mktemp -d)
PIDS=()
FAILS=0
PASSES=0
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${HS_E2E_KEEP:-}" ] && echo "logs kept in $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# zoo_model NAME: path of the zoo model, written once per build tree.
zoo_model() {
  local path="$MODELS/$1.onnx"
  mkdir -p "$MODELS"
  if [ ! -f "$path" ]; then
    "$HS" zoo "$1" -o "$path.$$.tmp" >/dev/null && mv "$path.$$.tmp" "$path"
  fi
  echo "$path"
}

# start_coordinator LOG ARGS...: starts a coordinator in the background, waits for it to listen.
start_coordinator() {
  local log=$1
  shift
  "$HS" coordinator --verbose "$@" >"$log" 2>&1 &
  PIDS+=($!)
  COORD_PID=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && return 0; sleep 0.1; done
  echo "coordinator did not start:"; cat "$log"; return 1
}

# start_worker LOG NAME ENDPOINT MODEL [ARGS...]: starts a worker; WORKER_PID is its pid.
start_worker() {
  local log=$1 name=$2 endpoint=$3 model=$4
  shift 4
  "$HS" worker --name "$name" --coordinator "$endpoint" --model "$model" --verbose "$@" \
    >"$log" 2>&1 &
  WORKER_PID=$!
  PIDS+=($WORKER_PID)
}

# wait_for LOG PATTERN [SECONDS]: waits until the log has a line matching PATTERN.
wait_for() {
  local log=$1 pattern=$2 limit=${3:-30}
  for _ in $(seq $((limit * 10))); do grep -qE "$pattern" "$log" && return 0; sleep 0.1; done
  echo "timed out waiting for '$pattern' in $log:"; tail -20 "$log"; return 1
}

check() { # check DESCRIPTION COMMAND...: one test line
  if "${@:2}"; then PASSES=$((PASSES + 1)); echo "ok: $1"; else FAILS=$((FAILS + 1)); echo "FAIL: $1"; fi
}

finish() {
  echo "$(basename "$0" .sh): $PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}
