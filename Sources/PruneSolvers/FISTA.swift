/// Minimises ½‖X*Ŵᵀ − XWᵀ‖²_F + λ‖Ŵ‖₁ by FISTA and rounds Ŵ to the exact pattern, with λ tuned by
/// bisection on the rounding-error ratio: FISTAPruner (Zhao, Hu, Li, Zheng, Wang, Yuan, "A Convex-
/// optimization-based Layer-wise Post-training Pruner for Large Language Models", arXiv 2408.03728).
///
/// Each row of Ŵ is a lasso; the m rows share one Gram matrix. With G* = X*ᵀX*, K = XᵀX*
/// (K = G* = G when X* = X) and C = W·K, the smooth part, its gradient and the layer error are
///
///     f(Z) = ½tr(Z G* Zᵀ) − tr(Z Cᵀ) + ½tr(W G Wᵀ),   ∇f(Z) = Z G* − C,   E(Z) = 2f(Z),
///
/// and ∇f is Lipschitz with constant λmax(G*). Docs/methods/fista.md#derivation derives every step
/// below.
///
/// Steps (the GEMMs in T, the errors that steer λ summed in Double):
///   1. C = W·K, and L = the kernels' certified upper bound on λmax(G*)
///      (`largestEigenvalueUpperBound`). The step is 1/L: an underestimate of λmax would make it
///      too long, and FISTA could diverge.
///   2. Warm start W₀ (`warmStart`): Wanda's or SparseGPT's pruned W (its lazy batch a multiple
///      of M for N:M), magnitude's, or W itself (`.dense`, the paper's dense start). Its rounding
///      is the first candidate: best = H(W₀), E_best = E(best), so the result is never worse than
///      the rounded warm start.
///   3. λ₀ = `initialLambda`, or else the s-quantile of |Wᵢⱼ|·G*ⱼⱼ: the λ at which one coordinate
///      step of the lasso zeroes entry (i, j) when G* is near diagonal and Z near W, so about the
///      fraction s of the entries. The bracket starts as λ_lo = 0, λ_hi = ∞.
///   4. For r = 1 … T (`lambdaSteps`), when L is positive and finite and s > 0:
///      a. FISTA (`lasso`) from S = W₀ in the first round and S = best afterwards:
///         Z₀ = Y₁ = S, t₁ = 1, and for k = 1 … K (`iterations`)
///             Z_k     = soft_{λ/L}(Y_k − (Y_k G* − C)/L)        soft_τ(v) = sign(v)·max(|v| − τ, 0)
///             t_{k+1} = (1 + √(1 + 4t_k²))/2
///             Y_{k+1} = Z_k + ((t_k − 1)/t_{k+1})(Z_k − Z_{k−1})
///         The first line is the proximal gradient step: soft_τ minimises ½(x − v)² + τ|x|, so
///         Z_k is exactly sparse; Y carries the momentum. Result: Z = Z_K (or Z_k at the stop).
///      b. Round: Ĥ = H(Z) prunes the smallest |Z| to the exact pattern (per matrix unless the
///         pattern says per row; N:M per row and group) and keeps the other values unchanged.
///      c. E_total = E(Ĥ) and E_round = ‖X*(Ĥ − Z)ᵀ‖² = tr((Ĥ − Z)G*(Ĥ − Z)ᵀ), the error that
///         rounding alone adds. If E_total < E_best: best = Ĥ, E_best = E_total.
///      d. Bisection on ρ = E_round/E_total (ρ = 0 when E_total = 0, which ends the search):
///             ρ > ξ  (rounding dominates: Z not sparse enough)  →  λ_lo = λ,  λ = √(λ_lo·λ_hi)
///             ρ ≤ ξ  (the shrinkage bias dominates)             →  λ_hi = λ,  λ = √(λ_lo·λ_hi)
///         while the other end is still open (λ_hi = ∞, or λ_lo = 0) the step doubles λ (at
///         least to the smallest normal number) or halves it instead.
///   5. The mask is Ĥ's mask of best, and Ŵ = best; with `finalRefit` (not in the paper) the kept
///      weights are refit exactly on that mask (Refit, with the damping of the options).
///
/// Stopping rule. A FISTA run ends after K iterations, or earlier once
/// ‖Z_k − Z_{k−1}‖_F ≤ ε‖Z_{k−1}‖_F (ε = `tolerance`; 0 runs all K). The λ search ends after T
/// rounds, or at E_total = 0. With L = 0 (G* = 0: no gradient to follow) or s = 0 no round runs
/// and the result is the rounded warm start.
///
/// Cost. One m×n by n×n GEMM (2mn² flops) per FISTA iteration, plus O(mn) for the prox and the
/// momentum; per λ round K of them and two more for E_total and E_round; with C and E(W₀), about
/// 2mn²·(T(K + 2) + 2) flops, plus the warm start (SparseGPT's: O(n³ + mn²)) and O(mn) selections.
/// Memory: G*, C, Y, Z, Y·G* and the best candidate, O(n² + mn).
///
/// Defaults (`Options`): PruneKit's configuration (`Options.prunekit`, `--preset prunekit`), which
/// is the paper's with four changes measured in Docs/methods/fista.md#the-prunekit-preset: the
/// SparseGPT warm start (the authors' choice for OPT; Wanda for the LLaMA family), the lasso in
/// Jacobi coordinates, 20 debiasing iterations per candidate and the final refit (damping 0.01 of
/// mean(diag G*), as Refit's). From the paper: K = 20 and T = 3 (quoted by the ICLR 2025 reviews),
/// ξ = 0.3 (its Eq. 8). Reconstructed [INF], since the paper leaves them open
/// (Docs/methods/fista.md#reconstructed-inf-and-open-questions): ε = 1e-5, λ₀ of step 3, the
/// geometric bisection and the squared norms in ρ. `Options.paper` (`--preset paper`) is the
/// paper's configuration: Wanda warm start, FISTA on Z itself, candidates judged as rounded, no
/// refit.
///
/// Reference code. The authors published none; FISTA is Beck & Teboulle's ("A Fast Iterative
/// Shrinkage-Thresholding Algorithm for Linear Inverse Problems", SIAM J. Imaging Sciences, 2009),
/// in the two-sequence form above. `lassoReference` is step 4a written as plain loops, and
/// FISTATests compares it with the fast `lasso`.
///
/// Precision: the GEMMs run in T (Float for real layers: the speed comes from SGEMM); errors that
/// steer λ are accumulated in Double from T products; the reported error is recomputed in Double.
public struct FISTA: Sendable {
  /// Where the first FISTA run starts (and the first candidate of the best-so-far).
  public enum WarmStart: String, Sendable, CaseIterable {
    case sparsegpt, wanda, magnitude, dense
  }

  /// The coordinates the lasso runs in (`LassoCoordinates`): Z itself (the paper's iteration), or
  /// Z·S⁻¹ with S the inverse square roots of diag G* (Jacobi), the same minimiser reached in far
  /// fewer iterations.
  public enum Preconditioner: String, Sendable, CaseIterable {
    case none, jacobi
  }

  /// Named configurations: PruneKit's (`Options.prunekit`, the defaults), or the paper's
  /// (`Options.paper`). The options given beside a preset override it.
  public enum Preset: String, Sendable, CaseIterable {
    case prunekit, paper
  }

  /// The options and their defaults (`MethodOption` declares their command-line names).
  ///
  /// The defaults are PruneKit's configuration (`Options.prunekit`). `Options.paper` (`--preset
  /// paper`) differs in four of them, each measured in Docs/methods/fista.md#the-prunekit-preset:
  /// the Wanda warm start, no preconditioner, no debiasing runs and no final refit.
  public struct Options: Sendable, Equatable {
    /// FISTA iterations per λ: K = 20 (the reviews' "K=20").
    public var iterations: Int = 20
    /// λ bisection rounds: T = 3 ("T=3").
    public var lambdaSteps: Int = 3
    /// Rounding-error ratio threshold ξ = 0.3 (the paper's Eq. 8).
    public var xi: Double = 0.3
    /// λ₀; nil = the s-quantile of |Wᵢⱼ|·G*ⱼⱼ (reconstructed).
    public var initialLambda: Double? = nil
    /// ε of the relative iterate-change stop; 0 runs all K iterations. 1e-5: the middle of the
    /// 1e-4…1e-6 range (Docs/methods/fista.md#options-and-defaults) for a criterion the paper only
    /// sketches.
    public var tolerance: Double = 1e-5
    /// The warm start: SparseGPT (the authors' choice for OPT; the paper's preset: Wanda, theirs for
    /// the LLaMA family). The rounded warm start is the first candidate, so the result is never
    /// worse than SparseGPT's.
    public var warmStart: WarmStart = .sparsegpt
    /// The lasso's coordinates: Jacobi, the same minimiser in far fewer iterations (the paper's
    /// preset: Z itself, as the paper iterates).
    public var preconditioner: Preconditioner = .jacobi
    /// Refit the kept weights exactly on the final mask (not in the paper; off in its preset): it
    /// removes the lasso's shrinkage of the kept weights, and is kept only when it lowers the error.
    public var finalRefit: Bool = true
    /// Damping of that refit, and of the debiasing runs, as a fraction of mean(diag G*): 0.01
    /// (see Refit).
    public var damping: Double = 0.01
    /// Iterations of the debiasing run on each candidate's support (0 = none, the paper's preset):
    /// the lasso shrinks the weights it keeps, so a candidate judged as rounded is judged with that
    /// bias. 20, as many as one λ's lasso, brings it most of the way to its refit.
    public var debiasIterations: Int = 20

    /// The defaults above, except for the values given.
    public init(
      iterations: Int? = nil, lambdaSteps: Int? = nil, xi: Double? = nil, initialLambda: Double? = nil,
      tolerance: Double? = nil, warmStart: WarmStart? = nil, finalRefit: Bool? = nil, damping: Double? = nil,
      preconditioner: Preconditioner? = nil, debiasIterations: Int? = nil
    ) {
      if let iterations { self.iterations = iterations }
      if let lambdaSteps { self.lambdaSteps = lambdaSteps }
      if let xi { self.xi = xi }
      if let initialLambda { self.initialLambda = initialLambda }
      if let tolerance { self.tolerance = tolerance }
      if let warmStart { self.warmStart = warmStart }
      if let finalRefit { self.finalRefit = finalRefit }
      if let damping { self.damping = damping }
      if let preconditioner { self.preconditioner = preconditioner }
      if let debiasIterations { self.debiasIterations = debiasIterations }
    }

    /// PruneKit's configuration, the defaults: the paper's, started from SparseGPT, with the lasso
    /// in Jacobi coordinates, each candidate debiased by 20 iterations on its support, and the
    /// final refit.
    public static let prunekit = Options()

    /// The paper's configuration: the Wanda warm start (the authors' choice for LLaMA), K = 20,
    /// T = 3, ξ = 0.3, FISTA on Z itself, candidates judged as rounded, no refit.
    public static let paper = Options(
      warmStart: .wanda, finalRefit: false, preconditioner: Preconditioner.none, debiasIterations: 0)

    /// The preset these options start from (`.paper` only when they are exactly `Options.paper`,
    /// `.prunekit` otherwise). Setting it replaces every option by the preset's.
    public var preset: Preset {
      get { self == Self.paper ? .paper : .prunekit }
      set { self = newValue == .prunekit ? Self.prunekit : Self.paper }
    }

    /// The preset's name when the options are exactly a preset, "custom" otherwise (the report).
    public var presetDescription: String {
      self == Self.prunekit ? Preset.prunekit.rawValue : self == Self.paper ? Preset.paper.rawValue : "custom"
    }
  }

  public var options: Options

  public init(options: Options = Options()) { self.options = options }

  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func prune<T: KernelScalar>(_ problem: LayerProblem<T>, pattern: SparsityPattern)
    throws(PruningError) -> PruningResult<T>
  {
    let start = ContinuousClock.now
    try pattern.check(columns: problem.inputs)
    precondition(options.iterations >= 1 && options.lambdaSteps >= 1, "FISTA: iterations and lambdaSteps must be ≥ 1")
    let g = problem.gram

    // Step 1: C = W·K and L ≥ λmax(G*).
    let c = matmul(problem.weight, problem.crossGram ?? problem.gram)
    let denseEnergy = problem.denseEnergy
    // Step 1b: the coordinates the lasso runs in (Z itself, or V = Z·S⁻¹ under Jacobi).
    let coordinates = LassoCoordinates(gram: g, target: c, preconditioner: options.preconditioner)
    let lipschitz = largestEigenvalueUpperBound(coordinates.gram).upperBound
    // Step 4b′ (PruneKit's, `debiasIterations` > 0): each rounded candidate H is debiased by FISTA
    // with λ = 0 held on its support, on the refit's damped objective (G* + δI, C + δW), from H.
    // Nothing to prune (s = 0): the warm start is W itself, and neither the debiasing runs nor the
    // refit may move it (their damped objective is not quite E).
    let debiasing: (coordinates: LassoCoordinates<T>, lipschitz: Double)? = {
      guard options.debiasIterations > 0, pattern.ratio > 0 else { return nil }
      let delta = T(options.damping * meanDiagonal(g))
      var gd = g
      for j in 0..<gd.rows { gd[j, j] += delta }
      var cd = c
      problem.weight.withUnsafeBufferPointer { pw in
        cd.withUnsafeMutableBufferPointer { pc in for idx in 0..<pc.count { pc[idx] += delta * pw[idx] } }
      }
      let dc = LassoCoordinates(gram: gd, target: cd, preconditioner: options.preconditioner)
      return (dc, largestEigenvalueUpperBound(dc.gram).upperBound)
    }()
    func debiased(_ rounded: Matrix<T>) -> Matrix<T> {
      guard let debiasing, debiasing.lipschitz > 0, debiasing.lipschitz.isFinite else { return rounded }
      let run = Self.lasso(
        gram: debiasing.coordinates.gram, target: debiasing.coordinates.target, lambda: 0,
        lipschitz: debiasing.lipschitz, start: debiasing.coordinates.fromWeights(rounded),
        iterations: options.debiasIterations, tolerance: options.tolerance,
        support: Self.roundingMask(rounded, pattern: pattern))
      return debiasing.coordinates.toWeights(run.solution)
    }
    // E(Ŵ) in T products and Double sums; without error correction as tr((Ŵ − W)G(Ŵ − W)ᵀ),
    // which has no cancellation when E ≪ tr(WGWᵀ).
    func measure(_ candidate: Matrix<T>) -> Double {
      guard problem.crossGram == nil else { return quadraticError(candidate, g: g, c: c, denseEnergy: denseEnergy) }
      return quadraticForm(difference(candidate, problem.weight), g)
    }

    // Step 2: the warm start W₀; its rounding is the first candidate (for a pruned warm start,
    // the warm start itself), while the first FISTA run starts from W₀ as it is.
    let warm = try warmStart(problem, pattern: pattern)
    var runStart = warm
    var best = debiased(Self.round(warm, pattern: pattern))
    var bestError = measure(best)
    let warmError = bestError
    var bestLambda: Double? = nil

    // Step 3: λ₀ and the bracket [λ_lo, λ_hi].
    var lambda = options.initialLambda ?? Self.quantileLambda(problem, ratio: pattern.ratio)
    var lambdaLow = 0.0
    var lambdaHigh = Double.infinity

    // Step 4: T rounds of FISTA, rounding and bisection.
    var path: [Double] = []
    var trace: [Double] = []
    var ratios: [Double] = []
    var totalIterations = 0
    if lipschitz > 0 && lipschitz.isFinite && pattern.ratio > 0 {
      for _ in 0..<options.lambdaSteps {
        // Step 4a: FISTA from the best candidate so far (W₀ in the first round).
        let run = Self.lasso(
          gram: coordinates.gram, target: coordinates.target, lambda: lambda, lipschitz: lipschitz,
          start: coordinates.fromWeights(runStart), iterations: options.iterations, tolerance: options.tolerance,
          penaltyWeights: coordinates.penaltyWeights)
        totalIterations += run.iterations
        let solution = coordinates.toWeights(run.solution)
        // Step 4b: Ĥ = H(Z).
        let rounded = Self.round(solution, pattern: pattern)
        // Step 4c: E_total, E_round, and the best candidate so far (debiased, step 4b′).
        let eTotal = measure(rounded)
        let eRound = quadraticForm(difference(rounded, solution), g)
        let candidate = debiasing == nil ? rounded : debiased(rounded)
        let eCandidate = debiasing == nil ? eTotal : measure(candidate)
        path.append(lambda)
        trace.append(eCandidate)
        if eCandidate < bestError {
          best = candidate
          bestError = eCandidate
          bestLambda = lambda
        }
        runStart = best
        // Step 4d: bisection on ρ = E_round/E_total.
        let ratio = eTotal > 0 ? eRound / eTotal : 0
        ratios.append(ratio)
        if eTotal == 0 { break }
        if ratio > options.xi {
          lambdaLow = lambda
          lambda =
            lambdaHigh.isFinite ? geometricMean(lambdaLow, lambdaHigh) : max(2 * lambda, Double.leastNormalMagnitude)
        } else {
          lambdaHigh = lambda
          lambda = lambdaLow > 0 ? geometricMean(lambdaLow, lambdaHigh) : lambda / 2
        }
      }
    }

    // Step 5: the mask of the best candidate, and the exact refit on it, kept when it does not
    // raise the error (the damped refit minimises a slightly different objective).
    let mask = Self.roundingMask(best, pattern: pattern)
    var weight = best
    var refitRetry: Double? = nil
    var refitError: Double? = nil
    if options.finalRefit && pattern.ratio > 0 {
      let refit = try Refit(options: .init(damping: options.damping)).refit(problem, mask: mask, pattern: pattern)
      let error = measure(refit.weight)
      refitError = error
      if error <= bestError {
        weight = refit.weight
        refitRetry = refit.report.dampingRetry
      }
    }
    return finishResult(method: .fista, problem: problem, pattern: pattern, weight: weight, mask: mask, start: start) {
      r in
      r.lambda = bestLambda
      r.lambdaPath = path
      r.objectiveTrace = trace
      r.iterations = totalIterations
      r.dampingRetry = refitRetry
      r.metrics = ["warm_start_error": warmError, "lipschitz": lipschitz, "rounded_error": bestError]
      if let refitError {
        r.metrics["refit_error"] = refitError
        if refitError > bestError { r.notes.append("the final refit raised the error; the rounded candidate is kept") }
      }
      for (k, ratio) in ratios.enumerated() { r.metrics["rounding_ratio_\(k)"] = ratio }
      if lipschitz == 0 {
        // Fallback: G* = 0 has no gradient to follow (every candidate has the same error).
        r.notes.append("G* is zero (no calibration signal): no λ search was run")
      }
      if bestLambda == nil { r.notes.append("no λ improved on the warm start; the result is the rounded warm start") }
      r.options = [
        "iterations": "\(options.iterations)", "lambda_steps": "\(options.lambdaSteps)", "xi": "\(options.xi)",
        "tolerance": "\(options.tolerance)", "warm_start": options.warmStart.rawValue,
        "final_refit": "\(options.finalRefit)", "preconditioner": options.preconditioner.rawValue,
        "debias_iterations": "\(options.debiasIterations)", "preset": options.presetDescription,
      ]
      if let l = options.initialLambda { r.options["initial_lambda"] = "\(l)" }
      if options.finalRefit || options.debiasIterations > 0 { r.options["damping"] = "\(options.damping)" }
    }
  }

  /// Step 2: W₀, the weights of the warm-start method (or W itself for `.dense`).
  func warmStart<T: KernelScalar>(_ problem: LayerProblem<T>, pattern: SparsityPattern) throws(PruningError) -> Matrix<
    T
  > {
    switch options.warmStart {
    case .dense: return problem.weight
    case .magnitude: return Self.round(problem.weight, pattern: pattern)
    case .wanda:
      var w = problem.weight
      Wanda.mask(problem, pattern: pattern).apply(to: &w)
      return w
    case .sparsegpt:
      return try SparseGPT(options: Self.warmStartSparseGPT(pattern)).prune(problem, pattern: pattern).weight
    }
  }

  /// SparseGPT's options for the warm start: its defaults, with the lazy batch rounded down to a
  /// multiple of M for N:M (at least M, as APT does), so that every N:M pattern has a warm start
  /// (SparseGPT itself refuses a batch that would split an N:M group: 128 for 1:3).
  public static func warmStartSparseGPT(_ pattern: SparsityPattern) -> SparseGPT.Options {
    var options = SparseGPT.Options()
    options.blockSize = pattern.wholeGroups(options.blockSize)
    return options
  }

  /// Step 3: λ₀ = the s-quantile of |Wᵢⱼ|·G*ⱼⱼ, sorted(scores)[min(⌊s·mn⌋, mn − 1)] (0 for an
  /// empty W).
  static func quantileLambda<T: KernelScalar>(_ problem: LayerProblem<T>, ratio: Double) -> Double {
    let m = problem.outputs
    let n = problem.inputs
    let g = problem.gram
    var items = [ScoredIndex]()
    items.reserveCapacity(m * n)
    problem.weight.withUnsafeBufferPointer { pw in
      for i in 0..<m {
        for j in 0..<n {
          items.append(ScoredIndex(score: Double(pw[i * n + j].magnitude) * Double(g[j, j]), index: Int32(i * n + j)))
        }
      }
    }
    guard !items.isEmpty else { return 0 }
    let k = min(items.count - 1, Int(ratio * Double(items.count)))
    return items.withUnsafeMutableBufferPointer { p in
      partitionSmallest(p, k + 1)
      return p[0...k].max()!.score  // the (k+1)-th smallest = sorted[k]
    }
  }

  /// The outcome of one FISTA run.
  public struct LassoRun<T: KernelScalar>: Sendable {
    /// Z_k, the last prox output (exactly sparse where the shrinkage zeroed it).
    public let solution: Matrix<T>
    /// Iterations done (fewer than asked when the tolerance stopped the run).
    public let iterations: Int
  }

  /// Step 4a, the fast path: FISTA on min_Z ½tr(Z G Zᵀ) − tr(Z Cᵀ) + λ‖Z‖₁ from `start`, for
  /// `iterations` steps or until ‖Z_k − Z_{k−1}‖_F ≤ tolerance·‖Z_{k−1}‖_F. Every row of Z is an
  /// independent lasso sharing G; the rows are updated together, Y·G by one GEMM per iteration
  /// and the rest by `fistaRowStep` on chunks of rows in parallel. `lassoReference` is the same
  /// computation as plain loops.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public static func lasso<T: KernelScalar>(
    gram g: Matrix<T>, target c: Matrix<T>, lambda: Double, lipschitz: Double, start: Matrix<T>,
    iterations: Int, tolerance: Double = 0, penaltyWeights: [T]? = nil, support: Mask? = nil
  ) -> LassoRun<T> {
    precondition(
      g.isSquare && g.rows == c.columns && start.rows == c.rows && start.columns == c.columns, "FISTA.lasso: shapes")
    precondition(support.map { $0.rows == c.rows && $0.columns == c.columns } ?? true, "FISTA.lasso: support shape")
    precondition(lipschitz > 0 && lambda >= 0, "FISTA.lasso: needs L > 0 and λ ≥ 0")
    precondition(penaltyWeights.map { $0.count == c.columns } ?? true, "FISTA.lasso: one penalty weight per column")
    let step = T(1 / lipschitz)
    // τⱼ = λ·ωⱼ/L (ωⱼ = 1 without weights: every column the same threshold λ/L).
    let tau = penaltyWeights.map { $0.map { T(lambda / lipschitz) * $0 } }
      ?? [T](repeating: T(lambda / lipschitz), count: c.columns)
    // The support as 1s and 0s that multiply the prox's output (a row of 1s, stride 0, without one).
    let keep: [T] = support.map { mask in mask.kept.map { $0 ? 1 : 0 } }
      ?? [T](repeating: 1, count: c.columns)
    let keepStride = support == nil ? 0 : c.columns
    let rows = c.rows
    let columns = c.columns
    var z = start  // Z_{k−1}
    var y = start  // Y_k
    var yg = Matrix<T>(rows: rows, columns: columns)
    // Per-row ‖Z_k − Z_{k−1}‖² and ‖Z_{k−1}‖², summed in row order afterwards: the stop decision
    // does not depend on how rows are split over threads.
    var rowChange = [Double](repeating: 0, count: rows)
    var rowPrevious = [Double](repeating: 0, count: rows)
    var t = 1.0  // t_k
    var done = 0
    for _ in 0..<iterations {
      gemm(y, g, into: &yg)  // Y_k G
      let tNext = (1 + (1 + 4 * t * t).squareRoot()) / 2  // t_{k+1}
      let momentum = T((t - 1) / tNext)
      // Z_k = soft_{λ/L}(Y_k − (Y_k G − C)/L) and Y_{k+1} = Z_k + momentum·(Z_k − Z_{k−1}), row by row.
      c.withUnsafeBufferPointer { pc in
        yg.withUnsafeBufferPointer { pyg in
          z.withUnsafeMutableBufferPointer { pz in
            y.withUnsafeMutableBufferPointer { py in
              rowChange.withUnsafeMutableBufferPointer { pch in
                rowPrevious.withUnsafeMutableBufferPointer { ppr in
                  tau.withUnsafeBufferPointer { ptau in
                  keep.withUnsafeBufferPointer { pkeep in
                  let shared = (
                    c: SendableConstPointer(pc.baseAddress!), yg: SendableConstPointer(pyg.baseAddress!),
                    z: SendablePointer(pz.baseAddress!), y: SendablePointer(py.baseAddress!),
                    change: SendablePointer(pch.baseAddress!), previous: SendablePointer(ppr.baseAddress!),
                    tau: SendableConstPointer(ptau.baseAddress!), keep: SendableConstPointer(pkeep.baseAddress!)
                  )
                  Parallelism.forEachChunk(of: rows) { range in
                    for i in range {
                      let o = i * columns
                      let (ch, pr) = fistaRowStep(
                        c: shared.c.base + o, yg: shared.yg.base + o, z: shared.z.base + o, y: shared.y.base + o,
                        count: columns, step: step, tau: shared.tau.base, keep: shared.keep.base + i * keepStride,
                        momentum: momentum)
                      shared.change.base[i] = ch
                      shared.previous.base[i] = pr
                    }
                  }
                  }
                  }
                }
              }
            }
          }
        }
      }
      t = tNext
      done += 1
      // The stopping rule: ‖Z_k − Z_{k−1}‖² ≤ ε²‖Z_{k−1}‖².
      if tolerance > 0 {
        var change = 0.0
        var previous = 0.0
        for i in 0..<rows {
          change += rowChange[i]
          previous += rowPrevious[i]
        }
        if change <= tolerance * tolerance * previous { break }
      }
    }
    return LassoRun(solution: z, iterations: done)
  }

  /// Step 4a, the reference: the iterations of `lasso` written plainly, in Double, row by row,
  /// with the gradient summed over the Gram entry by entry (no GEMM, no SIMD, no threads):
  ///
  ///     Z_k     = soft_{λ/L}(Y_k − (Y_k G − C)/L)
  ///     t_{k+1} = (1 + √(1 + 4t_k²))/2
  ///     Y_{k+1} = Z_k + ((t_k − 1)/t_{k+1})(Z_k − Z_{k−1})
  ///
  /// from Z₀ = Y₁ = start and t₁ = 1, with the same stopping rule (with `penaltyWeights` ω, the
  /// penalty is λΣωⱼ|Zᵢⱼ| and column j's threshold λωⱼ/L; with `support`, Z is held at 0 off it). FISTATests compares `lasso`
  /// with it. O(mn²) per iteration like the fast path, but some 100× slower: a test oracle.
  public static func lassoReference(
    gram g: Matrix<Double>, target c: Matrix<Double>, lambda: Double, lipschitz: Double, start: Matrix<Double>,
    iterations: Int, tolerance: Double = 0, penaltyWeights: [Double]? = nil, support: Mask? = nil
  ) -> LassoRun<Double> {
    precondition(
      g.isSquare && g.rows == c.columns && start.rows == c.rows && start.columns == c.columns,
      "FISTA.lassoReference: shapes")
    precondition(lipschitz > 0 && lambda >= 0, "FISTA.lassoReference: needs L > 0 and λ ≥ 0")
    let m = c.rows
    let n = c.columns
    var z = start  // Z_{k−1}
    var y = start  // Y_k
    var t = 1.0  // t_k
    var done = 0
    for _ in 0..<iterations {
      let tNext = (1 + (1 + 4 * t * t).squareRoot()) / 2
      var change = 0.0
      var previous = 0.0  // ‖Z_k − Z_{k−1}‖², ‖Z_{k−1}‖²
      for i in 0..<m {
        // Row i of Z_k: a gradient step from row i of Y_k, then the prox.
        var zRow = [Double](repeating: 0, count: n)
        for j in 0..<n {
          var gradient = -c[i, j]  // (Y_k G − C)ᵢⱼ
          for p in 0..<n { gradient += y[i, p] * g[p, j] }
          zRow[j] = softThreshold(y[i, j] - gradient / lipschitz, lambda / lipschitz * (penaltyWeights?[j] ?? 1))
          if let support, !support[i, j] { zRow[j] = 0 }
        }
        // Row i of Y_{k+1}, and Z_{k−1} ← Z_k.
        for j in 0..<n {
          let delta = zRow[j] - z[i, j]
          change += delta * delta
          previous += z[i, j] * z[i, j]
          y[i, j] = zRow[j] + (t - 1) / tNext * delta
          z[i, j] = zRow[j]
        }
      }
      t = tNext
      done += 1
      if tolerance > 0 && change <= tolerance * tolerance * previous { break }
    }
    return LassoRun(solution: z, iterations: done)
  }

  /// soft_τ(v) = sign(v)·max(|v| − τ, 0): the minimiser of ½(x − v)² + τ|x|.
  @inlinable
  public static func softThreshold<T: KernelScalar>(_ v: T, _ tau: T) -> T {
    if v > tau { return v - tau }
    if v < -tau { return v + tau }
    return 0
  }

  /// Step 4b: H(Z), the smallest |Z| pruned to the exact pattern, the rest unchanged.
  static func round<T: KernelScalar>(_ z: Matrix<T>, pattern: SparsityPattern) -> Matrix<T> {
    var w = z
    roundingMask(z, pattern: pattern).apply(to: &w)
    return w
  }

  /// The mask of H(Z).
  static func roundingMask<T: KernelScalar>(_ z: Matrix<T>, pattern: SparsityPattern) -> Mask {
    Mask.pruningLowest(z.map { $0.magnitude }, pattern: pattern)
  }
}

/// The coordinates FISTA's lasso runs in (step 1b).
///
/// `.none`: Z itself, min ½tr(Z G* Zᵀ) − tr(Z Cᵀ) + λ‖Z‖₁, the paper's iteration.
/// `.jacobi`: with S = diag(sⱼ), sⱼ = 1/√G*ⱼⱼ (0 for a dead input, G*ⱼⱼ = 0), and Z = V·S,
///
///     min_V ½tr(V Ĝ Vᵀ) − tr(V Ĉᵀ) + λ Σᵢⱼ sⱼ|Vᵢⱼ|,     Ĝ = S G* S,  Ĉ = C·S,
///
/// the same lasso written in other coordinates: the objective takes the same value at Z and at
/// V = Z·S⁻¹, so the minimiser is the same (a dead column, where the lasso's minimiser is 0, is
/// held at 0). Ĝ has a unit diagonal: its Lipschitz constant is set by the correlations between
/// inputs rather than by the largest input's energy, so the step 1/L̂ is no longer tiny for the
/// low-energy inputs, and K iterations get much closer to the minimiser (the condition number of
/// real layers' G* falls by orders of magnitude). The threshold of column j becomes λsⱼ/L̂.
public struct LassoCoordinates<T: KernelScalar>: Sendable {
  /// Ĝ (or G*).
  public let gram: Matrix<T>
  /// Ĉ (or C).
  public let target: Matrix<T>
  /// sⱼ (nil: the identity).
  public let scale: [T]?
  /// The per-column penalty weights of the lasso in these coordinates (sⱼ, or nil: all 1).
  public var penaltyWeights: [T]? { scale }

  public init(gram g: Matrix<T>, target c: Matrix<T>, preconditioner: FISTA.Preconditioner) {
    guard preconditioner == .jacobi else {
      gram = g
      target = c
      scale = nil
      return
    }
    let n = g.rows
    let s = (0..<n).map { j -> T in g[j, j] > 0 ? 1 / g[j, j].squareRoot() : 0 }
    var gs = g
    for i in 0..<n { for j in 0..<n { gs[i, j] = s[i] * g[i, j] * s[j] } }
    gram = gs
    target = Self.columnsScaled(c, by: s)
    scale = s
  }

  /// V = Z·S⁻¹ (0 in a dead column).
  public func fromWeights(_ z: Matrix<T>) -> Matrix<T> {
    guard let scale else { return z }
    return Self.columnsScaled(z, by: scale.map { $0 > 0 ? 1 / $0 : 0 })
  }

  /// Z = V·S.
  public func toWeights(_ v: Matrix<T>) -> Matrix<T> {
    guard let scale else { return v }
    return Self.columnsScaled(v, by: scale)
  }

  static func columnsScaled(_ a: Matrix<T>, by s: [T]) -> Matrix<T> {
    var r = a
    for i in 0..<a.rows { for j in 0..<a.columns { r[i, j] = a[i, j] * s[j] } }
    return r
  }
}

/// One FISTA step on one row: Z ← soft_τ(Y − step·(YG − C)), Y ← Z + momentum·(Z − Z_old), with
/// column j's threshold τ[j], and Z multiplied by keep[j] (1 on the support, 0 off it).
/// Returns (‖Z − Z_old‖², ‖Z_old‖²) for the stopping test.
///
/// Eight lanes at a time and branch-free: soft_τ(v) = v − clamp(v, −τ, τ). (The scalar
/// form with two data-dependent branches ran at ~9 ns per entry, as long as the GEMM itself.)
/// The lane sums are reduced in a fixed order, so the result depends on `count` only.
@inline(__always)
func fistaRowStep<T: KernelScalar>(
  c: UnsafePointer<T>, yg: UnsafePointer<T>, z: UnsafeMutablePointer<T>, y: UnsafeMutablePointer<T>,
  count: Int, step: T, tau: UnsafePointer<T>, keep: UnsafePointer<T>, momentum: T
) -> (Double, Double) {
  var change8 = SIMD8<T>(repeating: 0)
  var previous8 = SIMD8<T>(repeating: 0)
  let step8 = SIMD8<T>(repeating: step)
  let momentum8 = SIMD8<T>(repeating: momentum)
  var j = 0
  while j + 8 <= count {
    let yv = UnsafeRawPointer(y + j).loadUnaligned(as: SIMD8<T>.self)
    let gv = UnsafeRawPointer(yg + j).loadUnaligned(as: SIMD8<T>.self)
    let cv = UnsafeRawPointer(c + j).loadUnaligned(as: SIMD8<T>.self)
    let old = UnsafeRawPointer(z + j).loadUnaligned(as: SIMD8<T>.self)
    let tau8 = UnsafeRawPointer(tau + j).loadUnaligned(as: SIMD8<T>.self)
    let v = yv - step8 * (gv - cv)  // gradient step
    let keep8 = UnsafeRawPointer(keep + j).loadUnaligned(as: SIMD8<T>.self)
    let zNew = (v - clamp8(v, tau8)) * keep8  // soft_τ(v) = v − clamp(v, −τ, τ), 0 off the support
    let delta = zNew - old
    change8 += delta * delta
    previous8 += old * old
    UnsafeMutableRawPointer(y + j).storeBytes(of: zNew + momentum8 * delta, as: SIMD8<T>.self)  // Y_{k+1}
    UnsafeMutableRawPointer(z + j).storeBytes(of: zNew, as: SIMD8<T>.self)
    j += 8
  }
  var change = 0.0
  var previous = 0.0
  for lane in 0..<8 {
    change += Double(change8[lane])
    previous += Double(previous8[lane])
  }
  while j < count {
    let v = y[j] - step * (yg[j] - c[j])
    let zNew = FISTA.softThreshold(v, tau[j]) * keep[j]
    let old = z[j]
    let delta = zNew - old
    change += Double(delta * delta)
    previous += Double(old * old)
    y[j] = zNew + momentum * delta
    z[j] = zNew
    j += 1
  }
  return (change, previous)
}

/// clamp(v, −τ, τ) lane by lane. Written as a fixed-length loop of selects that LLVM turns into
/// vminps/vmaxps: the stdlib's generic `pointwiseMin`/`pointwiseMax` and `replace(with:where:)`
/// were not inlined here and cost more than the rest of the FISTA step.
@inline(__always)
func clamp8<T: KernelScalar>(_ v: SIMD8<T>, _ tau: SIMD8<T>) -> SIMD8<T> {
  var r = v
  for lane in 0..<8 {
    let x = v[lane]
    let t = tau[lane]
    r[lane] = x > t ? t : (x < -t ? -t : x)
  }
  return r
}

/// A − B, entry by entry.
func difference<T: KernelScalar>(_ a: Matrix<T>, _ b: Matrix<T>) -> Matrix<T> {
  precondition(a.rows == b.rows && a.columns == b.columns, "difference: shapes")
  var d = a
  d.withUnsafeMutableBufferPointer { pd in
    b.withUnsafeBufferPointer { pb in for idx in 0..<pd.count { pd[idx] -= pb[idx] } }
  }
  return d
}

/// tr(Δ G Δᵀ) = Σᵢⱼ Δᵢⱼ (ΔG)ᵢⱼ with the product in T and the sum in Double.
func quadraticForm<T: KernelScalar>(_ delta: Matrix<T>, _ g: Matrix<T>) -> Double {
  let product = matmul(delta, g)
  var s = 0.0
  delta.withUnsafeBufferPointer { pd in
    product.withUnsafeBufferPointer { pp in for idx in 0..<pd.count { s += Double(pd[idx]) * Double(pp[idx]) } }
  }
  return s
}

/// ‖X*Ẑᵀ − XWᵀ‖² = tr(Z G* Zᵀ) − 2tr(Z Cᵀ) + tr(W G Wᵀ), products in T, sums in Double.
func quadraticError<T: KernelScalar>(_ z: Matrix<T>, g: Matrix<T>, c: Matrix<T>, denseEnergy: Double) -> Double {
  let zg = matmul(z, g)
  var s = 0.0
  z.withUnsafeBufferPointer { pz in
    zg.withUnsafeBufferPointer { pzg in
      c.withUnsafeBufferPointer { pc in
        for idx in 0..<pz.count { s += Double(pz[idx]) * (Double(pzg[idx]) - 2 * Double(pc[idx])) }
      }
    }
  }
  return max(0, s + denseEnergy)
}

func geometricMean(_ a: Double, _ b: Double) -> Double { (a * b).squareRoot() }
