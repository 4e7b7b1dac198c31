// prune-bench tune: compares cache blockings of the blocked GEMM on one shape, interleaved.
//
//   prune-bench tune --m 576 --n 576 --k 576 --threads 2 --precision float
//                    --blockings 384/144/768,256/144/768  [--rounds 5] [--runs 20]
//
// Each blocking is written kc/mc/nc. Rounds alternate the blockings so that machine noise hits all
// of them alike; the best median per blocking is reported (noise only slows runs down).

import Dispatch
import Foundation
import PruneKit

func runTune(
  m: Int, n: Int, k: Int, threads: Int, double: Bool, blockings: [(Int, Int, Int)], rounds: Int, runs: Int,
  gramKernel: Bool = false
) {
  func run<T: KernelScalar>(_: T.Type) {
    var rng = SystemRandomNumberGenerator()
    let a = Matrix<T>(rows: m, columns: k) { _, _ in T(Double.random(in: -1...1, using: &rng)) }
    // The Gram times X = a: [m tokens × k features] (n unused); the GEMM C = a·b.
    let b = Matrix<T>(rows: gramKernel ? 0 : k, columns: gramKernel ? 0 : n) { _, _ in
      T(Double.random(in: -1...1, using: &rng))
    }
    var c = gramKernel ? Matrix<T>(rows: k, columns: k) : Matrix<T>(rows: m, columns: n)
    let base = T.gemmBlocking

    /// One call of the kernel under test with `blocking`.
    func call(_ blocking: GEMMBlocking) {
      if gramKernel {
        gram(a, into: &c, threads: threads, blocking: blocking)
        return
      }
      a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
          c.withUnsafeMutableBufferPointer { pc in
            gemm(
              transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: pa.baseAddress!, lda: k,
              b: pb.baseAddress!, ldb: n, beta: 0, c: pc.baseAddress!, ldc: n, threads: threads, blocking: blocking)
          }
        }
      }
    }

    var best = [Double](repeating: .infinity, count: blockings.count)
    for _ in 0..<rounds {
      for (i, bl) in blockings.enumerated() {
        let blocking = GEMMBlocking(mr: base.mr, nr: base.nr, kc: bl.0, mc: bl.1, nc: bl.2)
        var times: [Double] = []
        for r in 0...runs {  // run 0 is the warm-up
          let t0 = DispatchTime.now().uptimeNanoseconds
          call(blocking)
          if r > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        }
        times.sort()
        best[i] = min(best[i], times[times.count / 2])
      }
    }
    let prefix = double ? "d" : "s"
    for (i, bl) in blockings.enumerated() {
      // GEMM: 2mnk flops; Gram: 2·m·k² (as `prune-bench kernels` counts it, n = features).
      let shape =
        gramKernel
        ? "\"kernel\":\"\(prefix)gram\",\"m\":\(m),\"n\":\(k)"
        : "\"kernel\":\"\(prefix)gemm\",\"m\":\(m),\"n\":\(n),\"k\":\(k)"
      let flops = gramKernel ? 2 * Double(m) * Double(k) * Double(k) : 2 * Double(m) * Double(n) * Double(k)
      print(
        "{\(shape),\"threads\":\(threads),\"kc\":\(bl.0),\"mc\":\(bl.1),\"nc\":\(bl.2),\"gflops\":\(String(format: "%.2f", flops / best[i] / 1e9))}"
      )
    }
  }
  double ? run(Double.self) : run(Float.self)
}
