#!/usr/bin/env bash
# CLI smoke test for `prune layer`, `prune vectors` and `prune verify`: builds the release binary,
# writes small seeded layer problems with the hidden `prune make-problem` helper (no Python, no
# model), runs every method, writes the synthetic test vectors and certifies an optimum (pass) and
# perturbed candidates (fail), and checks the exit code and the one-line error message of every
# bad-input case; then runs the fault tests Tests/fault-kill.sh (kills and resumes of `prune model`)
# and Tests/fault-disk.sh (full disk, unwritable outputs). Run from anywhere:
#   Tests/cli-smoke.sh
# .ci/run calls it after `swift test`. It needs only bash, coreutils, grep and cmp.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -n "${PRUNE_BIN:-}" ] || swift build -c release --product prune  # PRUNE_BIN: test that binary instead
BIN="${PRUNE_BIN:-$(swift build -c release --show-bin-path)/prune}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

failures=0
checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# ok DESCRIPTION -- COMMAND...: must exit 0 with nothing on standard error.
ok() {
  local what="$1"; shift 2
  checks=$((checks + 1))
  local code=0
  "$@" >"$WORK/stdout" 2>"$WORK/stderr" || code=$?
  if [ "$code" -ne 0 ]; then fail "$what: exit $code: $(cat "$WORK/stderr")"; return; fi
  if [ -s "$WORK/stderr" ]; then fail "$what: unexpected standard error: $(cat "$WORK/stderr")"; fi
}

# bad CODE FRAGMENT DESCRIPTION -- COMMAND...: must exit CODE with exactly one line on standard
# error that contains FRAGMENT and "Hint:", and write nothing to $WORK/out.safetensors.
bad() {
  local want="$1" fragment="$2" what="$3"; shift 4
  checks=$((checks + 1))
  rm -f "$WORK/out.safetensors"
  local code=0
  "$@" >"$WORK/stdout" 2>"$WORK/stderr" || code=$?
  local err; err="$(cat "$WORK/stderr")"
  if [ "$code" -ne "$want" ]; then fail "$what: exit $code, want $want: $err"; return; fi
  if ! grep -qF -- "$fragment" "$WORK/stderr"; then fail "$what: message lacks '$fragment': $err"; fi
  if ! grep -qF "Hint:" "$WORK/stderr"; then fail "$what: message has no hint: $err"; fi
  if [ "$(wc -l <"$WORK/stderr")" -ne 1 ]; then fail "$what: message is not one line: $err"; fi
  if [ -e "$WORK/out.safetensors" ]; then fail "$what: wrote an output despite the error"; fi
}

P="$WORK/p.safetensors"
OUT="$WORK/out.safetensors"

# --- help ---------------------------------------------------------------------------------------
ok "prune help" -- "$BIN" help
grep -q "layer" "$WORK/stdout" || fail "prune help does not list layer"
for command in verify vectors; do grep -q "^  $command" "$WORK/stdout" || fail "prune help does not list $command"; done
grep -q "make-problem" "$WORK/stdout" && fail "prune help lists the hidden make-problem"
ok "prune help layer" -- "$BIN" help layer
# Every option under its name, and the references' spellings as aliases.
for option in block-size damping iterations lambda-steps initial-lambda subset max-masks least-squares-damping \
  blocksize percdamp lambda ls-damping; do
  grep -qE -- "--$option([^a-z-]|\$)" "$WORK/stdout" || fail "prune help layer does not list --$option"
done

# --- problems -----------------------------------------------------------------------------------
ok "make-problem inputs" -- "$BIN" make-problem --out "$P" --rows 8 --columns 16 --tokens 64 --seed 1
ok "make-problem gram" -- "$BIN" make-problem --out "$WORK/gram.safetensors" --form gram --seed 2
ok "make-problem corrected" -- "$BIN" make-problem --out "$WORK/corr.safetensors" --form corrected --seed 3
ok "make-problem small" -- "$BIN" make-problem --out "$WORK/small.safetensors" --rows 4 --columns 8 --seed 4
for defect in no-weight no-data inputs-shape nan-inputs inf-weight truncated; do
  ok "make-problem $defect" -- "$BIN" make-problem --out "$WORK/$defect.safetensors" --defect "$defect"
done
for defect in gram-shape asymmetric; do
  ok "make-problem $defect" -- "$BIN" make-problem --out "$WORK/$defect.safetensors" --form gram --defect "$defect"
done
ok "make-problem no-dense-gram" -- "$BIN" make-problem --out "$WORK/no-dense-gram.safetensors" --form corrected --defect no-dense-gram

# --- every method -------------------------------------------------------------------------------
for method in magnitude wanda sparsegpt admm alps fista refit apt exact; do
  if [ "$method" = exact ]; then pattern=(--pattern 2:4); else pattern=(--sparsity 0.5); fi
  ok "$method" -- "$BIN" layer --problem "$P" --method "$method" "${pattern[@]}" \
    --out "$WORK/w-$method.safetensors" --report "$WORK/r-$method.json" --mask-out "$WORK/m-$method.safetensors"
  grep -q "sparsity 0.5000" "$WORK/stdout" || fail "$method: summary lacks the realised sparsity: $(cat "$WORK/stdout")"
  grep -q "relative error" "$WORK/stdout" || fail "$method: summary lacks the relative error"
  for f in "w-$method.safetensors" "r-$method.json" "m-$method.safetensors"; do
    [ -s "$WORK/$f" ] || fail "$method: $f not written"
  done
  grep -q "\"method\" : \"$method\"" "$WORK/r-$method.json" || fail "$method: report lacks the method"
  grep -qF "\"problem\" : \"$P\"" "$WORK/r-$method.json" || fail "$method: report lacks the problem path"
done
for method in magnitude wanda sparsegpt admm apt refit; do
  ok "$method 2:4" -- "$BIN" layer --problem "$P" --method "$method" --pattern 2:4 --out "$OUT"
  grep -q "sparsity 0.5000" "$WORK/stdout" || fail "$method 2:4: $(cat "$WORK/stdout")"
done
ok "wanda 0.25/matrix, double" -- "$BIN" layer --problem "$P" --method wanda --sparsity 0.25/matrix --precision double --out "$OUT"
grep -q "wanda 0.25/matrix on" "$WORK/stdout" || fail "wanda 0.25/matrix: $(cat "$WORK/stdout")"
ok "sparsegpt on a gram" -- "$BIN" layer --problem "$WORK/gram.safetensors" --method sparsegpt --sparsity 0.5 --out "$OUT"
grep -q "(gram, 64 tokens" "$WORK/stdout" || fail "gram problem: $(cat "$WORK/stdout")"
ok "fista error-corrected" -- "$BIN" layer --problem "$WORK/corr.safetensors" --method fista --sparsity 0.5 --out "$OUT"
grep -q "error-corrected" "$WORK/stdout" || fail "corrected problem: $(cat "$WORK/stdout")"
ok "fista defaults" -- "$BIN" layer --problem "$P" --method fista --sparsity 0.5 --out "$OUT" --report "$WORK/r-preset.json"
grep -q '"preset" : "prunekit"' "$WORK/r-preset.json" || fail "fista defaults: not the prunekit preset in the report"
grep -q '"warm_start" : "sparsegpt"' "$WORK/r-preset.json" || fail "fista defaults: warm start not sparsegpt"
ok "fista --preset paper" -- "$BIN" layer --problem "$P" --method fista --preset paper --sparsity 0.5 \
  --out "$OUT" --report "$WORK/r-preset.json"
grep -q '"preset" : "paper"' "$WORK/r-preset.json" || fail "--preset paper: not in the report"
grep -q '"warm_start" : "wanda"' "$WORK/r-preset.json" || fail "--preset paper: warm start not wanda"
ok "fista --preset paper --warm-start sparsegpt" -- "$BIN" layer --problem "$P" --method fista --preset paper \
  --warm-start sparsegpt --sparsity 0.5 --out "$OUT" --report "$WORK/r-preset.json"
grep -q '"preset" : "custom"' "$WORK/r-preset.json" || fail "a preset with an override: the report does not say custom"
ok "wanda --refine swaps" -- "$BIN" layer --problem "$P" --method wanda --sparsity 0.5 --refine swaps \
  --out "$OUT" --report "$WORK/r-swaps.json"
grep -q "sparsity 0.5000" "$WORK/stdout" || fail "--refine swaps: $(cat "$WORK/stdout")"
grep -q '"refine" : "swaps"' "$WORK/r-swaps.json" || fail "--refine swaps: not in the report"

# Method options reach the method and the report, under their report keys, whichever spelling was
# given: the name (--block-size, --damping) or the references' alias (--blocksize, --percdamp).
ok "sparsegpt --block-size 4" -- "$BIN" layer --problem "$P" --method sparsegpt --sparsity 0.5 --block-size 4 \
  --damping 0.05 --out "$OUT" --report "$WORK/r-opt.json"
grep -q '"block_size" : 4,' "$WORK/r-opt.json" || fail "--block-size not in the report"
grep -q '"damping" : 0.05' "$WORK/r-opt.json" || fail "--damping not in the report as a number"
grep -q '"damping_relative" : 0.05' "$WORK/r-opt.json" || fail "the report does not name the damping's unit"
grep -q '"prunekit_version" : ' "$WORK/r-opt.json" || fail "the report lacks prunekit_version"
cp "$OUT" "$WORK/w-opt.safetensors"
ok "sparsegpt --blocksize 4 (aliases)" -- "$BIN" layer --problem "$P" --method sparsegpt --sparsity 0.5 --blocksize 4 \
  --percdamp 0.05 --out "$OUT" --report "$WORK/r-alias.json"
cmp -s "$OUT" "$WORK/w-opt.safetensors" || fail "--blocksize/--percdamp did not give the weights of --block-size/--damping"
grep -q '"block_size" : 4,' "$WORK/r-alias.json" || fail "--blocksize not in the report as block_size"
grep -q '"damping" : 0.05' "$WORK/r-alias.json" || fail "--percdamp not in the report as damping"

# A given mask: refit keeps wanda's mask.
ok "refit on wanda's mask" -- "$BIN" layer --problem "$P" --method refit --sparsity 0.5/row \
  --mask "$WORK/m-wanda.safetensors" --mask-out "$WORK/m-refit-given.safetensors" --out "$OUT"
# The files' metadata name different methods; the U8 mask itself is the last 8 × 16 bytes.
cmp -s <(tail -c 128 "$WORK/m-wanda.safetensors") <(tail -c 128 "$WORK/m-refit-given.safetensors") ||
  fail "refit changed the given mask"
cmp -s <(tail -c 128 "$WORK/m-wanda.safetensors") <(tail -c 128 "$WORK/m-magnitude.safetensors") &&
  fail "wanda and magnitude chose the same mask (the check above would not notice a change)"

# Same output whatever the thread count, and from run to run.
for t in 1 2; do
  ok "sparsegpt --threads $t" -- "$BIN" layer --problem "$P" --method sparsegpt --pattern 2:4 --threads "$t" \
    --out "$WORK/t$t.safetensors"
done
cmp -s "$WORK/t1.safetensors" "$WORK/t2.safetensors" || fail "--threads 1 and 2 wrote different weights"
cmp -s "$WORK/t1.safetensors" "$WORK/w-sparsegpt.safetensors" && fail "0.5 and 2:4 wrote the same weights"

# --- usage errors: exit 2 -----------------------------------------------------------------------
L=(layer --problem "$P")
bad 2 "missing --problem" "no --problem" -- "$BIN" layer --method wanda --sparsity 0.5 --out "$OUT"
bad 2 "unknown method 'obs'" "unknown method" -- "$BIN" "${L[@]}" --method obs --sparsity 0.5 --out "$OUT"
bad 2 "missing --out" "no --out" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5
bad 2 "no sparsity given" "no pattern" -- "$BIN" "${L[@]}" --method wanda --out "$OUT"
bad 2 "both given" "sparsity and pattern" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --pattern 2:4 --out "$OUT"
bad 2 "outside [0, 1)" "sparsity 1.5" -- "$BIN" "${L[@]}" --method wanda --sparsity 1.5 --out "$OUT"
bad 2 "outside [0, 1)" "sparsity -0.2" -- "$BIN" "${L[@]}" --method wanda --sparsity=-0.2 --out "$OUT"
bad 2 "cannot read sparsity pattern" "sparsity half" -- "$BIN" "${L[@]}" --method wanda --sparsity half --out "$OUT"
bad 2 "--sparsity takes a ratio" "N:M in --sparsity" -- "$BIN" "${L[@]}" --method wanda --sparsity 2:4 --out "$OUT"
bad 2 "--pattern takes N:M" "ratio in --pattern" -- "$BIN" "${L[@]}" --method wanda --pattern 0.5 --out "$OUT"
bad 2 "needs 0 < N < M" "pattern 4:2" -- "$BIN" "${L[@]}" --method wanda --pattern 4:2 --out "$OUT"
bad 2 "needs 0 < N < M" "pattern 0:4" -- "$BIN" "${L[@]}" --method wanda --pattern 0:4 --out "$OUT"
bad 2 "multiple of 3, but it is 16" "M not dividing in" -- "$BIN" "${L[@]}" --method sparsegpt --pattern 2:3 --out "$OUT"
bad 2 "is the same file as --problem" "out = problem" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --out "$P"
bad 2 "is the same file as --problem" "out = problem via ./" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --out "$WORK/./p.safetensors"
bad 2 "is the same file as --mask" "out = mask" -- "$BIN" "${L[@]}" --method refit --sparsity 0.5 \
  --mask "$WORK/m-wanda.safetensors" --out "$WORK/m-wanda.safetensors"
bad 2 "is the same file as --problem" "report = problem" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --out "$OUT" --report "$P"
bad 2 "chooses its own mask" "mask for wanda" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --mask "$WORK/m-wanda.safetensors" --out "$OUT"
bad 2 "unknown option --blocksze" "typo in an option" -- "$BIN" "${L[@]}" --method sparsegpt --sparsity 0.5 --blocksze 8 --out "$OUT"
bad 2 "does not apply to wanda" "option of another method" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --blocksize 8 --out "$OUT"
bad 2 "is not an integer" "bad option value" -- "$BIN" "${L[@]}" --method sparsegpt --sparsity 0.5 --blocksize x --out "$OUT"
bad 2 "--damping and --percdamp are the same option" "an option and its alias" -- "$BIN" "${L[@]}" --method sparsegpt --sparsity 0.5 \
  --damping 0.1 --percdamp 0.1 --out "$OUT"
bad 2 "unknown precision 'half'" "bad precision" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --precision half --out "$OUT"
bad 2 "--threads must be an integer" "zero threads" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --threads 0 --out "$OUT"
bad 2 "--out given more than once" "repeated option" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --out "$OUT" --out "$WORK/o2"
bad 2 "unexpected argument 'extra'" "positional argument" -- "$BIN" "${L[@]}" extra --method wanda --sparsity 0.5 --out "$OUT"
bad 2 "unknown command 'layers'" "unknown command" -- "$BIN" layers

# --- the command line: flags take no value, every word belongs to an option, help and version ----
# Boolean flags never take a value, neither as the next word nor after "=": each of these turned
# the flag on (and exited 0 or went on running) before.
VP=(verify --problem "$P" --candidate "$WORK/w-wanda.safetensors" --sparsity 0.5/row)
bad 2 "--json takes no value; got 'false'" "--json false" -- "$BIN" "${VP[@]}" --json false
bad 2 "--json takes no value; got 'false'" "--json=false" -- "$BIN" "${VP[@]}" --json=false
bad 2 "--quiet takes no value; got 'banana'" "--quiet banana" -- "$BIN" vectors --out "$WORK/vq" --no-real --quiet banana
bad 2 "--no-real takes no value; got 'false'" "--no-real=false" -- "$BIN" vectors --out "$WORK/vq" --no-real=false
bad 2 "--resume takes no value; got 'no'" "--resume no" -- "$BIN" model --model m.gguf --method wanda --sparsity 0.5 \
  --protocol austen-quick --out "$WORK/m" --resume no
bad 2 "--no-real takes no value; got 'extra'" "a stray word after a flag" -- "$BIN" vectors --out "$WORK/vq" --no-real extra
[ -e "$WORK/vq" ] && fail "vectors with a stray word wrote $WORK/vq"
bad 2 "unexpected argument '-0.5'" "a stray number" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 -0.5 --out "$OUT"
# A value option needs its value: at the end of the line, or before another option.
bad 2 "--out needs a value" "--out at the end" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --out
bad 2 "--out needs a value; it is followed by --report" "--out before an option" -- "$BIN" "${L[@]}" --method wanda \
  --sparsity 0.5 --out --report "$WORK/r.json"
[ -e "$WORK/r.json" ] && fail "--out without a value wrote a report"
bad 2 "--out needs a value; got an empty one" "--out ''" -- "$BIN" "${L[@]}" --method wanda --sparsity 0.5 --out ""
bad 2 "--prune_method and --method are the same option" "an option and its alias" -- "$BIN" model --model m.gguf \
  --prune_method wanda --method wanda --sparsity 0.5 --protocol austen-quick --out "$WORK/m"
bad 2 "--problem does not go with --manifest" "an option of the other form" -- "$BIN" verify --manifest m.json --problem "$P"
bad 2 "--candidates goes with --manifest" "an option of the other form" -- "$BIN" "${VP[@]}" --candidates "$WORK"
# Did you mean: the nearest command, option or value within a third of its length.
bad 2 "unknown command 'modle'. Hint: did you mean 'model'?" "a mistyped command" -- "$BIN" modle
bad 2 "unknown command 'vrify'. Hint: did you mean 'verify'?" "help for a mistyped command" -- "$BIN" help vrify
bad 2 "unknown option --sparsty. Hint: did you mean --sparsity?" "a mistyped option" -- "$BIN" "${L[@]}" --method wanda \
  --sparsty 0.5 --out "$OUT"
bad 2 "unknown option -sparsity. Hint: did you mean --sparsity?" "one dash" -- "$BIN" "${L[@]}" --method wanda \
  -sparsity 0.5 --out "$OUT"
bad 2 "unknown method 'wnda'. Hint: did you mean 'wanda'?" "a mistyped value" -- "$BIN" "${L[@]}" --method wnda \
  --sparsity 0.5 --out "$OUT"
bad 2 "unknown option --xyzzy. Hint: 'prune help layer' lists its options." "no near option" -- "$BIN" "${L[@]}" \
  --method wanda --sparsity 0.5 --xyzzy 1 --out "$OUT"
# -h and --help print the command's usage and exit 0, whatever else is on the line; so does
# 'prune help NAME', for the hidden test helpers too.
for command in quickstart layer model merge sweep eval verify vectors make-problem make-model; do
  ok "prune help $command" -- "$BIN" help "$command"
  cp "$WORK/stdout" "$WORK/usage"
  grep -q "^Usage: prune $command " "$WORK/usage" || fail "prune help $command: no synopsis: $(head -1 "$WORK/usage")"
  for words in "-h" "--help" "--bogus x -h --json=false extra" "--out --help" "--threads 0 --help --threads 1"; do
    # shellcheck disable=SC2086  # the words are split on purpose
    ok "prune $command $words" -- "$BIN" "$command" $words
    cmp -s "$WORK/stdout" "$WORK/usage" || fail "prune $command $words does not print the usage of prune help $command"
  done
done
# --version: the one version of PruneKit (PruneKitVersion.current), also as 'prune version'.
version="$(grep -rh -A3 'enum PruneKitVersion' Sources | sed -n 's/.*static let current = "\(.*\)".*/\1/p')"
ok "prune --version" -- "$BIN" --version
[ "$(cat "$WORK/stdout")" = "prune (PruneKit) $version" ] || fail "prune --version: '$(cat "$WORK/stdout")', want PruneKit $version"
ok "prune version" -- "$BIN" version
[ "$(cat "$WORK/stdout")" = "prune (PruneKit) $version" ] || fail "prune version: '$(cat "$WORK/stdout")'"
bad 2 "unexpected argument 'extra'" "a stray word after version" -- "$BIN" --version extra
bad 2 "unexpected argument 'extra'" "a stray word after help NAME" -- "$BIN" help layer extra
ok "prune help layer --help" -- "$BIN" help layer --help
grep -q "^Usage: prune layer " "$WORK/stdout" || fail "prune help layer --help does not print the usage of layer"
# An unbounded range is written as a bound, not as Int.max.
bad 2 "--seed must be an integer ≥ 0, got '-1'" "a negative seed" -- "$BIN" vectors --out "$WORK/vq" --no-real --seed -1

# --- prune eval: usage errors (exit 2) and a missing model (exit 1); no model needed ------------
ok "prune help eval" -- "$BIN" help eval
grep -q -- "--protocol" "$WORK/stdout" || fail "prune help eval does not list --protocol"
bad 2 "missing --model" "eval without --model" -- "$BIN" eval --protocol austen-quick
bad 2 "unknown protocol 'austen-huge'" "eval unknown protocol" -- "$BIN" eval --model m.gguf --protocol austen-huge
bad 2 "--protocol sets the text" "eval protocol with --seqlen" -- "$BIN" eval --model m.gguf --protocol austen-quick --seqlen 64
bad 2 "missing --text" "eval without text" -- "$BIN" eval --model m.gguf --seqlen 64
bad 2 "missing --seqlen" "eval without seqlen" -- "$BIN" eval --model m.gguf --text t.txt
bad 2 "--seqlen must be an integer" "eval seqlen 1" -- "$BIN" eval --model m.gguf --text t.txt --seqlen 1
bad 1 "(it is a folder, not a file)" "eval text is a folder" -- "$BIN" eval --model m.gguf --text "$WORK" --seqlen 64
bad 2 "--windows must be an integer" "eval zero windows" -- "$BIN" eval --model m.gguf --text t.txt --seqlen 8 --windows 0
bad 1 "no such file or folder" "eval missing model" -- "$BIN" eval --model "$WORK/none.gguf" --protocol austen-quick
bad 1 "not a GGUF file" "eval model not a GGUF" -- "$BIN" eval --model "$P" --protocol austen-quick

# --- bad files: exit 1 --------------------------------------------------------------------------
run() { "$BIN" layer --problem "$WORK/$1.safetensors" --method sparsegpt --sparsity 0.5 --out "$OUT"; }
bad 1 "no tensor 'weight'" "missing weight" -- run no-weight
bad 1 "no tensor 'inputs'" "missing inputs and gram" -- run no-data
bad 1 "'inputs' has shape [64, 15], expected [tokens, 16] (from 'weight' [8, 16])" "inputs shape" -- run inputs-shape
bad 1 "'gram' has shape [16, 15], expected [16, 16] (from 'weight' [8, 16])" "gram shape" -- run gram-shape
bad 1 "'inputs'[32, 8] is nan" "NaN inputs" -- run nan-inputs
bad 1 "'weight'[7, 0] is inf" "infinite weight" -- run inf-weight
bad 1 "'gram' is not symmetric: [0, 15]" "asymmetric gram" -- run asymmetric
bad 1 "no tensor 'dense_gram'" "cross_gram without dense_gram" -- run no-dense-gram
bad 1 "reach beyond the data buffer" "truncated file" -- run truncated
bad 1 "cannot read the file" "missing file" -- run does-not-exist
ok "small mask" -- "$BIN" layer --problem "$WORK/small.safetensors" --method wanda --sparsity 0.5 \
  --out "$WORK/small-w.safetensors" --mask-out "$WORK/small-m.safetensors"
bad 2 "'mask' has shape [4, 8], expected [8, 16] (from 'weight' [8, 16])" "mask of another layer" -- \
  "$BIN" layer --problem "$P" --method refit --sparsity 0.5 --out "$OUT" --mask "$WORK/small-m.safetensors"

# --- prune model / merge / sweep: usage errors (no model needed) --------------------------------
GGUF=".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
bad 2 "missing --model" "model without --model" -- "$BIN" model --method wanda --sparsity 0.5 --protocol austen-quick --out "$WORK/m"
bad 2 "unknown method 'exact' for a whole model" "model exact" -- "$BIN" model --model m.gguf --method exact --sparsity 0.5 --protocol austen-quick --out "$WORK/m"
bad 2 "no calibration text" "model without calibration" -- "$BIN" model --model m.gguf --method wanda --sparsity 0.5 --out "$WORK/m"
bad 2 "--protocol and --calib both given" "model two calibrations" -- "$BIN" model --model m.gguf --method wanda --sparsity 0.5 --protocol austen-quick --calib t.txt --out "$WORK/m"
bad 2 "--blocks takes A-B" "model bad blocks" -- "$BIN" model --model m.gguf --method fista --sparsity 0.5 --protocol austen-quick --blocks 5-2 --out "$WORK/m"
bad 2 "unknown schedule 'parallel'" "model bad schedule" -- "$BIN" model --model m.gguf --method fista --sparsity 0.5 --protocol austen-quick --schedule parallel --out "$WORK/m"
bad 2 "--sparsity_type 2:4 with --sparsity_ratio 0.6" "wanda spelling mismatch" -- "$BIN" model --model m.gguf --prune_method wanda --sparsity_ratio 0.6 --sparsity_type 2:4 --protocol austen-quick --out "$WORK/m"
bad 2 "unknown method 'obs' in --methods" "sweep bad method" -- "$BIN" sweep --model m.gguf --methods wanda,obs --sparsities 0.5 --out "$WORK/s"
bad 2 "sparsegpt sets damping twice" "sweep option and alias" -- "$BIN" sweep --model m.gguf --methods sparsegpt:damping=0.1:percdamp=0.2 --sparsities 0.5 --out "$WORK/s"
bad 2 "option 'warm-start': does not apply to sparsegpt" "sweep option of another method" -- "$BIN" sweep --model m.gguf --methods sparsegpt:warm-start=wanda --sparsities 0.5 --out "$WORK/s"
bad 2 "no parts given" "merge without parts" -- "$BIN" merge --model m.gguf --parts , --out "$WORK/mm"
bad 1 "no such file or folder" "model missing model" -- "$BIN" model --model "$WORK/none.gguf" --method wanda --sparsity 0.5 --protocol austen-quick --out "$WORK/m"

# --- prune model on the real model: outputs, resume after SIGKILL, merge (needs the model) -------
if [ -f "$GGUF" ]; then
  CAL=(--calib Fixtures/janeausten/emma.txt --nsamples 4 --seqlen 256 --no-eval --quiet)
  bad 2 "already exists" "model out exists" -- "$BIN" model --model "$GGUF" --method wanda --sparsity 0.5 "${CAL[@]}" --out "$WORK"
  bad 2 "cannot start at block 3" "sequential from block 3" -- "$BIN" model --model "$GGUF" --method wanda --sparsity 0.5 "${CAL[@]}" --blocks 3-4 --out "$WORK/m"
  bad 2 "is the input model" "model out is input" -- "$BIN" model --model "$GGUF" --method wanda --sparsity 0.5 "${CAL[@]}" --out "$GGUF"
  sha_before="$(sha256sum "$GGUF" | cut -d' ' -f1)"
  ok "model sparsegpt blocks 0-7" -- "$BIN" model --model "$GGUF" --method sparsegpt --sparsity 0.5 "${CAL[@]}" --blocks 0-7 --out "$WORK/full"
  [ -f "$WORK/full/model.safetensors" ] && [ -f "$WORK/full/pruning-report.json" ] || fail "model: output folder incomplete"
  [ -e "$WORK/full.checkpoint" ] && fail "model: checkpoint left behind after success"
  grep -q "realised sparsity 0.5000 of the pruned layers" "$WORK/stdout" || fail "model: realised sparsity not printed"
  for key in '"prunekit_version" : "' '"total_seconds" : ' '"peak_resident_bytes" : ' '"resumed_blocks" : ' \
    '"damping_absolute" : ' '"damping_relative" : 0.01' '"sequence_length" : 256' "\"model\" : \"$GGUF\""; do
    grep -qF "$key" "$WORK/full/pruning-report.json" || fail "model: pruning-report.json lacks $key"
  done
  grep -qE '"(totalSeconds|peakResidentBytes|resumedBlocks|dampingRetry)"' "$WORK/full/pruning-report.json" &&
    fail "model: pruning-report.json has camelCase keys"
  # Kill the same run with SIGKILL once two blocks are checkpointed, then resume: bit-identical.
  "$BIN" model --model "$GGUF" --method sparsegpt --sparsity 0.5 "${CAL[@]}" --blocks 0-7 --out "$WORK/killed" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 2000); do [ -f "$WORK/killed.checkpoint/block-001.json" ] && break; sleep 0.02; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  checks=$((checks + 1))
  if [ -e "$WORK/killed" ]; then fail "kill: the run finished before it was killed (no resume tested)"
  elif [ ! -f "$WORK/killed.checkpoint/block-001.json" ]; then fail "kill: no checkpoint was written"
  else
    bad 2 "holds an interrupted run" "rerun without --resume" -- "$BIN" model --model "$GGUF" --method sparsegpt --sparsity 0.5 "${CAL[@]}" --blocks 0-7 --out "$WORK/killed"
    bad 2 "was written with pattern = 0.5, this run has 2:4" "resume with other settings" -- "$BIN" model --model "$GGUF" --method sparsegpt --pattern 2:4 "${CAL[@]}" --blocks 0-7 --out "$WORK/killed" --resume
    ok "model resume" -- "$BIN" model --model "$GGUF" --method sparsegpt --sparsity 0.5 "${CAL[@]}" --blocks 0-7 --out "$WORK/killed" --resume
    cmp -s "$WORK/full/model.safetensors" "$WORK/killed/model.safetensors" || fail "resume: model.safetensors differs from the uninterrupted run"
  fi
  # Corrected schedule split in two processes and merged equals one run.
  FIS=(--method fista --preset paper --sparsity 0.5 --iterations 5 --lambda-steps 1)
  ok "fista blocks 0-3" -- "$BIN" model --model "$GGUF" "${FIS[@]}" "${CAL[@]}" --blocks 0-3 --out "$WORK/f03"
  ok "fista blocks 0-1" -- "$BIN" model --model "$GGUF" "${FIS[@]}" "${CAL[@]}" --blocks 0-1 --out "$WORK/f01"
  ok "fista blocks 2-3 jobs 2" -- "$BIN" model --model "$GGUF" "${FIS[@]}" "${CAL[@]}" --blocks 2-3 --jobs 2 --out "$WORK/f23"
  ok "merge" -- "$BIN" merge --model "$GGUF" --parts "$WORK/f01,$WORK/f23" --out "$WORK/fm"
  cmp -s "$WORK/f03/model.safetensors" "$WORK/fm/model.safetensors" || fail "merge: merged model differs from the single run"
  bad 2 "is in both" "merge overlapping parts" -- "$BIN" merge --model "$GGUF" --parts "$WORK/f01,$WORK/f03" --out "$WORK/fx"
  # OWL: the dense pass spans every block even when --blocks prunes two of them.
  ok "model wanda --allocation owl" -- "$BIN" model --model "$GGUF" --method wanda --sparsity 0.7 --allocation owl \
    "${CAL[@]}" --blocks 0-1 --out "$WORK/owl"
  grep -q "allocation owl (M 5[.0]*, λ 0.08): block sparsities 0\.[0-9]*–0\.[0-9]*, mean 0\.7" "$WORK/stdout" ||
    fail "--allocation owl: no allocation in the summary: $(cat "$WORK/stdout")"
  bad 2 "applies to --allocation owl" "owl threshold without owl" -- "$BIN" model --model "$GGUF" --method wanda \
    --sparsity 0.7 --owl-threshold 3 "${CAL[@]}" --out "$WORK/owl2"
  [ "$(sha256sum "$GGUF" | cut -d' ' -f1)" = "$sha_before" ] || fail "the input model was modified"
  rm -rf "$WORK/full" "$WORK/killed" "$WORK/f03" "$WORK/f01" "$WORK/f23" "$WORK/fm" "$WORK/owl"
else
  echo "cli-smoke: $GGUF not found; the real-model checks of prune model are skipped" >&2
fi

# --- prune vectors and prune verify (no model needed) ---------------------------------------------
ok "prune help verify" -- "$BIN" help verify
grep -q -- "--max-gap" "$WORK/stdout" || fail "prune help verify does not list --max-gap"
V="$WORK/vec"
ok "vectors --no-real" -- "$BIN" vectors --out "$V" --no-real --seed 3 --quiet
grep -q "wrote 11 cases (11 synthetic, 0 real)" "$WORK/stdout" || fail "vectors: $(cat "$WORK/stdout")"
[ -s "$V/manifest.json" ] || fail "vectors wrote no manifest"
checks=$((checks + 1))
code=0
"$BIN" vectors --out "$WORK/vec2" --model "$WORK/none.gguf" --quiet >"$WORK/stdout" 2>"$WORK/stderr" || code=$?
[ "$code" -eq 0 ] || fail "vectors with a missing model: exit $code"
grep -q "the real cases are skipped" "$WORK/stderr" || fail "vectors with a missing model: no message: $(cat "$WORK/stderr")"
grep -q "note: real cases skipped: no model at" "$WORK/stdout" || fail "vectors with a missing model: no note: $(cat "$WORK/stdout")"
VC=(verify --problem "$V/brute-2of4/problem.safetensors" --pattern 2:4 --max-gap 1e-6)
ok "verify the brute-force optimum" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/expected.safetensors" \
  --compare exact,sparsegpt --certificate "$WORK/cert.json"
grep -q "gap     PASS" "$WORK/stdout" || fail "verify optimum: $(cat "$WORK/stdout")"
grep -q "compare   exact" "$WORK/stdout" || fail "verify optimum: no comparison with exact"
grep -q '"passed" : true' "$WORK/cert.json" || fail "verify optimum: the certificate does not say passed"
ok "verify --json" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/expected.safetensors" --json
grep -q '"refit_relative_error"' "$WORK/stdout" || fail "verify --json lacks the refit's error"
bad 1 "failed 1 check(s): gap" "verify perturbed weights" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/perturbed-weights.safetensors"
bad 1 "failed 2 check(s): pattern, gap" "verify perturbed pattern" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/perturbed-pattern.safetensors"
grep -q "row 0, columns 0…" "$WORK/stdout" || fail "verify perturbed pattern does not list the group: $(cat "$WORK/stdout")"
ok "verify the whole suite" -- "$BIN" verify --manifest "$V/manifest.json"
grep -q "result    PASS" "$WORK/stdout" || fail "verify --manifest: $(tail -1 "$WORK/stdout")"
# Candidates: a misspelt method or case name is never skipped silently; nothing checked never passes.
mkdir -p "$WORK/cand/brute-2of4" "$WORK/cand/brute-row" "$WORK/cand/brute-rwo" "$WORK/none"
cp "$V/brute-2of4/expected.safetensors" "$WORK/cand/brute-2of4/expected.safetensors"
cp "$V/brute-row/sparsegpt.safetensors" "$WORK/cand/brute-row/sparsgpt.safetensors"
cp "$V/brute-row/sparsegpt.safetensors" "$WORK/cand/brute-rwo/sparsegpt.safetensors"
bad 1 "2 candidate file(s) match no case or answer, first brute-row/sparsgpt.safetensors" "verify misspelt candidates" -- \
  "$BIN" verify --manifest "$V/manifest.json" --candidates "$WORK/cand"
grep -q "coverage  1 of 11 cases have a file checked" "$WORK/stdout" || fail "verify candidates: no coverage: $(cat "$WORK/stdout")"
grep -q "unknown   brute-rwo (matches no case of the manifest)" "$WORK/stdout" || fail "verify candidates: unknown case not named"
ok "verify misspelt candidates allowed" -- "$BIN" verify --manifest "$V/manifest.json" --candidates "$WORK/cand" --allow-unknown
grep -q "result    PASS: 1 of 1 files pass; 2 unknown file(s) allowed" "$WORK/stdout" || fail "verify --allow-unknown: $(tail -1 "$WORK/stdout")"
bad 1 "no candidate file was checked" "verify no candidates" -- "$BIN" verify --manifest "$V/manifest.json" --candidates "$WORK/none"
grep -q "result    FAIL: 0 of 0 files pass" "$WORK/stdout" || fail "verify no candidates: $(tail -1 "$WORK/stdout")"
# A bare ratio: the candidate checked per row, each compared method at its own group (wanda per
# row, as prune layer ran it: candidate/method 1.0000), the group printed.
ok "wanda for verify" -- "$BIN" layer --problem "$P" --method wanda --sparsity 0.5 --out "$WORK/wanda.safetensors"
ok "verify wanda at a bare ratio" -- "$BIN" verify --problem "$P" --candidate "$WORK/wanda.safetensors" --sparsity 0.5 --compare wanda,sparsegpt
grep -q "pattern PASS  0 of [0-9]* groups break 0.5/row" "$WORK/stdout" || fail "verify wanda: not checked per row: $(cat "$WORK/stdout")"
grep -q "compare   wanda      0.5/row    relative .* candidate/method 1.0000" "$WORK/stdout" || fail "verify wanda: $(cat "$WORK/stdout")"
grep -q "compare   sparsegpt  0.5/matrix relative" "$WORK/stdout" || fail "verify wanda: sparsegpt not over the matrix: $(cat "$WORK/stdout")"
ok "verify wanda at 0.5/matrix" -- "$BIN" verify --problem "$P" --candidate "$WORK/wanda.safetensors" --sparsity 0.5/matrix --compare wanda
grep -q "compare   wanda      0.5/matrix relative" "$WORK/stdout" || fail "verify wanda /matrix: $(cat "$WORK/stdout")"
bad 2 "--lambda without --method-claimed" "verify lambda alone" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/expected.safetensors" --lambda 0.1
bad 2 "needs --lambda" "verify claim without lambda" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/expected.safetensors" --method-claimed fista
bad 2 "has no optimality conditions" "verify claim of refit" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/expected.safetensors" --method-claimed refit --lambda 1
bad 2 "--max-kkt needs a lasso claim" "verify max-kkt alone" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/expected.safetensors" --max-kkt 1e-6
bad 2 "unknown method 'obs' in --compare" "verify compare typo" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/expected.safetensors" --compare wanda,obs
bad 2 "missing --candidate" "verify without candidate" -- "$BIN" verify --problem "$V/brute-2of4/problem.safetensors" --pattern 2:4
bad 2 "multiple of 3, but it is 8" "verify pattern not fitting" -- "$BIN" verify --problem "$V/brute-2of4/problem.safetensors" --pattern 1:3 --candidate "$V/brute-2of4/expected.safetensors"
bad 1 "'weight' has shape [3, 8], expected [4, 8]" "verify candidate of another layer" -- "$BIN" "${VC[@]}" --candidate "$V/brute-row/expected.safetensors"

# --- outputs that are not regular files; inputs that cannot be read --------------------------------
# A device or a FIFO is written through and stays what it was; a symbolic link is followed and stays
# a link. (Run as root, earlier versions turned such a device into a regular file: the device
# checks use a null device node of their own when mknod works, and /dev/null is checked after.)
NULLDEV=/dev/null
if [ "$(id -u)" -eq 0 ] && mknod "$WORK/null" c 1 3 2>/dev/null; then NULLDEV="$WORK/null"; fi
ok "layer --out a device" -- "$BIN" layer --problem "$P" --method wanda --sparsity 0.5 --out "$NULLDEV"
[ -c "$NULLDEV" ] || fail "layer --out $NULLDEV replaced the device"
ok "verify --certificate /dev/stdout" -- "$BIN" "${VC[@]}" --candidate "$V/brute-2of4/expected.safetensors" \
  --certificate /dev/stdout
grep -q '"passed" : true' "$WORK/stdout" || fail "verify --certificate /dev/stdout: no certificate on standard output"
[ -f "$WORK/stdout" ] && ! ls -a "$WORK" | grep -q '^\.stdout\.tmp-' || fail "--certificate /dev/stdout replaced the redirected file"
ln -s real-report.json "$WORK/report-link.json"
ok "layer --report to a symlink" -- "$BIN" layer --problem "$P" --method wanda --sparsity 0.5 \
  --out "$WORK/w-link.safetensors" --report "$WORK/report-link.json"
[ -L "$WORK/report-link.json" ] && [ "$(readlink "$WORK/report-link.json")" = real-report.json ] \
  || fail "--report to a symlink replaced the link"
grep -q '"method"' "$WORK/real-report.json" || fail "--report to a symlink did not write the link's target"
mkfifo "$WORK/fifo"
cat "$WORK/fifo" >"$WORK/fifo.out" &
reader=$!
ok "layer --report to a FIFO" -- "$BIN" layer --problem "$P" --method wanda --sparsity 0.5 \
  --out "$WORK/w-fifo.safetensors" --report "$WORK/fifo"
for _ in $(seq 50); do kill -0 "$reader" 2>/dev/null || break; sleep 0.1; done
kill "$reader" 2>/dev/null || true
wait "$reader" 2>/dev/null || true
[ -p "$WORK/fifo" ] || fail "--report to a FIFO replaced the FIFO"
grep -q '"method"' "$WORK/fifo.out" || fail "--report to a FIFO: the reader got no report"
bad 2 "not a folder" "model --out a device" -- "$BIN" model --model "$WORK/none.gguf" --method wanda --sparsity 0.5 \
  --protocol austen-quick --out "$NULLDEV"
bad 2 "not a folder" "sweep --out a device" -- "$BIN" sweep --model "$WORK/none.gguf" --methods wanda --sparsities 0.5 \
  --out "$NULLDEV"
bad 1 "not a folder" "vectors --out a device" -- "$BIN" vectors --out "$NULLDEV" --no-real
[ -c "$NULLDEV" ] && [ -c /dev/null ] || fail "a device was replaced"
# A failed sweep leaves no folder; vectors refuses a folder holding files (and keeps them).
bad 1 "no such file" "sweep of a missing model" -- "$BIN" sweep --model "$WORK/none.gguf" --methods wanda \
  --sparsities 0.5 --out "$WORK/sweep-failed"
[ -e "$WORK/sweep-failed" ] && fail "a failed sweep left $WORK/sweep-failed"
# A sweep.json the sweep cannot read stops it (it was silently replaced) and is left as it was.
"$BIN" make-model --out "$WORK/tiny" >/dev/null
# A run whose memory estimate exceeds --max-memory is refused before any work: no output, no checkpoint.
bad 2 "more than --max-memory" "model over --max-memory" -- "$BIN" model --model "$WORK/tiny" --method wanda \
  --sparsity 0.5 --protocol austen-quick --no-eval --max-memory 1MB --out "$WORK/over-budget" --quiet
[ -e "$WORK/over-budget" ] || [ -e "$WORK/over-budget.checkpoint" ] && fail "a refused run left a folder"
# prune eval: the same budget, refused before any weight is read; progress per block, then per window.
bad 2 "of memory (estimate), more than --max-memory" "eval over --max-memory" -- "$BIN" eval --model "$WORK/tiny" \
  --text Fixtures/janeausten/emma.txt --seqlen 32 --windows 2 --max-memory 1MB --quiet
checks=$((checks + 1))
"$BIN" eval --model "$WORK/tiny" --text Fixtures/janeausten/emma.txt --seqlen 32 --windows 2 >"$WORK/stdout" 2>"$WORK/stderr" \
  || fail "eval of the made model: $(cat "$WORK/stderr")"
grep -q "^eval: memory estimate .* (base .*, hidden states .*, embedding .*, block .*, head .*)$" "$WORK/stderr" \
  || fail "eval prints no memory estimate: $(cat "$WORK/stderr")"
blocks="$(grep -c "^eval: block [0-9]*/[0-9]* done  elapsed " "$WORK/stderr")"
[ "$blocks" -ge 1 ] && grep -q "^eval: window 2/2  perplexity " "$WORK/stderr" \
  && [ "$(grep -n "^eval: block" "$WORK/stderr" | tail -1 | cut -d: -f1)" -lt "$(grep -n "^eval: window 1/2" "$WORK/stderr" | cut -d: -f1)" ] \
  || fail "eval progress is not one line per block then per window: $(cat "$WORK/stderr")"
# --spill always: the summary says where the activations went, the folder is gone, the bytes are the
# in-memory run's; --spill never over the budget names --spill in its hint.
SMALL=(model --model "$WORK/tiny" --method sparsegpt --sparsity 0.5 --calib Fixtures/janeausten/emma.txt --nsamples 4
  --seqlen 64 --no-eval --quiet)
ok "model --spill never" -- "$BIN" "${SMALL[@]}" --spill never --out "$WORK/spill-never"
ok "model --spill always" -- "$BIN" "${SMALL[@]}" --spill always --out "$WORK/spill-always"
grep -qF "activations spilled to $WORK/spill-always.spill" "$WORK/stdout" || fail "--spill always: the summary lacks the folder"
grep -q "time by phase: read .*spill .*evaluate" "$WORK/stdout" || fail "--spill always: no time by phase"
[ -e "$WORK/spill-always.spill" ] && fail "--spill always left its spill folder"
cmp -s "$WORK/spill-never/model.safetensors" "$WORK/spill-always/model.safetensors" ||
  fail "--spill always changed the output"
bad 2 "unknown spill 'bogus'" "model --spill bogus" -- "$BIN" "${SMALL[@]}" --spill bogus --out "$WORK/spill-bogus"
mkdir -p "$WORK/sweep-bad" && printf '{"entries": [' >"$WORK/sweep-bad/sweep.json"
bad 2 "sweep.json is not a PruneKit sweep table (not valid JSON)" "sweep over an unreadable sweep.json" -- \
  "$BIN" sweep --model "$WORK/tiny" --methods magnitude --sparsities 0.5 --out "$WORK/sweep-bad" --quiet
[ "$(cat "$WORK/sweep-bad/sweep.json")" = '{"entries": [' ] || fail "sweep changed a sweep.json it could not read"
# A model folder whose config.json is a folder says so (not "config.json/config.json: no such file").
rm "$WORK/tiny/config.json" && mkdir "$WORK/tiny/config.json"
bad 1 "tiny/config.json: cannot read the file (it is a folder, not a file)" "eval, config.json a folder" -- \
  "$BIN" eval --model "$WORK/tiny" --protocol austen-quick
mkdir -p "$WORK/stale" && echo old >"$WORK/stale/old.safetensors"
bad 1 "already holds 1 entry" "vectors into a folder holding files" -- "$BIN" vectors --out "$WORK/stale" --no-real
[ "$(ls -A "$WORK/stale")" = old.safetensors ] || fail "vectors changed a folder holding files"
# Inputs that cannot be read: one line in PruneKit's words, never Foundation's.
printf '{"cases": [' >"$WORK/truncated.json"
bad 1 "it is a folder, not a file" "layer --problem a folder" -- "$BIN" layer --problem "$WORK" --method wanda \
  --sparsity 0.5 --out "$WORK/out.safetensors"
bad 1 "no such file" "verify --candidate missing" -- "$BIN" "${VC[@]}" --candidate "$WORK/none.safetensors"
bad 1 "not UTF-8" "layer --problem with a non-UTF-8 byte" -- "$BIN" layer --problem "$WORK/p"$'\xff'".safetensors" \
  --method wanda --sparsity 0.5 --out "$WORK/out.safetensors"
bad 2 "it is a folder, not a file" "verify --manifest a folder" -- "$BIN" verify --manifest "$V"
bad 2 "is not a test-vector manifest" "verify --manifest truncated" -- "$BIN" verify --manifest "$WORK/truncated.json"
grep -q "DecodingError\|NSCocoaErrorDomain" "$WORK/stderr" && fail "Foundation's wording: $(cat "$WORK/stderr")"
"$BIN" make-problem --out "$WORK/wide.safetensors" --rows 2 --columns 128 >/dev/null
bad 1 "more than 10^18 admissible masks" "exact on a wide layer" -- "$BIN" layer --problem "$WORK/wide.safetensors" \
  --method exact --sparsity 0.5 --out "$WORK/out.safetensors"

echo "cli-smoke: $checks checks, $failures failures"

# --- faults: kills and resumes, a full disk, unwritable outputs (their own scripts) --------------
for script in fault-kill fault-disk; do
  PRUNE_BIN="$BIN" "Tests/$script.sh" || { echo "FAIL: Tests/$script.sh" >&2; failures=$((failures + 1)); }
done
[ "$failures" -eq 0 ]
