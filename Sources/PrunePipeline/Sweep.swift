// `prune sweep` and the main job without the command line: methods × sparsities on one model and
// one protocol, each pruned from the dense model and evaluated, the table written as JSON and as
// an SVG chart after every entry so that an interrupted sweep resumes where it stopped.

import Foundation
import PruneKernels
import PruneSolvers

/// One method of a sweep, with its options.
public struct SweepMethod: Sendable {
  public var method: PruningMethod
  public var options: MethodOptions
  /// The options as given, by report key (`MethodOption.reportKey`) → value as typed, recorded in
  /// the table (and part of the entry's identity).
  public var givenOptions: [String: String]

  public init(_ method: PruningMethod, options: MethodOptions = MethodOptions(), givenOptions: [String: String] = [:]) {
    self.method = method
    self.options = options
    self.givenOptions = givenOptions
  }
}

/// One row of the table (in `sweep.json`, PruneKit's JSON form: snake_case keys, the options
/// typed by their declared kind).
public struct SweepEntry: Sendable, Codable, Equatable {
  /// `dense` or the method's name.
  public var method: String
  /// The pattern as given ("0.5", "2:4"; "dense" for the dense row).
  public var pattern: String
  /// The group a ratio was counted over for this method ("matrix", or "row" for Wanda's default;
  /// nil for N:M and the dense row): `pattern` "0.5" means each whole matrix for one method and each
  /// row for another.
  public var group: String?
  /// The pattern's fraction of pruned weights (0 for dense; N/M for N:M).
  public var sparsity: Double
  /// The options given to the method, by report key, typed by their kind.
  public var options: [String: ReportedOptionValue]
  /// The schedule used (nil for dense).
  public var schedule: String?
  /// Perplexity on the protocol's evaluation text.
  public var perplexity: Double
  /// Wall time of the pruning (0 for dense) and of the evaluation, seconds.
  public var pruneSeconds: Double
  public var evalSeconds: Double
  /// Realised sparsity of the pruned layers, and the mean relative layer error (nil when not
  /// measured: magnitude reads no calibration data).
  public var realisedSparsity: Double
  public var meanRelativeError: Double?
  /// Peak resident memory of the process when the entry finished, bytes.
  public var peakResidentBytes: Int

  public init(
    method: String, pattern: String, group: String? = nil, sparsity: Double, options: [String: ReportedOptionValue],
    schedule: String?, perplexity: Double, pruneSeconds: Double, evalSeconds: Double, realisedSparsity: Double,
    meanRelativeError: Double?, peakResidentBytes: Int
  ) {
    self.method = method
    self.pattern = pattern
    self.group = group
    self.sparsity = sparsity
    self.options = options
    self.schedule = schedule
    self.perplexity = perplexity
    self.pruneSeconds = pruneSeconds
    self.evalSeconds = evalSeconds
    self.realisedSparsity = realisedSparsity
    self.meanRelativeError = meanRelativeError
    self.peakResidentBytes = peakResidentBytes
  }

  private enum CodingKeys: String, CodingKey {
    case method, pattern, group, sparsity, options, schedule, perplexity, pruneSeconds, evalSeconds, realisedSparsity
    case meanRelativeError, peakResidentBytes
  }

  /// Read back from `sweep.json`: the options typed again by their declarations (a real option
  /// written as `1` is the number 1.0 again), so that a resumed entry has the key it was written with.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    method = try c.decode(String.self, forKey: .method)
    pattern = try c.decode(String.self, forKey: .pattern)
    group = try c.decodeIfPresent(String.self, forKey: .group)
    sparsity = try c.decode(Double.self, forKey: .sparsity)
    options = ReportedOptionValue.retyped(
      try c.decode([String: ReportedOptionValue].self, forKey: .options), method: method)
    schedule = try c.decodeIfPresent(String.self, forKey: .schedule)
    perplexity = try c.decode(Double.self, forKey: .perplexity)
    pruneSeconds = try c.decode(Double.self, forKey: .pruneSeconds)
    evalSeconds = try c.decode(Double.self, forKey: .evalSeconds)
    realisedSparsity = try c.decode(Double.self, forKey: .realisedSparsity)
    meanRelativeError = try c.decodeIfPresent(Double.self, forKey: .meanRelativeError)
    peakResidentBytes = try c.decode(Int.self, forKey: .peakResidentBytes)
  }

  /// What identifies the entry for resuming.
  var key: String { Self.key(method: method, pattern: pattern, options: options) }

  static func key(method: String, pattern: String, options: [String: ReportedOptionValue]) -> String {
    "\(method) \(pattern) \(SweepTable.optionsText(options))"
  }
}

/// The whole table, as written to `sweep.json` (PruneKit's JSON form, `reportJSON`).
public struct SweepTable: Sendable, Codable, Equatable {
  /// The version of PruneKit that wrote the table (`PruneKitVersion.current` for a new one).
  public var prunekitVersion: String
  /// The model, as given.
  public var model: String
  public var evaluation: String
  public var calibrationSha256: String
  public var threads: Int
  public var entries: [SweepEntry]

  public init(
    model: String, evaluation: String, calibrationSha256: String, threads: Int, entries: [SweepEntry],
    prunekitVersion: String = PruneKitVersion.current
  ) {
    self.prunekitVersion = prunekitVersion
    self.model = model
    self.evaluation = evaluation
    self.calibrationSha256 = calibrationSha256
    self.threads = threads
    self.entries = entries
  }

  /// PruneKit's JSON (`reportJSON`): pretty-printed, sorted snake_case keys, a final newline.
  public func json() -> Data { reportJSON(self) }

  /// A `sweep.json` read back; one in the format before 0.7.0 is refused
  /// (`ReportReadFailure.olderFormat`), never half read.
  public static func read(_ data: Data) throws(ReportReadFailure) -> SweepTable {
    try readReportJSON(SweepTable.self, from: data, olderKeys: ["calibrationSha256"])
  }

  /// The chart of the table, drawn for what a reader compares:
  ///
  ///   - several unstructured sparsities: perplexity against sparsity, one line per method, each
  ///     starting at the dense model (sparsity 0); N:M entries are in the table only (their x would
  ///     collide with 0.5);
  ///   - one sparsity (the main job's 0.5), with or without N:M patterns: a bar per method and
  ///     pattern, the value written on each bar, the dense model as a dashed reference line.
  ///
  /// Both use a logarithmic perplexity axis (one collapsed method is orders of magnitude above the
  /// others). A method run with several sets of options is one line or bar per set, named
  /// "method (option=value,…)"; otherwise by its name alone.
  public func chart() -> SweepChart {
    let title = "\(URL(fileURLWithPath: model).lastPathComponent): perplexity on \(evaluation)"
    let dense = entries.first { $0.method == "dense" }
    let pruned = entries.filter { $0.method != "dense" }
    // The label of each entry: its method, and its options when the method ran with several sets.
    var optionSets: [String: [String]] = [:]
    for e in pruned where !(optionSets[e.method] ?? []).contains(Self.optionsText(e.options)) {
      optionSets[e.method, default: []].append(Self.optionsText(e.options))
    }
    func label(_ e: SweepEntry) -> String {
      let options = Self.optionsText(e.options)
      return (optionSets[e.method]?.count ?? 0) > 1
        ? "\(e.method) (\(options.isEmpty ? "defaults" : options))" : e.method
    }
    var names: [String] = []
    for e in pruned where !names.contains(label(e)) { names.append(label(e)) }
    let unstructured = pruned.filter { !$0.pattern.contains(":") }
    if Set(unstructured.map(\.sparsity)).count >= 2 {
      let series = names.map { name in
        var points = unstructured.filter { label($0) == name }.map { (x: $0.sparsity, y: $0.perplexity) }
        if let dense, !points.isEmpty { points.insert((x: 0, y: dense.perplexity), at: 0) }
        return (name: name, points: points.sorted { $0.x < $1.x })
      }
      return .lines(
        LineChart(title: title, xLabel: "sparsity (unstructured)", yLabel: "perplexity", series: series, logY: true))
    }
    var patterns: [String] = []
    for e in pruned where !patterns.contains(e.pattern) { patterns.append(e.pattern) }
    let series = patterns.map { pattern in
      (
        name: pattern,
        values: names.map { name in pruned.last { label($0) == name && $0.pattern == pattern }?.perplexity }
      )
    }
    return .bars(
      BarChart(
        title: title, xLabel: "method", yLabel: "perplexity", legendTitle: "sparsity", categories: names,
        series: series,
        references: dense.map { [(name: "dense", value: $0.perplexity)] } ?? [], logY: true))
  }

  /// Options as "key=value,key=value", keys sorted ("" for none).
  static func optionsText(_ options: [String: ReportedOptionValue]) -> String {
    options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
  }

  /// The table as aligned text for a terminal.
  public func text() -> String {
    let header = ["method", "pattern", "perplexity", "prune time", "sparsity", "mean rel. error"]
    var rows = [header]
    for e in entries {
      let dense = e.method == "dense"
      rows.append([
        e.method, dense ? "-" : e.pattern, String(format: "%.3f", e.perplexity),
        dense ? "-" : formatSeconds(e.pruneSeconds),
        dense ? "0" : String(format: "%.4f", e.realisedSparsity),
        e.meanRelativeError.map { dense ? "-" : String(format: "%.3e", $0) } ?? "-",
      ])
    }
    let widths = header.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
    return rows.map { row in
      row.enumerated().map { c, cell in
        // Text left-aligned, numbers right-aligned.
        let pad = String(repeating: " ", count: widths[c] - cell.count)
        return c < 2 ? cell + pad : pad + cell
      }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
  }
}

/// A duration for people: "42.0s" under a minute, "3m07s" above.
public func formatSeconds(_ s: Double) -> String {
  let t = Int(s.rounded())
  return t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : String(format: "%.1fs", s)
}

/// Methods × patterns on one model and protocol.
public struct SweepJob: Sendable {
  public var model: URL
  public var methods: [SweepMethod]
  /// Sparsities as the CLI spells them: ratios ("0.5", per method's default group) or N:M ("2:4").
  public var patterns: [String]
  public var evaluation: EvaluationProtocol
  /// The folder for sweep.json, sweep.svg, checkpoints and saved models (created if missing).
  public var output: URL
  /// Methods whose pruned models are written as Hugging Face folders under `output/models/`.
  public var save: Set<PruningMethod>
  /// Schedule override (nil: each method's default).
  public var schedule: PruningSchedule?
  public var corpus: URL?

  public init(
    model: URL, methods: [SweepMethod], patterns: [String], evaluation: EvaluationProtocol, output: URL,
    save: Set<PruningMethod> = [], schedule: PruningSchedule? = nil, corpus: URL? = nil
  ) {
    self.model = model
    self.methods = methods
    self.patterns = patterns
    self.evaluation = evaluation
    self.output = output
    self.save = save
    self.schedule = schedule
    self.corpus = corpus
  }

  public enum Event: Sendable {
    case loaded(model: String, parameters: Int)
    case starting(method: String, pattern: String, index: Int, of: Int)
    case skipped(SweepEntry)
    case pruning(ModelPruningEvent)
    case evaluating(PerplexityProgress)
    case finished(SweepEntry)
    case saved(URL)
  }

  var jsonURL: URL { output.appendingPathComponent("sweep.json") }
  var svgURL: URL { output.appendingPathComponent("sweep.svg") }

  /// The pattern of `text` for `method` (ratios take the method's default group).
  public static func pattern(_ text: String, for method: PruningMethod) throws(SparsityPatternError) -> SparsityPattern
  {
    try SparsityPattern(parsing: text, defaultGroup: method.defaultGroup)
  }

  /// Runs every entry not already in `output/sweep.json` and returns the whole table.
  public func run(progress: @escaping (Event) -> Void = { _ in }) throws(ModelJobError) -> SweepTable {
    let manager = FileManager.default
    if let problem = OutputSafety.folderOutputProblem(of: output, option: "--out") {
      throw .usage(problem.message, hint: problem.hint)
    }
    var isDirectory: ObjCBool = false
    if manager.fileExists(atPath: output.path, isDirectory: &isDirectory), !isDirectory.boolValue {
      throw .usage("--out \(output.path) is a file", hint: "give a folder for the sweep's table, chart and checkpoints")
    }
    // Tried before the model is loaded (the folder itself is created later): a read-only folder
    // fails here even for root.
    var existing = output.standardizedFileURL
    while !manager.fileExists(atPath: existing.path) && existing.path != "/" { existing.deleteLastPathComponent() }
    if let reason = OutputSafety.unwritableReason(existing) {
      let what = existing == output.standardizedFileURL ? "cannot create files in it" : "cannot create the folder"
      throw .write(path: output.path, reason: "\(what): \(reason)", retry: "nothing was done yet")
    }
    // Every pattern must be valid for every method before the first (long) entry runs.
    var plans: [(SweepMethod, String, SparsityPattern)] = []
    for m in methods {
      for p in patterns {
        do { plans.append((m, p, try Self.pattern(p, for: m.method))) } catch {
          throw .usage("\(m.method) at \(p): \(error.message)", hint: "give --sparsities such as 0.5,0.7 or 2:4")
        }
      }
    }
    let corpus: Corpus
    do { corpus = try Corpus(directory: self.corpus) } catch { throw .corpus(error) }
    let loaded: LoadedModel
    do { loaded = try LoadedModel(contentsOf: model) } catch { throw .model(error) }
    let dense = loaded.model
    progress(.loaded(model: model.lastPathComponent, parameters: dense.parameterCount))
    let calibration: CalibrationSet
    let evalTokens: [Int]
    do {
      let spec = evaluation.calibration
      calibration = try CalibrationSet.windows(
        of: try spec.text(in: corpus), tokenizer: loaded.tokenizer, sequenceLength: spec.sequenceLength,
        windows: spec.windows ?? 1, source: evaluation.rawValue)
      evalTokens = Perplexity.tokenize(try evaluation.evaluation.text(in: corpus), with: loaded.tokenizer)
    } catch let e as CorpusError {
      throw .corpus(e)
    } catch let e as ModelPruningError {
      throw .pruning(e)
    } catch {
      throw .usage("\(error)", hint: "check --protocol")
    }

    // The folder is created only now that every input has been read, and removed again when the
    // run fails before its first entry is recorded: a failed sweep leaves nothing it created.
    let created = !manager.fileExists(atPath: output.path)
    var recorded = false
    defer {
      if created && !recorded && !manager.fileExists(atPath: jsonURL.path) { try? manager.removeItem(at: output) }
    }
    do { try manager.createDirectory(at: output, withIntermediateDirectories: true) } catch {
      let reason = PruningCheckpoint.reason(error)
      throw .write(path: output.path, reason: "cannot create the folder: \(reason)", retry: "nothing was done yet")
    }
    // Tried before the first (long) entry: a read-only folder fails here even for root.
    if let reason = OutputSafety.unwritableReason(output) {
      throw .write(path: output.path, reason: "cannot create files in it: \(reason)", retry: "nothing was done yet")
    }
    AtomicOutput.removeStaleAtomicWrites(in: output)

    var table = SweepTable(
      model: model.relativePath, evaluation: evaluation.rawValue, calibrationSha256: calibration.digest,
      threads: Parallelism.threads,
      entries: [])
    // Entries of an earlier run of the same model (its path as given, resolved from here) and
    // protocol are kept. A table that cannot be read is an error, never silently replaced.
    if let data = manager.contents(atPath: jsonURL.path) {
      let old: SweepTable
      do { old = try SweepTable.read(data) } catch {
        let hint =
          switch error {
          case .olderFormat:
            "move \(jsonURL.path) away to start a new table here (this is PruneKit \(PruneKitVersion.current)),"
              + " or give another --out"
          case .invalid: "move \(jsonURL.path) away to start a new table here, or give another --out"
          }
        throw .usage(error.message(path: jsonURL.path, what: "sweep table"), hint: hint)
      }
      if URL(fileURLWithPath: old.model).standardizedFileURL.path == model.standardizedFileURL.path,
        old.evaluation == table.evaluation, old.calibrationSha256 == table.calibrationSha256
      {
        table.entries = old.entries
      }
    }
    func evaluate(_ lm: TransformerLM) throws(ModelJobError) -> PerplexityReport {
      let spec = evaluation.evaluation
      do {
        return try Perplexity.evaluate(
          lm, tokens: evalTokens, sequenceLength: spec.sequenceLength, windows: spec.windows
        ) {
          progress(.evaluating($0))
        }
      } catch {
        throw .evaluation(protocolName: evaluation.rawValue, error)
      }
    }
    func record(_ entry: SweepEntry) throws(ModelJobError) {
      table.entries.removeAll { $0.key == entry.key }
      table.entries.append(entry)
      do {
        try AtomicOutput.write(table.json(), to: jsonURL)
        recorded = true
        try AtomicOutput.write(Data(table.chart().svg().utf8), to: svgURL)
      } catch {
        throw .write(
          path: error.path, reason: error.reason,
          retry: "the entries finished before this one are in \(jsonURL.path); run the same command again to continue")
      }
      progress(.finished(entry))
    }

    let total = plans.count + 1
    if let done = table.entries.first(where: { $0.method == "dense" }) {
      progress(.skipped(done))
    } else {
      progress(.starting(method: "dense", pattern: "dense", index: 1, of: total))
      let p = try evaluate(dense)
      try record(
        SweepEntry(
          method: "dense", pattern: "dense", sparsity: 0, options: [:], schedule: nil, perplexity: p.perplexity,
          pruneSeconds: 0,
          evalSeconds: p.seconds, realisedSparsity: 0, meanRelativeError: 0, peakResidentBytes: peakResidentBytes()))
    }
    for (i, (m, text, pattern)) in plans.enumerated() {
      let options = ReportedOptionValue.typed(m.givenOptions, method: m.method.rawValue)
      let key = SweepEntry.key(method: m.method.rawValue, pattern: text, options: options)
      let folder = output.appendingPathComponent(
        "models/\(m.method.rawValue)-\(text.replacingOccurrences(of: ":", with: "of"))")
      let wantSave = save.contains(m.method) && !manager.fileExists(atPath: folder.path)
      let checkpointName = "checkpoints/\(m.method.rawValue)-\(text.replacingOccurrences(of: ":", with: "of"))"
      if let done = table.entries.first(where: { $0.key == key }), !wantSave {
        // A checkpoint of a finished entry is left only by a kill while it was being deleted.
        PruningCheckpoint.remove(output.appendingPathComponent(checkpointName))
        progress(.skipped(done))
        continue
      }
      progress(.starting(method: m.method.rawValue, pattern: text, index: i + 2, of: total))
      let plan = ModelPruningPlan(
        method: m.method, pattern: pattern, options: m.options, givenOptions: m.givenOptions, schedule: schedule)
      let pruner = ModelPruner(plan: plan, calibration: calibration)
      var lm = dense
      let summary: ModelPruningSummary
      let store: PruningCheckpoint
      do {
        try manager.createDirectory(at: output.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        let fingerprint = PruningCheckpoint.fingerprint(model: model, plan: plan, calibration: calibration)
        let dir = output.appendingPathComponent(checkpointName)
        // A sweep always resumes its own checkpoints, but never one written with other settings.
        store = try PruningCheckpoint(directory: dir, fingerprint: fingerprint, resume: true)
        summary = try pruner.run(&lm, store: store, progress: { progress(.pruning($0)) })
      } catch let e as ModelPruningError {
        throw .pruning(e)
      } catch {
        throw .write(
          path: output.appendingPathComponent("checkpoints").path,
          reason: "cannot create the folder: \(PruningCheckpoint.reason(error))",
          retry: "the entries finished so far are in \(jsonURL.path); run the same command again to continue")
      }
      let p = try evaluate(lm)
      if save.contains(m.method) && !manager.fileExists(atPath: folder.path) {
        let retry = "the pruned blocks stay in \(output.path)/\(checkpointName); run the same command again to continue"
        do {
          try manager.createDirectory(at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
          throw .write(
            path: folder.deletingLastPathComponent().path,
            reason: "cannot create the folder: \(PruningCheckpoint.reason(error))", retry: retry)
        }
        AtomicOutput.removeStaleTemporaries(of: folder)
        try writeModelFolder(
          lm, source: model, to: folder, method: m.method.rawValue, pattern: pattern.description, retry: retry
        ) { _ in }
        progress(.saved(folder))
      }
      try record(
        SweepEntry(
          method: m.method.rawValue, pattern: text, group: pattern.group?.rawValue, sparsity: pattern.fraction,
          options: options,
          schedule: plan.schedule.rawValue, perplexity: p.perplexity, pruneSeconds: summary.seconds,
          evalSeconds: p.seconds,
          realisedSparsity: summary.realisedSparsity, meanRelativeError: summary.meanRelativeError,
          peakResidentBytes: peakResidentBytes()))
      store.remove()
    }
    // The table in the order asked for: dense, then methods × patterns.
    let order =
      [table.entries.first { $0.method == "dense" }?.key].compactMap { $0 }
      + plans.map { m, text, _ in
        SweepEntry.key(
          method: m.method.rawValue, pattern: text,
          options: ReportedOptionValue.typed(m.givenOptions, method: m.method.rawValue))
      }
    table.entries.sort { (order.firstIndex(of: $0.key) ?? Int.max) < (order.firstIndex(of: $1.key) ?? Int.max) }
    return table
  }
}

extension SparsityPattern {
  /// The group a ratio is counted over (nil for N:M).
  var group: Group? {
    if case .unstructured(_, let group) = self { return group }
    return nil
  }

  /// The fraction of weights the pattern prunes: the ratio, or N/M.
  public var fraction: Double {
    switch self {
    case .unstructured(let ratio, _): return ratio
    case .nOfM(let n, let m): return Double(n) / Double(m)
    }
  }
}
