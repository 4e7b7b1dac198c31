// `prune model` without the command line: load a checkpoint, cut the calibration text, prune every
// block (ModelPruner) with a checkpoint folder beside the output, evaluate, and write a Hugging
// Face folder with the report inside it. The CLI parses options into a `ModelJob` and prints its
// events; the tests drive the job directly.

import Foundation
import PruneKernels
import PruneSolvers

/// Where the calibration text comes from.
public enum CalibrationSource: Sendable, Equatable {
  /// A protocol's calibration text and windows (austen-quick: 16 × 1024 tokens of emma.txt).
  case protocolText(EvaluationProtocol)
  /// The first `windows` windows of `sequenceLength` tokens of a UTF-8 text file.
  case file(URL, windows: Int, sequenceLength: Int)
}

/// One whole-model pruning run with its inputs and outputs.
public struct ModelJob: Sendable {
  /// A GGUF file or a Hugging Face folder.
  public var model: URL
  /// What to prune and how.
  public var plan: ModelPruningPlan
  /// The calibration text.
  public var calibration: CalibrationSource
  /// The output folder (must not exist); the checkpoint goes to `<output>.checkpoint`.
  public var output: URL
  /// An extra copy of the JSON report, if wanted.
  public var report: URL?
  /// Continue from the checkpoint folder if there is one.
  public var resume: Bool
  /// Perplexity of the pruned model on this protocol's evaluation text (nil: none).
  public var evaluation: EvaluationProtocol?
  /// The corpus folder (nil: the embedded one).
  public var corpus: URL?

  public init(
    model: URL, plan: ModelPruningPlan, calibration: CalibrationSource, output: URL, report: URL? = nil,
    resume: Bool = false, evaluation: EvaluationProtocol? = nil, corpus: URL? = nil
  ) {
    self.model = model
    self.plan = plan
    self.calibration = calibration
    self.output = output
    self.report = report
    self.resume = resume
    self.evaluation = evaluation
    self.corpus = corpus
  }

  /// The checkpoint folder of this job.
  public var checkpointDirectory: URL {
    output.standardizedFileURL.deletingLastPathComponent()
      .appendingPathComponent(output.standardizedFileURL.lastPathComponent + ".checkpoint")
  }

  /// Events of a run, in order.
  public enum Event: Sendable {
    case loaded(model: String, blocks: Int, parameters: Int, seconds: Double)
    case calibration(tokens: Int, windows: Int, sequenceLength: Int, source: String)
    case pruning(ModelPruningEvent)
    case evaluating(PerplexityProgress)
    case written(URL)
  }

  /// Checks the output paths before any work.
  public func checkPaths() throws(ModelJobError) {
    let manager = FileManager.default
    if isSameFile(output, model) || output.standardizedFileURL.path.hasPrefix(model.standardizedFileURL.path + "/") {
      throw .usage("--out \(output.path) is the input model", hint: "write the pruned model to a new folder; the input is never modified")
    }
    if manager.fileExists(atPath: output.path) {
      throw .usage("--out \(output.path) already exists", hint: "choose a new folder, or delete it first; outputs are never overwritten")
    }
    let parent = output.standardizedFileURL.deletingLastPathComponent()
    var isDirectory: ObjCBool = false
    guard manager.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw .usage("the folder \(parent.path) for --out does not exist", hint: "create it first (mkdir -p \(parent.path))")
    }
    guard manager.isWritableFile(atPath: parent.path) else {
      throw .usage("cannot write in \(parent.path)", hint: "choose an --out in a writable folder")
    }
    if let report, isSameFile(report, model) {
      throw .usage("--report \(report.path) is the input model", hint: "write the report to a new path")
    }
  }

  /// The run's identity for the checkpoint: every setting that changes the pruned weights.
  func fingerprint(_ calibration: CalibrationSet, modelSize: Int) -> [String: String] {
    var f = PruningCheckpoint.fingerprint(model: model, plan: plan, calibration: calibration)
    f["model_bytes"] = "\(modelSize)"
    f["blocks"] = plan.blocks.map { "\($0.lowerBound)-\($0.upperBound)" } ?? "all"
    return f
  }

  /// Runs the job and returns its report.
  public func run(progress: @escaping (Event) -> Void = { _ in }) throws(ModelJobError) -> ModelReport {
    let start = ContinuousClock.now
    try checkPaths()
    let corpusValue: Corpus?
    let text: String
    let calibrationWindows: Int
    let sequenceLength: Int
    let sourceName: String
    do {
      switch calibration {
      case let .protocolText(p):
        let corpus = try Corpus(directory: self.corpus)
        corpusValue = corpus
        text = try p.calibration.text(in: corpus)
        calibrationWindows = p.calibration.windows ?? 1
        sequenceLength = p.calibration.sequenceLength
        sourceName = "\(p.rawValue): \(p.calibration.files.joined(separator: " + "))"
      case let .file(url, windows, length):
        guard let data = FileManager.default.contents(atPath: url.path) else {
          throw ModelJobError.usage("cannot read --calib \(url.path)", hint: "check the path and its permissions")
        }
        guard let s = String(data: data, encoding: .utf8) else {
          throw ModelJobError.usage("--calib \(url.path) is not UTF-8 text", hint: "convert it to UTF-8 (iconv -t UTF-8)")
        }
        text = s
        calibrationWindows = windows
        sequenceLength = length
        sourceName = url.lastPathComponent
        corpusValue = evaluation == nil ? nil : try Corpus(directory: self.corpus)
      }
    } catch let e as ModelJobError {
      throw e
    } catch let e as CorpusError {
      throw .corpus(e)
    } catch {
      throw .usage("\(error)", hint: "check the calibration options")
    }

    let loadStart = ContinuousClock.now
    let loaded: LoadedModel
    do { loaded = try LoadedModel(contentsOf: model) } catch { throw .model(error) }
    var lm = loaded.model
    progress(.loaded(model: model.lastPathComponent, blocks: lm.blockCount, parameters: lm.parameterCount, seconds: secondsSince(loadStart)))

    let calibrationSet: CalibrationSet
    do {
      calibrationSet = try CalibrationSet.windows(
        of: text, tokenizer: loaded.tokenizer, sequenceLength: sequenceLength, windows: calibrationWindows, source: sourceName)
    } catch { throw .pruning(error) }
    progress(.calibration(tokens: calibrationSet.tokens.count, windows: calibrationSet.windows, sequenceLength: sequenceLength, source: sourceName))

    let pruner = ModelPruner(plan: plan, calibration: calibrationSet)
    _ = try wrap { () throws(ModelPruningError) in try pruner.blockList(for: lm) }
    let modelSize = ((try? FileManager.default.attributesOfItem(atPath: model.path))?[.size] as? Int) ?? 0
    let store = try wrap { () throws(ModelPruningError) in
      try PruningCheckpoint(directory: checkpointDirectory, fingerprint: fingerprint(calibrationSet, modelSize: modelSize), resume: resume)
    }
    let summary = try wrap { () throws(ModelPruningError) in
      try pruner.run(&lm, store: store, progress: { progress(.pruning($0)) })
    }

    var perplexity: PerplexityReport? = nil
    if let evaluation, let corpusValue {
      do {
        let spec = evaluation.evaluation
        let tokens = Perplexity.tokenize(try spec.text(in: corpusValue), with: loaded.tokenizer)
        perplexity = try Perplexity.evaluate(lm, tokens: tokens, sequenceLength: spec.sequenceLength, windows: spec.windows) {
          progress(.evaluating($0))
        }
      } catch let e as CorpusError {
        throw .corpus(e)
      } catch {
        throw .usage("evaluation failed: \(error)", hint: "check the evaluation protocol")
      }
    }

    var report = ModelReport(
      model: model.path, output: output.path, method: plan.method.rawValue, pattern: plan.pattern.description,
      options: plan.givenOptions, calibration: .init(source: sourceName, tokens: calibrationSet.tokens.count, windows: calibrationSet.windows, sequenceLength: sequenceLength, sha256: calibrationSet.digest),
      summary: summary, perplexity: perplexity, evaluation: evaluation?.rawValue, threads: Parallelism.threads, jobs: plan.jobs,
      totalSeconds: 0, peakResidentBytes: 0)

    let final = output.standardizedFileURL
    try writeModelFolder(lm, source: model, to: final, method: plan.method.rawValue, pattern: plan.pattern.description) { (folder: URL) throws(SafetensorsError) in
      report.totalSeconds = secondsSince(start)
      report.peakResidentBytes = peakResidentBytes()
      try writeAtomically(report.json(), to: folder.appendingPathComponent("pruning-report.json"))
      if let extra = self.report { try writeAtomically(report.json(), to: extra) }
    }
    progress(.written(final))
    store.remove()
    return report
  }

  private func wrap<R>(_ body: () throws(ModelPruningError) -> R) throws(ModelJobError) -> R {
    do { return try body() } catch { throw .pruning(error) }
  }
}

/// Writes a pruned model as a Hugging Face folder at `final` (which must not exist): the export
/// and `extras` (e.g. the report) go into a temporary sibling folder, which is renamed into place
/// only when everything is written, so `final` either does not exist or is complete.
func writeModelFolder(
  _ model: TransformerLM, source: URL, to final: URL, method: String, pattern: String,
  extras: (URL) throws(SafetensorsError) -> Void
) throws(ModelJobError) {
  let manager = FileManager.default
  let staging = final.deletingLastPathComponent()
    .appendingPathComponent(".\(final.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
  try? manager.removeItem(at: staging)
  do {
    try HuggingFaceExport.write(
      model: model, source: source, to: staging,
      metadata: ["format": "pt", "pruned_by": "PruneKit", "method": method, "pattern": pattern])
  } catch {
    try? manager.removeItem(at: staging)
    throw .export(error.description)
  }
  do { try extras(staging) } catch {
    try? manager.removeItem(at: staging)
    throw .export(error.description)
  }
  guard rename(staging.path, final.path) == 0 else {
    let reason = String(cString: strerror(errno))
    try? manager.removeItem(at: staging)
    throw .export("cannot move the finished folder to \(final.path): \(reason)")
  }
}

/// The JSON report of `prune model`, also written as `pruning-report.json` inside the output.
public struct ModelReport: Sendable, Codable, Equatable {
  public struct Calibration: Sendable, Codable, Equatable {
    public var source: String
    public var tokens: Int
    public var windows: Int
    public var sequenceLength: Int
    public var sha256: String
  }
  public var model: String
  public var output: String
  public var method: String
  public var pattern: String
  public var options: [String: String]
  public var calibration: Calibration
  public var summary: ModelPruningSummary
  public var perplexity: PerplexityReport?
  public var evaluation: String?
  public var threads: Int
  public var jobs: Int
  /// Wall time of the whole job (load, prune, evaluate, write).
  public var totalSeconds: Double
  /// Peak resident memory of the process so far (getrusage), bytes.
  public var peakResidentBytes: Int

  /// Pretty-printed JSON with sorted keys; non-finite numbers as strings.
  public func json() -> Data { prettyJSON(self) }
}

#if os(Linux)
  private let RUSAGE_SELF_WHO = __rusage_who_t(RUSAGE_SELF.rawValue)
#else
  private let RUSAGE_SELF_WHO = RUSAGE_SELF
#endif

/// Peak resident set size of this process, in bytes (getrusage: kilobytes on Linux, bytes on Darwin).
public func peakResidentBytes() -> Int {
  var usage = rusage()
  guard getrusage(RUSAGE_SELF_WHO, &usage) == 0 else { return 0 }
  #if os(Linux)
    return Int(usage.ru_maxrss) * 1024
  #else
    return Int(usage.ru_maxrss)
  #endif
}

/// Why a `ModelJob` failed. `isUsageError` separates mistakes in the request (exit code 2) from
/// failures while running (1).
public enum ModelJobError: Error, CustomStringConvertible {
  case usage(String, hint: String)
  case model(ModelLoadError)
  case corpus(CorpusError)
  case pruning(ModelPruningError)
  case export(String)

  public var isUsageError: Bool {
    switch self {
    case .usage: return true
    case .pruning(.invalidPlan), .pruning(.calibrationTooShort), .pruning(.resumeConflict): return true
    default: return false
    }
  }

  public var description: String {
    switch self {
    case let .usage(message, hint): return "\(message). Hint: \(hint)."
    case let .model(e): return e.description
    case let .corpus(e): return e.description
    case let .pruning(e): return e.description
    case let .export(message):
      return message.contains("Hint:") ? message : "\(message). Hint: check free space and permissions of the output folder."
    }
  }
}
