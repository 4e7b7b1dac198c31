// `prune vectors` without the command line: writes a suite of layer problems with known answers
// that another backend can run without PyTorch or Swift, and a manifest (JSON) listing every case,
// its files, its expected results and tolerances. Nothing is printed.

import Foundation
import PruneKernels
import PruneSolvers

/// Writes the test-vector suite into `output`:
///
///     manifest.json
///     <case>/problem.safetensors        the layer problem: 'weight' F32, 'gram' F64 (+ 'count')
///     <case>/expected.safetensors       the known answer, when there is one (F32)
///     <case>/<method>.safetensors       PruneKit's output of every method (F32; real cases: SparseGPT's)
///     <case>/<method>.mask.safetensors  real cases: every method's mask (U8)
///     <case>/perturbed-*.safetensors    negative controls: candidates that must fail
///
/// Synthetic cases (seeded, a few kB each):
///   - brute-force optima (BruteForce, δ = 0) of tiny problems for 2:4, per-row and whole-matrix
///     patterns; ill-conditioned (nearly collinear inputs), rank-deficient (fewer tokens than inputs)
///     and dead-input (a zero input column, so some refits are singular) Grams;
///   - N:M edge cases: 1:3 with the smallest weights in the last group of every row, ties (two
///     magnitudes, G = I: several masks are optimal), all-equal weights on correlated inputs;
///   - lasso solutions in closed form: for a diagonal G (G = c·I, and G = diag(d)) the minimiser of
///     ½‖X Ŵᵀ − X Wᵀ‖² + λ‖Ŵ‖₁ is Ŵᵢⱼ = soft_{λ/dⱼ}(Wᵢⱼ); λ is put halfway between two consecutive
///     sorted |Wᵢⱼ|·dⱼ so that exactly the pattern's count of entries is zero.
/// Real cases (with a model): q, o, gate and down of the chosen blocks of the model, inputs captured
/// from the dense forward pass on the first windows of the austen-quick calibration text, Grams
/// accumulated in Double and stored as F64 (never the inputs), every method at 50%.
///
/// Every PruneKit figure is measured on the file as written: the problem read back in Double and
/// each method's output as stored in F32.
public struct TestVectors: Sendable {
  /// The folder the suite is written into (created if needed).
  public var output: URL
  /// Seed of every synthetic case.
  public var seed: UInt64
  /// The model of the real cases; nil skips them, and so does a missing file (with a note).
  public var model: URL?
  /// Blocks the real layers are cut from: the first and the middle one of SmolLM2's 30 (0 and 15),
  /// where activations differ most (embedding statistics vs. mid-network outliers).
  public var blocks: [Int]
  /// Layers of each block (suffixes of the Hugging Face module names): one reading the block input
  /// (q), the attention output (o), the MLP input (gate) and the widest one (down).
  public var layers: [String]
  /// Calibration windows of the austen-quick text (1024 tokens each): 4 (4096 tokens) instead of 16,
  /// enough for full-rank Grams of 576 and 1536 inputs at a quarter of the forward passes.
  public var windows: Int
  /// The method whose weights every real case stores and that its `verify` line checks: SparseGPT,
  /// the reference every backend has.
  public static let realReference = PruningMethod.sparsegpt
  /// Store every method's pruned weight for the real cases (`--real-weights all`), not only the
  /// reference's; the others' masks and errors are always stored. Off by default: seven F32
  /// weights of eight layers add 136 MB.
  public var allRealWeights: Bool = false
  /// The pattern of the real cases: 50% over the whole matrix, the most common setting.
  public var realPattern: SparsityPattern
  /// The corpus of the real cases' calibration text (nil: the embedded one).
  public var corpus: URL?

  public init(
    output: URL, seed: UInt64 = 1, model: URL? = nil, blocks: [Int] = [0, 15],
    layers: [String] = ["self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj"], windows: Int = 4,
    realPattern: SparsityPattern = .unstructured(0.5), corpus: URL? = nil
  ) {
    self.output = output
    self.seed = seed
    self.model = model
    self.blocks = blocks
    self.layers = layers
    self.windows = windows
    self.realPattern = realPattern
    self.corpus = corpus
  }

  /// Tolerances of the manifest, named once (Docs/oracle.md#how-the-tolerances-were-chosen).
  public enum Tolerance {
    /// Gap of a known optimum (stored in F32) to the exact refit on its own mask. Rounding the
    /// optimum R to F32 moves it by δ ~ u·|R| (u = 2⁻²⁴); R is stationary on its support, so the
    /// error grows only by δ G* δᵀ ≲ u²·κ·E-scale: below 1e-9 relative for the κ ≤ ~1e7 here.
    /// 1e-6 leaves three orders of margin and still fails any perturbation a person would make.
    public static let optimumGap = 1e-6
    /// KKT residual of a closed-form lasso solution stored in F32: on the support the gradient
    /// error is dⱼ·|Ẑ − Z| ≤ dⱼ·u·|Z|, below 6e-8 of max|W K|; 1e-6 gives a factor 16.
    public static let lassoKKT = 1e-6
    /// Relative difference allowed between a backend's error and a known optimum's: both in
    /// Double from the same F64 Gram, they differ by the F32 storage of the weights (≲ 1e-9);
    /// 1e-6 admits a backend that accumulates the error in float32 over these tiny sizes.
    public static let optimumError = 1e-6
    /// Relative difference allowed between a backend's error and PruneKit's for the same method:
    /// PruneKit's own Float and Double solves agree to 1e-4 (MethodPropertyTests.floatVersusDouble);
    /// another implementation sums in another order, so ×10.
    public static let methodError = 1e-3
  }

  /// Writes the suite and returns its manifest (also written as `manifest.json`). `progress`
  /// receives one line per case. The suite is written all or nothing: into a temporary folder
  /// beside `output` (`.NAME.partial-PID`), renamed to `output` when complete; an `output` that
  /// holds anything is refused before any work, so a suite never mixes with older files.
  public func run(progress: (String) -> Void = { _ in }) throws(VectorsError) -> VectorManifest {
    let manager = FileManager.default
    if let problem = OutputSafety.folderOutputProblem(of: output, option: "--out") {
      throw .output(problem.message, hint: problem.hint)
    }
    var isDirectory: ObjCBool = false
    if manager.fileExists(atPath: output.path, isDirectory: &isDirectory) {
      guard isDirectory.boolValue else {
        throw .output("--out \(output.path) is a file", hint: "give the path of a new folder for the suite")
      }
      let entries = (try? manager.contentsOfDirectory(atPath: output.path)) ?? []
      if !entries.isEmpty {
        throw .output(
          "--out \(output.path) already holds \(entries.count) entr\(entries.count == 1 ? "y" : "ies")",
          hint: "choose a new folder, or delete it first; a suite is never mixed with older files")
      }
    }
    let parent = output.standardizedFileURL.deletingLastPathComponent()
    do { try manager.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
      throw .write(WriteError(path: parent.path, reason: "cannot create the folder: \(OutputSafety.reason(error))"))
    }
    AtomicOutput.removeStaleTemporaries(of: output)
    var manifest: VectorManifest? = nil
    do throws(FolderWriteError<VectorsError>) {
      try AtomicOutput.writeFolder(output, name: .partial, replacing: true) { (staging: URL) throws(VectorsError) in
        var suite = self
        suite.output = staging
        manifest = try suite.fill(progress: progress)
      }
    } catch {
      switch error {
      case .fill(let e): throw e
      case .create(let folder, let reason):
        throw .write(WriteError(path: output.path, reason: "cannot create a folder in \(folder): \(reason)"))
      case .move(let reason, let exists):
        if exists {
          throw .output(
            "--out \(output.path) appeared while the suite was written",
            hint: "choose a new folder, or delete it first; a suite is never mixed with older files")
        }
        throw .write(WriteError(path: output.path, reason: "cannot move the finished folder into place: \(reason)"))
      case .refused(let e): throw .write(e)
      }
    }
    return manifest!
  }

  /// Writes the suite's files into `output` (the temporary folder of `run`).
  private func fill(progress: (String) -> Void) throws(VectorsError) -> VectorManifest {
    var cases: [VectorCase] = []
    var notes: [String] = []
    for spec in syntheticCases() {
      cases.append(try write(spec))
      progress("\(spec.name): \(spec.kind)")
    }
    if let model {
      if FileManager.default.fileExists(atPath: model.path) {
        for c in try realCases(model: model, progress: progress) { cases.append(c) }
      } else {
        notes.append("real cases skipped: no model at \(model.path) (run scripts/fetch-model.sh)")
      }
    } else {
      notes.append("real cases skipped (--no-real)")
    }
    let manifest = VectorManifest(
      prunekitVersion: PruneKitVersion.current, seed: seed, cases: cases, notes: notes,
      tolerances: [
        "optimum_gap": Tolerance.optimumGap, "lasso_kkt": Tolerance.lassoKKT, "optimum_error": Tolerance.optimumError,
        "method_error": Tolerance.methodError,
      ])
    try writeFile(manifest.json(), "manifest.json")
    return manifest
  }

  // MARK: - Synthetic cases

  /// One synthetic case before it is solved.
  struct Spec {
    var name: String
    var kind: String
    var description: String
    var weight: Matrix<Float>
    var gram: Matrix<Double>
    var tokens: Int?
    var pattern: SparsityPattern
    /// λ of a closed-form lasso case (its expected answer is the lasso solution).
    var lambda: Double? = nil
  }

  func syntheticCases() -> [Spec] {
    var rng = SplitMix64(seed: seed)
    func nextSeed() -> UInt64 { rng.next() }
    func inputs(_ tokens: Int, _ n: Int) -> Matrix<Double> {
      SyntheticLayerProblem.make(rows: 1, columns: n, tokens: tokens, seed: nextSeed()).inputs.converted(
        to: Double.self)
    }
    func weight(_ m: Int, _ n: Int) -> Matrix<Float> {
      SyntheticLayerProblem.make(rows: m, columns: n, tokens: 1, seed: nextSeed()).weight
    }
    func spec(
      _ name: String, _ kind: String, _ text: String, _ w: Matrix<Float>, _ x: Matrix<Double>, _ p: SparsityPattern
    ) -> Spec {
      Spec(name: name, kind: kind, description: text, weight: w, gram: gram(x), tokens: x.rows, pattern: p)
    }
    var specs: [Spec] = []
    specs.append(
      spec(
        "brute-2of4", "brute-force", "4 × 8, 40 correlated tokens, 2:4: the optimum over all 36 masks per row",
        weight(4, 8), inputs(40, 8), .nOfM(n: 2, m: 4)))
    specs.append(
      spec(
        "brute-row", "brute-force", "3 × 8, 40 tokens, 50% in every row (70 masks per row)", weight(3, 8),
        inputs(40, 8), .unstructured(ratio: 0.5, group: .row)))
    specs.append(
      spec(
        "brute-matrix", "brute-force",
        "3 × 6, 30 tokens, 50% over the whole matrix: rows may differ (dynamic programming over rows)", weight(3, 6),
        inputs(30, 6), .unstructured(0.5)))
    // Nearly collinear inputs: every column = a shared signal + 1e-3 × its own noise, κ(G) ~ 1e6.
    var collinear = inputs(40, 8)
    let shared = inputs(40, 1)
    for t in 0..<40 { for j in 0..<8 { collinear[t, j] = shared[t, 0] + 1e-3 * collinear[t, j] } }
    specs.append(
      spec(
        "ill-conditioned", "brute-force", "3 × 8, nearly collinear inputs (κ(G) ≈ 1e6), 2:4", weight(3, 8), collinear,
        .nOfM(n: 2, m: 4)))
    specs.append(
      spec(
        "rank-deficient", "brute-force",
        "3 × 8 from 5 tokens: G has rank 5 < 8; every 2:4 refit (4 kept) is still well posed", weight(3, 8),
        inputs(5, 8), .nOfM(n: 2, m: 4)))
    var dead = inputs(40, 8)
    for t in 0..<40 { dead[t, 2] = 0 }
    specs.append(
      spec(
        "dead-input", "brute-force",
        "3 × 8, input 2 is always zero (G's row and column 2 are zero): refits keeping it are singular", weight(3, 8),
        dead, .nOfM(n: 2, m: 4)))
    var tail = weight(3, 9)
    for i in 0..<3 { for j in 6..<9 { tail[i, j] *= 0.1 } }
    specs.append(
      spec(
        "nm-tail-1of3", "nm-edge",
        "3 × 9, 1:3 (odd M, three groups per row), the smallest weights all in the last group of each row", tail,
        inputs(30, 9), .nOfM(n: 1, m: 3)))
    let tieValues: [Float] = [0.5, -0.5, 0.25, -0.25]
    let ties = Matrix<Float>(rows: 3, columns: 8) { i, j in tieValues[(i + j * 3) % 4] }
    specs.append(
      Spec(
        name: "nm-ties", kind: "nm-edge",
        description:
          "3 × 8, weights ±0.5 and ±0.25 with ties in every group, G = I: several masks are optimal, any of them passes",
        weight: ties, gram: Matrix(rows: 8, columns: 8) { $0 == $1 ? 1 : 0 }, tokens: nil, pattern: .nOfM(n: 2, m: 4)))
    specs.append(
      spec(
        "nm-all-equal", "nm-edge", "2 × 8, every weight 0.5, correlated inputs: only the data decides the mask",
        Matrix(rows: 2, columns: 8, repeating: 0.5), inputs(40, 8), .nOfM(n: 2, m: 4)))
    // Lasso in closed form: diagonal Grams.
    specs.append(
      lassoSpec(
        "lasso-orthogonal", "4 × 16, G = 4·I (orthogonal design): Ŵ = soft_{λ/4}(W)", weight(4, 16),
        diagonal: [Double](repeating: 4, count: 16)))
    let scales = (0..<16).map { _ in pow(10, rng.uniform(in: -1...1)) }
    specs.append(
      lassoSpec(
        "lasso-diagonal", "4 × 16, G = diag(d), d from 0.1 to 10: Ŵᵢⱼ = soft_{λ/dⱼ}(Wᵢⱼ)", weight(4, 16),
        diagonal: scales))
    return specs
  }

  /// A lasso case on G = diag(d), 50% over the whole matrix, λ halfway between the two sorted
  /// scores |Wᵢⱼ|·dⱼ around the count, so that soft-thresholding zeroes exactly that many.
  func lassoSpec(_ name: String, _ text: String, _ w: Matrix<Float>, diagonal d: [Double]) -> Spec {
    let pattern = SparsityPattern.unstructured(0.5)
    let k = pattern.prunedCount(rows: w.rows, columns: w.columns)
    let scores = (0..<w.elements.count).map { abs(Double(w.elements[$0])) * d[$0 % w.columns] }.sorted()
    let lambda = (scores[k - 1] + scores[k]) / 2
    let g = Matrix<Double>(rows: d.count, columns: d.count) { $0 == $1 ? d[$0] : 0 }
    return Spec(
      name: name, kind: "lasso-closed-form", description: text, weight: w, gram: g, tokens: nil, pattern: pattern,
      lambda: lambda)
  }

  /// Writes one synthetic case: the problem, the known answer, every method's output and the
  /// negative controls.
  func write(_ spec: Spec) throws(VectorsError) -> VectorCase {
    let folder = spec.name
    let problemFile = "\(folder)/problem.safetensors"
    try writeProblem(
      problemFile, weight: spec.weight, gram: spec.gram, count: spec.tokens, metadata: ["case": spec.name])
    let file = try openProblem(problemFile)
    let layer: LayerProblem<Double>
    do { layer = try file.problem(as: Double.self) } catch { throw .file(error) }

    // The known answer, in Double, then as stored (F32).
    let answer: Matrix<Double>
    var expected = ExpectedAnswer(file: "\(folder)/expected.safetensors", relativeError: 0, lambda: spec.lambda)
    if let lambda = spec.lambda {
      answer = layer.weight.indices { i, j in FISTA.softThreshold(layer.weight[i, j], lambda / layer.gram[j, j]) }
    } else {
      let r: PruningResult<Double>
      do { r = try BruteForce().prune(layer, pattern: spec.pattern) } catch { throw .pruning(error) }
      answer = r.weight
      expected.masksEvaluated = r.report.metrics["masks_evaluated"].map { Int($0) }
    }
    let stored = answer.converted(to: Float.self)
    try writeFile(
      PrunedWeightFile.writer(
        stored,
        metadata: ["case": spec.name, "answer": spec.lambda == nil ? "brute-force optimum" : "closed-form lasso"]
      ).serialized(), expected.file)
    let storedDouble = stored.converted(to: Double.self)
    expected.relativeError = layer.relativeError(of: storedDouble)
    if let lambda = spec.lambda {
      expected.lassoObjective = LassoKKT(problem: layer, candidate: storedDouble, lambda: lambda).objective
    }

    // Every method, as `prune layer` runs it (Float), measured as stored.
    let methods = try runMethods(file, layer: layer, folder: folder, pattern: spec.pattern)

    // Negative controls: every kept weight ×1.1 (breaks optimality / KKT), and one pruned entry
    // made non-zero (breaks the pattern).
    var scaled = stored
    scaled.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= 1.1 } }
    var unpruned = stored
    if let z = unpruned.elements.firstIndex(of: 0) {
      unpruned.withUnsafeMutableBufferPointer { $0[z] = spec.weight.elements[z] == 0 ? 1 : spec.weight.elements[z] }
    }
    let claim =
      spec.lambda.map { ["--method-claimed", "fista", "--lambda", "\($0)", "--max-kkt", "\(Tolerance.lassoKKT)"] }
      ?? ["--max-gap", "\(Tolerance.optimumGap)"]
    var controls: [NegativeControl] = []
    for (name, w, fails) in [
      ("perturbed-weights", scaled, [spec.lambda == nil ? "gap" : "kkt"]), ("perturbed-pattern", unpruned, ["pattern"]),
    ] {
      let path = "\(folder)/\(name).safetensors"
      try writeFile(PrunedWeightFile.writer(w, metadata: ["case": spec.name, "control": name]).serialized(), path)
      controls.append(
        NegativeControl(
          file: path, mustFail: fails, arguments: verifyArguments(problemFile, path, spec.pattern) + claim))
    }
    return VectorCase(
      name: spec.name, kind: spec.kind, description: spec.description, problem: problemFile,
      shape: [layer.outputs, layer.inputs], tokens: spec.tokens ?? 0, pattern: spec.pattern.label,
      expected: expected, methods: methods,
      tolerances: spec.lambda == nil
        ? CaseTolerances(
          maxGap: Tolerance.optimumGap, maxKKT: nil, expectedRelativeError: Tolerance.optimumError,
          methodRelativeError: Tolerance.methodError)
        : CaseTolerances(
          maxGap: nil, maxKKT: Tolerance.lassoKKT, expectedRelativeError: Tolerance.optimumError,
          methodRelativeError: Tolerance.methodError),
      verify: verifyArguments(problemFile, expected.file, spec.pattern) + claim, controls: controls)
  }

  /// Every method on the problem in Float (as `prune layer` runs it), each output measured as
  /// stored (F32), in Double. The weights of the methods in `weights` (nil: all) are written as
  /// `<method>.safetensors`; with `masks`, every method's mask too, as `<method>.mask.safetensors`.
  func runMethods(
    _ file: LayerProblemFile, layer: LayerProblem<Double>, folder: String, pattern: SparsityPattern,
    weights: Set<PruningMethod>? = nil, masks: Bool = false
  ) throws(VectorsError) -> [MethodOutput] {
    var results: [(PruningMethod, PruningResult<Float>)] = []
    let compared: [MethodComparison]
    do {
      // SparseGPT's and APT's lazy batches must hold whole N:M groups: 128 → the largest multiple of M.
      var options = MethodOptions()
      if case .nOfM(_, let m) = pattern, 128 % m != 0 {
        options.sparseGPT.blockSize = 128 / m * m
        options.apt.blockSize = 128 / m * m
      }
      compared = try Verification.compare(
        file, as: Float.self, methods: PruningMethod.allCases, pattern: pattern, options: options
      ) {
        results.append(($0, $1))
      }
    } catch {
      if case .file(let e) = error { throw .file(e) }
      preconditionFailure("unreachable: \(error)")
    }
    var outputs: [MethodOutput] = []
    for (method, result) in results {
      let metadata = ["method": method.rawValue, "pattern": pattern.description]
      var path: String? = nil
      if weights?.contains(method) ?? true {
        path = "\(folder)/\(method.rawValue).safetensors"
        try writeFile(PrunedWeightFile.writer(result.weight, metadata: metadata).serialized(), path!)
      }
      var maskPath: String? = nil
      if masks {
        maskPath = "\(folder)/\(method.rawValue).mask.safetensors"
        try writeFile(MaskFile.writer(result.mask, metadata: metadata).serialized(), maskPath!)
      }
      outputs.append(
        MethodOutput(
          method: method.rawValue, file: path, mask: maskPath,
          relativeError: layer.relativeError(of: result.weight.converted(to: Double.self)),
          realisedSparsity: result.mask.sparsity, lambda: result.report.lambda, seconds: result.report.seconds,
          note: nil))
    }
    for c in compared where c.note != nil {
      outputs.append(
        MethodOutput(
          method: c.method, file: nil, mask: nil, relativeError: nil, realisedSparsity: nil, lambda: nil, seconds: nil,
          note: c.note))
    }
    return outputs.sorted { $0.method < $1.method }
  }

  func verifyArguments(_ problem: String, _ candidate: String, _ pattern: SparsityPattern) -> [String] {
    let p: [String]
    if case .nOfM = pattern {
      p = ["--pattern", pattern.description]
    } else {
      p = ["--sparsity", pattern.label]
    }
    return ["--problem", problem, "--candidate", candidate] + p
  }

  // MARK: - Real cases

  func realCases(model url: URL, progress: (String) -> Void) throws(VectorsError) -> [VectorCase] {
    let loaded: LoadedModel
    do { loaded = try LoadedModel(contentsOf: url) } catch { throw .model(error) }
    let model = loaded.model
    let spec = EvaluationProtocol.austenQuick.calibration
    let text: String
    do { text = try spec.text(in: Corpus(directory: corpus)) } catch { throw .corpus(error) }
    let tokens = Perplexity.tokenize(text, with: loaded.tokenizer)
    let count = min(windows, tokens.count / spec.sequenceLength)
    guard count >= 1 else { throw .realCases("the calibration text has fewer than \(spec.sequenceLength) tokens") }
    let calibration = Array(tokens[0..<(count * spec.sequenceLength)])
    var hidden: Matrix<Float>
    do { hidden = try model.embed(calibration, sequenceLength: spec.sequenceLength) } catch { throw .forward(error) }
    let wanted = blocks.filter { $0 >= 0 && $0 < model.blockCount }
    guard let last = wanted.max() else {
      throw .realCases("no block of \(blocks) in a model of \(model.blockCount) blocks")
    }
    var cases: [VectorCase] = []
    for b in 0...last {
      var captured: [(String, Matrix<Double>)] = []
      let names = Set(
        layers.map {
          "\(model.linearLayerNames(block: b)[0].split(separator: ".").prefix(3).joined(separator: ".")).\($0)"
        })
      hidden = model.runBlock(b, hidden: hidden, sequenceLength: spec.sequenceLength) { input in
        guard wanted.contains(b) else { return }
        for name in input.layers where names.contains(name) {
          var g = GramAccumulator<Double>(features: input.input.columns)
          g.add(input.input.converted(to: Double.self))
          captured.append((name, g.gram))
        }
      }
      for (name, g) in captured {
        let weight: Matrix<Float>
        do { weight = try model.linearWeights(name).weight } catch { throw .forward(error) }
        let caseName =
          "real-"
          + name.replacingOccurrences(of: "model.layers.", with: "block").replacingOccurrences(
            of: "self_attn.", with: ""
          ).replacingOccurrences(of: "mlp.", with: "").replacingOccurrences(of: ".", with: "-")
        cases.append(try writeReal(caseName, layerName: name, weight: weight, gram: g, tokens: calibration.count))
        progress("\(caseName): real, [\(weight.rows) × \(weight.columns)], \(calibration.count) tokens")
      }
    }
    return cases
  }

  func writeReal(_ name: String, layerName: String, weight: Matrix<Float>, gram g: Matrix<Double>, tokens: Int)
    throws(VectorsError) -> VectorCase
  {
    let problemFile = "\(name)/problem.safetensors"
    try writeProblem(
      problemFile, weight: weight, gram: g, count: tokens,
      metadata: ["layer": layerName, "calibration": "austen-quick, first \(windows) windows"])
    let file = try openProblem(problemFile)
    let layer: LayerProblem<Double>
    do { layer = try file.problem(as: Double.self) } catch { throw .file(error) }
    let stored: Set<PruningMethod> =
      allRealWeights ? Set(PruningMethod.allCases.filter { $0 != .exact }) : [Self.realReference]
    let methods = try runMethods(file, layer: layer, folder: name, pattern: realPattern, weights: stored, masks: true)
    let best = methods.compactMap { m in m.relativeError.map { (m.method, $0) } }.min { $0.1 < $1.1 }
    let reference = methods.first { $0.method == Self.realReference.rawValue }
    return VectorCase(
      name: name, kind: "real",
      description: "\(layerName) of the model, \(tokens) calibration tokens (austen-quick, first \(windows) windows)",
      problem: problemFile, shape: [weight.rows, weight.columns], tokens: tokens, pattern: realPattern.label,
      expected: reference.map {
        ExpectedAnswer(file: $0.file ?? "", relativeError: $0.relativeError ?? .nan, lambda: nil, bestMethod: best?.0)
      },
      methods: methods,
      tolerances: CaseTolerances(
        maxGap: nil, maxKKT: nil, expectedRelativeError: nil, methodRelativeError: Tolerance.methodError),
      verify: verifyArguments(problemFile, "\(name)/\(Self.realReference.rawValue).safetensors", realPattern),
      controls: [])
  }

  // MARK: - Files

  /// A problem file: 'weight' F32, 'gram' F64 and 'count' when known.
  func writeProblem(
    _ relative: String, weight: Matrix<Float>, gram: Matrix<Double>, count: Int?, metadata: [String: String]
  )
    throws(VectorsError)
  {
    var w = SafetensorsWriter(metadata: metadata.merging(["generator": "prune vectors"]) { a, _ in a })
    do {
      try w.add(LayerProblemFile.Tensor.weight, matrix: weight)
      try w.add(LayerProblemFile.Tensor.gram, matrix: gram)
      if let count { try w.add(LayerProblemFile.Tensor.count, shape: [1], .f64([Double(count)])) }
    } catch {
      throw .tensors(error)
    }
    try writeFile(w.serialized(), relative)
  }

  func writeFile(_ data: Data, _ relative: String) throws(VectorsError) {
    let url = output.appendingPathComponent(relative)
    do {
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    } catch {
      throw .write(
        WriteError(
          path: url.deletingLastPathComponent().path, reason: "cannot create the folder: \(OutputSafety.reason(error))")
      )
    }
    do { try AtomicOutput.write(data, to: url) } catch { throw .write(error) }
  }

  func openProblem(_ relative: String) throws(VectorsError) -> LayerProblemFile {
    do { return try LayerProblemFile(contentsOf: output.appendingPathComponent(relative)) } catch { throw .file(error) }
  }
}

extension Matrix {
  /// A matrix of the same shape whose entry (i, j) is `entry(i, j)`.
  func indices(_ entry: (Int, Int) -> Scalar) -> Matrix { Matrix(rows: rows, columns: columns, entry) }
}

// MARK: - The manifest

/// The suite's table of contents: every case, its files, expected results and tolerances, and the
/// PruneKit version that made it. Paths are relative to the manifest's folder.
public struct VectorManifest: Sendable, Codable, Equatable {
  public var prunekitVersion: String
  public var seed: UInt64
  public var cases: [VectorCase]
  /// What was skipped, and why.
  public var notes: [String]
  /// The named tolerances (Docs/oracle.md), under snake_case names.
  public var tolerances: [String: Double]

  /// The manifest as PruneKit's JSON (snake_case keys: `reportJSON`; read back with
  /// `reportJSONDecoder`).
  public func json() -> Data { reportJSON(self) }
}

/// One case of the suite.
public struct VectorCase: Sendable, Codable, Equatable {
  public var name: String
  /// brute-force, nm-edge, lasso-closed-form or real.
  public var kind: String
  public var description: String
  /// The layer-problem file.
  public var problem: String
  public var shape: [Int]
  public var tokens: Int
  /// The pattern, its group always written ("0.5/matrix", "0.5/row", "2:4"; `SparsityPattern.label`).
  public var pattern: String
  /// The known answer (synthetic) or PruneKit's best method (real).
  public var expected: ExpectedAnswer?
  /// PruneKit's output and error for every method.
  public var methods: [MethodOutput]
  public var tolerances: CaseTolerances
  /// The `prune verify` arguments that certify the expected answer (paths relative to the manifest).
  public var verify: [String]
  /// Candidates that must fail, and the checks that must fail.
  public var controls: [NegativeControl]
}

/// The known answer of a case.
public struct ExpectedAnswer: Sendable, Codable, Equatable {
  /// The answer as stored (F32).
  public var file: String
  /// Its relative error, measured as stored.
  public var relativeError: Double
  /// λ of a closed-form lasso answer.
  public var lambda: Double?
  /// Its lasso objective ½E + λ‖Ŵ‖₁ (lasso cases).
  public var lassoObjective: Double? = nil
  /// Masks the brute-force search evaluated.
  public var masksEvaluated: Int? = nil
  /// For real cases (whose `file` is SparseGPT's output, the reference; no optimum is known): the
  /// PruneKit method with the lowest error.
  public var bestMethod: String? = nil
}

/// PruneKit's output of one method on a case.
public struct MethodOutput: Sendable, Codable, Equatable {
  public var method: String
  /// The pruned weight (F32); nil when the method refused the problem or only the mask is kept.
  public var file: String?
  /// The mask (U8, 1 = kept), for the real cases.
  public var mask: String?
  /// Relative error of the weight as stored.
  public var relativeError: Double?
  public var realisedSparsity: Double?
  public var lambda: Double?
  public var seconds: Double?
  public var note: String?
}

/// The tolerances a backend's results are held to on one case.
public struct CaseTolerances: Sendable, Codable, Equatable {
  /// `--max-gap` for the expected answer.
  public var maxGap: Double?
  /// `--max-kkt` for a lasso answer (JSON `max_kkt`).
  public var maxKKT: Double?
  /// |E_backend − E_expected| / E_expected for a backend's own exact solver or lasso.
  public var expectedRelativeError: Double?
  /// |E_backend − E_PruneKit| / E_PruneKit for the same method.
  public var methodRelativeError: Double

  private enum CodingKeys: String, CodingKey {
    case maxGap, expectedRelativeError, methodRelativeError
    case maxKKT = "maxKkt"  // max_kkt both ways (`reportJSONDecoder`)
  }
}

/// A candidate that must fail verification, and which checks must fail.
public struct NegativeControl: Sendable, Codable, Equatable {
  public var file: String
  public var mustFail: [String]
  public var arguments: [String]
}

/// Why the suite could not be written.
public enum VectorsError: PruneKitError, Equatable {
  case file(LayerProblemFileError)
  case pruning(PruningError)
  /// A tensor could not be put into a file (a bug in the generator).
  case tensors(SafetensorsError)
  case write(WriteError)
  /// The real cases: the model could not be loaded.
  case model(ModelLoadError)
  /// The real cases: the calibration text could not be read.
  case corpus(CorpusError)
  /// The real cases: the model could not run the calibration text.
  case forward(ForwardError)
  /// The real cases cannot be cut from this model and text.
  case realCases(String)
  /// The output folder cannot be used (it holds files, is a file or a device).
  case output(String, hint: String)

  public var message: String {
    switch self {
    case .file(let e): return e.message
    case .pruning(let e): return e.message
    case .tensors(let e): return e.message
    case .write(let e): return e.message
    case .model(let e): return "real cases: \(e.message)"
    case .corpus(let e): return "real cases: \(e.message)"
    case .forward(let e): return "real cases: \(e.message)"
    case .realCases(let m): return "real cases: \(m)"
    case .output(let m, _): return m
    }
  }

  public var hint: String? {
    switch self {
    case .file(let e): return e.hint
    case .pruning(let e): return e.hint ?? "this is a bug in the generator."
    case .tensors(let e): return e.hint
    case .write(let e): return e.hint
    case .output(_, let hint): return hint
    case .model, .corpus, .forward, .realCases:
      return "check --model (scripts/fetch-model.sh fetches SmolLM2), or pass --no-real."
    }
  }
}
