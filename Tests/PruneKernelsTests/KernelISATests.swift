import PruneTestSupport
import Testing

@testable import PruneKernels

// The AVX2 and AVX-512 micro-kernels share one contract: each C element is a chain of fused
// multiply-adds over p in increasing order, from +0, then α·acc or fma(β, C, α·acc). With the same
// kc the driver hands every element the same k blocks, so the two must agree bit for bit, not
// within a tolerance. That is what lets an AVX-512 machine reproduce an AVX2 machine's pruned
// model exactly. On a CPU without AVX-512 there is a single kernel per precision and the
// comparison tests are skipped (they show as skipped, not passed).

/// `C ← α·op(A)·op(B) + β·C` through the blocked driver with `blocking`.
private func blockedProduct<T: KernelScalar>(
  _ a: Matrix<T>, _ b: Matrix<T>, _ c0: Matrix<T>, transposeA: Bool, transposeB: Bool,
  alpha: T, beta: T, blocking: GEMMBlocking, threads: Int
) -> Matrix<T> {
  var c = c0
  let m = c.rows
  let n = c.columns
  let k = transposeA ? a.rows : a.columns
  a.withUnsafeBufferPointer { pa in
    b.withUnsafeBufferPointer { pb in
      c.withUnsafeMutableBufferPointer { pc in
        guard let ab = pa.baseAddress, let bb = pb.baseAddress, let cb = pc.baseAddress else { return }
        gemmBlocked(
          m: m, n: n, k: k, alpha: alpha,
          a: StridedOperand(
            base: ab, rowStride: transposeA ? 1 : max(1, a.columns), columnStride: transposeA ? max(1, a.columns) : 1),
          b: StridedOperand(
            base: bb, rowStride: transposeB ? 1 : max(1, b.columns), columnStride: transposeB ? max(1, b.columns) : 1),
          beta: beta, c: cb, ldc: max(1, n), threads: threads, blocking: blocking, region: .full,
          minimumFlopsPerThread: 0)
      }
    }
  }
  return c
}

/// The same cache blocking with another instruction set's register tile.
private func retiled(_ b: GEMMBlocking, like other: GEMMBlocking) -> GEMMBlocking {
  GEMMBlocking(mr: other.mr, nr: other.nr, kc: b.kc, mc: b.mc, nc: b.nc)
}

@Suite("Micro-kernel instruction sets (AVX2 and AVX-512)")
struct KernelISATests {
  static let hasTwo = KernelISA.supported.count > 1

  @Test("the active instruction set is supported and its kernels serve the default blockings")
  func activeIsSupported() {
    #expect(KernelISA.supported.first == .baseline)
    #expect(KernelISA.supported.contains(KernelISA.active))
    for (isa, f, d) in KernelISA.supported.map({ ($0, Float.gemmBlocking(for: $0), Double.gemmBlocking(for: $0)) }) {
      #expect(Float.microKernel(mr: f.mr, nr: f.nr).isa == isa)
      #expect(Double.microKernel(mr: d.mr, nr: d.nr).isa == isa)
      // The Gram uses the GEMM's register tile; only the cache blocking differs.
      #expect(Float.gramBlocking(for: isa).nr == f.nr && Double.gramBlocking(for: isa).nr == d.nr)
    }
    // Both instruction sets block the cache the same way (the precondition of bit-identity).
    let kcs = Set(KernelISA.supported.map { Double.gemmBlocking(for: $0).kc })
    #expect(kcs.count == 1)
  }

  @Test("the AVX-512 kernels are offered only when the CPU has AVX-512 and the build compiled them for it")
  func avx512NeedsCPUAndBuild() {
    // A portable build (PRUNEKIT_NATIVE_FLAGS=0 without -DPRUNEKIT_AVX512_COMPILED) on an AVX-512
    // CPU must keep the AVX2 kernels: its PruneKernelsAVX512 was not compiled for AVX-512.
    #expect(KernelISA.supported.contains(.avx512) == (KernelISA.cpuSupportsAVX512 && KernelISA.avx512KernelsCompiled))
    #expect(KernelISA.active == .baseline || KernelISA.supported.contains(.avx512))
  }

  #if arch(x86_64) && os(Linux)
    @Test("/proc/cpuinfo parses and AVX-512 is used only when every x86-64-v4 flag is there")
    func cpuinfo() throws {
      let flags = try #require(cpuinfoFlags(), "no flags line in /proc/cpuinfo")
      // Every build of this package needs AVX2 and FMA (x86-64-v3), so they must be listed.
      #expect(flags.contains("avx2") && flags.contains("fma"))
      let v4 = ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
      #expect(KernelISA.cpuSupportsAVX512 == v4)
    }
  #endif

  @Test(
    "GEMM: AVX-512 and AVX2 kernels give bit-identical C for the same kc",
    .enabled(if: hasTwo, "this CPU has no AVX-512"), arguments: Precision.allCases)
  func gemmAcrossISAs(_ p: Precision) {
    func run<T: KernelScalar>(_: T.Type) {
      var rng = SplitMix64(seed: 31)
      let base = T.gemmBlocking(for: .baseline)
      let wide = T.gemmBlocking(for: .avx512)
      // Edge tiles of both register tiles, several k blocks (balanced kc), every transpose, β = 0
      // over NaN and β ≠ 0; the production blocking and a tiny one.
      let tiny = GEMMBlocking(mr: base.mr, nr: base.nr, kc: 5, mc: 2 * base.mr, nc: 2 * wide.nr)
      let shapes = [(13, 70, 11), (6, 64, 40), (37, 129, 23), (base.mc + 5, 2 * wide.nr + 9, 2 * base.kc + 7)]
      for blocking in [tiny, base] {
        for (i, (m, n, k)) in shapes.enumerated() {
          for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = Matrix<T>.random(rows: ta ? k : m, columns: ta ? m : k, using: &rng)
            let b = Matrix<T>.random(rows: tb ? n : k, columns: tb ? k : n, using: &rng)
            for (alpha, beta) in [(T(1), T(0)), (T(-0.75), T(1.5))] {
              let c0 =
                beta == 0
                ? Matrix<T>(rows: m, columns: n, repeating: .nan)
                : Matrix<T>.random(rows: m, columns: n, using: &rng)
              let narrow = blockedProduct(
                a, b, c0, transposeA: ta, transposeB: tb, alpha: alpha, beta: beta, blocking: blocking, threads: 1)
              let widened = blockedProduct(
                a, b, c0, transposeA: ta, transposeB: tb, alpha: alpha, beta: beta,
                blocking: retiled(blocking, like: wide), threads: 2)
              expectBitIdentical(widened, narrow, "\(T.self) shape \(i) Aᵀ=\(ta) Bᵀ=\(tb) β=\(beta) \(blocking)")
            }
          }
        }
      }
    }
    p == .float ? run(Float.self) : run(Double.self)
  }

  @Test(
    "Gram: AVX-512 and AVX2 kernels give bit-identical G for the same kc",
    .enabled(if: hasTwo, "this CPU has no AVX-512"), arguments: Precision.allCases)
  func gramAcrossISAs(_ p: Precision) {
    func run<T: KernelScalar>(_: T.Type) {
      var rng = SplitMix64(seed: 32)
      let base = T.gramBlocking(for: .baseline)
      let wide = T.gramBlocking(for: .avx512)
      #expect(base.kc == wide.kc && base.mc == wide.mc && base.nc == wide.nc)
      for (tokens, features) in [(9, 70), (base.kc + 3, 2 * wide.nr + 5), (2 * base.kc + 1, 100)] {
        let x = Matrix<T>.random(rows: tokens, columns: features, using: &rng)
        var g1 = Matrix<T>(rows: features, columns: features)
        var g2 = g1
        gram(x, into: &g1, threads: 1, blocking: base)
        gram(x, into: &g2, threads: 2, blocking: wide)
        expectBitIdentical(g2, g1, "\(T.self) Gram [\(tokens) × \(features)]")
      }
    }
    p == .float ? run(Float.self) : run(Double.self)
  }
}
