import Foundation
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// Numerical trouble inside a model run: a NaN in a weight, or activations that overflow the Float
/// Gram, stop the run with an error naming the block and the layer (Docs/reliability.md,
/// "Numerical trouble"). Tiny golden llama, seeded calibration (ModelPrunerTests' helpers).
@Suite struct NumericalTroubleModelTests {
  /// The method and schedule pairs: both layer-wise drivers and SparseLLM's FFN driver.
  static let runs: [(PruningMethod, PruningSchedule)] = [
    (.sparsegpt, .sequential), (.fista, .corrected), (.sparsellm, .sparsellm),
  ]

  /// Runs the plan and returns the error it must stop with.
  static func failure(_ model: inout TransformerLM, _ method: PruningMethod, _ schedule: PruningSchedule)
    -> ModelPruningError?
  {
    let plan = ModelPruningPlan(method: method, pattern: .nOfM(n: 2, m: 4), schedule: schedule)
    do {
      _ = try ModelPruner(plan: plan, calibration: ModelPrunerTests.calibration(vocab: model.config.vocabSize)).run(
        &model)
      return nil
    } catch {
      return error
    }
  }

  @Test("a NaN in a weight stops the run naming the block, the layer and the count", arguments: runs)
  func nanWeight(_ run: (PruningMethod, PruningSchedule)) throws {
    var model = try ModelPrunerTests.load("llama-tiny")
    let name = "model.layers.1.mlp.down_proj"
    var w = try model.linearWeights(name).weight
    w[2, 5] = .nan
    try model.setLinearWeight(name, w)
    let error = try #require(Self.failure(&model, run.0, run.1), "\(run): the NaN went through")
    guard case .layer(let block, let layer, .nonFiniteWeight(_, let entries)) = error else {
      Issue.record("\(run): \(error)")
      return
    }
    #expect(block == 1 && layer == name, "\(run): \(error)")
    #expect(entries.contains("1 non-finite entry of") && entries.contains("[2, 5]"), "\(run): \(entries)")
    #expect(error.description.contains("layer \(name): block 1: "), "\(run): \(error)")
    #expect(error.description.contains("Hint:") && error.description.contains("model file"), "\(run): \(error)")
  }

  /// v_proj of block 0 scaled by 1e30 (finite: the dispatcher's rescaling prunes it fine): the
  /// attention output is ~1e30 and its Float Gram (Σ x², ~1e60) overflows, which o_proj's check
  /// reports before any method sees it.
  @Test(
    "activations that overflow the Float Gram stop the run at the layer that reads them",
    arguments: [PruningSchedule.sequential, .corrected])
  func overflowingActivations(_ schedule: PruningSchedule) throws {
    var model = try ModelPrunerTests.load("llama-tiny")
    let v = "model.layers.0.self_attn.v_proj"
    try model.setLinearWeight(v, try model.linearWeights(v).weight.map { $0 * 1e30 })
    let error = try #require(Self.failure(&model, .sparsegpt, schedule), "\(schedule): the overflow went through")
    guard case .layer(let block, let layer, .nonFiniteGram(let what, let entries)) = error else {
      Issue.record("\(schedule): \(error)")
      return
    }
    #expect(block == 0 && layer == "model.layers.0.self_attn.o_proj", "\(schedule): \(error)")
    #expect(what.contains("Gram") && entries.contains("non-finite entr"), "\(schedule): \(error)")
    #expect(error.description.contains("block 0") && error.description.contains("Hint:"), "\(schedule): \(error)")
  }
}
