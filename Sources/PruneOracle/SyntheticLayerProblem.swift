// Small seeded layer problems for `prune make-problem` (a test helper of the CLI smoke test) and
// for examples: no model or data needed.

import Foundation
import PruneKernels

/// A seeded random layer problem that looks like a real one: W uniform in [−1, 1], inputs whose
/// features have scales spread over two orders of magnitude (real activations have outlier
/// features, which is what separates Wanda from magnitude) and are correlated with their
/// neighbour (so the Gram is not diagonal and OBS-style updates matter).
public enum SyntheticLayerProblem {
  /// W: `[rows × columns]` and X: `[tokens × columns]`, both Float, from `seed` alone.
  public static func make(rows: Int, columns: Int, tokens: Int, seed: UInt64) -> (
    weight: Matrix<Float>, inputs: Matrix<Float>
  ) {
    precondition(rows > 0 && columns > 0 && tokens > 0, "SyntheticLayerProblem: empty shape")
    var rng = SplitMix64(seed: seed)
    let w = Matrix<Float>(rows: rows, columns: columns) { _, _ in Float(rng.uniform(in: -1...1)) }
    let scales = (0..<columns).map { _ in 0.1 * pow(10, rng.uniform(in: 0...2)) }
    var x = Matrix<Double>(rows: tokens, columns: columns) { _, j in rng.uniform(in: -1...1) * scales[j] }
    for t in 0..<tokens {
      for j in stride(from: columns - 1, to: 0, by: -1) { x[t, j] += 0.5 * x[t, j - 1] }
    }
    return (w, x.converted(to: Float.self))
  }
}
