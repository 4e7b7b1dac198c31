import Foundation
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// The pruner on a lazily loaded model that releases each block once it is saved
/// (`ModelPruner.releasesBlocks`): the same pruned weights and records as on the eager model, each
/// block's weights read once, and no block left in memory.
@Suite struct StreamingPrunerTests {
  /// Completed blocks kept in memory.
  final class MemoryStore: BlockStore, @unchecked Sendable {
    private var blocks: [Int: (weights: [(String, Matrix<Float>)], records: [LayerRecord])] = [:]
    private let lock = NSLock()
    func load(block: Int, model: TransformerLM) throws(ModelPruningError) -> (
      weights: [(String, Matrix<Float>)], records: [LayerRecord]
    )? {
      lock.withLock { blocks[block] }
    }
    func save(block: Int, weights: [(String, Matrix<Float>)], records: [LayerRecord]) throws(ModelPruningError) {
      lock.withLock { blocks[block] = (weights, records) }
    }
    var saved: [String: Matrix<Float>] {
      lock.withLock { Dictionary(uniqueKeysWithValues: blocks.values.flatMap { $0.weights }) }
    }
  }

  /// The golden tiny model's tensors, in memory behind a counting source.
  static func source(_ name: String) throws -> (ForwardConfig, CountingSource) {
    let folder = ModelFiles.packageRoot.appendingPathComponent("Fixtures/golden/\(name)")
    let file = try SafetensorsFile(contentsOf: folder.appendingPathComponent("model.safetensors"))
    var tensors = InMemoryTensors()
    for n in file.tensorNames { tensors.tensors[n] = try file.floatTensor(n) }
    return (try ForwardConfig(contentsOf: folder.appendingPathComponent("config.json")), CountingSource(tensors))
  }

  @Test(arguments: ModelPrunerTests.architectures, [PruningSchedule.sequential, .corrected])
  func aStreamedRunEqualsTheEagerOne(_ name: String, _ schedule: PruningSchedule) throws {
    let (config, source) = try Self.source(name)
    var eager = try TransformerLM(config: config, weights: source.inner)
    let cal = ModelPrunerTests.calibration(vocab: config.vocabSize)
    let plan = ModelPruningPlan(
      method: .sparsegpt, pattern: .unstructured(ratio: 0.5, group: .row), schedule: schedule,
      jobs: schedule == .corrected ? 2 : 1)
    let full = try ModelPruner(plan: plan, calibration: cal).run(&eager)

    var lazy = try TransformerLM(config: config, weights: source, loading: .lazy)
    source.reset()
    let store = MemoryStore()
    let streamed = try ModelPruner(plan: plan, calibration: cal, releasesBlocks: true).run(&lazy, store: store)
    #expect(streamed.layers.map(\.name) == full.layers.map(\.name))
    #expect(streamed.layers.map(\.zeros) == full.layers.map(\.zeros))
    #expect(streamed.layers.map(\.report.relativeError) == full.layers.map(\.report.relativeError))
    #expect(streamed.zeroParameters == full.zeroParameters)
    #expect(streamed.totalParameters == full.totalParameters)
    #expect(store.saved == (try ModelPrunerTests.allWeights(eager)))
    #expect((0..<lazy.blockCount).allSatisfy { !lazy.isBlockLoaded($0) })
    for b in 0..<lazy.blockCount {
      for n in lazy.linearLayerNames(block: b) { #expect(source.reads[n + ".weight"] == 1, "\(n)") }
    }
  }
}
