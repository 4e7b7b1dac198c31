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
/// `invertLowerTile.rows` rows takes each row p above it once, while that row's slice is in cache.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func invertLower<T: KernelScalar>(_ l: Matrix<T>, threads: Int = Parallelism.threads) -> Matrix<T> {
  precondition(l.isSquare, "invertLower: L \(l.shapeDescription) is not square")
  let n = l.rows
  var x = Matrix<T>.identity(n)
  guard n > 0 else { return x }
  let tileColumns = invertLowerTile.columns
  let blockRows = invertLowerTile.rows
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
            // Every row p < i1 that can touch the tile (p ≥ c0), in increasing p: rows p < i0 are
            // final; a row p inside the block is final once the updates from the rows above it
            // (all applied by now) are followed by its division.
            for p in c0..<i1 {
              let xp = X + p * n
              if p >= i0 {
                let inv = 1 / L[p * n + p]
                for c in c0..<min(c1, p + 1) { xp[c] *= inv }
              }
              let end = min(c1, p + 1)  // x_pc = 0 for c > p
              for i in max(i0, p + 1)..<i1 {
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
/// slices (256 KB) stay in a core's L2 while the rows above stream past once per block.
let invertLowerTile = (columns: 128, rows: 256)

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
