#!/usr/bin/env bash
# The demo: real processes through the bus. A publisher of OrderPlaced
# events; durable subscribers 'risk' (spinning) and 'audit' (sleeping on a
# futex, and running after 'risk': a dependency barrier); a competing group
# 'workers' of two members sharing the orders. Each checks what it gets and
# prints its publish-to-handler latency; then `shmbus stat` shows the
# bus's own counters and latency histograms.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
bus="demo$$"
count="${1:-200000}"
out=$(mktemp -d)
trap 'build/tools/shmbus destroy --force "$bus" >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
sub=build/examples/subscriber
start() { # name, args...
  local name=$1; shift
  "$sub" "$bus" "$name" "$@" > "$out/$name" &
  until grep -q ready "$out/$name" 2>/dev/null; do sleep 0.05; done
}
echo "bus '$bus': publisher -> OrderPlaced -> risk (yield) -> audit (block, after risk);"
echo "                                      -> group 'workers' of 2 (block)"
start risk --wait yield
start audit --wait block --after risk
start workers --wait block --group
"$sub" "$bus" workers --wait block --group > "$out/workers2" &
until grep -q ready "$out/workers2" 2>/dev/null; do sleep 0.05; done
build/examples/publisher "$bus" "$count"
wait
cat "$out/risk" "$out/audit" "$out/workers" "$out/workers2" | grep -v ready
total=$(cat "$out/workers" "$out/workers2" | awk '/orders/ {s += $3} END {print s}')
echo "group 'workers': $total of $count orders handled between its two members"
echo
echo "what the bus itself counted (shmbus stat):"
build/tools/shmbus stat "$bus"
[ "$total" = "$count" ]
