#if arch(x86_64)
  import PruneKernelsAVX512
#endif

// PruneKernels: the dense linear algebra every PruneKit solver rests on.
//
// Implementation goals, in order of priority:
//   1. Exactness with respect to the stated math, and determinism: the same input gives
//      bit-identical output on every run and for every thread count. The order in which a sum is
//      reduced is a function of the blocking only, never of the scheduling.
//   2. Readability: every fast kernel has a plain reference implementation beside it
//      (`gemmReference`, `gramReference`, `choleskyReference`), and the tests compare the two.
//   3. Speed: the blocked kernels match OpenBLAS on the project's 2-core machine
//      (Docs/benchmarks.md).
//
// Dependencies: the standard library, Dispatch (`concurrentPerform`), the C library for the
// processor count and /proc/cpuinfo, and PruneKernelsAVX512 (the AVX-512 micro-kernels). No
// Foundation below the I/O layer.
//
// Contents:
//   Matrix.swift                  row-major storage, shapes checked at the API edge
//   GEMM.swift                    C ← α·op(A)·op(B) + β·C: public API and `gemmReference`
//   GEMM+Blocked.swift            the BLIS-style five-loop nest, packing, parallel split
//   MicroKernel.swift             the 6×16 (Float) and 6×8 (Double) AVX2 register-tiled SIMD kernels
//   KernelISA.swift               AVX2 or AVX-512: which micro-kernels this CPU runs, chosen once
//   (module PruneKernelsAVX512)   the 6×64 (Float) and 6×32 (Double) AVX-512 micro-kernels
//   Gram.swift                    G += XᵀX (upper triangle, then mirrored), streaming accumulator
//   Cholesky.swift                A = LLᵀ, blocked, with a reported damping-retry policy
//   Triangular.swift              triangular solves and inverses, SPD inverse
//   EigenvalueBound.swift         a certified upper bound on λmax of a symmetric PSD matrix
//   Parallelism.swift             thread count and the Sendable pointer wrapper
//   SplitMix64.swift              the seeded generator behind every synthetic problem and test input
//   PruneKitError.swift           how every error of every module reads: message, hint, one line

/// A floating-point type the kernels are implemented for: `Float` and `Double`.
///
/// The requirements are implementation hooks of the blocked GEMM (its register tiles, cache
/// blockings and micro-kernels); code outside this module calls `gemm`, `gram`, `cholesky` and
/// friends, which are generic over `KernelScalar` and pre-specialised for both conforming types.
public protocol KernelScalar: BinaryFloatingPoint, SIMDScalar, Codable, Sendable, CustomStringConvertible {
  /// Register and cache blocking of the blocked GEMM with the micro-kernel of `isa`.
  static func gemmBlocking(for isa: KernelISA) -> GEMMBlocking

  /// Register and cache blocking of the Gram kernel with the micro-kernel of `isa` (the same
  /// register tile as the GEMM, its own cache sizes).
  static func gramBlocking(for isa: KernelISA) -> GEMMBlocking

  /// The register-tiled micro-kernel of `isa` for this precision, with its register tile (see
  /// MicroKernel.swift for the contract): the one place each tile size is written down. Only a
  /// CPU that `KernelISA.supported` says supports `isa` may run it.
  static func microKernel(for isa: KernelISA) -> MicroKernel<Self>

  /// The scalar's unit roundoff u = ε/2 as a Double (2⁻²⁴ for Float, 2⁻⁵³ for Double), used by
  /// error bounds such as γₙ = n·u/(1 − n·u).
  static var unitRoundoff: Double { get }
}

extension KernelScalar {
  /// The GEMM blocking of this process (`KernelISA.active`).
  public static var gemmBlocking: GEMMBlocking { gemmBlocking(for: .active) }

  /// The Gram blocking of this process (`KernelISA.active`).
  public static var gramBlocking: GEMMBlocking { gramBlocking(for: .active) }

  /// The micro-kernel with register tile `mr × nr` among those this CPU runs; stops if there is
  /// none (a blocking made for AVX-512 used on an AVX2 machine).
  static func microKernel(mr: Int, nr: Int) -> MicroKernel<Self> {
    for isa in KernelISA.supported {
      let kernel = microKernel(for: isa)
      if kernel.mr == mr && kernel.nr == nr { return kernel }
    }
    preconditionFailure(
      "no \(Self.self) micro-kernel with register tile \(mr)×\(nr) on this CPU (available: "
        + KernelISA.supported.map { "\(microKernel(for: $0).mr)×\(microKernel(for: $0).nr) \($0)" }
        .joined(separator: ", ") + ")")
  }
}

extension Float: KernelScalar {
  public static func gemmBlocking(for isa: KernelISA) -> GEMMBlocking { .float(isa) }
  public static func gramBlocking(for isa: KernelISA) -> GEMMBlocking { .floatGram(isa) }
  public static var unitRoundoff: Double { 0x1p-24 }
  public static func microKernel(for isa: KernelISA) -> MicroKernel<Float> {
    switch isa {
    case .baseline: return MicroKernel(mr: 6, nr: 16, isa: isa, run: sgemmMicroKernel6x16)
    case .avx512:
      #if arch(x86_64)
        return MicroKernel(mr: 6, nr: 64, isa: isa, run: sgemmMicroKernelAVX512_6x64)
      #else
        preconditionFailure("AVX-512 micro-kernels exist only in x86_64 builds")
      #endif
    }
  }
}

extension Double: KernelScalar {
  public static func gemmBlocking(for isa: KernelISA) -> GEMMBlocking { .double(isa) }
  public static func gramBlocking(for isa: KernelISA) -> GEMMBlocking { .doubleGram(isa) }
  public static var unitRoundoff: Double { 0x1p-53 }
  public static func microKernel(for isa: KernelISA) -> MicroKernel<Double> {
    switch isa {
    case .baseline: return MicroKernel(mr: 6, nr: 8, isa: isa, run: dgemmMicroKernel6x8)
    case .avx512:
      #if arch(x86_64)
        return MicroKernel(mr: 6, nr: 32, isa: isa, run: dgemmMicroKernelAVX512_6x32)
      #else
        preconditionFailure("AVX-512 micro-kernels exist only in x86_64 builds")
      #endif
    }
  }
}
