// General matrix multiply, C ← α·op(A)·op(B) + β·C, with op(X) = X or Xᵀ.
//
// Two implementations live here side by side:
//   • `gemmReference`: the textbook triple loop, one dot product per element of C. It is the
//     definition the tests hold the fast path to, and is kept readable on purpose.
//   • `gemm`: the blocked, packed, register-tiled, parallel implementation (GEMM+Blocked.swift,
//     MicroKernel.swift). It computes exactly what `gemmReference` computes, up to the order of
//     the floating-point sums, which is fixed by the blocking (Docs/kernels.md).

// MARK: - Pointer-level API (BLAS-like, row-major)

/// C ← α·op(A)·op(B) + β·C on raw row-major storage; the blocked, parallel implementation.
///
/// - op(A) is `[m × k]`: when `transposeA` is false, A is stored `[m × k]` with row stride `lda`
///   (element (i, p) at `a[i·lda + p]`); when true, A is stored `[k × m]` (element (i, p) of op(A)
///   at `a[p·lda + i]`).
/// - op(B) is `[k × n]`: when `transposeB` is false, B is stored `[k × n]` with row stride `ldb`;
///   when true, B is stored `[n × k]`.
/// - C is `[m × n]` with row stride `ldc`. When β = 0, C is not read (it may hold NaN).
/// - C must not overlap A or B.
///
/// Each element of C is reduced in an order that depends only on k and the cache blocking, so the
/// result is bit-identical for every `threads`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gemm<T: KernelScalar>(
  transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
  alpha: T, a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
  beta: T, c: UnsafeMutablePointer<T>, ldc: Int,
  threads: Int = Parallelism.threads
) {
  precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m=\(m) n=\(n) k=\(k)")
  precondition(lda >= max(1, transposeA ? m : k), "gemm: lda \(lda) too small")
  precondition(ldb >= max(1, transposeB ? k : n), "gemm: ldb \(ldb) too small")
  precondition(ldc >= max(1, n), "gemm: ldc \(ldc) too small")
  precondition(threads >= 1, "gemm: threads must be ≥ 1, got \(threads)")
  gemm(
    transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: threads, blocking: T.gemmBlocking)
}

/// The same GEMM with explicit cache blocking, for tuning experiments (`prune-bench tune`).
/// `blocking.mr × nr` must be the register tile of a micro-kernel this CPU runs (`T.gemmBlocking`'s,
/// or `T.gemmBlocking(for:)` of a supported `KernelISA`); kc, mc and nc are free. Results depend on
/// kc (the reduction is blocked by it), not on mc or nc.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gemm<T: KernelScalar>(
  transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
  alpha: T, a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
  beta: T, c: UnsafeMutablePointer<T>, ldc: Int, threads: Int, blocking: GEMMBlocking
) {
  let opA = StridedOperand(base: a, rowStride: transposeA ? 1 : lda, columnStride: transposeA ? lda : 1)
  let opB = StridedOperand(base: b, rowStride: transposeB ? 1 : ldb, columnStride: transposeB ? ldb : 1)
  gemmBlocked(
    m: m, n: n, k: k, alpha: alpha, a: opA, b: opB, beta: beta, c: c, ldc: ldc,
    threads: threads, blocking: blocking, region: .full)
}

// MARK: - Matrix API

/// C ← α·op(A)·op(B) + β·C; the blocked, parallel implementation.
///
/// - Parameters:
///   - a: A, `[m × k]`, or `[k × m]` when `transposeA`.
///   - b: B, `[k × n]`, or `[n × k]` when `transposeB`.
///   - c: C, `[m × n]`. When β = 0 its old contents are not read.
/// Shapes are checked; a mismatch stops with both shapes in the message.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gemm<T: KernelScalar>(
  _ a: Matrix<T>, _ b: Matrix<T>, into c: inout Matrix<T>,
  transposeA: Bool = false, transposeB: Bool = false, alpha: T = 1, beta: T = 0,
  threads: Int = Parallelism.threads
) {
  let (m, k, n) = checkedGEMMShape(a, b, c, transposeA: transposeA, transposeB: transposeB)
  a.withUnsafeBufferPointer { pa in
    b.withUnsafeBufferPointer { pb in
      c.withUnsafeMutableBufferPointer { pc in
        gemm(
          transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
          alpha: alpha, a: pa.baseAddress!, lda: max(1, a.columns),
          b: pb.baseAddress!, ldb: max(1, b.columns),
          beta: beta, c: pc.baseAddress!, ldc: max(1, n), threads: threads)
      }
    }
  }
}

/// op(A)·op(B) as a new matrix.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func matmul<T: KernelScalar>(
  _ a: Matrix<T>, _ b: Matrix<T>, transposeA: Bool = false, transposeB: Bool = false,
  threads: Int = Parallelism.threads
) -> Matrix<T> {
  var c = Matrix<T>(
    rows: transposeA ? a.columns : a.rows, columns: transposeB ? b.rows : b.columns)
  gemm(a, b, into: &c, transposeA: transposeA, transposeB: transposeB, threads: threads)
  return c
}

/// The reference GEMM: for every (i, j), s = Σₚ op(A)ᵢₚ·op(B)ₚⱼ summed in order p = 0…k−1 with
/// plain multiplies and adds, then Cᵢⱼ ← α·s + β·Cᵢⱼ (Cᵢⱼ ← α·s when β = 0, C not read).
///
/// Same parameters and shapes as `gemm(_:_:into:…)`. Slow on purpose: this is the definition.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gemmReference<T: KernelScalar>(
  _ a: Matrix<T>, _ b: Matrix<T>, into c: inout Matrix<T>,
  transposeA: Bool = false, transposeB: Bool = false, alpha: T = 1, beta: T = 0
) {
  let (m, k, n) = checkedGEMMShape(a, b, c, transposeA: transposeA, transposeB: transposeB)
  for i in 0..<m {
    for j in 0..<n {
      var s: T = 0
      for p in 0..<k {
        let aip = transposeA ? a[p, i] : a[i, p]
        let bpj = transposeB ? b[j, p] : b[p, j]
        s += aip * bpj
      }
      c[i, j] = beta == 0 ? alpha * s : alpha * s + beta * c[i, j]
    }
  }
}

/// (m, k, n) of op(A)·op(B) into C, or a precondition failure naming all three shapes.
func checkedGEMMShape<T>(
  _ a: Matrix<T>, _ b: Matrix<T>, _ c: Matrix<T>, transposeA: Bool, transposeB: Bool
) -> (m: Int, k: Int, n: Int) {
  let (m, ka) = transposeA ? (a.columns, a.rows) : (a.rows, a.columns)
  let (kb, n) = transposeB ? (b.columns, b.rows) : (b.rows, b.columns)
  precondition(
    ka == kb && c.rows == m && c.columns == n,
    "gemm: shapes do not match: op(A) \(transposeA ? "= Aᵀ, A " : "")\(a.shapeDescription), "
      + "op(B) \(transposeB ? "= Bᵀ, B " : "")\(b.shapeDescription), C \(c.shapeDescription)")
  return (m, ka, n)
}
