import Foundation
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// Driver D (SparseLLM) on the tiny golden models: exact patterns on every layer of every
/// architecture, attention pruned by the inner method, and the FFN pruned against the *pruned*
/// attention's output (the reference's issue #10).
@Suite struct SparseLLMPipelineTests {
  static let patterns: [SparsityPattern] = [.nOfM(n: 2, m: 4), .unstructured(ratio: 0.5, group: .matrix)]

  @Test(arguments: ModelPrunerTests.architectures, patterns)
  func everyLayerGetsTheExactPattern(_ name: String, _ pattern: SparsityPattern) throws {
    var model = try ModelPrunerTests.load(name)
    let plan = ModelPruningPlan(method: .sparsellm, pattern: pattern)
    #expect(plan.schedule == .sparsellm)
    let summary = try ModelPruner(plan: plan, calibration: ModelPrunerTests.calibration(vocab: model.config.vocabSize))
      .run(&model)
    let layers = (0..<model.blockCount).flatMap { model.linearLayerNames(block: $0) }
    #expect(summary.layers.map(\.name) == layers)
    for r in summary.layers {
      let w = try model.linearWeights(r.name).weight
      let pruned = w.elements.filter { $0 == 0 }.count
      #expect(Mask(nonZerosOf: w).violations(of: pattern).isEmpty, "\(r.name)")
      // Exact counts; an accidental zero among the kept weights would only add to them.
      #expect(pruned >= pattern.prunedCount(rows: w.rows, columns: w.columns), "\(r.name)")
      #expect(r.report.realisedSparsity == pattern.fraction, "\(r.name)")
      let ffn = model.linearGroups(block: r.block)[2...].joined().contains(r.name)
      #expect(r.report.method == (ffn ? "sparsellm" : "sparsegpt"), "\(r.name): \(r.report.method)")
    }
  }

  /// The FFN of block 1 is pruned against the FFN input that the pruned attention of block 1
  /// produces (on block 0's pruned output): running `SparseLLM.prune` on that X reproduces the
  /// driver's FFN weights bit for bit, while the dense attention's X gives other weights.
  @Test(arguments: ModelPrunerTests.architectures)
  func ffnSeesThePrunedAttention(_ name: String) throws {
    let dense = try ModelPrunerTests.load(name)
    let calibration = ModelPrunerTests.calibration(vocab: dense.config.vocabSize)
    let pattern = SparsityPattern.nOfM(n: 2, m: 4)
    let options = MethodOptions()
    var model = dense
    var hidden = try model.embed(calibration.tokens, sequenceLength: calibration.sequenceLength)
    var outcome: BlockOutcome? = nil
    for b in 0..<2 {
      let input = BlockInput(hidden: hidden, sequenceLength: calibration.sequenceLength, chunkWindows: 3)
      let o = try pruneBlockSparseLLM(
        model, block: b, input: input, pattern: pattern, options: options, progress: { _ in })
      if b == 1 {
        outcome = o
        break
      }
      for (n, w) in o.weights { try model.setLinearWeight(n, w) }
      guard case .memory(let next) = try input.output(of: model, block: b) else {
        Issue.record("no spill was given, yet the output is not in memory")
        return
      }
      hidden = next
    }
    // Rebuild block 1's FFN input by hand: install only the attention weights, take the FFN input.
    var attentionOnly = model
    let groups = model.linearGroups(block: 1)
    for (n, w) in outcome!.weights where groups[0].contains(n) || groups[1].contains(n) {
      try attentionOnly.setLinearWeight(n, w)
    }
    let xPruned = attentionOnly.groupInput(
      block: 1, group: 2, hidden: hidden, sequenceLength: calibration.sequenceLength)
    let xDense = model.groupInput(block: 1, group: 2, hidden: hidden, sequenceLength: calibration.sequenceLength)
    #expect(xPruned != xDense, "pruning the attention must change the FFN's input for the test to mean anything")
    let ffn = try model.feedForward(block: 1)
    let expected = try SparseLLM(options: options.sparseLLM, innerOptions: options).prune(
      ffn.ffn, input: xPruned, pattern: pattern)
    let fromDense = try SparseLLM(options: options.sparseLLM, innerOptions: options).prune(
      ffn.ffn, input: xDense, pattern: pattern)
    let installed = Dictionary(uniqueKeysWithValues: outcome!.weights.map { ($0.name, $0.weight) })
    #expect(installed[ffn.up] == expected.up.weight, "\(name): up is not SparseLLM on the pruned attention's output")
    #expect(installed[ffn.down] == expected.down.weight, "\(name): down")
    if let gate = ffn.gate { #expect(installed[gate] == expected.gate!.weight, "\(name): gate") }
    #expect(installed[ffn.down] != fromDense.down.weight, "\(name): the dense X gives the same weights")
  }

  /// SparseLLM runs only on its own driver, and its driver only with it.
  @Test func scheduleAndMethodGoTogether() throws {
    let model = try ModelPrunerTests.load("opt-tiny")
    let calibration = ModelPrunerTests.calibration(vocab: model.config.vocabSize)
    for (method, schedule) in [
      (PruningMethod.sparsellm, PruningSchedule.sequential), (.sparsegpt, .sparsellm), (.sparsellm, .corrected),
    ] {
      let plan = ModelPruningPlan(method: method, pattern: .unstructured(0.5), schedule: schedule)
      #expect(throws: ModelPruningError.self) {
        try ModelPruner(plan: plan, calibration: calibration).blockList(for: model)
      }
    }
  }
}
