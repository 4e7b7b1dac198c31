// prune vectors: write the test-vector suite (layer problems with known answers, PruneKit's outputs
// and a manifest) for other backends. The work is done by `TestVectors` (PruneOracle).

import Foundation
import PruneKit

extension Command {
  static let vectors = Command(
    name: "vectors", summary: "write layer problems with known answers for other backends",
    usage: """
      Usage: prune vectors --out DIR [--seed S] [--model PATH | --no-real] [--blocks 0,15] [--windows 4]
                           [--real-weights sparsegpt|all] [--threads N] [--quiet]

      Writes DIR/manifest.json and one folder per case: problem.safetensors ('weight' F32, 'gram' F64),
      expected.safetensors (the known answer), <method>.safetensors (PruneKit's output of every
      method) and perturbed-*.safetensors (negative controls that must fail). See Docs/oracle.md.

        --seed S       seed of the synthetic cases (default 1)
        --model PATH   the model of the real cases (default .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf);
                       when it is missing the real cases are skipped with a message
        --no-real      skip the real cases
        --blocks LIST  blocks the real layers (q, o, gate, down) are cut from (default 0,15)
        --windows N    calibration windows of 1024 tokens of the austen-quick text (default 4)
        --corpus DIR   the Austen corpus (default: the embedded one)
        --real-weights sparsegpt (default) stores SparseGPT's pruned weight of each real case beside
                       every method's mask and error; all stores every method's weight (136 MB more)
        --quiet        no progress lines on standard error
      """,
    run: { args in try runVectors(&args) })
}

func runVectors(_ args: inout Arguments) throws {
  let out = URL(fileURLWithPath: try args.required("out", hint: "give the folder to write: --out DIR"))
  let seed = try args.int("seed", default: 1, range: 0...Int.max)
  let noReal = args.flag("no-real")
  let modelPath = args.string("model")
  let blockList = args.string("blocks") ?? "0,15"
  let windows = try args.int("windows", default: 4, range: 1...1024)
  let corpus = args.string("corpus").map { URL(fileURLWithPath: $0) }
  let threads = try args.int("threads", default: Parallelism.processorCount, range: 1...4096)
  let quiet = args.flag("quiet")
  let realWeights = args.string("real-weights") ?? "sparsegpt"
  try args.finish()
  guard realWeights == "sparsegpt" || realWeights == "all" else {
    throw CLIError("--real-weights takes sparsegpt or all, got '\(realWeights)'", hint: "all stores every method's weight (136 MB more)")
  }
  if noReal, modelPath != nil { throw CLIError("--no-real and --model both given", hint: "give one of them") }
  let blocks = blockList.split(separator: ",").compactMap { Int($0) }
  guard !blocks.isEmpty, blocks.count == blockList.split(separator: ",").count, blocks.allSatisfy({ $0 >= 0 }) else {
    throw CLIError("--blocks takes block numbers such as 0,15, got '\(blockList)'", hint: "a comma-separated list of non-negative integers")
  }
  Parallelism.defaultThreads = threads
  var model: URL? = nil
  if !noReal {
    let path = modelPath ?? ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    model = URL(fileURLWithPath: path)  // a missing file is skipped by TestVectors, with a note
    if !FileManager.default.fileExists(atPath: path) {
      printError("prune vectors: no model at \(path); the real cases are skipped. Hint: run scripts/fetch-model.sh, give --model PATH, or pass --no-real")
    }
  }
  var suite = TestVectors(output: out, seed: UInt64(seed), model: model, blocks: blocks, windows: windows, corpus: corpus)
  suite.allRealWeights = realWeights == "all"
  let manifest: VectorManifest
  do {
    manifest = try suite.run { line in if !quiet { printError("  \(line)") } }
  } catch {
    throw CLIError(error, exitCode: 1)
  }
  let synthetic = manifest.cases.filter { $0.kind != "real" }.count
  print("wrote \(manifest.cases.count) cases (\(synthetic) synthetic, \(manifest.cases.count - synthetic) real) to \(out.path)/manifest.json")
  for note in manifest.notes { print("  note: \(note)") }
}
