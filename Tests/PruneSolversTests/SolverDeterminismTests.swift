import PruneSolvers
import PruneTestSupport
import Testing

@Suite("Solver results do not depend on the thread count")
struct SolverDeterminismTests {
  // 64 × 256: W·G is 8.4 MFLOP, above the kernels' 4 MFLOP-per-thread floor, so two and three
  // threads really split the GEMMs (and the row-parallel loops of refit and FISTA).
  @Test(
    "bit-identical weights and masks for 1, 2 and 3 threads", arguments: scalableMethods,
    [SparsityPattern.unstructured(0.5), .nOfM(n: 2, m: 4)])
  func threadCounts(_ method: PruningMethod, _ pattern: SparsityPattern) throws {
    let (problem, _) = randomProblem(Float.self, rows: 64, columns: 256, tokens: 600, seed: 60)
    let one = try Parallelism.$threadOverride.withValue(1) { try run(method, problem, pattern) }
    for threads in [2, 3] {
      let other = try Parallelism.$threadOverride.withValue(threads) { try run(method, problem, pattern) }
      #expect(other.mask == one.mask, "\(method) \(pattern) threads \(threads)")
      expectBitIdentical(other.weight, one.weight, "\(method) \(pattern) threads \(threads)")
    }
    let again = try Parallelism.$threadOverride.withValue(2) { try run(method, problem, pattern) }
    expectBitIdentical(again.weight, one.weight, "\(method) \(pattern) rerun")
  }
}
