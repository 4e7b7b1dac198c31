/// Minimises ½‖X*Ŵᵀ − XWᵀ‖²_F + λ‖Ŵ‖₁ by FISTA, tunes λ by bisection on the rounding-error ratio
/// and rounds to the exact pattern: FISTAPruner (Zhao, Hu, Li, Zheng, Wang, Yuan, "A Convex-
/// optimization-based Layer-wise Post-training Pruner for Large Language Models", arXiv 2408.03728).
///
/// In the Gram form (Docs/methods/fista.md#derivation), with G* = X*ᵀX*, K = XᵀX* and C = W·K:
///
///     f(Z) = ½tr(Z G* Zᵀ) − tr(Z Cᵀ) + ½tr(W G Wᵀ),   ∇f(Z) = Z G* − C,   L = λmax(G*)
///
/// 1. FISTA at step 1/L (`lasso`, K = `iterations` steps), two-sequence form:
///        Z_k     = soft_{λ/L}(Y_k − (Y_k G* − C)/L)          soft_τ(v) = sign(v)·max(|v| − τ, 0)
///        t_{k+1} = (1 + √(1 + 4t_k²))/2
///        Y_{k+1} = Z_k + ((t_k − 1)/t_{k+1})(Z_k − Z_{k−1})
///    stopping early when ‖Z_k − Z_{k−1}‖_F ≤ ε‖Z_{k−1}‖_F. L is the kernels' certified upper
///    bound on λmax(G*): an underestimate would make the step too long and FISTA diverge.
/// 2. Rounding H: prune the smallest |Z| to the exact pattern (per matrix for unstructured by
///    default, N:M per row and group); the kept values are not changed (paper mode).
/// 3. λ by T = `lambdaSteps` rounds of bisection, keeping the best rounded solution so far:
///        E_total = ‖X*Ĥᵀ − XWᵀ‖²,   E_round = ‖X*(Ĥ − Z)ᵀ‖² = tr((Ĥ − Z)G*(Ĥ − Z)ᵀ)
///        E_round/E_total > ξ  →  rounding dominates: λ_lo ← λ (more shrinkage)
///        otherwise            →  shrinkage bias dominates: λ_hi ← λ
///        next λ = √(λ_lo·λ_hi) when both are finite and positive, 2λ or λ/2 otherwise
///    Each FISTA run starts from the best solution so far; the first from the warm weights as they
///    are (dense W for `.dense`: the paper's dense start, distinct from magnitude), whose rounding
///    is the first candidate, so the result is never worse than the rounded warm start.
/// 4. Optionally (`finalRefit`, not in the paper) the exact damped refit on the final mask.
///
/// Reconstructed details [INF, Docs/methods/fista.md#reconstructed-inf-and-open-questions]: squared
/// norms in the ratio, the geometric bisection, and λ₀ = the s-quantile of |Wᵢⱼ|·G*ⱼⱼ, the scale at
/// which a coordinate-wise lasso step zeroes entry (i, j) when G* is near diagonal. No code of the
/// authors is public.
///
/// Precision: the GEMMs run in T (Float for real layers: the speed comes from SGEMM); errors that
/// steer λ are accumulated in Double from T products; the reported error is recomputed in Double.
public struct FISTA: Sendable {
  /// Where the first FISTA run starts (and the first candidate of the best-so-far).
  public enum WarmStart: String, Sendable {
    case sparsegpt, wanda, magnitude, dense
  }

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
    /// The warm start: Wanda, the authors' choice for the LLaMA family (SparseGPT for OPT).
    public var warmStart: WarmStart = .wanda
    /// Refit the kept weights exactly on the final mask (not in the paper; off by default).
    public var finalRefit: Bool = false
    /// Damping of that refit as a fraction of mean(diag G*): 0.01 (see Refit).
    public var refitDamping: Double = 0.01

    public init(
      iterations: Int = 20, lambdaSteps: Int = 3, xi: Double = 0.3, initialLambda: Double? = nil,
      tolerance: Double = 1e-5, warmStart: WarmStart = .wanda, finalRefit: Bool = false,
      refitDamping: Double = 0.01
    ) {
      self.iterations = iterations
      self.lambdaSteps = lambdaSteps
      self.xi = xi
      self.initialLambda = initialLambda
      self.tolerance = tolerance
      self.warmStart = warmStart
      self.finalRefit = finalRefit
      self.refitDamping = refitDamping
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
    let m = problem.outputs, n = problem.inputs
    let g = problem.gram
    let c = matmul(problem.weight, problem.crossGram ?? problem.gram)
    let lipschitz = largestEigenvalueUpperBound(g).upperBound
    let denseEnergy = problem.denseEnergy
    // E(Ŵ) in T products and Double sums; without error correction as tr((Ŵ − W)G(Ŵ − W)ᵀ),
    // which has no cancellation when E ≪ tr(WGWᵀ).
    func measure(_ candidate: Matrix<T>) -> Double {
      guard problem.crossGram == nil else { return quadraticError(candidate, g: g, c: c, denseEnergy: denseEnergy) }
      var delta = candidate
      delta.withUnsafeMutableBufferPointer { pd in
        problem.weight.withUnsafeBufferPointer { pw in for idx in 0..<pd.count { pd[idx] -= pw[idx] } }
      }
      return quadraticForm(delta, g)
    }

    // Warm start: the first candidate.
    let warm: Matrix<T>
    switch options.warmStart {
    case .dense: warm = problem.weight
    case .magnitude: warm = Self.round(problem.weight, pattern: pattern)
    case .wanda:
      var w = problem.weight
      Wanda.mask(problem, pattern: pattern).apply(to: &w)
      warm = w
    case .sparsegpt: warm = try SparseGPT().prune(problem, pattern: pattern).weight
    }
    // The first FISTA run starts from the warm weights as they are (dense W for `.dense`); the
    // first candidate is their rounding (for a pruned warm start, the warm start itself).
    var runStart = warm
    var best = Self.round(warm, pattern: pattern)
    var bestError = measure(best)
    let warmError = bestError
    var bestLambda: Double? = nil

    // λ₀: the s-quantile of |Wᵢⱼ|·G*ⱼⱼ.
    var lambda = options.initialLambda ?? {
      var items = [ScoredIndex]()
      items.reserveCapacity(m * n)
      problem.weight.withUnsafeBufferPointer { pw in
        for i in 0..<m { for j in 0..<n { items.append(ScoredIndex(score: Double(pw[i * n + j].magnitude) * Double(g[j, j]), index: Int32(i * n + j))) } }
      }
      guard !items.isEmpty else { return 0 }
      let k = min(items.count - 1, Int(pattern.ratio * Double(items.count)))
      return items.withUnsafeMutableBufferPointer { p in
        partitionSmallest(p, k + 1)
        return p[0...k].max()!.score  // the (k+1)-th smallest = sorted[k]
      }
    }()
    var lambdaLow = 0.0, lambdaHigh = Double.infinity
    var path: [Double] = [], trace: [Double] = [], ratios: [Double] = []
    var totalIterations = 0
    if lipschitz > 0 && lipschitz.isFinite && pattern.ratio > 0 {
      for _ in 0..<options.lambdaSteps {
        let run = Self.lasso(
          gram: g, target: c, lambda: lambda, lipschitz: lipschitz, start: runStart,
          iterations: options.iterations, tolerance: options.tolerance)
        totalIterations += run.iterations
        let rounded = Self.round(run.solution, pattern: pattern)
        let eTotal = measure(rounded)
        var diff = rounded
        diff.withUnsafeMutableBufferPointer { pd in
          run.solution.withUnsafeBufferPointer { pz in for idx in 0..<(m * n) { pd[idx] -= pz[idx] } }
        }
        let eRound = quadraticForm(diff, g)
        path.append(lambda)
        trace.append(eTotal)
        if eTotal < bestError {
          best = rounded
          bestError = eTotal
          bestLambda = lambda
        }
        runStart = best
        let ratio = eTotal > 0 ? eRound / eTotal : 0
        ratios.append(ratio)
        if eTotal == 0 { break }
        if ratio > options.xi {
          lambdaLow = lambda
          lambda = lambdaHigh.isFinite ? geometricMean(lambdaLow, lambdaHigh) : max(2 * lambda, Double.leastNormalMagnitude)
        } else {
          lambdaHigh = lambda
          lambda = lambdaLow > 0 ? geometricMean(lambdaLow, lambdaHigh) : lambda / 2
        }
      }
    }
    let mask = Self.roundingMask(best, pattern: pattern)
    var weight = best
    var refitRetry: Double? = nil
    if options.finalRefit {
      let refit = try Refit(options: .init(dampingFraction: options.refitDamping)).refit(problem, mask: mask, pattern: pattern)
      weight = refit.weight
      refitRetry = refit.report.dampingRetry
    }
    return finishResult(method: .fista, problem: problem, pattern: pattern, weight: weight, mask: mask, start: start) { r in
      r.lambda = bestLambda
      r.lambdaPath = path
      r.objectiveTrace = trace
      r.iterations = totalIterations
      r.dampingRetry = refitRetry
      r.metrics = ["warm_start_error": warmError, "lipschitz": lipschitz]
      for (k, ratio) in ratios.enumerated() { r.metrics["rounding_ratio_\(k)"] = ratio }
      if lipschitz == 0 {
        // Fallback: G* = 0 has no gradient to follow (every candidate has the same error).
        r.notes.append("G* is zero (no calibration signal): no λ search was run")
      }
      if bestLambda == nil { r.notes.append("no λ improved on the warm start; the result is the rounded warm start") }
      r.options = [
        "iterations": "\(options.iterations)", "lambda_steps": "\(options.lambdaSteps)", "xi": "\(options.xi)",
        "tolerance": "\(options.tolerance)", "warm_start": options.warmStart.rawValue,
        "final_refit": "\(options.finalRefit)",
      ]
      if let l = options.initialLambda { r.options["lambda"] = "\(l)" }
      if options.finalRefit { r.options["damping"] = "\(options.refitDamping)" }
    }
  }

  /// The outcome of one FISTA run.
  public struct LassoRun<T: KernelScalar>: Sendable {
    /// Z_k, the last prox output (exactly sparse where the shrinkage zeroed it).
    public let solution: Matrix<T>
    /// Iterations done (fewer than asked when the tolerance stopped the run).
    public let iterations: Int
  }

  /// Runs FISTA on min_Z ½tr(Z G Zᵀ) − tr(Z Cᵀ) + λ‖Z‖₁ from `start` (every row of Z is an
  /// independent lasso sharing G; they are updated together by one GEMM per iteration).
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public static func lasso<T: KernelScalar>(
    gram g: Matrix<T>, target c: Matrix<T>, lambda: Double, lipschitz: Double, start: Matrix<T>,
    iterations: Int, tolerance: Double = 0
  ) -> LassoRun<T> {
    precondition(g.isSquare && g.rows == c.columns && start.rows == c.rows && start.columns == c.columns, "FISTA.lasso: shapes")
    precondition(lipschitz > 0 && lambda >= 0, "FISTA.lasso: needs L > 0 and λ ≥ 0")
    let step = T(1 / lipschitz)
    let tau = T(lambda / lipschitz)
    let rows = c.rows, columns = c.columns
    var z = start  // Z_{k−1}
    var y = start  // Y_k
    var yg = Matrix<T>(rows: rows, columns: columns)
    // Per-row ‖Z_k − Z_{k−1}‖² and ‖Z_{k−1}‖², summed in row order afterwards: the stop decision
    // does not depend on how rows are split over threads.
    var rowChange = [Double](repeating: 0, count: rows)
    var rowPrevious = [Double](repeating: 0, count: rows)
    var t = 1.0
    var done = 0
    for _ in 0..<iterations {
      gemm(y, g, into: &yg)  // Y G
      let tNext = (1 + (1 + 4 * t * t).squareRoot()) / 2
      let momentum = T((t - 1) / tNext)
      c.withUnsafeBufferPointer { pc in
        yg.withUnsafeBufferPointer { pyg in
          z.withUnsafeMutableBufferPointer { pz in
            y.withUnsafeMutableBufferPointer { py in
              rowChange.withUnsafeMutableBufferPointer { pch in
                rowPrevious.withUnsafeMutableBufferPointer { ppr in
                  let shared = (
                    c: SendableConstPointer(pc.baseAddress!), yg: SendableConstPointer(pyg.baseAddress!),
                    z: SendablePointer(pz.baseAddress!), y: SendablePointer(py.baseAddress!),
                    change: SendablePointer(pch.baseAddress!), previous: SendablePointer(ppr.baseAddress!))
                  Parallelism.forEachChunk(of: rows) { range in
                    for i in range {
                      let o = i * columns
                      let (ch, pr) = fistaRowStep(
                        c: shared.c.base + o, yg: shared.yg.base + o, z: shared.z.base + o, y: shared.y.base + o,
                        count: columns, step: step, tau: tau, momentum: momentum)
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
      t = tNext
      done += 1
      if tolerance > 0 {
        var change = 0.0, previous = 0.0
        for i in 0..<rows {
          change += rowChange[i]
          previous += rowPrevious[i]
        }
        if change <= tolerance * tolerance * previous { break }
      }
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

  /// H: the smallest |Z| pruned to the exact pattern, the rest unchanged.
  static func round<T: KernelScalar>(_ z: Matrix<T>, pattern: SparsityPattern) -> Matrix<T> {
    var w = z
    roundingMask(z, pattern: pattern).apply(to: &w)
    return w
  }

  static func roundingMask<T: KernelScalar>(_ z: Matrix<T>, pattern: SparsityPattern) -> Mask {
    Mask.pruningLowest(z.map { $0.magnitude }, pattern: pattern)
  }
}

/// One FISTA step on one row: Z ← soft_τ(Y − step·(YG − C)), Y ← Z + momentum·(Z − Z_old).
/// Returns (‖Z − Z_old‖², ‖Z_old‖²) for the stopping test.
///
/// Eight lanes at a time and branch-free: soft_τ(v) = v − clamp(v, −τ, τ). (The scalar
/// form with two data-dependent branches ran at ~9 ns per entry, as long as the GEMM itself.)
/// The lane sums are reduced in a fixed order, so the result depends on `count` only.
@inline(__always)
func fistaRowStep<T: KernelScalar>(
  c: UnsafePointer<T>, yg: UnsafePointer<T>, z: UnsafeMutablePointer<T>, y: UnsafeMutablePointer<T>,
  count: Int, step: T, tau: T, momentum: T
) -> (Double, Double) {
  var change8 = SIMD8<T>(repeating: 0), previous8 = SIMD8<T>(repeating: 0)
  let tau8 = SIMD8<T>(repeating: tau), step8 = SIMD8<T>(repeating: step), momentum8 = SIMD8<T>(repeating: momentum)
  var j = 0
  while j + 8 <= count {
    let yv = UnsafeRawPointer(y + j).loadUnaligned(as: SIMD8<T>.self)
    let gv = UnsafeRawPointer(yg + j).loadUnaligned(as: SIMD8<T>.self)
    let cv = UnsafeRawPointer(c + j).loadUnaligned(as: SIMD8<T>.self)
    let old = UnsafeRawPointer(z + j).loadUnaligned(as: SIMD8<T>.self)
    let v = yv - step8 * (gv - cv)  // gradient step
    let zNew = v - clamp8(v, tau8)  // soft_τ(v) = v − clamp(v, −τ, τ)
    let delta = zNew - old
    change8 += delta * delta
    previous8 += old * old
    UnsafeMutableRawPointer(y + j).storeBytes(of: zNew + momentum8 * delta, as: SIMD8<T>.self)  // Y_{k+1}
    UnsafeMutableRawPointer(z + j).storeBytes(of: zNew, as: SIMD8<T>.self)
    j += 8
  }
  var change = 0.0, previous = 0.0
  for lane in 0..<8 {
    change += Double(change8[lane])
    previous += Double(previous8[lane])
  }
  while j < count {
    let v = y[j] - step * (yg[j] - c[j])
    let zNew = FISTA.softThreshold(v, tau)
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
    let x = v[lane], t = tau[lane]
    r[lane] = x > t ? t : (x < -t ? -t : x)
  }
  return r
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
