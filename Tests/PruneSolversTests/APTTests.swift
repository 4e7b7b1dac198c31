import PruneSolvers
import PruneTestSupport
import Testing

@Suite("APT: optimal multiple removal")
struct APTTests {
  // One block over every column: the multiple-removal closed form is the exact masked least
  // squares with the same damping (Docs/methods/apt.md#derivation); both solve SPD systems in
  // Double: 1e-9. Unstructured only: N:M works group by group (each group's subset is chosen given
  // the frozen prefix, Docs/methods/apt.md#steps-in-double), so it is optimal per group but not
  // jointly over the row.
  @Test(
    "one block over all columns equals the damped refit on its mask",
    arguments: [SparsityPattern.unstructured(0.5), .unstructured(ratio: 0.3, group: .row), .unstructured(0.77)])
  func singleBlockIsRefit(_ pattern: SparsityPattern) throws {
    let (problem, _) = randomProblem(Double.self, rows: 6, columns: 24, seed: 30)
    let apt = try APT(options: .init(blockSize: 24)).prune(problem, pattern: pattern)
    let refit = try Refit(options: .init(damping: 0.01)).refit(problem, mask: apt.mask)
    #expect(maxAbsDifference(apt.weight, refit.weight).value <= 1e-9 * refit.weight.maxMagnitude)
  }

  // ΔE = w_P(AᵀA)⁻¹w_Pᵀ is the exact increase of δw H δwᵀ and the steps are orthogonal in the H
  // inner product, so Σ ΔE = Σᵢ (ŵᵢ − wᵢ)H(ŵᵢ − wᵢ)ᵀ with H = G + δI: 1e-9 relative.
  @Test("the accumulated MRP loss equals the damped error", arguments: testPatterns)
  func lossIdentity(_ pattern: SparsityPattern) throws {
    let (problem, _) = randomProblem(Double.self, rows: 7, columns: 32, seed: 31)
    let r = try APT(options: .init(blockSize: 8)).prune(problem, pattern: pattern)
    let delta = try #require(r.report.damping)
    var damped = problem.gram
    for j in 0..<32 { damped[j, j] += delta }
    let measured = try LayerProblem(weight: problem.weight, gram: damped).error(of: r.weight)
    let loss = try #require(r.report.metrics["mrp_loss"])
    #expect(relativeDifference(loss, measured) <= 1e-9, "loss \(loss) measured \(measured)")
  }

  // With a single N:M group per row (n = M) the exhaustive subset choice is the exact optimum,
  // so APT equals the brute-force oracle (both undamped here: damping 0, G full rank).
  @Test(
    "exhaustive N:M subsets are optimal: equal to brute force on one group",
    arguments: [SparsityPattern.nOfM(n: 2, m: 4), .nOfM(n: 1, m: 4), .nOfM(n: 3, m: 4)])
  func exhaustiveIsOptimal(_ pattern: SparsityPattern) throws {
    let (problem, _) = randomProblem(Double.self, rows: 5, columns: 4, tokens: 40, seed: 32)
    let apt = try APT(options: .init(damping: 0)).prune(problem, pattern: pattern)
    let exact = try BruteForce().prune(problem, pattern: pattern)
    #expect(apt.mask == exact.mask)
    #expect(relativeDifference(apt.report.error, exact.report.error) <= 1e-9)
    // The score heuristic can only do worse or tie.
    let scores = try APT(options: .init(damping: 0, subset: .scores)).prune(problem, pattern: pattern)
    #expect(scores.report.error >= exact.report.error * (1 - 1e-9))
  }

  // In one block APT removes jointly what SparseGPT removes one column at a time, given the same
  // mask: its error on that mask can only be lower or equal (both damped alike, 1e-9 slack).
  @Test("on SparseGPT's own mask, one-block APT is never worse than SparseGPT")
  func beatsSparseGPT() throws {
    let (problem, _) = randomProblem(Double.self, rows: 8, columns: 32, seed: 33)
    for pattern in testPatterns {
      let s = try SparseGPT(options: .init(blockSize: 32)).prune(problem, pattern: pattern)
      let a = try APT(options: .init(blockSize: 32)).prune(problem, pattern: pattern, fixedMask: s.mask)
      #expect(a.mask == s.mask)
      #expect(
        a.report.error <= s.report.error * (1 + 1e-9), "\(pattern): apt \(a.report.error) sparsegpt \(s.report.error)")
    }
  }
}
