import PruneTestSupport
import Testing

@testable import PruneSolvers

/// Numerical trouble × every method, through `prune` (the dispatcher the CLI and the pipeline use):
/// each case is either handled — finite weights, the exact pattern, any damping or fallback in the
/// report — or stopped by a typed error whose message names the problem and gives a hint.
/// Docs/reliability.md ("Numerical trouble") is the table of what each method does.
@Suite("Numerical trouble: singular, indefinite, dead, zero, badly scaled and non-finite problems")
struct NumericalTroubleTests {
  /// Small enough for the brute-force oracle (C(12, 6) = 924 masks per row), N:M-compatible.
  static let m = 4
  static let n = 12
  static let patterns: [SparsityPattern] = [.unstructured(ratio: 0.5, group: .row), .nOfM(n: 2, m: 4)]

  /// W `[4 × 12]` uniform in [−1, 1] and X `[tokens × 12]` with correlated columns, in Double.
  static func data(seed: UInt64, tokens: Int = 60) -> (w: Matrix<Double>, x: Matrix<Double>) {
    var rng = SplitMix64(seed: seed)
    let w = Matrix<Double>.random(rows: m, columns: n, using: &rng)
    var x = Matrix<Double>(rows: tokens, columns: n) { _, _ in Double.random(in: -1...1, using: &rng) }
    for r in 0..<tokens { for j in 1..<n { x[r, j] += 0.5 * x[r, j - 1] } }
    return (w, x)
  }

  /// The Float problem of W and G = XᵀX (the pipeline's precision).
  static func problem(_ w: Matrix<Double>, gram g: Matrix<Double>, tokens: Int = 60) throws -> LayerProblem<Float> {
    try LayerProblem(weight: w.converted(to: Float.self), gram: g.converted(to: Float.self), tokens: tokens)
  }

  // MARK: - Handled cases

  /// Inputs every method must handle (no error), each a way real calibration data goes wrong.
  enum Handled: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// 5 tokens for 12 features: G has rank 5.
    case fewerTokensThanFeatures
    /// Feature 7 is a copy of feature 3: G is singular with two equal rows.
    case duplicatedFeature
    /// Rank 6 and one eigenvalue of −10⁻⁹·tr G: a Gram whose rounding went slightly negative.
    case slightlyIndefinite
    /// Features 2 and 7 are always zero: zero rows and columns of G.
    case deadInputs
    /// X = 0: G = 0, no calibration signal at all.
    case allInputsDead
    /// Rows 0 and 2 of W are zero.
    case zeroWeightRows
    /// W = 0.
    case zeroWeight

    var testDescription: String { rawValue }

    /// The case's problem (seeded).
    func problem() throws -> LayerProblem<Float> {
      var (w, x) = NumericalTroubleTests.data(seed: 41)
      let n = NumericalTroubleTests.n
      switch self {
      case .fewerTokensThanFeatures:
        x = x.submatrix(rows: 0..<5, columns: 0..<n)
      case .duplicatedFeature:
        for t in 0..<x.rows { x[t, 7] = x[t, 3] }
      case .slightlyIndefinite:
        var rng = SplitMix64(seed: 42)
        let spectrum = [40.0, 20, 10, 5, 2, 1, 0, 0, 0, 0, 0, -1e-9 * 78]
        let g = symmetricMatrix(spectrum: spectrum, using: &rng)
        return try NumericalTroubleTests.problem(w, gram: g)
      case .deadInputs:
        for t in 0..<x.rows {
          x[t, 2] = 0
          x[t, 7] = 0
        }
      case .allInputsDead:
        x = Matrix(rows: x.rows, columns: n)
      case .zeroWeightRows:
        for j in 0..<n {
          w[0, j] = 0
          w[2, j] = 0
        }
      case .zeroWeight:
        w = Matrix(rows: w.rows, columns: n)
      }
      return try NumericalTroubleTests.problem(w, gram: gram(x), tokens: x.rows)
    }

    /// True when G is singular in a way every masked subsystem of the brute-force oracle (δ = 0)
    /// meets for some mask, so its Cholesky must have been retried with damping.
    var oracleNeedsDamping: Bool {
      [.fewerTokensThanFeatures, .duplicatedFeature, .deadInputs, .allInputsDead].contains(self)
    }
  }

  static func trace(_ g: Matrix<Float>) -> Double { (0..<g.rows).reduce(0) { $0 + Double(g[$1, $1]) } }
  static func squaredNorm(_ w: Matrix<Float>) -> Double { w.elements.reduce(0) { $0 + Double($1) * Double($1) } }

  /// Methods that solve a linear system with G* and damp it by default (δ reported as `damping`).
  static let dampedMethods: Set<PruningMethod> = [.sparsegpt, .apt, .refit, .admm, .sparsellm, .alps]

  @Test(
    "every method handles the case: finite, exact pattern, damping or fallback reported",
    arguments: PruningMethod.allCases, Handled.allCases)
  func handled(_ method: PruningMethod, _ trouble: Handled) throws {
    let problem = try trouble.problem()
    for pattern in Self.patterns {
      let r = try prune(problem, method: method, pattern: pattern)
      let context = "\(method) \(trouble) \(pattern)"
      #expect(NonFiniteSummary(of: r.weight) == nil, "\(context): non-finite weights")
      #expect(r.mask.satisfies(pattern), "\(context): \(r.mask.violations(of: pattern).prefix(3))")
      for i in 0..<Self.m { for j in 0..<Self.n where !r.mask[i, j] { #expect(r.weight[i, j] == 0, "\(context)") } }
      // E = tr((W − Ŵ)G(W − Ŵ)ᵀ) ≥ λmin(G)·‖W − Ŵ‖². Storing G in Float moves its eigenvalues by
      // ≲ n·u·max|G| ≤ 12·6e-8·tr G, so a singular G can go that far negative (as can the slightly
      // indefinite one, −10⁻⁹·tr G): E ≥ −10⁻⁵·tr G·2(‖W‖² + ‖Ŵ‖²) leaves a margin of ~7.
      let slack = 1e-5 * Self.trace(problem.gram) * 2 * (Self.squaredNorm(problem.weight) + Self.squaredNorm(r.weight))
      #expect(r.report.error.isFinite && r.report.error >= -slack, "\(context): error \(r.report.error)")
      if Self.dampedMethods.contains(method) {
        #expect((r.report.damping ?? 0) > 0, "\(context): the damping used is reported")
      }
      if method == .exact && trouble.oracleNeedsDamping {
        #expect((r.report.dampingRetry ?? 0) > 0, "\(context): the oracle's singular solves were damped, and say so")
      }
      switch trouble {
      case .deadInputs:
        // Policy (SparseGPT's reference, shared by APT and SparseLLM's inner SparseGPT): a dead
        // input's Hⱼⱼ is set to 1 and its weights to 0 (they cannot change the calibration output).
        if [.sparsegpt, .apt, .sparsellm].contains(method) {
          #expect(r.report.metrics["dead_inputs"] == 2, "\(context)")
          for i in 0..<Self.m { #expect(r.weight[i, 2] == 0 && r.weight[i, 7] == 0, "\(context)") }
        }
        // Wanda's score |Wᵢⱼ|·‖xⱼ‖ is 0 for a dead input: pruned first in every row and group.
        if method == .wanda {
          for i in 0..<Self.m { #expect(!r.mask[i, 2] && !r.mask[i, 7], "\(context): row \(i)") }
        }
      case .allInputsDead:
        #expect(r.report.error == 0, "\(context): with G = 0 every candidate has error 0")
        if method == .fista {
          #expect(r.report.notes.contains { $0.contains("G* is zero") }, "\(context): \(r.report.notes)")
        }
      case .zeroWeightRows, .zeroWeight:
        // Rows are independent problems: a zero row stays zero whatever the method.
        let rows = trouble == .zeroWeight ? Array(0..<Self.m) : [0, 2]
        for i in rows { for j in 0..<Self.n { #expect(r.weight[i, j] == 0, "\(context): row \(i)") } }
        if trouble == .zeroWeight { #expect(r.report.error == 0 && r.report.relativeError == 0, "\(context)") }
      case .duplicatedFeature, .fewerTokensThanFeatures:
        // The refits are damped least squares pulled toward W, so on their own mask they cannot
        // do worse than leaving the kept weights alone (E(Ŵ) ≤ E(W ⊙ mask), up to the retry's
        // 10⁻⁸-relative pull toward 0): a singular G must not turn them into garbage.
        if method == .refit || method == .exact {
          var kept = problem.weight
          r.mask.apply(to: &kept)
          let baseline = problem.error(of: kept)
          // Slack: the result is rounded to Float (u ≈ 6e-8 per weight), 1e-6 of the dense energy.
          #expect(
            r.report.error <= baseline + 1e-6 * problem.denseEnergy,
            "\(context): \(r.report.error) vs W⊙mask \(baseline)")
        }
      case .slightlyIndefinite:
        break
      }
    }
  }

  /// Undamped variants meet the singular Grams head-on: their Cholesky fails, is retried with
  /// growing damping (DampingPolicy.retry), and the extra damping is reported.
  @Test(
    "undamped refit, SparseGPT and APT retry a singular Gram with reported damping",
    arguments: [PruningMethod.refit, .sparsegpt, .apt],
    [Handled.fewerTokensThanFeatures, .duplicatedFeature])
  func undampedRetry(_ method: PruningMethod, _ trouble: Handled) throws {
    var options = MethodOptions()
    try options.set(.damping, "0", for: method)
    let problem = try trouble.problem()
    for pattern in Self.patterns {
      let r = try prune(problem, method: method, pattern: pattern, options: options)
      #expect(NonFiniteSummary(of: r.weight) == nil && r.mask.satisfies(pattern), "\(method) \(trouble) \(pattern)")
      #expect(r.report.damping == 0)
      #expect((r.report.dampingRetry ?? 0) > 0, "\(method) \(trouble) \(pattern): retry damping reported")
    }
  }

  @Test("a pivot at rounding-noise level counts as singular: Cholesky retries instead of dividing by noise")
  func choleskyNoisePivot() throws {
    var (_, x) = Self.data(seed: 43)
    for t in 0..<x.rows { x[t, 7] = x[t, 3] }
    let g = gram(x)  // exactly singular; the pivot of column 7 is rounding noise
    #expect(throws: CholeskyError.self) { try cholesky(g) }
    let f = try cholesky(g, damping: .retry)
    #expect(f.attempts > 1 && f.addedDamping > 0)
  }

  // MARK: - Rejected problems

  /// A Gram with an eigenvalue of −0.3 × its mean diagonal: not a Σ x xᵀ of any data.
  @Test("an indefinite Gram is rejected by every method, naming the tensor", arguments: PruningMethod.allCases)
  func indefiniteGram(_ method: PruningMethod) throws {
    var rng = SplitMix64(seed: 44)
    let spectrum = [30.0, 20, 10, 8, 6, 5, 4, 3, 2, 1, 0.5, -3]
    let g = symmetricMatrix(spectrum: spectrum, using: &rng)
    for j in 0..<Self.n { try #require(g[j, j] > 0, "the test Gram must pass the diagonal check") }
    let problem = try Self.problem(Self.data(seed: 45).w, gram: g)
    do {
      _ = try prune(problem, method: method, pattern: Self.patterns[0])
      Issue.record("\(method): an indefinite Gram was accepted")
    } catch {
      guard case .invalidProblem(.notSemidefinite(let tensor, _, let tolerance)) = error else {
        Issue.record("\(method): \(error)")
        return
      }
      #expect(tensor == "gram" && tolerance > 0)
      #expect(error.description.contains("not positive semidefinite") && error.description.contains("Hint:"))
    }
  }

  @Test("a negative Gram diagonal is rejected when the problem is built")
  func negativeDiagonal() {
    var g = Matrix<Double>.identity(Self.n)
    g[5, 5] = -2
    do {
      _ = try LayerProblem(weight: Self.data(seed: 46).w, gram: g)
      Issue.record("a negative diagonal was accepted")
    } catch {
      #expect(error == .negativeDiagonal(tensor: "gram", index: 5, value: -2))
      #expect(error.description.contains("'gram'[5, 5]") && error.description.contains("Hint:"))
    }
  }

  /// Where a NaN or Inf can enter a layer problem.
  enum NonFinite: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case nanWeight, infWeight, nanGram, infGram, nanInput, infPrunedInput, nanCrossGram
    var testDescription: String { rawValue }
  }

  /// Non-finite values never reach a method: `LayerProblem` refuses them (every method takes a
  /// `LayerProblem`, so this is the one check for all of them), naming the tensor and the entry.
  @Test(
    "NaN or Inf in W, a Gram or the inputs is a typed error naming the tensor and entry", arguments: NonFinite.allCases)
  func nonFiniteInputs(_ kind: NonFinite) {
    let (w0, x0) = Self.data(seed: 47)
    var w = w0.converted(to: Float.self)
    var x = x0.converted(to: Float.self)
    var g = gram(x0).converted(to: Float.self)
    let expected: (tensor: String, row: Int, column: Int)
    let build: () throws(LayerProblemError) -> LayerProblem<Float>
    switch kind {
    case .nanWeight, .infWeight:
      w[3, 9] = kind == .nanWeight ? .nan : .infinity
      expected = ("weight", 3, 9)
      build = { () throws(LayerProblemError) in try LayerProblem(weight: w, gram: g) }
    case .nanGram, .infGram:
      g[4, 6] = kind == .nanGram ? .nan : -.infinity
      g[6, 4] = g[4, 6]
      expected = ("gram", 4, 6)
      build = { () throws(LayerProblemError) in try LayerProblem(weight: w, gram: g) }
    case .nanInput:
      x[17, 8] = .nan
      expected = ("inputs", 17, 8)
      build = { () throws(LayerProblemError) in try LayerProblem(weight: w, inputs: x) }
    case .infPrunedInput:
      var xStar = x
      xStar[2, 1] = .infinity
      expected = ("pruned_inputs", 2, 1)
      build = { () throws(LayerProblemError) in try LayerProblem(weight: w, inputs: x, prunedInputs: xStar) }
    case .nanCrossGram:
      var k = g
      k[0, 11] = .nan
      expected = ("cross_gram", 0, 11)
      build = { () throws(LayerProblemError) in try LayerProblem(weight: w, gram: g, crossGram: k, denseGram: g) }
    }
    do {
      _ = try build()
      Issue.record("\(kind) was accepted")
    } catch {
      guard case .nonFinite(let tensor, let row, let column, let value) = error else {
        Issue.record("\(kind): \(error)")
        return
      }
      #expect(tensor == expected.tensor && row == expected.row && column == expected.column, "\(kind): \(error)")
      #expect(!value.isFinite)
      #expect(
        error.description.contains("'\(expected.tensor)'[\(expected.row), \(expected.column)]"), "\(error.description)")
      #expect(error.description.contains("Hint:"))
    }
  }

  @Test("the last guard: a result holding NaN is a typed error, never returned")
  func resultGuard() {
    var w = Matrix<Float>(rows: 2, columns: 4)
    w[1, 3] = .nan
    w[0, 0] = .infinity
    let result = PruningResult(
      weight: w, mask: Mask(rows: 2, columns: 4), report: PruningReport(method: "sparsegpt", pattern: "0.5"))
    do {
      try checkFinite(result, method: .sparsegpt)
      Issue.record("a NaN result passed the guard")
    } catch {
      guard case .nonFiniteResult(let method, let detail) = error else {
        Issue.record("\(error)")
        return
      }
      #expect(method == "sparsegpt" && detail.contains("2 of the 8") && detail.contains("[0, 0]"), "\(detail)")
      #expect(error.description.contains("Hint:"))
    }
  }

  // MARK: - Scales

  /// (binary exponent of the weight scale, of the Gram scale): 2¹⁰⁰ ≈ 1.3e30, 2⁻¹⁰⁰ ≈ 7.9e-31,
  /// both at 2⁶⁰, W at 2¹⁰⁰ with G at 2⁴⁰ (Float products W·G reach 2¹⁴⁰ and overflow: unguarded,
  /// FISTA stopped the process on a NaN), the reverse (they underflow), and Float denormals:
  /// weights at 2⁻¹³⁰ ≈ 7e-40, a Gram at 2⁻¹³² (unguarded, ADMM's √Gⱼⱼ + 10⁻⁸ swamped the Gram
  /// and it returned Wanda's weights, a different mask).
  static let scales: [(Int, Int)] = [
    (100, 0), (-100, 0), (0, 100), (0, -100), (60, 60), (-60, -60), (100, 40), (-100, -40), (-130, 0), (0, -132),
  ]

  /// Every method is invariant to a change of units W → W·2^a, G → G·2^b: the dispatcher solves a
  /// badly scaled problem in units near 1 (exact powers of two) and scales back. The base problem
  /// is normalised (max|W| in [1, 2), max|G| in [1, 4)), so the rescaled problem is the base one
  /// bit for bit: same mask, weights exactly ×2^a, error exactly ×2^(2a+b). Denormal inputs (a =
  /// −130, b = −132 in Float) lose bits when stored; the base is then the stored values scaled
  /// back, which is exact. Denormal *results* (a = −130) are rounded when scaled back: Ŵ keeps
  /// 12–19 bits, so their error matches to 1e-2 only.
  @Test(
    "badly scaled problems give the unscaled problem's mask and scaled weights",
    arguments: PruningMethod.allCases, scales)
  func scaleInvariance(_ method: PruningMethod, _ scale: (Int, Int)) throws {
    let (a, b) = scale
    let (w0, x) = Self.data(seed: 48)
    var w = w0.converted(to: Float.self)
    var g = gram(x).converted(to: Float.self)
    w = scaled(w, by: -Int(Double(w.maxMagnitude).exponent))
    let ge = Int(Double(g.maxMagnitude).exponent)
    g = scaled(g, by: -(ge - ((ge % 2) + 2) % 2))
    let stored = try LayerProblem(weight: scaled(w, by: a), gram: scaled(g, by: b), tokens: x.rows)
    let base = try LayerProblem(
      weight: scaled(stored.weight, by: -a), gram: scaled(stored.gram, by: -b), tokens: x.rows)
    #expect(ProblemScaling(for: base) == nil, "the base problem is well scaled")
    for pattern in Self.patterns {
      let context = "\(method) 2^\(a), 2^\(b) \(pattern)"
      let reference = try prune(base, method: method, pattern: pattern)
      let r = try prune(stored, method: method, pattern: pattern)
      #expect(r.mask == reference.mask, "\(context)")
      #expect(r.weight == scaled(reference.weight, by: a), "\(context)")
      #expect(NonFiniteSummary(of: r.weight) == nil, "\(context)")
      let factor = Double(sign: .plus, exponent: 2 * a + b, significand: 1)
      let tolerance = a < -126 ? 1e-2 : 1e-12
      #expect(relativeDifference(r.report.error, reference.report.error * factor) <= tolerance, "\(context)")
      #expect(r.report.metrics["rescaled_weight_exponent"] == Double(a), "\(context)")
      #expect(r.report.notes.contains { $0.contains("badly scaled") }, "\(context)")
    }
  }

  // MARK: - SparseLLM's FFN entry point (it takes raw matrices, not a LayerProblem)

  /// A SwiGLU FFN d = 8, f = 16 and 48 calibration tokens.
  static func feedForward() -> (SparseLLM.FeedForward<Float>, Matrix<Float>) {
    var rng = SplitMix64(seed: 49)
    let up = Matrix<Float>.random(rows: 16, columns: 8, using: &rng)
    let gate = Matrix<Float>.random(rows: 16, columns: 8, using: &rng)
    let down = Matrix<Float>.random(rows: 8, columns: 16, using: &rng)
    let x = Matrix<Float>.random(rows: 48, columns: 8, using: &rng)
    return (
      SparseLLM.FeedForward(
        up: up, gate: gate, down: down, downBias: [Float](repeating: 0.1, count: 8), activation: .silu), x
    )
  }

  @Test(
    "SparseLLM's FFN rejects NaN or Inf in any tensor, naming it",
    arguments: ["inputs", "up", "gate", "down", "down_bias", "dense FFN output (overflowed)"])
  func sparseLLMNonFinite(_ tensor: String) throws {
    var (ffn, x) = Self.feedForward()
    switch tensor {
    case "inputs": x[5, 2] = .nan
    case "up": ffn.up[3, 1] = .infinity
    case "gate": ffn.gate![0, 0] = .nan
    case "down": ffn.down[7, 15] = -.infinity
    case "down_bias": ffn.downBias![4] = .nan
    default: x = x.map { $0 * 1e20 }  // finite inputs whose FFN output overflows Float
    }
    do {
      _ = try SparseLLM().prune(ffn, input: x, pattern: .nOfM(n: 2, m: 4))
      Issue.record("\(tensor): accepted")
    } catch {
      guard case .invalidProblem(.nonFinite(let name, _, _, _)) = error else {
        Issue.record("\(tensor): \(error)")
        return
      }
      #expect(name == tensor)
      #expect(error.description.contains("'\(tensor)'") && error.description.contains("Hint:"))
    }
  }
}
