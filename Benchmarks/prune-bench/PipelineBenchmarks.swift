// prune-bench pipeline: each method's `prune model` run against its floor
// (Docs/pipeline.md#the-floor-what-each-schedule-needs).
//
//   prune-bench pipeline [--model PATH] [--methods magnitude,wanda,sparsegpt,admm,fista] [--sparsity 0.5]
//                        [--protocol austen-quick] [--blocks A-B] [--threads 2] [--eval] [--out DIR]
//
// First the rates (`MachineRates.measure`: a block read, the embedding, a block pass, the Grams,
// cross-Grams and norms of its input widths, the file system's write rate), then with --eval one dense
// evaluation of the protocol (the unit to compare methods across machines in), then per method a
// `ModelJob` as `prune model --no-eval` runs it (default schedule and options), its output deleted
// after. One JSON line per method and part:
//
//   {"method", "part", "seconds", "floor_seconds"}    part: read, calibration, solve, write, other, total
//
// `seconds` are the run's `seconds_by_phase` (calibration = embed + allocation + forward + gram + spill;
// other = the run's wall time, `total_seconds`, less its phases: bookkeeping), `floor_seconds` the
// cost model's price of what the schedule needs (`CostModel.inherentWork`, priced by
// `CostModel.floor`); the solve's floor is its own time, other's 0. The calibration line adds the
// floor's block passes and its two terms; the total line adds the ratio and `prune_seconds`.
// SparseLLM's schedule is not priced (floor null).

import Foundation
import PruneKit

func runPipelineBenchmark(
  model: URL, methods: [PruningMethod], pattern: SparsityPattern, evaluation: EvaluationProtocol,
  blocks: ClosedRange<Int>?, threads: Int, eval: Bool, outDirectory: URL
) throws {
  Parallelism.threads = threads
  func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
  try FileManager.default.createDirectory(at: outDirectory, withIntermediateDirectories: true)
  let loaded = try LoadedModel(contentsOf: model, loading: .lazy)
  let corpus = try Corpus(directory: nil)
  let spec = evaluation.calibration
  let calibration = try CalibrationSet.windows(
    of: try spec.text(in: corpus), tokenizer: loaded.tokenizer, sequenceLength: spec.sequenceLength,
    windows: spec.windows ?? 1, source: evaluation.rawValue)
  note("measuring the rates on block 0 (\(calibration.tokens.count) calibration tokens)")
  let rates = try MachineRates.measure(modelAt: model, calibration: calibration, writeDirectory: outDirectory)
  print(
    json(
      [
        ("bench", "pipeline-rates"), ("threads", threads),
        ("pass_seconds_per_1k_tokens", rates.passSecondsPerToken * 1000),
        ("open_seconds", rates.openSeconds), ("read_seconds_per_block", rates.readSecondsPerBlock),
        ("embed_seconds", rates.embedSeconds),
        ("write_mb_per_second", rates.writeBytesPerSecond / 1e6),
      ]
        + rates.gramSecondsPerToken.keys.sorted().flatMap { w in
          [
            ("gram_seconds_per_1k_tokens_\(w)", rates.gramSecondsPerToken[w]! * 1000 as Any),
            ("cross_seconds_per_1k_tokens_\(w)", (rates.crossSecondsPerToken[w] ?? 0) * 1000),
            ("norm_seconds_per_1k_tokens_\(w)", (rates.normSecondsPerToken[w] ?? 0) * 1000),
          ]
        }))
  fflush(stdout)
  if eval {
    let text = try evaluation.evaluation.text(in: corpus)
    let tokens = Perplexity.tokenize(text, with: loaded.tokenizer)
    let clock = ContinuousClock.now
    let report = try Perplexity.evaluate(
      loaded.model, tokens: tokens, sequenceLength: evaluation.evaluation.sequenceLength,
      windows: evaluation.evaluation.windows)
    let seconds = secondsSince(clock)
    print(
      json([
        ("method", "dense"), ("part", "evaluate"), ("seconds", seconds), ("perplexity", report.perplexity),
      ]))
    fflush(stdout)
  }
  for method in methods {
    let plan = ModelPruningPlan(method: method, pattern: pattern, blocks: blocks)
    // A folder of this run's own (never an existing one: `ModelJob` refuses those), removed after.
    let out = outDirectory.appendingPathComponent(
      "prune-bench-\(ProcessInfo.processInfo.processIdentifier)-\(method.rawValue)-"
        + pattern.description.replacingOccurrences(of: ":", with: "of"))
    note("\(method.rawValue): pruning to \(out.path)")
    let job = ModelJob(model: model, plan: plan, calibration: .protocolText(evaluation), output: out)
    let report = try job.run()
    let summary = report.summary
    let phases = summary.secondsByPhase
    let outputBytes = folderBytes(out)
    try FileManager.default.removeItem(at: out)
    let work = CostModel.inherentWork(
      plan: plan, model: loaded.model, blocks: summary.blocks, sequenceLength: calibration.sequenceLength)
    let floor = work.map {
      CostModel.floor($0, rates: rates, tokens: calibration.tokens.count, outputBytes: outputBytes)
    }
    let calibrationSeconds =
      phases.embed + (phases.allocation ?? 0) + phases.forward + phases.gram + (phases.spill ?? 0)
    let other = max(0, report.totalSeconds - phases.read - calibrationSeconds - phases.solve - phases.write)
    let parts: [(String, Double, Double?)] = [
      ("read", phases.read, floor?.read), ("calibration", calibrationSeconds, floor?.calibration),
      ("solve", phases.solve, phases.solve), ("write", phases.write, floor?.write), ("other", other, 0),
    ]
    for (part, seconds, floorSeconds) in parts {
      var fields: [(String, Any)] = [
        ("method", method.rawValue), ("part", part), ("seconds", seconds), ("floor_seconds", floorSeconds ?? .nan),
      ]
      if part == "calibration", let floor, let work {
        fields += [
          ("floor_block_passes", work.blockPasses), ("floor_passes_seconds", floor.passes),
          ("floor_sums_seconds", floor.sums),
        ]
      }
      print(json(fields))
    }
    let totalFloor = floor.map { $0.read + $0.calibration + phases.solve + $0.write }
    print(
      json([
        ("method", method.rawValue), ("part", "total"), ("seconds", report.totalSeconds),
        ("floor_seconds", totalFloor ?? .nan), ("ratio", totalFloor.map { report.totalSeconds / $0 } ?? .nan),
        ("prune_seconds", summary.seconds),
        ("threads", threads), ("pattern", pattern.description), ("blocks", summary.blocks.count),
      ]))
    fflush(stdout)
  }
}

/// Bytes of the regular files under `folder`.
func folderBytes(_ folder: URL) -> Int {
  let keys: [URLResourceKey] = [.fileSizeKey, .isRegularFileKey]
  guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: keys) else { return 0 }
  var total = 0
  for case let url as URL in walker {
    if let values = try? url.resourceValues(forKeys: Set(keys)), values.isRegularFile == true {
      total += values.fileSize ?? 0
    }
  }
  return total
}
