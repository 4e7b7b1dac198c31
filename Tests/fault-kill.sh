#!/usr/bin/env bash
# Fault test: `prune model` killed with SIGKILL, at random times and at the delicate points of a
# run, then resumed with --resume (sometimes killed again while resuming), must write an output
# bit-identical to an uninterrupted run, leave no temporary file or folder behind, and never
# modify its input.
#
# The workload is a small seeded LLaMA model (`prune make-model`: 6 blocks, hidden 128) pruned with
# SparseGPT at 50% on 8 windows of 256 bytes of emma.txt, so one run takes under a second and the
# whole script well under a minute. The output folder is written next to the input model.
#
#   Tests/fault-kill.sh                      # default seed and number of random kills
#   FAULT_SEED=7 FAULT_RUNS=12 Tests/fault-kill.sh
#
# Every kill time and seed is printed, so a failure can be replayed. Called by Tests/cli-smoke.sh;
# needs only bash, coreutils and cmp. PRUNE_BIN may name an already built binary.
set -euo pipefail
cd "$(dirname "$0")/.."

. Tests/fault-common.sh  # BIN, failures, checks, fail
SEED="${FAULT_SEED:-20261126}"
RUNS="${FAULT_RUNS:-8}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
script_start=$(date +%s%N)

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# A seeded linear congruential generator (the same numbers on every machine, unlike $RANDOM).
# random_below N sets R to an integer in [0, N) (a variable, not output: $(...) would run it in a
# subshell and lose the state).
rng_state=$SEED
R=0
random_below() {
  rng_state=$(( (rng_state * 1103515245 + 12345) % 2147483648 ))
  R=$(( (rng_state / 65536) % $1 ))
}

# --- the input model, next to which the outputs are written --------------------------------------
M="$WORK/models"
mkdir -p "$M"
# A large embedding (32768 rows, 16 MB; the tokenizer uses 256 of them) makes the output write
# long enough for kills to land in it, without making pruning slower.
"$BIN" make-model --out "$M/tiny" --layers 6 --hidden 128 --intermediate 320 --vocab 32768 --seed 1 >/dev/null
MODEL="$M/tiny"
OUT="$M/tiny-pruned"
CKPT="$OUT.checkpoint"
REPORT="$M/tiny-pruned-report.json"
RUN=(model --model "$MODEL" --method sparsegpt --sparsity 0.5 --calib Fixtures/janeausten/emma.txt --nsamples 8 --seqlen 256
  --no-eval --threads 2 --out "$OUT" --report "$REPORT")
input_sums() { (cd "$MODEL" && sha256sum ./*); }
INPUT_SUMS="$(input_sums)"

# The report without what legitimately differs between an interrupted and an uninterrupted run:
# wall times ("seconds", "total_seconds", "seconds_by_phase"), peak memory, and which blocks were
# taken from the checkpoint ("resumed_blocks"). Everything else — every layer's error, sparsity, damping, the
# calibration digest, the totals — must be identical.
normalized_report() {
  sed -E -e '/"(seconds|total_seconds|peak_resident_bytes)" : /d' -e '/"resumed_blocks" : \[\]/d' "$1" |
    sed -e '/"resumed_blocks" : \[/,/\]/d' |
    sed -e '/"seconds_by_phase" : {/,/}/d'
}

# Leftovers of a run in the output's folder: temporaries (.NAME.partial-*, ..NAME.partial-*,
# .NAME.tmp-*, .NAME.checkpoint.partial-*) and the checkpoint folder.
leftovers() {
  (cd "$M" && ls -A | grep -E '^\.\.?tiny-pruned|^tiny-pruned\.checkpoint$' || true)
  [ -d "$OUT" ] && (cd "$OUT" && ls -A | grep -E '^\.' || true)
  return 0
}

# --- the uninterrupted reference -----------------------------------------------------------------
# First with its progress lines timed, to know how long before the end the output write starts;
# then again untimed (the timing slows it down), for its duration and to check that two
# uninterrupted runs agree.
t0=$(now_ms)
{ "$BIN" "${RUN[@]}" 2>&1 >/dev/null; } | while IFS= read -r line; do echo "$(( $(now_ms) - t0 )) $line"; done \
  >"$WORK/ref.timeline" || { cat "$WORK/ref.timeline" >&2; exit 1; }
WRITE_BEFORE_END=$(( $(now_ms) - t0 - $(grep -m1 ' model: writing ' "$WORK/ref.timeline" | cut -d' ' -f1) ))
mv "$OUT" "$WORK/reference"
mv "$REPORT" "$WORK/reference-report.json"
REF_MS=1000000
for _ in 1 2; do
  t0=$(now_ms)
  "$BIN" "${RUN[@]}" >/dev/null 2>"$WORK/run.stderr" || { cat "$WORK/run.stderr" >&2; exit 1; }
  t=$(( $(now_ms) - t0 ))
  [ "$t" -lt "$REF_MS" ] && REF_MS=$t
  checks=$((checks + 1))
  cmp -s "$OUT/model.safetensors" "$WORK/reference/model.safetensors" || fail "two uninterrupted runs wrote different weights"
  rm -rf "$OUT" "$REPORT"
done
WRITE_MS=$(( REF_MS > WRITE_BEFORE_END ? REF_MS - WRITE_BEFORE_END : 0 ))
normalized_report "$WORK/reference/pruning-report.json" >"$WORK/reference.norm"
[ -s "$WORK/reference/model.safetensors" ] || { echo "fault-kill: the reference run wrote no model" >&2; exit 1; }
echo "fault-kill: seed $SEED; reference run ${REF_MS} ms, output write from ${WRITE_MS} ms; $(ls "$WORK/reference" | tr '\n' ' ')"

# Runs the command in the background, kills it with SIGKILL after $1 ms (or lets it finish), and
# sets `status` to its exit status.
run_killed_after() {
  local delay_ms="$1"; shift
  "$BIN" "${RUN[@]}" "$@" >"$WORK/run.stdout" 2>"$WORK/run.stderr" &
  local pid=$!
  if [ "$delay_ms" -gt 0 ]; then sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"; fi
  kill -9 "$pid" 2>/dev/null || true
  status=0
  wait "$pid" 2>/dev/null || status=$?
}

# What the output folder's neighbourhood holds after a kill: where the kill landed.
state_after_kill() {
  local blocks=0 tmp=0
  if [ -d "$CKPT" ]; then
    blocks=$(ls "$CKPT" | grep -c '^block-' || true)
    tmp=$(ls -A "$CKPT" | grep -c '\.tmp-' || true)
  fi
  local staging=no
  # The output is completed inside the checkpoint folder (its shards exist from the start; the
  # small files come last), or, for older versions, in a temporary folder beside it.
  ls -A "$M" | grep -qE '^\.\.?tiny-pruned\.partial-' && staging=yes
  [ -f "$CKPT/output/config.json" ] && staging=yes
  local where
  if [ ! -d "$CKPT" ] && [ ! -d "$OUT" ]; then where="before the checkpoint folder"
  elif [ -d "$OUT" ] && [ -d "$CKPT" ]; then where="after the output rename, before checkpoint removal"
  elif [ -d "$OUT" ]; then where="after the run finished"
  elif [ "$staging" = yes ]; then where="during the output write"
  elif [ "$tmp" -gt 0 ]; then where="during a checkpoint write"
  else where="while pruning"
  fi
  echo "$where (checkpoint blocks: $blocks, half-written block files: $tmp, staging folder: $staging)"
}

# Checks the output of a finished trial against the reference, and that nothing is left behind.
check_trial() {
  local name="$1"
  checks=$((checks + 1))
  if [ ! -d "$OUT" ]; then fail "$name: no output folder after the resume"; return; fi
  local f
  for f in $(ls "$WORK/reference"); do
    [ "$f" = pruning-report.json ] && continue
    cmp -s "$WORK/reference/$f" "$OUT/$f" || fail "$name: $f differs from the uninterrupted run"
  done
  [ "$(ls "$OUT")" = "$(ls "$WORK/reference")" ] || fail "$name: the output holds $(ls "$OUT" | tr '\n' ' ')"
  normalized_report "$OUT/pruning-report.json" | cmp -s - "$WORK/reference.norm" ||
    fail "$name: pruning-report.json differs beyond timings: $(normalized_report "$OUT/pruning-report.json" | diff - "$WORK/reference.norm" | head -5 | tr '\n' ' ')"
  normalized_report "$REPORT" | cmp -s - "$WORK/reference.norm" || fail "$name: --report differs from the uninterrupted run"
  local left; left="$(leftovers)"
  [ -z "$left" ] || fail "$name: left behind: $left"
  [ "$(input_sums)" = "$INPUT_SUMS" ] || fail "$name: the input model was modified"
  rm -rf "$OUT" "$REPORT"
}

# One trial: a first run killed as told, optionally a resume killed after a random time, then a
# resume that must finish. KIND is "after MS" (SIGKILL from outside) or "at POINT" (PRUNEKIT_KILL_AT).
landed=()
trial() {
  local name="$1" kind="$2" value="$3" second="${4:-}"
  if [ "$kind" = watch ]; then
    # SIGKILL from outside, $value ms after the output's temporary folder appears.
    "$BIN" "${RUN[@]}" >"$WORK/run.stdout" 2>"$WORK/run.stderr" &
    local pid=$!
    for _ in $(seq 1 3000); do
      ls -A "$M" | grep -qE '^\.\.?tiny-pruned\.partial-' && break
      [ -f "$CKPT/output/config.json" ] && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.002
    done
    [ "$value" -gt 0 ] && sleep "0.$(printf '%03d' "$value")"
    kill -9 "$pid" 2>/dev/null || true
    status=0
    wait "$pid" 2>/dev/null || status=$?
  elif [ "$kind" = at ]; then
    PRUNEKIT_KILL_AT="$value" "$BIN" "${RUN[@]}" >"$WORK/run.stdout" 2>"$WORK/run.stderr" &
    local pid=$!
    status=0
    wait "$pid" 2>/dev/null || status=$?
    [ "$status" -eq 137 ] || fail "$name: PRUNEKIT_KILL_AT=$value did not kill the run (exit $status): $(tail -2 "$WORK/run.stderr")"
  else
    run_killed_after "$value"
  fi
  local where; where="$(state_after_kill)"
  landed+=("$where")
  local line="$name: killed $kind $value ms → $where"
  [ "$kind" = at ] && line="$name: killed at $value → $where"
  [ "$kind" = watch ] && line="$name: killed $value ms after the output write began → $where"
  finished() { [ -d "$OUT" ] && [ ! -d "$CKPT" ]; }
  if [ -n "$second" ] && ! finished; then
    run_killed_after "$second" --resume
    line+="; resume killed after $second ms → $(state_after_kill)"
  fi
  if finished; then
    echo "  $line; nothing to resume"
  else
    local code=0
    "$BIN" "${RUN[@]}" --resume >"$WORK/run.stdout" 2>"$WORK/run.stderr" || code=$?
    if [ "$code" -ne 0 ]; then
      fail "$name: the final resume failed (exit $code): $(cat "$WORK/run.stderr")"
      rm -rf "$OUT" "$CKPT" "$REPORT"
      return
    fi
    echo "  $line; resume took $(grep -c '^model: resumed' "$WORK/run.stderr" || true) block(s) from the checkpoint"
  fi
  check_trial "$name"
}

# --- kills at the delicate points (deterministic) ------------------------------------------------
echo "fault-kill: kills at chosen points"
trial "point 1" after 0                 # right at start, before the model is read
trial "point 2" at started              # the checkpoint folder exists, no block in it
trial "point 3" at block-2              # between two checkpoint files
trial "point 4" at writing              # every block checkpointed, the output not begun
trial "point 5" at written              # the output renamed into place, the checkpoint not yet removed
trial "point 6" at block-1 "$((REF_MS / 2))"  # killed again while resuming

# --- kills at random times, one in each of RUNS equal slices of the reference run, plus three in
# its output write; every other resume is killed again at a random time ---------------------------
echo "fault-kill: $RUNS kills at random times over ${REF_MS} ms (seed $SEED)"
# (The slices cover 90% of the shortest reference run: runs vary, and a kill after the end tests nothing.)
slice=$(( (REF_MS * 9 / 10 + RUNS - 1) / RUNS ))
for i in $(seq 1 "$RUNS"); do
  random_below "$slice"
  delay=$(( (i - 1) * slice + R ))
  again=""
  if [ $((i % 2)) -eq 0 ]; then random_below "$REF_MS"; again=$R; fi
  trial "random $i" after "$delay" "$again"
done
# The output write, from the "writing" line to the end of the reference run (runs vary by some
# tens of ms, so not every one of these lands inside it).
for i in 1 2; do
  random_below $((REF_MS - WRITE_MS + 1))
  trial "random write $i" after "$((WRITE_MS + R))"
done
# Runs vary by more than the write lasts, so two kills are timed from the moment the output's
# temporary folder appears instead.
for i in 1 2; do
  random_below $(( (REF_MS - WRITE_MS) / 4 + 1 ))
  trial "write watched $i" watch "$R"
done

# --- where the kills landed ------------------------------------------------------------------------
echo "fault-kill: where the first kills landed:"
printf '%s\n' "${landed[@]}" | sed -E 's/ \(.*//' | sort | uniq -c | sed 's/^/  /'
# The chosen points land before the checkpoint folder, while pruning and after the rename by
# construction; a kill inside the output write is only likely (timed from outside), so missing it
# is reported, not failed: a loaded CI machine must not turn timing luck into a red build. The
# Swift test FaultTests covers a failure inside the output write deterministically.
for phase in "before the checkpoint folder" "while pruning" "after the output rename, before checkpoint removal"; do
  checks=$((checks + 1))
  printf '%s\n' "${landed[@]}" | grep -qF "$phase" || fail "no kill landed $phase"
done
printf '%s\n' "${landed[@]}" | grep -qF "during the output write" \
  || echo "fault-kill: note: no kill landed during the output write this time (timing); see FaultTests"

# --- a BF16 model written as BF16 shards ------------------------------------------------------------
# The pruned weights are rounded to BF16 before they are installed, so a resume continues from the
# weights the output holds: the shards (5 of about 1 MB) and their index must come out bit-identical.
echo "fault-kill: BF16 in, BF16 shards out"
"$BIN" make-model --out "$M/tiny16" --layers 6 --hidden 128 --intermediate 320 --vocab 4096 --dtype bf16 --untied \
  --seed 2 >/dev/null
MODEL="$M/tiny16"
INPUT_SUMS="$(input_sums)"
RUN=(model --model "$MODEL" --method sparsegpt --sparsity 0.5 --calib Fixtures/janeausten/emma.txt --nsamples 8 --seqlen 256
  --no-eval --threads 2 --out "$OUT" --report "$REPORT" --shard-size 1MB)
rm -rf "$WORK/reference" "$WORK/reference-report.json"
"$BIN" "${RUN[@]}" >/dev/null 2>"$WORK/run.stderr" || { cat "$WORK/run.stderr" >&2; exit 1; }
mv "$OUT" "$WORK/reference"
rm -f "$REPORT"
normalized_report "$WORK/reference/pruning-report.json" >"$WORK/reference.norm"
checks=$((checks + 1))
[ -f "$WORK/reference/model.safetensors.index.json" ] && grep -q '"dtype" : "BF16"' "$WORK/reference/pruning-report.json" \
  || fail "bf16: the reference is not BF16 shards: $(ls "$WORK/reference" | tr '\n' ' ')"
trial "bf16 point 1" at block-2
trial "bf16 point 2" at writing
trial "bf16 point 3" at written
trial "bf16 point 4" at block-1 "$((REF_MS / 2))"

elapsed=$(( ($(date +%s%N) - script_start) / 1000000 ))
echo "fault-kill: $checks checks, $failures failures, ${elapsed} ms"
[ "$failures" -eq 0 ]
