/// Minimises ‖X*Ŵᵀ − XWᵀ‖²_F approximately by Optimal Brain Surgeon steps: one input column at a
/// time, the pruned weights of that column are removed and the error is compensated on the columns
/// not yet visited (Frantar & Alistarh, "SparseGPT: Massive Language Models Can Be Accurately
/// Pruned in One-Shot", ICML 2023, arXiv 2301.00774).
///
/// With H = G* + δI (the Hessian of the row objective, damped) and U upper triangular with
/// H⁻¹ = UᵀU, row j of U is row j of the inverse Hessian of the columns j…n−1 divided by the
/// square root of its diagonal, so removing weight w_j optimally over the free columns F_j is
///
///     δw_{F_j} = −(w_j / U_jj) · U_{j, F_j},      loss_j = ½ (w_j / U_jj)².
///
/// Steps (Docs/methods/sparsegpt.md#steps-all-in-double, in Double whatever T is):
///   0. W₀ = W; under error correction W₀ = (W·K)(G* + δI)⁻¹, the dense optimum of the corrected
///      objective, so that pruning starts from the best dense weights for the inputs X* [INF].
///   1. dead inputs: Gⱼⱼ = 0 → Hⱼⱼ = 1 and W[:, j] = 0 (they cost nothing and are pruned first)
///   2. δ = damping · mean(diag G*); H = G* + δI; U = chol_upper(H⁻¹). The mean is taken over
///      the original diagonal (dead inputs count 0); the reference averages after setting dead
///      entries to 1, which is not invariant to the scale of G (APT does the same as here)
///   3. for each block [i1, i2) of `blockSize` columns:
///        a. unstructured: scores W²/diag(U)² over the block; prune the lowest ones (the count of
///           this block, see below); N:M: decided just in time at each group start, per row, on
///           the already-updated weights
///        b. for j in the block: q = W[:, j] with pruned rows zeroed; e = (W[:, j] − q)/U_jj;
///           W[:, j…i2) −= e ⊗ U[j, j…i2); loss += ½ Σ e²
///        c. lazy batch: W[:, i2…) −= E · U[i1…i2, i2…)   (one GEMM)
///
/// Counts. The reference thresholds each m × 128 block at sorted(score)[⌊s·m·128⌋] and prunes
/// `score ≤ threshold`: ⌊s·m·128⌋ + 1 entries plus ties per block
/// (Docs/methods/README.md#patterns-groups-and-exact-counts). PruneKit prunes exactly: block b gets
/// ⌊K·i2/n⌋ − ⌊K·i1/n⌋ of the K = ⌊s·m·n⌋ weights (per row for the `.row` group), so the totals are
/// exact; `CountRule.reference` reproduces the original.
///
/// The accumulated loss equals ½ Σᵢ (ŵᵢ − w₀ᵢ) H (ŵᵢ − w₀ᵢ)ᵀ exactly in exact arithmetic (OBS steps
/// are exact on a quadratic); it is returned as `metrics["obs_loss"]` and tested.
///
/// Corresponds to `SparseGPT.fasterprune` in IST-DASLab/sparsegpt `sparsegpt.py`; mapped line by
/// line in Docs/methods/sparsegpt.md.
public struct SparseGPT: Sendable {
  /// How many weights a block prunes.
  public enum CountRule: String, Sendable, CaseIterable {
    /// Cumulative shares of the exact total (the default).
    case exact
    /// The reference's `score ≤ sorted(score)[⌊s·m·B⌋]`: one more per block, plus ties.
    case reference
  }

  /// The options and their defaults (`MethodOption` declares their command-line names).
  public struct Options: Sendable, Equatable {
    /// Columns per lazy batch (the reference's `blocksize`, 128). N:M needs it to be a multiple of M.
    public var blockSize: Int = 128
    /// δ as a fraction of mean(diag G*): the reference's `percdamp`, 0.01.
    public var damping: Double = 0.01
    /// Exact counts (default) or the reference's per-block threshold.
    public var countRule: CountRule = .exact

    /// The defaults above, except for the values given.
    public init(blockSize: Int? = nil, damping: Double? = nil, countRule: CountRule? = nil) {
      if let blockSize { self.blockSize = blockSize }
      if let damping { self.damping = damping }
      if let countRule { self.countRule = countRule }
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
    if case .nOfM(let nn, let mm) = pattern, options.blockSize % mm != 0 {
      throw .invalidOption(
        name: MethodOption.blockSize.cliName,
        detail:
          "\(options.blockSize) is not a multiple of M = \(mm), which \(nn):\(mm) needs (the reference's rule: groups must not straddle lazy batches)"
      )
    }
    let m = problem.outputs
    let n = problem.inputs
    // Steps 0–2: dead inputs, damping, the corrected start and U (shared with APT).
    var setup = try OBSSetup(problem, damping: options.damping, method: "sparsegpt")
    var w = setup.takeWeight()
    var u = setup.takeU()
    let delta = setup.delta
    let dead = setup.deadInputs

    // 3. Column sweep in blocks.
    var mask = Mask(rows: m, columns: n)
    var loss = 0.0
    let total = pattern.prunedCount(rows: m, columns: n)
    let perRow = pattern.prunedCount(rows: 1, columns: n)
    let bs = options.blockSize
    for i1 in stride(from: 0, to: n, by: bs) {
      let i2 = min(i1 + bs, n)
      let width = i2 - i1
      // W1 = W[:, i1..<i2], Err1 = E.
      var w1 = w.submatrix(rows: 0..<m, columns: i1..<i2)
      var err = Matrix<Double>(rows: m, columns: width)
      var prunedInBlock = [Bool](repeating: false, count: m * width)
      let diag = (0..<width).map { u[i1 + $0, i1 + $0] }
      func score(_ i: Int, _ c: Int) -> Double {
        let v = w1[i, c] / diag[c]
        return v * v
      }

      // 3a. Unstructured mask of the block.
      switch pattern {
      case .unstructured(_, .matrix):
        let all = Array(0..<(m * width))
        if options.countRule == .reference {
          let k = Int((pattern.ratio * Double(m * width)).rounded(.down))
          let sorted = all.map { score($0 / width, $0 % width) }.sorted()
          if !sorted.isEmpty {
            let threshold = sorted[min(k, sorted.count - 1)]
            for idx in all where score(idx / width, idx % width) <= threshold { prunedInBlock[idx] = true }
          }
        } else {
          let k = cumulativeShare(total: total, columns: n, from: i1, to: i2)
          for idx in lowest(k, of: all, scores: { score($0 / width, $0 % width) }) { prunedInBlock[idx] = true }
        }
      case .unstructured(_, .row):
        let k = cumulativeShare(total: perRow, columns: n, from: i1, to: i2)
        for i in 0..<m {
          for idx in lowest(k, of: Array((i * width)..<((i + 1) * width)), scores: { score(i, $0 - i * width) }) {
            prunedInBlock[idx] = true
          }
        }
      case .nOfM:
        break
      }

      // 3b. OBS steps inside the block.
      for j in 0..<width {
        if case .nOfM(let nn, let mm) = pattern, j % mm == 0 {
          for i in 0..<m {
            let group = Array((i * width + j)..<(i * width + j + mm))
            for idx in lowest(nn, of: group, scores: { score(i, $0 - i * width) }) { prunedInBlock[idx] = true }
          }
        }
        let d = diag[j]
        let uRow = (j..<width).map { u[i1 + j, i1 + $0] }  // U[j, j..<i2]
        w1.withUnsafeMutableBufferPointer { pw in
          err.withUnsafeMutableBufferPointer { pe in
            for i in 0..<m {
              let row = pw.baseAddress! + i * width
              let wij = row[j]
              let q = prunedInBlock[i * width + j] ? 0 : wij
              let e = (wij - q) / d
              loss += 0.5 * e * e
              pe[i * width + j] = e
              if e != 0 {
                for c in j..<width { row[c] -= e * uRow[c - j] }
              }
              row[j] = q
            }
          }
        }
      }
      for i in 0..<m {
        for c in 0..<width {
          w[i, i1 + c] = w1[i, c]
          if prunedInBlock[i * width + c] { mask[i, i1 + c] = false }
        }
      }
      // 3c. Lazy batch update of the columns right of the block.
      if i2 < n {
        err.withUnsafeBufferPointer { pe in
          u.withUnsafeBufferPointer { pu in
            w.withUnsafeMutableBufferPointer { pw in
              gemm(
                transposeA: false, transposeB: false, m: m, n: n - i2, k: width, alpha: -1,
                a: pe.baseAddress!, lda: width, b: pu.baseAddress! + i1 * n + i2, ldb: n,
                beta: 1, c: pw.baseAddress! + i2, ldc: n)
            }
          }
        }
      }
    }
    // The sweep is done: U (n × n) and the Double W are dropped before the error is evaluated,
    // which needs its own Double copies of G and W.
    u = Matrix(rows: 0, columns: 0)
    let pruned = w.converted(to: T.self)
    w = Matrix(rows: 0, columns: 0)
    return finishResult(
      method: .sparsegpt, problem: problem, pattern: pattern, weight: pruned, mask: mask, start: start
    ) { r in
      r.damping = delta
      r.dampingRetry = setup.addedDamping > 0 ? setup.addedDamping : nil
      r.metrics = ["obs_loss": loss, "dead_inputs": Double(dead)]
      setup.reportInverseRetry(&r)
      r.options = [
        "block_size": "\(options.blockSize)", "damping": "\(options.damping)", "count_rule": options.countRule.rawValue,
      ]
    }
  }
}

/// The set-up SparseGPT and APT share (steps 0–2 of SparseGPT): in Double,
///   1. dead inputs (G*ⱼⱼ = 0): Hⱼⱼ = 1 and W[:, j] = 0
///   2. δ = damping · mean(diag G*) (over the original diagonal); H = G* + δI, factored
///   0. under error correction the start W₀ = (W·K)·H⁻¹, dead columns zeroed again
///   U = chol_upper(H⁻¹), the rows of which give every OBS step
struct OBSSetup {
  /// Reports a retry of H⁻¹'s Cholesky (it happens only when H is nearly singular), so that no
  /// damping is silent.
  func reportInverseRetry(_ r: inout PruningReport) {
    guard inverseAddedDamping > 0 else { return }
    r.metrics["inverse_hessian_damping_retry"] = inverseAddedDamping
    r.notes.append(
      "H⁻¹ was numerically singular and its factorisation was damped by \(inverseAddedDamping) (in H⁻¹ units)")
  }

  /// W₀: the weights the column sweep starts from (`takeWeight()` hands it over).
  private(set) var weight: Matrix<Double>
  /// U, upper triangular with H⁻¹ = UᵀU (`takeU()` hands it over).
  private(set) var u: Matrix<Double>
  let delta: Double
  /// Extra damping H's Cholesky needed (0 when none).
  let addedDamping: Double
  /// Extra damping the Cholesky of H⁻¹ needed (0 when none; in H⁻¹'s units).
  let inverseAddedDamping: Double
  let deadInputs: Int

  /// W₀, moved out (the set-up keeps none of it), so that the sweep's W is the only copy.
  mutating func takeWeight() -> Matrix<Double> {
    defer { weight = Matrix(rows: 0, columns: 0) }
    return weight
  }

  /// U, moved out, so that the sweep can drop it (n × n Doubles) before the error is evaluated.
  mutating func takeU() -> Matrix<Double> {
    defer { u = Matrix(rows: 0, columns: 0) }
    return u
  }

  /// Memory: at most three n × n Doubles are alive at once — H's factor L, L⁻¹ and H⁻¹ =
  /// L⁻ᵀL⁻¹ while the inverse is formed. H itself is dropped once factored, L once H⁻¹ is formed,
  /// and H⁻¹ once U is (`ModelPruner.solverBytes` counts this).
  init<T: KernelScalar>(_ problem: LayerProblem<T>, damping: Double, method: String) throws(PruningError) {
    let m = problem.outputs
    let n = problem.inputs
    var w = problem.weight.converted(to: Double.self)
    var dead = 0
    let delta = damping * meanDiagonal(problem.gram)
    let uFactor: CholeskyFactorization<Double>
    do {
      let hInverse: Matrix<Double>
      do {
        let hFactor: CholeskyFactorization<Double>
        do {
          var h = problem.gram.converted(to: Double.self)
          for j in 0..<n where h[j, j] == 0 {
            h[j, j] = 1
            for i in 0..<m { w[i, j] = 0 }
            dead += 1
          }
          for j in 0..<n { h[j, j] += delta }
          do { hFactor = try cholesky(h, damping: .retry) } catch {
            throw .factorisationFailed(method: method, error)
          }
        }
        if let k = problem.crossGram {
          let c = matmul(problem.weight.converted(to: Double.self), k.converted(to: Double.self))
          w = choleskySolve(hFactor, c.transposed()).transposed()
          for j in 0..<n where problem.gram[j, j] == 0 { for i in 0..<m { w[i, j] = 0 } }
        }
        addedDamping = Double(hFactor.addedDamping)
        hInverse = spdInverse(hFactor)
      }
      do { uFactor = try cholesky(hInverse, damping: .retry) } catch {
        throw .factorisationFailed(method: "\(method) (inverse Hessian)", error)
      }
    }
    u = uFactor.lower.transposed()
    inverseAddedDamping = uFactor.addedDamping
    weight = w
    self.delta = delta
    deadInputs = dead
  }
}
