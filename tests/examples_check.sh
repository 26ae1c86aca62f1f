#!/usr/bin/env bash
# examples/ builds from an installed shmbus, as a user builds it: its own
# CMake project with find_package(shmbus), and each program alone through
# pkg-config; then a subscriber and a publisher so built talk through a bus.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
bus="ex$$"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -f /dev/shm/shmbus."$bus"*; rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cp -r "$src/examples" "$work/examples" # outside the tree, nothing beside it
cmake -S "$work/examples" -B "$work/b" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/b" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$(find "$work/prefix" -name shmbus.pc)")
export LD_LIBRARY_PATH=$(pkg-config --variable=libdir shmbus)
for p in publisher subscriber; do
  cc -std=c11 -Wall -Werror "$work/examples/$p.c" $(pkg-config --cflags --libs shmbus) \
    -o "$work/$p-pc"
done
"$work/b/subscriber" "$bus" ex > "$work/sub.out" &
for _ in $(seq 100); do grep -q ready "$work/sub.out" && break; sleep 0.05; done
"$work/publisher-pc" "$bus" 1000 >/dev/null
wait %1 || { cat "$work/sub.out"; exit 1; }
grep -q " 1000 orders, 0 errors" "$work/sub.out" || { cat "$work/sub.out"; exit 1; }
echo "1 passed, 0 failed"
