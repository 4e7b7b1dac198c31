// prune make-model: a hidden test helper that writes a small seeded LLaMA model as a Hugging Face
// folder (SyntheticModelFolder), so that the fault tests (Tests/fault-kill.sh) can run, kill and
// resume `prune model` many times in seconds, without the real model.

import Foundation
import PruneKit

extension Command {
  static let makeModel = Command(
    name: "make-model", summary: "test helper: write a small seeded LLaMA model folder",
    usage: """
      Usage: prune make-model --out DIR [--layers 6] [--hidden 128] [--intermediate 320] [--heads 4]
                              [--kv-heads 2] [--vocab 256] [--seed 1]

      Test helper (used by Tests/fault-kill.sh; not listed by 'prune help'). Writes DIR (which must
      not exist) with config.json (LlamaForCausalLM, tied head), model.safetensors (seeded random F32
      weights) and tokenizer.json (byte-level BPE: one token per byte, 256 tokens, no merges), which
      'prune model', 'prune eval' and transformers read. --vocab sets the embedding's rows (256 or more;
      the ids beyond 255 are never produced by the tokenizer, they only make the file larger).
      """,
    run: { args in try runMakeModel(&args) }, hidden: true)
}

func runMakeModel(_ args: inout Arguments) throws {
  let out = try args.required("out", hint: "give the folder to write: --out DIR")
  var shape = SyntheticModelFolder.Shape()
  shape.layers = try args.int("layers", default: shape.layers, range: 1...256)
  shape.hidden = try args.int("hidden", default: shape.hidden, range: 2...16384)
  shape.intermediate = try args.int("intermediate", default: shape.intermediate, range: 1...65536)
  shape.heads = try args.int("heads", default: shape.heads, range: 1...256)
  shape.keyValueHeads = try args.int("kv-heads", default: shape.keyValueHeads, range: 1...256)
  shape.vocabulary = try args.int("vocab", default: shape.vocabulary, range: 256...1 << 20)
  let seed = try args.int("seed", default: 1, range: 0...Int.max)
  try args.finish()
  guard shape.hidden % shape.heads == 0, shape.heads % shape.keyValueHeads == 0, (shape.hidden / shape.heads) % 2 == 0 else {
    throw CLIError(
      "--hidden \(shape.hidden), --heads \(shape.heads), --kv-heads \(shape.keyValueHeads) do not fit",
      hint: "--hidden must be a multiple of --heads with an even quotient, and --heads a multiple of --kv-heads")
  }
  do throws(ExportError) {
    try SyntheticModelFolder.write(shape, seed: UInt64(seed), to: URL(fileURLWithPath: out))
  } catch {
    throw CLIError(error, exitCode: 1)
  }
  print("wrote \(out): \(shape.layers) blocks, hidden \(shape.hidden), intermediate \(shape.intermediate), seed \(seed)")
}
