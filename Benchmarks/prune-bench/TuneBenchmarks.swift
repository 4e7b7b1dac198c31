// prune-bench tune: compares cache blockings of the blocked GEMM on one shape, interleaved.
//
//   prune-bench tune --m 576 --n 576 --k 576 --threads 2 --precision float
//                    --blockings 384/144/768,256/144/768  [--rounds 5] [--runs 20]
//
// Each blocking is written kc/mc/nc. Rounds alternate the blockings so that machine noise hits all
// of them alike; the best median per blocking is reported (noise only slows runs down).

import Dispatch
import Foundation
import PruneKernels

func runTune(
  m: Int, n: Int, k: Int, threads: Int, double: Bool, blockings: [(Int, Int, Int)], rounds: Int, runs: Int,
  gramKernel: Bool = false
) {
  func run<T: KernelScalar>(_: T.Type) {
    var rng = SystemRandomNumberGenerator()
    let a = Matrix<T>(rows: m, columns: k) { _, _ in T(Double.random(in: -1...1, using: &rng)) }
    let b = Matrix<T>(rows: k, columns: n) { _, _ in T(Double.random(in: -1...1, using: &rng)) }
    var c = Matrix<T>(rows: m, columns: n)
    let base = T.gemmBlocking
    if gramKernel {
      // Gram of X = a: [m tokens × k features]; 2·m·k² flops as in `prune-bench kernels`.
      var g = Matrix<T>(rows: k, columns: k)
      var best = [Double](repeating: .infinity, count: blockings.count)
      for _ in 0..<rounds {
        for (i, bl) in blockings.enumerated() {
          let blocking = GEMMBlocking(mr: base.mr, nr: base.nr, kc: bl.0, mc: bl.1, nc: bl.2)
          var times: [Double] = []
          for r in 0...runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            gram(a, into: &g, threads: threads, blocking: blocking)
            if r > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
          }
          times.sort()
          best[i] = min(best[i], times[times.count / 2])
        }
      }
      for (i, bl) in blockings.enumerated() {
        let gf = 2 * Double(m) * Double(k) * Double(k) / best[i] / 1e9
        print("{\"kernel\":\"\(double ? "dgram" : "sgram")\",\"m\":\(m),\"n\":\(k),\"threads\":\(threads),\"kc\":\(bl.0),\"mc\":\(bl.1),\"nc\":\(bl.2),\"gflops\":\(String(format: "%.2f", gf))}")
      }
      return
    }
    var best = [Double](repeating: .infinity, count: blockings.count)
    for _ in 0..<rounds {
      for (i, bl) in blockings.enumerated() {
        let blocking = GEMMBlocking(mr: base.mr, nr: base.nr, kc: bl.0, mc: bl.1, nc: bl.2)
        var times: [Double] = []
        a.withUnsafeBufferPointer { pa in
          b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
              for r in 0...runs {
                let t0 = DispatchTime.now().uptimeNanoseconds
                gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: pa.baseAddress!, lda: k,
                     b: pb.baseAddress!, ldb: n, beta: 0, c: pc.baseAddress!, ldc: n, threads: threads, blocking: blocking)
                if r > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
              }
            }
          }
        }
        times.sort()
        best[i] = min(best[i], times[times.count / 2])
      }
    }
    for (i, bl) in blockings.enumerated() {
      let gf = 2 * Double(m) * Double(n) * Double(k) / best[i] / 1e9
      print("{\"kernel\":\"\(double ? "dgemm" : "sgemm")\",\"m\":\(m),\"n\":\(n),\"k\":\(k),\"threads\":\(threads),\"kc\":\(bl.0),\"mc\":\(bl.1),\"nc\":\(bl.2),\"gflops\":\(String(format: "%.2f", gf))}")
    }
  }
  double ? run(Double.self) : run(Float.self)
}
