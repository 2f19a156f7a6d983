#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a
# while, starting from the corpus kept in tests/fuzz/corpus/TARGET.
#
#   scripts/fuzz.sh          # 5 seconds per target (what scripts/test.sh runs)
#   scripts/fuzz.sh 600      # ten minutes per target
# New interesting inputs go to build-fuzz/corpus/TARGET; a crash is written to
# build-fuzz/artifacts/ and fails the script (make it a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
weft_install_packages clang-14 libclang-rt-14-dev cmake ninja-build
secs=${1:-5}
weft_configure build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
  -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_FUZZ=ON >/dev/null
targets=(fuzz_snapshot fuzz_op_batch fuzz_replicas fuzz_protocol)
cmake --build build-fuzz -j "$(weft_jobs)" --target "${targets[@]}"
mkdir -p build-fuzz/artifacts
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  echo "==> $t (${secs}s)"
  "build-fuzz/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/ \
    "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" 2>&1 | grep -E "^stat::number_of_executed_units|^stat::peak_rss|ERROR|SUMMARY|Done" || true
  if ls build-fuzz/artifacts/ 2>/dev/null | grep -q .; then
    echo "fuzz: $t found a failing input: $(ls build-fuzz/artifacts/)" >&2
    exit 1
  fi
done
