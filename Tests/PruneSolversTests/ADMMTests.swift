import PruneSolvers
import PruneTestSupport
import Testing

@Suite("ADMM weight update (Boža)")
struct ADMMTests {
  // With a fixed mask ADMM is a convex method and converges to the masked minimiser of the damped
  // objective; in the scaled space (V = ŴD) that is [(Z − V₀)(Ĝ + ρ₀I)]_S = 0 on the kept entries.
  // Scaled ADMM on this unit-diagonal problem contracts by ~0.98 per step: 2000 iterations reach
  // ~1e-12 of the right-hand side; 1e-7 leaves room.
  @Test(
    "on a fixed mask ADMM converges to the damped refit",
    arguments: [SparsityPattern.unstructured(0.5), .nOfM(n: 2, m: 4)])
  func fixedMaskConverges(_ pattern: SparsityPattern) throws {
    let (problem, _) = randomProblem(Double.self, rows: 6, columns: 16, seed: 20)
    let mask = try Wanda().prune(problem, pattern: pattern).mask
    let r = try ADMM(options: .init(iterations: 2000)).prune(problem, pattern: pattern, fixedMask: mask)
    #expect(r.mask == mask)
    let n = 16
    let d = (0..<n).map { problem.gram[$0, $0].squareRoot() + 1e-8 }
    let rho0 = try #require(r.report.damping)
    let z = Matrix<Double>(rows: 6, columns: n) { i, j in r.weight[i, j] * d[j] }
    let v0 = Matrix<Double>(rows: 6, columns: n) { i, j in problem.weight[i, j] * d[j] }
    var gHat = Matrix<Double>(rows: n, columns: n) { i, j in problem.gram[i, j] / (d[i] * d[j]) }
    for j in 0..<n { gHat[j, j] += rho0 }
    var delta = z
    for i in 0..<6 { for j in 0..<n { delta[i, j] -= v0[i, j] } }
    let residual = matmul(delta, gHat)
    let scale = matmul(v0, gHat).maxMagnitude
    for i in 0..<6 {
      for j in 0..<n where mask[i, j] {
        #expect(abs(residual[i, j]) <= 1e-7 * scale, "(\(i), \(j)): \(residual[i, j])")
      }
    }
  }

  // Scaling input feature j by cⱼ and W's column j by 1/cⱼ leaves the layer unchanged; D absorbs
  // the scaling, so the pruned layer is the same: Ŵ'ⱼ = Ŵⱼ/cⱼ, same mask. Exact but for the 1e-8
  // guard in dⱼ and rounding: 1e-9 relative.
  @Test(
    "diagonal re-parametrisation leaves the pruned layer unchanged",
    arguments: [SparsityPattern.unstructured(0.5), .unstructured(ratio: 0.5, group: .row), .nOfM(n: 2, m: 4)])
  func reparametrisation(_ pattern: SparsityPattern) throws {
    let (problem, x) = randomProblem(Double.self, rows: 6, columns: 16, seed: 21)
    var rng = SplitMix64(seed: 22)
    let scales = (0..<16).map { _ in Double.random(in: 0.5...2, using: &rng) }
    let xs = Matrix<Double>(rows: x.rows, columns: 16) { t, j in x[t, j] * scales[j] }
    let ws = Matrix<Double>(rows: 6, columns: 16) { i, j in problem.weight[i, j] / scales[j] }
    let scaled = try LayerProblem(weight: ws, inputs: xs)
    let a = try ADMM().prune(problem, pattern: pattern)
    let b = try ADMM().prune(scaled, pattern: pattern)
    #expect(a.mask == b.mask)
    let back = Matrix<Double>(rows: 6, columns: 16) { i, j in b.weight[i, j] * scales[j] }
    #expect(maxAbsDifference(back, a.weight).value <= 1e-9 * a.weight.maxMagnitude)
  }

  // Zero iterations is magnitude pruning in the scaled space: Wanda's scores |Wᵢⱼ|·√Gⱼⱼ (up to the
  // 1e-8 guard) with no update, so the weights are W on Wanda's mask of the same group.
  @Test("zero iterations is Wanda's mask with no update")
  func zeroIterationsIsWanda() throws {
    let (problem, _) = randomProblem(Double.self, rows: 6, columns: 16, seed: 23)
    for pattern in [SparsityPattern.unstructured(ratio: 0.5, group: .row), .nOfM(n: 2, m: 4)] {
      let a = try ADMM(options: .init(iterations: 0)).prune(problem, pattern: pattern)
      let w = try Wanda().prune(problem, pattern: pattern)
      #expect(a.mask == w.mask)
      #expect(maxAbsDifference(a.weight, w.weight).value <= 1e-12)
    }
  }

  // Any N:M, not only 2:4 (the released code silently turns 4:8 into 2:4), for both schedules.
  @Test(
    "every N:M pattern and both schedules give valid exact masks",
    arguments: [SparsityPattern.nOfM(n: 4, m: 8), .nOfM(n: 1, m: 4), .nOfM(n: 3, m: 4), .unstructured(0.6)])
  func patterns(_ pattern: SparsityPattern) throws {
    let (problem, _) = randomProblem(Double.self, rows: 5, columns: 24, seed: 24)
    for schedule in [ADMM.Schedule.cubic, .final] {
      let r = try ADMM(options: .init(maskSchedule: schedule)).prune(problem, pattern: pattern)
      #expect(r.mask.satisfies(pattern))
      #expect(r.mask.prunedCount == pattern.prunedCount(rows: 5, columns: 24))
      // The weight update helps: better than Wanda's mask with no update.
      let wanda = try Wanda().prune(problem, pattern: pattern)
      #expect(r.report.error < wanda.report.error, "\(schedule): admm \(r.report.error) wanda \(wanda.report.error)")
    }
  }

  // s = 0: the mask keeps everything and V₀ is a fixed point of the iteration (B = V₀(Ĝ + ρ₀I)),
  // so Ŵ = W up to the rounding of 20 GEMM round trips.
  @Test("sparsity 0 returns W up to rounding")
  func sparsityZero() throws {
    let (problem, _) = randomProblem(Double.self, rows: 5, columns: 16, seed: 25)
    let r = try ADMM().prune(problem, pattern: .unstructured(0))
    #expect(maxAbsDifference(r.weight, problem.weight).value <= 1e-10)
  }
}
