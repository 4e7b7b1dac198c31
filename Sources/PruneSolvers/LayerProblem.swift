/// One linear layer's pruning problem: find a sparse Ŵ whose outputs on the calibration inputs
/// stay close to the dense W's,
///
///     E(Ŵ) = ‖X* Ŵᵀ − X Wᵀ‖²_F = tr(Ŵ G* Ŵᵀ) − 2·tr(W K Ŵᵀ) + tr(W G Wᵀ),
///
/// with X: `[tokens × in]` the dense inputs (one row per token), X* the inputs the pruned layer
/// will see (X* = X except under FISTAPruner's intra-layer error correction), and the Grams
/// G* = X*ᵀX*, K = XᵀX* (the cross-Gram) and G = XᵀX, all `[in × in]`. When X* = X the three
/// coincide and E(Ŵ) = tr((W − Ŵ) G (W − Ŵ)ᵀ). E separates over output rows: every row of W is an
/// independent least-squares problem sharing the same Grams.
///
/// The problem is built from given Grams or by streaming X in chunks (`GramAccumulator`); errors
/// are always computed from the Grams in Double, never by materialising W·Xᵀ.
public struct LayerProblem<T: KernelScalar>: Sendable {
  /// W: `[out × in]`, the dense weight (PyTorch `nn.Linear.weight` layout).
  public let weight: Matrix<T>
  /// G* = Σₜ x*ₜ x*ₜᵀ: `[in × in]`, Gram of the inputs the pruned layer sees (= G when X* = X).
  public let gram: Matrix<T>
  /// K = Σₜ xₜ x*ₜᵀ: `[in × in]`, dense × pruned-path inputs; nil when X* = X (then K = G*).
  public let crossGram: Matrix<T>?
  /// G = Σₜ xₜ xₜᵀ: `[in × in]`, Gram of the dense inputs; nil when X* = X (then G = G*).
  public let denseGram: Matrix<T>?
  /// Number of calibration tokens behind the Grams (0 when unknown).
  public let tokens: Int

  /// A problem from its Grams. Pass `crossGram` and `denseGram` together, or neither.
  ///
  /// - Throws: `LayerProblemError` on mismatched shapes, non-finite values, an asymmetric Gram or a
  ///   Gram with a negative diagonal entry (a Gram's diagonal holds sums of squares). Whether a Gram
  ///   is positive semidefinite beyond its diagonal is checked by `prune` (it costs a factorisation).
  public init(
    weight: Matrix<T>, gram: Matrix<T>, crossGram: Matrix<T>? = nil, denseGram: Matrix<T>? = nil,
    tokens: Int = 0
  ) throws(LayerProblemError) {
    let n = weight.columns
    try Self.check(weight, "weight", rows: weight.rows, columns: n)
    try Self.check(gram, "gram", rows: n, columns: n)
    try Self.checkSymmetric(gram, "gram")
    try Self.checkDiagonal(gram, "gram")
    if (crossGram == nil) != (denseGram == nil) { throw .incompleteErrorCorrection }
    if let crossGram { try Self.check(crossGram, "cross_gram", rows: n, columns: n) }
    if let denseGram {
      try Self.check(denseGram, "dense_gram", rows: n, columns: n)
      try Self.checkSymmetric(denseGram, "dense_gram")
      try Self.checkDiagonal(denseGram, "dense_gram")
    }
    guard tokens >= 0 else { throw .negativeTokenCount(tokens) }
    self.weight = weight
    self.gram = gram
    self.crossGram = crossGram
    self.denseGram = denseGram
    self.tokens = tokens
  }

  /// A problem from calibration inputs X: `[tokens × in]` (and, for an error-corrected problem,
  /// the pruned-path inputs X*: `[tokens × in]`), streamed in chunks of `chunkTokens` rows and
  /// accumulated in Double.
  public init(
    weight: Matrix<T>, inputs x: Matrix<T>, prunedInputs xStar: Matrix<T>? = nil,
    chunkTokens: Int = 4096
  ) throws(LayerProblemError) {
    let n = weight.columns
    guard x.columns == n else {
      throw .shapeMismatch(tensor: "inputs", expected: "[tokens × \(n)]", found: x.shapeDescription)
    }
    if let xStar, xStar.rows != x.rows || xStar.columns != n {
      throw .shapeMismatch(tensor: "pruned_inputs", expected: x.shapeDescription, found: xStar.shapeDescription)
    }
    // Name a non-finite activation by its token and feature, before it spreads over a Gram row.
    try Self.check(x, "inputs", rows: x.rows, columns: n)
    if let xStar { try Self.check(xStar, "pruned_inputs", rows: x.rows, columns: n) }
    var g = GramAccumulator<Double>(features: n)
    var gStar = GramAccumulator<Double>(features: n)
    var k = Matrix<Double>(rows: n, columns: n)
    for start in stride(from: 0, to: x.rows, by: max(1, chunkTokens)) {
      let range = start..<min(x.rows, start + max(1, chunkTokens))
      let chunk = x.submatrix(rows: range, columns: 0..<n).converted(to: Double.self)
      g.add(chunk)
      if let xStar {
        let chunkStar = xStar.submatrix(rows: range, columns: 0..<n).converted(to: Double.self)
        gStar.add(chunkStar)
        gemm(chunk, chunkStar, into: &k, transposeA: true, beta: 1)  // K += XᵀX*
      }
    }
    if xStar != nil {
      try self.init(
        weight: weight, gram: gStar.gram.converted(to: T.self), crossGram: k.converted(to: T.self),
        denseGram: g.gram.converted(to: T.self), tokens: x.rows)
    } else {
      try self.init(weight: weight, gram: g.gram.converted(to: T.self), tokens: x.rows)
    }
  }

  /// Number of output rows (m).
  public var outputs: Int { weight.rows }
  /// Number of inputs (n).
  public var inputs: Int { weight.columns }
  /// True when X* ≠ X (FISTAPruner's intra-layer error correction).
  public var isErrorCorrected: Bool { crossGram != nil }

  /// tr(W G Wᵀ) = ‖X Wᵀ‖²_F, the energy of the dense outputs (the relative error's denominator).
  public var denseEnergy: Double {
    traceOfProduct(rows: outputs, denseGram ?? gram) { r in
      let w = weight.rowsInDouble(r)
      return (w, w)
    }
  }

  /// E(Ŵ) = ‖X* Ŵᵀ − X Wᵀ‖²_F for a candidate Ŵ: `[out × in]`, computed from the Grams in Double.
  public func error(of candidate: Matrix<T>) -> Double {
    precondition(
      candidate.rows == weight.rows && candidate.columns == weight.columns,
      "LayerProblem.error: candidate \(candidate.shapeDescription) vs weight \(weight.shapeDescription)")
    let m = outputs
    if let crossGram, let denseGram {
      // tr(Ŵ G* Ŵᵀ) − 2 tr(W K Ŵᵀ) + tr(W G Wᵀ); Double keeps the cancellation harmless
      // (absolute error ~1e-13 of the energies).
      let e =
        traceOfProduct(rows: m, gram) { r in
          let wHat = candidate.rowsInDouble(r)
          return (wHat, wHat)
        }
        - 2 * traceOfProduct(rows: m, crossGram) { r in (weight.rowsInDouble(r), candidate.rowsInDouble(r)) }
        + traceOfProduct(rows: m, denseGram) { r in
          let w = weight.rowsInDouble(r)
          return (w, w)
        }
      return max(0, e)
    }
    return traceOfProduct(rows: m, gram) { r in
      var d = weight.rowsInDouble(r)
      let wHat = candidate.rowsInDouble(r)
      d.withUnsafeMutableBufferPointer { pd in
        wHat.withUnsafeBufferPointer { ph in for i in 0..<pd.count { pd[i] -= ph[i] } }
      }
      return (d, d)
    }
  }

  /// E(Ŵ) / tr(W G Wᵀ) (0 when the dense energy is 0 and Ŵ = W).
  public func relativeError(of candidate: Matrix<T>) -> Double {
    let energy = denseEnergy
    let e = error(of: candidate)
    return energy > 0 ? e / energy : (e == 0 ? 0 : .infinity)
  }

  // MARK: - Validation

  private static func check(_ m: Matrix<T>, _ name: String, rows: Int, columns: Int) throws(LayerProblemError) {
    guard m.rows == rows && m.columns == columns else {
      throw .shapeMismatch(tensor: name, expected: "[\(rows) × \(columns)]", found: m.shapeDescription)
    }
    if let bad = NonFiniteSummary(of: m) {
      throw .nonFinite(tensor: name, row: bad.row, column: bad.column, value: bad.value)
    }
  }

  private static func checkDiagonal(_ g: Matrix<T>, _ name: String) throws(LayerProblemError) {
    for j in 0..<g.rows where g[j, j] < 0 {
      throw .negativeDiagonal(tensor: name, index: j, value: Double(g[j, j]))
    }
  }

  /// Throws `notSemidefinite` when `gram` (G*) has an eigenvalue below −τ, τ = 10⁻⁴·tr G*: a
  /// Cholesky factorisation of G* + τI in Double must succeed. A Gram Σ x xᵀ is positive
  /// semidefinite; rounding (even of a Float Gram over many tokens) moves its eigenvalues by far
  /// less than τ, so a failure means the Gram was not formed as Σ x xᵀ (a corrupt or hand-made
  /// file). Cost: one n³/3 factorisation, in place in one n × n Double copy of G*
  /// (`choleskyFactorsInPlace`: 254 MB for a 5632-wide Gram, where `cholesky` would hold three).
  public func checkSemidefinite() throws(LayerProblemError) {
    let n = inputs
    guard n > 0 else { return }
    var trace = 0.0
    for j in 0..<n { trace += Double(gram[j, j]) }
    if trace == 0 {
      // A zero diagonal: semidefinite only if the whole Gram is zero (no calibration signal).
      if gram.maxMagnitude != 0 { throw .notSemidefinite(tensor: "gram", column: 0, tolerance: 0) }
      return
    }
    let tau = Self.semidefiniteTolerance * trace
    var h = gram.converted(to: Double.self)
    for j in 0..<n { h[j, j] += tau }
    if let failure = choleskyFactorsInPlace(&h) {
      throw .notSemidefinite(tensor: "gram", column: failure.column, tolerance: tau)
    }
  }

  /// τ / tr G*, the negative eigenvalue `checkSemidefinite` tolerates (10⁻⁴).
  public static var semidefiniteTolerance: Double { 1e-4 }

  private static func checkSymmetric(_ g: Matrix<T>, _ name: String) throws(LayerProblemError) {
    // Tolerance: a Gram accumulated in the same order is exactly symmetric; one produced by another
    // tool may differ by rounding, ~n·u of the largest entry.
    let tol = Double(g.rows + 1) * T.unitRoundoff * 8 * Double(g.maxMagnitude)
    if let (i, j) = firstAsymmetry(g, tolerance: tol) { throw .notSymmetric(tensor: name, row: i, column: j) }
  }
}

/// The first (i, j), i < j in row order, with |g_ij − g_ji| > tolerance, or nil. The scan runs over
/// 64 × 64 tiles, so that g_ji (a column) is read from cache and not a cache line per element
/// (10% of a 7B SparseGPT layer's time before); only when a tile holds a violation is the first
/// one found in row order, by the plain loop.
@_specialize(where T == Float)
@_specialize(where T == Double)
func firstAsymmetry<T: KernelScalar>(_ g: Matrix<T>, tolerance: Double) -> (Int, Int)? {
  let n = min(g.rows, g.columns)
  let tile = 64
  let found = g.withUnsafeBufferPointer { a -> Bool in
    let ld = g.columns
    for i0 in stride(from: 0, to: n, by: tile) {
      for j0 in stride(from: i0, to: n, by: tile) {
        for i in i0..<min(i0 + tile, n) {
          for j in max(j0, i + 1)..<min(j0 + tile, n) where abs(Double(a[i * ld + j]) - Double(a[j * ld + i])) > tolerance {
            return true
          }
        }
      }
    }
    return false
  }
  guard found else { return nil }
  for i in 0..<n {
    for j in (i + 1)..<n where abs(Double(g[i, j]) - Double(g[j, i])) > tolerance { return (i, j) }
  }
  return nil
}

/// tr(A B Cᵀ) = Σᵢⱼ (A B)ᵢⱼ Cᵢⱼ in Double, for A, C: [m × n] given a block of rows at a time
/// (`rows(r)`: rows r of A and of C, in Double) and B: [n × n] in T, converted to Double a panel
/// of columns at a time. No Double copy of the whole of A, B or AB exists: an [n × n] Gram of a
/// wide layer is 254 MB in Double (TinyLlama's down projection, n = 5632), more than its layer's
/// solver holds. The result has the same bits as forming AB whole (`matmul` of the Double
/// matrices) and summing it row by row: a GEMM reduces each element over the shared dimension n
/// in an order that depends on n alone (`GEMMBlocking.depthBlocks`), not on the rows or columns
/// it is given, and the sum runs over the rows in order.
/// `blockBytes` and `panelColumns` (the defaults unless a test compares others) do not change the
/// result.
func traceOfProduct<T: KernelScalar>(
  rows m: Int, _ b: Matrix<T>, blockBytes: Int = LayerProblem<T>.errorBlockBytes,
  panelColumns: Int = LayerProblem<T>.errorPanelColumns,
  _ rows: (Range<Int>) -> (a: Matrix<Double>, c: Matrix<Double>)
) -> Double {
  let n = b.rows
  guard m > 0, n > 0 else { return 0 }
  let blockRows = max(1, blockBytes / (8 * n))
  let tracePanelColumns = max(1, panelColumns)
  var s = 0.0
  for r0 in stride(from: 0, to: m, by: blockRows) {
    let r = r0..<min(m, r0 + blockRows)
    let (a, c) = rows(r)
    var ab = Matrix<Double>(rows: r.count, columns: n)
    for j0 in stride(from: 0, to: n, by: tracePanelColumns) {
      let width = min(tracePanelColumns, n - j0)
      let panel = b.submatrix(rows: 0..<n, columns: j0..<(j0 + width)).converted(to: Double.self)
      a.withUnsafeBufferPointer { pa in
        panel.withUnsafeBufferPointer { pb in
          ab.withUnsafeMutableBufferPointer { pc in
            gemm(
              transposeA: false, transposeB: false, m: r.count, n: width, k: n, alpha: 1, a: pa.baseAddress!, lda: n,
              b: pb.baseAddress!, ldb: width, beta: 0, c: pc.baseAddress! + j0, ldc: n)
          }
        }
      }
    }
    ab.withUnsafeBufferPointer { p in
      c.withUnsafeBufferPointer { q in for i in 0..<p.count { s += p[i] * q[i] } }
    }
  }
  return s
}

extension LayerProblem {
  /// Bytes of a block of rows of AB in the error evaluation (`traceOfProduct`; 32 MiB: all the rows
  /// of a SmolLM2 layer at once, 744 rows of a 5632-wide layer).
  public static var errorBlockBytes: Int { 32 << 20 }
  /// Columns of a Gram converted to Double at once in the error evaluation (`traceOfProduct`; n × 512
  /// Doubles: 23 MB at n = 5632).
  public static var errorPanelColumns: Int { 512 }
}

extension Matrix {
  /// Rows `r`, converted to Double.
  func rowsInDouble(_ r: Range<Int>) -> Matrix<Double> {
    submatrix(rows: r, columns: 0..<columns).converted(to: Double.self)
  }
}

/// Why a layer problem was rejected.
public enum LayerProblemError: PruneKitError, Equatable {
  case shapeMismatch(tensor: String, expected: String, found: String)
  case nonFinite(tensor: String, row: Int, column: Int, value: Double)
  case notSymmetric(tensor: String, row: Int, column: Int)
  case incompleteErrorCorrection
  case negativeTokenCount(Int)
  /// A Gram's diagonal entry Gⱼⱼ = Σ xⱼ² is negative.
  case negativeDiagonal(tensor: String, index: Int, value: Double)
  /// A Gram has an eigenvalue below −`tolerance` (`LayerProblem.checkSemidefinite`); `column` is
  /// where the factorisation of G + τI stopped.
  case notSemidefinite(tensor: String, column: Int, tolerance: Double)

  public var message: String {
    switch self {
    case .shapeMismatch(let tensor, let expected, let found):
      return "layer problem: '\(tensor)' has shape \(found), expected \(expected)"
    case .nonFinite(let tensor, let row, let column, let value):
      return "layer problem: '\(tensor)'[\(row), \(column)] is \(value)"
    case .negativeDiagonal(let tensor, let index, let value):
      return
        "layer problem: '\(tensor)'[\(index), \(index)] is \(value), but a Gram's diagonal is a sum of squares Σ xⱼ² ≥ 0"
    case .notSemidefinite(let tensor, let column, let tolerance):
      return "layer problem: '\(tensor)' is not positive semidefinite: it has an eigenvalue below −\(tolerance)"
        + " (10⁻⁴ of its trace; the factorisation of G + τI stopped at column \(column)), far beyond rounding"
    case .notSymmetric(let tensor, let row, let column):
      return "layer problem: '\(tensor)' is not symmetric at (\(row), \(column))"
    case .incompleteErrorCorrection:
      return "layer problem: an error-corrected problem needs both the cross-Gram K = Σ x x*ᵀ and the"
        + " dense Gram G = Σ x xᵀ, besides G* = Σ x* x*ᵀ"
    case .negativeTokenCount(let n):
      return "layer problem: token count \(n) is negative"
    }
  }

  public var hint: String? {
    switch self {
    case .shapeMismatch:
      return "W is [out × in], the Grams [in × in] and the inputs [tokens × in]."
    case .nonFinite(let tensor, _, _, _):
      switch tensor {
      case "weight":
        return "the weight itself holds NaN or Inf: check the model file (or whatever produced the weight)."
      case "inputs", "pruned_inputs":
        return "NaN or Inf in the calibration activations (row = token, column = input feature): an"
          + " earlier layer overflowed or its weights are not finite; check the model file and the calibration run."
      default:
        return "NaN or Inf in weights or activations, or a Gram that overflowed its precision (activations"
          + " too large); check the model file and the calibration run, or use --precision double."
      }
    case .negativeDiagonal:
      return "the Gram was not formed as Σ x xᵀ; check its producer (or that 'cross_gram' and 'gram' are not swapped)."
    case .notSemidefinite:
      return
        "a Gram Σ x xᵀ has no negative eigenvalue; check its producer (or that 'cross_gram' and 'gram' are not swapped)."
    case .notSymmetric:
      return "a Gram matrix is Σ x xᵀ; check the producer."
    case .incompleteErrorCorrection, .negativeTokenCount:
      return nil
    }
  }
}
