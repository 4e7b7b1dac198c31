// The register-tiled micro-kernels of the blocked GEMM (BLIS's "microkernel").
//
// Contract (the same for both precisions; after BLIS's KernelsHowTo,
// https://github.com/flame/blis/blob/master/docs/KernelsHowTo.md):
//
//     C[0..<MR, 0..<NR] ← α · Ã · B̃ + β · C          Ã: [MR × k], B̃: [k × NR]
//
//   • Ã is a packed micro-panel of A: k columns of MR contiguous elements, column p at a + p·MR.
//   • B̃ is a packed micro-panel of B: k rows of NR contiguous elements, row p at b + p·NR.
//   • C is row-major with row stride ldc; the kernel writes the full MR × NR tile. Edge tiles
//     (fewer than MR rows or NR columns left) are the caller's business: it runs the kernel into
//     a scratch tile and copies the valid part (GEMM+Blocked.swift), so the kernel never branches
//     on the shape.
//   • When β = 0, C is not read: it may hold NaN or Inf from a fresh allocation.
//   • Each C element is reduced in the order p = 0, 1, …, k−1 with a fused multiply-add per step,
//     starting from +0, then written as fma(β, c, α·acc) (or α·acc when β = 0). The result of an
//     element therefore depends only on k and the data, never on where the tile sits.
//
// These are the AVX2 kernels, which every x86_64 build runs; CPUs with AVX-512 run the wider
// kernels of the PruneKernelsAVX512 module instead (KernelISA.swift), under the same contract.
//
// Register budget on AVX2 (16 ymm registers of 256 bits). One generic body, microKernel6x2, for
// a 256-bit vector type V; the two entry points instantiate it with V = SIMD8<Float> and
// V = SIMD4<Double>:
//
//       Float 6 × 16 (V = SIMD8<Float>)     Double 6 × 8 (V = SIMD4<Double>)
//     B̃ row p:  [b0: 8 floats][b1: 8]     [b0: 4 doubles][b1: 4]       2 registers
//     Ã col p:  a0 … a5 broadcast          a0 … a5 broadcast            1 register, reused
//     acc:      c[r][0], c[r][1], r<6      c[r][0], c[r][1], r<6       12 registers
//
// That is 15 of 16 registers; per k step: 2 loads of B̃, 6 broadcasts of Ã, 12 FMAs. Swift never
// contracts `a * b + c` into an FMA, so the products are written `.addingProduct` (always fused,
// hence bit-identical with or without AVX2; only the speed depends on the build flags).
//
// The body is `@inline(__always)` and the entry points `@inline(never)`: each entry point is the
// body specialised for its concrete type, with no generic call left. The AVX-512 kernels
// (PruneKernelsAVX512/MicroKernelAVX512.swift) are built the same way. The register allocation of
// such a kernel is fragile (a different but equivalent loop form spills accumulators inside the k
// loop), so a change here is checked on the compiled code: `objdump -d` of the two entry points in
// .build/release/PruneKernels.build/MicroKernel.swift.o, before and after, addresses aside. The
// generic body compiles to exactly the instructions of the two hand-written copies it replaced.

/// A micro-kernel and its register tile: `run(k, Ã, B̃, C, ldc, α, β)` computes
/// `C[0..<mr, 0..<nr] ← α·Ã·B̃ + β·C` as in the contract above.
public struct MicroKernel<T>: Sendable {
  public let mr: Int
  public let nr: Int
  /// The instruction set it is compiled for.
  public let isa: KernelISA
  let run: @Sendable (Int, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>, Int, T, T) -> Void
}

/// Float micro-kernel, MR = 6, NR = 16 (two SIMD8<Float> per row). See the contract above.
@inline(never)
func sgemmMicroKernel6x16(
  _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
  _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float
) {
  microKernel6x2(SIMD8<Float>.self, k, a, b, c, ldc, alpha, beta)
}

/// Double micro-kernel, MR = 6, NR = 8 (two SIMD4<Double> per row). See the contract above.
@inline(never)
func dgemmMicroKernel6x8(
  _ k: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
  _ c: UnsafeMutablePointer<Double>, _ ldc: Int, _ alpha: Double, _ beta: Double
) {
  microKernel6x2(SIMD4<Double>.self, k, a, b, c, ldc, alpha, beta)
}

/// The 6 × 2-vector kernel for one 256-bit vector type V (one ymm register). Always inlined into
/// the two entry points above, so each is compiled for its concrete type, with no generic calls
/// left: 12 accumulators, 2 loads, 6 broadcasts and 12 `vfmadd231` per k step.
@inline(__always)
func microKernel6x2<V: SIMD>(
  _: V.Type, _ k: Int, _ a: UnsafePointer<V.Scalar>, _ b: UnsafePointer<V.Scalar>,
  _ c: UnsafeMutablePointer<V.Scalar>, _ ldc: Int, _ alpha: V.Scalar, _ beta: V.Scalar
) where V.Scalar: BinaryFloatingPoint {
  let vb = MemoryLayout<V>.size  // 32 bytes
  var c00 = V()
  var c01 = V()
  var c10 = V()
  var c11 = V()
  var c20 = V()
  var c21 = V()
  var c30 = V()
  var c31 = V()
  var c40 = V()
  var c41 = V()
  var c50 = V()
  var c51 = V()
  var pa = a
  var pb = UnsafeRawPointer(b)
  // `while p != k`, not `for _ in 0..<k`: the same k steps (and the same trap on k < 0), but once
  // this body is inlined into an entry point, the `for` form leaves the loop's block after the
  // stores, and LLVM then assigns the registers of the stores differently from the hand-written
  // kernels; this form compiles to exactly their instructions.
  precondition(k >= 0)
  var p = 0
  while p != k {
    // Row p of B̃ (2 vectors), then each element of column p of Ã broadcast against it.
    let b0 = pb.loadUnaligned(as: V.self)
    let b1 = pb.loadUnaligned(fromByteOffset: vb, as: V.self)
    var ai = V(repeating: pa[0])
    c00 = c00.addingProduct(ai, b0)
    c01 = c01.addingProduct(ai, b1)
    ai = V(repeating: pa[1])
    c10 = c10.addingProduct(ai, b0)
    c11 = c11.addingProduct(ai, b1)
    ai = V(repeating: pa[2])
    c20 = c20.addingProduct(ai, b0)
    c21 = c21.addingProduct(ai, b1)
    ai = V(repeating: pa[3])
    c30 = c30.addingProduct(ai, b0)
    c31 = c31.addingProduct(ai, b1)
    ai = V(repeating: pa[4])
    c40 = c40.addingProduct(ai, b0)
    c41 = c41.addingProduct(ai, b1)
    ai = V(repeating: pa[5])
    c50 = c50.addingProduct(ai, b0)
    c51 = c51.addingProduct(ai, b1)
    pa += 6
    pb += 2 * vb
    p &+= 1
  }
  // C row ← α·acc (β = 0: C is not read) or fma(β, C, α·acc).
  @inline(__always)
  func store(_ row: Int, _ x0: V, _ x1: V) {
    let dst = UnsafeMutableRawPointer(c + row * ldc)
    if beta == 0 {
      dst.storeBytes(of: alpha * x0, as: V.self)
      dst.storeBytes(of: alpha * x1, toByteOffset: vb, as: V.self)
    } else {
      let o0 = dst.loadUnaligned(as: V.self)
      let o1 = dst.loadUnaligned(fromByteOffset: vb, as: V.self)
      dst.storeBytes(of: (alpha * x0).addingProduct(beta, o0), as: V.self)
      dst.storeBytes(of: (alpha * x1).addingProduct(beta, o1), toByteOffset: vb, as: V.self)
    }
  }
  store(0, c00, c01)
  store(1, c10, c11)
  store(2, c20, c21)
  store(3, c30, c31)
  store(4, c40, c41)
  store(5, c50, c51)
}
