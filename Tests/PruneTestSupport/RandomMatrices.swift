import PruneKernels

extension Matrix {
  /// A matrix with independent uniform entries in `range`, drawn row-major from `rng`.
  public static func random<G: RandomNumberGenerator>(
    rows: Int, columns: Int, in range: ClosedRange<Double> = -1...1, using rng: inout G
  ) -> Matrix {
    Matrix(rows: rows, columns: columns) { _, _ in Scalar(Double.random(in: range, using: &rng)) }
  }
}

/// A random orthogonal n × n matrix (Householder QR of a uniform matrix, signs fixed), in Double.
public func randomOrthogonal<G: RandomNumberGenerator>(_ n: Int, using rng: inout G) -> Matrix<Double> {
  var q = Matrix<Double>.identity(n)
  // Q = H₀ H₁ … with random Householder reflectors H = I − 2vvᵀ/vᵀv.
  for _ in 0..<max(1, n) {
    let v = (0..<n).map { _ in Double.random(in: -1...1, using: &rng) }
    let vv = v.reduce(0) { $0 + $1 * $1 }
    if vv == 0 { continue }
    // Q ← Q H: for each row r, r ← r − 2 (r·v)/vᵀv · vᵀ
    for i in 0..<n {
      var dot = 0.0
      for j in 0..<n { dot += q[i, j] * v[j] }
      let f = 2 * dot / vv
      for j in 0..<n { q[i, j] -= f * v[j] }
    }
  }
  return q
}

/// Q diag(λ) Qᵀ for a random orthogonal Q: a symmetric matrix with the given spectrum (up to the
/// rounding of the products, ~n·u·max|λ|).
public func symmetricMatrix<G: RandomNumberGenerator>(spectrum: [Double], using rng: inout G) -> Matrix<Double> {
  let n = spectrum.count
  let q = randomOrthogonal(n, using: &rng)
  var a = Matrix<Double>(rows: n, columns: n)
  for i in 0..<n {
    for j in i..<n {
      var s = 0.0
      for p in 0..<n { s += q[i, p] * spectrum[p] * q[j, p] }
      a[i, j] = s
      a[j, i] = s
    }
  }
  return a
}

/// A random symmetric positive definite matrix XᵀX + shift·I with X: [rows × n] uniform.
public func randomSPD<G: RandomNumberGenerator>(_ n: Int, tokens: Int? = nil, shift: Double = 0, using rng: inout G)
  -> Matrix<Double>
{
  let x = Matrix<Double>.random(rows: tokens ?? 2 * n + 4, columns: n, using: &rng)
  var g = Matrix<Double>(rows: n, columns: n)
  gramReference(x, into: &g)
  for i in 0..<n { g[i, i] += shift }
  return g
}

/// All eigenvalues of a symmetric matrix by the cyclic Jacobi method, in increasing order.
/// A test oracle: slow (O(n³) per sweep), accurate to a few ulps of ‖A‖.
public func jacobiEigenvalues(_ input: Matrix<Double>) -> [Double] {
  precondition(input.isSquare)
  let n = input.rows
  var a = input
  for _ in 0..<100 {
    var off = 0.0
    for i in 0..<n { for j in 0..<n where i != j { off += a[i, j] * a[i, j] } }
    if off == 0 || off < 1e-30 * max(1e-300, a.frobeniusNorm * a.frobeniusNorm) { break }
    for p in 0..<n {
      for q in (p + 1)..<max(p + 1, n) where a[p, q] != 0 {
        let theta = (a[q, q] - a[p, p]) / (2 * a[p, q])
        let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
        let c = 1 / (t * t + 1).squareRoot()
        let s = t * c
        for k in 0..<n {
          let akp = a[k, p]
          let akq = a[k, q]
          a[k, p] = c * akp - s * akq
          a[k, q] = s * akp + c * akq
        }
        for k in 0..<n {
          let apk = a[p, k]
          let aqk = a[q, k]
          a[p, k] = c * apk - s * aqk
          a[q, k] = s * apk + c * aqk
        }
      }
    }
  }
  return a.diagonal.sorted()
}
