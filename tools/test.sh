#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   1. normal build: every test, the multi-process ones at full scale;
#   2. ASan + UBSan build: the same tests, scaled down (SHMBUS_TEST_SCALE);
#   3. TSan build (clang): the threaded stress program on one mapping;
#   4. libFuzzer build (clang): 25 s on the open/validate path of bus and
#      channel objects (tests/fuzz_open.c), 25 s on the journal's recovery
#      and reads (tests/fuzz_journal.c), each from a corpus it writes itself.
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
(cd build-test && ctest --output-on-failure -LE quick-part)
run build-asan -DCMAKE_BUILD_TYPE=Debug -DSHMBUS_SANITIZE=address,undefined
(cd build-asan && SHMBUS_TEST_SCALE=25 ctest --output-on-failure -LE "bench|model|install|chaos|quick-part")
run build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_SANITIZE=thread \
    -DCMAKE_C_COMPILER=clang -DSHMBUS_BUILD_BENCH=OFF
(cd build-tsan && SHMBUS_TEST_SCALE=50 ctest --output-on-failure)
echo "=== build-fuzz"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DSHMBUS_FUZZ=ON -DSHMBUS_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_open fuzz_journal >/dev/null
fuzz() { # target, seed directories...
  local t=$1; shift
  (cd build-fuzz/tests && rm -rf "$t-run" "$t-crash-"* &&
    "./$t" --make-corpus "$t-run" >/dev/null &&
    if "./$t" -max_total_time=25 -timeout=10 -artifact_prefix="$t-crash-" \
        "$t-run" "$@" >"$t.log" 2>&1; then
      echo "$t: $(grep -E "DONE" "$t.log")"
    else
      tail -n 60 "$t.log"
      echo "$t failed; the input is build-fuzz/tests/$t-crash-*"
      exit 1
    fi)
}
fuzz fuzz_open ../../tests/fuzz/corpus
fuzz fuzz_journal
echo "=== all test builds passed: normal, asan+ubsan, tsan, libfuzzer"
