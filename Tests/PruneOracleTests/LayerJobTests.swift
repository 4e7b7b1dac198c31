import Foundation
import PruneKernels
import PruneOracle
import PruneSolvers
import PruneTestSupport
import Testing

/// Writes a synthetic problem ([8 × 16], 64 tokens) as inputs to `folder`/p.safetensors.
func writeSyntheticProblem(
  in folder: TemporaryFolder, name: String = "p.safetensors", rows: Int = 8, columns: Int = 16, seed: UInt64
)
  throws -> URL
{
  let (w, x) = SyntheticLayerProblem.make(rows: rows, columns: columns, tokens: 64, seed: seed)
  let url = folder.file(name)
  try LayerProblemFile.writer(weight: w, inputs: x, count: 64).write(to: url)
  return url
}

@Suite struct LayerJobTests {
  // MARK: Patterns

  @Test func sparsityUsesTheMethodsDefaultGroupUnlessTold() throws {
    #expect(try LayerJob.pattern(sparsity: "0.5", nOfM: nil, method: .wanda) == .unstructured(ratio: 0.5, group: .row))
    #expect(
      try LayerJob.pattern(sparsity: "50%", nOfM: nil, method: .sparsegpt) == .unstructured(ratio: 0.5, group: .matrix))
    #expect(
      try LayerJob.pattern(sparsity: "0.5/matrix", nOfM: nil, method: .wanda)
        == .unstructured(ratio: 0.5, group: .matrix))
    #expect(
      try LayerJob.pattern(sparsity: "0.3/row", nOfM: nil, method: .magnitude) == .unstructured(ratio: 0.3, group: .row)
    )
    #expect(try LayerJob.pattern(sparsity: nil, nOfM: "2:4", method: .apt) == .nOfM(n: 2, m: 4))
  }

  @Test func badPatternsAreUsageErrors() {
    let cases: [(String?, String?, String)] = [
      (nil, nil, "no sparsity given"), ("0.5", "2:4", "both given"), ("2:4", nil, "--pattern 2:4"),
      (nil, "0.5", "--sparsity 0.5"), ("1.5", nil, "outside [0, 1)"), ("-0.1", nil, "outside [0, 1)"),
      (nil, "4:2", "0 < N < M"), (nil, "0:4", "0 < N < M"), ("half", nil, "cannot read"),
    ]
    for (sparsity, nOfM, fragment) in cases {
      do {
        let p = try LayerJob.pattern(sparsity: sparsity, nOfM: nOfM, method: .sparsegpt)
        Issue.record("\(String(describing: sparsity)) / \(String(describing: nOfM)) gave \(p)")
      } catch {
        #expect(error.isUsageError, "\(error)")
        #expect(error.description.contains(fragment) && error.description.contains("Hint: "), "\(error)")
        #expect(!error.description.contains("\n"), "\(error)")
      }
    }
  }

  // MARK: Runs

  @Test(arguments: PruningMethod.allCases)
  func everyMethodWritesAConsistentWeightMaskAndReport(method: PruningMethod) throws {
    let folder = TemporaryFolder("job-\(method)")
    defer { folder.remove() }
    let problem = try writeSyntheticProblem(in: folder, seed: 5)
    let pattern: SparsityPattern =
      method == .exact ? .nOfM(n: 2, m: 4) : .unstructured(ratio: 0.5, group: method.defaultGroup)
    let job = LayerJob(
      problem: problem, method: method, pattern: pattern, output: folder.file("w.safetensors"),
      report: folder.file("r.json"), maskOutput: folder.file("m.safetensors"))
    let outcome = try job.run()
    #expect(outcome.written == [folder.file("w.safetensors"), folder.file("m.safetensors"), folder.file("r.json")])
    #expect(outcome.outputs == 8 && outcome.inputs == 16 && outcome.tokens == 64 && outcome.gramSource == .inputs)

    // The weight file: F32 [8, 16], zero exactly where the mask prunes, the realised sparsity.
    let weightFile = try SafetensorsFile(contentsOf: folder.file("w.safetensors"))
    #expect(weightFile.tensorNames == ["weight"] && weightFile.rawDType(of: "weight") == .F32)
    let w: Matrix<Float> = try weightFile.matrix("weight")
    let mask = try MaskFile.load(contentsOf: folder.file("m.safetensors"), rows: 8, columns: 16)
    for i in 0..<8 {
      for j in 0..<16 where !mask[i, j] { #expect(w[i, j] == 0, "\(method): (\(i), \(j)) pruned but \(w[i, j])") }
    }
    #expect(mask.satisfies(pattern), "\(method): \(mask.violations(of: pattern).first.map { "\($0)" } ?? "")")
    #expect(outcome.report.realisedSparsity == mask.sparsity, "\(method)")

    // The reported error is the error of the written weight (the solve ran in Float).
    let layer = try LayerProblemFile(contentsOf: problem).problem(as: Float.self)
    #expect(outcome.report.relativeError == layer.relativeError(of: w), "\(method)")
    #expect(outcome.report.relativeError < 1, "\(method): worse than pruning everything")

    // The JSON report: the method's fields and the run's context, keys sorted.
    let json = try Data(contentsOf: folder.file("r.json"))
    let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
    #expect(object["method"] as? String == method.rawValue)
    #expect(object["problem"] as? String == problem.path)
    #expect(object["shape"] as? [Int] == [8, 16] && object["precision"] as? String == "float")
    // snake_case keys, the PruneKit version, the dampings by unit, the options typed by their kind.
    #expect(snakeCaseKeyProblems(object).isEmpty, "\(method): \(snakeCaseKeyProblems(object))")
    #expect(object["prunekit_version"] as? String == PruneKitVersion.current)
    #expect(object["relative_error"] != nil && object["realised_sparsity"] != nil && object["total_seconds"] != nil)
    #expect(object["damping"] == nil && (outcome.report.damping == nil) == (object["damping_absolute"] == nil))
    let options = try #require(object["options"] as? [String: Any])
    #expect(Set(options.keys) == Set(outcome.report.options.keys), "\(method)")
    for (key, value) in options {
      guard let option = MethodOption.all.first(where: { $0.reportKey == key }) else {
        // A method's own record (ADMM's fixed_mask): at least no boolean as a string.
        #expect(!["true", "false"].contains(value as? String), "\(method): \(key) is the string \(value)")
        continue
      }
      if case .choice? = option.route(for: method)?.kind { continue }
      #expect(!(value is String), "\(method): option \(key) is the string \(value), not \(option.accepted)")
    }
    let keys = String(decoding: json, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("  \"") }
      .map { $0.split(separator: "\"")[1] }
    #expect(keys == keys.sorted(), "\(method): keys not sorted: \(keys)")
  }

  @Test(arguments: [PruningMethod.sparsegpt, .fista, .admm])
  func outputIsBitIdenticalForAnyThreadCount(method: PruningMethod) throws {
    let folder = TemporaryFolder("job-threads-\(method)")
    defer { folder.remove() }
    // Wide enough that the kernels split their work over several threads.
    let problem = try writeSyntheticProblem(in: folder, rows: 48, columns: 64, seed: 6)
    var bytes: [Data] = []
    for (k, threads) in [1, 2, 3, 2].enumerated() {
      let out = folder.file("w\(k).safetensors")
      let report = folder.file("r\(k).json")
      let outcome = try Parallelism.$threadOverride.withValue(threads) {
        try LayerJob(problem: problem, method: method, pattern: .nOfM(n: 2, m: 4), output: out, report: report).run()
      }
      #expect(outcome.threads == threads)
      bytes.append(try Data(contentsOf: out))
    }
    for k in 1..<bytes.count {
      #expect(bytes[k] == bytes[0], "seed 6, \(method): run \(k) wrote a different weight than with 1 thread")
    }
  }

  @Test func givenMaskIsRefitAndOptionsAreRecorded() throws {
    let folder = TemporaryFolder("job-mask")
    defer { folder.remove() }
    let problem = try writeSyntheticProblem(in: folder, seed: 7)
    let wandaMask = folder.file("wanda-mask.safetensors")
    let wanda = try LayerJob(
      problem: problem, method: .wanda, pattern: .unstructured(ratio: 0.5, group: .row),
      output: folder.file("w0.safetensors"),
      maskOutput: wandaMask
    ).run()
    var options = MethodOptions()
    try options.set("damping", "0", for: .refit)
    let refit = try LayerJob(
      problem: problem, method: .refit, pattern: .unstructured(ratio: 0.5, group: .row), options: options,
      givenOptions: ["damping": "0"], mask: wandaMask, output: folder.file("w1.safetensors"),
      maskOutput: folder.file("m1.safetensors"), precision: .double
    ).run()
    // Refit keeps the given mask and, being the least-squares optimum on it, does not do worse.
    #expect(try MaskFile.load(contentsOf: folder.file("m1.safetensors")) == MaskFile.load(contentsOf: wandaMask))
    #expect(refit.report.relativeError <= wanda.report.relativeError, "seed 7")
    #expect(refit.report.options["damping"] == "0.0")  // as refit records it; the given "0" is not added again
    #expect(refit.mask == wandaMask.path && refit.precision == .double)
    // In Double the error of the F32 file is reported beside the solve's.
    let written = try #require(refit.report.metrics["relative_error_f32_output"])
    #expect(abs(written - refit.report.relativeError) <= 1e-5 * max(1e-12, refit.report.relativeError) + 1e-9, "seed 7")
  }

  @Test func givenOptionsTheMethodDoesNotRecordAreAddedUnderTheirReportKeys() throws {
    let folder = TemporaryFolder("job-options")
    defer { folder.remove() }
    let problem = try writeSyntheticProblem(in: folder, seed: 9)
    var options = MethodOptions()
    try options.set("ls-damping", "0.02", for: .sparsellm)
    try options.set("percdamp", "0.03", for: .sparsellm)
    // One layer alone is pruned by SparseLLM's inner SparseGPT, which records its own options only.
    let outcome = try LayerJob(
      problem: problem, method: .sparsellm, pattern: .unstructured(ratio: 0.5, group: .matrix), options: options,
      givenOptions: [MethodOption.leastSquaresDamping.reportKey: "0.02", MethodOption.damping.reportKey: "0.03"],
      output: folder.file("w.safetensors")
    ).run()
    #expect(outcome.report.options["least_squares_damping"] == "0.02")
    #expect(outcome.report.options["damping"] == "0.03" && outcome.report.damping != nil)
    #expect(outcome.report.options["block_size"] == "128")
  }

  @Test func errorCorrectedProblemRuns() throws {
    let folder = TemporaryFolder("job-corrected")
    defer { folder.remove() }
    let (w, x) = SyntheticLayerProblem.make(rows: 4, columns: 8, tokens: 40, seed: 8)
    let xd = x.converted(to: Double.self)
    let xStar = xd.map { $0 * 1.01 }
    let expected = try LayerProblem(weight: w.converted(to: Double.self), inputs: xd, prunedInputs: xStar)
    let problem = folder.file("p.safetensors")
    try LayerProblemFile.writer(
      weight: w.converted(to: Double.self), gram: expected.gram, crossGram: expected.crossGram,
      denseGram: expected.denseGram, count: 40
    ).write(to: problem)
    let outcome = try LayerJob(
      problem: problem, method: .fista, pattern: .unstructured(ratio: 0.5, group: .matrix),
      output: folder.file("w.safetensors"),
      precision: .double
    ).run()
    #expect(outcome.isErrorCorrected && outcome.gramSource == .gram && outcome.tokens == 40)
  }

  // MARK: Rejections

  @Test func outputsNeverOverwriteInputs() throws {
    let folder = TemporaryFolder("job-paths")
    defer { folder.remove() }
    let problem = try writeSyntheticProblem(in: folder, seed: 9)
    let before = try Data(contentsOf: problem)
    let link = folder.file("link.safetensors")
    try FileManager.default.createSymbolicLink(at: link, withDestinationURL: problem)
    let mask = folder.file("m.safetensors")
    try MaskFile.writer(Mask(rows: 8, columns: 16)).write(to: mask)
    let pattern = SparsityPattern.unstructured(0.5)
    let jobs: [(LayerJob, String)] = [
      (LayerJob(problem: problem, method: .magnitude, pattern: pattern, output: problem), "--out"),
      (LayerJob(problem: problem, method: .magnitude, pattern: pattern, output: link), "--out"),
      (LayerJob(problem: problem, method: .refit, pattern: pattern, mask: mask, output: mask), "--out"),
      (
        LayerJob(problem: problem, method: .magnitude, pattern: pattern, output: folder.file("w"), report: problem),
        "--report"
      ),
      (
        LayerJob(
          problem: problem, method: .refit, pattern: pattern, mask: mask, output: folder.file("w"), maskOutput: mask),
        "--mask-out"
      ),
      (
        LayerJob(
          problem: problem, method: .magnitude, pattern: pattern, output: folder.file("w"), report: folder.file("w")),
        "--out and --report"
      ),
    ]
    for (job, fragment) in jobs {
      do {
        _ = try job.run()
        Issue.record("\(fragment): ran")
      } catch {
        #expect(error.isUsageError && error.description.hasPrefix(fragment), "\(error)")
      }
    }
    #expect(try Data(contentsOf: problem) == before)
    #expect(!FileManager.default.fileExists(atPath: folder.file("w").path))
  }

  @Test func badInputsGiveTheRightKindOfError() throws {
    let folder = TemporaryFolder("job-errors")
    defer { folder.remove() }
    let problem = try writeSyntheticProblem(in: folder, rows: 4, columns: 10, seed: 10)
    let out = folder.file("w.safetensors")
    func failure(_ job: LayerJob) -> LayerJobError? {
      do {
        _ = try job.run()
        return nil
      } catch {
        return error
      }
    }
    // M not dividing the layer's width: a usage error, raised before decoding.
    let nm = try #require(
      failure(LayerJob(problem: problem, method: .sparsegpt, pattern: .nOfM(n: 2, m: 4), output: out)))
    #expect(nm.isUsageError && nm.description.contains("multiple of 4, but it is 10"), "\(nm)")
    // A mask for a method that picks its own.
    let maskURL = folder.file("m.safetensors")
    try MaskFile.writer(Mask(rows: 4, columns: 10)).write(to: maskURL)
    let own = try #require(
      failure(LayerJob(problem: problem, method: .wanda, pattern: .unstructured(0.5), mask: maskURL, output: out)))
    #expect(own.isUsageError && own.description.contains("chooses its own mask"), "\(own)")
    // A mask of the wrong shape does not fit the request: a usage error naming both shapes.
    let wrong = folder.file("m2.safetensors")
    try MaskFile.writer(Mask(rows: 10, columns: 4)).write(to: wrong)
    let shape = try #require(
      failure(LayerJob(problem: problem, method: .refit, pattern: .unstructured(0.5), mask: wrong, output: out)))
    #expect(
      shape.isUsageError && shape.description.contains("[10, 4]") && shape.description.contains("[4, 10]"), "\(shape)")
    // A missing file and a file without weight: runtime errors.
    let missing = try #require(
      failure(LayerJob(problem: folder.file("none"), method: .magnitude, pattern: .unstructured(0.5), output: out)))
    #expect(!missing.isUsageError && missing.description.contains("cannot read"), "\(missing)")
    var noWeight = SafetensorsWriter()
    try noWeight.add("gram", matrix: Matrix<Float>.identity(10))
    try noWeight.write(to: folder.file("nw.safetensors"))
    let nw = try #require(
      failure(
        LayerJob(problem: folder.file("nw.safetensors"), method: .magnitude, pattern: .unstructured(0.5), output: out)))
    #expect(!nw.isUsageError && nw.description.contains("no tensor 'weight'"), "\(nw)")
    #expect(!FileManager.default.fileExists(atPath: out.path))
    for e in [nm, own, shape, missing, nw] {
      #expect(!e.description.contains("\n") && e.description.contains("Hint: "), "\(e)")
    }
  }

  /// A [8 × 16] mask that is 2:4 in every group but three: row 1, columns 4… prunes one, row 3,
  /// columns 0… none, and row 6, columns 12… three (allowed: at least 2). 62 pruned of 128.
  private func almostTwoOfFour() -> Mask {
    var mask = Mask(rows: 8, columns: 16)
    for i in 0..<8 {
      for g in stride(from: 0, to: 16, by: 4) {
        mask[i, g] = false
        mask[i, g + 1] = false
      }
    }
    mask[1, 5] = true
    mask[3, 0] = true
    mask[3, 1] = true
    mask[6, 14] = false
    return mask
  }

  @Test(
    "a given mask that breaks the pattern is a usage error, its groups counted as verify counts them",
    arguments: [PruningMethod.refit, .admm, .apt])
  func maskBreakingThePattern(method: PruningMethod) throws {
    let folder = TemporaryFolder("job-mask-pattern-\(method)")
    defer { folder.remove() }
    let problem = try writeSyntheticProblem(in: folder, seed: 11)
    let mask = almostTwoOfFour()
    let maskURL = folder.file("m.safetensors")
    try MaskFile.writer(mask).write(to: maskURL)
    let dense = try LayerProblemFile(contentsOf: problem).problem(as: Double.self).weight
    var candidate = dense
    mask.apply(to: &candidate)
    let out = folder.file("w.safetensors")
    // (pattern, failing groups, groups, the first failing group as both commands describe it)
    let cases: [(SparsityPattern, Int, Int, String)] = [
      (.nOfM(n: 2, m: 4), 2, 32, "row 1, columns 4…: 1 pruned, 2 required"),
      (.unstructured(ratio: 0.5, group: .row), 2, 8, "row 1: 7 pruned, 8 required"),
      (.unstructured(ratio: 0.5, group: .matrix), 1, 1, "the matrix: 62 pruned, 64 required"),
    ]
    for (pattern, failing, groups, first) in cases {
      do {
        _ = try LayerJob(problem: problem, method: method, pattern: pattern, mask: maskURL, output: out).run()
        Issue.record("\(method) \(pattern): a mask breaking the pattern was accepted")
      } catch {
        #expect(error.isUsageError, "\(error)")
        let message =
          "the mask does not satisfy \(pattern.label): \(failing) of \(groups) group(s) fail, first \(first)"
        #expect(error.description.contains(message), "\(error)")
        #expect(error.description.contains("Hint: ") && !error.description.contains("\n"), "\(error)")
      }
      #expect(!FileManager.default.fileExists(atPath: out.path))
      // verify counts the same groups: a candidate zero exactly where the mask prunes fails the same ones.
      let check = PatternCheck(candidate: candidate, dense: dense, pattern: pattern, exactCount: false, listLimit: 20)
      #expect(check.failingGroups == failing && check.groups == groups, "\(pattern): \(check.failures)")
      let violation = try #require(mask.violations(of: pattern, rule: .atLeast).first)
      #expect(check.failures.first?.row == violation.row && check.failures.first?.column == violation.column)
    }
    // Mended (rows 1 and 3 made 2:4), with row 6's extra pruned weight: accepted and labelled 2:4,
    // the extra noted; verify passes the weight written.
    var mended = mask
    mended[1, 5] = false
    mended[3, 0] = false
    mended[3, 1] = false
    try MaskFile.writer(mended).write(to: maskURL)
    let outcome = try LayerJob(
      problem: problem, method: method, pattern: .nOfM(n: 2, m: 4), mask: maskURL, output: out
    ).run()
    #expect(outcome.report.pattern.hasPrefix("2:4"), "\(outcome.report.pattern)")  // admm, apt: "2:4 (given mask)"
    #expect(outcome.report.notes.contains { $0.contains("prunes 1 weight(s) beyond what 2:4 requires") }, "\(outcome)")
    let certificate = try Verification(problem: problem, candidate: out, pattern: .nOfM(n: 2, m: 4)).run()
    #expect(certificate.patternCheck.passed, "\(certificate.patternCheck.failures)")
  }
}

extension PruningMethod: CustomTestStringConvertible {
  public var testDescription: String { rawValue }

}

/// Keys of a JSON object (recursively) that are not snake_case, skipping the contents of the
/// dictionaries whose keys are names rather than properties (`metrics`, `options`, `rounding`,
/// `tolerances` at the top of a manifest).
func snakeCaseKeyProblems(_ value: Any, path: String = "") -> [String] {
  let names: Set<String> = ["metrics", "options", "rounding", "tolerances"]
  var bad: [String] = []
  if let object = value as? [String: Any] {
    for (key, child) in object {
      if key.contains(where: { !($0.isLowercase || $0.isNumber || $0 == "_") }) { bad.append(path + "/" + key) }
      if names.contains(key), child is [String: Any] { continue }
      bad += snakeCaseKeyProblems(child, path: path + "/" + key)
    }
  } else if let array = value as? [Any] {
    for (i, child) in array.enumerated() { bad += snakeCaseKeyProblems(child, path: path + "/\(i)") }
  }
  return bad
}
