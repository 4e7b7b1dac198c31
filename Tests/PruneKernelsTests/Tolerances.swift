import PruneKernels

/// γₙ = n·u/(1 − n·u): the classical bound on the relative error of an n-term floating-point sum
/// or dot product with unit roundoff u (Higham, "Accuracy and Stability of Numerical Algorithms",
/// §3.1). Every tolerance of the kernel tests is built from it.
func gamma<T: KernelScalar>(_ n: Int, _: T.Type) -> Double {
  let nu = Double(n) * T.unitRoundoff
  return nu / (1 - nu)
}

/// The precisions a test runs in, as a test argument.
enum Precision: String, Sendable, CaseIterable, CustomStringConvertible {
  case float, double
  var description: String { rawValue }
}
