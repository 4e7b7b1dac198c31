import PruneSolvers
import PruneTestSupport
import Testing

let tinyPatterns: [SparsityPattern] = [
  .unstructured(0.5), .unstructured(ratio: 0.5, group: .row), .unstructured(0.3), .nOfM(n: 2, m: 4), .nOfM(n: 1, m: 4),
]

@Suite("Brute-force oracle")
struct BruteForceTests {
  // The oracle minimises the undamped error over every admissible mask, so no method can beat it
  // (1e-9 relative slack for rounding of the two error evaluations).
  @Test("brute force is ≤ every method on tiny problems", arguments: tinyPatterns, [UInt64(40), 41])
  func lowerBound(_ pattern: SparsityPattern, seed: UInt64) throws {
    let (problem, _) = randomProblem(Double.self, rows: 3, columns: 8, tokens: 40, seed: seed)
    let exact = try BruteForce().prune(problem, pattern: pattern)
    #expect(exact.mask.satisfies(pattern))
    for method in scalableMethods {
      let r = try run(method, problem, pattern)
      #expect(
        exact.report.error <= r.report.error * (1 + 1e-9),
        "\(method) \(pattern): \(r.report.error) < oracle \(exact.report.error)")
    }
    // The exact refit on the oracle's mask reproduces the oracle's weights.
    let refit = try Refit(options: .exact).refit(problem, mask: exact.mask)
    #expect(maxAbsDifference(refit.weight, exact.weight).value <= 1e-9 * exact.weight.maxMagnitude)
  }

  // The per-matrix budget is split over rows by dynamic programming; check it against plain
  // enumeration of every whole-matrix mask (C(8, 4) = 70 for 2 × 4), each refit exactly.
  @Test("the dynamic programme over rows equals whole-matrix enumeration")
  func dynamicProgramme() throws {
    let (problem, _) = randomProblem(Double.self, rows: 2, columns: 4, tokens: 30, seed: 42)
    let exact = try BruteForce().prune(problem, pattern: .unstructured(0.5))
    var best = Double.infinity
    for bits in 0..<256 where bits.nonzeroBitCount == 4 {
      let mask = Mask(rows: 2, columns: 4, kept: (0..<8).map { bits & (1 << $0) == 0 })
      best = min(best, try Refit(options: .exact).refit(problem, mask: mask).report.error)
    }
    #expect(relativeDifference(exact.report.error, best) <= 1e-9)
  }

  @Test("refuses problems too large to enumerate, with a hint")
  func tooLarge() {
    let (problem, _) = randomProblem(Double.self, rows: 2, columns: 40, seed: 43)
    #expect(throws: PruningError.self) { try BruteForce().prune(problem, pattern: .unstructured(0.5)) }
    do {
      _ = try BruteForce().prune(problem, pattern: .unstructured(0.5))
    } catch {
      #expect(error.description.contains("Hint:"))
    }
  }
}
