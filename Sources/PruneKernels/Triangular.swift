// Triangular solves with a Cholesky factor, triangular inverse, and the SPD inverse.
//
// All solves are row-oriented: a right-hand side B is `[n × r]` and row i of the solution is
// updated with whole rows of length r (an axpy the compiler vectorises), never column by column.

/// B ← L⁻¹B (forward substitution): xᵢ = (bᵢ − Σₚ₍ᵢ Lᵢₚ xₚ) / Lᵢᵢ, for i = 0…n−1.
///
/// - Parameters:
///   - l: L, `[n × n]` lower triangular with a non-zero diagonal (its upper part is not read).
///   - b: B, `[n × r]`, overwritten with the solution X of LX = B.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func solveLower<T: KernelScalar>(_ l: Matrix<T>, _ b: inout Matrix<T>) {
  precondition(
    l.isSquare && b.rows == l.rows,
    "solveLower: L \(l.shapeDescription) and B \(b.shapeDescription) do not match")
  let n = l.rows
  let r = b.columns
  l.withUnsafeBufferPointer { pl in
    b.withUnsafeMutableBufferPointer { pb in
      guard let L = pl.baseAddress, let B = pb.baseAddress else { return }
      for i in 0..<n {
        let bi = B + i * r
        for p in 0..<i {
          let lip = L[i * n + p]
          if lip == 0 { continue }
          let bp = B + p * r
          for c in 0..<r { bi[c] -= lip * bp[c] }
        }
        let inv = 1 / L[i * n + i]
        for c in 0..<r { bi[c] *= inv }
      }
    }
  }
}

/// B ← L⁻ᵀB (back substitution with Lᵀ): xᵢ = (bᵢ − Σₚ₎ᵢ Lₚᵢ xₚ) / Lᵢᵢ, for i = n−1…0.
///
/// - Parameters:
///   - l: L, `[n × n]` lower triangular (its upper part is not read).
///   - b: B, `[n × r]`, overwritten with the solution X of LᵀX = B.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func solveLowerTransposed<T: KernelScalar>(_ l: Matrix<T>, _ b: inout Matrix<T>) {
  precondition(
    l.isSquare && b.rows == l.rows,
    "solveLowerTransposed: L \(l.shapeDescription) and B \(b.shapeDescription) do not match")
  let n = l.rows
  let r = b.columns
  l.withUnsafeBufferPointer { pl in
    b.withUnsafeMutableBufferPointer { pb in
      guard let L = pl.baseAddress, let B = pb.baseAddress else { return }
      // Column-sweep form: once xᵢ is final, subtract Lᵢₚ·xᵢ from every row p < i.
      for i in stride(from: n - 1, through: 0, by: -1) {
        let bi = B + i * r
        let inv = 1 / L[i * n + i]
        for c in 0..<r { bi[c] *= inv }
        for p in 0..<i {
          let lip = L[i * n + p]
          if lip == 0 { continue }
          let bp = B + p * r
          for c in 0..<r { bp[c] -= lip * bi[c] }
        }
      }
    }
  }
}

/// A⁻¹B from a Cholesky factorisation A = LLᵀ: X = L⁻ᵀ(L⁻¹B).
///
/// - Parameters:
///   - factor: the factorisation of A (`[n × n]`); if it was damped, this solves with A + δI.
///   - b: B, `[n × r]`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func choleskySolve<T: KernelScalar>(_ factor: CholeskyFactorization<T>, _ b: Matrix<T>)
  -> Matrix<T>
{
  var x = b
  solveLower(factor.lower, &x)
  solveLowerTransposed(factor.lower, &x)
  return x
}

/// L⁻¹ of a lower triangular L (`[n × n]`, non-zero diagonal); the result is lower triangular.
///
/// X = L⁻¹ solves L X = I by forward substitution, row by row:
///
///     x_ic = (δ_ic − Σ_{c ≤ p < i} L_ip · x_pc) / L_ii        (x_ic = 0 for c > i)
///
/// Column c of X depends only on column c of the rows above it, so the columns are independent.
/// `invertLowerReference` evaluates the formula row after row, each row an axpy over every row
/// above it (n³/6 reads of X from memory: 40 s for n = 11008 on one core). This version does the
/// same operations on every element in the same order (p increasing, the division last), so its
/// result is bit-identical, but tiled: column tiles of `invertLowerTile.columns` run in parallel
/// (claimed dynamically: the work of column c falls as (n − c)²), and inside a tile a block of
/// `invertLowerTile.rows` rows takes the rows p above it in three parts, each in increasing p:
///   1. the rows p < c₁ inside the tile's columns (x_pc = 0 for c > p: partial rows), plainly;
///   2. the full rows c₁ ≤ p < i₀, already final, a panel of `invertLowerTile.depth` of them at a
///      time (it stays in L2), by a register tile of 4 rows × 2 vectors (`invertLowerPanel`) that
///      keeps x_ic in registers while p runs: the axpys of the reference without a store per p;
///   3. the block's own rows, each divided by its diagonal before it updates the rows below.
/// Part 2 does x_ic −= L_ip·x_pc also where L_ip = 0, which the reference skips: the same bits,
/// because x − (±0) = x for every x but −0, and no −0 arises (the diagonal is positive, and a
/// difference that cancels exactly is +0). 4.4 GFLOP/s before part 2 (59% of a 7B SparseGPT run).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func invertLower<T: KernelScalar>(_ l: Matrix<T>, threads: Int = Parallelism.threads) -> Matrix<T> {
  precondition(l.isSquare, "invertLower: L \(l.shapeDescription) is not square")
  let n = l.rows
  var x = Matrix<T>.identity(n)
  guard n > 0 else { return x }
  let tileColumns = invertLowerTile.columns
  let blockRows = invertLowerTile.rows
  let depth = invertLowerTile.depth
  let tiles = (n + tileColumns - 1) / tileColumns
  l.withUnsafeBufferPointer { pl in
    x.withUnsafeMutableBufferPointer { px in
      let shared = (l: SendableConstPointer(pl.baseAddress!), x: SendablePointer(px.baseAddress!))
      let counters = WorkCounters(count: 1)
      defer { counters.deallocate() }
      parallelFor(max(1, min(threads, tiles))) { _ in
        let L = shared.l.base
        let X = shared.x.base
        while case let tile = counters.claim(0), tile < tiles {
          let c0 = tile * tileColumns
          let c1 = min(c0 + tileColumns, n)
          // Rows above c0 are zero in these columns (x_ic = 0 for c > i): start at row c0.
          for i0 in stride(from: c0, to: n, by: blockRows) {
            let i1 = min(i0 + blockRows, n)
            // 1. The partial rows c0 ≤ p < min(c1, i0), final.
            for p in c0..<min(c1, i0) {
              let xp = X + p * n
              let end = p + 1  // x_pc = 0 for c > p
              for i in i0..<i1 {
                let lip = L[i * n + p]
                if lip == 0 { continue }
                let xi = X + i * n
                for c in c0..<end { xi[c] -= lip * xp[c] }
              }
            }
            // 2. The full rows c1 ≤ p < i0, final, a panel at a time.
            for p0 in stride(from: c1, to: i0, by: depth) {
              invertLowerPanel(L, X, n: n, rows: i0..<i1, columns: c0..<c1, p: p0..<min(p0 + depth, i0))
            }
            // 3. The block's own rows: row p is final once the updates from the rows above it (all
            //    applied by now) are followed by its division.
            for p in i0..<i1 {
              let xp = X + p * n
              let inv = 1 / L[p * n + p]
              for c in c0..<min(c1, p + 1) { xp[c] *= inv }
              let end = min(c1, p + 1)  // x_pc = 0 for c > p
              for i in (p + 1)..<i1 {
                let lip = L[i * n + p]
                if lip == 0 { continue }
                let xi = X + i * n
                for c in c0..<end { xi[c] -= lip * xp[c] }
              }
            }
          }
        }
      }
    }
  }
  return x
}

/// The tiles of `invertLower`: 128 columns (1 KB of a Double row) by 256 rows, so that a block's
/// slices (256 KB) stay in a core's L2, and panels of 256 rows above the block (256 KB again).
let invertLowerTile = (columns: 128, rows: 256, depth: 256)

/// x_ic −= L_ip·x_pc for the rows i, the columns c and p increasing over `p` (rows of X that are
/// final and full: p ≥ every c), with x_ic held in registers: 4 rows × 2 vectors of the scalar's
/// 256-bit vector; the rows and columns left over, one element at a time (same order).
@inline(__always)
func invertLowerPanel<T: KernelScalar>(
  _ L: UnsafePointer<T>, _ X: UnsafeMutablePointer<T>, n: Int, rows: Range<Int>, columns: Range<Int>, p: Range<Int>
) {
  if T.self == Double.self {
    L.withMemoryRebound(to: Double.self, capacity: n * n) { l in
      X.withMemoryRebound(to: Double.self, capacity: n * n) { x in
        invertLowerPanel(SIMD4<Double>.self, l, x, n: n, rows: rows, columns: columns, p: p)
      }
    }
  } else if T.self == Float.self {
    L.withMemoryRebound(to: Float.self, capacity: n * n) { l in
      X.withMemoryRebound(to: Float.self, capacity: n * n) { x in
        invertLowerPanel(SIMD8<Float>.self, l, x, n: n, rows: rows, columns: columns, p: p)
      }
    }
  } else {
    for i in rows { for c in columns { for q in p { X[i * n + c] -= L[i * n + q] * X[q * n + c] } } }
  }
}

@inline(__always)
func invertLowerPanel<V: SIMD>(
  _: V.Type, _ L: UnsafePointer<V.Scalar>, _ X: UnsafeMutablePointer<V.Scalar>, n: Int, rows: Range<Int>,
  columns: Range<Int>, p: Range<Int>
) where V.Scalar: BinaryFloatingPoint {
  let w = V.scalarCount
  let fullRows = rows.lowerBound + (rows.count / 4) * 4
  let fullColumns = columns.lowerBound + (columns.count / (2 * w)) * (2 * w)
  for i in stride(from: rows.lowerBound, to: fullRows, by: 4) {
    let l0 = L + i * n
    let l1 = l0 + n
    let l2 = l1 + n
    let l3 = l2 + n
    for c in stride(from: columns.lowerBound, to: fullColumns, by: 2 * w) {
      let x0 = UnsafeMutableRawPointer(X + i * n + c)
      let x1 = UnsafeMutableRawPointer(X + (i + 1) * n + c)
      let x2 = UnsafeMutableRawPointer(X + (i + 2) * n + c)
      let x3 = UnsafeMutableRawPointer(X + (i + 3) * n + c)
      let vb = MemoryLayout<V>.size
      var a00 = x0.loadUnaligned(as: V.self)
      var a01 = x0.loadUnaligned(fromByteOffset: vb, as: V.self)
      var a10 = x1.loadUnaligned(as: V.self)
      var a11 = x1.loadUnaligned(fromByteOffset: vb, as: V.self)
      var a20 = x2.loadUnaligned(as: V.self)
      var a21 = x2.loadUnaligned(fromByteOffset: vb, as: V.self)
      var a30 = x3.loadUnaligned(as: V.self)
      var a31 = x3.loadUnaligned(fromByteOffset: vb, as: V.self)
      for q in p {
        let xq = UnsafeRawPointer(X + q * n + c)
        let b0 = xq.loadUnaligned(as: V.self)
        let b1 = xq.loadUnaligned(fromByteOffset: vb, as: V.self)
        // a − l·b: the product rounded, then the difference, as the reference's `x −= l * x_p`.
        var s = V(repeating: l0[q])
        a00 = a00 - s * b0
        a01 = a01 - s * b1
        s = V(repeating: l1[q])
        a10 = a10 - s * b0
        a11 = a11 - s * b1
        s = V(repeating: l2[q])
        a20 = a20 - s * b0
        a21 = a21 - s * b1
        s = V(repeating: l3[q])
        a30 = a30 - s * b0
        a31 = a31 - s * b1
      }
      x0.storeBytes(of: a00, as: V.self)
      x0.storeBytes(of: a01, toByteOffset: vb, as: V.self)
      x1.storeBytes(of: a10, as: V.self)
      x1.storeBytes(of: a11, toByteOffset: vb, as: V.self)
      x2.storeBytes(of: a20, as: V.self)
      x2.storeBytes(of: a21, toByteOffset: vb, as: V.self)
      x3.storeBytes(of: a30, as: V.self)
      x3.storeBytes(of: a31, toByteOffset: vb, as: V.self)
    }
    for r in 0..<4 {
      for c in fullColumns..<columns.upperBound {
        var a = X[(i + r) * n + c]
        for q in p { a -= L[(i + r) * n + q] * X[q * n + c] }
        X[(i + r) * n + c] = a
      }
    }
  }
  for i in fullRows..<rows.upperBound {
    for c in columns {
      var a = X[i * n + c]
      for q in p { a -= L[i * n + q] * X[q * n + c] }
      X[i * n + c] = a
    }
  }
}

/// `invertLower` as the formula reads: for each row i, for each row p above it, x_i −= L_ip·x_p,
/// then x_i /= L_ii. The definition `invertLower` is tested against (bit for bit).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func invertLowerReference<T: KernelScalar>(_ l: Matrix<T>) -> Matrix<T> {
  precondition(l.isSquare, "invertLowerReference: L \(l.shapeDescription) is not square")
  let n = l.rows
  var x = Matrix<T>.identity(n)
  l.withUnsafeBufferPointer { pl in
    x.withUnsafeMutableBufferPointer { px in
      guard let L = pl.baseAddress, let X = px.baseAddress else { return }
      for i in 0..<n {
        let xi = X + i * n
        for p in 0..<i {
          let lip = L[i * n + p]
          if lip == 0 { continue }
          let xp = X + p * n
          for c in 0...p { xi[c] -= lip * xp[c] }
        }
        let inv = 1 / L[i * n + i]
        for c in 0...i { xi[c] *= inv }
      }
    }
  }
  return x
}

/// The inverse of a symmetric positive definite A from its factorisation:
/// A⁻¹ = L⁻ᵀL⁻¹ = (L⁻¹)ᵀ(L⁻¹), computed as the Gram matrix of L⁻¹, so it is exactly symmetric.
/// If the factorisation was damped, this is (A + δI)⁻¹.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func spdInverse<T: KernelScalar>(
  _ factor: CholeskyFactorization<T>, threads: Int = Parallelism.threads
) -> Matrix<T> {
  gram(invertLower(factor.lower, threads: threads), threads: threads)
}
