// `prune model` without the command line: load a checkpoint, cut the calibration text, prune every
// block (ModelPruner) into the output's shards, kept in a checkpoint folder beside the output
// (ShardedOutputStore: the shards are the checkpoint), evaluate, complete the Hugging Face folder
// with the report inside it and move it into place. The CLI parses options into a `ModelJob` and prints its
// events; the tests drive the job directly.

import Foundation
import PruneKernels
import PruneSolvers

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Where the calibration text comes from.
public enum CalibrationSource: Sendable, Equatable {
  /// A protocol's calibration text and windows (austen-quick: 16 × 1024 tokens of emma.txt).
  case protocolText(EvaluationProtocol)
  /// The first `windows` windows of `sequenceLength` tokens of a UTF-8 text file.
  case file(URL, windows: Int, sequenceLength: Int)
}

/// Whether the calibration activations may go to disk (`prune model --spill`,
/// Docs/pipeline.md#spill).
public enum SpillMode: String, Sendable, Equatable, CaseIterable, Codable {
  /// Spill only when the in-memory estimate exceeds the memory budget and the spilled one fits.
  case auto
  /// Always spill (the same result; for tests, or to leave memory to other processes).
  case always
  /// Never spill: a run whose in-memory estimate exceeds the budget is refused.
  case never
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
  /// The float type of the output's weights (`auto`: the source's; see `OutputDType`).
  public var dtype: OutputDType
  /// The largest output shard, in bytes of tensor data (default 5 GB, as transformers).
  public var maxShardBytes: Int
  /// The memory the run may use (nil: `MemoryBudget.defaultBytes()`, the machine's available
  /// memory minus a margin). A run whose `MemoryEstimate` exceeds it is refused before any work.
  public var maxMemory: Int?
  /// Whether the calibration activations may be spilled to `spillDirectory` (default `auto`: when
  /// they do not fit `maxMemory`).
  public var spill: SpillMode = .auto

  public init(
    model: URL, plan: ModelPruningPlan, calibration: CalibrationSource, output: URL, report: URL? = nil,
    resume: Bool = false, evaluation: EvaluationProtocol? = nil, corpus: URL? = nil, dtype: OutputDType = .auto,
    maxShardBytes: Int = SafetensorsShardLayout.defaultMaxShardBytes, maxMemory: Int? = nil
  ) {
    self.model = model
    self.plan = plan
    self.calibration = calibration
    self.output = output
    self.report = report
    self.resume = resume
    self.evaluation = evaluation
    self.corpus = corpus
    self.dtype = dtype
    self.maxShardBytes = maxShardBytes
    self.maxMemory = maxMemory
  }

  /// How the output is stored: `dtype` resolved against the source — for `auto`, the type a
  /// Hugging Face folder stores its first block's first linear weight in (BF16 stays BF16), asked of
  /// `model`'s own source (nothing is opened again); F32 for a GGUF, whatever its tensor types.
  public func storage(for model: TransformerLM) -> OutputStorage {
    var stored: StoredFloatType? = nil
    if dtype == .auto, model.blockCount > 0, let first = model.linearLayerNames(block: 0).first {
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: self.model.path, isDirectory: &isDirectory), isDirectory.boolValue {
        stored = model.storedType(of: first + ".weight")
      }
    }
    return OutputStorage(dtype: dtype.resolved(source: stored), maxShardBytes: maxShardBytes)
  }

  /// The checkpoint folder of this job.
  public var checkpointDirectory: URL {
    output.standardizedFileURL.deletingLastPathComponent()
      .appendingPathComponent(output.standardizedFileURL.lastPathComponent + ".checkpoint")
  }

  /// The scratch folder the calibration activations are spilled to (`OUT.spill`, beside the
  /// output; owner-only, removed when the run ends or fails; one a killed run left is removed by the
  /// next run on the same output).
  public var spillDirectory: URL {
    output.standardizedFileURL.deletingLastPathComponent()
      .appendingPathComponent(output.standardizedFileURL.lastPathComponent + ".spill")
  }

  /// Events of a run, in order.
  public enum Event: Sendable {
    case loaded(model: String, blocks: Int, parameters: Int, seconds: Double)
    case calibration(tokens: Int, windows: Int, sequenceLength: Int, source: String)
    case pruning(ModelPruningEvent)
    /// The evaluation has run block `block` of `blocks` on every window.
    case evaluatingBlock(PerplexityBlockProgress)
    case evaluating(PerplexityProgress)
    /// The output folder is being written (under a temporary name), `bytes` in all.
    case writing(URL, bytes: Int)
    /// The output folder is complete; the checkpoint is removed next.
    case written(URL)
  }

  /// Checks the output paths before any work: the output is not the input, does not exist (unless
  /// `finishing`: a resumed run whose output was completed just before a kill), and its folder
  /// exists and accepts new files (tried, so that a read-only mount fails here even for root); the
  /// same for the folder of `report`.
  public func checkPaths(finishing: Bool = false) throws(ModelJobError) {
    let manager = FileManager.default
    if isSameFile(output, model) || output.standardizedFileURL.path.hasPrefix(model.standardizedFileURL.path + "/") {
      throw .usage(
        "--out \(output.path) is the input model",
        hint: "write the pruned model to a new folder; the input is never modified")
    }
    if let problem = OutputSafety.folderOutputProblem(of: output, option: "--out") {
      throw .usage(problem.message, hint: problem.hint)
    }
    if manager.fileExists(atPath: output.path) && !finishing {
      if manager.fileExists(atPath: checkpointDirectory.path) {
        throw .usage(
          "--out \(output.path) already exists, and so does its checkpoint \(checkpointDirectory.path): the run was stopped"
            + " after writing the output but before removing the checkpoint",
          hint: "add --resume to check the output and finish, or delete \(checkpointDirectory.path)")
      }
      throw .usage(
        "--out \(output.path) already exists",
        hint: "choose a new folder, or delete it first; outputs are never overwritten")
    }
    try Self.checkFolder(of: output, option: "--out")
    if let report {
      if isSameFile(report, model) {
        throw .usage("--report \(report.path) is the input model", hint: "write the report to a new path")
      }
      var isDirectory: ObjCBool = false
      if manager.fileExists(atPath: report.path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw .usage(
          "--report \(report.path) is a folder", hint: "give a file path for the report, e.g. --report report.json")
      }
      try Self.checkFolder(of: report, option: "--report")
    }
  }

  /// Checks that the folder that will hold `path` exists, is a folder and accepts new files.
  static func checkFolder(of path: URL, option: String) throws(ModelJobError) {
    if let problem = OutputSafety.folderProblem(of: path, option: option) {
      throw .usage(problem.message, hint: problem.hint)
    }
  }

  /// Bytes the output folder needs: every parameter in the output's dtype (F32 unless told), plus
  /// the header and tokenizer files (a few MB at most; counted as 1%).
  static func outputBytes(_ model: TransformerLM, dtype: SafetensorsDType = .F32) -> Int {
    model.parameterCount * dtype.size + model.parameterCount * dtype.size / 100
  }

  /// Bytes of the checkpoint files of `blocks` (their linear layers in F32).
  static func checkpointBytes(_ model: TransformerLM, blocks: [Int]) -> Int {
    blocks.reduce(0) { sum, b in
      sum
        + model.linearLayerNames(block: b).reduce(0) { s, n in
          s + ((try? model.linearShape(n)).map { $0[0] * $0[1] * 4 } ?? 0)
        }
    }
  }

  /// Fails when the output's file system cannot hold the output and the checkpoint files still to
  /// be written (both exist until the output is complete), before any work is done.
  func checkSpace(_ model: TransformerLM, blocks: [Int], dtype: SafetensorsDType = .F32, spillBytes: Int = 0)
    throws(ModelJobError)
  {
    let parent = output.standardizedFileURL.deletingLastPathComponent()
    guard let available = OutputSafety.availableBytes(parent) else { return }
    let done = resume ? Set(PruningCheckpoint.completedBlocks(in: checkpointDirectory)) : []
    if let error = Self.spaceShortfall(
      model, blocks: blocks.filter { !done.contains($0) }, folder: parent, available: available, dtype: dtype,
      spillBytes: spillBytes)
    {
      throw error
    }
  }

  /// The error when `available` bytes cannot hold the output of `model`, the checkpoint files
  /// of `blocks` and `spillBytes` of spilled activations; nil when they can.
  static func spaceShortfall(
    _ model: TransformerLM, blocks: [Int], folder: URL, available: Int, dtype: SafetensorsDType = .F32,
    spillBytes: Int = 0
  ) -> ModelJobError? {
    let outputBytes = Self.outputBytes(model, dtype: dtype)
    let checkpointBytes = Self.checkpointBytes(model, blocks: blocks)
    guard available < outputBytes + checkpointBytes + spillBytes else { return nil }
    var detail =
      checkpointBytes == 0
      ? "the output \(OutputSafety.size(outputBytes)), whose shards are also the checkpoint"
      : "the output \(OutputSafety.size(outputBytes)) and the checkpoint \(OutputSafety.size(checkpointBytes))"
    if spillBytes > 0 { detail += ", and the spilled activations \(OutputSafety.size(spillBytes))" }
    return .noSpace(
      folder: folder.path, needed: outputBytes + checkpointBytes + spillBytes, available: available, detail: detail)
  }

  /// Bytes of activation files on disk at once when spilled: the hidden states of every calibration
  /// token, twice (a block's input and the next one's), 1 + J times under `corrected` with J jobs,
  /// at least three times under OWL (its dense pass keeps h₀ beside its own input and output).
  static func spillBytes(_ model: TransformerLM, plan: ModelPruningPlan, tokens: Int) -> Int {
    max(plan.schedule == .corrected ? 1 + plan.jobs : 2, plan.allocation == .owl ? 3 : 0) * tokens
      * model.config.hiddenSize * MemoryLayout<Float>.size
  }

  /// The run's identity for the checkpoint: every setting that changes the pruned weights.
  func fingerprint(_ calibration: CalibrationSet, modelSize: Int, storage: OutputStorage = .f32) -> [String: String] {
    var f = PruningCheckpoint.fingerprint(model: model, plan: plan, calibration: calibration)
    f["dtype"] = storage.dtype.rawValue
    f["shard_bytes"] = "\(storage.maxShardBytes)"
    f["model_bytes"] = "\(modelSize)"
    f["blocks"] = plan.blocks.map { "\($0.lowerBound)-\($0.upperBound)" } ?? "all"
    return f
  }

  /// Runs the job and returns its report.
  public func run(progress: @escaping (Event) -> Void = { _ in }) throws(ModelJobError) -> ModelReport {
    let start = ContinuousClock.now
    let manager = FileManager.default
    // Killed after the output was renamed into place but before the checkpoint was removed: the
    // output is checked against this run's settings below, and the run ends there.
    let finishing =
      resume && manager.fileExists(atPath: output.path) && manager.fileExists(atPath: checkpointDirectory.path)
    try checkPaths(finishing: finishing)
    // The temporaries of killed runs on the same output (see AtomicOutput).
    let outputFolder = output.standardizedFileURL.deletingLastPathComponent()
    AtomicOutput.removeStaleTemporaries(of: output)
    if let report { AtomicOutput.removeStaleTemporaryFiles(of: report) }
    let corpusValue: Corpus?
    let text: String
    let calibrationWindows: Int
    let sequenceLength: Int
    let sourceName: String
    do {
      switch calibration {
      case .protocolText(let p):
        let corpus = try Corpus(directory: self.corpus)
        corpusValue = corpus
        text = try p.calibration.text(in: corpus)
        calibrationWindows = p.calibration.windows ?? 1
        sequenceLength = p.calibration.sequenceLength
        sourceName = "\(p.rawValue): \(p.calibration.files.joined(separator: " + "))"
      case .file(let url, let windows, let length):
        let data: Data
        do { data = try InputFiles.read(url) } catch {
          throw ModelJobError.usage("cannot read --calib \(url.path) (\(error.reason))", hint: error.hint ?? "")
        }
        guard let s = String(data: data, encoding: .utf8) else {
          throw ModelJobError.usage(
            "--calib \(url.path) is not UTF-8 text", hint: "convert it to UTF-8 (iconv -t UTF-8)")
        }
        text = s
        calibrationWindows = windows
        sequenceLength = length
        sourceName = url.relativePath
        corpusValue = evaluation == nil ? nil : try Corpus(directory: self.corpus)
      }
    } catch let e as ModelJobError {
      throw e
    } catch let e as CorpusError {
      throw .corpus(e)
    } catch {
      throw .usage("cannot read the calibration text: \(error)", hint: "check --calib, or give --protocol austen-quick")
    }

    var phases = PhaseSeconds()
    let loadStart = ContinuousClock.now
    let loaded: LoadedModel
    // Lazily: each block is read when the pruner reaches it, the embedding and head when used.
    do { loaded = try LoadedModel(contentsOf: model, loading: .lazy) } catch { throw .model(error) }
    var lm = loaded.model
    progress(
      .loaded(
        model: model.lastPathComponent, blocks: lm.blockCount, parameters: lm.parameterCount,
        seconds: secondsSince(loadStart)))
    phases.read += secondsSince(loadStart)

    let calibrationSet: CalibrationSet
    do {
      calibrationSet = try CalibrationSet.windows(
        of: text, tokenizer: loaded.tokenizer, sequenceLength: sequenceLength, windows: calibrationWindows,
        source: sourceName)
    } catch { throw .pruning(error) }
    progress(
      .calibration(
        tokens: calibrationSet.tokens.count, windows: calibrationSet.windows, sequenceLength: sequenceLength,
        source: sourceName))

    // The pruned weights are installed rounded to the output's dtype, so that the blocks after
    // them, the evaluation and a resumed run all see the weights that are written.
    let storage = storage(for: lm)
    var roundedPlan = plan
    roundedPlan.outputDType = storage.dtype
    // Each block is dropped once the store holds it: the pruner keeps one block at a time.
    var pruner = ModelPruner(plan: roundedPlan, calibration: calibrationSet, releasesBlocks: true)
    let blocks = try wrap { () throws(ModelPruningError) in try pruner.blockList(for: lm) }
    // The memory budget, before any block is read or anything is written: the activations are
    // spilled to disk when they do not fit and the spilled run does.
    var spilling = false
    if !finishing {
      pruner.evaluation = try evaluationWindows(tokenizer: loaded.tokenizer, corpus: corpusValue)
      spilling = try checkMemory(
        pruner.estimate(for: lm), spilled: pruner.estimate(for: lm, spillFolder: spillDirectory.path))
    }
    // The output's shards are the checkpoint: no block is stored twice.
    if !finishing {
      try checkSpace(
        lm, blocks: [], dtype: storage.dtype,
        spillBytes: spilling ? Self.spillBytes(lm, plan: roundedPlan, tokens: calibrationSet.tokens.count) : 0)
    }
    _ = blocks
    let modelSize = ((try? FileManager.default.attributesOfItem(atPath: model.path))?[.size] as? Int) ?? 0
    let runFingerprint = fingerprint(calibrationSet, modelSize: modelSize, storage: storage)
    if finishing {
      // The output was moved into place; only the fingerprint is left to check.
      let leftover = try wrap { () throws(ModelPruningError) in
        try PruningCheckpoint(directory: checkpointDirectory, fingerprint: runFingerprint, resume: resume)
      }
      let finished = try finishedReport(calibration: calibrationSet)
      try writeExtraReport(finished)
      progress(.written(output.standardizedFileURL))
      leftover.remove()
      return finished
    }
    // The plan of the output's tensors and files; the store keeps only what it reads from the
    // source (the pruned weights come from the model), so the plan is released right after.
    var exportPlan: ExportPlan?
    do { exportPlan = try ExportPlan(model: lm, source: model) } catch { throw .export(error) }
    let store = try wrap { () throws(ModelPruningError) in
      try ShardedOutputStore(
        directory: checkpointDirectory, fingerprint: runFingerprint, resume: resume, plan: exportPlan!, model: lm,
        storage: storage,
        metadata: ["pruned_by": "PruneKit", "method": plan.method.rawValue, "pattern": plan.pattern.description])
    }
    exportPlan = nil
    // The spill folder lives as long as the pruning: removed when it ends, also by an error. One a
    // killed run left is removed here, once the checkpoint is this run's (not a concurrent run's).
    if spilling {
      pruner.spill = try wrap { () throws(ModelPruningError) in try ActivationSpill.create(spillDirectory) }
    } else {
      ActivationSpill.removeStale(spillDirectory)
    }
    defer { pruner.spill?.remove() }
    var summary = try wrap { () throws(ModelPruningError) in
      try pruner.run(&lm, store: store, progress: { progress(.pruning($0)) })
    }
    pruner.spill?.remove()
    phases.read += summary.secondsByPhase.read
    summary.secondsByPhase.read = phases.read

    var report = ModelReport(
      model: model.relativePath, output: output.relativePath, method: plan.method.rawValue,
      pattern: plan.pattern.description,
      options: plan.givenOptions,
      calibration: .init(
        source: sourceName, tokens: calibrationSet.tokens.count, windows: calibrationSet.windows,
        sequenceLength: sequenceLength, sha256: calibrationSet.digest),
      summary: summary, perplexity: nil, evaluation: evaluation?.rawValue, threads: Parallelism.threads,
      jobs: plan.jobs,
      totalSeconds: 0, peakResidentBytes: 0, dtype: storage.dtype.rawValue, maxShardBytes: storage.maxShardBytes)

    let final = output.standardizedFileURL
    progress(.writing(final, bytes: Self.outputBytes(lm, dtype: storage.dtype)))
    let retry =
      "no partial output was left in \(outputFolder.path); the pruned blocks stay in \(checkpointDirectory.path),"
      + " so the same command with --resume only completes the output"
    var clock = ContinuousClock.now
    try wrap { () throws(ModelPruningError) in try store.finish(model: lm) { _ in } }
    report.summary.secondsByPhase.write += secondsSince(clock)
    // The evaluation reads the output as written (the model in memory has dropped its pruned
    // blocks), a block at a time, with the source's tokenizer: it measures what is shipped.
    clock = ContinuousClock.now
    report.perplexity = try evaluateOutput(store.staging, tokenizer: loaded.tokenizer, corpus: corpusValue, progress)
    report.summary.secondsByPhase.evaluate = secondsSince(clock)
    // The report's own writing and the move into place come after the total it holds.
    report.totalSeconds = secondsSince(start)
    report.peakResidentBytes = peakResidentBytes()
    do { try AtomicOutput.write(report.json(), to: store.staging.appendingPathComponent("pruning-report.json")) } catch
    {
      throw .write(path: error.path, reason: error.reason, retry: retry)
    }
    // The finished folder moves into place in one step (as AtomicOutput.writeFolder's).
    let destination: URL
    do { destination = try AtomicOutput.folderDestination(of: final) } catch {
      throw .usage("cannot write \(error.path): \(error.reason)", hint: error.hint ?? "give the path of a new folder")
    }
    let failure = AtomicOutput.moveIntoPlace(store.staging, to: destination, replacing: true)
    guard failure == 0 else {
      throw .write(
        path: final.path, reason: "cannot move the finished folder into place: \(String(cString: strerror(failure)))",
        retry: retry)
    }
    // The extra copy only once the output is in place, so a failed run leaves an earlier one as it was.
    try writeExtraReport(report)
    progress(.written(final))
    store.remove()
    return report
  }

  /// The windows the evaluation after pruning runs on (nil without one), for the estimate: the
  /// protocol's count, or every complete window of its text (tokenized here to count them).
  func evaluationWindows(tokenizer: BPETokenizer, corpus: Corpus?) throws(ModelJobError) -> (
    windows: Int, sequenceLength: Int
  )? {
    guard let evaluation, let corpus else { return nil }
    let spec = evaluation.evaluation
    if let windows = spec.windows { return (windows, spec.sequenceLength) }
    do {
      let tokens = Perplexity.tokenize(try spec.text(in: corpus), with: tokenizer)
      return (tokens.count / spec.sequenceLength, spec.sequenceLength)
    } catch { throw .corpus(error) }
  }

  /// Whether the run spills its activations (`spill`: always; auto: when `inMemory` exceeds
  /// `maxMemory`, or the default budget, and `spilled` fits it). Refuses, before any work, a run
  /// whose estimate exceeds the budget either way, saying whether spilling would have helped.
  func checkMemory(_ inMemory: MemoryEstimate, spilled: MemoryEstimate) throws(ModelJobError) -> Bool {
    let budget = MemoryBudget.bytes(given: maxMemory)
    let given = maxMemory != nil
    switch spill {
    case .always:
      if let budget, spilled.totalBytes > budget { throw .memory(estimate: spilled, budget: budget, given: given) }
      return true
    case .never:
      if let budget, inMemory.totalBytes > budget {
        throw .memory(
          estimate: inMemory, budget: budget, given: given,
          spilledFits: spilled.totalBytes <= budget ? spilled.totalBytes : nil)
      }
      return false
    case .auto:
      guard let budget, inMemory.totalBytes > budget else { return false }
      if spilled.totalBytes > budget { throw .memory(estimate: spilled, budget: budget, given: given) }
      return true
    }
  }

  /// The perplexity of the output folder `folder` as written (nil without an evaluation protocol),
  /// its text cut by `tokenizer` (the source's).
  func evaluateOutput(
    _ folder: URL, tokenizer: BPETokenizer, corpus: Corpus?, _ progress: @escaping (Event) -> Void
  ) throws(ModelJobError) -> PerplexityReport? {
    guard let evaluation, let corpus else { return nil }
    let written: TransformerLM
    do { written = try LoadedModel(contentsOf: folder, loading: .lazy).model } catch { throw .model(error) }
    do {
      let spec = evaluation.evaluation
      let tokens = Perplexity.tokenize(try spec.text(in: corpus), with: tokenizer)
      return try Perplexity.evaluate(
        written, tokens: tokens, sequenceLength: spec.sequenceLength, windows: spec.windows,
        progress: { progress(.evaluating($0)) }, blockProgress: { progress(.evaluatingBlock($0)) })
    } catch let e as CorpusError {
      throw .corpus(e)
    } catch let e as PerplexityError {
      throw .evaluation(protocolName: evaluation.rawValue, e)
    } catch {
      throw .usage(
        "evaluating on \(evaluation.rawValue): \(error)", hint: "check the evaluation protocol, or give --no-eval")
    }
  }

  /// Writes the `--report` copy (if asked for) of a run whose output is complete.
  func writeExtraReport(_ report: ModelReport) throws(ModelJobError) {
    guard let extra = self.report else { return }
    do { try AtomicOutput.write(report.json(), to: extra) } catch {
      throw .write(
        path: extra.path, reason: error.reason,
        retry: "\(output.path) is complete; the same command with --resume writes the report and finishes")
    }
  }

  /// The report of an output completed by an earlier, killed run of this job (the checkpoint's
  /// fingerprint has been matched already): its pruning-report.json must name this run's
  /// method, pattern and calibration.
  func finishedReport(calibration: CalibrationSet) throws(ModelJobError) -> ModelReport {
    let file = output.appendingPathComponent("pruning-report.json")
    let hint =
      "the checkpoint matches this run but --out does not; delete one of \(output.path) and \(checkpointDirectory.path)"
    guard let data = FileManager.default.contents(atPath: file.path) else {
      throw .usage("--out \(output.path) exists but has no pruning-report.json", hint: hint)
    }
    let report: ModelReport
    do { report = try ModelReport.read(data) } catch {
      throw .usage(error.message(path: file.path, what: "report"), hint: hint)
    }
    guard report.method == plan.method.rawValue, report.pattern == plan.pattern.description,
      report.calibration.sha256 == calibration.digest, report.summary.schedule == plan.schedule
    else {
      throw .usage(
        "--out \(output.path) holds a model pruned with other settings (\(report.method) \(report.pattern))", hint: hint
      )
    }
    return report
  }

  private func wrap<R>(_ body: () throws(ModelPruningError) -> R) throws(ModelJobError) -> R {
    do { return try body() } catch { throw .pruning(error) }
  }
}

/// Writes a pruned model as a Hugging Face folder at `final` (which must not exist): the export
/// and `extras` (e.g. the report) go into a temporary sibling folder (`.NAME.partial-PID`), which
/// is renamed into place only when everything is written (`AtomicOutput.writeFolder`), so `final`
/// either does not exist or is complete. On failure the temporary folder is removed and the error
/// names the file of `final` that could not be written; `retry` tells the user how to continue.
/// `extras` gets the temporary folder and reports the failure of a file of it by its name in the
/// temporary folder (the path is mapped to `final`).
func writeModelFolder(
  _ model: TransformerLM, source: URL, to final: URL, method: String, pattern: String,
  storage: OutputStorage = .f32, retry: String, extras: (URL) throws(WriteError) -> Void
) throws(ModelJobError) {
  let plan: ExportPlan
  do { plan = try ExportPlan(model: model, source: source) } catch { throw .export(error) }
  /// A file's path in `final`, from its path in the temporary folder `staging`.
  func finalPath(_ path: String, in staging: URL) -> String {
    path.hasPrefix(staging.path + "/")
      ? final.appendingPathComponent(String(path.dropFirst(staging.path.count + 1))).path : path
  }
  enum Failure: Error {
    case export(ExportError)
    case extra(WriteError)
  }
  do throws(FolderWriteError<Failure>) {
    try AtomicOutput.writeFolder(final, name: .partial, replacing: true) { (staging: URL) throws(Failure) in
      do throws(ExportError) {
        try HuggingFaceExport.write(
          plan, metadata: ["format": "pt", "pruned_by": "PruneKit", "method": method, "pattern": pattern],
          storage: storage, into: staging,
          naming: final)
      } catch {
        throw .export(error)
      }
      do throws(WriteError) { try extras(staging) } catch {
        throw .extra(WriteError(path: finalPath(error.path, in: staging), reason: error.reason))
      }
    }
  } catch {
    switch error {
    case .create(let folder, let reason):
      throw .write(path: final.path, reason: "cannot create a folder in \(folder): \(reason)", retry: retry)
    case .fill(.export(.writeFailed(let path, let reason))):
      throw .write(path: path, reason: reason, retry: retry)
    case .fill(.export(let e)):
      throw .export(e)
    case .fill(.extra(let e)):
      throw .write(path: e.path, reason: e.reason, retry: retry)
    case .move(let reason, _):
      throw .write(path: final.path, reason: "cannot move the finished folder into place: \(reason)", retry: retry)
    case .refused(let e):
      throw .usage("cannot write \(e.path): \(e.reason)", hint: e.hint ?? "give the path of a new folder")
    }
  }
}

/// The JSON report of `prune model`, also written as `pruning-report.json` inside the output (and
/// by `prune merge`, whose parts' reports are read back). PruneKit's JSON form (`reportJSON`):
/// snake_case keys, `prunekit_version`, the paths as given, option values typed by their declared
/// kind, every layer's dampings named by unit (`PruningReportJSON`), and the totals of the summary.
public struct ModelReport: Sendable, Codable, Equatable {
  public struct Calibration: Sendable, Codable, Equatable {
    public var source: String
    public var tokens: Int
    public var windows: Int
    public var sequenceLength: Int
    public var sha256: String
  }
  /// The version of PruneKit that wrote the report (`PruneKitVersion.current` for a new one).
  public var prunekitVersion: String
  /// The input model and the output folder, as given.
  public var model: String
  public var output: String
  public var method: String
  public var pattern: String
  /// The method options given, by report key (`MethodOption.reportKey`), typed by their kind.
  public var options: [String: ReportedOptionValue]
  public var calibration: Calibration
  public var summary: ModelPruningSummary
  public var perplexity: PerplexityReport?
  public var evaluation: String?
  public var threads: Int
  public var jobs: Int
  /// Wall time of the whole job (load, prune, evaluate, write), seconds.
  public var totalSeconds: Double
  /// Peak resident memory of the process so far (getrusage), bytes.
  public var peakResidentBytes: Int
  /// The safetensors dtype of the output's weights ("F32", "BF16", "F16"; absent in reports of
  /// versions before it could be chosen, which wrote F32).
  public var dtype: String?
  /// The output's largest shard, in bytes of tensor data (absent before it could be chosen).
  public var maxShardBytes: Int?

  /// A report written by this PruneKit, the options given as the command line spelled them.
  public init(
    model: String, output: String, method: String, pattern: String, options: [String: String],
    calibration: Calibration, summary: ModelPruningSummary, perplexity: PerplexityReport?, evaluation: String?,
    threads: Int, jobs: Int, totalSeconds: Double, peakResidentBytes: Int, dtype: String? = nil,
    maxShardBytes: Int? = nil
  ) {
    self.prunekitVersion = PruneKitVersion.current
    self.model = model
    self.output = output
    self.method = method
    self.pattern = pattern
    self.options = ReportedOptionValue.typed(options, method: method)
    self.calibration = calibration
    self.summary = summary
    self.perplexity = perplexity
    self.evaluation = evaluation
    self.threads = threads
    self.jobs = jobs
    self.totalSeconds = totalSeconds
    self.peakResidentBytes = peakResidentBytes
    self.dtype = dtype
    self.maxShardBytes = maxShardBytes
  }

  private enum CodingKeys: String, CodingKey {
    case prunekitVersion, model, output, method, pattern, options, calibration, summary, perplexity, evaluation
    case threads, jobs, totalSeconds, peakResidentBytes, dtype, maxShardBytes
  }

  /// Read back with `reportJSONDecoder`: the options typed again by their declarations (a real
  /// option written as `1` is the number 1.0 again).
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    prunekitVersion = try c.decode(String.self, forKey: .prunekitVersion)
    model = try c.decode(String.self, forKey: .model)
    output = try c.decode(String.self, forKey: .output)
    method = try c.decode(String.self, forKey: .method)
    pattern = try c.decode(String.self, forKey: .pattern)
    options = ReportedOptionValue.retyped(
      try c.decode([String: ReportedOptionValue].self, forKey: .options), method: method)
    calibration = try c.decode(Calibration.self, forKey: .calibration)
    summary = try c.decode(ModelPruningSummary.self, forKey: .summary)
    perplexity = try c.decodeIfPresent(PerplexityReport.self, forKey: .perplexity)
    evaluation = try c.decodeIfPresent(String.self, forKey: .evaluation)
    threads = try c.decode(Int.self, forKey: .threads)
    jobs = try c.decode(Int.self, forKey: .jobs)
    totalSeconds = try c.decode(Double.self, forKey: .totalSeconds)
    peakResidentBytes = try c.decode(Int.self, forKey: .peakResidentBytes)
    dtype = try c.decodeIfPresent(String.self, forKey: .dtype)
    maxShardBytes = try c.decodeIfPresent(Int.self, forKey: .maxShardBytes)
  }

  /// PruneKit's JSON (`reportJSON`): pretty-printed, sorted snake_case keys, non-finite numbers as
  /// strings, a final newline.
  public func json() -> Data { reportJSON(self) }

  /// Keys only the report format before 0.7.0 wrote (camelCase), to name its writer.
  static let olderKeys: Set<String> = ["totalSeconds", "peakResidentBytes"]

  /// A `pruning-report.json` read back; one in the format before 0.7.0 is refused
  /// (`ReportReadFailure.olderFormat`), never half read.
  public static func read(_ data: Data) throws(ReportReadFailure) -> ModelReport {
    try readReportJSON(ModelReport.self, from: data, olderKeys: olderKeys)
  }
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

/// The memory a run may use when `--max-memory` is not given: what the machine has available
/// (Linux: `MemAvailable` of /proc/meminfo, which counts the page cache the kernel can drop;
/// Darwin: the physical memory) minus `marginFraction` of it.
public enum MemoryBudget {
  /// The share of the available memory kept free: the estimate is within 25% of the measured peak
  /// (Docs/pipeline.md#memory), so a run estimated at 80% of the available memory peaks at most at
  /// 100% of it; the other processes of the machine get what the run leaves.
  public static let marginFraction = 0.2

  /// The machine's available memory in bytes (nil when it cannot be read).
  public static func availableBytes() -> Int? {
    #if os(Linux)
      guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
      for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
        let fields = line.split(separator: " ")
        guard fields.count >= 2, let kilobytes = Int(fields[1]) else { return nil }
        return kilobytes * 1024
      }
      return nil
    #else
      return Int(ProcessInfo.processInfo.physicalMemory)
    #endif
  }

  /// The default budget: the available memory minus the margin (nil when it cannot be read: no limit).
  public static func defaultBytes() -> Int? {
    availableBytes().map { Int(Double($0) * (1 - marginFraction)) }
  }

  /// The budget of a run: `given` (`--max-memory`), else the default (nil: no limit).
  public static func bytes(given: Int?) -> Int? { given ?? defaultBytes() }

  /// The budget in words, for the refusal's message: "--max-memory 4.00 GB", or "the budget of …
  /// (the machine's available memory less a 20% margin)".
  public static func describe(_ budget: Int, given: Bool) -> String {
    given
      ? "--max-memory \(OutputSafety.size(budget))"
      : "the budget of \(OutputSafety.size(budget)) (the machine's available memory less a"
        + " \(Int(marginFraction * 100))% margin)"
  }
}

/// Why a `ModelJob` failed. `isUsageError` separates mistakes in the request (exit code 2) from
/// failures while running (1).
public enum ModelJobError: PruneKitError {
  case usage(String, hint: String)
  case model(ModelLoadError)
  case corpus(CorpusError)
  case pruning(ModelPruningError)
  /// The model could not be exported (a problem of the model or its source, not of the disk).
  case export(ExportError)
  /// A file of the output could not be written; `retry` says what was kept and how to continue.
  case write(path: String, reason: String, retry: String)
  /// Perplexity could not be evaluated on a protocol's text.
  case evaluation(protocolName: String, PerplexityError)
  /// The output's file system has less room than the run needs (checked before any work).
  case noSpace(folder: String, needed: Int, available: Int, detail: String)
  /// The memory estimate exceeds the budget (`--max-memory` if `given`, else the default; checked
  /// before any work). `estimate` is the spilled one when the activations would be spilled
  /// (`spillFolder` set); `spilledFits` holds the spilled total when `--spill never` refused a run
  /// that spilling would have let run.
  case memory(estimate: MemoryEstimate, budget: Int, given: Bool, spilledFits: Int? = nil)

  public var isUsageError: Bool {
    switch self {
    case .usage, .memory: return true
    case .pruning(.invalidPlan), .pruning(.calibrationTooShort), .pruning(.resumeConflict): return true
    default: return false
    }
  }

  public var message: String {
    switch self {
    case .usage(let message, _): return message
    case .model(let e): return e.message
    case .corpus(let e): return e.message
    case .pruning(let e): return e.message
    case .export(let e): return e.message
    case .write(let path, let reason, _): return "cannot write \(path): \(OutputSafety.plain(reason))"
    case .evaluation(let name, let e): return "evaluating the pruned model on \(name): \(e.reason)"
    case .noSpace(let folder, let needed, let available, let detail):
      return "not enough free space in \(folder): the run writes about \(OutputSafety.size(needed)) (\(detail)),"
        + " \(OutputSafety.size(available)) are free"
    case .memory(let estimate, let budget, let given, _):
      return "the run needs about \(OutputSafety.size(estimate.totalBytes)) of memory (estimate"
        + (estimate.spillFolder == nil ? "" : ", with the calibration activations spilled to disk") + "), more than "
        + MemoryBudget.describe(budget, given: given)
    }
  }

  public var hint: String? {
    switch self {
    case .usage(_, let hint): return sentence(hint)
    case .model(let e): return e.hint
    case .corpus(let e): return e.hint
    case .pruning(let e): return e.hint
    case .export(let e): return e.hint ?? "check free space and permissions of the output folder."
    case .write(_, let reason, let retry):
      return OutputSafety.writeHint(reason: OutputSafety.plain(reason), retry: retry)
    case .evaluation(_, let e): return e.hint ?? "give --no-eval to skip the evaluation."
    case .noSpace: return "free space on that disk or choose another output folder; nothing was written."
    case .memory(let estimate, _, _, let spilledFits):
      if let spilledFits {
        return "drop --spill never: with the calibration activations spilled to disk (--spill auto, the default)"
          + " the run needs about \(OutputSafety.size(spilledFits)); nothing was read or written."
      }
      var hint = "use fewer --nsamples or a shorter --seqlen, or give a larger --max-memory"
      let phases = [
        estimate.embeddingBytes + estimate.hiddenBytes, estimate.pruningBytes, estimate.evaluationBytes,
      ]
      if estimate.evaluationBytes == phases.max() {
        hint += ", or --no-eval (the evaluation after pruning needs \(OutputSafety.size(estimate.evaluationBytes)))"
      }
      if estimate.spillFolder != nil { hint += " (the calibration activations are spilled to disk already)" }
      return hint + "; nothing was read or written."
    }
  }
}
