import PruneTestSupport
import Testing

@testable import PruneKernels

// Tolerance: for every element, |Ĉᵢⱼ − Cᵢⱼ| ≤ γₖ₊₂ · (|α|·(|op(A)||op(B)|)ᵢⱼ + |β|·|C⁰ᵢⱼ|).
// The blocked kernel sums k fused products in some fixed order (γₖ), then scales by α and adds
// β·C⁰ (two more roundings). The exact value is computed in Double from the same inputs: for Float
// inputs its own error (~k·2⁻⁵³) is negligible; for Double inputs the reference has the same bound,
// so the allowance is doubled.

struct GEMMCase: Sendable, CustomTestStringConvertible {
  let precision: Precision
  let transposeA: Bool
  let transposeB: Bool
  /// Whose micro-kernel: every instruction set this CPU supports is tested.
  let isa: KernelISA
  var testDescription: String {
    "\(precision) \(transposeA ? "Aᵀ" : "A")·\(transposeB ? "Bᵀ" : "B") \(isa.rawValue)"
  }
  static let all: [GEMMCase] = KernelISA.supported.flatMap { isa in
    Precision.allCases.flatMap { p in
      [(false, false), (false, true), (true, false), (true, true)].map {
        GEMMCase(precision: p, transposeA: $0.0, transposeB: $0.1, isa: isa)
      }
    }
  }
}

/// Runs the blocked driver on one shape and checks every element against the exact product.
func checkBlockedGEMM<T: KernelScalar>(
  _: T.Type, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, alpha: T, beta: T,
  blocking: GEMMBlocking, threads: Int, minimumFlopsPerThread: Double, seed: UInt64,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  var rng = SplitMix64(seed: seed)
  let a = Matrix<T>.random(rows: transposeA ? k : m, columns: transposeA ? m : k, using: &rng)
  let b = Matrix<T>.random(rows: transposeB ? n : k, columns: transposeB ? k : n, using: &rng)
  let c0 =
    beta == 0
    ? Matrix<T>(rows: m, columns: n, repeating: .nan)  // β = 0 must not read C
    : Matrix<T>.random(rows: m, columns: n, using: &rng)
  var c = c0
  a.withUnsafeBufferPointer { pa in
    b.withUnsafeBufferPointer { pb in
      c.withUnsafeMutableBufferPointer { pc in
        gemmBlocked(
          m: m, n: n, k: k, alpha: alpha,
          a: StridedOperand(
            base: pa.baseAddress!, rowStride: transposeA ? 1 : max(1, a.columns),
            columnStride: transposeA ? max(1, a.columns) : 1),
          b: StridedOperand(
            base: pb.baseAddress!, rowStride: transposeB ? 1 : max(1, b.columns),
            columnStride: transposeB ? max(1, b.columns) : 1),
          beta: beta, c: pc.baseAddress!, ldc: max(1, n), threads: threads, blocking: blocking,
          region: .full, minimumFlopsPerThread: minimumFlopsPerThread)
      }
    }
  }
  // Exact (Double) value and the elementwise bound.
  let ad = a.converted(to: Double.self)
  let bd = b.converted(to: Double.self)
  var exact = beta == 0 ? Matrix<Double>(rows: m, columns: n) : c0.converted(to: Double.self)
  gemmReference(
    ad, bd, into: &exact, transposeA: transposeA, transposeB: transposeB,
    alpha: Double(alpha), beta: Double(beta))
  var magnitude = Matrix<Double>(rows: m, columns: n)
  gemmReference(
    ad.map { abs($0) }, bd.map { abs($0) }, into: &magnitude,
    transposeA: transposeA, transposeB: transposeB)
  let g = gamma(k + 2, T.self) * (T.self == Double.self ? 2 : 1)
  var bounds = Matrix<Double>(rows: m, columns: n)
  for i in 0..<m {
    for j in 0..<n {
      let cTerm = beta == 0 ? 0 : abs(Double(beta)) * abs(Double(c0[i, j]))
      bounds[i, j] = g * (abs(Double(alpha)) * magnitude[i, j] + cTerm)
    }
  }
  expectWithinBounds(
    c, exact, bounds: bounds,
    "\(T.self) m=\(m) n=\(n) k=\(k) Aᵀ=\(transposeA) Bᵀ=\(transposeB) α=\(alpha) β=\(beta) \(blocking) threads=\(threads) seed=\(seed)",
    sourceLocation: sourceLocation)
}

/// Tiny cache blocks (kc = 4, mc = 2·MR, nc = 2·NR) so that small matrices cross every
/// register-tile and cache-block boundary; the register tile is the real micro-kernel of `isa`.
func tinyBlocking<T: KernelScalar>(_: T.Type, _ isa: KernelISA = .active) -> GEMMBlocking {
  let r = T.gemmBlocking(for: isa)
  return GEMMBlocking(mr: r.mr, nr: r.nr, kc: 4, mc: 2 * r.mr, nc: 2 * r.nr)
}

@Suite("Blocked GEMM equals the reference")
struct GEMMTests {
  // m covers 0, 1 and every remainder mod MR = 6 and mod mc = 12, plus a second mc block;
  // n every remainder mod NR = 8 and 16 (AVX2) and the first 17 plus the last ones mod NR = 32 and
  // 64 (AVX-512; the kernel never branches on the shape, the edge path copies any width), both
  // sides of nc = 2·NR and a second nc block; k every remainder mod kc = 4 over three blocks
  // (0 included: C ← β·C).
  static let ms = Array(0...13) + [23, 24, 25]
  static func ns(nr: Int) -> [Int] {
    Array(Set(Array(0...17) + [nr - 1, nr, nr + 1, 2 * nr - 1, 2 * nr, 2 * nr + 1])).sorted()
  }
  static let ks = [0, 1, 2, 3, 4, 5, 7, 8, 9, 13]

  @Test("every remainder of the micro-tile and cache blocks", arguments: GEMMCase.all)
  func everyRemainder(_ c: GEMMCase) {
    func run<T: KernelScalar>(_ t: T.Type) {
      var seed: UInt64 = 1
      let blocking = tinyBlocking(T.self, c.isa)
      for m in Self.ms {
        for n in Self.ns(nr: blocking.nr) {
          for k in Self.ks {
            seed += 1
            checkBlockedGEMM(
              T.self, m: m, n: n, k: k, transposeA: c.transposeA, transposeB: c.transposeB,
              alpha: 1, beta: 0, blocking: blocking, threads: 1,
              minimumFlopsPerThread: 0, seed: seed)
          }
        }
      }
    }
    c.precision == .float ? run(Float.self) : run(Double.self)
  }

  @Test("α and β, including β = 0 over a C full of NaN", arguments: GEMMCase.all)
  func alphaBeta(_ c: GEMMCase) {
    func run<T: KernelScalar>(_ t: T.Type) {
      for (i, (alpha, beta)) in [(T(1), T(0)), (T(-0.5), T(0)), (T(1), T(1)), (T(2.5), T(-1.25)), (T(0), T(3))]
        .enumerated()
      {
        checkBlockedGEMM(
          T.self, m: 19, n: 37, k: 11, transposeA: c.transposeA, transposeB: c.transposeB,
          alpha: alpha, beta: beta, blocking: tinyBlocking(T.self, c.isa), threads: 2,
          minimumFlopsPerThread: 0, seed: 100 + UInt64(i))
      }
    }
    c.precision == .float ? run(Float.self) : run(Double.self)
  }

  @Test("the production blocking across its cache-block boundaries", arguments: GEMMCase.all)
  func productionBlocking(_ c: GEMMCase) {
    func run<T: KernelScalar>(_ t: T.Type) {
      let b = T.gemmBlocking(for: c.isa)
      // one past mc, nc and kc; a balanced-kc split (k = 2kc + 1 → three blocks of kc − 85)
      for (i, (m, n, k)) in [(b.mc + 1, 37, b.kc + 1), (7, b.nc + 1, 33), (b.mr + 1, b.nr + 3, 2 * b.kc + 1)]
        .enumerated()
      {
        checkBlockedGEMM(
          T.self, m: m, n: n, k: k, transposeA: c.transposeA, transposeB: c.transposeB,
          alpha: 1, beta: 1, blocking: b, threads: 2, minimumFlopsPerThread: 0,
          seed: 200 + UInt64(i))
      }
    }
    c.precision == .float ? run(Float.self) : run(Double.self)
  }

  @Test("public Matrix API: shapes, transposes and the product", arguments: Precision.allCases)
  func matrixAPI(_ p: Precision) {
    func run<T: KernelScalar>(_ t: T.Type) {
      var rng = SplitMix64(seed: 7)
      let a = Matrix<T>.random(rows: 9, columns: 5, using: &rng)
      let b = Matrix<T>.random(rows: 5, columns: 4, using: &rng)
      let c = matmul(a, b)
      #expect(c.rows == 9 && c.columns == 4)
      // (AB)ᵀ = BᵀAᵀ, computed through both transpose flags
      let ct = matmul(b, a, transposeA: true, transposeB: true)
      var worst = 0.0
      for i in 0..<9 { for j in 0..<4 { worst = max(worst, abs(Double(c[i, j] - ct[j, i]))) } }
      // Both are 5-term sums of the same products; they may differ by the sum's rounding only.
      #expect(worst <= 2 * gamma(5, T.self) * 5, "max |AB − (BᵀAᵀ)ᵀ| = \(worst)")
    }
    p == .float ? run(Float.self) : run(Double.self)
  }

  @Test("a shape mismatch stops the program with both shapes in the message")
  func shapeMismatchTraps() async {
    await #expect(processExitsWith: .failure) {
      let a = Matrix<Float>(rows: 2, columns: 3)
      let b = Matrix<Float>(rows: 4, columns: 2)
      _ = matmul(a, b)
    }
  }
}

@Suite("Blocked GEMM against a random-vector probe at larger sizes")
struct GEMMProbeTests {
  // BLIS's check (testsuite/src/test_gemm.c): for a random vector t, C·t must equal α·A·(B·t) + β·C⁰·t.
  // It is O(n²) and independent of the summation order, so it checks large products without a
  // second O(n³) reference. Bound per element of C·t: γₖ₊₂ · Σⱼ (|α|(|A||B|)ᵢⱼ + |β||C⁰ᵢⱼ|)|tⱼ|,
  // bounded above by γₖ₊₂·(|α|·|A|(|B||t|) + |β||C⁰||t|) + the probe's own Double rounding (negligible).
  @Test("C·t = α·A·(B·t) + β·C⁰·t", arguments: Precision.allCases)
  func probe(_ p: Precision) {
    func run<T: KernelScalar>(_ t: T.Type) {
      var rng = SplitMix64(seed: 42)
      let (m, n, k) = (301, 517, 611)
      let a = Matrix<T>.random(rows: m, columns: k, using: &rng)
      let b = Matrix<T>.random(rows: k, columns: n, using: &rng)
      let c0 = Matrix<T>.random(rows: m, columns: n, using: &rng)
      let alpha: T = 0.75
      let beta: T = -0.5
      var c = c0
      gemm(a, b, into: &c, alpha: alpha, beta: beta, threads: 2)
      let v = (0..<n).map { _ in Double.random(in: -1...1, using: &rng) }
      func mv(_ x: Matrix<T>, _ y: [Double], abs useAbs: Bool = false) -> [Double] {
        (0..<x.rows).map { i in
          var s = 0.0
          for j in 0..<x.columns { s += (useAbs ? abs(Double(x[i, j])) : Double(x[i, j])) * y[j] }
          return s
        }
      }
      let ct = mv(c, v)
      let expected = zip(mv(a, mv(b, v)), mv(c0, v)).map { Double(alpha) * $0 + Double(beta) * $1 }
      let absV = v.map(abs)
      let bound = zip(mv(a, mv(b, absV, abs: true), abs: true), mv(c0, absV, abs: true)).map {
        gamma(k + 2, T.self) * (abs(Double(alpha)) * $0 + abs(Double(beta)) * $1) * (T.self == Double.self ? 4 : 1)
      }
      var failures = 0
      for i in 0..<m where !(abs(ct[i] - expected[i]) <= bound[i]) { failures += 1 }
      #expect(failures == 0, "\(T.self): \(failures) of \(m) probe entries outside the bound")
    }
    p == .float ? run(Float.self) : run(Double.self)
  }
}
