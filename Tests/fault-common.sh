# Shared set-up of Tests/fault-kill.sh and Tests/fault-disk.sh; sourced, not run.
#
# BIN: the prune binary under test, $PRUNE_BIN if given (cli-smoke passes its own), else a release
# build made here. fail MESSAGE counts a failure and prints it; each script counts its checks.
if [ -z "${PRUNE_BIN:-}" ]; then
  swift build -c release --product prune >/dev/null
  PRUNE_BIN="$(swift build -c release --show-bin-path)/prune"
fi
BIN="$PRUNE_BIN"
failures=0
checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
