// `prune layer` without the command line: read a layer-problem file, prune it with one method,
// write the pruned weight, the report and the mask. The CLI parses options into a `LayerJob` and
// prints its outcome; the tests drive the job directly.

import Foundation
import PruneKernels
import PruneSolvers

/// One single-layer pruning run: its inputs, method, pattern and output paths. `run()` does the
/// work and returns what happened; nothing is printed.
public struct LayerJob: Sendable {
  /// The scalar type the problem is loaded and solved in.
  public enum Precision: String, Sendable, CaseIterable {
    case float, double
  }

  /// The layer-problem file (Docs/layer-problem-file.md).
  public var problem: URL
  /// The pruning method.
  public var method: PruningMethod
  /// The sparsity pattern (see `LayerJob.pattern(sparsity:nOfM:method:)`).
  public var pattern: SparsityPattern
  /// Method options (set through `MethodOptions.set`).
  public var options: MethodOptions
  /// The options as given, by report key (`MethodOption.reportKey`) → value as typed; the ones the
  /// method does not record itself are added to the report.
  public var givenOptions: [String: String]
  /// A mask file to use instead of the method's own selection (refit, admm, apt).
  public var mask: URL?
  /// Where the pruned weight goes (`weight` [out, in], F32).
  public var output: URL
  /// Where the JSON report goes, if anywhere.
  public var report: URL?
  /// Where the chosen mask goes (`mask` [out, in], U8), if anywhere.
  public var maskOutput: URL?
  /// The precision of the solve.
  public var precision: Precision

  public init(
    problem: URL, method: PruningMethod, pattern: SparsityPattern, options: MethodOptions = MethodOptions(),
    givenOptions: [String: String] = [:], mask: URL? = nil, output: URL, report: URL? = nil,
    maskOutput: URL? = nil, precision: Precision = .float
  ) {
    self.problem = problem
    self.method = method
    self.pattern = pattern
    self.options = options
    self.givenOptions = givenOptions
    self.mask = mask
    self.output = output
    self.report = report
    self.maskOutput = maskOutput
    self.precision = precision
  }

  /// The methods that accept a given mask.
  public static let maskMethods: [PruningMethod] = [.refit, .admm, .apt]

  /// The pattern of `--sparsity RATIO` or `--pattern N:M` (exactly one of them): a ratio without
  /// "/row" or "/matrix" uses the method's default group (per row for Wanda, the whole matrix for
  /// the others); `--pattern` accepts only N:M and `--sparsity` only ratios.
  public static func pattern(sparsity: String?, nOfM: String?, method: PruningMethod) throws(LayerJobError)
    -> SparsityPattern
  {
    try pattern(sparsity: sparsity, nOfM: nOfM, defaultGroup: method.defaultGroup)
  }

  /// The same, with the group a ratio without "/row" or "/matrix" compares over given directly.
  public static func pattern(sparsity: String?, nOfM: String?, defaultGroup: SparsityPattern.Group)
    throws(LayerJobError)
    -> SparsityPattern
  {
    switch (sparsity, nOfM) {
    case (nil, nil):
      throw .usage("no sparsity given", hint: "add --sparsity 0.5 (a ratio) or --pattern 2:4 (N:M)")
    case (_?, _?):
      throw .usage(
        "--sparsity and --pattern both given", hint: "give a ratio with --sparsity or N:M with --pattern, not both")
    case (let text?, nil):
      guard !text.contains(":") else {
        throw .usage("--sparsity takes a ratio, got '\(text)'", hint: "write N:M patterns as --pattern \(text)")
      }
      do { return try SparsityPattern(parsing: text, defaultGroup: defaultGroup) } catch { throw .pattern(error) }
    case (nil, let text?):
      guard text.contains(":") else {
        throw .usage("--pattern takes N:M such as 2:4, got '\(text)'", hint: "write a ratio as --sparsity \(text)")
      }
      do { return try SparsityPattern(parsing: text) } catch { throw .pattern(error) }
    }
  }

  /// Checks the paths before any work: every output differs from every input (by resolved path
  /// and file identity) and from the other outputs, and a mask is only given to a method that
  /// uses one.
  public func checkPaths() throws(LayerJobError) {
    let inputs: [(String, URL)] = [("--problem", problem)] + (mask.map { [("--mask", $0)] } ?? [])
    var outputs: [(String, URL)] = [("--out", output)]
    if let report { outputs.append(("--report", report)) }
    if let maskOutput { outputs.append(("--mask-out", maskOutput)) }
    for (name, url) in outputs {
      for (inputName, input) in inputs where isSameFile(url, input) {
        throw .usage(
          "\(name) \(url.path) is the same file as \(inputName)",
          hint: "write the results to a new path; inputs are never overwritten")
      }
    }
    for a in 0..<outputs.count {
      for b in (a + 1)..<outputs.count where isSameFile(outputs[a].1, outputs[b].1) {
        throw .usage(
          "\(outputs[a].0) and \(outputs[b].0) name the same file \(outputs[a].1.path)",
          hint: "give each output its own path")
      }
    }
    for (name, url) in outputs {
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw .usage(
          "\(name) \(url.path) is a folder",
          hint: "give a file path, e.g. \(name) \(url.appendingPathComponent("w.safetensors").path)")
      }
      if let problem = OutputSafety.folderProblem(of: url, option: name) {
        throw .usage(problem.message, hint: problem.hint)
      }
    }
    if mask != nil, !Self.maskMethods.contains(method) {
      throw .usage(
        "--mask given to \(method), which chooses its own mask",
        hint: "--mask works with --method \(Self.maskMethods.map(\.rawValue).joined(separator: ", "))")
    }
  }

  /// Runs the job: checks paths, loads the problem (and mask), prunes, writes the weight, the mask
  /// and the report (each atomically), and returns the outcome.
  public func run() throws(LayerJobError) -> LayerJobOutcome {
    let start = ContinuousClock.now
    try checkPaths()
    let file: LayerProblemFile
    do { file = try LayerProblemFile(contentsOf: problem) } catch { throw .file(error) }
    // Pattern against the layer's width before any tensor is decoded.
    do { try pattern.validate(columns: file.inputs) } catch { throw .pattern(error) }
    switch precision {
    case .float: return try run(file, as: Float.self, start: start)
    case .double: return try run(file, as: Double.self, start: start)
    }
  }

  private func run<T: KernelScalar>(_ file: LayerProblemFile, as _: T.Type, start: ContinuousClock.Instant)
    throws(LayerJobError) -> LayerJobOutcome
  {
    let layer: LayerProblem<T>
    do { layer = try file.problem(as: T.self) } catch { throw .file(error) }
    var given: Mask? = nil
    if let mask {
      do { given = try MaskFile.load(contentsOf: mask, rows: file.outputs, columns: file.inputs) } catch {
        // A well-formed mask of another shape does not fit this problem: a mistake in the request.
        if case .shapeMismatch = error {
          throw .usage(error.message, hint: error.hint ?? "the mask must have the weight's shape [out, in]")
        }
        throw .file(error)
      }
    }
    var result: PruningResult<T>
    do {
      result = try prune(layer, method: method, pattern: pattern, options: options, mask: given)
    } catch {
      throw .pruning(error)
    }
    var methodReport = result.report
    // The report names the group of a ratio ("0.5/row", "0.5/matrix"): the methods write the
    // pattern as the command line may spell it (`description`), pipelines compare on that.
    if methodReport.pattern.hasPrefix(pattern.description) {
      methodReport.pattern = pattern.label + methodReport.pattern.dropFirst(pattern.description.count)
    }
    // The methods record their own options under their report keys; add the given ones they do not.
    for (key, value) in givenOptions where methodReport.options[key] == nil {
      methodReport.options[key] = value
    }
    // The last guard of the label: a given mask was checked before the solve (`prune`), and every
    // method's own mask is exact, so this holds unless a method is wrong.
    let violations = result.mask.violations(of: pattern, rule: .atLeast)
    if !violations.isEmpty {
      methodReport.notes.append(
        "the mask does not satisfy \(pattern.label): \(violations.count) group(s), first \(violations[0])")
    }
    let beyond = result.mask.prunedCount - pattern.prunedCount(rows: file.outputs, columns: file.inputs)
    if given != nil, beyond > 0 {
      methodReport.notes.append("the given mask prunes \(beyond) weight(s) beyond what \(pattern.label) requires")
    }
    let pruned = PrunedWeightFile.writer(
      result.weight,
      metadata: [
        "format": "pt", "method": method.rawValue, "pattern": pattern.description, "source": problem.lastPathComponent,
      ])
    if T.self != Float.self {
      // The file holds F32: the error of what was actually written.
      let written = result.weight.converted(to: Float.self).converted(to: T.self)
      methodReport.metrics["relative_error_f32_output"] = layer.relativeError(of: written)
    }
    // Every output is written, or none: a full disk or a read-only folder leaves the files that
    // existed as they were (AtomicOutput.write).
    var files: [(data: Data, url: URL)] = [(pruned.serialized(), output)]
    for url in [output, maskOutput, report].compactMap({ $0 }) {
      // Temporaries of an earlier run on the same outputs that was killed while writing.
      AtomicOutput.removeStaleTemporaryFiles(of: url)
    }
    if let maskOutput {
      files.append(
        (
          MaskFile.writer(result.mask, metadata: ["method": method.rawValue, "pattern": pattern.description])
            .serialized(), maskOutput
        ))
    }
    var outcome = LayerJobOutcome(
      report: methodReport, problem: problem.relativePath, mask: mask?.relativePath, outputs: file.outputs,
      inputs: file.inputs,
      tokens: layer.tokens, gramSource: file.gramSource, isErrorCorrected: layer.isErrorCorrected,
      precision: precision, threads: Parallelism.threads, totalSeconds: secondsSince(start), written: files.map(\.url))
    if let report {
      outcome.written.append(report)
      files.append((outcome.json(), report))
    }
    do { try AtomicOutput.write(files) } catch { throw .write(error) }
    return outcome
  }
}

/// What a `LayerJob` did: the method's report and the context of the run.
public struct LayerJobOutcome: Sendable, Encodable {
  /// The method's report, with the options given on the command line added.
  public var report: PruningReport
  /// The layer-problem file, as given.
  public var problem: String
  /// The mask file used, as given.
  public var mask: String?
  /// Rows (out) and columns (in) of W.
  public var outputs: Int
  public var inputs: Int
  /// Calibration tokens behind the Grams (0 when the file does not say).
  public var tokens: Int
  /// Whether the Grams came from a `gram` tensor or were accumulated from `inputs`.
  public var gramSource: LayerProblemFile.GramSource
  /// Whether the problem is error-corrected (X* ≠ X).
  public var isErrorCorrected: Bool
  /// The precision of the solve.
  public var precision: LayerJob.Precision
  /// Kernel threads.
  public var threads: Int
  /// Wall time of the whole job (load, prune, write), seconds.
  public var totalSeconds: Double
  /// The files written, in order.
  public var written: [URL]

  /// The keys of the run's context in the layer report, snake_case (`reportJSON`); the report's
  /// own keys are `PruningReportJSON`'s.
  private enum Keys: String, CodingKey {
    case prunekitVersion
    case problem, mask, shape, tokens, gramSource, errorCorrected, precision, threads, totalSeconds
  }

  /// The report's fields at the top level (the options as numbers, booleans or strings by their
  /// declared kind; the dampings named by unit: `damping_absolute` is the δ added to the diagonal,
  /// `damping_relative` the `damping` option, a fraction of mean(diag G*)), plus the run's context
  /// (problem path as given, shape, tokens, precision...) and the PruneKit version.
  public func encode(to encoder: any Encoder) throws {
    try PruningReportJSON(report).encode(to: encoder)
    var c = encoder.container(keyedBy: Keys.self)
    try c.encode(PruneKitVersion.current, forKey: .prunekitVersion)
    try c.encode(problem, forKey: .problem)
    try c.encodeIfPresent(mask, forKey: .mask)
    try c.encode([outputs, inputs], forKey: .shape)
    try c.encode(tokens, forKey: .tokens)
    try c.encode(gramSource.rawValue, forKey: .gramSource)
    try c.encode(isErrorCorrected, forKey: .errorCorrected)
    try c.encode(precision.rawValue, forKey: .precision)
    try c.encode(threads, forKey: .threads)
    try c.encode(totalSeconds, forKey: .totalSeconds)
  }

  /// The report as PruneKit's JSON: snake_case keys, sorted, pretty-printed, non-finite numbers
  /// as the strings "Infinity", "-Infinity", "NaN", ending with a newline (`reportJSON`).
  public func json() -> Data { reportJSON(self) }
}

/// Why a `LayerJob` (or a `Verification`, `VerifyError`) could not run. `isUsageError` separates mistakes in the request (exit code 2)
/// from failures while running (exit code 1).
public enum LayerJobError: PruneKitError, Equatable {
  /// The request is inconsistent (options, paths).
  case usage(String, hint: String)
  /// The sparsity pattern is invalid, or does not fit the layer.
  case pattern(SparsityPatternError)
  /// The problem or mask file was rejected.
  case file(LayerProblemFileError)
  /// The method failed or rejected its inputs.
  case pruning(PruningError)
  /// An output could not be written (no output was, and files that existed keep their contents).
  case write(WriteError)

  /// True for errors in the request itself (exit code 2), false for failures while running (1).
  public var isUsageError: Bool {
    switch self {
    case .usage, .pattern: return true
    case .pruning(.invalidPattern), .pruning(.invalidOption), .pruning(.maskMismatch), .pruning(.maskBreaksPattern):
      return true
    case .file, .pruning, .write: return false
    }
  }

  public var message: String {
    switch self {
    case .usage(let message, _): return message
    case .pattern(let e): return e.message
    case .file(let e): return e.message
    case .pruning(let e): return e.message
    case .write(let e): return "cannot write \(e.path) (\(OutputSafety.plain(e.reason)))"
    }
  }

  public var hint: String? {
    switch self {
    case .usage(_, let hint): return sentence(hint)
    case .pattern(let e): return e.hint
    case .file(let e): return e.hint
    case .pruning(let e): return e.hint ?? "see 'prune help layer'."
    case .write(let e):
      return OutputSafety.writeHint(
        reason: OutputSafety.plain(e.reason), retry: "no output was written, and files that existed keep their contents"
      )
    }
  }
}
