#!/usr/bin/env bash
# Runs the test suite (and the CLI smoke test) under AddressSanitizer and/or ThreadSanitizer and
# fails on any sanitizer report or test failure.
#
#   scripts/sanitize.sh address|thread|all [extra swift test arguments, e.g. --filter GEMMTests]
#
# What it does, per sanitizer (address → .build-asan, thread → .build-tsan):
#   1. swift build --build-tests -c release --sanitize=KIND --scratch-path .build-KIND -Xswiftc -enable-testing
#   2. swift test  --skip-build  (same flags) --disable-xctest [extra args]
#   3. Tests/cli-smoke.sh with PRUNE_BIN set to the sanitizer-built `prune` (skip: SANITIZE_CLI=0)
#   4. a summary: the test run's result line, the smoke test's result line, the number of sanitizer
#      reports (each is printed, demangled), and the time of each step.
# Exit status: 0 when every step passed and no sanitizer report was written, 1 otherwise.
#
# Configuration, and why:
# - Release (-c release), not debug. Debug builds make the kernels ~800x slower (Docs/conventions.md),
#   so the suite would take many hours under a sanitizer; release keeps every instrumented load,
#   store, allocation and atomic, and Swift's own bounds and overflow checks stay on in -O. The cost:
#   inlining makes some stack frames disappear from reports.
# - Own scratch folders (.build-asan, .build-tsan, ignored by git): the sanitizer builds never touch
#   the normal .build, and switching between them rebuilds nothing.
# - Reports are fatal (halt_on_error=1) and are written to files, one per process
#   (log_path=.build-KIND/sanitizer-reports/KIND.PID), so that reports from the `prune` processes of
#   the smoke test, whose standard error the smoke test swallows, are counted too.
#   SANITIZE_KEEP_GOING=1 makes ThreadSanitizer report every race and exit 66 at the end instead of
#   stopping at the first (AddressSanitizer always stops: Swift is not built with -sanitize-recover).
# - AddressSanitizer: detect_leaks=1 (LeakSanitizer at exit) and detect_stack_use_after_return=1
#   (catches a pointer from withUnsafe… used after its closure returned). Known benign leaks are
#   suppressed in scripts/sanitizers/lsan.supp, one comment per entry saying why.
# - ThreadSanitizer: scripts/sanitizers/tsan.supp holds the suppressions, one comment per entry.
# - Not part of .ci/run: a full run takes far longer than CI's budget (numbers in Docs/reliability.md,
#   section "Sanitizers").
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

usage() {
  echo "usage: scripts/sanitize.sh address|thread|all [extra swift test arguments]" >&2
  echo "Hint: e.g. scripts/sanitize.sh thread --filter DeterminismTests" >&2
  exit 2
}
[ $# -ge 1 ] || usage
case "$1" in
  address) kinds=(address) ;;
  thread) kinds=(thread) ;;
  all) kinds=(address thread) ;;
  *) usage ;;
esac
shift
extra=("$@")

symbolizer="$(command -v llvm-symbolizer || true)"
if [ -z "$symbolizer" ]; then
  toolchain_bin="$(dirname "$(readlink -f "$(command -v swift)")")"
  [ -x "$toolchain_bin/llvm-symbolizer" ] && symbolizer="$toolchain_bin/llvm-symbolizer"
fi

# Formats seconds as "12m 34s".
duration() { printf '%dm %02ds' $(($1 / 60)) $(($1 % 60)); }

summary=()
status=0

for kind in "${kinds[@]}"; do
  case "$kind" in
    address) short=asan ;;
    thread) short=tsan ;;
  esac
  scratch="$repo/.build-$short"
  reports="$scratch/sanitizer-reports"
  log="$scratch/sanitize-$short.log"
  mkdir -p "$scratch"
  rm -rf "$reports"
  mkdir -p "$reports"
  : >"$log"
  # -enable-testing on every build of the scratch folder (what `swift test` adds by itself for
  # @testable imports): the same flags for the tests and for `prune`, so `prune` recompiles nothing.
  swiftflags=(-c release --sanitize="$kind" --scratch-path "$scratch" -Xswiftc -enable-testing)

  halt=1
  [ "${SANITIZE_KEEP_GOING:-0}" = 1 ] && halt=0
  export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:log_path=$reports/asan"
  export LSAN_OPTIONS="suppressions=$repo/scripts/sanitizers/lsan.supp:print_suppressions=1"
  export TSAN_OPTIONS="halt_on_error=$halt:second_deadlock_stack=1:suppressions=$repo/scripts/sanitizers/tsan.supp:print_suppressions=1:log_path=$reports/tsan"
  if [ -n "$symbolizer" ]; then
    export ASAN_SYMBOLIZER_PATH="$symbolizer" TSAN_SYMBOLIZER_PATH="$symbolizer"
    export TSAN_OPTIONS="$TSAN_OPTIONS:external_symbolizer_path=$symbolizer"
  fi

  echo "=== $kind sanitizer: build (release, scratch $scratch)" | tee -a "$log"
  start=$SECONDS
  build_ok=1
  swift build --build-tests "${swiftflags[@]}" 2>&1 | tee -a "$log" || build_ok=0
  build_time=$((SECONDS - start))

  test_line="not run"
  test_time=0
  cli_line="not run"
  cli_time=0
  if [ "$build_ok" = 1 ]; then
    echo "=== $kind sanitizer: swift test ${extra[*]:-}" | tee -a "$log"
    start=$SECONDS
    test_code=0
    swift test --skip-build "${swiftflags[@]}" --disable-xctest "${extra[@]}" 2>&1 | tee -a "$log" || test_code=$?
    test_time=$((SECONDS - start))
    test_line="$(grep -a "Test run with" "$log" | tail -1)"
    [ -n "$test_line" ] || test_line="no result line (the test process died: exit $test_code)"
    [ "$test_code" = 0 ] || { status=1; test_line="$test_line [exit $test_code]"; }

    if [ "${SANITIZE_CLI:-1}" = 1 ]; then
      echo "=== $kind sanitizer: Tests/cli-smoke.sh" | tee -a "$log"
      start=$SECONDS
      cli_code=0
      swift build "${swiftflags[@]}" --product prune 2>&1 | tee -a "$log" || cli_code=$?
      if [ "$cli_code" = 0 ]; then
        PRUNE_BIN="$(swift build "${swiftflags[@]}" --show-bin-path)/prune" Tests/cli-smoke.sh 2>&1 | tee -a "$log" || cli_code=$?
      fi
      cli_time=$((SECONDS - start))
      cli_line="$(grep -a "^cli-smoke: .* checks" "$log" | tail -1)"
      [ -n "$cli_line" ] || cli_line="no result line"
      [ "$cli_code" = 0 ] || { status=1; cli_line="$cli_line [exit $cli_code]"; }
    else
      cli_line="skipped (SANITIZE_CLI=0)"
    fi
  else
    status=1
    test_line="build failed (see $log)"
  fi

  # Each file is one process's sanitizer output. Every report ends with a "SUMMARY: …Sanitizer"
  # line; a fatal sanitizer error has "Sanitizer" and "FATAL" or "CHECK failed". Other output (the
  # list of matched suppressions) is shown but is not a report.
  report_count=0
  for f in "$reports"/*; do
    [ -s "$f" ] || continue
    n="$(grep -acE "^SUMMARY: [A-Za-z]+Sanitizer|Sanitizer.*(FATAL|CHECK failed)" "$f")"
    report_count=$((report_count + n))
    echo "=== $kind sanitizer output $f ($n report(s))" | tee -a "$log"
    swift demangle --simplified <"$f" | tee -a "$log"
  done
  [ "$report_count" = 0 ] || status=1
  summary+=("$kind: build $(duration "$build_time"); tests $(duration "$test_time"): $test_line")
  summary+=("$kind: cli-smoke $(duration "$cli_time"): $cli_line")
  summary+=("$kind: sanitizer reports: $report_count (files in $reports; log $log)")
done

echo
echo "=== sanitize summary"
printf '%s\n' "${summary[@]}"
if [ "$status" = 0 ]; then echo "sanitize: PASS"; else echo "sanitize: FAIL"; fi
exit "$status"
