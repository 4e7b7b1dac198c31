// prune make-model: a hidden test helper that writes a small seeded LLaMA model as a Hugging Face
// folder (SyntheticModelFolder), so that the fault tests (Tests/fault-kill.sh) can run, kill and
// resume `prune model` many times in seconds, without the real model.

import Foundation
import PruneKit

extension Command {
  static let makeModel = Command(
    name: "make-model", summary: "test helper: write a small seeded LLaMA model folder",
    forms: [
      Form(
        [.required(MakeModelOptions.out)]
          + ([
            MakeModelOptions.layers, MakeModelOptions.hidden, MakeModelOptions.intermediate, MakeModelOptions.heads,
            MakeModelOptions.keyValueHeads, MakeModelOptions.vocabulary, MakeModelOptions.seed,
          ] as [any DeclaredOption]).map { Synopsis.optional($0) })
    ],
    about: """
      Test helper (used by Tests/fault-kill.sh; not listed by 'prune help'). Writes DIR (which must
      not exist) with config.json (LlamaForCausalLM, tied head), model.safetensors (seeded random F32
      weights) and tokenizer.json (byte-level BPE: one token per byte, 256 tokens, no merges), which
      'prune model', 'prune eval' and transformers read.
      """,
    sections: [
      OptionSection([
        MakeModelOptions.out, MakeModelOptions.layers, MakeModelOptions.hidden, MakeModelOptions.intermediate,
        MakeModelOptions.heads, MakeModelOptions.keyValueHeads, MakeModelOptions.vocabulary, MakeModelOptions.seed,
      ])
    ],
    hidden: true, run: runMakeModel)
}

/// The options of `prune make-model`; the defaults are `SyntheticModelFolder.Shape()`'s.
enum MakeModelOptions {
  static let out = Option.text("out", placeholder: "DIR", help: "the model folder to write (must not exist)")
  static let layers = Option.integer(
    "layers", in: 1...256, default: SyntheticModelFolder.Shape().layers, help: "decoder blocks")
  static let hidden = Option.integer(
    "hidden", in: 2...16384, default: SyntheticModelFolder.Shape().hidden, help: "hidden size")
  static let intermediate = Option.integer(
    "intermediate", in: 1...65536, default: SyntheticModelFolder.Shape().intermediate, help: "FFN size")
  static let heads = Option.integer(
    "heads", in: 1...256, default: SyntheticModelFolder.Shape().heads, help: "attention heads")
  static let keyValueHeads = Option.integer(
    "kv-heads", in: 1...256, default: SyntheticModelFolder.Shape().keyValueHeads, help: "key-value heads")
  static let vocabulary = Option.integer(
    "vocab", in: 256...1 << 20, default: SyntheticModelFolder.Shape().vocabulary,
    help: "the embedding's rows; the ids beyond 255 are never produced by the tokenizer and only make the file larger")
  static let seed = Option.integer("seed", in: 0...Int.max, default: 1, help: "seed of the weights")
}

func runMakeModel(_ args: Arguments) throws {
  let out = args.value(MakeModelOptions.out)
  var shape = SyntheticModelFolder.Shape()
  shape.layers = args.value(MakeModelOptions.layers)
  shape.hidden = args.value(MakeModelOptions.hidden)
  shape.intermediate = args.value(MakeModelOptions.intermediate)
  shape.heads = args.value(MakeModelOptions.heads)
  shape.keyValueHeads = args.value(MakeModelOptions.keyValueHeads)
  shape.vocabulary = args.value(MakeModelOptions.vocabulary)
  let seed = args.value(MakeModelOptions.seed)
  guard shape.hidden % shape.heads == 0, shape.heads % shape.keyValueHeads == 0, (shape.hidden / shape.heads) % 2 == 0
  else {
    throw CLIError(
      "--hidden \(shape.hidden), --heads \(shape.heads), --kv-heads \(shape.keyValueHeads) do not fit",
      hint: "--hidden must be a multiple of --heads with an even quotient, and --heads a multiple of --kv-heads")
  }
  do throws(ExportError) {
    try SyntheticModelFolder.write(shape, seed: UInt64(seed), to: URL(fileURLWithPath: out))
  } catch {
    throw CLIError(error, exitCode: 1)
  }
  print(
    "wrote \(out): \(shape.layers) blocks, hidden \(shape.hidden), intermediate \(shape.intermediate), seed \(seed)")
}
