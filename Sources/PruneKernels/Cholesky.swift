// Cholesky factorisation A = LLᵀ of a symmetric positive definite matrix, with a damping-retry
// policy whose outcome is always reported.
//
// The blocked algorithm works on the upper factor U = Lᵀ (A = UᵀU), because its trailing update
// A₂₂ ← A₂₂ − A₁₂ᵀA₁₂ is exactly a Gram update, which the blocked GEMM computes on the upper
// triangle only (half the flops of a full update):
//
//   for each diagonal block of width nb (j0 ..< j1):
//     1. U₁₁ ← chol(A₁₁)                 unblocked, right-looking, on the nb × nb block
//     2. A₁₂ ← U₁₁⁻ᵀ A₁₂                 forward substitution on the block row (rows of length n − j1)
//     3. A₂₂ ← A₂₂ − A₁₂ᵀ A₁₂            upper triangle, blocked GEMM (threads split rows only)
//
// A pivot that is not positive and finite stops the factorisation at that column, and so does a
// pivot that is only rounding noise: dⱼ ≤ 4n·u·Aⱼⱼ (u the unit roundoff), which is what a singular
// positive semidefinite matrix leaves where an exact zero pivot would be. Accepting such a pivot
// would divide by noise and return a finite but meaningless factor (huge weights of opposite signs
// in a least-squares solve), so it counts as "not positive definite" (LAPACK's pivoted Cholesky
// stops at n·u·max Aⱼⱼ). With a `DampingPolicy`, the factorisation is retried on A + δI
// with growing δ, and the δ that worked is returned in the result: damping is never silent.

/// The outcome of `cholesky`: A + δI = LLᵀ.
public struct CholeskyFactorization<T: KernelScalar>: Sendable {
  /// L: `[n × n]`, lower triangular with a positive diagonal; the strict upper part is zero.
  public let lower: Matrix<T>
  /// δ, the absolute damping added to the diagonal before the successful attempt (0 when A itself
  /// was factored).
  public let addedDamping: T
  /// How many factorisations were tried (1 when the first one succeeded).
  public let attempts: Int

  /// n, the order of A.
  public var order: Int { lower.rows }

  /// Checks the invariants (square, lower triangular, positive finite diagonal); stops with the
  /// offending row and column otherwise. For tests and debug builds.
  public func checkInvariants() {
    precondition(lower.isSquare, "CholeskyFactorization: L \(lower.shapeDescription) is not square")
    for i in 0..<order {
      precondition(lower[i, i] > 0 && lower[i, i].isFinite, "CholeskyFactorization: L[\(i), \(i)] = \(lower[i, i])")
      for j in (i + 1)..<max(i + 1, order) {
        precondition(lower[i, j] == 0, "CholeskyFactorization: L[\(i), \(j)] = \(lower[i, j]) above the diagonal")
      }
    }
  }
}

/// What `cholesky` does when A is not numerically positive definite.
///
/// Attempt 1 factors A as given. Retry r = 1, 2, …, `maxRetries` factors A + δᵣI with
/// δᵣ = `initialFraction` · `growth`^(r−1) · mean|diag A| (mean|diag A| = 1 when the diagonal is
/// zero). The δ that succeeded is reported in `CholeskyFactorization.addedDamping`.
public struct DampingPolicy: Sendable, Equatable {
  /// δ₁ as a fraction of mean|diag A|.
  public var initialFraction: Double
  /// Factor between successive δ.
  public var growth: Double
  /// Retries after the undamped attempt (0: fail at once).
  public var maxRetries: Int

  public init(initialFraction: Double, growth: Double, maxRetries: Int) {
    precondition(initialFraction >= 0 && growth >= 1 && maxRetries >= 0, "DampingPolicy: invalid values")
    self.initialFraction = initialFraction
    self.growth = growth
    self.maxRetries = maxRetries
  }

  /// No retry: a matrix that is not positive definite is an error.
  public static let none = DampingPolicy(initialFraction: 0, growth: 1, maxRetries: 0)

  /// Retry with δ = 10⁻⁸, 10⁻⁷, …, 10⁻¹ × mean|diag A| (8 retries). The smallest value is below the
  /// noise of a Float Gram; the largest is SparseGPT-scale damping (its default is 10⁻²).
  public static let retry = DampingPolicy(initialFraction: 1e-8, growth: 10, maxRetries: 8)
}

/// Why a Cholesky factorisation failed.
public enum CholeskyError: PruneKitError, Equatable {
  /// The pivot at `column` was not positive and finite in every attempt; `lastDamping` is the δ of
  /// the last attempt.
  case notPositiveDefinite(column: Int, pivot: Double, attempts: Int, lastDamping: Double)

  public var message: String {
    switch self {
    case .notPositiveDefinite(let column, let pivot, let attempts, let lastDamping):
      return "Cholesky: the matrix is not positive definite (pivot \(pivot) at column \(column) is not a"
        + " finite number above its rounding noise 4n·u·Aⱼⱼ, after \(attempts) attempt(s), last damping"
        + " δ = \(lastDamping))"
    }
  }

  public var hint: String? {
    "the Gram matrix may be singular (too few calibration tokens, dead inputs) or contain NaN/Inf; raise"
      + " the damping (--damping) or add calibration data."
  }
}

/// Factors A = LLᵀ (or A + δI = LLᵀ after retries allowed by `damping`).
///
/// - Parameter a: A, `[n × n]` symmetric; only its upper triangle is read.
/// - Throws: `CholeskyError.notPositiveDefinite` when every allowed attempt fails.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func cholesky<T: KernelScalar>(
  _ a: Matrix<T>, damping: DampingPolicy = .none, threads: Int = Parallelism.threads
) throws(CholeskyError) -> CholeskyFactorization<T> {
  precondition(a.isSquare, "cholesky: A \(a.shapeDescription) is not square")
  let n = a.rows
  var scale = 0.0
  for i in 0..<n { scale += Double(a[i, i].magnitude) }
  scale = n > 0 && scale > 0 ? scale / Double(n) : 1
  var delta: T = 0
  var lastFailure = (column: 0, pivot: 0.0)
  for attempt in 1...(damping.maxRetries + 1) {
    if attempt > 1 {
      delta = T(damping.initialFraction * pow10(damping.growth, attempt - 2) * scale)
    }
    var u = a
    if delta != 0 { for i in 0..<n { u[i, i] += delta } }
    // Pivots at or below 4n·u·Aⱼⱼ are rounding noise (see the top of the file).
    let noise = T(4 * Double(n) * T.unitRoundoff)
    let minimumPivot = (0..<n).map { noise * u[$0, $0].magnitude }
    let failure = u.withUnsafeMutableBufferPointer { p -> (Int, Double)? in
      guard let base = p.baseAddress else { return nil }
      return minimumPivot.withUnsafeBufferPointer { floor in
        choleskyUpperInPlace(base, n: n, ld: n, blockSize: 128, threads: threads, minimumPivot: floor.baseAddress)
      }
    }
    if let failure {
      lastFailure = failure
      continue
    }
    // L = Uᵀ, with the strict upper part of L (the stale lower part of U) zeroed, formed in U's
    // own storage so that the factorisation holds one n × n matrix beside A, not two.
    u.withUnsafeMutableBufferPointer { p in lowerFromUpperInPlace(p.baseAddress!, n: n) }
    return CholeskyFactorization(lower: u, addedDamping: delta, attempts: attempt)
  }
  throw .notPositiveDefinite(
    column: lastFailure.column, pivot: lastFailure.pivot, attempts: damping.maxRetries + 1,
    lastDamping: Double(delta))
}

/// Turns the upper triangle of the n × n row-major `a` into its transpose, in place: Aⱼᵢ ← Aᵢⱼ
/// and Aᵢⱼ ← 0 for j > i (the diagonal stays). Equal to `a.transposed()` with the strict upper
/// triangle then zeroed, without the second matrix; 32 × 32 tiles keep both streams in cache.
func lowerFromUpperInPlace<T>(_ a: UnsafeMutablePointer<T>, n: Int) where T: BinaryFloatingPoint {
  let tile = 32
  for i0 in stride(from: 0, to: n, by: tile) {
    for j0 in stride(from: i0, to: n, by: tile) {
      for i in i0..<min(i0 + tile, n) {
        for j in max(j0, i + 1)..<max(max(j0, i + 1), min(j0 + tile, n)) {
          a[j * n + i] = a[i * n + j]
          a[i * n + j] = 0
        }
      }
    }
  }
}

/// growth^e for small non-negative integer e (exact repeated multiplication, no libm).
private func pow10(_ growth: Double, _ e: Int) -> Double {
  var r = 1.0
  for _ in 0..<max(0, e) { r *= growth }
  return r
}

/// The reference Cholesky: the textbook column-by-column algorithm on the lower triangle,
/// Lⱼⱼ = √(Aⱼⱼ − Σₚ₍ⱼ Lⱼₚ²), Lᵢⱼ = (Aᵢⱼ − Σₚ₍ⱼ LᵢₚLⱼₚ)/Lⱼⱼ, sums in increasing p.
/// Returns nil when a pivot is not positive and finite. Slow on purpose: this is the definition.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func choleskyReference<T: KernelScalar>(_ a: Matrix<T>) -> Matrix<T>? {
  precondition(a.isSquare, "choleskyReference: A \(a.shapeDescription) is not square")
  let n = a.rows
  var l = Matrix<T>(rows: n, columns: n)
  for j in 0..<n {
    var d = a[j, j]
    for p in 0..<j { d -= l[j, p] * l[j, p] }
    guard d > 0 && d.isFinite else { return nil }
    let ljj = d.squareRoot()
    l[j, j] = ljj
    for i in (j + 1)..<max(j + 1, n) {
      var s = a[j, i]  // upper triangle of A, like the blocked version
      for p in 0..<j { s -= l[i, p] * l[j, p] }
      l[i, j] = s / ljj
    }
  }
  return l
}

/// Blocked upper Cholesky in place: on success the upper triangle of `a` holds U with UᵀU = A
/// (the strict lower triangle is left with stale values). Returns (column, pivot) of the first
/// pivot that is not positive and finite, or not above `minimumPivot[j]` when given, or nil on
/// success.
func choleskyUpperInPlace<T: KernelScalar>(
  _ a: UnsafeMutablePointer<T>, n: Int, ld: Int, blockSize: Int, threads: Int,
  minimumPivot: UnsafePointer<T>? = nil
) -> (Int, Double)? {
  precondition(blockSize >= 1)
  for j0 in stride(from: 0, to: n, by: blockSize) {
    let j1 = min(j0 + blockSize, n)
    let w = j1 - j0
    // 1. U₁₁ ← chol(A₁₁), right-looking inside the block.
    for r in j0..<j1 {
      let d = a[r * ld + r]
      guard d > 0 && d.isFinite else { return (r, Double(d)) }
      if let minimumPivot, d <= minimumPivot[r] { return (r, Double(d)) }
      let urr = d.squareRoot()
      a[r * ld + r] = urr
      let inv = 1 / urr
      let rowR = a + r * ld
      for c in (r + 1)..<max(r + 1, j1) { rowR[c] *= inv }
      for q in (r + 1)..<max(r + 1, j1) {
        let urq = rowR[q]
        let rowQ = a + q * ld
        for c in q..<j1 { rowQ[c] -= urq * rowR[c] }
      }
    }
    if j1 == n { break }
    // 2. A₁₂ ← U₁₁⁻ᵀ A₁₂: row r of the block row, for r = j0…j1−1:
    //    x_r = (a_r − Σ_{p<r} U[p, r]·x_p) / U[r, r]     (rows of length n − j1, vectorised)
    let width = n - j1
    for r in j0..<j1 {
      let rowR = a + r * ld + j1
      for p in j0..<r {
        let upr = a[p * ld + r]
        let rowP = a + p * ld + j1
        for c in 0..<width { rowR[c] -= upr * rowP[c] }
      }
      let inv = 1 / a[r * ld + r]
      for c in 0..<width { rowR[c] *= inv }
    }
    // 3. A₂₂ ← A₂₂ − A₁₂ᵀA₁₂ on the upper triangle (a Gram update with α = −1).
    let a12 = UnsafePointer(a + j0 * ld + j1)
    gemmBlocked(
      m: width, n: width, k: w, alpha: -1,
      a: StridedOperand(base: a12, rowStride: 1, columnStride: ld),
      b: StridedOperand(base: a12, rowStride: ld, columnStride: 1),
      beta: 1, c: a + j1 * ld + j1, ldc: ld, threads: threads, blocking: T.gemmBlocking,
      region: .upperTriangle)
  }
  return nil
}
