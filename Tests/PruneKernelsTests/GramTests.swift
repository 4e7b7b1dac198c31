import PruneTestSupport
import Testing

@testable import PruneKernels

// Tolerance: Gᵢⱼ is a t-term dot product of columns i and j of X, so |Ĝᵢⱼ − Gᵢⱼ| ≤ γₜ₊₁·(|X|ᵀ|X|)ᵢⱼ
// (one more rounding for the += into G, which starts at 0 here). The exact value is computed in
// Double; for Double inputs its own error has the same bound, hence the factor 2.

func checkGram<T: KernelScalar>(
  _: T.Type, tokens t: Int, features f: Int, blocking: GEMMBlocking, seed: UInt64,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  var rng = SplitMix64(seed: seed)
  let x = Matrix<T>.random(rows: t, columns: f, using: &rng)
  var g = Matrix<T>(rows: f, columns: f)
  x.withUnsafeBufferPointer { px in
    g.withUnsafeMutableBufferPointer { pg in
      guard let xb = px.baseAddress, let gb = pg.baseAddress else { return }
      gramUpper(
        x: xb, tokens: t, features: f, ldx: f, g: gb, ldg: f, threads: 2, blocking: blocking, minimumFlopsPerThread: 0)
      mirrorUpperToLower(gb, n: f, ld: f)
    }
  }
  let xd = x.converted(to: Double.self)
  var exact = Matrix<Double>(rows: f, columns: f)
  gramReference(xd, into: &exact)
  var magnitude = Matrix<Double>(rows: f, columns: f)
  gramReference(xd.map { abs($0) }, into: &magnitude)
  let bounds = magnitude.map { gamma(t + 1, T.self) * (T.self == Double.self ? 2 : 1) * $0 }
  expectWithinBounds(
    g, exact, bounds: bounds, "\(T.self) tokens=\(t) features=\(f) \(blocking) seed=\(seed)",
    sourceLocation: sourceLocation)
  // Exactly symmetric: the lower triangle is a copy.
  for i in 0..<f {
    for j in 0..<i where g[i, j] != g[j, i] {
      Issue.record("G[\(i), \(j)] ≠ G[\(j), \(i)]", sourceLocation: sourceLocation)
      return
    }
  }
}

@Suite("Gram accumulation G += XᵀX")
struct GramTests {
  @Test(
    "equals the reference over every tile and block remainder", arguments: Precision.allCases,
    KernelISA.supported)
  func everyRemainder(_ p: Precision, _ isa: KernelISA) {
    func run<T: KernelScalar>(_: T.Type) {
      var seed: UInt64 = 300
      // features cross MR, NR, mc and nc boundaries (tiny blocking: NR = 8…64, nc = 2·NR);
      // tokens cross kc blocks.
      let tiny = tinyBlocking(T.self, isa)
      let nr = tiny.nr
      for f in Set(Array(0...18) + [23, 31, 32, 33, 40, nr - 1, nr + 1, 2 * nr - 1, 2 * nr + 1]).sorted() {
        for t in [0, 1, 3, 4, 5, 9] {
          seed += 1
          checkGram(T.self, tokens: t, features: f, blocking: tiny, seed: seed)
        }
      }
      let production = T.gramBlocking(for: isa)
      checkGram(T.self, tokens: 2 * production.kc + 3, features: production.nc + 5, blocking: production, seed: 399)
    }
    p == .float ? run(Float.self) : run(Double.self)
  }

  @Test("streaming chunks equals one pass when each chunk is one kc block", arguments: Precision.allCases)
  func streaming(_ p: Precision) {
    func run<T: KernelScalar>(_: T.Type) {
      // Chunks of exactly kc tokens reduce in the same order as one pass over all tokens (blocks of
      // kc in order), so the results are bit-identical.
      var rng = SplitMix64(seed: 21)
      let kc = T.gramBlocking.kc
      let x = Matrix<T>.random(rows: 3 * kc, columns: 37, using: &rng)
      var acc = GramAccumulator<T>(features: 37)
      for c in 0..<3 { acc.add(x.submatrix(rows: (c * kc)..<((c + 1) * kc), columns: 0..<37)) }
      #expect(acc.tokens == 3 * kc)
      expectBitIdentical(acc.gram, gram(x), "\(T.self) chunked vs one pass")
    }
    p == .float ? run(Float.self) : run(Double.self)
  }

  @Test(
    "the Gram and a GEMM added in the depth blocks of their depth equal one pass",
    arguments: [1, 383, 385, 2 * 384 + 3, 5000])
  func depthBlocks(_ tokens: Int) {
    // k not a multiple of kc: the blocks are balanced (⌈k/kc⌉ of almost equal depth), so chunks of
    // kc would not reduce in the same order, but chunks of `depthBlocks(k)` do, each as one call.
    var rng = SplitMix64(seed: 24)
    let x = Matrix<Float>.random(rows: tokens, columns: 41, using: &rng)
    let y = Matrix<Float>.random(rows: tokens, columns: 41, using: &rng)
    let blocks = Float.gramBlocking.depthBlocks(tokens)
    #expect(blocks.first?.lowerBound == 0 && blocks.last?.upperBound == tokens, "k=\(tokens)")
    #expect(blocks.allSatisfy { $0.count <= Float.gramBlocking.kc }, "k=\(tokens)")
    var acc = GramAccumulator<Float>(features: 41)
    for r in blocks { acc.add(x.submatrix(rows: r, columns: 0..<41)) }
    expectBitIdentical(acc.gram, gram(x), "Gram, k=\(tokens) in \(blocks.count) depth blocks")
    var k = Matrix<Float>(rows: 41, columns: 41)
    for r in Float.gemmBlocking.depthBlocks(tokens) {
      gemm(
        x.submatrix(rows: r, columns: 0..<41), y.submatrix(rows: r, columns: 0..<41), into: &k, transposeA: true,
        beta: 1)
    }
    expectBitIdentical(k, matmul(x, y, transposeA: true), "XᵀY, k=\(tokens) in depth blocks")
  }

  @Test("Float chunks accumulated in Double equal the Double Gram of the converted input")
  func doubleAccumulation() {
    var rng = SplitMix64(seed: 22)
    let chunks = (0..<3).map { _ in Matrix<Float>.random(rows: 50, columns: 29, using: &rng) }
    var acc = GramAccumulator<Double>(features: 29)
    var reference = GramAccumulator<Double>(features: 29)
    for c in chunks {
      acc.add(c)
      reference.add(c.converted(to: Double.self))
    }
    expectBitIdentical(acc.gram, reference.gram, "Float→Double accumulation")
    #expect(acc.tokens == 150)
  }

  @Test("G += XᵀX adds to what G held")
  func accumulatesIntoG() {
    var rng = SplitMix64(seed: 23)
    let x = Matrix<Double>.random(rows: 40, columns: 13, using: &rng)
    var g = gram(x)
    gram(x, into: &g)
    let twice = gram(x).map { 2 * $0 }  // doubling is exact
    expectBitIdentical(g, twice, "G + XᵀX = 2XᵀX")
  }
}
