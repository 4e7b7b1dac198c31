import PruneTestSupport
import Testing

@testable import PruneSolvers

/// `traceOfProduct` forms AB a block of rows and a panel of columns at a time, so that a wide
/// layer's error never holds a Double copy of its Gram; the result must have the bits of the whole
/// product summed row by row (LayerProblem's errors and reports do not depend on the blocking).
@Suite struct TraceOfProductTests {
  /// tr(A B Cᵀ) the direct way: the Double matrices whole, AB by one `matmul`, summed in order.
  static func whole(_ a: Matrix<Double>, _ b: Matrix<Float>, _ c: Matrix<Double>) -> Double {
    let ab = matmul(a, b.converted(to: Double.self))
    var s = 0.0
    for i in 0..<ab.rows { for j in 0..<ab.columns { s += ab[i, j] * c[i, j] } }
    return s
  }

  /// Blocks of 1, 3 and every row, panels of 1, 7 and every column (n = 37: 7 does not divide it).
  @Test(arguments: [(8 * 37, 1), (3 * 8 * 37, 7), (1 << 20, 512)])
  func blockedEqualsWhole(_ blockBytes: Int, _ panel: Int) {
    var rng = SplitMix64(seed: 41)
    let (m, n) = (11, 37)
    let a = Matrix<Float>.random(rows: m, columns: n, using: &rng).converted(to: Double.self)
    let c = Matrix<Float>.random(rows: m, columns: n, using: &rng).converted(to: Double.self)
    let b = Matrix<Float>.random(rows: n, columns: n, using: &rng)
    let blocked = traceOfProduct(rows: m, b, blockBytes: blockBytes, panelColumns: panel) { r in
      (a.submatrix(rows: r, columns: 0..<n), c.submatrix(rows: r, columns: 0..<n))
    }
    #expect(blocked == Self.whole(a, b, c), "blocks of \(blockBytes) bytes, panels of \(panel) columns")
  }

  /// The layer problem's error and energy are those of the whole product (default blocking).
  @Test func layerErrorIsTheWholeProducts() throws {
    var rng = SplitMix64(seed: 42)
    let (m, n) = (9, 600)
    let w = Matrix<Float>.random(rows: m, columns: n, using: &rng)
    let x = Matrix<Float>.random(rows: 700, columns: n, using: &rng)
    let problem = try LayerProblem(weight: w, gram: gram(x), tokens: 700)
    var candidate = w
    for i in stride(from: 0, to: m * n, by: 2) { candidate[i / n, i % n] = 0 }
    let wd = w.converted(to: Double.self)
    var d = wd
    for i in 0..<m { for j in 0..<n { d[i, j] -= Double(candidate[i, j]) } }
    #expect(problem.denseEnergy == Self.whole(wd, problem.gram, wd))
    #expect(problem.error(of: candidate) == Self.whole(d, problem.gram, d))
  }
}
