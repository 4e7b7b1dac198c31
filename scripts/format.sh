#!/usr/bin/env bash
# Formats every Swift file of the package with the toolchain's swift-format and the repository's
# .swift-format (2-space indent, lines up to 120 columns; long string literals and comments are
# left to the author). `scripts/format.sh FILE...` formats only those files;
# `scripts/format.sh --check [FILE...]` lists the files that would change and exits 1 if any
# would, without writing.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(git ls-files '*.swift'); fi
if [ $check = 1 ]; then
  changed=0
  for f in "${files[@]}"; do
    if ! swift-format format "$f" | cmp -s - "$f"; then echo "would reformat: $f"; changed=1; fi
  done
  exit $changed
fi
swift-format format -i --parallel "${files[@]}"
