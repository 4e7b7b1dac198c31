#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads outside input (safetensors, GGUF, config.json,
# tokenizer.json, the layer-problem contract) with libFuzzer and AddressSanitizer.
#
#   scripts/fuzz.sh [--runs N] [--max-len BYTES] [--seed S] [--debug] [target...]
#
# Targets: safetensors gguf config-json tokenizer-json layer-problem (default: all). Each runs for N
# inputs (default 100000) from its seed corpus Fixtures/fuzz/<target>/corpus and past crashes
# Fixtures/fuzz/<target>/regressions, with the dictionary Tests/Fuzz/*.dict; --max-len overrides
# every target's input size limit. The same --seed gives the same inputs.
# --debug builds without optimisation (-Onone): about 4 times quicker to build, slower per input.
# CI uses it for its short run (`.ci/run`: every target built, linked and run for 2000 inputs, so
# that a module change cannot break fuzzing silently); long runs use the default optimised build.
#
# How it builds, without touching the normal build: first a one-line target is linked with
# `-sanitize=fuzzer`, to stop at once with a clear message if the toolchain has no libFuzzer (the
# swift.org Linux toolchains ship it in their clang runtime, lib/clang/*/lib/linux/). Then the
# library modules up to PruneOracle ($FUZZ_MODULES below) are compiled by SwiftPM into .build-fuzz
# (ignored by git) with `-sanitize=fuzzer,address` (coverage instrumentation + ASan; --target
# builds modules only, links nothing), and each Tests/Fuzz/<target>.swift is compiled with
# Tests/Fuzz/FuzzMain.swift and Tests/PruneOracleTests/FuzzHarness.swift (the same harness the
# regression test replays) and linked against those objects; libFuzzer supplies main().
#
# Everything it writes is under .build-fuzz/: the grown corpus (runs/<target>/corpus), the crashing
# inputs (crashes/<target>/crash-*, oom-*, timeout-*, leak-*) and the logs (runs/<target>/log).
# To turn a crash into a regression test, copy it into Fixtures/fuzz/<target>/regressions/
# (FuzzRegressionTests replays every file there).
#
# Prints one line per target: inputs run, seconds, inputs per second, crashes found. Exit status:
# 0 when no target crashed, 1 when one did, 2 on a usage or build error.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly ALL_TARGETS=(safetensors gguf config-json tokenizer-json layer-problem)
readonly SCRATCH=.build-fuzz
# Every module the harness links, lowest first (the order of Package.swift's layering).
readonly FUZZ_MODULES="PruneKernelsAVX512 PruneKernels PruneSolvers PruneFormats PruneModels PruneOracle"

runs=100000
seed=1
max_len_override=""
config=release
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --max-len) max_len_override="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --debug) config=debug; shift ;;
    -h|--help) sed -n '2,/^set -euo pipefail$/{/^set /!p}' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1. Hint: scripts/fuzz.sh --help" >&2; exit 2 ;;
    *)
      if [[ ! " ${ALL_TARGETS[*]} " == *" $1 "* ]]; then
        echo "fuzz.sh: unknown target '$1'. Hint: targets are ${ALL_TARGETS[*]}." >&2; exit 2
      fi
      targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")

# The largest input libFuzzer makes for a target: big enough for a header with several tensors
# (or a small vocabulary), small enough that each input runs in milliseconds. The layer-problem
# limit also bounds the Gram accumulated from `inputs` ([in, in] with in ≤ 2048).
max_len_of() {
  if [ -n "$max_len_override" ]; then echo "$max_len_override"; return; fi
  case "$1" in
    safetensors) echo 16384 ;;
    gguf) echo 16384 ;;
    config-json) echo 4096 ;;
    tokenizer-json) echo 16384 ;;
    layer-problem) echo 8192 ;;
  esac
}

# The libFuzzer dictionary of a target (tokens the mutator inserts: JSON keys, dtype names, numbers
# at the edges of Int; GGUF keys and little-endian edge values), from Tests/Fuzz/*.dict.
dict_files_of() {
  case "$1" in
    safetensors|layer-problem) echo Tests/Fuzz/safetensors.dict Tests/Fuzz/json-numbers.dict ;;
    config-json) echo Tests/Fuzz/config-json.dict Tests/Fuzz/json-numbers.dict ;;
    tokenizer-json) echo Tests/Fuzz/tokenizer-json.dict Tests/Fuzz/json-numbers.dict ;;
    gguf) echo Tests/Fuzz/gguf.dict ;;
  esac
}

# -- Build ----------------------------------------------------------------------------------------
readonly SANITIZE=(-sanitize=fuzzer,address)
if [ "$config" = release ]; then optimise=-O; else optimise=-Onone; fi
fuzzers="$SCRATCH/fuzzers-$config"
mkdir -p "$fuzzers"
# The toolchain check: an empty target, linked as the real ones are.
probe="$SCRATCH/probe"
mkdir -p "$probe"
printf '%s\n' '@_cdecl("LLVMFuzzerTestOneInput")' \
  'public func probe(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt { 0 }' >"$probe/probe.swift"
if ! swiftc -parse-as-library "${SANITIZE[@]}" "$probe/probe.swift" -o "$probe/probe" >"$probe/log" 2>&1; then
  echo "fuzz.sh: this Swift toolchain cannot link a libFuzzer target (swiftc ${SANITIZE[*]}):" >&2
  head -n 5 "$probe/log" >&2
  echo "fuzz.sh: Hint: use a swift.org toolchain on Linux, whose clang runtime has libclang_rt.fuzzer (Docs/reliability.md#fuzzing)" >&2
  exit 2
fi
echo "fuzz.sh: building the library modules ($config) with ${SANITIZE[*]} into $SCRATCH" >&2
swift build -c "$config" --scratch-path "$SCRATCH" --target PruneOracle \
  -Xswiftc "${SANITIZE[0]}" >&2 || { echo "fuzz.sh: the instrumented build failed" >&2; exit 2; }
bin="$(swift build -c "$config" --scratch-path "$SCRATCH" --show-bin-path)"
objects=()
for module in $FUZZ_MODULES; do
  for o in "$bin/$module.build"/*.o; do objects+=("$o"); done
done
for t in "${targets[@]}"; do
  echo "fuzz.sh: linking fuzz-$t" >&2
  swiftc "$optimise" -parse-as-library "${SANITIZE[@]}" -module-name "Fuzz_${t//-/_}" -I "$bin/Modules" \
    "Tests/Fuzz/$t.swift" Tests/Fuzz/FuzzMain.swift Tests/PruneOracleTests/FuzzHarness.swift \
    "${objects[@]}" -o "$fuzzers/fuzz-$t" >&2 \
    || { echo "fuzz.sh: building fuzz-$t failed" >&2; exit 2; }
done

# -- Run ------------------------------------------------------------------------------------------
# -detect_leaks=0: LeakSanitizer counts the Swift runtime's and Foundation's caches (type metadata,
# bridged strings) as leaks on every input; memory growth is still caught by -rss_limit_mb and
# single huge allocations by -malloc_limit_mb.
# The Swift runtime's backtracer would handle a trap itself (and trip ASan while reading memory);
# without it libFuzzer sees the signal, prints its stack and saves the input.
export SWIFT_BACKTRACE=enable=no
status=0
summary=()
for t in "${targets[@]}"; do
  work="$SCRATCH/runs/$t"
  crashes="$SCRATCH/crashes/$t"
  rm -rf "$work" "$crashes"
  mkdir -p "$work/corpus" "$crashes"
  seeds=("Fixtures/fuzz/$t/corpus")
  [ -d "Fixtures/fuzz/$t/regressions" ] && seeds+=("Fixtures/fuzz/$t/regressions")
  max_len="$(max_len_of "$t")"
  # shellcheck disable=SC2046
  cat $(dict_files_of "$t") >"$work/dict"
  echo "fuzz.sh: running $t ($config): $runs inputs, -max_len=$max_len, -seed=$seed" >&2
  code=0
  started="$(date +%s.%N)"
  "$fuzzers/fuzz-$t" "$work/corpus" "${seeds[@]}" \
    -runs="$runs" -max_len="$max_len" -seed="$seed" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -dict="$work/dict" -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$crashes/" >"$work/log" 2>&1 || code=$?
  seconds="$(echo "$(date +%s.%N) $started" | awk '{ printf "%.1f", $1 - $2 }')"
  executed="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$' | tail -1 || true)"
  if [ -z "$executed" ]; then
    # libFuzzer prints no final stats when it stops on a crash: count the inputs it reached.
    executed="$(grep -o '^#[0-9]*' "$work/log" | tail -1 | tr -d '#' || true)"
  fi
  found="$(find "$crashes" -type f | wc -l | tr -d ' ')"
  if [ "$code" -ne 0 ] && [ "$found" -eq 0 ]; then found="1 (exit $code, see $work/log)"; fi
  rate="$(echo "${executed:-0} $seconds" | awk '{ printf "%.0f", ($2 > 0 ? $1 / $2 : 0) }')"
  line="$(printf '%-15s inputs run: %-9s seconds: %-8s inputs/s: %-6s crashes: %s' "$t" "${executed:-?}" "$seconds" "$rate" "$found")"
  summary+=("$line")
  echo "fuzz.sh: $line" >&2
  if [ "$found" != "0" ]; then
    status=1
    echo "fuzz.sh: $t crashed; input(s) in $crashes/, log in $work/log:" >&2
    grep -m 3 -E 'ERROR: |Fatal error|SUMMARY' "$work/log" >&2 || true
  fi
done

commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "target          inputs and crashes ($(date -u +%Y-%m-%dT%H:%MZ), $config build, seed $seed, commit $commit, $(uname -m), $(nproc) cores)"
printf '%s\n' "${summary[@]}"
exit "$status"
