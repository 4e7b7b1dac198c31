/// Minimises ‖X*Ŵᵀ − XWᵀ‖²_F + ρ₀‖(Ŵ − W)D‖²_F subject to Ŵ having the sparsity pattern, by
/// scaled ADMM with gradual mask selection (Boža, "Fast and Effective Weight Update for Pruned
/// Large Language Models", TMLR 2024, arXiv 2401.02938; repo fmfi-compbio/admm-pruning).
///
/// Everything happens in the Jacobi-preconditioned space (Docs/methods/admm.md#derivation), rows of
/// W as rows:
///
///     dⱼ = √G*ⱼⱼ + 1e-8,   Ĝ = D⁻¹G*D⁻¹ (unit diagonal),   V₀ = W·D  (|V₀ᵢⱼ| = Wanda's score)
///     ρ₀ = damping · mean(diag Ĝ),   B = W·K·D⁻¹ + ρ₀V₀   (= V₀(Ĝ + ρ₀I) when K = G*)
///     A = (Ĝ + ρ₀I + ρI)⁻¹                                   (one factorisation per layer)
///
/// The objective in V = ŴD is f(V) = ½tr(VĜVᵀ) − tr(W·K·D⁻¹·Vᵀ) + ρ₀/2‖V − V₀‖² (half the error
/// plus the ridge, constants dropped; its gradient is V(Ĝ + ρ₀I) − B), whose minimiser over
/// V = Z with Z in the pattern set is sought by scaled ADMM, V ← V₀, U ← 0, for t = 0…iters−1:
///
///     if t < P:  mask ← SELECT(|V + U|, t)        (P = maskIterations, the cubic schedule)
///     Z ← (V + U) ⊙ mask                            projection onto the pattern
///     U ← U + V − Z                                 scaled dual ascent
///     V ← (B + ρ(Z − U))·A                          x-update: argmin f(V) + ρ/2‖V − Z + U‖²
///
/// and the answer is Ŵ = ((V + U) ⊙ mask)·D⁻¹ — the exactly sparse Z, never V.
///
/// SELECT prunes the lowest |V + U| to the sparsity sₜ = s − s·(1 − (t+1)/P)³, which reaches the
/// target s at t = P − 1 (exact counts, ties by index). N:M: the N lowest of every group are the
/// candidates, and the lowest ⌊numel·sₜ⌋ candidates over the matrix are pruned, so the final mask
/// is exactly N:M. The released code differs in three documented ways
/// (Docs/methods/admm.md#the-authors-code-and-where-prunekit-differs), two of which PruneKit does
/// not copy: its N:M path is hard-coded to 2:4 (here any N:M), and its unstructured per-matrix path
/// selects the full sparsity at every step (`Schedule.final` reproduces that; the cubic schedule of
/// the paper is the default).
///
/// Numerics. A = (Ĝ + (ρ₀ + ρ)I)⁻¹ is formed once from its Cholesky factor: Ĝ has a unit diagonal,
/// so with the defaults the matrix's eigenvalues lie in [1.1, n + 1.1] and the inverse is well
/// conditioned; the x-update is then one GEMM per iteration.
public struct ADMM: Sendable {
  /// The mask schedule of the first `maskIterations` iterations.
  public enum Schedule: String, Sendable, CaseIterable {
    /// sₜ = s − s(1 − (t+1)/P)³: the paper's gradual pruning.
    case cubic
    /// sₜ = s at every step: the released code's unstructured default path.
    case final
  }

  /// The options and their defaults (`MethodOption` declares their command-line names).
  public struct Options: Sendable, Equatable {
    /// ADMM iterations: the released code's `iters`, 20.
    public var iterations: Int = 20
    /// Iterations that re-select the mask: `iterative_prune`, 15 (0: the mask of |V₀| once).
    public var maskIterations: Int = 15
    /// Penalty ρ of the augmented Lagrangian: 1, fixed (the code has no schedule).
    public var rho: Double = 1
    /// ρ₀ as a fraction of mean(diag Ĝ) = 1: `percdamp`, 0.1 (ten times SparseGPT's).
    public var damping: Double = 0.1
    /// The sparsity of the mask iterations: the paper's cubic ramp.
    public var maskSchedule: Schedule = .cubic

    /// The defaults above, except for the values given.
    public init(
      iterations: Int? = nil, maskIterations: Int? = nil, rho: Double? = nil, damping: Double? = nil,
      maskSchedule: Schedule? = nil
    ) {
      if let iterations { self.iterations = iterations }
      if let maskIterations { self.maskIterations = maskIterations }
      if let rho { self.rho = rho }
      if let damping { self.damping = damping }
      if let maskSchedule { self.maskSchedule = maskSchedule }
    }
  }

  public var options: Options

  public init(options: Options = Options()) { self.options = options }

  /// Prunes to `pattern`, choosing the mask by the schedule, or keeping `fixedMask` throughout
  /// (the ADMM weight update on another method's mask). On a fixed mask it converges to the
  /// masked least squares with the per-column ridge ρ₀dⱼ² in the original space (ρ₀ uniform in the
  /// scaled space), not to `Refit`'s uniform δ.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func prune<T: KernelScalar>(_ problem: LayerProblem<T>, pattern: SparsityPattern, fixedMask: Mask? = nil)
    throws(PruningError) -> PruningResult<T>
  {
    let start = ContinuousClock.now
    try pattern.check(columns: problem.inputs)
    precondition(options.iterations >= 0 && options.maskIterations >= 0 && options.rho > 0)
    let m = problem.outputs
    let n = problem.inputs
    if let fixedMask, fixedMask.rows != m || fixedMask.columns != n {
      throw .maskMismatch(
        detail: "mask [\(fixedMask.rows) × \(fixedMask.columns)] for a weight \(problem.weight.shapeDescription)")
    }

    // Preconditioning: d, Ĝ = D⁻¹G*D⁻¹, V₀ = W·D.
    let d = (0..<n).map { T(Double(problem.gram[$0, $0]).squareRoot() + 1e-8) }
    var gHat = Matrix<T>(rows: n, columns: n) { i, j in problem.gram[i, j] / (d[i] * d[j]) }
    let v0 = Matrix<T>(rows: m, columns: n) { i, j in problem.weight[i, j] * d[j] }
    let rho0 = options.damping * meanDiagonal(gHat)
    // B = W·K·D⁻¹ + ρ₀V₀; without error correction K = G*, so W·K·D⁻¹ = V₀·Ĝ.
    var b: Matrix<T>
    if let k = problem.crossGram {
      b = matmul(problem.weight, k)
      for i in 0..<m { for j in 0..<n { b[i, j] /= d[j] } }
    } else {
      b = matmul(v0, gHat)
    }
    b.withUnsafeMutableBufferPointer { pb in
      v0.withUnsafeBufferPointer { pv in for idx in 0..<(m * n) { pb[idx] += T(rho0) * pv[idx] } }
    }
    // A = (Ĝ + ρ₀I + ρI)⁻¹ from one Cholesky factorisation.
    for j in 0..<n { gHat[j, j] += T(rho0 + options.rho) }
    let factor: CholeskyFactorization<T>
    do { factor = try cholesky(gHat, damping: .retry) } catch { throw .factorisationFailed(method: "admm", error) }
    let a = spdInverse(factor)

    // Iterations.
    let rho = T(options.rho)
    let maskSteps = fixedMask == nil ? min(options.maskIterations, options.iterations) : 0
    var mask = fixedMask ?? (maskSteps == 0 ? select(v0, pattern: pattern, step: nil) : Mask(rows: m, columns: n))
    var v = v0
    var u = Matrix<T>(rows: m, columns: n)
    var r = Matrix<T>(rows: m, columns: n)
    for t in 0..<options.iterations {
      if t < maskSteps {
        var sum = v
        sum.withUnsafeMutableBufferPointer { ps in
          u.withUnsafeBufferPointer { pu in for idx in 0..<(m * n) { ps[idx] += pu[idx] } }
        }
        mask = select(sum, pattern: pattern, step: (t, maskSteps))
      }
      let kept = mask.kept
      v.withUnsafeBufferPointer { pv in
        b.withUnsafeBufferPointer { pb in
          u.withUnsafeMutableBufferPointer { pu in
            r.withUnsafeMutableBufferPointer { pr in
              for idx in 0..<(m * n) {
                let vu = pv[idx] + pu[idx]
                let zi = kept[idx] ? vu : 0  // Z = (V + U) ⊙ mask
                let ui = vu - zi  // U + V − Z
                pu[idx] = ui
                pr[idx] = pb[idx] + rho * (zi - ui)  // B + ρ(Z − U)
              }
            }
          }
        }
      }
      gemm(r, a, into: &v)
    }
    var w = Matrix<T>(rows: m, columns: n)
    for i in 0..<m {
      for j in 0..<n where mask[i, j] { w[i, j] = (v[i, j] + u[i, j]) / d[j] }
    }
    return finishResult(method: .admm, problem: problem, pattern: pattern, weight: w, mask: mask, start: start) { rep in
      if fixedMask != nil { rep.pattern = pattern.description + " (given mask)" }
      rep.damping = rho0
      rep.dampingRetry = factor.addedDamping > 0 ? Double(factor.addedDamping) : nil
      rep.iterations = options.iterations
      rep.options = [
        "iterations": "\(options.iterations)", "mask_iterations": "\(options.maskIterations)",
        "rho": "\(options.rho)", "damping": "\(options.damping)", "mask_schedule": options.maskSchedule.rawValue,
        "fixed_mask": "\(fixedMask != nil)",
      ]
    }
  }

  /// SELECT: the mask pruning the lowest |scores| to the sparsity of step `t` of `steps` (the
  /// full pattern when `step` is nil or at the last step).
  func select<T: KernelScalar>(_ values: Matrix<T>, pattern: SparsityPattern, step: (t: Int, steps: Int)?) -> Mask {
    let magnitudes = values.map { $0.magnitude }
    var fraction = 1.0  // sₜ / s
    if let step, step.t < step.steps - 1, options.maskSchedule == .cubic {
      let x = 1 - Double(step.t + 1) / Double(step.steps)
      fraction = 1 - x * x * x
    }
    if fraction >= 1 { return Mask.pruningLowest(magnitudes, pattern: pattern) }
    let m = values.rows
    let n = values.columns
    switch pattern {
    case .unstructured(let ratio, let group):
      let partial = SparsityPattern.unstructured(ratio: ratio * fraction, group: group)
      return Mask.pruningLowest(magnitudes, pattern: partial)
    case .nOfM:
      // Candidates: the N lowest of each group; prune the ⌊numel·sₜ⌋ lowest candidates.
      let candidates = Mask.pruningLowest(magnitudes, pattern: pattern)
      let k = Int((pattern.ratio * fraction * Double(m * n)).rounded(.down))
      let pool = (0..<(m * n)).filter { !candidates.kept[$0] }
      var kept = [Bool](repeating: true, count: m * n)
      for idx in lowest(k, of: pool, scores: { Double(magnitudes.elements[$0]) }) { kept[idx] = false }
      return Mask(rows: m, columns: n, kept: kept)
    }
  }
}
