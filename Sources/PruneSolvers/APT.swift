/// Minimises ‖X*Ŵᵀ − XWᵀ‖²_F by removing several weights at once, optimally: the closed-form
/// solution of the Multiple Removal Problem, applied block by block (after Zhao et al., "Pruning
/// Foundation Models for High Accuracy without Retraining", EMNLP 2024 Findings, arXiv
/// 2410.15567). The blockwise algorithm is reconstructed [INF,
/// Docs/methods/apt.md#reconstructed-inf-and-open-questions]: the authors' repository holds no
/// code.
///
/// The Multiple Removal Problem. For one row w, Hessian H = G* + δI, free columns F and pruned
/// set P ⊆ F, the smallest increase of δw H δwᵀ subject to (w + δw)_P = 0 is reached at
///
///     δw_F = −w_P [H_F⁻¹]_PP⁻¹ [H_F⁻¹]_{P,F},      ΔE = w_P [H_F⁻¹]_PP⁻¹ w_Pᵀ,
///
/// the Lagrange solution; with F = all columns it is the exact masked least squares (Refit with
/// the same δ when X* = X; under error correction APT, like SparseGPT, starts from W₀ = W·K·H⁻¹ and
/// its ridge pulls toward 0 rather than toward W, so the two agree only for δ = 0).
/// SparseGPT is the |P| = 1 case applied one column at a time.
///
/// The Cholesky trick. With U upper triangular, H⁻¹ = UᵀU, the inverse of H restricted to the
/// trailing columns F = [g, n) is U_FFᵀU_FF; for P inside a unit B = [g, g + |B|) at the start of F,
/// the sums over F collapse to B (U is upper triangular), so with A = U_{B,P} (`|B| × |P|`):
///
///     [H_F⁻¹]_PP = AᵀA,   [H_F⁻¹]_{P,F} = Aᵀ U_{B,F},
///     δw_F = c · U_{B,F},   c = −w_P (AᵀA)⁻¹ Aᵀ  (1 × |B|),   ΔE = w_P (AᵀA)⁻¹ w_Pᵀ.
///
/// Steps (in Double; the set-up is SparseGPT's: dead inputs, δ = damping·mean(diag G*), the
/// error-corrected start W₀ = W·K·H⁻¹, U = chol_upper(H⁻¹)):
///   for each block [i1, i2) of `blockSize` columns (the unit B):
///     1. the mask in B: SparseGPT's scores wⱼ²/Uⱼⱼ² on the current weights, with exact cumulative
///        counts (or the given mask). N:M works group by group, each group being the unit B:
///        `subsetChoice` exhaustive tries all C(M, N) subsets per row and keeps the smallest ΔE
///        (the optimal choice given the frozen prefix); `scores` takes the N lowest scores
///     2. per row: solve the |P| × |P| system (AᵀA) y = w_Pᵀ by Cholesky, c = −(A y)ᵀ,
///        W[r, B…i2) += c · U[B, B…i2), W[r, P] = 0 exactly; loss += ΔE
///     3. lazily, for the columns right of the block: W[:, i2…) += E · U[i1…i2, i2…) (one GEMM),
///        E stacking the c of every row
/// With one block covering every column APT equals Refit on its mask (tested). The sum of the ΔE
/// equals (Ŵ − W₀)H(Ŵ − W₀)ᵀ summed over rows (`metrics["mrp_loss"]`, tested).
public struct APT: Sendable {
  /// How N:M chooses the pruned subset of a group.
  public enum SubsetChoice: String, Sendable, CaseIterable {
    /// Every C(M, N) subset, the smallest exact loss ΔE (2:4: six 2 × 2 solves per row and group).
    case exhaustive
    /// The N lowest SparseGPT scores (what SparseGPT does).
    case scores
  }

  /// The options and their defaults (`MethodOption` declares their command-line names).
  public struct Options: Sendable, Equatable {
    /// Columns per block (SparseGPT's 128; APT's are not published:
    /// Docs/methods/apt.md#options-and-defaults). N:M rounds it down to a multiple of M (at least
    /// M): groups never straddle blocks.
    public var blockSize: Int = 128
    /// δ as a fraction of mean(diag G*): SparseGPT's percdamp, 0.01.
    public var damping: Double = 0.01
    /// How N:M chooses each group's pruned subset: every subset's exact loss.
    public var subset: SubsetChoice = .exhaustive

    /// The defaults above, except for the values given.
    public init(blockSize: Int? = nil, damping: Double? = nil, subset: SubsetChoice? = nil) {
      if let blockSize { self.blockSize = blockSize }
      if let damping { self.damping = damping }
      if let subset { self.subset = subset }
    }
  }

  public var options: Options

  public init(options: Options = Options()) { self.options = options }

  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func prune<T: KernelScalar>(_ problem: LayerProblem<T>, pattern: SparsityPattern, fixedMask: Mask? = nil)
    throws(PruningError) -> PruningResult<T>
  {
    let start = ContinuousClock.now
    try pattern.check(columns: problem.inputs)
    precondition(options.blockSize >= 1, "APT: blockSize must be ≥ 1")
    let m = problem.outputs
    let n = problem.inputs
    if let fixedMask, fixedMask.rows != m || fixedMask.columns != n {
      throw .maskMismatch(
        detail: "mask [\(fixedMask.rows) × \(fixedMask.columns)] for a weight \(problem.weight.shapeDescription)")
    }
    var setup = try OBSSetup(problem, damping: options.damping, method: "apt")
    var w = setup.takeWeight()
    var u = setup.takeU()
    let delta = setup.delta
    let dead = setup.deadInputs

    var mask = Mask(rows: m, columns: n)
    let total = pattern.prunedCount(rows: m, columns: n)
    let perRow = pattern.prunedCount(rows: 1, columns: n)
    var loss = 0.0
    var systemRetry = 0.0  // extra damping any |P| × |P| system AᵀA needed (0: none)
    let blockSize = pattern.wholeGroups(options.blockSize)
    for i1 in stride(from: 0, to: n, by: blockSize) {
      let i2 = min(i1 + blockSize, n)
      let width = i2 - i1
      var err = Matrix<Double>(rows: m, columns: width)
      // The units of this block: the block itself, or its N:M groups.
      var units: [Range<Int>] = [i1..<i2]
      if case .nOfM(_, let mm) = pattern { units = stride(from: i1, to: i2, by: mm).map { $0..<($0 + mm) } }
      for unit in units {
        // 1. The pruned set of every row in this unit.
        var pruned = [[Int]](repeating: [], count: m)
        func score(_ i: Int, _ j: Int) -> Double {
          let v = w[i, j] / u[j, j]
          return v * v
        }
        if let fixedMask {
          for i in 0..<m { pruned[i] = unit.filter { !fixedMask[i, $0] } }
        } else {
          switch pattern {
          case .unstructured(_, .matrix):
            let k = cumulativeShare(total: total, columns: n, from: unit.lowerBound, to: unit.upperBound)
            let all = (0..<m).flatMap { i in unit.map { i * n + $0 } }
            for idx in lowest(k, of: all, scores: { score($0 / n, $0 % n) }).sorted() {
              pruned[idx / n].append(idx % n)
            }
          case .unstructured(_, .row):
            let k = cumulativeShare(total: perRow, columns: n, from: unit.lowerBound, to: unit.upperBound)
            for i in 0..<m { pruned[i] = lowest(k, of: Array(unit), scores: { score(i, $0) }).sorted() }
          case .nOfM(let nn, _):
            for i in 0..<m {
              if options.subset == .scores {
                pruned[i] = lowest(nn, of: Array(unit), scores: { score(i, $0) }).sorted()
              } else {
                var bestLoss = Double.infinity
                for subset in combinations(of: Array(unit), choose: nn) {
                  let trial = try removal(w: w, row: i, pruned: subset, unit: unit, u: u)
                  let l = trial.loss
                  systemRetry = max(systemRetry, trial.retry)
                  if l < bestLoss {
                    bestLoss = l
                    pruned[i] = subset
                  }
                }
              }
            }
          }
        }
        // 2. The optimal joint removal per row over the free columns [unit start, i2).
        for i in 0..<m where !pruned[i].isEmpty {
          let r = try removal(w: w, row: i, pruned: pruned[i], unit: unit, u: u)
          systemRetry = max(systemRetry, r.retry)
          loss += r.loss
          for (p, b) in unit.enumerated() {
            let cb = r.coefficients[p]
            if cb == 0 { continue }
            err[i, b - i1] += cb
            for j in b..<i2 { w[i, j] += cb * u[b, j] }
          }
          for j in pruned[i] {
            w[i, j] = 0
            mask[i, j] = false
          }
        }
      }
      // 3. Lazy batch update of the columns right of the block.
      if i2 < n {
        err.withUnsafeBufferPointer { pe in
          u.withUnsafeBufferPointer { pu in
            w.withUnsafeMutableBufferPointer { pw in
              gemm(
                transposeA: false, transposeB: false, m: m, n: n - i2, k: width, alpha: 1,
                a: pe.baseAddress!, lda: width, b: pu.baseAddress! + i1 * n + i2, ldb: n,
                beta: 1, c: pw.baseAddress! + i2, ldc: n)
            }
          }
        }
      }
    }
    if let fixedMask { precondition(mask == fixedMask, "APT: the given mask was not followed") }
    // The sweep is done: U (n × n) and the Double W are dropped before the error is evaluated.
    u = Matrix(rows: 0, columns: 0)
    let pruned = w.converted(to: T.self)
    w = Matrix(rows: 0, columns: 0)
    return finishResult(
      method: .apt, problem: problem, pattern: pattern, weight: pruned, mask: mask, start: start
    ) { r in
      if fixedMask != nil { r.pattern = pattern.description + " (given mask)" }
      r.damping = delta
      r.dampingRetry = setup.addedDamping > 0 ? setup.addedDamping : nil
      r.metrics = ["mrp_loss": loss, "dead_inputs": Double(dead)]
      setup.reportInverseRetry(&r)
      if systemRetry > 0 {
        r.metrics["mrp_system_damping_retry"] = systemRetry
        r.notes.append(
          "a removal system AᵀA was numerically singular and was damped by up to \(systemRetry) (in H⁻¹ units)")
      }
      r.options = [
        "block_size": "\(options.blockSize)", "damping": "\(options.damping)", "subset": options.subset.rawValue,
      ]
    }
  }

  /// The MRP solution for row `row` pruning `pruned` ⊆ `unit`: c (one coefficient per unit
  /// column, δw_F = c·U_{unit,F}) and ΔE = w_P (AᵀA)⁻¹ w_Pᵀ with A = U[unit, P].
  func removal(w: Matrix<Double>, row: Int, pruned: [Int], unit: Range<Int>, u: Matrix<Double>)
    throws(PruningError) -> (coefficients: [Double], loss: Double, retry: Double)
  {
    let k = pruned.count
    var s = Matrix<Double>(rows: k, columns: k)  // AᵀA
    for p in 0..<k {
      for q in p..<k {
        var acc = 0.0
        for b in unit { acc += u[b, pruned[p]] * u[b, pruned[q]] }
        s[p, q] = acc
        s[q, p] = acc
      }
    }
    var wp = Matrix<Double>(rows: k, columns: 1)
    for p in 0..<k { wp[p, 0] = w[row, pruned[p]] }
    // AᵀA is SPD in exact arithmetic (A has full column rank: U's diagonal is positive); `.retry`
    // guards against rounding when U spans many orders of magnitude (an ill-conditioned H).
    let factor: CholeskyFactorization<Double>
    do { factor = try cholesky(s, damping: .retry, threads: 1) } catch {
      throw .factorisationFailed(
        method: "apt (row \(row), pruning columns \(pruned) of [\(unit.lowerBound), \(unit.upperBound)))", error)
    }
    let y = choleskySolve(factor, wp)  // (AᵀA)⁻¹ w_Pᵀ
    var lossValue = 0.0
    for p in 0..<k { lossValue += wp[p, 0] * y[p, 0] }
    let coefficients = unit.map { b in
      var acc = 0.0
      for p in 0..<k { acc += u[b, pruned[p]] * y[p, 0] }
      return -acc
    }
    return (coefficients, lossValue, Double(factor.addedDamping))
  }
}

/// Every k-element subset of `items`, in lexicographic order of positions.
func combinations(of items: [Int], choose k: Int) -> [[Int]] {
  guard k > 0 else { return [[]] }
  guard k <= items.count else { return [] }
  var out: [[Int]] = []
  var chosen: [Int] = []
  func extend(_ from: Int) {
    if chosen.count == k {
      out.append(chosen)
      return
    }
    if items.count - from < k - chosen.count { return }
    for p in from..<items.count {
      chosen.append(items[p])
      extend(p + 1)
      chosen.removeLast()
    }
  }
  extend(0)
  return out
}
