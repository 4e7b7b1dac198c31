import PruneTestSupport
import Testing

@testable import PruneKernels

// Bit-identity across thread counts: threads split output tiles (rows, or column panels when m is
// small) and never the shared dimension, so every element is reduced in the same order. The
// minimum-work threshold is set to 0 so that even small problems are split, and tiny cache blocks
// make the splits land inside mc and nc blocks.

@Suite("Results do not depend on the thread count")
struct DeterminismTests {
  struct Shape: Sendable, CustomTestStringConvertible {
    let m, n, k: Int
    var testDescription: String { "\(m)×\(k)·\(k)×\(n)" }
  }
  // tall (row split), short-and-wide (panel split: m < 2·threads·MR), square, and odd sizes.
  static let shapes = [
    Shape(m: 97, n: 61, k: 29), Shape(m: 5, n: 211, k: 17), Shape(m: 64, n: 64, k: 64), Shape(m: 1, n: 1, k: 300),
  ]

  @Test("GEMM with 1, 2, 3 and 7 threads is bit-identical", arguments: Precision.allCases, shapes)
  func gemmThreads(_ p: Precision, _ s: Shape) {
    func run<T: KernelScalar>(_: T.Type) {
      var rng = SplitMix64(seed: 11)
      let a = Matrix<T>.random(rows: s.m, columns: s.k, using: &rng)
      let b = Matrix<T>.random(rows: s.n, columns: s.k, using: &rng)
      let c0 = Matrix<T>.random(rows: s.m, columns: s.n, using: &rng)
      func product(threads: Int, blocking: GEMMBlocking) -> Matrix<T> {
        var c = c0
        a.withUnsafeBufferPointer { pa in
          b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
              gemmBlocked(
                m: s.m, n: s.n, k: s.k, alpha: 1.5,
                a: StridedOperand(base: pa.baseAddress!, rowStride: s.k, columnStride: 1),
                b: StridedOperand(base: pb.baseAddress!, rowStride: 1, columnStride: s.k),
                beta: -1, c: pc.baseAddress!, ldc: s.n, threads: threads, blocking: blocking,
                region: .full, minimumFlopsPerThread: 0)
            }
          }
        }
        return c
      }
      for isa in KernelISA.supported {
        for blocking in [tinyBlocking(T.self, isa), T.gemmBlocking(for: isa)] {
          let one = product(threads: 1, blocking: blocking)
          for t in [2, 3, 7] {
            expectBitIdentical(
              product(threads: t, blocking: blocking), one, "\(T.self) \(s.testDescription) threads=\(t) \(blocking)")
          }
          expectBitIdentical(product(threads: 2, blocking: blocking), one, "\(T.self) rerun")
        }
      }
    }
    p == .float ? run(Float.self) : run(Double.self)
  }

  @Test("Gram with 1, 2 and 5 threads is bit-identical", arguments: Precision.allCases)
  func gramThreads(_ p: Precision) {
    func run<T: KernelScalar>(_: T.Type) {
      var rng = SplitMix64(seed: 12)
      let x = Matrix<T>.random(rows: 83, columns: 71, using: &rng)
      func g(_ threads: Int, _ blocking: GEMMBlocking) -> Matrix<T> {
        var out = Matrix<T>(rows: 71, columns: 71)
        x.withUnsafeBufferPointer { px in
          out.withUnsafeMutableBufferPointer { pg in
            gramUpper(
              x: px.baseAddress!, tokens: 83, features: 71, ldx: 71, g: pg.baseAddress!, ldg: 71,
              threads: threads, blocking: blocking, minimumFlopsPerThread: 0)
            mirrorUpperToLower(pg.baseAddress!, n: 71, ld: 71)
          }
        }
        return out
      }
      for isa in KernelISA.supported {
        for blocking in [tinyBlocking(T.self, isa), T.gramBlocking(for: isa)] {
          let one = g(1, blocking)
          for t in [2, 5] { expectBitIdentical(g(t, blocking), one, "\(T.self) threads=\(t) \(blocking)") }
        }
      }
    }
    p == .float ? run(Float.self) : run(Double.self)
  }

  @Test("Cholesky, SPD inverse and the eigenvalue bound with 1 and 2 threads are bit-identical")
  func factorisationThreads() throws {
    var rng = SplitMix64(seed: 13)
    let a = randomSPD(300, shift: 1, using: &rng)
    let f1 = try cholesky(a, threads: 1)
    let f2 = try cholesky(a, threads: 2)
    expectBitIdentical(f1.lower, f2.lower, "cholesky")
    expectBitIdentical(spdInverse(f1, threads: 1), spdInverse(f2, threads: 2), "spdInverse")
    #expect(largestEigenvalueUpperBound(a, threads: 1) == largestEigenvalueUpperBound(a, threads: 2))
  }
}
