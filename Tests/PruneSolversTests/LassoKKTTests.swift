import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@Suite struct LassoKKTTests {
  /// A closed-form lasso solution on G = diag(d) stored in Double: its residuals are rounding,
  /// dⱼ·u·|Wᵢⱼ| / max|W K| ≤ u·(max d/min d)… far below 1e-12.
  static let closedFormResidual = 1e-12
  /// Residuals of the same candidate for the problem scaled by (a, b) agree to rounding.
  static let scaleInvariance = 1e-12

  /// W 3 × 10 and G = diag(d) from `seed`, and the lasso solution soft_{λ/dⱼ}(Wᵢⱼ).
  private func diagonalLasso(seed: UInt64, lambda: Double) -> (LayerProblem<Double>, Matrix<Double>) {
    var rng = SplitMix64(seed: seed)
    let w = Matrix<Double>.random(rows: 3, columns: 10, using: &rng)
    let d = (0..<10).map { _ in Double.random(in: 0.2...5, using: &rng) }
    let g = Matrix<Double>(rows: 10, columns: 10) { $0 == $1 ? d[$0] : 0 }
    let z = Matrix<Double>(rows: 3, columns: 10) { i, j in FISTA.softThreshold(w[i, j], lambda / d[j]) }
    return (try! LayerProblem(weight: w, gram: g), z)
  }

  @Test("closed-form lasso solutions satisfy KKT", arguments: [UInt64(1), 2, 3])
  func closedForm(seed: UInt64) {
    let (p, z) = diagonalLasso(seed: seed, lambda: 0.4)
    let kkt = LassoKKT(problem: p, candidate: z, lambda: 0.4)
    #expect(kkt.residual <= Self.closedFormResidual, "seed \(seed): \(String(describing: kkt))")
    #expect(kkt.supportSize > 0 && kkt.offSupportSize > 0, "seed \(seed): the case must exercise both sets")
  }

  @Test("a wrong λ, a shrunk or an unshrunk candidate violate KKT", arguments: [UInt64(4), 5])
  func violations(seed: UInt64) {
    let (p, z) = diagonalLasso(seed: seed, lambda: 0.4)
    // Claimed at twice the λ it solves: the support condition breaks by λ·|Δ| / scale.
    let wrongLambda = LassoKKT(problem: p, candidate: z, lambda: 0.8)
    #expect(wrongLambda.supportResidual > 0.01, "seed \(seed): \(String(describing: wrongLambda))")
    // The dense W claimed as the lasso solution at λ > 0: every entry is on the support and the
    // gradient is zero, so the residual is λ / scale exactly.
    let dense = LassoKKT(problem: p, candidate: p.weight, lambda: 0.4)
    #expect(abs(dense.supportResidual - 0.4 / dense.scale) <= 1e-15 * 0.4 / dense.scale + 1e-16, "seed \(seed)")
    // The zero matrix at a λ below max|WK|: off-support violation (max|WK| − λ)/max|WK|.
    let zero = LassoKKT(problem: p, candidate: Matrix(rows: 3, columns: 10), lambda: 0.4)
    #expect(abs(zero.offSupportResidual - (1 - 0.4 / zero.scale)) <= 1e-15, "seed \(seed)")
    #expect(zero.supportSize == 0 && zero.supportResidual == 0, "seed \(seed)")
  }

  @Test("the normalised residual does not change when X and W are scaled", arguments: [UInt64(6)])
  func scaleInvariant(seed: UInt64) {
    let (p, z) = diagonalLasso(seed: seed, lambda: 0.4)
    var perturbed = z
    perturbed[0, 0] += 0.05
    perturbed[1, 3] = 0.02
    let base = LassoKKT(problem: p, candidate: perturbed, lambda: 0.4)
    // X → aX, W → bW (and Ŵ → bŴ): ∇ scales by a²b, so λ must too.
    let (a, b) = (3.0, 0.25)
    let scaled = try! LayerProblem(weight: p.weight.map { $0 * b }, gram: p.gram.map { $0 * a * a })
    let other = LassoKKT(problem: scaled, candidate: perturbed.map { $0 * b }, lambda: 0.4 * a * a * b)
    #expect(abs(base.supportResidual - other.supportResidual) <= Self.scaleInvariance, "seed \(seed)")
    #expect(abs(base.offSupportResidual - other.offSupportResidual) <= Self.scaleInvariance, "seed \(seed)")
    #expect(base.residual > 1e-3, "seed \(seed): the perturbation must show")
  }
}
