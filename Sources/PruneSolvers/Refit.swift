/// Minimises ‖X*ŵᵢᵀ − Xwᵢᵀ‖² + δ‖ŵᵢ − wᵢ‖² over every row ŵᵢ with its pruned entries fixed at
/// zero: the exact optimal weights for a given mask (Docs/methods/refit.md#derivation).
///
/// Derivation. Row by row, with S the kept columns and P the pruned ones (ŵ_P = 0), the objective
/// ŵG*ŵᵀ − 2(wK)ŵᵀ + wGwᵀ + δ‖ŵ − w‖² is a convex quadratic in ŵ_S; its gradient vanishes at
///
///     ŵ_S (G*[S,S] + δI) = (wK)_S + δ·w_S                      (normal equations)
///
/// with K = XᵀX* the cross-Gram (K = G* = G without error correction, where the right-hand side
/// is (w(G + δI))_S). Steps, per row:
///   1. C = W·K once for all rows (one GEMM)
///   2. A = G*[S,S] + δI, b = C[i,S] + δ·w_S
///   3. A = LLᵀ (Cholesky), ŵ_S = b·A⁻¹ by two triangular solves
/// Rows are independent and run in parallel (each on one thread, so results do not depend on the
/// thread count). Cost: O(|S|³/3) per row.
///
/// Damping. δ = 0 is the oracle's exact mode. It is not a safe default for a pipeline: with 16k
/// calibration tokens the exact solution puts large weights on input directions with almost no
/// variance and perplexity explodes (Docs/results.md#lowest-layer-error-is-not-lowest-perplexity: a
/// Wanda mask refit with δ = 1e-8·mean diag gave perplexity ~3300 at 50% on SmolLM2). The default δ
/// is SparseGPT's: 1% of mean(diag G*). If a row's system is still not positive definite (a
/// singular G* with δ = 0), its Cholesky is retried with growing extra damping, which is reported
/// (`dampingRetry`), never silent.
public struct Refit: Sendable {
  /// The options and their defaults (`MethodOption` declares their command-line names).
  public struct Options: Sendable, Equatable {
    /// δ as a fraction of mean(diag G*). Default 0.01 (SparseGPT's `percdamp`); 0 = exact mode.
    public var damping: Double = 0.01
    /// The mask to refit when none is given: Wanda's (the refit of a Wanda mask is the classic
    /// "optimal update for a fixed mask").
    public var maskMethod: PruningMethod = .wanda

    /// The defaults above, except for the values given.
    public init(damping: Double? = nil, maskMethod: PruningMethod? = nil) {
      if let damping { self.damping = damping }
      if let maskMethod { self.maskMethod = maskMethod }
    }

    /// δ = 0: the exact masked least-squares solution.
    public static let exact = Options(damping: 0)
  }

  public var options: Options

  public init(options: Options = Options()) { self.options = options }

  /// Refits the weights kept by `mask` (`[out × in]`) optimally.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func refit<T: KernelScalar>(_ problem: LayerProblem<T>, mask: Mask, pattern: SparsityPattern? = nil)
    throws(PruningError) -> PruningResult<T>
  {
    let start = ContinuousClock.now
    guard mask.rows == problem.outputs && mask.columns == problem.inputs else {
      throw .maskMismatch(
        detail: "mask [\(mask.rows) × \(mask.columns)] for a weight \(problem.weight.shapeDescription)")
    }
    let delta = options.damping * meanDiagonal(problem.gram)
    let (w, worstRetry) = try refitWeights(problem, mask: mask, delta: delta)
    let patternText = pattern?.description ?? "mask"
    return finishResult(
      method: .refit, problem: problem, pattern: pattern ?? .unstructured(mask.sparsity),
      weight: w.converted(to: T.self), mask: mask, start: start
    ) { r in
      r.pattern = patternText
      r.damping = delta
      r.dampingRetry = worstRetry > 0 ? worstRetry : nil
      r.options = ["damping": "\(options.damping)"]
    }
  }

  /// Prunes with `options.maskMethod`'s mask, then refits.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func prune<T: KernelScalar>(_ problem: LayerProblem<T>, pattern: SparsityPattern)
    throws(PruningError) -> PruningResult<T>
  {
    try pattern.check(columns: problem.inputs)
    let mask: Mask
    switch options.maskMethod {
    case .magnitude: mask = try Magnitude().prune(problem, pattern: pattern).mask
    default: mask = try Wanda().prune(problem, pattern: pattern).mask
    }
    var result = try refit(problem, mask: mask, pattern: pattern)
    result.report.options["mask_method"] = options.maskMethod.rawValue
    return result
  }

  /// The refitted weights in Double, and the largest extra damping any row's Cholesky needed.
  func refitWeights<T: KernelScalar>(_ problem: LayerProblem<T>, mask: Mask, delta: Double)
    throws(PruningError) -> (Matrix<Double>, Double)
  {
    let m = problem.outputs
    let n = problem.inputs
    let w = problem.weight.converted(to: Double.self)
    let gStar = problem.gram.converted(to: Double.self)
    let c = matmul(w, (problem.crossGram ?? problem.gram).converted(to: Double.self))  // C = W·K
    var out = Matrix<Double>(rows: m, columns: n)
    let results = RowResults(count: m)
    Parallelism.forEachChunk(of: m) { rows in
      for i in rows {
        let kept = mask.keptColumns(row: i)
        do throws(CholeskyError) {
          results.set(i, .success(try solveMaskedRow(i, kept: kept, w: w, gStar: gStar, c: c, delta: delta)))
        } catch {
          results.set(i, .failure(error))
        }
      }
    }
    var worstRetry = 0.0
    for i in 0..<m {
      switch results.get(i) {
      case .failure(let e):
        throw .factorisationFailed(method: "refit (row \(i))", e)
      case .success(let (values, retry)):
        worstRetry = max(worstRetry, retry)
        for (p, j) in mask.keptColumns(row: i).enumerated() { out[i, j] = values[p] }
      }
    }
    return (out, worstRetry)
  }
}

/// Row i of the (damped) masked least squares on the kept columns S:
/// ŵ_S (G*[S,S] + δI) = C[i,S] + δ·w_S with C = W·K, by Cholesky (retried with reported extra
/// damping when not positive definite). Returns ŵ_S and the extra damping needed. Shared by
/// Refit and the brute-force oracle.
func solveMaskedRow(_ i: Int, kept: [Int], w: Matrix<Double>, gStar: Matrix<Double>, c: Matrix<Double>, delta: Double)
  throws(CholeskyError) -> ([Double], Double)
{
  if kept.isEmpty { return ([], 0) }
  var a = Matrix<Double>(rows: kept.count, columns: kept.count)
  var b = Matrix<Double>(rows: kept.count, columns: 1)
  for (p, jp) in kept.enumerated() {
    for (q, jq) in kept.enumerated() { a[p, q] = gStar[jp, jq] }
    a[p, p] += delta
    b[p, 0] = c[i, jp] + delta * w[i, jp]
  }
  let f = try cholesky(a, damping: .retry, threads: 1)
  let x = choleskySolve(f, b)  // A is symmetric: b·A⁻¹ = (A⁻¹bᵀ)ᵀ
  return ((0..<kept.count).map { x[$0, 0] }, Double(f.addedDamping))
}

/// Per-row results written by parallel workers: each slot by exactly one worker, read after all
/// workers have finished (the end of `concurrentPerform` orders the accesses).
final class RowResults: @unchecked Sendable {
  typealias Slot = Result<([Double], Double), CholeskyError>?
  private let slots: UnsafeMutablePointer<Slot>
  private let count: Int
  init(count: Int) {
    self.count = count
    slots = .allocate(capacity: max(1, count))
    slots.initialize(repeating: nil, count: count)
  }
  deinit {
    slots.deinitialize(count: count)
    slots.deallocate()
  }
  func set(_ i: Int, _ r: Result<([Double], Double), CholeskyError>) { slots[i] = r }
  func get(_ i: Int) -> Result<([Double], Double), CholeskyError> { slots[i]! }
}
