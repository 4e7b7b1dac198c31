// Gram accumulation G += XᵀX for calibration inputs X: [tokens × features], one row per token.
//
// G = Σₜ xₜ xₜᵀ is the sufficient statistic of every layer-wise pruning objective
// (‖(W − Ŵ)Xᵀ‖²_F = tr((W − Ŵ) G (W − Ŵ)ᵀ)). It is symmetric, so only the tiles touching the upper
// triangle are computed (by the blocked GEMM with op(A) = Xᵀ, op(B) = X), then the strict upper
// triangle is mirrored into the lower one. Both sides of the multiply come straight from X: an Ã
// micro-panel is a contiguous run of MR features of one token, so no transpose pass is needed.
//
// Streaming: `GramAccumulator` adds X in chunks of tokens. The sum is reduced chunk by chunk in the
// order the chunks arrive, and inside a chunk in kc blocks of tokens, so the result is
// bit-identical for the same chunks whatever the thread count. Float inputs can be accumulated in
// Double (`GramAccumulator<Double>.add(_: Matrix<Float>)`), which converts each chunk exactly and
// runs the Double kernel.

/// G ← G + XᵀX, with X: `[tokens × features]` and G: `[features × features]` symmetric.
///
/// Only G's upper triangle is read; on return G is symmetric (upper triangle mirrored down).
/// `blocking` is `T.gramBlocking` unless a benchmark compares others (`prune-bench tune --kernel
/// gram`); its register tile must be that of a micro-kernel this CPU runs.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gram<T: KernelScalar>(
  _ x: Matrix<T>, into g: inout Matrix<T>, threads: Int = Parallelism.threads,
  blocking: GEMMBlocking = T.gramBlocking
) {
  precondition(
    g.rows == x.columns && g.columns == x.columns,
    "gram: G \(g.shapeDescription) does not match X \(x.shapeDescription) (want [\(x.columns) × \(x.columns)])")
  let f = x.columns
  x.withUnsafeBufferPointer { px in
    g.withUnsafeMutableBufferPointer { pg in
      guard let gBase = pg.baseAddress, let xBase = px.baseAddress else { return }
      gramUpper(
        x: xBase, tokens: x.rows, features: f, ldx: f, g: gBase, ldg: f, threads: threads,
        blocking: blocking)
      mirrorUpperToLower(gBase, n: f, ld: f)
    }
  }
}

/// XᵀX as a new symmetric matrix.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gram<T: KernelScalar>(_ x: Matrix<T>, threads: Int = Parallelism.threads) -> Matrix<T> {
  var g = Matrix<T>(rows: x.columns, columns: x.columns)
  gram(x, into: &g, threads: threads)
  return g
}

/// The reference Gram: Gᵢⱼ += Σₜ Xₜᵢ·Xₜⱼ for j ≥ i, summed in order t = 0…tokens−1 with plain
/// multiplies and adds; then Gⱼᵢ = Gᵢⱼ. Slow on purpose: this is the definition.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gramReference<T: KernelScalar>(_ x: Matrix<T>, into g: inout Matrix<T>) {
  precondition(g.rows == x.columns && g.columns == x.columns, "gramReference: shape mismatch")
  for i in 0..<x.columns {
    for j in i..<x.columns {
      var s: T = 0
      for t in 0..<x.rows { s += x[t, i] * x[t, j] }
      g[i, j] += s
      g[j, i] = g[i, j]
    }
  }
}

/// G's upper triangle (with whole diagonal-straddling tiles) += XᵀX. G's lower triangle is left
/// partly stale: mirror it before use.
func gramUpper<T: KernelScalar>(
  x: UnsafePointer<T>, tokens: Int, features: Int, ldx: Int, g: UnsafeMutablePointer<T>, ldg: Int,
  threads: Int, blocking: GEMMBlocking, minimumFlopsPerThread: Double = defaultMinimumFlopsPerThread
) {
  // op(A) = Xᵀ: element (i, t) at x[t·ldx + i]; op(B) = X: element (t, j) at x[t·ldx + j].
  let opA = StridedOperand(base: x, rowStride: 1, columnStride: ldx)
  let opB = StridedOperand(base: x, rowStride: ldx, columnStride: 1)
  gemmBlocked(
    m: features, n: features, k: tokens, alpha: 1, a: opA, b: opB, beta: 1, c: g, ldc: ldg,
    threads: threads, blocking: blocking, region: .upperTriangle,
    minimumFlopsPerThread: minimumFlopsPerThread)
}

/// Gⱼᵢ ← Gᵢⱼ for j > i, in 32 × 32 tiles so both streams stay in cache.
func mirrorUpperToLower<T>(_ g: UnsafeMutablePointer<T>, n: Int, ld: Int) {
  let tile = 32
  for i0 in stride(from: 0, to: n, by: tile) {
    for j0 in stride(from: i0, to: n, by: tile) {
      for i in i0..<min(i0 + tile, n) {
        for j in max(j0, i + 1)..<min(j0 + tile, n) { g[j * ld + i] = g[i * ld + j] }
      }
    }
  }
}

/// Accumulates G = Σ xₜ xₜᵀ over chunks of calibration tokens.
///
///     var acc = GramAccumulator<Double>(features: 576)
///     for chunk in chunks { acc.add(chunk) }       // chunk: [tokens × 576], Float or Double
///     let g = acc.gram                              // [576 × 576], symmetric
///
/// Only the upper triangle is accumulated; `gram` mirrors it on demand.
public struct GramAccumulator<T: KernelScalar>: Sendable {
  /// The number of features (columns of every chunk).
  public let features: Int
  /// Tokens added so far.
  public private(set) var tokens: Int = 0
  /// Upper triangle (with diagonal-straddling tiles) of the running sum.
  private var upper: Matrix<T>

  public init(features: Int) {
    precondition(features >= 0, "GramAccumulator: negative feature count")
    self.features = features
    self.upper = Matrix(rows: features, columns: features)
  }

  /// G += XᵀX for a chunk X: `[tokens × features]`.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public mutating func add(_ chunk: Matrix<T>, threads: Int = Parallelism.threads) {
    precondition(
      chunk.columns == features,
      "GramAccumulator.add: chunk \(chunk.shapeDescription) has \(chunk.columns) features, want \(features)")
    let f = features
    chunk.withUnsafeBufferPointer { px in
      upper.withUnsafeMutableBufferPointer { pg in
        guard let gBase = pg.baseAddress, let xBase = px.baseAddress else { return }
        gramUpper(
          x: xBase, tokens: chunk.rows, features: f, ldx: f, g: gBase, ldg: f, threads: threads,
          blocking: T.gramBlocking)
      }
    }
    tokens += chunk.rows
  }

  /// The symmetric Gram matrix of everything added so far.
  public var gram: Matrix<T> {
    var g = upper
    g.withUnsafeMutableBufferPointer { p in
      if let base = p.baseAddress { mirrorUpperToLower(base, n: features, ld: features) }
    }
    return g
  }
}

extension GramAccumulator where T == Double {
  /// G += XᵀX for a Float chunk, accumulated in Double: the chunk is converted exactly (every
  /// Float is a Double), so this equals `add(chunk.converted(to: Double.self))`.
  public mutating func add(_ chunk: Matrix<Float>, threads: Int = Parallelism.threads) {
    add(chunk.converted(to: Double.self), threads: threads)
  }
}
