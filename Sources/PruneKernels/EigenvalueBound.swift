// A certified upper bound on the largest eigenvalue of a symmetric matrix.
//
// FISTA's step is 1/L with L ≥ λmax(G), the Lipschitz constant of the gradient; an L below λmax
// can make the iteration diverge, an L far above it slows it down. Power iteration alone gives a
// *lower* bound (any Rayleigh quotient μ = vᵀAv/vᵀv satisfies μ ≤ λmax), so it cannot be used as is.
//
// Method:
//   1. μ, r ← power iteration from a fixed pseudo-random start (μ: Rayleigh quotient, a lower
//      bound; r = ‖Av − μv‖ for the final unit vector v).
//   2. Candidate σ = μ + gap with gap = max(r, 10⁻⁶·|μ|, 10⁻¹²·g), where g is the Gershgorin bound.
//   3. Certify σ > λmax by factoring σI − A with Cholesky in Double: σI − A is positive definite
//      iff σ > λmax. Rounding is covered by factoring (σ − c)I − A with the margin of Rump (2006,
//      "Verification of positive definiteness", BIT 46:433–452): if floating-point Cholesky
//      succeeds on B − cI with c ≥ γₙ₊₁/(1 − 2γₙ₊₁)·tr(B), γₖ = k·u/(1 − k·u), then B is positive
//      definite. We use twice that c plus the rounding of forming the diagonal.
//   4. On failure, gap ← 4·gap and retry; once σ would exceed g, return g instead.
//
// Guarantees: the result is ≥ λmax (up to the floating-point theorem above, whose margin is
// ~10⁻⁹·σ for n = 3072), and when certified by Cholesky it is
// ≤ λmax + max(gap₀, 3(λmax − μ)) + c with gap₀ the first gap above: either the first attempt
// succeeds (overshoot ≤ gap₀), or an attempt failed with σ ≤ λmax and the next one, 4× the gap,
// overshoots by at most 3× that shortfall. In practice the overshoot is ~10⁻⁶ relative.
// Cost: `iterations` matrix-vector products plus one n³/3 Cholesky per attempt.

/// An upper bound σ ≥ λmax(A) of a symmetric matrix, with how it was certified.
public struct EigenvalueBound: Sendable, Equatable {
  /// How `upperBound` is known to be ≥ λmax.
  public enum Certificate: Sendable, Equatable {
    /// A is zero (every |Aᵢⱼ| = 0), so λmax = 0 exactly.
    case zeroMatrix
    /// Cholesky of (σ − c)I − A succeeded on the given attempt.
    case cholesky(attempts: Int)
    /// Gershgorin's theorem: σ = maxᵢ Σⱼ |Aᵢⱼ| (rounded up), used when Cholesky would not be tighter.
    case gershgorin
  }

  /// σ ≥ λmax(A).
  public let upperBound: Double
  /// μ ≤ λmax(A): the Rayleigh quotient of the power iteration.
  public let lowerBound: Double
  /// ‖Av − μv‖ for the power iteration's final unit vector v.
  public let residual: Double
  /// How `upperBound` was certified.
  public let certificate: Certificate
}

/// A certified upper bound on the largest eigenvalue of a symmetric matrix A (`[n × n]`; only
/// the upper triangle is read). See the method at the top of EigenvalueBound.swift.
///
/// - Parameter iterations: power iterations before certification (default 40).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func largestEigenvalueUpperBound<T: KernelScalar>(
  _ a: Matrix<T>, iterations: Int = 40, threads: Int = Parallelism.threads
) -> EigenvalueBound {
  precondition(a.isSquare, "largestEigenvalueUpperBound: A \(a.shapeDescription) is not square")
  precondition(iterations >= 1, "largestEigenvalueUpperBound: iterations must be ≥ 1")
  let n = a.rows
  // Exact copy in Double, symmetrised from the upper triangle.
  var s = Matrix<Double>(rows: n, columns: n)
  for i in 0..<n {
    for j in i..<n {
      let v = Double(a[i, j])
      s[i, j] = v
      s[j, i] = v
    }
  }
  let u = Double.ulpOfOne / 2

  // Gershgorin: every eigenvalue lies in some disc |λ − Aᵢᵢ| ≤ Σ_{j≠i} |Aᵢⱼ|, so λmax ≤ maxᵢ Σⱼ |Aᵢⱼ|.
  // A sum of n non-negative terms has relative error ≤ (n − 1)u; round up by (n + 1)u.
  var g = 0.0
  for i in 0..<n {
    var rowSum = 0.0
    for j in 0..<n { rowSum += s[i, j].magnitude }
    g = max(g, rowSum)
  }
  if !(g.isFinite) {
    return EigenvalueBound(upperBound: .infinity, lowerBound: .nan, residual: .nan, certificate: .gershgorin)
  }
  if g == 0 {
    return EigenvalueBound(upperBound: 0, lowerBound: 0, residual: 0, certificate: .zeroMatrix)
  }
  let gershgorin = g * (1 + Double(n + 1) * u)

  // 1. Power iteration from a fixed pseudo-random start.
  var v = [Double](repeating: 0, count: n)
  var state: UInt64 = 0x9E37_79B9_7F4A_7C15
  for i in 0..<n {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    v[i] = Double(Int64(bitPattern: state >> 11) - (1 << 52)) / Double(1 << 52)
  }
  normalize(&v)
  var mu = 0.0
  var residual = 0.0
  var w = [Double](repeating: 0, count: n)
  for _ in 0..<iterations {
    matvec(s, v, &w)
    mu = dot(v, w)
    var r2 = 0.0
    for i in 0..<n {
      let d = w[i] - mu * v[i]
      r2 += d * d
    }
    residual = r2.squareRoot()
    let norm = dot(w, w).squareRoot()
    if norm == 0 { break }
    for i in 0..<n { v[i] = w[i] / norm }
  }

  // 2–4. Certify σ = μ + gap by Cholesky of (σ − c)I − A; widen the gap on failure.
  var gap = max(residual, 1e-6 * mu.magnitude, 1e-12 * g)
  let traceA = (0..<n).reduce(0.0) { $0 + s[$1, $1] }
  let maxDiag = (0..<n).reduce(0.0) { max($0, s[$1, $1].magnitude) }
  let gamma = Double(n + 1) * u / (1 - Double(n + 1) * u)
  for attempt in 1...60 {
    let sigma = mu + gap
    if sigma >= gershgorin { break }
    let traceB = Double(n) * sigma - traceA
    let c =
      2 * (gamma / (1 - 2 * gamma)) * max(traceB, 0) + 2 * u * (sigma.magnitude + maxDiag)
      + Double(n) * Double.leastNormalMagnitude
    var b = Matrix<Double>(rows: n, columns: n)
    for i in 0..<n {
      for j in i..<n { b[i, j] = -s[i, j] }
      b[i, i] = (sigma - c) - s[i, i]
    }
    let failed = b.withUnsafeMutableBufferPointer { p -> Bool in
      choleskyUpperInPlace(p.baseAddress!, n: n, ld: n, blockSize: 128, threads: threads) != nil
    }
    if !failed {
      return EigenvalueBound(
        upperBound: sigma, lowerBound: mu, residual: residual, certificate: .cholesky(attempts: attempt))
    }
    gap *= 4
  }
  return EigenvalueBound(upperBound: gershgorin, lowerBound: mu, residual: residual, certificate: .gershgorin)
}

private func normalize(_ v: inout [Double]) {
  let norm = dot(v, v).squareRoot()
  if norm > 0 { for i in v.indices { v[i] /= norm } }
}

/// Σᵢ xᵢyᵢ with four independent SIMD accumulators (a fixed order, so deterministic).
private func dot(_ x: [Double], _ y: [Double]) -> Double {
  x.withUnsafeBufferPointer { px in
    y.withUnsafeBufferPointer { py in dotKernel(px.baseAddress!, py.baseAddress!, px.count) }
  }
}

@inline(__always)
private func dotKernel(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ n: Int) -> Double {
  typealias V = SIMD4<Double>
  var acc0 = V()
  var acc1 = V()
  var i = 0
  let rx = UnsafeRawPointer(x)
  let ry = UnsafeRawPointer(y)
  while i + 8 <= n {
    acc0 = acc0.addingProduct(
      rx.loadUnaligned(fromByteOffset: i * 8, as: V.self), ry.loadUnaligned(fromByteOffset: i * 8, as: V.self))
    acc1 = acc1.addingProduct(
      rx.loadUnaligned(fromByteOffset: i * 8 + 32, as: V.self),
      ry.loadUnaligned(fromByteOffset: i * 8 + 32, as: V.self))
    i += 8
  }
  var s = (acc0 + acc1).sum()
  while i < n {
    s = s.addingProduct(x[i], y[i])
    i += 1
  }
  return s
}

/// w ← S·v for a dense symmetric S.
private func matvec(_ s: Matrix<Double>, _ v: [Double], _ w: inout [Double]) {
  let n = s.rows
  s.withUnsafeBufferPointer { ps in
    v.withUnsafeBufferPointer { pv in
      for i in 0..<n { w[i] = dotKernel(ps.baseAddress! + i * n, pv.baseAddress!, n) }
    }
  }
}
