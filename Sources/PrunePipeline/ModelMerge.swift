// `prune merge`: joins the outputs of `prune model --blocks A-B` runs made by separate processes
// (or machines) under the corrected schedule, whose blocks are independent, into one model. Each
// part's pruning-report.json says which blocks it pruned and with what settings; the parts must
// agree on everything that changes the result and must not overlap.

import Foundation
import PruneKernels
import PruneSolvers

/// Merges block-range parts of one corrected-schedule run.
public struct ModelMerge: Sendable {
  /// The dense model the parts were pruned from (GGUF or Hugging Face folder).
  public var model: URL
  /// The parts: folders written by `prune model --blocks ...`.
  public var parts: [URL]
  /// The merged folder (must not exist).
  public var output: URL

  public init(model: URL, parts: [URL], output: URL) {
    self.model = model
    self.parts = parts
    self.output = output
  }

  /// Checks the parts, copies each part's blocks into the dense model, and writes the merged
  /// folder with a merged report. Blocks no part pruned stay dense and are listed in the report.
  public func run() throws(ModelJobError) -> ModelReport {
    let start = ContinuousClock.now
    let manager = FileManager.default
    guard !parts.isEmpty else {
      throw .usage("no parts given", hint: "give the folders of the block-range runs: --parts A,B")
    }
    if let problem = OutputSafety.folderOutputProblem(of: output, option: "--out") {
      throw .usage(problem.message, hint: problem.hint)
    }
    if manager.fileExists(atPath: output.path) {
      throw .usage("--out \(output.path) already exists", hint: "choose a new folder; outputs are never overwritten")
    }
    for part in parts where isSameFile(output, part) || isSameFile(output, model) {
      throw .usage(
        "--out \(output.path) is one of the inputs",
        hint: "write the merged model to a new folder; inputs are never modified")
    }
    try ModelJob.checkFolder(of: output, option: "--out")
    AtomicOutput.removeStaleTemporaries(of: output)
    var reports: [ModelReport] = []
    for part in parts {
      let file = part.appendingPathComponent("pruning-report.json")
      let data: Data
      do { data = try InputFiles.read(file) } catch {
        throw .usage(
          "part \(part.path) has no readable pruning-report.json (\(error.reason))",
          hint: "each part must be a folder written by 'prune model --blocks A-B'")
      }
      do { reports.append(try ModelReport.read(data)) } catch {
        switch error {
        case .olderFormat:
          throw .usage(
            error.message(path: file.path, what: "report"),
            hint:
              "prune the part again with this PruneKit (\(PruneKitVersion.current)), or merge it with the PruneKit"
              + " that wrote it")
        case .invalid:
          throw .usage(
            error.message(path: file.path, what: "report"),
            hint: "each part must be a folder written by 'prune model --blocks A-B'")
        }
      }
    }
    let first = reports[0]
    for (part, r) in zip(parts, reports) {
      guard r.summary.schedule == .corrected else {
        throw .usage(
          "\(part.path) was pruned with the \(r.summary.schedule.rawValue) schedule",
          hint: "only corrected-schedule blocks are independent; prune sequential runs in one process")
      }
      let same =
        r.method == first.method && r.pattern == first.pattern && r.options == first.options
        && r.calibration == first.calibration && r.summary.allocation == first.summary.allocation
      guard same else {
        let field =
          r.method != first.method
          ? "method (\(r.method), \(first.method))"
          : r.pattern != first.pattern
            ? "pattern (\(r.pattern), \(first.pattern))"
            : r.options != first.options
              ? "options" : r.calibration != first.calibration ? "calibration" : "sparsity allocation"
        throw .usage(
          "\(part.path) differs from \(parts[0].path) in its \(field)",
          hint: "merge only parts of one run, made with the same settings")
      }
    }
    var owner: [Int: Int] = [:]
    for (i, r) in reports.enumerated() {
      for b in r.summary.blocks {
        if let j = owner[b] {
          throw .usage(
            "block \(b) is in both \(parts[j].path) and \(parts[i].path)",
            hint: "give parts with disjoint --blocks ranges")
        }
        owner[b] = i
      }
    }
    let loaded: LoadedModel
    do { loaded = try LoadedModel(contentsOf: model) } catch { throw .model(error) }
    var lm = loaded.model
    for (i, part) in parts.enumerated() {
      let partModel: TransformerLM
      do { partModel = try LoadedModel(contentsOf: part).model } catch { throw .model(error) }
      guard partModel.config == lm.config else {
        throw .usage(
          "\(part.path) is not a pruned version of \(model.path) (its config.json describes another model)",
          hint: "give the dense model the parts were pruned from")
      }
      for b in reports[i].summary.blocks {
        for name in lm.linearLayerNames(block: b) {
          do { try lm.setLinearWeight(name, try partModel.linearWeights(name).weight) } catch {
            throw .pruning(.forward(error))
          }
        }
      }
    }
    let blocks = owner.keys.sorted()
    let layers = reports.flatMap(\.summary.layers).sorted { ($0.block, $0.name) < ($1.block, $1.name) }
    var summary = ModelPruningSummary(
      layers: layers, blocks: blocks, resumedBlocks: [], schedule: .corrected,
      prunableParameters: layers.reduce(0) { $0 + $1.shape[0] * $1.shape[1] },
      zeroParameters: layers.reduce(0) { $0 + $1.zeros },
      totalParameters: lm.parameterCount, seconds: reports.map(\.summary.seconds).reduce(0, +),
      estimate: first.summary.estimate)
    // An OWL allocation spans every block of the model, so the parts of one run share it.
    summary.allocation = first.summary.allocation
    var report = first
    report.prunekitVersion = PruneKitVersion.current
    report.model = model.relativePath
    report.output = output.relativePath
    report.summary = summary
    report.perplexity = nil
    report.evaluation = nil
    let retry = "nothing was left behind and the parts are unchanged; run the merge again"
    try writeModelFolder(
      lm, source: model, to: output.standardizedFileURL, method: first.method, pattern: first.pattern, retry: retry
    ) {
      (folder: URL) throws(WriteError) in
      report.totalSeconds = secondsSince(start)
      report.peakResidentBytes = peakResidentBytes()
      try AtomicOutput.write(report.json(), to: folder.appendingPathComponent("pruning-report.json"))
    }
    return report
  }
}
