import PruneSolvers
import PruneTestSupport
import Testing

/// A random layer problem: W uniform in [−1, 1], X: [tokens × n] with column scales spread over
/// two orders of magnitude (real activations have outlier features), Gram accumulated in Double.
func randomProblem<T: KernelScalar>(
  _: T.Type, rows m: Int, columns n: Int, tokens: Int? = nil, seed: UInt64, correlated: Bool = true,
  scales scaleRange: ClosedRange<Double> = 0.1...10
) -> (problem: LayerProblem<T>, x: Matrix<Double>) {
  var rng = SplitMix64(seed: seed)
  let w = Matrix<T>.random(rows: m, columns: n, using: &rng)
  let t = tokens ?? 4 * n + 8
  let scales = (0..<n).map { _ in Double.random(in: scaleRange, using: &rng) }
  var x = Matrix<Double>(rows: t, columns: n) { _, j in Double.random(in: -1...1, using: &rng) * scales[j] }
  if correlated {
    // Mix neighbouring features so that G is not diagonal (OBS updates then matter).
    for r in 0..<t { for j in 1..<n { x[r, j] += 0.5 * x[r, j - 1] } }
  }
  let problem = try! LayerProblem(weight: w, inputs: x.converted(to: T.self))
  return (problem, x)
}

/// ‖X*Ŵᵀ − XWᵀ‖²_F computed directly from the inputs, in Double.
func directError<T: KernelScalar>(w: Matrix<T>, wHat: Matrix<T>, x: Matrix<Double>, xStar: Matrix<Double>? = nil)
  -> Double
{
  let y = matmul(x, w.converted(to: Double.self), transposeB: true)
  let yHat = matmul(xStar ?? x, wHat.converted(to: Double.self), transposeB: true)
  var s = 0.0
  for i in 0..<y.elements.count {
    let d = yHat.elements[i] - y.elements[i]
    s += d * d
  }
  return s
}

/// The patterns every method is checked on.
let testPatterns: [SparsityPattern] = [
  .unstructured(ratio: 0.5, group: .matrix), .unstructured(ratio: 0.3, group: .row),
  .unstructured(ratio: 0.77, group: .matrix), .nOfM(n: 2, m: 4), .nOfM(n: 1, m: 4), .nOfM(n: 4, m: 8),
]

extension SparsityPattern: CustomTestStringConvertible {
  public var testDescription: String { description }
}

/// Relative difference |a − b| / max(|a|, |b|, tiny).
func relativeDifference(_ a: Double, _ b: Double) -> Double {
  abs(a - b) / max(abs(a), abs(b), 1e-300)
}
