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
@_specialize(where T == Float)
@_specialize(where T == Double)
public func invertLower<T: KernelScalar>(_ l: Matrix<T>) -> Matrix<T> {
  precondition(l.isSquare, "invertLower: L \(l.shapeDescription) is not square")
  // L⁻¹ solves L X = I; row i of X only has entries in columns 0…i.
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
  gram(invertLower(factor.lower), threads: threads)
}
