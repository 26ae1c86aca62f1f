#!/usr/bin/env bash
# The demo: real processes through the bus. Two durable subscribers (one
# spinning, one sleeping on a futex) and a publisher; each subscriber checks
# every order arrived once and in order and prints its latency summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
bus="demo$$"
count="${1:-200000}"
trap 'build/tools/shmbus destroy --force "$bus" >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true' EXIT
echo "bus '$bus': publisher -> OrderPlaced -> subscribers 'risk' (spin), 'audit' (block)"
build/examples/subscriber "$bus" risk spin > "/tmp/$bus.risk" &
r=$!
build/examples/subscriber "$bus" audit block > "/tmp/$bus.audit" &
a=$!
for f in "/tmp/$bus.risk" "/tmp/$bus.audit"; do
  until grep -q ready "$f" 2>/dev/null; do sleep 0.05; done
done
build/examples/publisher "$bus" "$count"
wait $r $a
grep -h orders "/tmp/$bus.risk" "/tmp/$bus.audit"
rm -f "/tmp/$bus.risk" "/tmp/$bus.audit"
