/// Measures how far a candidate Ŵ is from satisfying the optimality (KKT) conditions of the lasso
/// min_Ŵ ½‖X*Ŵᵀ − XWᵀ‖²_F + λ‖Ŵ‖₁, in the Gram form of Docs/methods/fista.md#derivation (the
/// residuals: Docs/oracle.md#the-certificate-figure-by-figure).
///
/// With G* = X*ᵀX*, K = XᵀX* and C = W·K the gradient of the smooth part is
///
///     ∇ = Ŵ G* − C                                  ([out × in])
///
/// and Ŵ minimises the (convex) objective if and only if, entry by entry,
///
///     Ŵᵢⱼ ≠ 0 (the support):   ∇ᵢⱼ + λ·sign(Ŵᵢⱼ) = 0
///     Ŵᵢⱼ = 0 (off it):        |∇ᵢⱼ| ≤ λ
///
/// Steps:
///   1. C = W·K and ∇ = Ŵ·G* − C in Double (two GEMMs)
///   2. on the support rᵢⱼ = |∇ᵢⱼ + λ·sign(Ŵᵢⱼ)|; off it rᵢⱼ = max(0, |∇ᵢⱼ| − λ)
///   3. the residuals are the maxima of r over each set, divided by the scale λ_max = max|Cᵢⱼ|
///
/// Normalisation. λ_max = ‖W K‖_max is the gradient's size at Ŵ = 0 and the smallest λ for which
/// Ŵ = 0 is the lasso solution, so every meaningful λ lies in (0, λ_max) and a residual r/λ_max
/// is dimensionless: it does not change when X or W is scaled (∇ and any λ chosen for the scaled
/// problem scale together), and it reads as "the violation is this fraction of the largest
/// gradient the problem has". Dividing by λ instead would blow up as λ → 0, where the conditions
/// become the normal equations and rounding in ∇ (about n·u·|Ŵ||G*| per entry) dominates.
/// Cost: O(m·n²) for the two products.
public struct LassoKKT: Sendable, Equatable, Codable {
  /// λ of the claimed solution.
  public var lambda: Double
  /// The normalisation scale λ_max = max|(W K)ᵢⱼ| (1 when C is all zero).
  public var scale: Double
  /// max over the support of |∇ᵢⱼ + λ·sign(Ŵᵢⱼ)| / scale (0 on an empty support).
  public var supportResidual: Double
  /// max over the zeros of max(0, |∇ᵢⱼ| − λ) / scale (0 when there are no zeros).
  public var offSupportResidual: Double
  /// The entry (row, column) of the largest violation on the support (nil on an empty support).
  public var worstSupportEntry: [Int]?
  /// The entry of the largest violation off the support (nil when there is none).
  public var worstOffSupportEntry: [Int]?
  /// Entries in the support and off it.
  public var supportSize: Int
  public var offSupportSize: Int
  /// The lasso objective ½‖X*Ŵᵀ − XWᵀ‖²_F + λ‖Ŵ‖₁ at Ŵ.
  public var objective: Double

  /// The larger of the two residuals.
  public var residual: Double { max(supportResidual, offSupportResidual) }

  /// The KKT residuals of `candidate` for `problem` at `lambda` (≥ 0), computed in Double.
  public init<T: KernelScalar>(problem: LayerProblem<T>, candidate: Matrix<T>, lambda: Double) {
    precondition(
      candidate.rows == problem.outputs && candidate.columns == problem.inputs,
      "LassoKKT: candidate \(candidate.shapeDescription) vs weight \(problem.weight.shapeDescription)")
    precondition(lambda >= 0 && lambda.isFinite, "LassoKKT: λ = \(lambda) must be finite and ≥ 0")
    let w = problem.weight.converted(to: Double.self)
    let z = candidate.converted(to: Double.self)
    let c = matmul(w, (problem.crossGram ?? problem.gram).converted(to: Double.self))  // C = W K
    let grad = matmul(z, problem.gram.converted(to: Double.self))  // Ŵ G*, then − C below
    let n = problem.inputs
    var scale = 0.0
    for v in c.elements { scale = max(scale, abs(v)) }
    if !(scale > 0) { scale = 1 }
    var on = 0.0
    var off = 0.0
    var onAt: [Int]? = nil
    var offAt: [Int]? = nil
    var onCount = 0
    var l1 = 0.0
    for idx in 0..<z.elements.count {
      let g = grad.elements[idx] - c.elements[idx]
      let v = z.elements[idx]
      if v != 0 {
        onCount += 1
        l1 += abs(v)
        let r = abs(g + lambda * (v > 0 ? 1 : -1))
        if !(r <= on) {
          on = r
          onAt = [idx / n, idx % n]
        }
      } else {
        let r = max(0, abs(g) - lambda)
        if r > off || (r.isNaN && offAt == nil) {
          off = r
          offAt = [idx / n, idx % n]
        }
      }
    }
    self.lambda = lambda
    self.scale = scale
    self.supportResidual = on / scale
    self.offSupportResidual = off / scale
    self.worstSupportEntry = onAt
    self.worstOffSupportEntry = off > 0 ? offAt : nil
    self.supportSize = onCount
    self.offSupportSize = z.elements.count - onCount
    self.objective = 0.5 * problem.error(of: candidate) + lambda * l1
  }
}
