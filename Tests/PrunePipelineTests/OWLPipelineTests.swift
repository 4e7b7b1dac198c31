import Foundation
import PruneFormats
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// `--allocation owl` end to end on a tiny seeded LLaMA of 4 blocks: every layer prunes exactly its
/// block's count, the model's total is S·N less under one weight per layer, the allocation is the
/// same under every schedule and after a resume, N:M is refused, and λ = 0 is the uniform run.
@Suite struct OWLPipelineTests {
  static let shape = SyntheticModelFolder.Shape(
    layers: 4, hidden: 64, intermediate: 96, heads: 4, keyValueHeads: 2, vocabulary: 256, untied: false)

  /// The seeded model, written once per test into `folder` and loaded eagerly.
  static func model(in folder: TemporaryFolder) throws -> TransformerLM {
    let source = folder.file("model")
    try SyntheticModelFolder.write(Self.shape, seed: 21, to: source)
    return try LoadedModel(contentsOf: source).model
  }

  /// 4 windows of 32 seeded tokens.
  static let calibration: CalibrationSet = {
    var rng = SplitMix64(seed: 5)
    return CalibrationSet(tokens: (0..<128).map { _ in Int(rng.next() % 256) }, sequenceLength: 32, source: "seeded")
  }()

  static func owlPlan(
    _ method: PruningMethod, ratio: Double = 0.6, group: SparsityPattern.Group = .matrix,
    schedule: PruningSchedule? = nil
  ) -> ModelPruningPlan {
    var plan = ModelPruningPlan(method: method, pattern: .unstructured(ratio: ratio, group: group), schedule: schedule)
    plan.allocation = .owl
    return plan
  }

  static func weights(_ m: TransformerLM) throws -> [String: Matrix<Float>] {
    var out: [String: Matrix<Float>] = [:]
    for b in 0..<m.blockCount {
      for n in m.linearLayerNames(block: b) { out[n] = try m.linearWeights(n).weight }
    }
    return out
  }

  /// Magnitude, Wanda and SparseGPT (sequential), FISTA (corrected) and SparseLLM (its driver): every
  /// layer of block ℓ has exactly ⌊s_ℓ·m·n⌋ zeros (seeded weights have no zeros of their own), the
  /// blocks get different ratios spanning 2λ with the parameter-weighted mean S, and the model's
  /// zeros are S·N less under one per layer. FISTA's kept weights may be exactly zero too (the
  /// lasso's soft threshold), so its layers have at least the count, and a few more at most.
  @Test(arguments: [PruningMethod.magnitude, .wanda, .sparsegpt, .fista, .sparsellm])
  func everyLayerPrunesItsBlocksExactCount(_ method: PruningMethod) throws {
    let folder = TemporaryFolder("owl-counts-\(method)")
    defer { folder.remove() }
    var model = try Self.model(in: folder)
    let summary = try ModelPruner(plan: Self.owlPlan(method), calibration: Self.calibration).run(&model)
    let allocation = try #require(summary.allocation)
    #expect(allocation.blocks.count == 4)
    let s = allocation.blocks.map(\.sparsity)
    #expect(Set(s).count > 1, "the seeded blocks should have different outlier ratios: \(allocation.blocks)")
    #expect(abs((s.max()! - s.min()!) - 2 * OWLAllocation.Options().range) < 1e-12)
    #expect(abs(allocation.meanSparsity - 0.6) < 1e-12)
    for r in summary.layers {
      let expected = SparsityPattern.unstructured(ratio: s[r.block], group: .matrix)
        .prunedCount(rows: r.shape[0], columns: r.shape[1])
      if method == .fista {
        #expect(r.zeros >= expected && r.zeros <= expected + r.shape[0] * r.shape[1] / 100, "\(r.name)")
      } else {
        #expect(r.zeros == expected, "\(r.name)")
      }
      #expect(r.targetSparsity == s[r.block], "\(r.name)")
    }
    let pruned = allocation.blocks.map(\.pruned).reduce(0, +)
    #expect(method == .fista ? pruned <= summary.zeroParameters : pruned == summary.zeroParameters)
    let requested = 0.6 * Double(summary.prunableParameters)
    #expect(requested - Double(pruned) > -1e-6)
    #expect(requested - Double(pruned) < Double(summary.layers.count))
    #expect(summary.secondsByPhase.allocation != nil)
  }

  /// The outlier ratios come from the dense model alone: the same bits under the sequential and
  /// the corrected schedule, with `--blocks` (the allocation spans every block), and in memory or
  /// spilled.
  @Test func theAllocationDependsOnlyOnTheDenseModel() throws {
    let folder = TemporaryFolder("owl-same")
    defer { folder.remove() }
    let dense = try Self.model(in: folder)
    var a = dense
    let sequential = try ModelPruner(plan: Self.owlPlan(.wanda), calibration: Self.calibration).run(&a)
    var b = dense
    var ranged = Self.owlPlan(.wanda, schedule: .corrected)
    ranged.blocks = 2...3
    let corrected = try ModelPruner(plan: ranged, calibration: Self.calibration).run(&b)
    #expect(sequential.allocation == corrected.allocation)
    #expect(corrected.blocks == [2, 3])
    var c = dense
    var pruner = ModelPruner(plan: Self.owlPlan(.wanda), calibration: Self.calibration)
    pruner.spill = try ActivationSpill.create(folder.file("spill"))
    defer { pruner.spill?.remove() }
    let spilled = try pruner.run(&c)
    #expect(spilled.allocation == sequential.allocation)
    #expect(try Self.weights(c) == Self.weights(a))
  }

  /// λ = 0 gives every block S: the weights are the bits of the uniform run.
  @Test func zeroRangeIsTheUniformRun() throws {
    let folder = TemporaryFolder("owl-zero")
    defer { folder.remove() }
    let dense = try Self.model(in: folder)
    var uniform = dense
    let plain = ModelPruningPlan(method: .sparsegpt, pattern: .unstructured(ratio: 0.6, group: .matrix))
    let u = try ModelPruner(plan: plain, calibration: Self.calibration).run(&uniform)
    #expect(u.allocation == nil)
    var owl = dense
    var plan = Self.owlPlan(.sparsegpt)
    plan.owl.range = 0
    let o = try ModelPruner(plan: plan, calibration: Self.calibration).run(&owl)
    #expect(o.allocation?.blocks.map(\.sparsity) == Array(repeating: 0.6, count: 4))
    #expect(try Self.weights(owl) == Self.weights(uniform))
  }

  /// N:M fixes every group's count: refused before any work, with a hint.
  @Test func nOfMIsRefused() throws {
    let folder = TemporaryFolder("owl-nm")
    defer { folder.remove() }
    var model = try Self.model(in: folder)
    var plan = ModelPruningPlan(method: .wanda, pattern: .nOfM(n: 2, m: 4))
    plan.allocation = .owl
    do {
      _ = try ModelPruner(plan: plan, calibration: Self.calibration).run(&model)
      Issue.record("N:M with OWL ran")
    } catch {
      guard case .invalidPlan(let message, let hint) = error else {
        Issue.record("wrong error \(error)")
        return
      }
      #expect(message.contains("unstructured"))
      #expect(hint.contains("--sparsity"))
    }
  }

  /// Killed after block 1 and resumed: the allocation is computed again from the dense model (the
  /// same bits), and the weights are those of the uninterrupted run.
  @Test func resumeReusesTheSameAllocation() throws {
    let folder = TemporaryFolder("owl-resume")
    defer { folder.remove() }
    let dense = try Self.model(in: folder)
    let plan = Self.owlPlan(.sparsegpt)
    var uninterrupted = dense
    let full = try ModelPruner(plan: plan, calibration: Self.calibration).run(&uninterrupted)

    struct KillingStore: BlockStore {
      let inner: PruningCheckpoint
      func load(block: Int, model: TransformerLM) throws(ModelPruningError) -> (
        weights: [(String, Matrix<Float>)], records: [LayerRecord]
      )? { try inner.load(block: block, model: model) }
      func save(block: Int, weights: [(String, Matrix<Float>)], records: [LayerRecord]) throws(ModelPruningError) {
        guard block < 2 else { throw .checkpoint("killed", hint: "test") }
        try inner.save(block: block, weights: weights, records: records)
      }
    }
    let dir = folder.file("checkpoint")
    let fingerprint = PruningCheckpoint.fingerprint(model: folder.file("model"), plan: plan, calibration: Self.calibration)
    #expect(fingerprint["allocation"] == "owl")
    var killed = dense
    let store = try PruningCheckpoint(directory: dir, fingerprint: fingerprint, resume: false)
    #expect(throws: ModelPruningError.self) {
      try ModelPruner(plan: plan, calibration: Self.calibration).run(&killed, store: KillingStore(inner: store))
    }
    #expect(store.completedBlocks == [0, 1])
    // Another λ is another run: the checkpoint refuses it.
    var other = plan
    other.owl.range = 0.05
    #expect(throws: ModelPruningError.self) {
      try PruningCheckpoint(
        directory: dir,
        fingerprint: PruningCheckpoint.fingerprint(model: folder.file("model"), plan: other, calibration: Self.calibration),
        resume: true)
    }
    var resumed = dense
    let again = try PruningCheckpoint(directory: dir, fingerprint: fingerprint, resume: true)
    let summary = try ModelPruner(plan: plan, calibration: Self.calibration).run(&resumed, store: again)
    #expect(summary.resumedBlocks == [0, 1])
    #expect(summary.allocation == full.allocation)
    #expect(summary.layers.map(\.targetSparsity) == full.layers.map(\.targetSparsity))
    #expect(try Self.weights(resumed) == Self.weights(uninterrupted))
  }

  /// The report carries the allocation and each layer's target; a uniform report has neither key.
  @Test func theReportCarriesTheAllocation() throws {
    let folder = TemporaryFolder("owl-report")
    defer { folder.remove() }
    let dense = try Self.model(in: folder)
    var model = dense
    let summary = try ModelPruner(plan: Self.owlPlan(.magnitude), calibration: Self.calibration).run(&model)
    let json = String(decoding: reportJSON(summary), as: UTF8.self)
    #expect(json.contains("\"allocation\""))
    #expect(json.contains("\"outlier_ratio\""))
    #expect(json.contains("\"target_sparsity\""))
    #expect(json.contains("\"mean_sparsity\""))
    let back = try reportJSONDecoder().decode(ModelPruningSummary.self, from: reportJSON(summary))
    #expect(back.allocation == summary.allocation)
    #expect(back.layers.map(\.targetSparsity) == summary.layers.map(\.targetSparsity))

    var plain = dense
    let uniform = try ModelPruner(
      plan: ModelPruningPlan(method: .magnitude, pattern: .unstructured(0.6)), calibration: Self.calibration
    ).run(&plain)
    let text = String(decoding: reportJSON(uniform), as: UTF8.self)
    #expect(!text.contains("allocation"))
    #expect(!text.contains("target_sparsity"))
  }
}
