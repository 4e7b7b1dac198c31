import PruneSolvers
import PruneTestSupport
import Testing

// The worked examples of Docs/methods/: one @Test per article, named after its file. Every number
// an article computes (masks, weights, errors, and the intermediate quantities of its hand
// derivations) is asserted here, so a doc cannot drift from the code it describes; numbers quoted
// from Docs/results.md#lessons-measured-on-the-real-model or the papers are not. All articles share
// one problem (Docs/methods/README.md): W: [2 × 4] and X: [6 × 4] with small integer inputs, so
// G = XᵀX is exact and can be checked by hand.

/// W: `[out × in]` = [2 × 4].
private let docW = Matrix<Double>(
  rows: 2, columns: 4,
  elements: [
    0.8, -0.5, 0.3, -0.35,
    0.2, 0.7, -1.0, 0.4,
  ])
/// X: `[tokens × in]` = [6 × 4].
private let docX = Matrix<Double>(
  rows: 6, columns: 4,
  elements: [
    1, 2, 0, 1,
    0, 1, 1, -1,
    2, 0, 1, 3,
    1, -1, 2, 0,
    -1, 2, 0, 2,
    0, 1, -1, 4,
  ])
private let half = SparsityPattern.unstructured(0.5)
private let halfRow = SparsityPattern.unstructured(ratio: 0.5, group: .row)
private let twoFour = SparsityPattern.nOfM(n: 2, m: 4)

private func docProblem() throws -> LayerProblem<Double> { try LayerProblem(weight: docW, inputs: docX) }

/// Row i of the example as a one-row problem with the same Gram (rows are independent).
private func rowProblem(_ i: Int, _ g: Matrix<Double>) throws -> LayerProblem<Double> {
  try LayerProblem(weight: Matrix(rows: 1, columns: 4, elements: docW.row(i)), gram: g)
}

// MARK: - Comparing with printed numbers

/// The docs print 4 significant digits: a printed p stands for any value within half a unit of
/// its 4th digit, which is at most 5e-4·|p| (reached for p = 1.000). A printed 0 is an exact zero
/// (a pruned weight), checked exactly.
private let printedTolerance = 5e-4

private func expectPrinted(
  _ actual: Double, _ printed: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
  if printed == 0 {
    #expect(actual == 0, "\(what): \(actual), the doc prints 0", sourceLocation: sourceLocation)
  } else {
    #expect(
      abs(actual - printed) <= printedTolerance * abs(printed),
      "\(what): \(actual), the doc prints \(printed)", sourceLocation: sourceLocation)
  }
}

private func expectPrinted(
  _ actual: [Double], _ printed: [Double], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(
    actual.count == printed.count, "\(what): \(actual.count) values, the doc prints \(printed.count)",
    sourceLocation: sourceLocation)
  for (k, (a, p)) in zip(actual, printed).enumerated() {
    expectPrinted(a, p, "\(what)[\(k)]", sourceLocation: sourceLocation)
  }
}

private func expectPrinted(
  _ actual: Matrix<Double>, _ printed: [[Double]], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(actual.rows == printed.count, "\(what): \(actual.shapeDescription)", sourceLocation: sourceLocation)
  for (i, row) in printed.enumerated() where i < actual.rows {
    expectPrinted(actual.row(i), row, "\(what) row \(i)", sourceLocation: sourceLocation)
  }
}

/// The mask as the docs print it: one row of 0/1 per output, 1 = kept.
private func expectMask(
  _ mask: Mask, _ printed: [[Int]], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
  let rows = (0..<mask.rows).map { i in (0..<mask.columns).map { mask[i, $0] ? 1 : 0 } }
  #expect(rows == printed, "\(what): mask \(rows)", sourceLocation: sourceLocation)
}

/// Mask, weights and relative error of a result, as every article prints them.
private func expectResult(
  _ r: PruningResult<Double>, mask: [[Int]], weight: [[Double]], relativeError: Double, _ what: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  expectMask(r.mask, mask, what, sourceLocation: sourceLocation)
  expectPrinted(r.weight, weight, "\(what) Ŵ", sourceLocation: sourceLocation)
  expectPrinted(r.report.relativeError, relativeError, "\(what) relative error", sourceLocation: sourceLocation)
}

/// x = A⁻¹b for a small SPD A, by the kernels' Cholesky.
private func solve(_ a: Matrix<Double>, _ b: [Double]) throws -> [Double] {
  choleskySolve(try cholesky(a), Matrix(rows: b.count, columns: 1, elements: b)).elements
}

// MARK: - The articles

@Suite("Docs/methods worked examples")
struct DocExampleTests {
  @Test("README.md: the shared problem and every method on it")
  func readme() throws {
    let p = try docProblem()
    #expect(p.gram.elements == [7, -1, 4, 5, -1, 11, -2, 9, 4, -2, 7, -2, 5, 9, -2, 31])
    expectPrinted(p.denseEnergy, 41.74, "tr(W G Wᵀ)")
    // Relative error of every method with its default options: (0.5 over the matrix, 0.5/row).
    let table: [(PruningMethod, Double, Double)] = [
      (.magnitude, 0.2609, 0.2609), (.wanda, 0.2786, 0.2401), (.sparsegpt, 0.2700, 0.1632),
      (.admm, 0.1396, 0.1396), (.fista, 0.1604, 0.1386), (.refit, 0.2749, 0.1688),
      (.apt, 0.2700, 0.1386), (.exact, 0.1385, 0.1385), (.alps, 0.1386, 0.1386),
    ]
    for (method, matrix, row) in table {
      expectPrinted(try prune(p, method: method, pattern: half).report.relativeError, matrix, "\(method) 0.5")
      expectPrinted(try prune(p, method: method, pattern: halfRow).report.relativeError, row, "\(method) 0.5/row")
      // With 4 inputs, 2:4 is one group per row: the same constraint as 0.5/row.
      let nm = try prune(p, method: method, pattern: twoFour)
      #expect(nm.mask == (try prune(p, method: method, pattern: halfRow)).mask, "\(method) 2:4")
    }
  }

  @Test("magnitude.md")
  func magnitude() throws {
    let p = try docProblem()
    let r = try prune(p, method: .magnitude, pattern: half)
    expectResult(
      r, mask: [[1, 1, 0, 0], [0, 1, 1, 0]], weight: [[0.8, -0.5, 0, 0], [0, 0.7, -1, 0]], relativeError: 0.2609, "0.5")
    expectPrinted(r.report.error, 10.89, "E")
    // Ties: |−0.5| = |0.5|; the lower column index is pruned first.
    let tied = try LayerProblem(
      weight: Matrix(rows: 1, columns: 4, elements: [0.5, -0.5, 0.5, 0.25]), gram: .identity(4))
    expectMask(try Magnitude().prune(tied, pattern: halfRow).mask, [[0, 1, 1, 0]], "ties")
  }

  @Test("wanda.md")
  func wanda() throws {
    let p = try docProblem()
    let g = p.gram
    expectPrinted((0..<4).map { g[$0, $0].squareRoot() }, [2.646, 3.317, 2.646, 5.568], "‖xⱼ‖")
    let scores = Matrix<Double>(rows: 2, columns: 4) { i, j in abs(docW[i, j]) * g[j, j].squareRoot() }
    expectPrinted(scores, [[2.117, 1.658, 0.7937, 1.949], [0.5292, 2.322, 2.646, 2.227]], "scores")
    let r = try prune(p, method: .wanda, pattern: halfRow)
    expectResult(
      r, mask: [[1, 0, 0, 1], [0, 1, 1, 0]], weight: [[0.8, 0, 0, -0.35], [0, 0.7, -1, 0]], relativeError: 0.2401,
      "0.5/row")
    expectPrinted(r.report.error, 10.02, "E")
    // The error per row: squared scores of the pruned weights plus the cross term.
    expectPrinted(
      [scores[0, 1] * scores[0, 1], scores[0, 2] * scores[0, 2], 2 * docW[0, 1] * docW[0, 2] * g[1, 2]],
      [2.75, 0.63, 0.6], "row 0 terms")
    expectPrinted(
      [scores[1, 0] * scores[1, 0], scores[1, 3] * scores[1, 3], 2 * docW[1, 0] * docW[1, 3] * g[0, 3]],
      [0.28, 4.96, 0.8], "row 1 terms")
    expectPrinted(
      try rowProblem(0, g).error(of: Matrix(rows: 1, columns: 4, elements: r.weight.row(0))), 3.98, "E row 0")
    expectPrinted(
      try rowProblem(1, g).error(of: Matrix(rows: 1, columns: 4, elements: r.weight.row(1))), 6.04, "E row 1")
    let m = try prune(p, method: .wanda, pattern: half)
    expectResult(
      m, mask: [[1, 0, 0, 0], [0, 1, 1, 1]], weight: [[0.8, 0, 0, 0], [0, 0.7, -1, 0.4]], relativeError: 0.2786, "0.5")
  }

  @Test("sparsegpt.md")
  func sparsegpt() throws {
    let p = try docProblem()
    var h = p.gram
    let delta = 0.01 * p.gram.trace / 4
    for j in 0..<4 { h[j, j] += delta }
    let u = try cholesky(spdInverse(try cholesky(h))).lower.transposed()
    expectPrinted(
      u,
      [
        [0.5443, 0.1035, -0.3144, -0.1375], [0, 0.3481, 0.07061, -0.09609], [0, 0, 0.3777, 0.02426], [0, 0, 0, 0.1792],
      ], "U")
    let scores = Matrix<Double>(rows: 2, columns: 4) { i, j in docW[i, j] * docW[i, j] / (u[j, j] * u[j, j]) }
    expectPrinted(scores, [[2.161, 2.063, 0.631, 3.815], [0.135, 4.043, 7.012, 4.982]], "scores")

    let m = try prune(p, method: .sparsegpt, pattern: half)
    expectResult(
      m, mask: [[0, 0, 0, 1], [0, 1, 1, 1]], weight: [[0, 0, 0, -0.3853], [0, 0.662, -0.8845, 0.4505]],
      relativeError: 0.2700, "0.5")
    expectPrinted(try #require(m.report.damping), 0.14, "δ")

    let r = try prune(p, method: .sparsegpt, pattern: halfRow)
    expectResult(
      r, mask: [[1, 0, 0, 1], [0, 0, 1, 1]], weight: [[0.8, 0, 0, -0.5138], [0, 0, -1.019, 0.6332]],
      relativeError: 0.1632, "0.5/row")
    expectPrinted(try #require(r.report.metrics["obs_loss"]), 3.471, "obs_loss")
    // The column sweep of row 0 by hand (columns 1 and 2 pruned); it must land on the library's row.
    var w0 = docW.row(0)
    let e1 = w0[1] / u[1, 1]
    for c in 1..<4 { w0[c] -= e1 * u[1, c] }
    expectPrinted(e1, -1.436, "e at column 1")
    expectPrinted(w0, [0.8, 0, 0.4014, -0.488], "row 0 after column 1")
    let e2 = w0[2] / u[2, 2]
    for c in 2..<4 { w0[c] -= e2 * u[2, c] }
    expectPrinted(e2, 1.063, "e at column 2")
    #expect(
      maxAbsDifference(
        Matrix(rows: 1, columns: 4, elements: w0), Matrix(rows: 1, columns: 4, elements: r.weight.row(0))
      ).value <= 1e-12)

    let reference = try prune(
      p, method: .sparsegpt, pattern: half,
      options: {
        var o = MethodOptions()
        try o.set("count-rule", "reference", for: .sparsegpt)
        return o
      }())
    #expect(reference.mask.prunedCount == 5)
    expectResult(
      reference, mask: [[0, 0, 0, 0], [0, 1, 1, 1]], weight: [[0, 0, 0, 0], [0, 0.662, -0.8845, 0.4505]],
      relativeError: 0.3803, "reference count rule")
  }

  @Test("admm.md")
  func admm() throws {
    let p = try docProblem()
    let g = p.gram
    let d = (0..<4).map { g[$0, $0].squareRoot() + 1e-8 }
    expectPrinted(
      Matrix(rows: 2, columns: 4) { i, j in docW[i, j] * d[j] },
      [[2.117, -1.658, 0.7937, -1.949], [0.5292, 2.322, -2.646, 2.227]], "V₀")
    // The cubic schedule: pruned count ⌊8·sₜ⌋ of the 8 weights at t = 0…14 (P = 15, s = 0.5).
    let counts = (0..<15).map { t -> Int in
      let x = 1 - Double(t + 1) / 15
      return Int((8 * 0.5 * (1 - x * x * x)).rounded(.down))
    }
    #expect(counts == [0, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4])

    let r = try prune(p, method: .admm, pattern: half)
    expectResult(
      r, mask: [[1, 0, 0, 1], [0, 0, 1, 1]], weight: [[1.151, 0, 0, -0.5511], [0, 0, -1.02, 0.6143]],
      relativeError: 0.1396, "cubic")
    let rho0 = try #require(r.report.damping)
    expectPrinted(rho0, 0.1, "ρ₀")
    var o = MethodOptions()
    try o.set("mask-schedule", "final", for: .admm)
    let f = try prune(p, method: .admm, pattern: half, options: o)
    expectResult(
      f, mask: [[1, 0, 0, 1], [0, 0, 1, 1]], weight: [[1.151, 0, 0, -0.5511], [0, 0, -1.023, 0.6127]],
      relativeError: 0.1396, "final")
    // The fixed point: the masked minimiser with the ridge ρ₀·dⱼ²(ŵⱼ − wⱼ)², by hand, and 2000
    // iterations on the fixed mask.
    let wg = matmul(docW, g)
    expectPrinted([rho0 * d[0] * d[0], rho0 * d[3] * d[3]], [0.7, 3.1], "ρ₀dⱼ²")
    expectPrinted(
      [wg[0, 0] + rho0 * d[0] * d[0] * docW[0, 0], wg[0, 3] + rho0 * d[3] * d[3] * docW[0, 3]], [6.11, -13.035],
      "right-hand side, row 0")
    for (i, s, printed) in [(0, [0, 3], [1.151, -0.5511]), (1, [2, 3], [-1.023, 0.6127])] {
      let a = Matrix<Double>(rows: 2, columns: 2) { p, q in g[s[p], s[q]] + (p == q ? rho0 * d[s[p]] * d[s[p]] : 0) }
      let x = try solve(a, s.map { wg[i, $0] + rho0 * d[$0] * d[$0] * docW[i, $0] })
      expectPrinted(x, printed, "ridge refit row \(i)")
    }
    let fixed = try ADMM(options: .init(iterations: 2000)).prune(p, pattern: half, fixedMask: r.mask)
    expectPrinted(fixed.weight, [[1.151, 0, 0, -0.5511], [0, 0, -1.023, 0.6127]], "2000 iterations")
    try o.set("iterations", "0", for: .admm)
    expectResult(
      try prune(p, method: .admm, pattern: half, options: o), mask: [[1, 0, 0, 0], [0, 1, 1, 1]],
      weight: [[0.8, 0, 0, 0], [0, 0.7, -1, 0.4]], relativeError: 0.2786, "0 iterations")
  }

  @Test("alps.md")
  func alps() throws {
    let p = try docProblem()
    let g = p.gram
    let delta = 0.01 * (0..<4).reduce(0.0) { $0 + g[$1, $1] } / 4
    expectPrinted(delta, 0.14, "δ")
    let d = (0..<4).map { (g[$0, $0] + delta).squareRoot() + 1e-8 }
    expectPrinted(d, [2.672, 3.338, 2.672, 5.580], "d")
    let b0 = Matrix<Double>(rows: 2, columns: 4) { i, j in docW[i, j] * d[j] }
    expectPrinted(b0, [[2.138, -1.669, 0.8016, -1.953], [0.5344, 2.336, -2.672, 2.232]], "B₀")
    let start = Mask.pruningLowest(b0.map { abs($0) }, pattern: half)
    expectMask(start, [[1, 0, 0, 0], [0, 1, 1, 1]], "Π(B₀)")
    let r = try prune(p, method: .alps, pattern: half)
    expectResult(
      r, mask: [[1, 0, 0, 1], [0, 0, 1, 1]], weight: [[1.197, 0, 0, -0.5776], [0, 0, -1.019, 0.6332]],
      relativeError: 0.1386, "alps")
    #expect(r.report.iterations == 51 && r.report.metrics["factorisations"] == 17)
    // Converged, the refit is Refit's at the same δ on the same mask.
    let exact = try Refit().refit(p, mask: r.mask)
    #expect(exact.report.damping == r.report.damping)
    expectPrinted(exact.weight, [[1.197, 0, 0, -0.5776], [0, 0, -1.019, 0.6332]], "Refit on ALPS's mask")
  }

  @Test("fista.md")
  func fista() throws {
    let p = try docProblem()
    // λ₀: the entry at index ⌊0.5·8⌋ = 4 of the sorted |Wᵢⱼ|·Gⱼⱼ.
    let lambdaScores = (0..<8).map { abs(docW.elements[$0]) * p.gram[$0 % 4, $0 % 4] }
    expectPrinted(lambdaScores, [5.6, 5.5, 2.1, 10.85, 1.4, 7.7, 7, 12.4], "|Wᵢⱼ|·Gⱼⱼ")
    #expect(lambdaScores.sorted()[4] == 7)
    var paper = MethodOptions()
    try paper.set("preset", "paper", for: .fista)
    let r = try prune(p, method: .fista, pattern: half, options: paper)
    expectPrinted(try #require(r.report.metrics["lipschitz"]), 35.26, "L")
    expectPrinted(r.report.lambdaPath, [7, 3.5, 1.75], "λ path")
    expectPrinted(
      (0..<3).map { r.report.metrics["rounding_ratio_\($0)"] ?? -1 }, [0.0001726, 0.1569, 0.6472], "E_round/E_total")
    expectPrinted(r.report.objectiveTrace, [20.41, 12.15, 13.89], "E_total")
    expectPrinted(try #require(r.report.metrics["warm_start_error"]), 11.63, "warm start E")
    #expect(r.report.lambda == nil && !r.report.notes.isEmpty)
    expectResult(
      r, mask: [[1, 0, 0, 0], [0, 1, 1, 1]], weight: [[0.8, 0, 0, 0], [0, 0.7, -1, 0.4]], relativeError: 0.2786,
      "--preset paper")

    var o = paper
    try o.set("lambda-steps", "6", for: .fista)
    let six = try prune(p, method: .fista, pattern: half, options: o)
    expectPrinted(six.report.lambdaPath, [7, 3.5, 1.75, 2.475, 2.943, 2.699], "λ path, T = 6")
    expectPrinted(
      (3..<6).map { six.report.metrics["rounding_ratio_\($0)"] ?? -1 }, [0.3096, 0.2347, 0.4296], "ratios 4–6")
    expectPrinted(Array(six.report.objectiveTrace.suffix(3)), [10.58, 11.31, 13.9], "E_total 4–6")
    expectPrinted(try #require(six.report.lambda), 2.475, "best λ")
    expectResult(
      six, mask: [[0, 1, 0, 0], [0, 1, 1, 1]], weight: [[0, -0.4174, 0, 0], [0, 0.5018, -0.5794, 0.4372]],
      relativeError: 0.2535, "T = 6")

    try o.set("final-refit", "true", for: .fista)
    let refitted = try prune(p, method: .fista, pattern: half, options: o)
    expectResult(
      refitted, mask: [[0, 1, 0, 0], [0, 1, 1, 1]], weight: [[0, -0.9084, 0, 0], [0, 0.662, -0.8845, 0.4505]],
      relativeError: 0.1604, "T = 6, final refit")
  }

  @Test("refit.md")
  func refit() throws {
    let p = try docProblem()
    // G's eigenvalues lie in [1.976, 35.26]: bracketed by which shifts keep G − σI (or σI − G)
    // positive definite, to half a unit of the printed 4th digit.
    func positiveDefinite(_ a: Matrix<Double>) -> Bool { (try? cholesky(a)) != nil }
    let shifted = { (sigma: Double, sign: Double) in
      Matrix<Double>(rows: 4, columns: 4) { i, j in sign * (p.gram[i, j] - (i == j ? sigma : 0)) }
    }
    #expect(positiveDefinite(shifted(1.9755, 1)) && !positiveDefinite(shifted(1.9765, 1)), "λmin")
    #expect(positiveDefinite(shifted(35.265, -1)) && !positiveDefinite(shifted(35.255, -1)), "λmax")
    let wg = matmul(docW, p.gram)
    expectPrinted([wg[0, 0], wg[0, 3]], [5.55, -11.95], "(wG) row 0 on S = {0, 3}")
    let r = try prune(p, method: .refit, pattern: halfRow)
    expectResult(
      r, mask: [[1, 0, 0, 1], [0, 1, 1, 0]], weight: [[1.197, 0, 0, -0.5776], [0, 1.021, -0.91, 0]],
      relativeError: 0.1688, "δ = 0.01")
    expectPrinted(r.report.error, 7.046, "E, δ = 0.01")
    expectPrinted(try #require(r.report.damping), 0.14, "δ")
    var o = MethodOptions()
    try o.set("damping", "0", for: .refit)
    let exact = try prune(p, method: .refit, pattern: halfRow, options: o)
    expectResult(
      exact, mask: [[1, 0, 0, 1], [0, 1, 1, 0]], weight: [[1.207, 0, 0, -0.5802], [0, 1.026, -0.9068, 0]],
      relativeError: 0.1688, "δ = 0")
    expectPrinted(exact.report.error, 7.045, "E, δ = 0")
    expectPrinted(
      try solve(Matrix(rows: 2, columns: 2, elements: [7, 5, 5, 31]), [5.55, -11.95]), [1.207, -0.5802], "row 0 by hand"
    )
    let m = try prune(p, method: .refit, pattern: half)
    expectResult(
      m, mask: [[1, 0, 0, 0], [0, 1, 1, 1]], weight: [[0.793, 0, 0, 0], [0, 0.662, -0.8845, 0.4505]],
      relativeError: 0.2749, "0.5 over the matrix")
  }

  @Test("apt.md")
  func apt() throws {
    let p = try docProblem()
    var h = p.gram
    for j in 0..<4 { h[j, j] += 0.14 }
    let hInverse = spdInverse(try cholesky(h))
    // ΔE of every 2-subset of the single 2:4 group, per row: w_P [H⁻¹]_PP⁻¹ w_Pᵀ.
    let subsets = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    let printed: [[Double]] = [[5.669, 6.096, 2.682, 2.191, 8.355, 3.503], [3.75, 5.435, 4.975, 7.443, 13.49, 10.59]]
    for i in 0..<2 {
      let losses = try subsets.map { s -> Double in
        let y = try solve(Matrix(rows: 2, columns: 2) { a, b in hInverse[s[a], s[b]] }, s.map { docW[i, $0] })
        return zip(s, y).reduce(0) { $0 + docW[i, $1.0] * $1.1 }
      }
      expectPrinted(losses, printed[i], "ΔE row \(i)")
    }
    let nm = try prune(p, method: .apt, pattern: twoFour)
    expectResult(
      nm, mask: [[1, 0, 0, 1], [0, 0, 1, 1]], weight: [[1.197, 0, 0, -0.5776], [0, 0, -1.019, 0.6332]],
      relativeError: 0.1386, "2:4")
    expectPrinted(try #require(nm.report.metrics["mrp_loss"]), 5.942, "mrp_loss")
    let row = try prune(p, method: .apt, pattern: halfRow)
    #expect(row.weight == nm.weight)
    // One block: the damped refit on the same mask.
    let refit = try Refit().refit(p, mask: nm.mask)
    #expect(maxAbsDifference(refit.weight, nm.weight).value <= 1e-12)
    let m = try prune(p, method: .apt, pattern: half)
    expectResult(
      m, mask: [[0, 0, 0, 1], [0, 1, 1, 1]], weight: [[0, 0, 0, -0.3853], [0, 0.662, -0.8845, 0.4505]],
      relativeError: 0.2700, "0.5 over the matrix")
  }

  @Test("exact.md")
  func exact() throws {
    let p = try docProblem()
    // eᵢ(k): the least error of row i pruning k weights, and its pruned set.
    let printed: [[Double]] = [[0, 0.3458, 2.114, 6.565, 15.75], [0, 0.127, 3.669, 10.39, 25.99]]
    let printedMasks: [[[Int]]] = [
      [[1, 1, 1, 1], [1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 0, 0]],
      [[1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1], [0, 1, 0, 0]],
    ]
    var best = [[Double]](repeating: [], count: 2)
    for i in 0..<2 {
      let row = try rowProblem(i, p.gram)
      for k in 0...3 {
        let r = try BruteForce().prune(row, pattern: .unstructured(ratio: Double(k) / 4, group: .row))
        expectMask(r.mask, [printedMasks[i][k]], "row \(i), k = \(k)")
        best[i].append(r.report.error)
      }
      best[i].append(row.denseEnergy)  // k = 4: the row is gone
      // e(0) is 0 up to rounding (the refit of the full mask is W itself).
      #expect(best[i][0] <= 1e-12 * row.denseEnergy)
      expectPrinted(Array(best[i].dropFirst()), Array(printed[i].dropFirst()), "e(k) row \(i)")
    }
    let dp = (0...4).map { best[0][$0] + best[1][4 - $0] }
    expectPrinted(dp, [25.99, 10.74, 5.782, 6.692, 15.75], "D(2, 4) by k₀")

    let m = try prune(p, method: .exact, pattern: half)
    expectResult(
      m, mask: [[1, 0, 0, 1], [0, 0, 1, 1]], weight: [[1.207, 0, 0, -0.5802], [0, 0, -1.019, 0.6343]],
      relativeError: 0.1385, "0.5")
    expectPrinted(m.report.error, 5.782, "E")
    #expect(m.report.metrics["masks_evaluated"] == 32)
    let r = try prune(p, method: .exact, pattern: halfRow)
    #expect(r.weight == m.weight)
    #expect(r.report.metrics["masks_evaluated"] == 12)
    var o = MethodOptions()
    try o.set("damping", "0.01", for: .exact)
    let damped = try prune(p, method: .exact, pattern: half, options: o)
    expectResult(
      damped, mask: [[1, 0, 0, 1], [0, 0, 1, 1]], weight: [[1.197, 0, 0, -0.5776], [0, 0, -1.019, 0.6332]],
      relativeError: 0.1386, "δ = 0.01")
  }
}
