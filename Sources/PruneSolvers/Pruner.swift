// Runs any pruning method by name with its options (`MethodOptions`, MethodOptions.swift): the one
// entry point the CLI, the benchmarks and the model pipeline share, so that a method is configured
// the same way everywhere.

/// Prunes `problem` to `pattern` with `method`. With `mask`, the methods that can work on a given
/// mask (refit, ADMM, APT) use it instead of choosing their own; the others reject it. With
/// `options.refine` = `.swaps` the method's result is then refined by SparseSwaps (`refined`).
///
/// Numerical safeguards (NumericalChecks.swift; Docs/reliability.md#numerical-trouble), around
/// every method alike:
///   1. the Gram G* must be positive semidefinite up to 10⁻⁴ of its trace
///      (`LayerProblem.checkSemidefinite`), else `PruningError.invalidProblem(.notSemidefinite)`;
///      NaN, Inf and negative diagonals were already rejected when the `LayerProblem` was built.
///      `gramsAccumulated: true` skips this check for Grams the caller summed itself as Σ x xᵀ
///      (the model pipeline): they are semidefinite by construction, their rounding is far below
///      the tolerance, and the check's n³/3 factorisation needs an n × n Double copy (1 GB for a
///      LLaMA-7B down projection, n = 11008);
///   2. a badly scaled problem (weights or Grams far from 1, where Float products overflow or
///      underflow) is solved in exact power-of-two units and scaled back (`ProblemScaling`,
///      reported in the notes and metrics);
///   3. a result holding NaN or Inf is `PruningError.nonFiniteResult`, never returned.
/// Calling a method's own `prune` directly skips these safeguards.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func prune<T: KernelScalar>(
  _ problem: LayerProblem<T>, method: PruningMethod, pattern: SparsityPattern,
  options: MethodOptions = MethodOptions(), mask: Mask? = nil, gramsAccumulated: Bool = false
) throws(PruningError) -> PruningResult<T> {
  if !gramsAccumulated {
    do { try problem.checkSemidefinite() } catch { throw .invalidProblem(error) }
  }
  let result: PruningResult<T>
  if let scaling = ProblemScaling(for: problem) {
    let scaled = scaling.apply(to: problem)
    let inner = try dispatch(scaled, method: method, pattern: pattern, options: options, mask: mask)
    result = scaling.restore(try refined(inner, scaled, pattern: pattern, options: options), original: problem)
  } else {
    let inner = try dispatch(problem, method: method, pattern: pattern, options: options, mask: mask)
    result = try refined(inner, problem, pattern: pattern, options: options)
  }
  try checkFinite(result, method: method)
  return result
}

/// The method's result after `options.refine` (`--refine`): unchanged for `.none`; SparseSwaps'
/// 1-swaps and refit for `.swaps` (SparseSwaps.swift), which never raise the error.
func refined<T: KernelScalar>(
  _ result: PruningResult<T>, _ problem: LayerProblem<T>, pattern: SparsityPattern, options: MethodOptions
) throws(PruningError) -> PruningResult<T> {
  switch options.refine {
  case .none: return result
  case .swaps: return try SparseSwaps(options: options.swaps).refine(problem, result: result, pattern: pattern)
  }
}

/// `prune` without the safeguards: the method by name.
@_specialize(where T == Float)
@_specialize(where T == Double)
func dispatch<T: KernelScalar>(
  _ problem: LayerProblem<T>, method: PruningMethod, pattern: SparsityPattern, options: MethodOptions, mask: Mask?
) throws(PruningError) -> PruningResult<T> {
  if let mask {
    guard mask.rows == problem.outputs && mask.columns == problem.inputs else {
      throw .maskMismatch(
        detail: "mask [\(mask.rows) × \(mask.columns)] for a weight \(problem.weight.shapeDescription)")
    }
    // The result is labelled with `pattern`: the mask must satisfy it, counted as `prune verify`
    // counts (at least the required pruned entries in every group).
    try pattern.check(columns: problem.inputs)
    let failing = mask.violations(of: pattern, rule: .atLeast)
    if let first = failing.first {
      throw .maskBreaksPattern(
        pattern: pattern.label, failing: failing.count,
        groups: pattern.groups(rows: mask.rows, columns: mask.columns).count, first: first,
        requirement: pattern.requirement(rows: mask.rows, columns: mask.columns))
    }
    switch method {
    case .refit: return try Refit(options: options.refit).refit(problem, mask: mask, pattern: pattern)
    case .admm: return try ADMM(options: options.admm).prune(problem, pattern: pattern, fixedMask: mask)
    case .apt: return try APT(options: options.apt).prune(problem, pattern: pattern, fixedMask: mask)
    default:
      throw .maskMismatch(detail: "\(method) chooses its own mask; a given mask works with refit, admm and apt")
    }
  }
  switch method {
  case .magnitude: return try Magnitude().prune(problem, pattern: pattern)
  case .wanda: return try Wanda().prune(problem, pattern: pattern)
  case .sparsegpt: return try SparseGPT(options: options.sparseGPT).prune(problem, pattern: pattern)
  case .refit: return try Refit(options: options.refit).prune(problem, pattern: pattern)
  case .admm: return try ADMM(options: options.admm).prune(problem, pattern: pattern)
  case .alps: return try ALPS(options: options.alps).prune(problem, pattern: pattern)
  case .fista: return try FISTA(options: options.fista).prune(problem, pattern: pattern)
  case .apt: return try APT(options: options.apt).prune(problem, pattern: pattern)
  case .exact: return try BruteForce(options: options.exact).prune(problem, pattern: pattern)
  case .sparsellm:
    // One layer on its own has no FFN partner to coordinate with: SparseLLM prunes it with its
    // inner method, as it prunes attention layers (the FFN path is `SparseLLM.prune`).
    var result = try dispatch(
      problem, method: options.sparseLLM.inner.method, pattern: pattern, options: options, mask: nil)
    result.report.method = PruningMethod.sparsellm.rawValue
    result.report.notes.append(
      "sparsellm on a single layer: pruned by its inner method \(options.sparseLLM.inner.rawValue)")
    return result
  }
}
