/// Prunes the weights with the smallest |Wᵢⱼ|·‖xⱼ‖₂ in each output row, keeping the others
/// unchanged (Sun, Liu, Bair, Kolter, "A Simple and Effective Pruning Approach for Large Language
/// Models", ICLR 2024, arXiv 2306.11695).
///
///   1. ‖xⱼ‖₂ = √Gⱼⱼ, with G = Σₜ xₜxₜᵀ the Gram of the layer's inputs (G* under error correction:
///      the inputs the pruned layer sees)
///   2. score Sᵢⱼ = |Wᵢⱼ|·√Gⱼⱼ
///   3. mask = the lowest scores of each comparison group pruned: Wanda's group is the output row
///      (`SparsityPattern.Group.row`, the CLI's default for this method); N:M per row and group
///   4. Ŵ = W ⊙ mask — no weight update
///
/// The authors' running mean rⱼ = (1/nsamples)Σ xⱼ² differs from Gⱼⱼ by a positive constant
/// factor, which does not change any comparison. Corresponds to `prune_wanda` in locuslab/wanda
/// `lib/prune.py` (the `--use_variant` α-bisection is not implemented).
public struct Wanda: Sendable {
  public init() {}

  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func prune<T: KernelScalar>(_ problem: LayerProblem<T>, pattern: SparsityPattern)
    throws(PruningError) -> PruningResult<T>
  {
    let start = ContinuousClock.now
    try pattern.check(columns: problem.inputs)
    let mask = Self.mask(problem, pattern: pattern)
    return finishResult(
      method: .wanda, problem: problem, pattern: pattern, weight: problem.weight, mask: mask, start: start)
  }

  /// Steps 1–3: Wanda's mask alone (no error evaluation), for methods that start from it.
  static func mask<T: KernelScalar>(_ problem: LayerProblem<T>, pattern: SparsityPattern) -> Mask {
    let norms = (0..<problem.inputs).map { Double(problem.gram[$0, $0]).squareRoot() }
    let w = problem.weight
    let scores = Matrix<Double>(rows: w.rows, columns: w.columns) { i, j in
      Double(w[i, j].magnitude) * norms[j]
    }
    return Mask.pruningLowest(scores, pattern: pattern)
  }
}
