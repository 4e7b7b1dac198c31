// The numerical safeguards of `prune` (Pruner.swift), in one place:
//
//   1. non-finite values: `NonFiniteSummary` counts them and names the first (LayerProblem rejects
//      them; the model pipeline reports the count per layer);
//   2. bad scales: `ProblemScaling` brings a problem whose weights or Grams are far from 1 (where
//      Float products overflow, or values are denormal) back near 1 by exact powers of two;
//   3. the result: `checkFinite` stops a method that produced NaN or Inf anyway.
//
// Docs/reliability.md ("Numerical trouble") lists every case and what each method does with it.

/// How many entries of a matrix are NaN or ±Inf, and the first one (row-major).
public struct NonFiniteSummary: Sendable, Equatable {
  /// Entries that are NaN or ±Inf.
  public let count: Int
  /// The first of them, row-major.
  public let row: Int
  public let column: Int
  public let value: Double

  /// nil when every entry of `m` is finite.
  public init?<T: KernelScalar>(of m: Matrix<T>) {
    var count = 0
    var first = -1
    m.withUnsafeBufferPointer { p in
      for idx in 0..<p.count where !p[idx].isFinite {
        if first < 0 { first = idx }
        count += 1
      }
    }
    guard count > 0 else { return nil }
    self.count = count
    row = first / max(1, m.columns)
    column = first % max(1, m.columns)
    value = Double(m.elements[first])
  }
}

/// The power-of-two rescaling `prune` applies to a badly scaled problem:
///
///     W' = W·2^−a,   G*' = G*·2^−b,  K' = K·2^−b,  G' = G·2^−b   (b even),
///
/// chosen so that max|W'| lies in [1, 2) and max|G'| in [1, 4) (both are normalised when either is
/// out of range). Every method is invariant to this change of
/// units: its mask is the same, and its weights scale back as Ŵ = Ŵ'·2^a (SparseGPT, APT, refit,
/// the oracle and FISTA are homogeneous in W and G, their dampings relative to mean(diag G*);
/// ADMM's Jacobi scaling adds an absolute 10⁻⁸ to √Gⱼⱼ, negligible once G* is near 1). Powers of
/// two make the scaling exact, denormals included (b even keeps √G exact too).
///
/// Applied only outside the range real layers live in: max|W| ∉ [2⁻²⁴, 2²⁴] or max|G*| ∉ [2⁻⁴⁸,
/// 2⁴⁸] (SmolLM2's weights stay below 2⁶ and its Grams over 16k tokens below 2³⁴). There, a Float
/// product such as W·G* or ŴG*Ŵᵀ can overflow (1e30 weights) or lose its digits to underflow
/// (1e-30 weights, denormals), so problems that would return garbage are solved in good units.
/// Inside the range nothing changes: results stay bit-identical.
struct ProblemScaling: Equatable {
  /// a: W' = W·2^−a.
  let weightExponent: Int
  /// b (even): G' = G·2^−b for every Gram.
  let gramExponent: Int

  /// max|W| and max|G*| outside these binary exponent ranges trigger a rescaling.
  static let weightRange = -24...24
  static let gramRange = -48...48

  /// The rescaling `problem` needs, or nil when it is well scaled (or all zero).
  init?<T: KernelScalar>(for problem: LayerProblem<T>) {
    // Binary exponents of max|W| and max|G| (nil for an all-zero matrix: nothing to scale).
    func exponent(_ v: Double) -> Int? { v > 0 && v.isFinite ? Int(v.exponent) : nil }
    var gramMax = Double(problem.gram.maxMagnitude)
    if let k = problem.crossGram { gramMax = max(gramMax, Double(k.maxMagnitude)) }
    if let g = problem.denseGram { gramMax = max(gramMax, Double(g.maxMagnitude)) }
    let a = exponent(Double(problem.weight.maxMagnitude))
    let b = exponent(gramMax).map { $0 - (($0 % 2) + 2) % 2 }  // rounded down to even
    let weightOff = a.map { !Self.weightRange.contains($0) } ?? false
    let gramOff = b.map { !Self.gramRange.contains($0) } ?? false
    guard weightOff || gramOff else { return nil }
    // Either one out of range: normalise both, so that the solved problem is the same whatever the
    // units (ADMM's absolute 10⁻⁸ would otherwise see a Gram left at, say, 2⁻⁴⁰).
    weightExponent = a ?? 0
    gramExponent = b ?? 0
  }

  /// The problem in the new units (tokens unchanged).
  func apply<T: KernelScalar>(to problem: LayerProblem<T>) -> LayerProblem<T> {
    // Exact power-of-two scalings of a valid problem stay valid (finite, symmetric, same signs).
    try! LayerProblem(
      weight: scaled(problem.weight, by: -weightExponent), gram: scaled(problem.gram, by: -gramExponent),
      crossGram: problem.crossGram.map { scaled($0, by: -gramExponent) },
      denseGram: problem.denseGram.map { scaled($0, by: -gramExponent) }, tokens: problem.tokens)
  }

  /// The result of the rescaled problem in the original units: Ŵ = Ŵ'·2^a, the error measured again
  /// on `original`, and the report's quantities with units converted (δ in G's units, λ in W·G's,
  /// the objective trace in W·G·W's); other metrics stay in the rescaled units, as the note says.
  func restore<T: KernelScalar>(_ result: PruningResult<T>, original: LayerProblem<T>) -> PruningResult<T> {
    var out = result
    out.weight = scaled(result.weight, by: weightExponent)
    var r = out.report
    r.error = original.error(of: out.weight)
    let energy = original.denseEnergy
    r.relativeError = energy > 0 ? r.error / energy : (r.error == 0 ? 0 : .infinity)
    func convert(_ v: Double, _ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: v) }
    r.damping = r.damping.map { convert($0, gramExponent) }
    r.dampingRetry = r.dampingRetry.map { convert($0, gramExponent) }
    r.lambda = r.lambda.map { convert($0, weightExponent + gramExponent) }
    r.lambdaPath = r.lambdaPath.map { convert($0, weightExponent + gramExponent) }
    r.objectiveTrace = r.objectiveTrace.map { convert($0, 2 * weightExponent + gramExponent) }
    r.metrics["rescaled_weight_exponent"] = Double(weightExponent)
    r.metrics["rescaled_gram_exponent"] = Double(gramExponent)
    r.notes.append(
      "badly scaled problem: solved as W·2^\(-weightExponent), Grams·2^\(-gramExponent) (exact powers of two;"
        + " the mask is the same); weight, error, damping, λ and objective trace are in the original units,"
        + " other metrics in the rescaled ones")
    out.report = r
    return out
  }
}

/// m·2^e entry by entry, exactly (also for e beyond T's exponent range, and for denormals).
func scaled<T: KernelScalar>(_ m: Matrix<T>, by e: Int) -> Matrix<T> {
  if e == 0 { return m }
  return m.map { T(sign: .plus, exponent: T.Exponent(e), significand: $0) }
}

/// Stops a result that holds NaN or Inf: the last guard of `prune`, so that no method returns
/// garbage silently whatever its input.
func checkFinite<T: KernelScalar>(_ result: PruningResult<T>, method: PruningMethod) throws(PruningError) {
  if let bad = NonFiniteSummary(of: result.weight) {
    throw .nonFiniteResult(
      method: method.rawValue,
      detail: "\(bad.count) of the \(result.weight.rows * result.weight.columns) pruned weights are not finite"
        + " (first at [\(bad.row), \(bad.column)] = \(bad.value))")
  }
  if result.report.error.isNaN {
    throw .nonFiniteResult(method: method.rawValue, detail: "the reconstruction error is NaN")
  }
}
