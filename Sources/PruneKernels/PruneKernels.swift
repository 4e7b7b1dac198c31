// PruneKernels: the dense linear algebra every PruneKit solver rests on.
//
// Implementation goals, in order of priority:
//   1. Exactness with respect to the stated math, and determinism: the same input gives
//      bit-identical output on every run and for every thread count. The order in which a sum is
//      reduced is a function of the blocking only, never of the scheduling.
//   2. Readability: every fast kernel has a plain reference implementation beside it
//      (`gemmReference`, `gramReference`, `choleskyReference`), and the tests compare the two.
//   3. Speed: the blocked kernels match OpenBLAS on the project's 2-core AVX2 machine
//      (Docs/benchmarks.md).
//
// Dependencies: the standard library, Dispatch (`concurrentPerform`) and the C library for the
// processor count. No Foundation below the I/O layer.
//
// Contents:
//   Matrix.swift                  row-major storage, shapes checked at the API edge
//   GEMM.swift                    C ← α·op(A)·op(B) + β·C: public API and `gemmReference`
//   GEMM+Blocked.swift            the BLIS-style five-loop nest, packing, parallel split
//   MicroKernel.swift             the 6×16 (Float) and 6×8 (Double) register-tiled SIMD kernels
//   Gram.swift                    G += XᵀX (upper triangle, then mirrored), streaming accumulator
//   Cholesky.swift                A = LLᵀ, blocked, with a reported damping-retry policy
//   Triangular.swift              triangular solves and inverses, SPD inverse
//   EigenvalueBound.swift         a certified upper bound on λmax of a symmetric PSD matrix
//   Parallelism.swift             thread count and the Sendable pointer wrapper

/// A floating-point type the kernels are implemented for: `Float` and `Double`.
///
/// The requirements are implementation hooks of the blocked GEMM (its register tile and
/// micro-kernel); code outside this module calls `gemm`, `gram`, `cholesky` and friends, which are
/// generic over `KernelScalar` and pre-specialised for both conforming types.
public protocol KernelScalar: BinaryFloatingPoint, SIMDScalar, Codable, Sendable, CustomStringConvertible {
  /// Register and cache blocking of the blocked GEMM for this precision (`GEMMBlocking`).
  static var gemmBlocking: GEMMBlocking { get }

  /// Register and cache blocking of the Gram kernel (same register tile, its own cache sizes).
  static var gramBlocking: GEMMBlocking { get }

  /// The register-tiled micro-kernel (see MicroKernel.swift for its contract):
  /// `C[0..<mr, 0..<nr] ← α · Ã·B̃ + β · C`, where Ã is a packed `[k × mr]` micro-panel and B̃ a
  /// packed `[k × nr]` micro-panel. When β = 0, C is not read.
  static func _microKernel(
    _ k: Int, _ a: UnsafePointer<Self>, _ b: UnsafePointer<Self>,
    _ c: UnsafeMutablePointer<Self>, _ ldc: Int, _ alpha: Self, _ beta: Self)

  /// The scalar's unit roundoff u = ε/2 as a Double (2⁻²⁴ for Float, 2⁻⁵³ for Double), used by
  /// error bounds such as γₙ = n·u/(1 − n·u).
  static var unitRoundoff: Double { get }
}

extension Float: KernelScalar {
  public static var gemmBlocking: GEMMBlocking { .float }
  public static var gramBlocking: GEMMBlocking { .floatGram }
  public static var unitRoundoff: Double { 0x1p-24 }
  @inline(__always)
  public static func _microKernel(
    _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float
  ) {
    sgemmMicroKernel6x16(k, a, b, c, ldc, alpha, beta)
  }
}

extension Double: KernelScalar {
  public static var gemmBlocking: GEMMBlocking { .double }
  public static var gramBlocking: GEMMBlocking { .doubleGram }
  public static var unitRoundoff: Double { 0x1p-53 }
  @inline(__always)
  public static func _microKernel(
    _ k: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
    _ c: UnsafeMutablePointer<Double>, _ ldc: Int, _ alpha: Double, _ beta: Double
  ) {
    dgemmMicroKernel6x8(k, a, b, c, ldc, alpha, beta)
  }
}
