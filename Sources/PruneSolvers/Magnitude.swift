/// Minimises nothing: prunes the weights of smallest magnitude |Wᵢⱼ| to the pattern, keeping the
/// others unchanged.
///
/// The baseline of every pruning paper: no calibration data, no weight update.
///   1. score Sᵢⱼ = |Wᵢⱼ|
///   2. mask = the lowest scores of each comparison group pruned (exact counts, ties by index)
///   3. Ŵ = W ⊙ mask
///
/// Corresponds to `prune_magnitude` in locuslab/wanda `lib/prune.py` and `--gmp` in
/// IST-DASLab/sparsegpt, except that those prune ⌊s·numel⌋ + 1 entries (plus ties) through a
/// `≤ threshold` test; PruneKit prunes exactly ⌊s·numel⌋
/// (Docs/methods/magnitude.md#the-authors-code-and-where-prunekit-differs).
public struct Magnitude: Sendable {
  public init() {}

  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func prune<T: KernelScalar>(_ problem: LayerProblem<T>, pattern: SparsityPattern)
    throws(PruningError) -> PruningResult<T>
  {
    let start = ContinuousClock.now
    try pattern.check(columns: problem.inputs)
    let scores = problem.weight.map { $0.magnitude }
    let mask = Mask.pruningLowest(scores, pattern: pattern)
    return finishResult(
      method: .magnitude, problem: problem, pattern: pattern, weight: problem.weight, mask: mask, start: start)
  }

  /// The same Ŵ from W alone, for a model run that reads no calibration data
  /// (`ModelPruningPlan.readsCalibration`): without a Gram there is no error to measure, so the
  /// report says so (`PruningReport.errorMeasured` false).
  @_specialize(where T == Float)
  public func prune<T: KernelScalar>(weight: Matrix<T>, pattern: SparsityPattern) throws(PruningError)
    -> PruningResult<T>
  {
    let start = ContinuousClock.now
    try pattern.check(columns: weight.columns)
    let mask = Mask.pruningLowest(weight.map { $0.magnitude }, pattern: pattern)
    var w = weight
    mask.apply(to: &w)
    var report = PruningReport(
      method: PruningMethod.magnitude.rawValue, pattern: pattern.description, realisedSparsity: mask.sparsity)
    report.errorMeasured = false
    report.seconds = secondsSince(start)
    return PruningResult(weight: w, mask: mask, report: report)
  }
}
