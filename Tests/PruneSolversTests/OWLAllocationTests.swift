import PruneKernels
import PruneSolvers
import Testing

/// OWL's allocation (`OWLAllocation`, Docs/methods/owl.md): the outlier ratio on hand-made scores,
/// and the mapping of seeded outlier ratios onto block sparsities — spread 2λ, mean exactly S,
/// monotone, uniform when the ratios are equal, clamped into [0, 1), and layer counts that add up
/// to S·N less under one weight per layer.
@Suite struct OWLAllocationTests {
  /// Sums of a few dozen products of numbers below 1 agree to 1e-12 (about 50 ulps of 1); the
  /// mean condition Σ P s = S Σ P is an identity in exact arithmetic.
  static let tolerance = 1e-12

  /// `count` seeded outlier ratios in [0, 0.05) (SmolLM2's are a few percent).
  static func ratios(_ count: Int, seed: UInt64) -> [Double] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in Double(rng.next() % 50_000) / 1_000_000 }
  }

  @Test func outlierRatioCountsScoresAboveMTimesTheMean() {
    // Scores |W|·norm: row 0 = [1, 1, 1, 1], row 1 = [1, 1, 1, 25]: mean 4, so with M = 5 only 25
    // exceeds 20 (1 of 8); with M = 6 (bar 24) still 1; with M = 7 (bar 28) none.
    let v = Matrix<Float>(rows: 2, columns: 4, elements: [1, -1, 1, 0.2, 1, 1, -1, 5])
    let norms = [1.0, 1, 1, 5]
    #expect(OWLAllocation.outlierRatio(layers: [(v, norms)], threshold: 5) == 1.0 / 8)
    #expect(OWLAllocation.outlierRatio(layers: [(v, norms)], threshold: 6) == 1.0 / 8)
    #expect(OWLAllocation.outlierRatio(layers: [(v, norms)], threshold: 7) == 0)
    // The layers are concatenated: a second layer of small scores lowers the mean, so more scores
    // are outliers (mean of 8 scores of 4 and 8 of 0.1 is 2.05: bar 10.25, still only 25 above).
    let small = Matrix<Float>(rows: 2, columns: 4, elements: Array(repeating: 0.1, count: 8))
    #expect(OWLAllocation.outlierRatio(layers: [(v, norms), (small, [1, 1, 1, 1])], threshold: 5) == 1.0 / 16)
    // A positive factor on every norm (the reference's ‖x‖/√N) changes no comparison.
    #expect(OWLAllocation.outlierRatio(layers: [(v, norms.map { $0 * 0.125 })], threshold: 5) == 1.0 / 8)
  }

  @Test(arguments: [UInt64(1), 2, 3])
  func sparsitiesSpanTwoLambdaWithTheMeanExactlyS(_ seed: UInt64) {
    let d = Self.ratios(30, seed: seed)
    for parameters in [Array(repeating: 3_000_000, count: 30), (0..<30).map { 1000 + 37 * $0 }] {
      let r = OWLAllocation.sparsities(outlierRatios: d, parameters: parameters, target: 0.7, range: 0.08)
      #expect(r.clamped.isEmpty)
      let s = r.sparsities
      #expect(abs((s.max()! - s.min()!) - 0.16) < Self.tolerance)
      let total = Double(parameters.reduce(0, +))
      let mean = zip(s, parameters).reduce(0.0) { $0 + $1.0 * Double($1.1) } / total
      #expect(abs(mean - 0.7) < Self.tolerance)
      // With the mean at S and the spread 2λ, every block is within 2λ(L−1)/L of S.
      for v in s { #expect(abs(v - 0.7) <= 0.16 * 29 / 30 + Self.tolerance) }
    }
  }

  /// Ratios spread evenly (symmetric about their middle) put the mean at the middle of the span:
  /// the paper's [S − λ, S + λ], endpoints included.
  @Test func symmetricRatiosFillSMinusLambdaToSPlusLambda() {
    let d = (0..<9).map { Double($0) * 0.005 }
    let r = OWLAllocation.sparsities(outlierRatios: d, parameters: Array(repeating: 100, count: 9), target: 0.6, range: 0.08)
    #expect(abs(r.sparsities.max()! - 0.68) < Self.tolerance)
    #expect(abs(r.sparsities.min()! - 0.52) < Self.tolerance)
    #expect(abs(r.sparsities[4] - 0.6) < Self.tolerance)
  }

  @Test(arguments: [UInt64(4), 5])
  func moreOutliersMeanLowerSparsity(_ seed: UInt64) {
    let d = Self.ratios(24, seed: seed)
    let s = OWLAllocation.sparsities(
      outlierRatios: d, parameters: Array(repeating: 1, count: 24), target: 0.5, range: 0.05
    ).sparsities
    for a in 0..<24 {
      for b in 0..<24 where d[a] > d[b] { #expect(s[a] < s[b], "blocks \(a), \(b)") }
      for b in 0..<24 where d[a] == d[b] { #expect(s[a] == s[b], "blocks \(a), \(b)") }
    }
  }

  @Test func equalRatiosGiveExactlyTheUniformSparsity() {
    for target in [0.0, 0.3, 0.7, 0.95] {
      let r = OWLAllocation.sparsities(
        outlierRatios: Array(repeating: 0.013, count: 12), parameters: Array(repeating: 5, count: 12), target: target,
        range: 0.08)
      #expect(r.sparsities == Array(repeating: target, count: 12))
      #expect(r.clamped.isEmpty)
    }
    // λ = 0 too, whatever the ratios.
    let r = OWLAllocation.sparsities(
      outlierRatios: Self.ratios(7, seed: 9), parameters: Array(repeating: 5, count: 7), target: 0.7, range: 0)
    #expect(r.sparsities == Array(repeating: 0.7, count: 7))
  }

  @Test func ratiosLeavingZeroToOneAreClampedAndNamed() {
    // S = 0.95, λ = 0.08, two blocks: 0.95 ± 0.08, the upper one beyond 1.
    let high = OWLAllocation.sparsities(outlierRatios: [0.01, 0.02], parameters: [10, 10], target: 0.95, range: 0.08)
    #expect(high.clamped == [0])
    #expect(high.sparsities[0] == OWLAllocation.largestRatio)
    #expect(abs(high.sparsities[1] - 0.87) < Self.tolerance)
    let low = OWLAllocation.sparsities(outlierRatios: [0.01, 0.02], parameters: [10, 10], target: 0.05, range: 0.08)
    #expect(low.clamped == [1])
    #expect(low.sparsities[1] == 0)
    for v in high.sparsities + low.sparsities { #expect(v >= 0 && v < 1) }
  }

  /// Every layer prunes ⌊s_ℓ·m·n⌋ (the matrix group): over a model of L blocks of seeded layer
  /// shapes, S·N minus the weights pruned is in [0, layers): under one weight per layer.
  @Test(arguments: [UInt64(11), 12, 13])
  func layerCountsAddUpToSNWithinOneWeightPerLayer(_ seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let shapes = (0..<7).map { _ in (Int(rng.next() % 900) + 100, Int(rng.next() % 900) + 100) }
    let perBlock = shapes.reduce(0) { $0 + $1.0 * $1.1 }
    let blocks = 30
    for target in [0.5, 0.7, 0.123456789] {
      let r = OWLAllocation.sparsities(
        outlierRatios: Self.ratios(blocks, seed: seed), parameters: Array(repeating: perBlock, count: blocks),
        target: target, range: 0.08)
      var pruned = 0
      for s in r.sparsities {
        for (m, n) in shapes { pruned += SparsityPattern.unstructured(ratio: s, group: .matrix).prunedCount(rows: m, columns: n) }
      }
      let requested = target * Double(perBlock * blocks)
      let layers = Double(shapes.count * blocks)
      // 1e-6 of a weight: the rounding of S·N and of Σ P s in Double at N ≈ 1.5e8.
      #expect(requested - Double(pruned) > -1e-6)
      #expect(requested - Double(pruned) < layers)
    }
  }
}
