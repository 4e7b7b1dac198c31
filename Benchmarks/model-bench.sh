#!/usr/bin/env bash
# Wall time and peak memory of `prune model` per method on SmolLM2 + austen-quick (issue 5's speed
# targets on 2 cores: SparseGPT ≤ 3 min, FISTA ≤ 12 min, peak memory ≤ 2 GB). Each method runs in
# its own process and prints one JSON line (`prune model --json`): method, pattern, schedule,
# prune_seconds, total_seconds, peak_rss_mb (getrusage), perplexity, realised sparsity, threads.
# prune_seconds is the pruning loop; total_seconds adds loading, evaluation and writing the folder.
#
#   Benchmarks/model-bench.sh [METHODS] [PATTERN]     default: magnitude,wanda,sparsegpt,admm,fista 0.5
set -euo pipefail
cd "$(dirname "$0")/.."
methods="${1:-magnitude,wanda,sparsegpt,admm,fista}"
pattern="${2:-0.5}"
model=".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$model" ] || scripts/fetch-model.sh >/dev/null
swift build -c release --product prune >/dev/null
bin="$(swift build -c release --show-bin-path)/prune"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [[ "$pattern" == *:* ]]; then flag=(--pattern "$pattern"); else flag=(--sparsity "$pattern"); fi
for m in ${methods//,/ }; do
  extra=()
  [ "$m" = fista ] && extra=(--preset paper --warm-start sparsegpt)  # the results table's FISTA
  "$bin" model --model "$model" --method "$m" "${flag[@]}" "${extra[@]}" --protocol austen-quick \
    --out "$work/$m" --quiet --json
  rm -rf "$work/$m"
done
