/// The pruning methods by the name the CLI and the reports use.
///
/// | name | file | what it does |
/// |---|---|---|
/// | `magnitude` | Magnitude.swift | prunes the smallest \|Wᵢⱼ\|; no data, no update |
/// | `wanda` | Wanda.swift | prunes the smallest \|Wᵢⱼ\|·‖xⱼ‖ per row; no update |
/// | `sparsegpt` | SparseGPT.swift | OBS column sweep with lazy batches (Frantar & Alistarh 2023) |
/// | `admm` | ADMM.swift | ADMM weight update with gradual mask selection (Boža 2024) |
/// | `alps` | ALPS.swift | ADMM with a support-driven ρ schedule, then a CG refit (ALPS, Meng et al. 2024) |
/// | `fista` | FISTA.swift | ℓ1-regularised reconstruction by FISTA, λ by bisection (FISTAPruner) |
/// | `refit` | Refit.swift | exact masked least squares on a given mask (the R1 oracle) |
/// | `apt` | APT.swift | optimal multi-weight removal, blockwise (APT) |
/// | `exact` | BruteForce.swift | every admissible mask, each refit exactly; tiny problems only |
/// | `sparsellm` | SparseLLM.swift | FFN layers pruned together through auxiliary activations (SparseLLM); one layer alone: its inner method |
public enum PruningMethod: String, Sendable, CaseIterable, CustomStringConvertible {
  case magnitude, wanda, sparsegpt, admm, fista, refit, apt, exact, sparsellm, alps

  public var description: String { rawValue }

  /// The comparison group an unstructured ratio uses when the user does not say: Wanda compares
  /// within each output row (as its authors do); every other method over the whole matrix.
  public var defaultGroup: SparsityPattern.Group { self == .wanda ? .row : .matrix }
}

/// Why a pruning method could not run.
public enum PruningError: PruneKitError, Equatable {
  case invalidPattern(SparsityPatternError)
  case factorisationFailed(method: String, CholeskyError)
  /// The problem is beyond what `method` can do (the exact oracle's mask count); `hint` says how
  /// to go on.
  case problemTooLarge(method: String, detail: String, hint: String)
  case maskMismatch(detail: String)
  /// A given mask breaks the pattern the result would be labelled with (counted as
  /// `Mask.violations(of:rule: .atLeast)`, the groups `prune verify` counts): `failing` of `groups`
  /// groups, the first one, and what the pattern requires.
  case maskBreaksPattern(pattern: String, failing: Int, groups: Int, first: MaskViolation, requirement: String)
  case invalidOption(name: String, detail: String)
  /// The problem handed to a method is invalid (`LayerProblem`'s checks, including the
  /// semidefiniteness `prune` checks, or SparseLLM's own inputs).
  case invalidProblem(LayerProblemError)
  /// A method produced NaN or Inf despite valid inputs (the last guard of `prune`).
  case nonFiniteResult(method: String, detail: String)

  public var message: String {
    switch self {
    case .invalidPattern(let e): return e.message
    case .factorisationFailed(let method, let e): return "\(method): \(e.message)"
    case .problemTooLarge(let method, let detail, _): return "\(method): \(detail)"
    case .maskMismatch(let detail): return "mask: \(detail)"
    case .maskBreaksPattern(let pattern, let failing, let groups, let first, _):
      return "the mask does not satisfy \(pattern): \(failing) of \(groups) group(s) fail, first \(first)"
    case .invalidOption(let name, let detail): return "option '\(name)': \(detail)"
    case .invalidProblem(let e): return e.message
    case .nonFiniteResult(let method, let detail): return "\(method): \(detail)"
    }
  }

  public var hint: String? {
    switch self {
    case .invalidPattern(let e): return e.hint
    case .factorisationFailed(_, let e): return e.hint
    case .problemTooLarge(_, _, let hint): return hint
    case .maskMismatch: return "the mask must have the weight's shape [out × in] and satisfy the pattern."
    case .maskBreaksPattern(_, _, _, _, let requirement):
      return "give the pattern the mask was made for, or a mask with \(requirement)."
    case .invalidOption: return "'prune help layer' lists every method option."
    case .invalidProblem(let e): return e.hint
    case .nonFiniteResult:
      return "the problem is too ill-conditioned for this method's damping;"
        + " raise --damping, add calibration data, or use --precision double."
    }
  }
}

// MARK: - Shared machinery of the methods

extension SparsityPattern {
  /// Validates against a weight with `columns` inputs, as a `PruningError`.
  func check(columns: Int) throws(PruningError) {
    do { try validate(columns: columns) } catch { throw .invalidPattern(error) }
  }
}

/// Builds the result of a method: zeroes the pruned entries of `weight` (they must already be
/// zero or near it; the mask is authoritative), measures the error and fills the common fields.
func finishResult<T: KernelScalar>(
  method: PruningMethod, problem: LayerProblem<T>, pattern: SparsityPattern, weight: Matrix<T>,
  mask: Mask, start: ContinuousClock.Instant, configure: (inout PruningReport) -> Void = { _ in }
) -> PruningResult<T> {
  var w = weight
  mask.apply(to: &w)
  let error = problem.error(of: w)
  let energy = problem.denseEnergy
  var report = PruningReport(
    method: method.rawValue, pattern: pattern.description, realisedSparsity: mask.sparsity,
    error: error, relativeError: energy > 0 ? error / energy : (error == 0 ? 0 : .infinity))
  configure(&report)
  report.seconds = secondsSince(start)
  return PruningResult(weight: w, mask: mask, report: report)
}

/// mean(diag G), the scale every relative damping refers to (1 when the diagonal is all zero).
func meanDiagonal<T: KernelScalar>(_ g: Matrix<T>) -> Double {
  guard g.rows > 0 else { return 1 }
  var s = 0.0
  for i in 0..<g.rows { s += Double(g[i, i]) }
  let mean = s / Double(g.rows)
  return mean > 0 ? mean : 1
}

/// The number of entries to prune in the columns [c0, c1) of a row or matrix when `total` must be
/// pruned over `columns` columns in all: cumulative rounding, so the per-block counts add up to
/// exactly `total` (⌊total·c1/n⌋ − ⌊total·c0/n⌋).
func cumulativeShare(total: Int, columns: Int, from c0: Int, to c1: Int) -> Int {
  guard columns > 0 else { return 0 }
  return total * c1 / columns - total * c0 / columns
}

/// The flat indices of the k lowest scores among `indices` (ties: lower index first), unordered.
func lowest(_ k: Int, of indices: [Int], scores: (Int) -> Double) -> [Int] {
  if k <= 0 { return [] }
  if k >= indices.count { return indices }
  let values = indices.map(scores)
  precondition(!values.contains { $0.isNaN }, "lowest: a score is NaN")
  // Positions in `indices` order the ties; `indices` is increasing at every call site, so this is
  // the lower-index-first rule.
  return values.withUnsafeBufferPointer { lowestIndices(k, scores: $0) }.map { indices[$0] }
}
