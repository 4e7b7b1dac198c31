/// Minimises ‖X*Ŵᵀ − XWᵀ‖²_F exactly over every mask of the pattern: enumerates each admissible
/// mask, refits its kept weights exactly, keeps the best. The oracle for tiny problems (n ≤ ~16).
///
/// Steps (Docs/methods/exact.md#derivation):
///   1. rows are independent for a fixed mask, so for every row i and every admissible row mask S
///      (per-row counts: C(n, k) masks; N:M: C(M, N)^{n/M}), solve the masked least squares
///          ŵ_S (G*[S,S] + δI) = (w K)_S + δ w_S,
///      and record the row error eᵢ(S) = ŵG*ŵᵀ − 2(wK)ŵᵀ + wGwᵀ
///   2. per-row budgets (`.row`, N:M): keep each row's best mask
///   3. a per-matrix budget of K pruned weights: bestᵢ(k) = min over masks of row i pruning k;
///      the rows' counts are combined by dynamic programming over rows,
///          D(i, κ) = min_k D(i − 1, κ − k) + bestᵢ(k),   answer D(m, K),
///      with ties going to the lexicographically first mask (deterministic)
/// δ = `damping`·mean(diag G*), 0 by default: the oracle's exact mode. The result has the
/// smallest error any method can reach on this pattern (up to the damping), which every other
/// method's test compares against.
public struct BruteForce: Sendable {
  /// The options and their defaults (`MethodOption` declares their command-line names).
  public struct Options: Sendable, Equatable {
    /// δ as a fraction of mean(diag G*): 0, the exact optimum.
    public var damping: Double = 0
    /// Refuses problems with more admissible masks per row (2^16 = 65536 for n = 16).
    public var maxMasks: Int = 100_000

    /// The defaults above, except for the values given.
    public init(damping: Double? = nil, maxMasks: Int? = nil) {
      if let damping { self.damping = damping }
      if let maxMasks { self.maxMasks = maxMasks }
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
    let m = problem.outputs
    let n = problem.inputs
    // The candidate pruned sets of one row, grouped by how many they prune.
    var candidates: [Int: [[Int]]] = [:]
    switch pattern {
    case .unstructured(_, .row):
      let k = pattern.prunedCount(rows: 1, columns: n)
      try checkSize(binomial(n, k), n: n)
      candidates[k] = combinations(of: Array(0..<n), choose: k)
    case .unstructured(_, .matrix):
      try checkSize(1 << min(n, 62), n: n)
      let total = pattern.prunedCount(rows: m, columns: n)
      for k in 0...min(n, total) { candidates[k] = combinations(of: Array(0..<n), choose: k) }
    case .nOfM(let nn, let mm):
      let perGroup = binomial(mm, nn)
      let groups = n / mm
      let count = (0..<groups).reduce(1.0) { acc, _ in acc * Double(perGroup) }
      try checkSize(count > Double(Int.max / 2) ? Int.max : Int(count), n: n)
      var sets: [[Int]] = [[]]
      for g in 0..<groups {
        let choices = combinations(of: Array((g * mm)..<((g + 1) * mm)), choose: nn)
        sets = sets.flatMap { s in choices.map { s + $0 } }
      }
      candidates[nn * groups] = sets
    }

    let w = problem.weight.converted(to: Double.self)
    let gStar = problem.gram.converted(to: Double.self)
    let c = matmul(w, (problem.crossGram ?? problem.gram).converted(to: Double.self))
    let delta = options.damping * meanDiagonal(problem.gram)
    // best[i][k] = (error without the constant wGwᵀ, pruned set, weights) of row i pruning k.
    var best = [[Int: (error: Double, pruned: [Int], values: [Double])]](repeating: [:], count: m)
    var worstRetry = 0.0
    var evaluated = 0
    for i in 0..<m {
      for k in candidates.keys.sorted() {
        for prunedSet in candidates[k]! {
          let kept = (0..<n).filter { !prunedSet.contains($0) }
          let (values, retry) = try solveRow(i, kept: kept, w: w, gStar: gStar, c: c, delta: delta)
          worstRetry = max(worstRetry, retry)
          evaluated += 1
          // eᵢ − wGwᵀ = ŵG*ŵᵀ − 2 c ŵᵀ over the kept columns.
          var e = 0.0
          for (p, jp) in kept.enumerated() {
            var gw = 0.0
            for (q, jq) in kept.enumerated() { gw += gStar[jp, jq] * values[q] }
            e += values[p] * (gw - 2 * c[i, jp])
          }
          if let current = best[i][k], current.error <= e { continue }
          best[i][k] = (e, prunedSet, values)
        }
      }
    }
    // Choose each row's count: fixed by the pattern, or by dynamic programming over rows.
    var counts = [Int](repeating: candidates.keys.first ?? 0, count: m)
    if case .unstructured(_, .matrix) = pattern {
      let total = pattern.prunedCount(rows: m, columns: n)
      // table[i][κ]: the least error of rows 0..<i pruning κ in all; choice[i][κ]: row i − 1's count.
      var table = [[Double]](repeating: [Double](repeating: .infinity, count: total + 1), count: m + 1)
      var choice = [[Int]](repeating: [Int](repeating: -1, count: total + 1), count: m + 1)
      table[0][0] = 0
      for i in 0..<m {
        for kappa in 0...total where table[i][kappa].isFinite {
          for k in 0...min(n, total - kappa) {
            guard let row = best[i][k] else { continue }
            let v = table[i][kappa] + row.error
            if v < table[i + 1][kappa + k] {
              table[i + 1][kappa + k] = v
              choice[i + 1][kappa + k] = k
            }
          }
        }
      }
      var kappa = total
      for i in stride(from: m, to: 0, by: -1) {
        counts[i - 1] = choice[i][kappa]
        kappa -= counts[i - 1]
      }
    }
    var out = Matrix<Double>(rows: m, columns: n)
    var mask = Mask(rows: m, columns: n)
    for i in 0..<m {
      let row = best[i][counts[i]]!
      let kept = (0..<n).filter { !row.pruned.contains($0) }
      for (p, j) in kept.enumerated() { out[i, j] = row.values[p] }
      for j in row.pruned { mask[i, j] = false }
    }
    return finishResult(
      method: .exact, problem: problem, pattern: pattern, weight: out.converted(to: T.self), mask: mask, start: start
    ) { r in
      r.damping = delta
      r.dampingRetry = worstRetry > 0 ? worstRetry : nil
      r.metrics = ["masks_evaluated": Double(evaluated)]
      r.options = ["damping": "\(options.damping)", "max_masks": "\(options.maxMasks)"]
    }
  }

  func checkSize(_ masksPerRow: Int, n: Int) throws(PruningError) {
    guard masksPerRow <= options.maxMasks else {
      throw .problemTooLarge(
        method: "exact",
        detail: "\(masksPerRow) admissible masks per row for \(n) inputs (limit \(options.maxMasks))",
        hint: "the brute-force oracle is for tiny problems; raise --max-masks to insist")
    }
  }

  /// The exact (damped) masked least-squares weights of row i on `kept`, and the extra damping
  /// its Cholesky needed.
  func solveRow(_ i: Int, kept: [Int], w: Matrix<Double>, gStar: Matrix<Double>, c: Matrix<Double>, delta: Double)
    throws(PruningError) -> ([Double], Double)
  {
    do {
      return try solveMaskedRow(i, kept: kept, w: w, gStar: gStar, c: c, delta: delta)
    } catch {
      throw .factorisationFailed(method: "exact (row \(i))", error)
    }
  }
}

/// C(n, k) (saturating at Int.max).
func binomial(_ n: Int, _ k: Int) -> Int {
  guard k >= 0 && k <= n else { return 0 }
  var r = 1.0
  for i in 0..<min(k, n - k) { r = r * Double(n - i) / Double(i + 1) }
  return r >= Double(Int.max) ? Int.max : Int(r.rounded())
}
