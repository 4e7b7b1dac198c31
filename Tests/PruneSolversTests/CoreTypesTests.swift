import PruneSolvers
import PruneTestSupport
import Testing

@Suite("Layer problems, sparsity patterns and masks")
struct CoreTypesTests {
  // E(Ŵ) from the Grams must equal ‖X*Ŵᵀ − XWᵀ‖² from the inputs. Both are Double sums of
  // O(tokens·n·m) terms; 1e-10 relative is ~10⁵ ulps of headroom for the different orders.
  static let errorAgreement = 1e-10

  @Test("the error from the Grams equals the error computed from the inputs", arguments: [false, true])
  func errorFromGrams(corrected: Bool) throws {
    var rng = SplitMix64(seed: 1)
    let (m, n, t) = (7, 12, 40)
    let w = Matrix<Double>.random(rows: m, columns: n, using: &rng)
    let x = Matrix<Double>.random(rows: t, columns: n, using: &rng)
    let xStar = corrected ? x.map { $0 + 0.1 } : nil
    let problem = try LayerProblem(weight: w, inputs: x, prunedInputs: xStar, chunkTokens: 16)
    #expect(problem.isErrorCorrected == corrected)
    let wHat = Matrix<Double>.random(rows: m, columns: n, using: &rng)
    let fromGrams = problem.error(of: wHat)
    let direct = directError(w: w, wHat: wHat, x: x, xStar: xStar)
    #expect(relativeDifference(fromGrams, direct) <= Self.errorAgreement, "grams \(fromGrams) direct \(direct)")
    #expect(
      relativeDifference(problem.denseEnergy, directError(w: w, wHat: Matrix(rows: m, columns: n), x: x))
        <= Self.errorAgreement)
    if !corrected { #expect(problem.error(of: w) == 0) }
  }

  @Test("building from inputs in chunks equals one pass up to rounding")
  func chunking() throws {
    var rng = SplitMix64(seed: 2)
    let w = Matrix<Double>.random(rows: 3, columns: 9, using: &rng)
    let x = Matrix<Double>.random(rows: 100, columns: 9, using: &rng)
    let a = try LayerProblem(weight: w, inputs: x, chunkTokens: 7)
    let b = try LayerProblem(weight: w, inputs: x, chunkTokens: 1000)
    // Sums of 100 products in different groupings: γ₁₀₀ relative to Σ|x||x| ≤ 100 here.
    for i in 0..<9 { for j in 0..<9 { #expect(abs(a.gram[i, j] - b.gram[i, j]) <= 100 * 100 * 1.2e-16) } }
    #expect(a.tokens == 100)
  }

  @Test("invalid problems are typed errors with hints")
  func invalidProblems() {
    let w = Matrix<Double>(rows: 2, columns: 3)
    #expect(throws: LayerProblemError.self) { try LayerProblem(weight: w, gram: Matrix(rows: 2, columns: 2)) }
    var nan = Matrix<Double>(rows: 3, columns: 3)
    nan[1, 2] = .nan
    do {
      _ = try LayerProblem(weight: w, gram: nan)
      Issue.record("a NaN in the Gram was accepted")
    } catch {
      guard case .nonFinite(let tensor, let row, let column, _) = error else {
        Issue.record("\(error)")
        return
      }
      #expect(tensor == "gram" && row == 1 && column == 2)
    }
    var asym = Matrix<Double>.identity(3)
    asym[0, 1] = 1
    do {
      _ = try LayerProblem(weight: w, gram: asym)
      Issue.record("an asymmetric Gram was accepted")
    } catch {
      #expect(error == .notSymmetric(tensor: "gram", row: 0, column: 1))
      #expect(error.description.contains("Hint:"))
    }
    #expect(throws: LayerProblemError.incompleteErrorCorrection) {
      try LayerProblem(weight: w, gram: .identity(3), crossGram: .identity(3))
    }
  }

  // The symmetry check scans tiles of 64 × 64 but names the first asymmetric pair in row order:
  // (20, 30) is in the first tile scanned, (10, 200) in a later one but first in row order.
  @Test("an asymmetric Gram is reported at its first pair in row order")
  func firstAsymmetricPair() throws {
    var rng = SplitMix64(seed: 5)
    var g = randomSPD(210, using: &rng)
    let w = Matrix<Double>(rows: 2, columns: 210)
    _ = try LayerProblem(weight: w, gram: g)
    g[20, 30] += 1
    g[10, 200] += 1
    #expect(throws: LayerProblemError.notSymmetric(tensor: "gram", row: 10, column: 200)) {
      try LayerProblem(weight: w, gram: g)
    }
    g[10, 200] = g[200, 10]
    #expect(throws: LayerProblemError.notSymmetric(tensor: "gram", row: 20, column: 30)) {
      try LayerProblem(weight: w, gram: g)
    }
  }

  @Test("patterns parse, print and validate")
  func patterns() throws {
    #expect(try SparsityPattern(parsing: "0.5") == .unstructured(ratio: 0.5, group: .matrix))
    #expect(try SparsityPattern(parsing: "50%") == .unstructured(ratio: 0.5, group: .matrix))
    #expect(try SparsityPattern(parsing: "0.25/row") == .unstructured(ratio: 0.25, group: .row))
    #expect(try SparsityPattern(parsing: " 2:4 ") == .nOfM(n: 2, m: 4))
    #expect(try SparsityPattern(parsing: "4:8") == .nOfM(n: 4, m: 8))
    for bad in ["1.0", "-0.1", "4:4", "0:4", "5:4", "abc", "2:x", "0.5/column"] {
      #expect(throws: SparsityPatternError.self, "\(bad)") { try SparsityPattern(parsing: bad) }
    }
    #expect(throws: SparsityPatternError.columnsNotMultiple(columns: 10, n: 2, m: 4)) {
      try SparsityPattern.nOfM(n: 2, m: 4).validate(columns: 10)
    }
    for p in testPatterns { #expect(try SparsityPattern(parsing: p.description) == p) }
    #expect(SparsityPattern.unstructured(0.5).prunedCount(rows: 3, columns: 5) == 7)
    #expect(SparsityPattern.unstructured(ratio: 0.5, group: .row).prunedCount(rows: 3, columns: 5) == 6)
    #expect(SparsityPattern.nOfM(n: 1, m: 4).prunedCount(rows: 3, columns: 8) == 6)
  }

  @Test("mask selection prunes exact counts, lowest scores first, ties by index", arguments: testPatterns)
  func maskSelection(_ pattern: SparsityPattern) {
    var rng = SplitMix64(seed: 3)
    // Scores with many ties (values from a small set), as with 4-bit quantised weights.
    let scores = Matrix<Double>(rows: 6, columns: 16) { _, _ in Double(Int.random(in: 0..<4, using: &rng)) }
    let mask = Mask.pruningLowest(scores, pattern: pattern)
    #expect(mask.satisfies(pattern), "\(mask.violations(of: pattern))")
    #expect(mask.prunedCount == pattern.prunedCount(rows: 6, columns: 16))
    // Within each group: every pruned score ≤ every kept score, and among equal scores the pruned
    // ones come first by index.
    func groups() -> [[(Int, Int)]] {
      switch pattern {
      case .unstructured(_, .matrix): return [(0..<6).flatMap { i in (0..<16).map { (i, $0) } }]
      case .unstructured(_, .row): return (0..<6).map { i in (0..<16).map { (i, $0) } }
      case .nOfM(_, let mm):
        return (0..<6).flatMap { i in stride(from: 0, to: 16, by: mm).map { g in (g..<(g + mm)).map { (i, $0) } } }
      }
    }
    for g in groups() {
      for a in g where !mask[a.0, a.1] {
        for b in g where mask[b.0, b.1] {
          let sa = scores[a.0, a.1]
          let sb = scores[b.0, b.1]
          #expect(sa < sb || (sa == sb && a.0 * 16 + a.1 < b.0 * 16 + b.1), "pruned \(a) kept \(b)")
        }
      }
    }
  }

  @Test("violations name the failing group")
  func violations() {
    var mask = Mask(rows: 2, columns: 8)
    mask[1, 5] = false
    let v = mask.violations(of: .nOfM(n: 2, m: 4))
    #expect(v.count == 4)
    #expect(v.contains(MaskViolation(row: 1, column: 4, pruned: 1, required: 2)))
    #expect(!mask.satisfies(.unstructured(0.5)))
    #expect(Mask(rows: 2, columns: 8).satisfies(.unstructured(0.0)))
  }
}
