// prune make-model: a hidden test helper that writes a seeded LLaMA model as a Hugging Face folder
// (SyntheticModelFolder): small, so that the fault tests (Tests/fault-kill.sh) can run, kill and
// resume `prune model` many times in seconds without the real model; or of a real model's shape
// (--preset llama-7b, tinyllama-1b), in BF16 and shards, to measure the pipeline at scale.

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
            MakeModelOptions.keyValueHeads, MakeModelOptions.vocabulary, MakeModelOptions.untied,
            MakeModelOptions.preset, MakeModelOptions.dtype, MakeModelOptions.shardSize, MakeModelOptions.seed,
          ] as [any DeclaredOption]).map { Synopsis.optional($0) })
    ],
    about: """
      Test helper (used by Tests/fault-kill.sh; not listed by 'prune help'). Writes DIR (which must
      not exist) with config.json (LlamaForCausalLM, tied head unless --untied), model.safetensors
      (seeded random weights, F32 unless --dtype; shards with model.safetensors.index.json beyond
      --shard-size) and tokenizer.json (byte-level BPE: one token per byte, 256 tokens, no merges),
      which 'prune model', 'prune eval' and transformers read. --preset gives a real model's shape
      (llama-7b: 6.74B parameters, 13.5 GB in BF16; tinyllama-1b: 1.10B); the weights are drawn and
      written a million at a time, so memory stays small whatever the size.
      """,
    sections: [
      OptionSection([
        MakeModelOptions.out, MakeModelOptions.layers, MakeModelOptions.hidden, MakeModelOptions.intermediate,
        MakeModelOptions.heads, MakeModelOptions.keyValueHeads, MakeModelOptions.vocabulary, MakeModelOptions.untied,
        MakeModelOptions.preset, MakeModelOptions.dtype, MakeModelOptions.shardSize, MakeModelOptions.seed,
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
  static let untied = Flag(
    "untied", help: "give the model a head of its own (lm_head.weight) instead of the embedding's")
  static let preset = Option.choice(
    "preset", among: SyntheticModelFolder.presets.map { ($0.name, $0.shape) }, placeholder: "NAME",
    help: "a real model's shape, untied: llama-7b (hidden 4096, 32 blocks, FFN 11008, 32 heads, 32 KV heads,"
      + " vocabulary 32000) or tinyllama-1b (hidden 2048, 22 blocks, FFN 5632, 32 heads, 4 KV heads, vocabulary"
      + " 32000); instead of the shape options")
  static let dtype = Option.choice(
    "dtype", among: [("f32", SafetensorsDType.F32), ("bf16", .BF16), ("f16", .F16)], placeholder: "T", default: .F32,
    defaultText: "f32", help: "the weights' float type (rounded to nearest even)")
  static let shardSize = Option.size(
    "shard-size", default: SafetensorsShardLayout.defaultMaxShardBytes, defaultText: "5GB",
    help: "the largest safetensors shard (e.g. 5GB, 500MB, 2GiB); one shard is model.safetensors")
  /// The options a preset sets.
  static let shapeOptions: [any DeclaredOption] = [layers, hidden, intermediate, heads, keyValueHeads, vocabulary]
}

func runMakeModel(_ args: Arguments) throws {
  let out = args.value(MakeModelOptions.out)
  var shape = SyntheticModelFolder.Shape()
  if let preset = args[MakeModelOptions.preset] {
    if let given = MakeModelOptions.shapeOptions.first(where: { args.given($0) }) {
      throw CLIError(
        "--preset and --\(given.spec.name) both given", hint: "a preset sets the whole shape; drop one of them")
    }
    shape = preset
  } else {
    shape.layers = args.value(MakeModelOptions.layers)
    shape.hidden = args.value(MakeModelOptions.hidden)
    shape.intermediate = args.value(MakeModelOptions.intermediate)
    shape.heads = args.value(MakeModelOptions.heads)
    shape.keyValueHeads = args.value(MakeModelOptions.keyValueHeads)
    shape.vocabulary = args.value(MakeModelOptions.vocabulary)
  }
  if args[MakeModelOptions.untied] { shape.untied = true }
  let dtype = args.value(MakeModelOptions.dtype)
  let seed = args.value(MakeModelOptions.seed)
  guard shape.hidden % shape.heads == 0, shape.heads % shape.keyValueHeads == 0, (shape.hidden / shape.heads) % 2 == 0
  else {
    throw CLIError(
      "--hidden \(shape.hidden), --heads \(shape.heads), --kv-heads \(shape.keyValueHeads) do not fit",
      hint: "--hidden must be a multiple of --heads with an even quotient, and --heads a multiple of --kv-heads")
  }
  do throws(ExportError) {
    try SyntheticModelFolder.write(
      shape, seed: UInt64(seed), to: URL(fileURLWithPath: out), dtype: dtype,
      maxShardBytes: args.value(MakeModelOptions.shardSize))
  } catch {
    throw CLIError(error, exitCode: 1)
  }
  print(
    "wrote \(out): \(shape.layers) blocks, hidden \(shape.hidden), intermediate \(shape.intermediate), seed \(seed)"
      + (dtype == .F32 ? "" : ", \(dtype.rawValue)") + (shape.untied ? ", untied head" : ""))
}
