// prune-bench factor: time of the dense factorisations the solvers call once per layer
// (Cholesky, triangular inverse, SPD inverse, solves, eigenvalue bound) at the SmolLM2 sizes.
//
//   prune-bench factor [--sizes 576,1536] [--threads 1,2]

import Dispatch
import Foundation
import PruneKit

func runFactorBenchmarks(sizes: [Int], threads: [Int]) {
  for n in sizes {
    var rng = SystemRandomNumberGenerator()
    let x = Matrix<Double>(rows: 2 * n, columns: n) { _, _ in Double.random(in: -1...1, using: &rng) }
    let a = gram(x)
    let rhs = Matrix<Double>(rows: n, columns: 576) { _, _ in Double.random(in: -1...1, using: &rng) }
    for t in threads {
      func time(_ name: String, flops: Double, _ body: () -> Void) {
        body()
        var best = Double.infinity
        for _ in 0..<3 {
          let t0 = DispatchTime.now().uptimeNanoseconds
          body()
          best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        print(
          "{\"kernel\":\"\(name)\",\"n\":\(n),\"threads\":\(t),"
            + "\"ms\":\(String(format: "%.2f", best * 1e3)),"
            + "\"gflops\":\(String(format: "%.2f", flops / best / 1e9))}"
        )
      }
      let nn = Double(n)
      time("dcholesky", flops: nn * nn * nn / 3) { _ = try! cholesky(a, threads: t) }
      let f = try! cholesky(a, threads: t)
      time("dinvertLower", flops: nn * nn * nn / 3) { _ = invertLower(f.lower) }
      time("dspdInverse", flops: nn * nn * nn) { _ = spdInverse(f, threads: t) }
      time("dcholeskySolve576", flops: 2 * nn * nn * 576) { _ = choleskySolve(f, rhs) }
      time("dlambdaMaxBound", flops: nn * nn * nn / 3) { _ = largestEigenvalueUpperBound(a, threads: t) }
    }
  }
}
