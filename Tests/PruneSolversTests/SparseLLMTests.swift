import PruneSolvers
import PruneTestSupport
import Testing

/// SparseLLM (Docs/methods/sparsellm.md#tests): every closed form against a direct minimisation,
/// the scheme's monotonicity with fixed masks, exact patterns, non-compounding damping, the choice
/// of epoch, and thread-count independence. Small seeded problems in Double unless said otherwise.
@Suite struct SparseLLMTests {
  // MARK: - Elementwise steps against a dense 1-D grid

  /// The grid the direct minimisation uses: 40001 points over an interval that contains every
  /// minimiser (|t* − m| ≤ √(f(m)/α), because α(t* − m)² ≤ f(t*) ≤ f(m)).
  static func grid(m: Double, f: (Double) -> Double, alpha: Double) -> [Double] {
    let radius = (f(m) / alpha).squareRoot() + 1e-9
    return (0...40000).map { m - radius + 2 * radius * Double($0) / 40000 }
  }

  /// f(t) of an exact minimiser can exceed no grid value; rounding in f's Double evaluation is
  /// ~1e-15 relative, so 1e-12 of the scale of f bounds it with room to spare.
  static let exactSlack = 1e-12

  @Test(arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
  func reluStepIsTheExactMinimiser(_ seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    for trial in 0..<200 {
      let m = Double.random(in: -3...3, using: &rng)
      let p = Double.random(in: -1...3, using: &rng)
      let alpha = Double.random(in: 0.05...5, using: &rng)
      let gamma = Double.random(in: 0.05...5, using: &rng)
      let f = { (t: Double) in SparseLLM.objective1D(t, m: m, p: p, c: 1, .relu, alpha, gamma) }
      let z = SparseLLM.reluStep(m: m, p: p, alpha: alpha, gamma: gamma)
      let best = Self.grid(m: m, f: f, alpha: alpha).map(f).min()!
      #expect(
        f(z) <= best + Self.exactSlack * (1 + best), "seed \(seed) trial \(trial): f(z) = \(f(z)) > grid min \(best)")
    }
  }

  @Test(arguments: [1, 2, 3] as [UInt64])
  func swiGLUUpStepIsTheExactMinimiser(_ seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    for trial in 0..<200 {
      let m = Double.random(in: -3...3, using: &rng)
      let p = Double.random(in: -3...3, using: &rng)
      let sigma = Double.random(in: -0.3...3, using: &rng)
      let alpha = Double.random(in: 0.05...5, using: &rng)
      let gamma = Double.random(in: 0.05...5, using: &rng)
      let f = { (t: Double) in alpha * (t - m) * (t - m) + gamma * (p - sigma * t) * (p - sigma * t) }
      let z = SparseLLM.gatedUpStep(m: m, p: p, sigma: sigma, alpha: alpha, gamma: gamma)
      let best = Self.grid(m: m, f: f, alpha: alpha).map(f).min()!
      #expect(f(z) <= best + Self.exactSlack * (1 + best), "seed \(seed) trial \(trial)")
    }
  }

  /// GELU's z-step and SwiGLU's s-step (f not convex): never above f at the current value or at m,
  /// and, given enough steps, a stationary point: |f′| ≤ 1e-6 of f′'s scale 2α|t − m| + 2γ|c φ′ r| + 1
  /// (the stopping rule stops steps below 1e-8 relative; f′ is Lipschitz with a constant of the
  /// order of the curvature, ≤ 2α + 2γc²·max φ′² + …, so 1e-6 leaves two orders of margin).
  @Test(arguments: [SparseLLM.Activation.gelu, .geluTanh, .silu])
  func descentStepNeverIncreasesAndIsStationary(_ activation: SparseLLM.Activation) {
    var rng = SplitMix64(seed: 11)
    for trial in 0..<300 {
      let m = Double.random(in: -4...4, using: &rng)
      let p = Double.random(in: -1...3, using: &rng)
      let c = activation == .silu ? Double.random(in: -2...2, using: &rng) : 1
      let current = Double.random(in: -4...4, using: &rng)
      let alpha = Double.random(in: 0.1...5, using: &rng)
      let gamma = Double.random(in: 0.1...5, using: &rng)
      let f = { (t: Double) in SparseLLM.objective1D(t, m: m, p: p, c: c, activation, alpha, gamma) }
      let few = SparseLLM.activationStep(
        current: current, m: m, p: p, scale: c, activation: activation, alpha: alpha, gamma: gamma, steps: 2)
      #expect(f(few) <= f(current) && f(few) <= f(m), "trial \(trial): the step increased f")
      let t = SparseLLM.activationStep(
        current: current, m: m, p: p, scale: c, activation: activation, alpha: alpha, gamma: gamma, steps: 200)
      let r = p - c * activation.value(t)
      let slope = c * activation.derivative(t)
      let gradient = 2 * alpha * (t - m) - 2 * gamma * slope * r
      let scale = 2 * alpha * (t - m).magnitude + 2 * gamma * (slope * r).magnitude + 1
      #expect(gradient.magnitude <= 1e-6 * scale, "trial \(trial): f′(\(t)) = \(gradient)")
    }
  }

  /// φ′ against a central difference (h = 1e-5: truncation ~h²·φ‴ ≈ 1e-10, rounding ~1e-16/h ≈ 1e-11).
  @Test(arguments: SparseLLM.Activation.allCases)
  func derivativesMatchFiniteDifferences(_ activation: SparseLLM.Activation) {
    for t in stride(from: -4.0, through: 4.0, by: 0.37) where activation != .relu || t.magnitude > 1e-3 {
      let h = 1e-5
      let numeric = (activation.value(t + h) - activation.value(t - h)) / (2 * h)
      #expect((numeric - activation.derivative(t)).magnitude <= 1e-8, "\(activation) at \(t)")
      // The shared-exponential form computes t·σ instead of t/(1 + e⁻ᵗ): equal to a few ulps.
      let (v, d) = activation.valueAndDerivative(t)
      #expect((v - activation.value(t)).magnitude <= 1e-15 * (1 + v.magnitude), "\(activation) at \(t)")
      #expect((d - activation.derivative(t)).magnitude <= 1e-15 * (1 + d.magnitude), "\(activation) at \(t)")
    }
  }

  // MARK: - The matrix closed forms

  /// The p-step (push-through form) satisfies the normal equations of the f × f system,
  /// p(βWᵀW + γI) = β(Y − b)W + γ·act, for d < f and d > f. Relative residual 1e-10: Double solves
  /// of well-conditioned (γ > 0) systems of order ≤ 24 lose a few digits at most.
  @Test(arguments: [(4, 12), (12, 4), (8, 8)])
  func pStepSatisfiesItsNormalEquations(_ shape: (Int, Int)) throws {
    let (d, f) = shape
    var rng = SplitMix64(seed: 21)
    let w = Matrix<Double>.random(rows: d, columns: f, using: &rng)
    let y = Matrix<Double>.random(rows: 30, columns: d, using: &rng)
    let act = Matrix<Double>.random(rows: 30, columns: f, using: &rng)
    let beta = 0.7
    let gamma = 0.3
    let inverse = try SparseLLM.activationFitInverse(down: w, beta: beta, gamma: gamma)
    let p = SparseLLM.activationFit(down: w, target: y, act: act, beta: beta, inverse: inverse)
    var a = matmul(w, w, transposeA: true)
    for i in 0..<f { for j in 0..<f { a[i, j] *= beta } }
    for i in 0..<f { a[i, i] += gamma }
    let left = matmul(p, a)
    let right = matmul(y, w)
    var worst = 0.0
    var scale = 0.0
    for i in 0..<left.rows {
      for j in 0..<f {
        let r = beta * right[i, j] + gamma * act[i, j]
        worst = max(worst, (left[i, j] - r).magnitude)
        scale = max(scale, r.magnitude)
      }
    }
    #expect(worst <= 1e-10 * scale, "d=\(d) f=\(f): residual \(worst)")
  }

  /// W-step: undamped, (B − b − AWᵀ)ᵀA = 0; damped, Aᵀ(B − b − AWᵀ) = δ(Wᵀ − W°ᵀ). And the
  /// Pythagoras identity of Docs/methods/sparsellm.md#derivation:
  /// ‖B − AŴᵀ‖² = ‖B − AWₗₛᵀ‖² + ‖A(Wₗₛ − Ŵ)ᵀ‖² for any Ŵ.
  @Test func wStepNormalEquationsAndPythagoras() throws {
    var rng = SplitMix64(seed: 31)
    let a = Matrix<Double>.random(rows: 40, columns: 6, using: &rng)
    let b = Matrix<Double>.random(rows: 40, columns: 5, using: &rng)
    let bias = (0..<5).map { _ in Double.random(in: -1...1, using: &rng) }
    let w0 = Matrix<Double>.random(rows: 5, columns: 6, using: &rng)
    let g = matmul(a, a, transposeA: true)
    var target = b
    for i in 0..<40 { for j in 0..<5 { target[i, j] -= bias[j] } }
    for damping in [0.0, 0.05] {
      let w = try SparseLLM.leastSquares(a, (b, bias), gram: g, toward: w0, damping: damping)
      var residual = target
      gemm(a, w, into: &residual, transposeB: true, alpha: -1, beta: 1)
      let lhs = matmul(a, residual, transposeA: true)  // [6 × 5]
      var mean = 0.0
      for i in 0..<6 { mean += g[i, i] / 6 }
      let delta = damping * mean
      var worst = 0.0
      for i in 0..<6 { for j in 0..<5 { worst = max(worst, (lhs[i, j] - delta * (w[j, i] - w0[j, i])).magnitude) } }
      // 1e-9 of mean(diag G) ≈ 13: Double Cholesky of a 6 × 6 system.
      #expect(worst <= 1e-9 * mean, "damping \(damping): normal-equation residual \(worst)")
      if damping == 0 {
        let other = Matrix<Double>.random(rows: 5, columns: 6, using: &rng)
        func sq(_ m: Matrix<Double>) -> Double { m.elements.reduce(0) { $0 + $1 * $1 } }
        var r1 = target
        gemm(a, other, into: &r1, transposeB: true, alpha: -1, beta: 1)
        var diff = w
        for i in 0..<5 { for j in 0..<6 { diff[i, j] -= other[i, j] } }
        let sum = sq(residual) + sq(matmul(a, diff, transposeB: true))
        #expect((sq(r1) - sum).magnitude <= 1e-10 * sq(r1), "Pythagoras: \(sq(r1)) vs \(sum)")
      }
    }
  }

  // MARK: - The scheme

  /// A random FFN of each kind with its input: d = 8, f = 16, 96 tokens (more tokens than f, so
  /// that every Gram is nonsingular and the exact refits are well defined).
  static func ffn(_ kind: String, seed: UInt64) -> (SparseLLM.FeedForward<Double>, Matrix<Double>) {
    var rng = SplitMix64(seed: seed)
    let d = 8
    let f = 16
    let x = Matrix<Double>.random(rows: 96, columns: d, in: -2...2, using: &rng)
    let up = Matrix<Double>.random(rows: f, columns: d, in: -0.6...0.6, using: &rng)
    let down = Matrix<Double>.random(rows: d, columns: f, in: -0.6...0.6, using: &rng)
    func bias(_ n: Int) -> [Double] { (0..<n).map { _ in Double.random(in: -0.2...0.4, using: &rng) } }
    switch kind {
    case "swiglu":
      let gate = Matrix<Double>.random(rows: f, columns: d, in: -0.6...0.6, using: &rng)
      return (SparseLLM.FeedForward(up: up, gate: gate, down: down, activation: .silu), x)
    case "gelu":
      return (SparseLLM.FeedForward(up: up, upBias: bias(f), down: down, downBias: bias(d), activation: .geluTanh), x)
    default:
      return (SparseLLM.FeedForward(up: up, upBias: bias(f), down: down, downBias: bias(d), activation: .relu), x)
    }
  }

  static let kinds = ["relu", "gelu", "swiglu"]

  /// With the masks fixed after epoch 0 and exact W-steps (remask = false, δ = 0), every step of
  /// every epoch minimises the objective over its own block of variables, so the trace
  /// [prune₀, act₀, prune₁, act₁, …] never increases. Slack 1e-9 relative: each value is a sum of
  /// ~4000 squared Double residuals of solves of order ≤ 16.
  @Test(arguments: kinds)
  func objectiveNeverIncreasesWithFixedMasks(_ kind: String) throws {
    let (ffn, x) = Self.ffn(kind, seed: 41)
    var options = SparseLLM.Options()
    options.remask = false
    options.leastSquaresDamping = 0
    options.traceActivationSteps = true
    options.activationSteps = 20
    options.epochs = 4
    let result = try SparseLLM(options: options).prune(
      ffn, input: x, pattern: .unstructured(ratio: 0.5, group: .matrix))
    let trace = result.report.objectiveTrace
    #expect(trace.count == 2 * options.epochs - 1)
    for i in 1..<trace.count {
      #expect(trace[i] <= trace[i - 1] * (1 + 1e-9), "\(kind): objective rose at step \(i): \(trace)")
    }
    #expect(trace.last! < trace.first!, "\(kind): the epochs did not lower the objective at all: \(trace)")
  }

  /// With re-selected masks (the default) the prune-step may raise the objective, but the
  /// activation updates never do.
  @Test(arguments: kinds)
  func activationUpdatesNeverIncreaseTheObjective(_ kind: String) throws {
    let (ffn, x) = Self.ffn(kind, seed: 43)
    var options = SparseLLM.Options()
    options.traceActivationSteps = true
    let result = try SparseLLM(options: options).prune(ffn, input: x, pattern: .nOfM(n: 2, m: 4))
    let trace = result.report.objectiveTrace
    for e in 0..<(options.epochs - 1) {
      #expect(trace[2 * e + 1] <= trace[2 * e] * (1 + 1e-9), "\(kind) epoch \(e): \(trace)")
    }
  }

  /// Every returned weight meets the pattern exactly, its pruned entries are zero, and the
  /// returned FFN is the one the results describe.
  @Test(
    arguments: kinds,
    [
      SparsityPattern.unstructured(ratio: 0.5, group: .matrix), .nOfM(n: 2, m: 4),
      .unstructured(ratio: 0.7, group: .row),
    ])
  func patternsAreExact(_ kind: String, _ pattern: SparsityPattern) throws {
    let (ffn, x) = Self.ffn(kind, seed: 51)
    let result = try SparseLLM().prune(ffn, input: x, pattern: pattern)
    for r in [result.up, result.down] + (result.gate.map { [$0] } ?? []) {
      #expect(r.mask.violations(of: pattern).isEmpty, "\(kind) \(pattern)")
      let expected = pattern.prunedCount(rows: r.weight.rows, columns: r.weight.columns)
      #expect(r.mask.prunedCount == expected, "\(kind) \(pattern): \(r.mask.prunedCount) pruned, want \(expected)")
      for i in 0..<r.weight.rows { for j in 0..<r.weight.columns where !r.mask[i, j] { #expect(r.weight[i, j] == 0) } }
      #expect(r.report.method == "sparsellm")
    }
    #expect(result.feedForward.up == result.up.weight && result.feedForward.down == result.down.weight)
    #expect(result.feedForward.gate == result.gate?.weight)
  }

  /// The inner pruner damps a fresh copy of the Gram on every call: the damping reported for W_up
  /// is the same in every epoch (its Gram G_X does not change) and equals damping·mean(diag G_X).
  /// The reference damps its stored Hessian in place, so its damping grows every epoch
  /// (Docs/methods/sparsellm.md#the-authors-code-and-where-prunekit-differs).
  @Test func dampingDoesNotCompound() throws {
    let (ffn, x) = Self.ffn("relu", seed: 61)
    let result = try SparseLLM().prune(ffn, input: x, pattern: .unstructured(ratio: 0.5, group: .matrix))
    let g = matmul(x, x, transposeA: true)
    var mean = 0.0
    for i in 0..<g.rows { mean += g[i, i] / Double(g.rows) }
    let dampings = result.report.innerDamping.map { $0["up"]! }
    #expect(dampings.count == 4)
    // 1e-12 relative: the same Double sum formed by two summation orders.
    for d in dampings { #expect((d - 0.01 * mean).magnitude <= 1e-12 * mean, "\(dampings) vs \(0.01 * mean)") }
  }

  /// One epoch is plain layer-local pruning: the inner method on each weight against its own dense
  /// input, bit for bit. With `keep = .best` the returned FFN's output error is the smallest over
  /// the epochs, hence never above that baseline.
  @Test(arguments: kinds)
  func oneEpochIsLayerLocalAndBestNeverLoses(_ kind: String) throws {
    let (ffn, x) = Self.ffn(kind, seed: 71)
    let pattern = SparsityPattern.unstructured(ratio: 0.6, group: .matrix)
    var one = SparseLLM.Options()
    one.epochs = 1
    let local = try SparseLLM(options: one).prune(ffn, input: x, pattern: pattern)
    let plainUp = try prune(
      LayerProblem(weight: ffn.up, gram: matmul(x, x, transposeA: true)), method: .sparsegpt, pattern: pattern)
    #expect(local.up.weight == plainUp.weight, "\(kind): epoch 0 is not plain SparseGPT on W_up")
    let full = try SparseLLM().prune(ffn, input: x, pattern: pattern)
    let errors = full.report.outputErrors
    #expect(full.report.outputErrors[full.report.keptEpoch] == errors.min()!)
    #expect(errors[full.report.keptEpoch] <= errors[0])
    // The kept FFN really has that output error (computed directly; 1e-9 relative: the same sums
    // in another order).
    let y = ffn.output(x)
    let yHat = full.feedForward.output(x)
    var direct = 0.0
    for i in 0..<y.elements.count {
      let d = yHat.elements[i] - y.elements[i]
      direct += d * d
    }
    #expect((direct - errors[full.report.keptEpoch]).magnitude <= 1e-9 * (1 + direct))
  }

  /// FISTA as the inner method runs and keeps the pattern; `last` returns the last epoch.
  @Test func fistaInnerAndKeepLast() throws {
    let (ffn, x) = Self.ffn("relu", seed: 81)
    var options = SparseLLM.Options()
    options.inner = .fista
    options.keep = .last
    let result = try SparseLLM(options: options).prune(ffn, input: x, pattern: .nOfM(n: 2, m: 4))
    #expect(result.report.keptEpoch == options.epochs - 1)
    #expect(result.up.mask.violations(of: .nOfM(n: 2, m: 4)).isEmpty)
    #expect(result.down.mask.violations(of: .nOfM(n: 2, m: 4)).isEmpty)
    #expect(result.up.report.options["inner"] == "fista")
  }

  /// Float runs are bit-identical for 1, 2 and 3 threads (kernels split output tiles only; the
  /// elementwise steps compute every entry alone).
  @Test(arguments: kinds)
  func threadCountIndependent(_ kind: String) throws {
    let (ffn, x) = Self.ffn(kind, seed: 91)
    let f = SparseLLM.FeedForward<Float>(
      up: ffn.up.converted(), upBias: ffn.upBias?.map { Float($0) }, gate: ffn.gate?.converted(),
      down: ffn.down.converted(), downBias: ffn.downBias?.map { Float($0) }, activation: ffn.activation)
    var options = SparseLLM.Options()
    options.chunkRows = 40  // several chunks
    func run(_ threads: Int) throws -> SparseLLM.Result<Float> {
      try Parallelism.$threadOverride.withValue(threads) {
        try SparseLLM(options: options).prune(
          f, input: x.converted(), pattern: .unstructured(ratio: 0.5, group: .matrix))
      }
    }
    let one = try run(1)
    for t in [2, 3] {
      let other = try run(t)
      #expect(other.feedForward == one.feedForward, "\(kind): \(t) threads differ from 1")
      #expect(other.report.objectiveTrace == one.report.objectiveTrace)
    }
  }

  /// The option table reaches the solver, and the family defaults are the authors'.
  @Test func optionsAndDefaults() throws {
    var options = MethodOptions()
    try options.set("alpha", "2", for: .sparsellm)
    try options.set("epochs", "2", for: .sparsellm)
    try options.set("inner", "fista", for: .sparsellm)
    try options.set("damping", "0.05", for: .sparsellm)
    #expect(options.sparseLLM.alpha == 2 && options.sparseLLM.epochs == 2 && options.sparseLLM.inner == .fista)
    #expect(options.sparseGPT.damping == 0.05)
    #expect(throws: PruningError.self) { try options.set("inner", "wanda", for: .sparsellm) }
    #expect(throws: PruningError.self) { try options.set("alpha", "1", for: .sparsegpt) }
    let defaults = SparseLLM.Options()
    #expect(defaults.weights(gated: false) == (0.1, 0.1, 0.1))
    #expect(defaults.weights(gated: true) == (5, 5, 5))
    #expect(options.sparseLLM.weights(gated: true) == (2, 2, 2))
  }
}
