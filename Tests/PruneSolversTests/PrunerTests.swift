import PruneSolvers
import PruneTestSupport
import Testing

@Suite("The dispatcher and method options")
struct PrunerTests {
  @Test("options are set by name, checked, and reach the method")
  func setOptions() throws {
    var o = MethodOptions()
    try o.set("block-size", "64", for: .sparsegpt)
    try o.set("lambda-steps", "5", for: .fista)
    try o.set("warm-start", "sparsegpt", for: .fista)
    try o.set("final-refit", "true", for: .fista)
    try o.set("percdamp", "0.2", for: .admm)  // the reference's spelling of damping
    #expect(o.sparseGPT.blockSize == 64 && o.fista.lambdaSteps == 5 && o.fista.warmStart == .sparsegpt)
    #expect(o.fista.finalRefit && o.admm.damping == 0.2 && o.sparseGPT.damping == 0.01)
    #expect(throws: PruningError.self) { try o.set("block-size", "64", for: .wanda) }
    #expect(throws: PruningError.self) { try o.set("block-size", "-3", for: .sparsegpt) }
    #expect(throws: PruningError.self) { try o.set("warm-start", "oracle", for: .fista) }
    #expect(throws: PruningError.self) { try o.set("no-such-option", "1", for: .fista) }
    let (problem, _) = randomProblem(Double.self, rows: 4, columns: 16, seed: 50)
    let r = try prune(problem, method: .fista, pattern: .unstructured(0.5), options: o)
    #expect(r.report.lambdaPath.count == 5)
    #expect(r.report.options["warm_start"] == "sparsegpt")
  }

  @Test("a given mask is used by refit, ADMM and APT and refused by the others")
  func givenMask() throws {
    let (problem, _) = randomProblem(Double.self, rows: 4, columns: 16, seed: 51)
    let mask = try Magnitude().prune(problem, pattern: .nOfM(n: 2, m: 4)).mask
    for method in [PruningMethod.refit, .admm, .apt] {
      let r = try prune(problem, method: method, pattern: .nOfM(n: 2, m: 4), mask: mask)
      #expect(r.mask == mask, "\(method)")
    }
    for method in [PruningMethod.magnitude, .wanda, .sparsegpt, .fista, .exact] {
      #expect(throws: PruningError.self) { try prune(problem, method: method, pattern: .nOfM(n: 2, m: 4), mask: mask) }
    }
    #expect(throws: PruningError.self) {
      try prune(problem, method: .refit, pattern: .nOfM(n: 2, m: 4), mask: Mask(rows: 3, columns: 16))
    }
  }

  @Test("invalid patterns are rejected by every method", arguments: PruningMethod.allCases)
  func invalidPattern(_ method: PruningMethod) {
    let (problem, _) = randomProblem(Double.self, rows: 2, columns: 6, seed: 52)
    #expect(throws: PruningError.self) { try prune(problem, method: method, pattern: .nOfM(n: 2, m: 4)) }  // 4 ∤ 6
    #expect(throws: PruningError.self) { try prune(problem, method: method, pattern: .unstructured(1.0)) }
    #expect(throws: PruningError.self) { try prune(problem, method: method, pattern: .nOfM(n: 4, m: 4)) }
  }

  @Test("SparseGPT names its block size when it does not fit the N:M group")
  func sparseGPTBlockSize() {
    let (problem, _) = randomProblem(Double.self, rows: 2, columns: 16, seed: 53)
    do {
      _ = try SparseGPT(options: .init(blockSize: 6)).prune(problem, pattern: .nOfM(n: 2, m: 4))
      Issue.record("expected an error")
    } catch {
      #expect(
        error
          == .invalidOption(
            name: "block-size",
            detail:
              "6 is not a multiple of M = 4, which 2:4 needs (the reference's rule: groups must not straddle lazy batches)"
          ))
    }
  }
}
