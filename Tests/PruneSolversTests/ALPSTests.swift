import PruneTestSupport
import Testing

@testable import PruneSolvers

@Suite("ALPS (ADMM with a ρ schedule, then a CG refit)")
struct ALPSTests {
  /// The damped objective ALPS minimises: E(Ŵ) + δ‖Ŵ − W‖²_F.
  static func dampedObjective(_ problem: LayerProblem<Double>, _ w: Matrix<Double>, delta: Double) -> Double {
    var s = 0.0
    for idx in 0..<w.elements.count {
      let d = w.elements[idx] - problem.weight.elements[idx]
      s += d * d
    }
    return problem.error(of: w) + delta * s
  }

  /// An error-corrected problem: the pruned path's inputs X* are X plus 10% noise.
  static func correctedProblem(rows: Int, columns: Int, seed: UInt64) throws -> LayerProblem<Double> {
    let (base, x) = randomProblem(Double.self, rows: rows, columns: columns, seed: seed)
    var rng = SplitMix64(seed: seed + 1000)
    let xStar = Matrix<Double>(rows: x.rows, columns: columns) { t, j in
      x[t, j] * (1 + 0.1 * Double.random(in: -1...1, using: &rng))
    }
    return try LayerProblem(weight: base.weight, inputs: x, prunedInputs: xStar)
  }

  @Test("exact counts, the pattern holds, pruned entries are zero", arguments: testPatterns)
  func patternCounts(_ pattern: SparsityPattern) throws {
    let (problem, _) = randomProblem(Double.self, rows: 10, columns: 32, seed: 70)
    let r = try ALPS().prune(problem, pattern: pattern)
    #expect(r.mask.satisfies(pattern), "\(r.mask.violations(of: pattern).prefix(3))")
    #expect(r.mask.prunedCount == pattern.prunedCount(rows: 10, columns: 32))
    for i in 0..<10 { for j in 0..<32 where !r.mask[i, j] { #expect(r.weight[i, j] == 0) } }
    #expect(r.report.iterations > 0 && r.report.iterations <= ALPS.Options().iterations)
  }

  // ALPS chooses its mask by minimising the reconstruction, so on correlated data it must beat
  // the classic magnitude-mask refit and even the Wanda-mask refit (both with the same damping);
  // measured margins are several percent, no tolerance is needed.
  @Test(
    "beats the magnitude-mask and Wanda-mask refits", arguments: testPatterns, [UInt64(71), 72])
  func beatsMaskRefits(_ pattern: SparsityPattern, seed: UInt64) throws {
    let (problem, _) = randomProblem(Double.self, rows: 12, columns: 32, seed: seed)
    let alps = try ALPS().prune(problem, pattern: pattern).report.error
    let magnitude = try Refit(options: .init(maskMethod: .magnitude)).prune(problem, pattern: pattern).report.error
    let wanda = try Refit(options: .init(maskMethod: .wanda)).prune(problem, pattern: pattern).report.error
    #expect(alps <= magnitude, "\(pattern): alps \(alps) magnitude refit \(magnitude)")
    #expect(alps <= wanda, "\(pattern): alps \(alps) wanda refit \(wanda)")
  }

  // CG decreases the quadratic it solves at every step, and that quadratic is the damped
  // objective (in B = ŴD, up to a constant and a factor ½), so the refit can only lower it.
  // Slack: 1e-12 relative, the rounding of two Double error evaluations.
  @Test("the refit never raises the damped objective", arguments: testPatterns)
  func refitNeverHurts(_ pattern: SparsityPattern) throws {
    for seed: UInt64 in [73, 74] {
      let (problem, _) = randomProblem(Double.self, rows: 12, columns: 32, seed: seed)
      let before = try ALPS(options: .init(refitIterations: 0)).prune(problem, pattern: pattern)
      let after = try ALPS().prune(problem, pattern: pattern)
      #expect(before.mask == after.mask)
      let delta = try #require(after.report.damping)
      let a = Self.dampedObjective(problem, after.weight, delta: delta)
      let b = Self.dampedObjective(problem, before.weight, delta: delta)
      #expect(a <= b * (1 + 1e-12), "\(pattern) seed \(seed): after \(a) before \(b)")
      #expect(relativeDifference(after.report.metrics["admm_error"] ?? .nan, before.report.error) <= 1e-12)
    }
  }

  // Run to convergence, the CG refit solves the same normal equations as Refit on the same mask
  // at the same δ (both 1% of mean diag G*), with and without error correction. CG on ≤ 32
  // unknowns per row with condition ≲ 1e4 reaches the tolerance 1e-13 well within 500 steps; the
  // two solutions then agree to ~cond·1e-13: 1e-8 of max|Ŵ| leaves room.
  @Test("the converged refit equals Refit's exact solution on the same mask", arguments: [false, true])
  func refitEqualsRefit(_ corrected: Bool) throws {
    let problem =
      corrected
      ? try Self.correctedProblem(rows: 8, columns: 32, seed: 75)
      : randomProblem(Double.self, rows: 8, columns: 32, seed: 75).problem
    for pattern in [SparsityPattern.unstructured(0.7), .nOfM(n: 2, m: 4)] {
      let r = try ALPS(options: .init(refitIterations: 500, refitTolerance: 1e-13)).prune(problem, pattern: pattern)
      let exact = try Refit().refit(problem, mask: r.mask)
      #expect(r.report.damping == exact.report.damping)
      let gap = maxAbsDifference(r.weight, exact.weight).value
      #expect(gap <= 1e-8 * exact.weight.maxMagnitude, "\(pattern) corrected \(corrected): \(gap)")
    }
  }

  // The oracle enumerates every mask; ALPS is a heuristic on a non-convex problem and may miss the
  // optimum. Measured on these 10 cases: within 3% on 5, worst 1.72× (0.5, seed 40: after ρ first
  // grew, one check saw no support change and the schedule stopped at iteration 9, as the code's
  // does); admm's worst here is 1.62×, the Wanda-mask refit's 1.48×, apt's 2.74×. The bar is 2×.
  // It is never below the oracle (1e-9 slack: rounding).
  @Test("close to the exact oracle on tiny problems", arguments: tinyPatterns, [UInt64(40), 41])
  func nearOracle(_ pattern: SparsityPattern, seed: UInt64) throws {
    let (problem, _) = randomProblem(Double.self, rows: 3, columns: 8, tokens: 40, seed: seed)
    let exact = try BruteForce().prune(problem, pattern: pattern).report.error
    let alps = try ALPS().prune(problem, pattern: pattern).report.error
    #expect(alps >= exact * (1 - 1e-9))
    #expect(alps <= 2 * exact, "\(pattern): alps \(alps) oracle \(exact)")
  }

  // Error correction: the target is C = W·K with Gram G*. Its masked optimum is Refit's (checked
  // above); here, ALPS on the corrected problem must beat the plain problem's answer evaluated on
  // the corrected error (it aims at the right target).
  @Test("error correction aims at W·K")
  func errorCorrection() throws {
    let corrected = try Self.correctedProblem(rows: 10, columns: 32, seed: 76)
    let plain = try LayerProblem(weight: corrected.weight, gram: corrected.denseGram!)
    for pattern in [SparsityPattern.unstructured(0.5), .nOfM(n: 2, m: 4)] {
      let aware = try ALPS().prune(corrected, pattern: pattern)
      let unaware = try ALPS().prune(plain, pattern: pattern)
      #expect(aware.report.error < corrected.error(of: unaware.weight), "\(pattern)")
    }
  }

  // No ADMM iteration and no refit step: Π(B₀) with B₀ = W·D, i.e. W on the mask of the largest
  // |Wᵢⱼ|·√(Gⱼⱼ + δ) (Wanda's score with the damping), unchanged.
  @Test("zero iterations is the scaled-magnitude mask with no update")
  func zeroIterations() throws {
    let (problem, _) = randomProblem(Double.self, rows: 6, columns: 16, seed: 77)
    let delta = 0.01 * (0..<16).reduce(0.0) { $0 + problem.gram[$1, $1] } / 16
    let scores = Matrix<Double>(rows: 6, columns: 16) { i, j in
      abs(problem.weight[i, j]) * ((problem.gram[j, j] + delta).squareRoot() + 1e-8)
    }
    for pattern in [SparsityPattern.unstructured(0.5), .unstructured(ratio: 0.5, group: .row), .nOfM(n: 2, m: 4)] {
      let r = try ALPS(options: .init(iterations: 0, refitIterations: 0)).prune(problem, pattern: pattern)
      #expect(r.mask == Mask.pruningLowest(scores, pattern: pattern))
      var w = problem.weight
      r.mask.apply(to: &w)
      #expect(maxAbsDifference(r.weight, w).value <= 1e-12)
    }
  }

  // s = 0: every entry kept; W is the minimiser, ADMM's iterates stay at B₀ up to rounding, and the
  // refit starts at a zero residual. Ŵ = W to the rounding of the iterations.
  @Test("sparsity 0 returns W up to rounding")
  func sparsityZero() throws {
    let (problem, _) = randomProblem(Double.self, rows: 5, columns: 16, seed: 78)
    let r = try ALPS().prune(problem, pattern: .unstructured(0))
    #expect(maxAbsDifference(r.weight, problem.weight).value <= 1e-9)
  }

  // The ρ schedule runs as documented: ρ grows from ρ₀ while the support moves, ADMM stops before
  // its cap on iterations once the support settles, and the metrics say so.
  @Test("the ρ schedule grows ρ and stops when the support settles")
  func schedule() throws {
    let (problem, _) = randomProblem(Double.self, rows: 16, columns: 64, seed: 79)
    let r = try ALPS().prune(problem, pattern: .unstructured(0.7))
    let rho = try #require(r.report.metrics["final_rho"])
    #expect(rho > ALPS.Options().rho)
    #expect(r.report.iterations < ALPS.Options().iterations)
    #expect(r.report.iterations % ALPS.Schedule.updateInterval == 0, "stops only at a support check")
    #expect((r.report.metrics["factorisations"] ?? 0) >= 2)
  }

  @Test("bit-identical at 1, 2 and 3 threads and on a rerun, in Float")
  func deterministic() throws {
    let (problem, _) = randomProblem(Float.self, rows: 64, columns: 256, tokens: 600, seed: 80)
    for pattern in [SparsityPattern.unstructured(0.7), .nOfM(n: 2, m: 4)] {
      let one = try Parallelism.$threadOverride.withValue(1) { try ALPS().prune(problem, pattern: pattern) }
      for threads in [2, 3, 2] {
        let other = try Parallelism.$threadOverride.withValue(threads) { try ALPS().prune(problem, pattern: pattern) }
        #expect(other.mask == one.mask)
        expectBitIdentical(other.weight, one.weight, "\(pattern) threads \(threads)")
      }
    }
  }

  @Test("the dispatcher runs it by name with its options, and rejects a given mask")
  func dispatch() throws {
    let (problem, _) = randomProblem(Double.self, rows: 6, columns: 16, seed: 81)
    var options = MethodOptions()
    try options.set("iterations", "9", for: .alps)
    try options.set("refit-iterations", "3", for: .alps)
    let r = try prune(problem, method: .alps, pattern: .nOfM(n: 2, m: 4), options: options)
    #expect(r.report.method == "alps")
    #expect(r.report.options["iterations"] == "9" && r.report.options["refit_iterations"] == "3")
    #expect(r.report.iterations <= 9)
    let mask = r.mask
    #expect(throws: PruningError.self) {
      try prune(problem, method: .alps, pattern: .nOfM(n: 2, m: 4), mask: mask)
    }
  }
}
