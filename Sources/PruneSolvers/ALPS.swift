/// Minimises ‖X*Ŵᵀ − XWᵀ‖²_F + δ‖Ŵ − W‖²_F subject to Ŵ having the sparsity pattern, by ADMM
/// with a support-driven penalty schedule and a conjugate-gradient refit on the final support:
/// ALPS (Meng, Behdin, Wang, Mazumder, "ALPS: Improved Optimization for Highly Sparse One-Shot
/// Pruning for Large Language Models", NeurIPS 2024, arXiv 2406.07831; repo mazumder-lab/ALPS).
///
/// The problem in the Jacobi-normalised space (Docs/methods/alps.md#derivation). With
/// δ = damping · mean(diag G*) and G_δ = G* + δI,
///
///     dⱼ = √(G_δ)ⱼⱼ + 1e-8,   G̃ = D⁻¹G_δD⁻¹ (unit diagonal),   B₀ = W·D   (|B₀ᵢⱼ| = Wanda's score)
///     Y = (W·K + δW)·D⁻¹    (= B₀·G̃ when K = G*: no error correction)
///
/// and in B = ŴD the damped error is tr(BG̃Bᵀ) − 2tr(BYᵀ) + const. ALPS splits B (dense) from a
/// copy Z constrained to the pattern set 𝒮 and runs ADMM with an unscaled dual Λ:
///
///     B ← (Y − Λ + ρZ)·(G̃ + ρI)⁻¹                  W-step: a linear solve, one factor per ρ
///     Z ← Π_𝒮(B + Λ/ρ)                              D-step: keep the largest |·| of the pattern
///     Λ ← Λ + ρ(B − Z)                              dual ascent
///
/// from B = B₀, Z = Z₀ = Π_𝒮(B₀), Λ = 0, ρ = ρ₀ (`rho`). Π_𝒮 is `Mask.pruningLowest` on |·|:
/// exact counts per matrix, row or N:M group (ties by index).
///
/// The ρ schedule (every `updateInterval` = 3 iterations, the code's `update_iter`). With c the
/// number of entries whose kept/pruned state changed since the last check and k the kept count:
///
///     c/k > 0.1     →  ρ ← 1.3ρ                    (the support still moves a lot)
///     c/k > 0.005   →  ρ ← 1.2ρ
///     c ≥ 1         →  ρ ← 1.1ρ once ρ has grown; before that, ρ ← ρ/5 and restart from B₀
///     c = 0         →  stop once ρ has grown; before that, ρ ← ρ/5
///
/// ρ is capped at 10⁶ (`rhoMax`), and after the first `switchIteration` = 30 iterations ADMM also
/// stops when c/k < 3·10⁻⁴; at most `iterations` = 300 in all. A smaller ρ lets the support move
/// (Z follows B), a larger one forces B and Z together; "restart with a smaller ρ" handles an
/// initial ρ so large that nothing moves.
///
/// Refit. The support is that of Π_𝒮(B) (the last W-step's B, as the code), and on it the kept
/// weights solve G̃[S,S] b_S = y_S per row by conjugate gradients, warm-started from Π_𝒮(B), at
/// most `refitIterations` = 10 steps per row, stopping a row early when ‖r_S‖ ≤ `refitTolerance`
/// = 10⁻⁴·‖y_S‖. CG on G̃ with the identity preconditioner is CG on G_δ with the Jacobi
/// (diagonal) preconditioner — the normalisation *is* the paper's preconditioner. The answer is
/// Ŵ = B_S·D⁻¹; with enough refit steps it is `Refit`'s solution on the same mask at the same δ.
///
/// Defaults, all from the authors' code (alps.py `ALPS_admm`, opt.py/llama.py): ρ₀ = 0.1,
/// max_iter = 300, update_iter = 3, switch_iter = 30, the thresholds and factors above, the cap
/// 10⁶, damping 0.01·mean(diag G) added *before* the normalisation (SparseGPT's convention, so
/// `damping` means here what it means for sparsegpt/refit), and the CG's maxiter = 10 and
/// rtol = 10⁻⁴. Where PruneKit differs (Docs/methods/alps.md#the-authors-code-and-where-prunekit-differs):
/// the W-step factors G̃ + ρI by Cholesky for each new ρ instead of one eigendecomposition (same
/// solution, no eigensolver needed); the CG's stopping test is on the masked residual (the code's
/// is on the full residual, which the restricted optimum does not zero, so its CG always runs its
/// 10 steps); any N:M, per-row ratios and error correction are supported.
///
/// Cost. Per ADMM iteration one m×n by n×n GEMM (2mn² flops) and one O(mn) selection; per ρ value
/// a Cholesky factorisation and an inverse (~n³ flops). At most 100 ρ values and 300 iterations;
/// on SmolLM2-135M layers ADMM stopped after 33–36 (12–13 values of ρ). The refit adds 2mn² per
/// CG step.
/// Memory: G̃ and (G̃ + ρI)⁻¹ (2n², plus the factor while it is formed) and six m×n matrices
/// (B₀, Y, B, Z, Λ, the right-hand side) in T.
public struct ALPS: Sendable {
  /// The options and their defaults (`MethodOption` declares their command-line names).
  public struct Options: Sendable, Equatable {
    /// The most ADMM iterations: the code's `max_iter`, 300.
    public var iterations: Int = 300
    /// The initial penalty ρ₀: the code's `rho`, 0.1 (`--rho` of opt.py/llama.py).
    public var rho: Double = 0.1
    /// δ as a fraction of mean(diag G*), added before the normalisation: the code's 0.01.
    public var damping: Double = 0.01
    /// The most conjugate-gradient steps of the refit per row: the code's `maxiter`, 10 (0: no refit).
    public var refitIterations: Int = 10
    /// A row's refit stops when ‖r_S‖ ≤ tolerance·‖y_S‖: the code's `rtol`, 1e-4.
    public var refitTolerance: Double = 1e-4

    /// The defaults above, except for the values given.
    public init(
      iterations: Int? = nil, rho: Double? = nil, damping: Double? = nil, refitIterations: Int? = nil,
      refitTolerance: Double? = nil
    ) {
      if let iterations { self.iterations = iterations }
      if let rho { self.rho = rho }
      if let damping { self.damping = damping }
      if let refitIterations { self.refitIterations = refitIterations }
      if let refitTolerance { self.refitTolerance = refitTolerance }
    }
  }

  /// The ρ schedule's constants, from the authors' code (not options: the paper fixes them).
  public enum Schedule {
    /// Iterations between support checks (`update_iter`).
    public static let updateInterval = 3
    /// Iteration after which a nearly still support stops ADMM (`switch_iter`).
    public static let switchIteration = 30
    /// c/k above which ρ grows by `fastGrowth` (1.3), and above which by `growth` (1.2).
    public static let fastChange = 0.1
    public static let fastGrowth = 1.3
    public static let change = 0.005
    public static let growth = 1.2
    /// Growth while any entry still changes, once ρ has grown (1.1).
    public static let slowGrowth = 1.1
    /// Division of ρ before it has first grown (5).
    public static let shrink = 5.0
    /// c/k below which ADMM stops after `switchIteration` (3·10⁻⁴).
    public static let stopChange = 0.0003
    /// The cap on ρ (10⁶).
    public static let rhoMax = 1e6
  }

  public var options: Options

  public init(options: Options = Options()) { self.options = options }

  /// Prunes to `pattern`. Supports error correction (the target is W·K with Gram G*).
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func prune<T: KernelScalar>(_ problem: LayerProblem<T>, pattern: SparsityPattern)
    throws(PruningError) -> PruningResult<T>
  {
    let start = ContinuousClock.now
    try pattern.check(columns: problem.inputs)
    precondition(
      options.iterations >= 0 && options.rho > 0 && options.damping >= 0 && options.refitIterations >= 0
        && options.refitTolerance >= 0)
    let m = problem.outputs
    let n = problem.inputs
    let count = m * n

    // Damping before normalisation, then d, G̃ = D⁻¹G_δD⁻¹, B₀ = W·D.
    let delta = options.damping * meanDiagonal(problem.gram)
    let d = (0..<n).map { T((Double(problem.gram[$0, $0]) + delta).squareRoot() + 1e-8) }
    let gTilde = Matrix<T>(rows: n, columns: n) { i, j in
      (problem.gram[i, j] + (i == j ? T(delta) : 0)) / (d[i] * d[j])
    }
    let b0 = Matrix<T>(rows: m, columns: n) { i, j in problem.weight[i, j] * d[j] }
    // Y = (W·K + δW)·D⁻¹; without error correction K = G*, so Y = B₀·G̃.
    var y: Matrix<T>
    if let k = problem.crossGram {
      y = matmul(problem.weight, k)
      for i in 0..<m { for j in 0..<n { y[i, j] = (y[i, j] + T(delta) * problem.weight[i, j]) / d[j] } }
    } else {
      y = matmul(b0, gTilde)
    }

    // (G̃ + ρI)⁻¹ from one Cholesky factorisation per ρ value.
    var worstRetry = 0.0
    func inverse(_ rho: Double) throws(PruningError) -> Matrix<T> {
      var a = gTilde
      for j in 0..<n { a[j, j] += T(rho) }
      let factor: CholeskyFactorization<T>
      do { factor = try cholesky(a, damping: .retry) } catch { throw .factorisationFailed(method: "alps", error) }
      worstRetry = max(worstRetry, Double(factor.addedDamping))
      return spdInverse(factor)
    }

    // Initial state: Z₀ = Π(B₀), Λ = 0.
    let initialMask = Self.project(b0, pattern: pattern)
    var z0 = b0
    initialMask.apply(to: &z0)
    let kept = count - initialMask.prunedCount
    var b = b0
    var z = z0
    var lambda = Matrix<T>(rows: m, columns: n)
    var rhs = Matrix<T>(rows: m, columns: n)
    var sum = Matrix<T>(rows: m, columns: n)
    var rho = options.rho
    var a = try inverse(rho)
    var factorisations = 1
    var grown = false
    var previous = initialMask
    var lastChange = Double.nan
    var performed = 0
    var restarts = 0

    for t in 0..<options.iterations {
      performed = t + 1
      // W-step: B = (Y − Λ + ρZ)·(G̃ + ρI)⁻¹.
      let r = T(rho)
      y.withUnsafeBufferPointer { py in
        lambda.withUnsafeBufferPointer { pl in
          z.withUnsafeBufferPointer { pz in
            rhs.withUnsafeMutableBufferPointer { pr in
              for idx in 0..<count { pr[idx] = py[idx] - pl[idx] + r * pz[idx] }
            }
          }
        }
      }
      gemm(rhs, a, into: &b)
      // D-step: Z = Π(B + Λ/ρ).
      b.withUnsafeBufferPointer { pb in
        lambda.withUnsafeBufferPointer { pl in
          sum.withUnsafeMutableBufferPointer { ps in for idx in 0..<count { ps[idx] = pb[idx] + pl[idx] / r } }
        }
      }
      let mask = Self.project(sum, pattern: pattern)
      z = sum
      mask.apply(to: &z)
      // Dual step: Λ = Λ + ρ(B − Z).
      b.withUnsafeBufferPointer { pb in
        z.withUnsafeBufferPointer { pz in
          lambda.withUnsafeMutableBufferPointer { pl in for idx in 0..<count { pl[idx] += r * (pb[idx] - pz[idx]) } }
        }
      }

      guard (t + 1) % Schedule.updateInterval == 0 else { continue }
      var changed = 0
      for idx in 0..<count where mask.kept[idx] != previous.kept[idx] { changed += 1 }
      let fraction = kept > 0 ? Double(changed) / Double(kept) : (changed > 0 ? .infinity : 0)
      lastChange = fraction
      let oldRho = rho
      if fraction > Schedule.fastChange {
        grown = true
        rho *= Schedule.fastGrowth
      } else if fraction > Schedule.change {
        grown = true
        rho *= Schedule.growth
      } else if changed > 0 {
        if grown {
          rho *= Schedule.slowGrowth
        } else {
          // ρ₀ was too large for the support to move: a smaller ρ, from the start again.
          rho /= Schedule.shrink
          b = b0
          z = z0
          lambda = Matrix<T>(rows: m, columns: n)
          restarts += 1
        }
      } else {
        if grown { break }
        rho /= Schedule.shrink
      }
      previous = mask
      rho = min(rho, Schedule.rhoMax)
      if rho != oldRho {
        a = try inverse(rho)
        factorisations += 1
      }
      if t >= Schedule.switchIteration && fraction < Schedule.stopChange { break }
    }

    // The final support: Π(B); the ADMM answer, then the CG refit on it.
    let mask = Self.project(b, pattern: pattern)
    var x = b
    mask.apply(to: &x)
    let admmWeight = Self.unscaled(x, d: d)
    let steps = refit(&x, gTilde: gTilde, y: y, mask: mask)

    return finishResult(
      method: .alps, problem: problem, pattern: pattern, weight: Self.unscaled(x, d: d), mask: mask, start: start
    ) { rep in
      rep.damping = delta
      rep.dampingRetry = worstRetry > 0 ? worstRetry : nil
      rep.iterations = performed
      rep.metrics["admm_error"] = problem.error(of: admmWeight)
      rep.metrics["final_rho"] = rho
      rep.metrics["factorisations"] = Double(factorisations)
      rep.metrics["restarts"] = Double(restarts)
      rep.metrics["refit_steps"] = Double(steps)
      if !lastChange.isNaN { rep.metrics["support_change"] = lastChange }
      rep.options = [
        "iterations": "\(options.iterations)", "rho": "\(options.rho)", "damping": "\(options.damping)",
        "refit_iterations": "\(options.refitIterations)", "refit_tolerance": "\(options.refitTolerance)",
      ]
    }
  }

  /// Conjugate gradients on G̃[S,S]·b_S = y_S for every row at once (S: the row's kept columns),
  /// from the masked `x`, the identity preconditioner (= Jacobi on G_δ). A row stops when
  /// ‖r_S‖ ≤ tolerance·‖y_S‖ or after `refitIterations` steps. Returns the most steps any row took.
  func refit<T: KernelScalar>(_ x: inout Matrix<T>, gTilde: Matrix<T>, y: Matrix<T>, mask: Mask) -> Int {
    let m = x.rows
    let n = x.columns
    guard options.refitIterations > 0, m > 0, n > 0 else { return 0 }
    let kept = mask.kept
    // R = (Y − X·G̃) ⊙ mask, P = R.
    var r = matmul(x, gTilde)
    y.withUnsafeBufferPointer { py in
      r.withUnsafeMutableBufferPointer { pr in
        for idx in 0..<(m * n) { pr[idx] = kept[idx] ? py[idx] - pr[idx] : 0 }
      }
    }
    var p = r
    var q = Matrix<T>(rows: m, columns: n)
    var rr = [Double](repeating: 0, count: m)
    var limit = [Double](repeating: 0, count: m)
    var active = [Bool](repeating: true, count: m)
    for i in 0..<m {
      var yy = 0.0
      for j in 0..<n where kept[i * n + j] {
        yy += Double(y[i, j]) * Double(y[i, j])
        rr[i] += Double(r[i, j]) * Double(r[i, j])
      }
      limit[i] = options.refitTolerance * options.refitTolerance * yy
      if rr[i] <= limit[i] { active[i] = false }
    }
    var steps = 0
    for _ in 0..<options.refitIterations {
      guard active.contains(true) else { break }
      steps += 1
      gemm(p, gTilde, into: &q)  // Q = P·G̃ (G̃ symmetric)
      x.withUnsafeMutableBufferPointer { px in
        r.withUnsafeMutableBufferPointer { pr in
          p.withUnsafeMutableBufferPointer { pp in
            q.withUnsafeBufferPointer { pq in
              for i in 0..<m where active[i] {
                let row = i * n
                var pGp = 0.0
                for j in row..<(row + n) where kept[j] { pGp += Double(pp[j]) * Double(pq[j]) }
                guard pGp > 0 else {
                  active[i] = false
                  continue
                }
                let alpha = T(rr[i] / pGp)
                var next = 0.0
                for j in row..<(row + n) where kept[j] {
                  px[j] += alpha * pp[j]
                  pr[j] -= alpha * pq[j]
                  next += Double(pr[j]) * Double(pr[j])
                }
                let beta = T(rr[i] > 0 ? next / rr[i] : 0)
                rr[i] = next
                if next <= limit[i] { active[i] = false }
                for j in row..<(row + n) where kept[j] { pp[j] = pr[j] + beta * pp[j] }
              }
            }
          }
        }
      }
    }
    return steps
  }

  /// Π_𝒮: the mask keeping the largest |values| of the pattern (exact counts, ties by index).
  static func project<T: KernelScalar>(_ values: Matrix<T>, pattern: SparsityPattern) -> Mask {
    Mask.pruningLowest(values.map { $0.magnitude }, pattern: pattern)
  }

  /// Ŵ = B·D⁻¹.
  static func unscaled<T: KernelScalar>(_ b: Matrix<T>, d: [T]) -> Matrix<T> {
    Matrix<T>(rows: b.rows, columns: b.columns) { i, j in b[i, j] / d[j] }
  }
}
