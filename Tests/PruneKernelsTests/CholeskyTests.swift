import PruneTestSupport
import Testing

@testable import PruneKernels

// Tolerance: a computed Cholesky factor satisfies L̂L̂ᵀ = A + ΔA with |ΔA| ≤ γₙ₊₁·|L̂||L̂ᵀ|
// elementwise (Higham, Theorem 10.3), whatever the order of the sums.

func expectReconstructs<T: KernelScalar>(
  _ l: Matrix<T>, _ a: Matrix<T>, _ context: String, sourceLocation: SourceLocation = #_sourceLocation
) {
  let n = a.rows
  let ld = l.converted(to: Double.self)
  let llt = matmul(ld, ld, transposeB: true)
  let absL = ld.map { abs($0) }
  let bound = matmul(absL, absL, transposeB: true).map { gamma(n + 1, T.self) * $0 }
  expectWithinBounds(a, llt, bounds: bound, context, sourceLocation: sourceLocation)
}

@Suite("Cholesky factorisation and solves")
struct CholeskyTests {
  @Test("the blocked factor reconstructs A for every block remainder", arguments: Precision.allCases)
  func reconstructs(_ p: Precision) throws {
    func run<T: KernelScalar>(_: T.Type) {
      var seed: UInt64 = 500
      for n in Array(0...13) + [31, 64, 65, 130] {
        for blockSize in [1, 4, 128] {
          seed += 1
          var rng = SplitMix64(seed: seed)
          let a = randomSPD(n, shift: 0.1, using: &rng).converted(to: T.self)
          var u = a
          let failure = u.withUnsafeMutableBufferPointer { p in
            p.baseAddress.flatMap { choleskyUpperInPlace($0, n: n, ld: n, blockSize: blockSize, threads: 2) }
          }
          #expect(failure == nil, "\(T.self) n=\(n) block=\(blockSize) failed at \(String(describing: failure))")
          var l = u.transposed()
          for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { l[i, j] = 0 } }
          expectReconstructs(l, a, "\(T.self) n=\(n) block=\(blockSize) seed=\(seed)")
        }
      }
    }
    p == .float ? run(Float.self) : run(Double.self)
  }

  @Test("the in-place lower-from-upper equals the transpose with the strict upper zeroed")
  func lowerFromUpperInPlaceEqualsTransposeThenZero() {
    // Bit equality: both only move values. Sizes straddle the 32 × 32 tiles.
    var rng = SplitMix64(seed: 77)
    for n in [0, 1, 2, 31, 32, 33, 64, 97] {
      let a = Matrix<Double>.random(rows: n, columns: n, using: &rng)
      var expected = a.transposed()
      for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { expected[i, j] = 0 } }
      var got = a
      got.withUnsafeMutableBufferPointer { p in
        if let base = p.baseAddress { lowerFromUpperInPlace(base, n: n) }
      }
      #expect(got == expected, "n=\(n) seed=77")
    }
  }

  @Test("the reference factor reconstructs A and the public factor satisfies its invariants")
  func referenceAndInvariants() throws {
    var rng = SplitMix64(seed: 31)
    let a = randomSPD(40, using: &rng)
    let ref = try #require(choleskyReference(a))
    expectReconstructs(ref, a, "reference")
    let f = try cholesky(a)
    f.checkInvariants()
    #expect(f.attempts == 1 && f.addedDamping == 0)
    expectReconstructs(f.lower, a, "public")
  }

  @Test("a singular Gram fails without damping and succeeds with a reported damping")
  func dampingRetry() throws {
    var rng = SplitMix64(seed: 32)
    // 10 tokens, 30 features: rank ≤ 10, positive semidefinite but singular.
    let x = Matrix<Double>.random(rows: 10, columns: 30, using: &rng)
    let g = gram(x)
    #expect(throws: CholeskyError.self) { try cholesky(g) }
    let f = try cholesky(g, damping: .retry)
    #expect(f.attempts > 1, "the first attempt cannot succeed on a singular matrix")
    #expect(f.addedDamping > 0)
    let meanDiag = g.trace / 30
    // δ is one of the policy's steps: 1e-8·10^(attempts−2)·mean|diag|.
    var expected = 1e-8 * meanDiag
    for _ in 0..<(f.attempts - 2) { expected *= 10 }
    #expect(abs(f.addedDamping - expected) <= 1e-12 * expected)
    var damped = g
    for i in 0..<30 { damped[i, i] += f.addedDamping }
    expectReconstructs(f.lower, damped, "damped")
  }

  @Test("an indefinite or non-finite matrix is an error that names the column")
  func indefinite() {
    let a = Matrix<Double>(rows: 3, columns: 3, elements: [4, 0, 0, 0, -1000, 0, 0, 0, 1])
    #expect(throws: CholeskyError.self) { try cholesky(a, damping: .retry) }
    do {
      _ = try cholesky(a)
    } catch {
      guard case .notPositiveDefinite(let column, let pivot, let attempts, _) = error else { return }
      #expect(column == 1 && pivot == -1000 && attempts == 1)
      #expect(error.description.contains("Hint:"))
    }
    let nan = Matrix<Float>(rows: 2, columns: 2, elements: [1, 0, 0, .nan])
    #expect(throws: CholeskyError.self) { try cholesky(nan, damping: .retry) }
  }

  // The tiled, parallel invertLower does the reference's operations on every element in the
  // reference's order, so the two agree bit for bit: n = 600 spans several column tiles and row
  // blocks (128 × 256) and a ragged edge, n = 1101 several panels of full rows (256) and a ragged
  // register tile (4 rows × 2 vectors); a few zero entries of L take the reference's skip.
  @Test("invertLower equals invertLowerReference bit for bit at 1 and 2 threads", arguments: Precision.allCases)
  func invertLowerMatchesReference(_ p: Precision) throws {
    func run<T: KernelScalar>(_: T.Type) throws {
      var rng = SplitMix64(seed: 71)
      for n in [1, 5, 129, 600, 1101] {
        var l = try cholesky(randomSPD(n, shift: 1, using: &rng).converted(to: T.self)).lower
        for i in 0..<n where i % 7 == 3 { for p in 0..<i where p % 5 == 1 { l[i, p] = 0 } }
        let reference = invertLowerReference(l)
        for threads in [1, 2] {
          #expect(invertLower(l, threads: threads) == reference, "\(T.self) n = \(n), \(threads) thread(s)")
        }
      }
    }
    p == .float ? try run(Float.self) : try run(Double.self)
  }

  // Solves are backward stable: the residual satisfies ‖AX̂ − B‖ ≤ c·n·u·‖A‖‖X̂‖ for a modest c. We
  // check elementwise |AX̂ − B| ≤ 4γₙ₊₁·(|A||X̂| + |B|) (three triangular phases and the product).
  @Test("choleskySolve, solveLower, solveLowerTransposed, invertLower and spdInverse", arguments: Precision.allCases)
  func solves(_ p: Precision) throws {
    func run<T: KernelScalar>(_: T.Type) throws {
      var rng = SplitMix64(seed: 33)
      let n = 47
      let a = randomSPD(n, shift: 1, using: &rng).converted(to: T.self)
      let b = Matrix<T>.random(rows: n, columns: 9, using: &rng)
      let f = try cholesky(a)
      func residualCheck(_ lhs: Matrix<T>, _ x: Matrix<T>, _ rhs: Matrix<T>, _ what: String) {
        let lhsD = lhs.converted(to: Double.self)
        let xD = x.converted(to: Double.self)
        let ax = matmul(lhsD, xD)
        let bound = matmul(lhsD.map { abs($0) }, xD.map { abs($0) })
        var bounds = bound
        for i in 0..<bounds.rows {
          for j in 0..<bounds.columns {
            bounds[i, j] = 4 * gamma(n + 1, T.self) * (bound[i, j] + abs(Double(rhs[i, j])))
          }
        }
        expectWithinBounds(rhs, ax, bounds: bounds, "\(T.self) \(what)")
      }
      residualCheck(a, choleskySolve(f, b), b, "A⁻¹B")
      var y = b
      solveLower(f.lower, &y)
      residualCheck(f.lower, y, b, "L⁻¹B")
      var z = b
      solveLowerTransposed(f.lower, &z)
      residualCheck(f.lower.transposed(), z, b, "L⁻ᵀB")
      let li = invertLower(f.lower)
      residualCheck(f.lower, li, Matrix<T>.identity(n), "L·L⁻¹ = I")
      for i in 0..<n { for j in (i + 1)..<n { #expect(li[i, j] == 0) } }
      let inv = spdInverse(f)
      residualCheck(a, inv, Matrix<T>.identity(n), "A·A⁻¹ = I")
      #expect(inv == inv.transposed(), "the SPD inverse is exactly symmetric")
    }
    p == .float ? try run(Float.self) : try run(Double.self)
  }
}
