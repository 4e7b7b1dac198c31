#!/usr/bin/env bash
# Fault test: a full disk and unwritable output folders. Each failing command must exit non-zero
# with one line on standard error that names the file (or folder) and says what to do, leave no
# partial output (no output folder, no temporary file or folder), keep what an earlier run wrote
# (checkpoint, previous outputs), and never modify its input; a failed `prune model` then resumes
# to an output bit-identical to an uninterrupted run.
#
#   - a full disk is simulated with `ulimit -f` (RLIMIT_FSIZE; applies to root too; the CLI ignores
#     SIGXFSZ, so a write beyond the limit fails with EFBIG instead of killing the process), and,
#     where this machine lets us mount, with a small tmpfs filled up while a run is stopped at a
#     chosen point (PRUNEKIT_STOP_AT);
#   - an unwritable folder with a read-only tmpfs (where we may mount), and, everywhere (also for
#     root), an output whose folder is a file, does not exist, or which is an existing file.
#
# Workload: the small seeded model of `prune make-model` (6 blocks, hidden 128). Called by
# Tests/cli-smoke.sh; needs bash, coreutils and cmp (and mount for the tmpfs cases, skipped with
# the reason otherwise). PRUNE_BIN may name an already built binary.
set -euo pipefail
cd "$(dirname "$0")/.."

. Tests/fault-common.sh  # BIN, failures, checks, fail
WORK="$(mktemp -d)"
MOUNTS=()
cleanup() {
  for m in "${MOUNTS[@]+"${MOUNTS[@]}"}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
script_start=$(date +%s%N)


# failing CODE DESCRIPTION FRAGMENT... -- COMMAND...: must exit CODE with exactly one line on
# standard error holding every FRAGMENT and "Hint:". The line is printed, for the record.
failing() {
  local want="$1" what="$2"; shift 2
  local fragments=()
  while [ "$1" != -- ]; do fragments+=("$1"); shift; done
  shift
  checks=$((checks + 1))
  local code=0
  "$@" >"$WORK/stdout" 2>"$WORK/stderr" || code=$?
  local err; err="$(cat "$WORK/stderr")"
  echo "  $what: exit $code: $err"
  [ "$code" -eq "$want" ] || fail "$what: exit $code, want $want"
  local f
  for f in "${fragments[@]}" "Hint:"; do grep -qF -- "$f" "$WORK/stderr" || fail "$what: the message lacks '$f'"; done
  [ "$(wc -l <"$WORK/stderr")" -eq 1 ] || fail "$what: the message is not one line"
}

# no_leftovers DESCRIPTION FOLDER NAME: FOLDER holds no NAME and no temporary of NAME.
no_leftovers() {
  checks=$((checks + 1))
  local left
  left="$(ls -A "$2" | grep -E "^\.\.?$3(\.|$)|^$3$" | grep -v "^$3\.checkpoint$" || true)"
  [ -z "$left" ] || fail "$1: left behind in $2: $(echo "$left" | tr '\n' ' ')"
}

# The checkpoint folder CKPT holds run.json and exactly BLOCKS block files, and no temporary file.
checkpoint_holds() {
  checks=$((checks + 1))
  local what="$1" ckpt="$2" blocks="$3"
  if [ ! -f "$ckpt/run.json" ]; then fail "$what: the checkpoint lost run.json"; return; fi
  local n; n=$(ls "$ckpt" | grep -c '^block-' || true)
  [ "$n" -eq "$blocks" ] || fail "$what: the checkpoint holds $n blocks, want $blocks"
  ! ls -A "$ckpt" | grep -q '^\.' || fail "$what: temporary files in the checkpoint: $(ls -A "$ckpt" | grep '^\.' | tr '\n' ' ')"
}

# same_as_reference DESCRIPTION DIR: every file of DIR equals the reference's, the report up to
# timings, paths and resumed blocks (Tests/fault-kill.sh explains which fields may differ).
normalized_report() {
  sed -E -e '/"(seconds|total_seconds|peak_resident_bytes|output)" : /d' -e '/"resumed_blocks" : \[\]/d' "$1" |
    sed -e '/"resumed_blocks" : \[/,/\]/d' |
    sed -e '/"seconds_by_phase" : {/,/}/d'
}
same_as_reference() {
  checks=$((checks + 1))
  local f
  for f in $(ls "$WORK/reference"); do
    [ "$f" = pruning-report.json ] && continue
    cmp -s "$WORK/reference/$f" "$2/$f" || fail "$1: $f differs from the uninterrupted run"
  done
  normalized_report "$2/pruning-report.json" | cmp -s - <(normalized_report "$WORK/reference/pruning-report.json") ||
    fail "$1: pruning-report.json differs beyond timings"
}

# --- the input model -------------------------------------------------------------------------------
M="$WORK/models"
mkdir -p "$M"
"$BIN" make-model --out "$M/tiny" --layers 6 --hidden 128 --intermediate 320 --seed 1 >/dev/null
MODEL="$M/tiny"
input_sums() { (cd "$MODEL" && sha256sum ./*); }
INPUT_SUMS="$(input_sums)"
RUN=(model --model "$MODEL" --method sparsegpt --sparsity 0.5 --calib Fixtures/janeausten/emma.txt --nsamples 8 --seqlen 256
  --no-eval --threads 2 --quiet)
"$BIN" "${RUN[@]}" --out "$WORK/reference" >/dev/null
# Sizes: the output's model.safetensors, and one block of `prune sweep`'s checkpoint (its linear
# layers in F32: q, o 128×128, k, v 64×128, gate, up, down 320×128, 172032 floats, 672 KB).
MODEL_KB=$(( $(stat -c %s "$WORK/reference/model.safetensors") / 1024 ))
BLOCK_KB=672
echo "fault-disk: a sweep checkpoint block is $BLOCK_KB KB, the output's model.safetensors $MODEL_KB KB"

# --- a full disk, as a file-size limit (ulimit -f, in KB) --------------------------------------------
echo "fault-disk: file-size limit (ulimit -f)"
O="$M/out"
limited() { local kb="$1"; shift; (ulimit -f "$kb"; exec "$@"); }

# The output's shards are the checkpoint, created at their full size before the first block: a
# limit below the output stops the run there, with nothing left behind; the run then succeeds.
failing 1 "model, output beyond the limit" "cannot create $O.checkpoint/output/model.safetensors" "File too large" "ulimit -f" -- \
  limited $((MODEL_KB / 2)) "$BIN" "${RUN[@]}" --out "$O"
no_leftovers "model, output beyond the limit" "$M" out
checks=$((checks + 1))
[ ! -e "$O.checkpoint" ] || fail "model, output beyond the limit: left $O.checkpoint behind"
"$BIN" "${RUN[@]}" --out "$O" >/dev/null || fail "model, output beyond the limit: the run without the limit failed"
same_as_reference "model, output beyond the limit, run again" "$O"
no_leftovers "model, output beyond the limit, run again" "$M" out.checkpoint
rm -rf "$O"

# Spilled activations beyond the limit (64 windows of 256 tokens × hidden 128 in Float: an 8 MB
# file, larger than the output): the run stops with one line naming the spill folder, removes it,
# and --resume without the limit writes the bytes of the in-memory run.
SPILL=(model --model "$MODEL" --method sparsegpt --sparsity 0.5 --calib Fixtures/janeausten/emma.txt --nsamples 64
  --seqlen 256 --no-eval --threads 2 --quiet)
"$BIN" "${SPILL[@]}" --spill never --out "$WORK/spill-reference" >/dev/null
failing 1 "model, spilled activations beyond the limit" "spilling the calibration activations to $O.spill" \
  "cannot write $O.spill/input-000.f32" "File too large" -- \
  limited $((MODEL_KB + 256)) "$BIN" "${SPILL[@]}" --spill always --out "$O"
checks=$((checks + 1))
[ ! -e "$O.spill" ] || fail "model, spilled activations beyond the limit: left $O.spill behind"
no_leftovers "model, spilled activations beyond the limit" "$M" out
"$BIN" "${SPILL[@]}" --spill always --resume --out "$O" >/dev/null ||
  fail "model, spilled activations beyond the limit: --resume without the limit failed"
checks=$((checks + 1))
cmp -s "$O/model.safetensors" "$WORK/spill-reference/model.safetensors" ||
  fail "model, spilled activations beyond the limit: the resumed output differs from the in-memory run's"
checks=$((checks + 1))
[ ! -e "$O.spill" ] && [ ! -e "$O.checkpoint" ] || fail "model, spilled, resumed: left $O.spill or $O.checkpoint"
rm -rf "$O"

# prune layer: every output or none; the outputs of an earlier run stay as they were.
L="$WORK/layer"
mkdir -p "$L"
"$BIN" make-problem --out "$L/p.safetensors" --rows 64 --columns 256 --tokens 512 --seed 3 >/dev/null
LAYER=(layer --problem "$L/p.safetensors" --sparsity 0.5 --out "$L/w.safetensors" --mask-out "$L/m.safetensors" --report "$L/r.json")
"$BIN" "${LAYER[@]}" --method wanda >/dev/null
for f in w.safetensors m.safetensors r.json; do cp "$L/$f" "$L/$f.before"; done
problem_sum="$(sha256sum "$L/p.safetensors")"
failing 1 "layer, weight beyond the limit" "cannot write $L/w.safetensors" "File too large" "ulimit -f" -- \
  limited 32 "$BIN" "${LAYER[@]}" --method sparsegpt
for f in w.safetensors m.safetensors r.json; do
  checks=$((checks + 1))
  cmp -s "$L/$f" "$L/$f.before" || fail "layer: the earlier $f was changed by the failed run"
done
checks=$((checks + 1))
! ls -A "$L" | grep -q '\.tmp-' || fail "layer: temporary files left: $(ls -A "$L" | grep '\.tmp-' | tr '\n' ' ')"
[ "$(sha256sum "$L/p.safetensors")" = "$problem_sum" ] || fail "layer: the problem file was modified"

# prune merge of two corrected-schedule parts.
C=(model --model "$MODEL" --method sparsegpt --schedule corrected --sparsity 0.5 --calib Fixtures/janeausten/emma.txt
  --nsamples 8 --seqlen 256 --no-eval --threads 2 --quiet)
"$BIN" "${C[@]}" --blocks 0-2 --out "$M/part1" >/dev/null
"$BIN" "${C[@]}" --blocks 3-5 --out "$M/part2" >/dev/null
parts_sum="$(cat "$M"/part1/* "$M"/part2/* | sha256sum)"
failing 1 "merge beyond the limit" "cannot write $M/merged/model.safetensors" "File too large" "run the merge again" -- \
  limited $((MODEL_KB / 2)) "$BIN" merge --model "$MODEL" --parts "$M/part1,$M/part2" --out "$M/merged"
no_leftovers "merge" "$M" merged
checks=$((checks + 1))
[ "$(cat "$M"/part1/* "$M"/part2/* | sha256sum)" = "$parts_sum" ] || fail "merge: a part was modified"

# prune sweep: the table keeps the entries finished before the disk filled up; a rerun continues.
S="$WORK/sweep"
SWEEP=(sweep --model "$MODEL" --methods magnitude --sparsities 0.5 --protocol austen-quick --threads 2 --quiet --out "$S")
failing 1 "sweep, checkpoint beyond the limit" "cannot write block 0" "File too large" -- limited $((BLOCK_KB / 2)) "$BIN" "${SWEEP[@]}"
checks=$((checks + 1))
grep -q '"method" : "dense"' "$S/sweep.json" || fail "sweep: the dense entry was not kept"
"$BIN" "${SWEEP[@]}" >/dev/null || fail "sweep: the rerun failed"
checks=$((checks + 1))
grep -q '"method" : "magnitude"' "$S/sweep.json" || fail "sweep: the rerun did not add the magnitude entry"
checks=$((checks + 1))
! ls -A "$S" "$S/checkpoints" | grep -q '^\.' || fail "sweep: temporary files left in $S"

# --- a full and a read-only file system, as a small tmpfs (needs mount: root with CAP_SYS_ADMIN) --
T="$WORK/tmpfs"
mkdir -p "$T"
if mount -t tmpfs -o size=2m tmpfs "$T" 2>"$WORK/mount.err"; then
  MOUNTS+=("$T")
  echo "fault-disk: tmpfs"
  # Too small from the start: refused before any work.
  failing 1 "model, tmpfs too small" "not enough free space in $T" "free space" -- "$BIN" "${RUN[@]}" --out "$T/out"
  checks=$((checks + 1))
  [ -z "$(ls -A "$T")" ] || fail "tmpfs too small: left behind: $(ls -A "$T" | tr '\n' ' ')"

  # Room at the start; the disk fills up while the run is stopped at POINT.
  mount -o remount,size=24m "$T"
  fill_at() {  # fill_at POINT: runs until POINT, fills the tmpfs, lets the run continue
    PRUNEKIT_STOP_AT="$1" "$BIN" "${RUN[@]}" --out "$T/out" >"$WORK/stdout" 2>"$WORK/stderr" &
    local pid=$! state=""
    for _ in $(seq 1 1500); do
      state="$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null || true)"
      [ "$state" = T ] && break
      sleep 0.02
    done
    [ "$state" = T ] || fail "PRUNEKIT_STOP_AT=$1: the run did not stop"
    dd if=/dev/zero of="$T/filler" bs=64k 2>/dev/null || true
    kill -CONT "$pid"
    status=0
    wait "$pid" || status=$?
  }
  for point in block-1 writing; do
    fill_at "$point"
    checks=$((checks + 1))
    err="$(grep -v 'PRUNEKIT_STOP_AT' "$WORK/stderr" || true)"
    echo "  model, disk full after $point: exit $status: $err"
    [ "$status" -eq 1 ] || fail "disk full after $point: exit $status, want 1"
    echo "$err" | grep -qF "No space left on device" || fail "disk full after $point: the message does not say the disk is full"
    echo "$err" | grep -qF "free space" || fail "disk full after $point: the message does not say what to do"
    [ "$(echo "$err" | wc -l)" -eq 1 ] || fail "disk full after $point: the message is not one line"
    no_leftovers "disk full after $point" "$T" out
    if [ "$point" = writing ]; then checkpoint_holds "disk full after $point" "$T/out.checkpoint" 6
    else checkpoint_holds "disk full after $point" "$T/out.checkpoint" 2; fi
    rm -f "$T/filler"
    "$BIN" "${RUN[@]}" --out "$T/out" --resume >/dev/null || fail "disk full after $point: the resume failed"
    same_as_reference "disk full after $point, resumed" "$T/out"
    rm -rf "$T/out"
  done

  # Read-only: refused before any work, by every command that writes.
  mount -o remount,ro "$T"
  failing 2 "model, read-only folder" "cannot create files in $T" "Read-only file system" -- "$BIN" "${RUN[@]}" --out "$T/out"
  failing 2 "layer, read-only folder" "cannot create files in $T" "Read-only file system" -- \
    "$BIN" layer --problem "$L/p.safetensors" --method wanda --sparsity 0.5 --out "$T/w.safetensors"
  failing 1 "sweep, read-only folder" "cannot write $T/s" "Read-only file system" -- "$BIN" sweep --model "$MODEL" --methods magnitude \
    --sparsities 0.5 --out "$T/s"
  failing 2 "merge, read-only folder" "cannot create files in $T" "Read-only file system" -- \
    "$BIN" merge --model "$MODEL" --parts "$M/part1,$M/part2" --out "$T/merged"
else
  echo "fault-disk: tmpfs cases skipped: cannot mount a tmpfs here ($(head -1 "$WORK/mount.err"))"
fi

# --- unwritable outputs that fail for root too -------------------------------------------------------
echo "fault-disk: outputs that cannot be created"
touch "$WORK/a-file"
before="$(ls -A "$WORK")"
failing 2 "model, --out inside a file" "$WORK/a-file is a file, not a folder" -- "$BIN" "${RUN[@]}" --out "$WORK/a-file/out"
failing 2 "model, --out is a file" "--out $WORK/a-file already exists" -- "$BIN" "${RUN[@]}" --out "$WORK/a-file"
failing 2 "model, --out in a missing folder" "the folder $WORK/none/sub for --out" "does not exist" "mkdir -p" -- "$BIN" "${RUN[@]}" --out "$WORK/none/sub/out"
failing 2 "model, --report inside a file" "$WORK/a-file is a file, not a folder" -- "$BIN" "${RUN[@]}" --out "$WORK/o" --report "$WORK/a-file/r.json"
failing 2 "layer, --out inside a file" "$WORK/a-file is a file, not a folder" -- \
  "$BIN" layer --problem "$L/p.safetensors" --method wanda --sparsity 0.5 --out "$WORK/a-file/w.safetensors"
failing 2 "layer, --out in a missing folder" "the folder $WORK/none for --out" "does not exist" -- \
  "$BIN" layer --problem "$L/p.safetensors" --method wanda --sparsity 0.5 --out "$WORK/none/w.safetensors"
failing 2 "layer, --out is a folder" "--out $WORK/models is a folder" -- \
  "$BIN" layer --problem "$L/p.safetensors" --method wanda --sparsity 0.5 --out "$WORK/models"
failing 2 "merge, --out inside a file" "$WORK/a-file is a file, not a folder" -- \
  "$BIN" merge --model "$MODEL" --parts "$M/part1,$M/part2" --out "$WORK/a-file/m"
failing 2 "sweep, --out is a file" "--out $WORK/a-file is a file" -- "$BIN" sweep --model "$MODEL" --methods magnitude --sparsities 0.5 --out "$WORK/a-file"
checks=$((checks + 1))
[ "$(ls -A "$WORK")" = "$before" ] || fail "the failed commands created: $(diff <(echo "$before") <(ls -A "$WORK") | grep '^>' | tr '\n' ' ')"

checks=$((checks + 1))
[ "$(input_sums)" = "$INPUT_SUMS" ] || fail "the input model was modified"
elapsed=$(( ($(date +%s%N) - script_start) / 1000000 ))
echo "fault-disk: $checks checks, $failures failures, ${elapsed} ms"
[ "$failures" -eq 0 ]
