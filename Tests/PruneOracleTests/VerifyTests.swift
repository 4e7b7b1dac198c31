import Foundation
import PruneKernels
import PruneOracle
import PruneSolvers
import PruneTestSupport
import Testing

@Suite struct VerifyTests {
  /// The exact refit's own gap: both errors come from the same Grams in Double, so they agree to
  /// the rounding of the error computation (~1e-13 of the energy, Verification.gapFloor).
  static let refitGap = 1e-9

  /// A seeded 4 × 8 problem in Double, from its inputs.
  private func problem(seed: UInt64) -> LayerProblem<Double> {
    let (w, x) = SyntheticLayerProblem.make(rows: 4, columns: 8, tokens: 40, seed: seed)
    return try! LayerProblem(weight: w.converted(to: Double.self), inputs: x.converted(to: Double.self))
  }

  private func certify(
    _ p: LayerProblem<Double>, _ w: Matrix<Double>, _ pattern: SparsityPattern, dtype: SafetensorsDType = .F32,
    maxGap: Double? = nil, exactCount: Bool = false, listLimit: Int = 20
  ) throws -> Certificate {
    let v = Verification(
      problem: URL(fileURLWithPath: "/p"), candidate: URL(fileURLWithPath: "/c"), pattern: pattern, maxGap: maxGap,
      listLimit: listLimit, exactCount: exactCount)
    return try v.certify(p, candidate: CandidateWeight(weight: w, dtype: dtype), comparisons: [])
  }

  @Test("PruneKit's exact refit passes a tight gap, the same weights ×1.01 fail it", arguments: [UInt64(1), 2])
  func gap(seed: UInt64) throws {
    let p = problem(seed: seed)
    let pattern = SparsityPattern.nOfM(n: 2, m: 4)
    let refit = try prune(
      p, method: .refit, pattern: pattern,
      options: {
        var o = MethodOptions()
        try! o.set("damping", "0", for: .refit)
        return o
      }())
    let good = try certify(p, refit.weight, pattern, maxGap: Self.refitGap)
    #expect(good.passed && abs(good.quality.gap) <= Self.refitGap, "seed \(seed): \(String(describing: good.quality))")
    #expect(good.quality.refitDampingRetry == 0, "seed \(seed): a full-rank G needs no retry")
    let bad = try certify(p, refit.weight.map { $0 * 1.01 }, pattern, maxGap: Self.refitGap)
    #expect(!bad.passed && bad.checks.first { $0.name == "gap" }?.passed == false, "seed \(seed)")
    #expect(bad.patternCheck.passed, "seed \(seed): scaling keeps the pattern")
  }

  @Test("failing N:M groups are listed up to the limit, the rest counted")
  func listCap() throws {
    let p = problem(seed: 3)
    let c = try certify(p, p.weight, .nOfM(n: 2, m: 4), listLimit: 3)  // dense: every group fails
    #expect(c.patternCheck.failingGroups == 8 && c.patternCheck.failures.count == 3 && c.patternCheck.unlisted == 5)
    #expect(
      c.patternCheck.failures[1] == GroupFailure(row: 0, column: 4, zeros: 0, required: 2, keptColumns: [4, 5, 6, 7]))
    #expect(!c.passed)
  }

  @Test("extra zeros pass N:M unless the count must be exact, where only zeros of W are free")
  func extraZeros() throws {
    var w = Matrix<Double>(rows: 1, columns: 8) { _, j in Double(j + 1) }
    w[0, 5] = 0  // a zero of the dense weight
    let p = try LayerProblem(weight: w, gram: Matrix(rows: 8, columns: 8) { $0 == $1 ? 1 : 0 })
    var c = w
    for j in [0, 1, 4] { c[0, j] = 0 }  // group 2 has zeros at 4 and 5 (5 free)
    c[0, 2] = 0  // group 1: three zeros, one beyond the pattern
    let loose = try certify(p, c, .nOfM(n: 2, m: 4))
    #expect(
      loose.patternCheck.passed && loose.patternCheck.excessZeros == 1 && loose.patternCheck.zerosWhereDenseIsZero == 1)
    let strict = try certify(p, c, .nOfM(n: 2, m: 4), exactCount: true)
    #expect(strict.patternCheck.failingGroups == 1 && strict.patternCheck.failures.first?.column == 0)
    var exact = c
    exact[0, 2] = 3
    #expect(try certify(p, exact, .nOfM(n: 2, m: 4), exactCount: true).patternCheck.passed)
  }

  @Test("health: non-finite, subnormal and round-off figures")
  func health() {
    let values: [Double] = [1.5, 1 + 0x1p-8, 1.0 / 3, 1e-8, 70000, .nan, 0x1p-1030, 0]
    let h = HealthCheck(values: values, stored: .F64, columns: 4)
    #expect(h.nonFinite == 1 && h.firstNonFinite == [1, 1])
    #expect(h.subnormal == 1)  // 2⁻¹⁰³⁰ is subnormal in Double
    let f32 = h.rounding["F32"]!
    let bf16 = h.rounding["BF16"]!
    let f16 = h.rounding["F16"]!
    // F32: 1/3 changes (by < 2⁻²⁴ relative), 1e-8 changes, 2⁻¹⁰³⁰ becomes zero.
    #expect(f32.changed == 3 && f32.becomeZero == 1 && f32.maxRelativeChange < 0x1p-24)
    // BF16 (8 significant bits): 1 + 2⁻⁸ is a tie and goes to 1 (even); 70000 → 70144.
    // The others change by less: 1/3 → 0.333984375 (2⁻⁹ relative), 70000 → 70144 (0.21%).
    #expect(bf16.maxRelativeChange == 0x1p-8 / (1 + 0x1p-8))
    #expect(!bf16.exact && bf16.overflow == 0 && bf16.changed == 5 && bf16.becomeZero == 1)
    // F16 (11 significant bits): 1 + 2⁻⁸ is exact, 70000 overflows, 1e-8 and 2⁻¹⁰³⁰ underflow.
    #expect(f16.overflow == 1 && f16.becomeZero == 2 && f16.changed == 4)
    let clean = HealthCheck(values: [0.5, -0.25, 0, 3], stored: .F32, columns: 2)
    #expect(
      clean.nonFinite == 0 && clean.rounding["F16"]!.exact && clean.rounding["BF16"]!.exact
        && clean.rounding["F32"] == nil)
  }

  @Test("an error-corrected problem is certified against its own refit (with K)")
  func errorCorrected() throws {
    let (w, x) = SyntheticLayerProblem.make(rows: 3, columns: 8, tokens: 40, seed: 9)
    let (_, noise) = SyntheticLayerProblem.make(rows: 1, columns: 8, tokens: 40, seed: 10)
    let xs = Matrix<Double>(rows: 40, columns: 8) { t, j in Double(x[t, j]) + 0.05 * Double(noise[t, j]) }
    let p = try LayerProblem(
      weight: w.converted(to: Double.self), inputs: x.converted(to: Double.self), prunedInputs: xs)
    let refit = try Refit(options: .exact).refit(p, mask: prune(p, method: .wanda, pattern: .nOfM(n: 2, m: 4)).mask)
    let c = try certify(p, refit.weight, .nOfM(n: 2, m: 4), maxGap: Self.refitGap)
    #expect(c.passed && c.errorCorrected, "\(String(describing: c.quality))")
  }
}

@Suite struct TestVectorsTests {
  @Test("the synthetic suite verifies against PruneKit; its negative controls fail", arguments: [UInt64(1), 7])
  func selfVerification(seed: UInt64) throws {
    let folder = TemporaryFolder("vectors-\(seed)")
    defer { folder.remove() }
    let manifest = try TestVectors(output: folder.url, seed: seed).run()
    #expect(manifest.cases.count == 11 && manifest.notes.count == 1, "seed \(seed)")
    let report = try SuiteVerification(manifest: folder.file("manifest.json")).run()
    for e in report.entries where !e.passed {
      Issue.record(
        "seed \(seed): \(e.case) \(e.role) failed: \(String(describing: e.certificate.checks)) \(String(describing: e.checks)) \(e.notes)"
      )
    }
    #expect(report.passed)
    #expect(report.entries.filter { $0.role == "expected" }.count == 11, "seed \(seed)")
    #expect(report.entries.filter { $0.role == "control" }.count == 22, "seed \(seed)")
    for e in report.entries where e.role == "control" {
      #expect(!e.certificate.passed, "seed \(seed): control \(e.file) passed its certificate")
    }
  }

  /// A known optimum (F32) may be above the true optimum by its rounding, never below any
  /// method's output by more (TestVectors.Tolerance.optimumError).
  @Test("no PruneKit method beats the brute-force optimum", arguments: [UInt64(3)])
  func optimumIsFloor(seed: UInt64) throws {
    let folder = TemporaryFolder("vectors-floor-\(seed)")
    defer { folder.remove() }
    let manifest = try TestVectors(output: folder.url, seed: seed).run()
    for c in manifest.cases where c.kind != "lasso-closed-form" {
      let best = try #require(c.expected?.relativeError)
      for m in c.methods {
        guard let r = m.relativeError else {
          Issue.record("seed \(seed): \(c.name) \(m.method) has no figure: \(m.note ?? "")")
          continue
        }
        #expect(
          r >= best * (1 - TestVectors.Tolerance.optimumError), "seed \(seed): \(c.name) \(m.method) \(r) < \(best)")
      }
    }
  }

  @Test("a backend's candidates: a copy of the answers passes, a perturbed one fails")
  func candidates() throws {
    let folder = TemporaryFolder("vectors-candidates")
    defer { folder.remove() }
    let suite = folder.url.appendingPathComponent("suite")
    _ = try TestVectors(output: suite, seed: 5).run()
    let answers = folder.url.appendingPathComponent("answers")
    let fm = FileManager.default
    for (from, to) in [
      ("brute-2of4/expected", "brute-2of4/expected"), ("lasso-diagonal/expected", "lasso-diagonal/expected"),
      ("brute-row/sparsegpt", "brute-row/sparsegpt"), ("nm-ties/perturbed-weights", "nm-ties/expected"),
      ("brute-matrix/wanda", "brute-matrix/magnitude"),
    ] {
      try fm.createDirectory(
        at: answers.appendingPathComponent(to).deletingLastPathComponent(), withIntermediateDirectories: true)
      try fm.copyItem(
        at: suite.appendingPathComponent(from + ".safetensors"), to: answers.appendingPathComponent(to + ".safetensors")
      )
    }
    let report = try SuiteVerification(manifest: suite.appendingPathComponent("manifest.json"), candidates: answers)
      .run()
    let verdicts = Dictionary(uniqueKeysWithValues: report.entries.map { ("\($0.case)/\($0.role)", $0.passed) })
    #expect(
      verdicts == [
        "brute-2of4/expected": true, "lasso-diagonal/expected": true, "brute-row/sparsegpt": true,
        "nm-ties/expected": false, "brute-matrix/magnitude": false,
      ])
    #expect(!report.passed)
  }

  @Test("a suite's coverage: misspelt case and method names are unknown files that fail it unless allowed")
  func candidateCoverage() throws {
    let folder = TemporaryFolder("vectors-coverage")
    defer { folder.remove() }
    let suite = folder.url.appendingPathComponent("suite")
    let manifest = try TestVectors(output: suite, seed: 5).run()
    let answers = folder.url.appendingPathComponent("answers")
    let fm = FileManager.default
    func copy(_ from: String, _ to: String) throws {
      try fm.createDirectory(
        at: answers.appendingPathComponent(to).deletingLastPathComponent(), withIntermediateDirectories: true)
      try fm.copyItem(at: suite.appendingPathComponent(from), to: answers.appendingPathComponent(to))
    }
    let url = suite.appendingPathComponent("manifest.json")
    // An empty folder: nothing checked, never PASS.
    try fm.createDirectory(at: answers, withIntermediateDirectories: true)
    let empty = try SuiteVerification(manifest: url, candidates: answers).run()
    #expect(!empty.passed && empty.verdict == "FAIL" && empty.filesChecked == 0)
    #expect(empty.casesWithCandidate == 0 && empty.casesWithoutCandidate.count == manifest.cases.count)

    try copy("brute-2of4/expected.safetensors", "brute-2of4/expected.safetensors")
    try copy("brute-2of4/problem.safetensors", "brute-2of4/problem.safetensors")  // the suite's own input: skipped
    try copy("brute-row/sparsegpt.safetensors", "brute-row/sparsgpt.safetensors")  // misspelt method
    try copy("brute-row/sparsegpt.safetensors", "brute-rwo/sparsegpt.safetensors")  // misspelt case
    let report = try SuiteVerification(manifest: url, candidates: answers).run()
    #expect(report.filesChecked == 1 && report.filesPassed == 1 && report.filesFailed == 0)
    #expect(report.casesTotal == manifest.cases.count && report.casesWithCandidate == 1)
    #expect(!report.casesWithoutCandidate.contains("brute-2of4") && report.casesWithoutCandidate.contains("brute-row"))
    #expect(
      report.unknownFiles.map(\.file) == ["brute-row/sparsgpt.safetensors", "brute-rwo"], "\(report.unknownFiles)")
    #expect(report.unknownFiles[0].reason.contains("matches no answer of brute-row"), "\(report.unknownFiles)")
    #expect(!report.passed && report.verdict == "FAIL")
    // Allowed, the unknown files are still listed, and the rest decides.
    let allowed = try SuiteVerification(manifest: url, candidates: answers, allowUnknown: true).run()
    #expect(allowed.passed && allowed.verdict == "PASS" && allowed.unknownFiles.count == 2)
    // The counts and the verdict are at the top level of the JSON.
    let object = try #require(try JSONSerialization.jsonObject(with: report.json()) as? [String: Any])
    for key in [
      "verdict", "cases_total", "cases_with_candidate", "cases_without_candidate", "unknown_files",
      "files_checked", "files_passed", "files_failed",
    ] {
      #expect(object[key] != nil, "\(key) missing: \(object.keys.sorted())")
    }
  }
}

/// Which group a ratio counts over in `prune verify`: the candidate's claim and each compared method.
@Suite struct VerifyGroupTests {
  /// A Float run's relative error against the same F32 weights measured in Double: they agree to
  /// Float's rounding of the error (~1e-7 relative), so 1e-5 leaves a margin; different masks
  /// differ by percents.
  static let sameWeights = 1e-5

  @Test("a bare ratio: the candidate is checked per row unless a claimed method says otherwise; /row and /matrix win")
  func bareRatioGroup() throws {
    #expect(
      try Verification.pattern(sparsity: "0.5", nOfM: nil, claimedMethod: nil).pattern
        == .unstructured(ratio: 0.5, group: .row))
    #expect(try Verification.pattern(sparsity: "0.5", nOfM: nil, claimedMethod: nil).groupGiven == false)
    #expect(try Verification.pattern(sparsity: "0.5", nOfM: nil, claimedMethod: "fista").pattern == .unstructured(0.5))
    #expect(
      try Verification.pattern(sparsity: "0.5/matrix", nOfM: nil, claimedMethod: nil).pattern == .unstructured(0.5))
    #expect(try Verification.pattern(sparsity: "0.5/matrix", nOfM: nil, claimedMethod: nil).groupGiven)
    #expect(try Verification.pattern(sparsity: nil, nOfM: "2:4", claimedMethod: nil).pattern == .nOfM(n: 2, m: 4))
  }

  @Test("PruneKit's own Wanda output at a bare 0.5 verifies at candidate/method 1 (both per row), and says so")
  func wandaAgainstItself() throws {
    let folder = TemporaryFolder("verify-wanda-group")
    defer { folder.remove() }
    let problem = try writeSyntheticProblem(in: folder, rows: 16, columns: 32, seed: 11)
    let out = folder.file("wanda.safetensors")
    let layerPattern = try LayerJob.pattern(sparsity: "0.5", nOfM: nil, method: .wanda)
    let outcome = try LayerJob(problem: problem, method: .wanda, pattern: layerPattern, output: out).run()
    #expect(outcome.report.pattern == "0.5/row")

    let (pattern, given) = try Verification.pattern(sparsity: "0.5", nOfM: nil, claimedMethod: nil)
    let c = try Verification(
      problem: problem, candidate: out, pattern: pattern, compare: [.wanda, .sparsegpt], groupGiven: given
    ).run()
    #expect(c.pattern == "0.5/row" && c.patternCheck.passed && c.patternCheck.groups == 16)
    let wanda = try #require(c.comparison.first { $0.method == "wanda" })
    #expect(wanda.pattern == "0.5/row")
    #expect(c.comparison.first { $0.method == "sparsegpt" }?.pattern == "0.5/matrix")
    let ratio = c.quality.relativeError / (wanda.relativeError ?? .nan)
    #expect(abs(ratio - 1) < Self.sameWeights, "candidate/method \(ratio)")

    // Told /matrix, Wanda is compared over the whole matrix: another mask, another error.
    let matrix = try Verification(
      problem: problem, candidate: out, pattern: .unstructured(0.5), compare: [.wanda], groupGiven: true
    ).run()
    #expect(matrix.pattern == "0.5/matrix" && matrix.comparison[0].pattern == "0.5/matrix")
    #expect(abs(matrix.quality.relativeError / (matrix.comparison[0].relativeError ?? .nan) - 1) > Self.sameWeights)
  }

  @Test("the oracle's JSON: snake_case keys, the version, paths as given, dampings by unit; the manifest reads back")
  func jsonKeys() throws {
    let folder = TemporaryFolder("verify-json")
    defer { folder.remove() }
    let suite = folder.url.appendingPathComponent("suite")
    _ = try TestVectors(output: suite, seed: 2).run()
    let manifestURL = suite.appendingPathComponent("manifest.json")
    let manifest = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any])
    #expect(snakeCaseKeyProblems(manifest).isEmpty, "\(snakeCaseKeyProblems(manifest))")
    #expect(manifest["prunekit_version"] as? String == PruneKitVersion.current)
    #expect(
      (manifest["tolerances"] as? [String: Any])?.keys.sorted() == [
        "lasso_kkt", "method_error", "optimum_error", "optimum_gap",
      ])
    let lasso = try #require(
      (manifest["cases"] as? [[String: Any]])?.first { $0["kind"] as? String == "lasso-closed-form" })
    #expect((lasso["tolerances"] as? [String: Any])?["max_kkt"] is NSNumber)
    // Read back: the max_kkt of the lasso case survives (the acronym's key).
    let read = try reportJSONDecoder().decode(VectorManifest.self, from: Data(contentsOf: manifestURL))
    #expect(read.cases.contains { $0.tolerances.maxKKT != nil })

    // A manifest in the format before 0.7.0 (camelCase keys) is refused, never read with its
    // multi-word bounds missing.
    var old = manifest
    old["prunekitVersion"] = old.removeValue(forKey: "prunekit_version")
    let oldURL = suite.appendingPathComponent("old-manifest.json")
    try JSONSerialization.data(withJSONObject: old).write(to: oldURL)
    do {
      _ = try SuiteVerification(manifest: oldURL).run()
      Issue.record("a manifest without prunekit_version was read")
    } catch {
      #expect(error.isUsageError && error.message.contains("before 0.7.0"), "\(error)")
    }

    // A certificate of files given by relative paths keeps them relative.
    let cwd = FileManager.default.currentDirectoryPath
    #expect(FileManager.default.changeCurrentDirectoryPath(suite.path))
    defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
    let c = try Verification(
      problem: URL(fileURLWithPath: "brute-2of4/problem.safetensors"),
      candidate: URL(fileURLWithPath: "brute-2of4/expected.safetensors"), pattern: .nOfM(n: 2, m: 4),
      compare: [.sparsegpt]
    ).run()
    let object = try #require(try JSONSerialization.jsonObject(with: c.json()) as? [String: Any])
    #expect(snakeCaseKeyProblems(object).isEmpty, "\(snakeCaseKeyProblems(object))")
    #expect(object["prunekit_version"] as? String == PruneKitVersion.current)
    #expect(object["problem"] as? String == "brute-2of4/problem.safetensors")
    let quality = try #require(object["quality"] as? [String: Any])
    #expect(quality["refit_damping_relative"] != nil && quality["refit_damping_retry_absolute"] != nil)
  }
}

/// `prune vectors --out` is all or nothing: a folder holding anything is refused before any work
/// (a suite never mixes with stale files), and a run that fails leaves no folder behind.
@Suite struct TestVectorsOutputTests {
  @Test func aFolderHoldingFilesIsRefusedAndKept() throws {
    let folder = TemporaryFolder("vectors-stale")
    defer { folder.remove() }
    try Data("stale".utf8).write(to: folder.file("old.safetensors"))
    do {
      _ = try TestVectors(output: folder.url, seed: 1, model: nil).run()
      Issue.record("a suite was written into a folder holding files")
    } catch {
      guard case .output(let message, let hint) = error else {
        Issue.record("\(error)")
        return
      }
      #expect(message.contains(folder.url.path) && message.contains("1 entry"), "\(message)")
      #expect(hint.contains("new folder"), "\(hint)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path) == ["old.safetensors"])
  }

  @Test func aFailedRunLeavesNothing() throws {
    let folder = TemporaryFolder("vectors-failed")
    defer { folder.remove() }
    let model = folder.file("broken.gguf")
    try Data("not a model".utf8).write(to: model)
    let output = folder.file("suite")
    #expect(throws: VectorsError.self) {
      try TestVectors(output: output, seed: 1, model: model).run()
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path) == ["broken.gguf"])
  }
}
