#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   1. normal build: every test, the multi-process ones at full scale;
#   2. ASan + UBSan build: the same tests, scaled down (SHMBUS_TEST_SCALE);
#   3. TSan build (clang): the threaded stress program on one mapping;
#   4. libFuzzer build (clang): 20 s on the open/validate path of bus and
#      channel objects (tests/fuzz_open.c), from a corpus it writes itself.
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
(cd build-asan && SHMBUS_TEST_SCALE=25 ctest --output-on-failure -LE "bench|model|install|chaos")
run build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_SANITIZE=thread \
    -DCMAKE_C_COMPILER=clang -DSHMBUS_BUILD_BENCH=OFF
(cd build-tsan && SHMBUS_TEST_SCALE=50 ctest --output-on-failure)
echo "=== build-fuzz"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DSHMBUS_FUZZ=ON -DSHMBUS_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_open >/dev/null
(cd build-fuzz/tests && rm -rf fuzz-run fuzz-crash-* &&
  ./fuzz_open --make-corpus fuzz-run >/dev/null &&
  if ./fuzz_open -max_total_time=20 -timeout=10 -artifact_prefix=fuzz-crash- \
      fuzz-run ../../tests/fuzz/corpus >fuzz.log 2>&1; then
    grep -E "DONE" fuzz.log
  else
    tail -n 60 fuzz.log
    echo "fuzz_open failed; the input is build-fuzz/tests/fuzz-crash-*"
    exit 1
  fi)
echo "=== all test builds passed: normal, asan+ubsan, tsan, libfuzzer"
