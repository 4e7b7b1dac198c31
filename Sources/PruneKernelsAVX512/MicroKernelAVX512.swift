// The AVX-512 micro-kernels: the same contract as MicroKernel.swift in PruneKernels, with a
// register tile four 512-bit vectors wide. This module is compiled with -march=x86-64-v4 (Package.swift)
// and PruneKernels calls it only after checking that the CPU and the OS support AVX-512
// (KernelISA.swift); everything else in the package stays at x86-64-v3 and runs on any AVX2 CPU.
//
// Whether it was compiled for AVX-512 is a build fact the code cannot see (Swift has no condition
// for target features), so the build says it: Package.swift defines PRUNEKIT_AVX512_COMPILED
// beside -march=x86-64-v4, and `compiledForAVX512` reports it. A build without PruneKit's flags
// (PRUNEKIT_NATIVE_FLAGS=0, Docs/using-prunekit.md) still compiles this file, for whatever CPU
// the command line names; KernelISA then keeps the AVX2 kernels, which give the same bits.
//
// Contract (unchanged; see PruneKernels/MicroKernel.swift):
//
//     C[0..<MR, 0..<NR] ← α · Ã · B̃ + β · C          Ã: [MR × k] packed, B̃: [k × NR] packed
//
//   Each C element is reduced in the order p = 0, 1, …, k−1 with one fused multiply-add per step,
//   starting from +0, then written as fma(β, c, α·acc) (α·acc when β = 0), exactly as the AVX2
//   kernels do. A C element therefore has the same bits whichever kernel computed it, as long as
//   the driver hands it the same k blocks (the same kc): the wider tile changes the speed only.
//
// Register budget (32 zmm registers of 512 bits):
//
//       Float 6 × 64                               Double 6 × 32
//     B̃ row p:  [b0: 16 floats][b1][b2][b3]       [b0: 8 doubles][b1][b2][b3]     4 registers
//     Ã col p:  a0 … a5 broadcast                  a0 … a5 broadcast               1 register, reused
//     acc:      c[r][0…3], r < 6                   c[r][0…3], r < 6               24 registers
//
// 29 of 32 registers; per k step: 4 loads of B̃, 6 broadcasts of Ã, 24 FMAs. Why 6 × 4 vectors and
// not the squarer 12 × 2 (24 accumulators too, fewer bytes of Ã and B̃ per flop): on this Zen 5 a
// 512-bit FMA issues at one per cycle, and the broadcasts, not the bytes, were the limit. Measured
// with `prune-bench tune`, 1 thread, DGEMM 768×3072·3072²: 12 × 16 ran at 49–50 GF/s, 8 × 24 at
// 51.5, 6 × 32 at 52.4–53.2, 4 × 48 at 50.4–51.0 (OpenBLAS: 52.9).
//
// Prefetch. Swift has no prefetch function; the Builtin module (enabled for this target only, with
// the experimental feature BuiltinModule) exposes LLVM's llvm.prefetch. Asking for the C tile
// at the start of a β ≠ 0 call, as OpenBLAS's kernels do, hides the cache misses of the final C
// update: +1–1.5 % on the wide Gram, +1 % on the DGEMM (interleaved A/B runs of two builds).
// Package.swift always enables the feature; a compiler run without it gets a prefetch that does
// nothing (a hint only: the results are the same).

/// True when this module was compiled for x86-64-v4 (the build defines PRUNEKIT_AVX512_COMPILED
/// together with -march=x86-64-v4 or native on an AVX-512 machine). PruneKernels runs the kernels
/// below only when this is true and the CPU supports AVX-512 (KernelISA.swift).
#if PRUNEKIT_AVX512_COMPILED
  public let compiledForAVX512 = true
#else
  public let compiledForAVX512 = false
#endif

#if arch(x86_64)
  #if hasFeature(BuiltinModule)
    import Builtin
  #endif

  /// Prefetch (for writing, into all cache levels) the cache lines of one row of a C tile.
  @inline(__always)
  func prefetchTile(row: UnsafeRawPointer, bytes: Int) {
    var offset = 0
    while offset < bytes {
      prefetchForWrite(row + offset)
      offset += 64
    }
    prefetchForWrite(row + (bytes - 1))  // the row may start inside a line and end in one more
  }

  /// llvm.prefetch(address, rw = 1 (write), locality = 3 (keep in all levels), cache = 1 (data)).
  @inline(__always)
  func prefetchForWrite(_ p: UnsafeRawPointer) {
    #if hasFeature(BuiltinModule)
      Builtin.int_prefetch_RawPointer(p._rawValue, (1 as Int32)._value, (3 as Int32)._value, (1 as Int32)._value)
    #endif
  }

  /// One vector of the C tile ← α·acc (β = 0: C is not read) or fma(β, C, α·acc).
  @inline(__always)
  func storeScaled<V: SIMD>(_ acc: V, at p: UnsafeMutableRawPointer, _ alpha: V.Scalar, _ beta: V.Scalar)
  where V.Scalar: FloatingPoint {
    if beta == 0 {
      p.storeBytes(of: alpha * acc, as: V.self)
    } else {
      p.storeBytes(of: (alpha * acc).addingProduct(beta, p.loadUnaligned(as: V.self)), as: V.self)
    }
  }

  /// Float AVX-512 micro-kernel, MR = 6, NR = 64 (four SIMD16<Float> per row). See the contract above.
  @inline(never)
  public func sgemmMicroKernelAVX512_6x64(
    _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float
  ) {
    microKernel6x4(SIMD16<Float>.self, k, a, b, c, ldc, alpha, beta)
  }

  /// Double AVX-512 micro-kernel, MR = 6, NR = 32 (four SIMD8<Double> per row). See the contract above.
  @inline(never)
  public func dgemmMicroKernelAVX512_6x32(
    _ k: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
    _ c: UnsafeMutablePointer<Double>, _ ldc: Int, _ alpha: Double, _ beta: Double
  ) {
    microKernel6x4(SIMD8<Double>.self, k, a, b, c, ldc, alpha, beta)
  }

  /// The 6 × 4-vector kernel for one 512-bit vector type V (one zmm register). Always inlined into
  /// the two entry points above, so each is compiled for its concrete type, with no generic calls
  /// left: 24 accumulators, 4 loads, 6 broadcasts and 24 `vfmadd231` per k step.
  @inline(__always)
  func microKernel6x4<V: SIMD>(
    _: V.Type, _ k: Int, _ a: UnsafePointer<V.Scalar>, _ b: UnsafePointer<V.Scalar>,
    _ c: UnsafeMutablePointer<V.Scalar>, _ ldc: Int, _ alpha: V.Scalar, _ beta: V.Scalar
  ) where V.Scalar: BinaryFloatingPoint {
    let vb = MemoryLayout<V>.size  // 64 bytes
    var c00 = V()
    var c01 = V()
    var c02 = V()
    var c03 = V()
    var c10 = V()
    var c11 = V()
    var c12 = V()
    var c13 = V()
    var c20 = V()
    var c21 = V()
    var c22 = V()
    var c23 = V()
    var c30 = V()
    var c31 = V()
    var c32 = V()
    var c33 = V()
    var c40 = V()
    var c41 = V()
    var c42 = V()
    var c43 = V()
    var c50 = V()
    var c51 = V()
    var c52 = V()
    var c53 = V()
    // The C tile is read only at the end, after k steps: ask for its 24 cache lines now.
    if beta != 0 {
      for row in 0..<6 { prefetchTile(row: UnsafeRawPointer(c + row * ldc), bytes: 4 * vb) }
    }
    var pa = a
    var pb = UnsafeRawPointer(b)
    for _ in 0..<k {
      // Row p of B̃ (4 vectors), then each element of column p of Ã broadcast against it.
      let b0 = pb.loadUnaligned(as: V.self)
      let b1 = pb.loadUnaligned(fromByteOffset: vb, as: V.self)
      let b2 = pb.loadUnaligned(fromByteOffset: 2 * vb, as: V.self)
      let b3 = pb.loadUnaligned(fromByteOffset: 3 * vb, as: V.self)
      var ai = V(repeating: pa[0])
      c00 = c00.addingProduct(ai, b0)
      c01 = c01.addingProduct(ai, b1)
      c02 = c02.addingProduct(ai, b2)
      c03 = c03.addingProduct(ai, b3)
      ai = V(repeating: pa[1])
      c10 = c10.addingProduct(ai, b0)
      c11 = c11.addingProduct(ai, b1)
      c12 = c12.addingProduct(ai, b2)
      c13 = c13.addingProduct(ai, b3)
      ai = V(repeating: pa[2])
      c20 = c20.addingProduct(ai, b0)
      c21 = c21.addingProduct(ai, b1)
      c22 = c22.addingProduct(ai, b2)
      c23 = c23.addingProduct(ai, b3)
      ai = V(repeating: pa[3])
      c30 = c30.addingProduct(ai, b0)
      c31 = c31.addingProduct(ai, b1)
      c32 = c32.addingProduct(ai, b2)
      c33 = c33.addingProduct(ai, b3)
      ai = V(repeating: pa[4])
      c40 = c40.addingProduct(ai, b0)
      c41 = c41.addingProduct(ai, b1)
      c42 = c42.addingProduct(ai, b2)
      c43 = c43.addingProduct(ai, b3)
      ai = V(repeating: pa[5])
      c50 = c50.addingProduct(ai, b0)
      c51 = c51.addingProduct(ai, b1)
      c52 = c52.addingProduct(ai, b2)
      c53 = c53.addingProduct(ai, b3)
      pa += 6
      pb += 4 * vb
    }
    @inline(__always)
    func store(_ row: Int, _ x0: V, _ x1: V, _ x2: V, _ x3: V) {
      let p = UnsafeMutableRawPointer(c + row * ldc)
      storeScaled(x0, at: p, alpha, beta)
      storeScaled(x1, at: p + vb, alpha, beta)
      storeScaled(x2, at: p + 2 * vb, alpha, beta)
      storeScaled(x3, at: p + 3 * vb, alpha, beta)
    }
    store(0, c00, c01, c02, c03)
    store(1, c10, c11, c12, c13)
    store(2, c20, c21, c22, c23)
    store(3, c30, c31, c32, c33)
    store(4, c40, c41, c42, c43)
    store(5, c50, c51, c52, c53)
  }
#endif
