#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   1. normal build: every test, the multi-process ones at full scale;
#   2. ASan + UBSan build: the same tests, scaled down (SHMBUS_TEST_SCALE);
#   3. TSan build (clang): the threaded stress program on one mapping.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
jobs=$(nproc)
run() { # name, cmake args...
  local dir=$1; shift
  echo "=== $dir"
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
}
run build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd build-test && ctest --output-on-failure)
run build-asan -DCMAKE_BUILD_TYPE=Debug -DSHMBUS_SANITIZE=address,undefined
(cd build-asan && SHMBUS_TEST_SCALE=25 ctest --output-on-failure -LE "bench|model|install")
run build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_SANITIZE=thread \
    -DCMAKE_C_COMPILER=clang -DSHMBUS_BUILD_BENCH=OFF
(cd build-tsan && SHMBUS_TEST_SCALE=50 ctest --output-on-failure)
echo "=== all test builds passed: normal, asan+ubsan, tsan"
