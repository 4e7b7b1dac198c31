// prune vectors: write the test-vector suite (layer problems with known answers, PruneKit's outputs
// and a manifest) for other backends. The work is done by `TestVectors` (PruneOracle).

import Foundation
import PruneKit

extension Command {
  static let vectors = Command(
    name: "vectors", summary: "write layer problems with known answers for other backends",
    forms: [
      Form([
        .required(VectorsOptions.out), .optional(VectorsOptions.seed),
        .oneOf([[.required(VectorsOptions.model)], [.required(VectorsOptions.noReal)]], required: false),
        .optional(VectorsOptions.blocks), .optional(VectorsOptions.windows), .optional(VectorsOptions.corpus),
        .optional(VectorsOptions.realWeights), .optional(SharedOptions.threads), .optional(SharedOptions.quiet),
      ])
    ],
    about: """
      Writes DIR/manifest.json and one folder per case: problem.safetensors ('weight' F32, 'gram' F64),
      expected.safetensors (the known answer), <method>.safetensors (PruneKit's output of every
      method) and perturbed-*.safetensors (negative controls that must fail). See Docs/oracle.md.
      """,
    sections: [
      OptionSection([
        VectorsOptions.out, VectorsOptions.seed, VectorsOptions.model, VectorsOptions.noReal, VectorsOptions.blocks,
        VectorsOptions.windows, VectorsOptions.corpus, VectorsOptions.realWeights, SharedOptions.threads,
        SharedOptions.quiet,
      ])
    ],
    run: runVectors)
}

/// The options of `prune vectors`.
enum VectorsOptions {
  static let out = Option.path("out", placeholder: "DIR", help: "the folder to write")
  static let seed = Option.integer(
    "seed", placeholder: "S", in: 0...Int.max, default: 1, help: "seed of the synthetic cases")
  static let model = Option.text(
    "model", placeholder: "PATH", default: ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf",
    help: "the model of the real cases; when it is missing the real cases are skipped with a message")
  static let noReal = Flag("no-real", help: "skip the real cases")
  static let blocks = Option<[Int]>(
    "blocks", placeholder: "LIST", default: [0, 15], defaultText: "0,15",
    help: "blocks the real layers (q, o, gate, down) are cut from"
  ) { text, spelling throws(CLIError) in
    let blocks = text.split(separator: ",").map { Int($0) }
    guard !blocks.isEmpty, blocks.allSatisfy({ ($0 ?? -1) >= 0 }) else {
      throw CLIError(
        "\(spelling) takes block numbers such as 0,15, got '\(text)'",
        hint: "write a comma-separated list of non-negative integers.")
    }
    return blocks.map { $0! }
  }
  static let windows = Option.integer(
    "windows", in: 1...1024, default: 4, help: "calibration windows of 1024 tokens of the austen-quick text")
  static let corpus = Option.path("corpus", placeholder: "DIR", help: "the Austen corpus (default: the embedded one)")
  static let realWeights = Option.choice(
    "real-weights", among: ["sparsegpt", "all"], placeholder: "W", default: "sparsegpt",
    help: "sparsegpt stores SparseGPT's pruned weight of each real case beside every method's mask and error;"
      + " all stores every method's weight (136 MB more)")
}

func runVectors(_ args: Arguments) throws {
  let out = args.value(VectorsOptions.out)
  let noReal = args[VectorsOptions.noReal]
  if noReal, args.given(VectorsOptions.model) {
    throw CLIError("--no-real and --model both given", hint: "give one of them.")
  }
  Parallelism.defaultThreads = args.value(SharedOptions.threads)
  let quiet = args[SharedOptions.quiet]
  var model: URL? = nil
  if !noReal {
    let path = args.value(VectorsOptions.model)
    model = URL(fileURLWithPath: path)  // a missing file is skipped by TestVectors, with a note
    if !FileManager.default.fileExists(atPath: path) {
      printError(
        "prune vectors: no model at \(path); the real cases are skipped."
          + " Hint: run scripts/fetch-model.sh, give --model PATH, or pass --no-real")
    }
  }
  var suite = TestVectors(
    output: out, seed: UInt64(args.value(VectorsOptions.seed)), model: model, blocks: args.value(VectorsOptions.blocks),
    windows: args.value(VectorsOptions.windows), corpus: args[VectorsOptions.corpus])
  suite.allRealWeights = args.value(VectorsOptions.realWeights) == "all"
  let manifest: VectorManifest
  do {
    manifest = try suite.run { line in if !quiet { printError("  \(line)") } }
  } catch {
    throw CLIError(error, exitCode: 1)
  }
  let synthetic = manifest.cases.filter { $0.kind != "real" }.count
  print(
    "wrote \(manifest.cases.count) cases (\(synthetic) synthetic, \(manifest.cases.count - synthetic) real) to \(out.path)/manifest.json"
  )
  for note in manifest.notes { print("  note: \(note)") }
}
