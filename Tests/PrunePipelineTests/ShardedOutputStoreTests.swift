import Foundation
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// The streaming store: a tiny seeded BF16 model pruned into sharded BF16 safetensors, killed after
/// a block (a store that throws) and resumed from the shards and the journal, must write the same
/// bytes as an uninterrupted run.
@Suite struct ShardedOutputStoreTests {
  static let shape = SyntheticModelFolder.Shape(
    layers: 3, hidden: 64, intermediate: 96, heads: 4, keyValueHeads: 2, vocabulary: 256, untied: true)

  /// Every file of a folder, by name.
  static func files(_ folder: URL) throws -> [String: Data] {
    var out: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
      out[name] = try Data(contentsOf: folder.appendingPathComponent(name))
    }
    return out
  }

  struct KillingStore: BlockStore {
    let inner: ShardedOutputStore
    let killAt: Int
    func load(block: Int, model: TransformerLM) throws(ModelPruningError) -> (
      weights: [(String, Matrix<Float>)], records: [LayerRecord]
    )? {
      try inner.load(block: block, model: model)
    }
    func save(block: Int, weights: [(String, Matrix<Float>)], records: [LayerRecord]) throws(ModelPruningError) {
      guard block < killAt else { throw .checkpoint("killed", hint: "test") }
      try inner.save(block: block, weights: weights, records: records)
    }
  }

  @Test(arguments: [PruningSchedule.sequential, .corrected])
  func killedAndResumedBF16OutputIsBitIdentical(_ schedule: PruningSchedule) throws {
    let folder = TemporaryFolder("sharded-store-\(schedule)")
    defer { folder.remove() }
    let source = folder.file("model")
    try SyntheticModelFolder.write(Self.shape, seed: 3, to: source, dtype: .BF16, maxShardBytes: 60_000)
    let loaded = try LoadedModel(contentsOf: source)
    var rng = SplitMix64(seed: 11)
    let tokens = (0..<(4 * 32)).map { _ in Int(rng.next() % 256) }
    let cal = CalibrationSet(tokens: tokens, sequenceLength: 32, source: "seeded")
    var plan = ModelPruningPlan(
      method: .sparsegpt, pattern: .unstructured(ratio: 0.5, group: .matrix), schedule: schedule)
    plan.outputDType = .BF16
    let storage = OutputStorage(dtype: .BF16, maxShardBytes: 60_000)
    let fingerprint = ["method": "sparsegpt", "schedule": schedule.rawValue, "dtype": "BF16"]
    func store(_ name: String, resume: Bool) throws -> ShardedOutputStore {
      try ShardedOutputStore(
        directory: folder.file(name), fingerprint: fingerprint, resume: resume,
        plan: try ExportPlan(model: loaded.model, source: source), model: loaded.model, storage: storage,
        metadata: ["method": "sparsegpt"])
    }

    // Uninterrupted.
    var uninterrupted = loaded.model
    let a = try store("a", resume: false)
    #expect(a.layout.files.count > 1, "the test wants several shards")
    _ = try ModelPruner(plan: plan, calibration: cal).run(&uninterrupted, store: a)
    try a.finish(model: uninterrupted) { _ in }
    let reference = try Self.files(a.staging)
    #expect(reference["model.safetensors.index.json"] != nil)

    // Killed after block 0, then resumed.
    var killed = loaded.model
    let b = try store("b", resume: false)
    #expect(throws: ModelPruningError.self) {
      try ModelPruner(plan: plan, calibration: cal).run(&killed, store: KillingStore(inner: b, killAt: 1))
    }
    #expect(b.completedBlocks == [0])
    #expect(throws: ModelPruningError.self) { try store("b", resume: false) }
    var resumed = loaded.model
    let again = try store("b", resume: true)
    let summary = try ModelPruner(plan: plan, calibration: cal).run(&resumed, store: again)
    #expect(summary.resumedBlocks == [0])
    try again.finish(model: resumed) { _ in }
    let written = try Self.files(again.staging)
    #expect(written.keys.sorted() == reference.keys.sorted())
    for (name, data) in reference { #expect(written[name] == data, "\(name) differs after the resume") }

    // The output is a model: it loads, its pruned layers are the installed (BF16-rounded) weights,
    // half of each is exactly zero, and every other tensor is the source's.
    let output = try LoadedModel(contentsOf: again.staging)
    for b in 0..<resumed.blockCount {
      for name in resumed.linearLayerNames(block: b) {
        let w = try output.model.linearWeights(name).weight
        #expect(w == (try resumed.linearWeights(name).weight), "\(name)")
        #expect(w.elements.filter { $0 == 0 }.count * 2 == w.elements.count, "\(name)")
      }
    }
    let sourceWeights = try LoadedModel.weights(inFolder: source).0
    let outputWeights = try LoadedModel.weights(inFolder: again.staging).0
    for name in sourceWeights.tensorNames where !name.hasSuffix("proj.weight") {
      #expect(try outputWeights.floatTensor(name) == sourceWeights.floatTensor(name), "\(name)")
    }
    again.remove()
    a.remove()
    #expect(!FileManager.default.fileExists(atPath: folder.file("a").path))
  }

  /// `ModelJob.storage(for:)` with `--dtype auto` keeps a Hugging Face folder's type, asked of the
  /// loaded model's own source: it still answers once the folder's weight files are gone (nothing
  /// is opened again), and F32 is the answer for an F32 folder.
  @Test(arguments: [SafetensorsDType.BF16, .F32])
  func autoStorageAsksTheModelsOwnSource(_ dtype: SafetensorsDType) throws {
    let folder = TemporaryFolder("sharded-store-auto-\(dtype)")
    defer { folder.remove() }
    let source = folder.file("model")
    try SyntheticModelFolder.write(Self.shape, seed: 3, to: source, dtype: dtype, maxShardBytes: 60_000)
    let model = try LoadedModel(contentsOf: source, loading: .lazy).model
    for file in try FileManager.default.contentsOfDirectory(atPath: source.path) where file.contains("safetensors") {
      try FileManager.default.removeItem(at: source.appendingPathComponent(file))
    }
    let job = ModelJob(
      model: source, plan: ModelPruningPlan(method: .magnitude, pattern: .unstructured(0.5)),
      calibration: .protocolText(.austenQuick), output: folder.file("out"), dtype: .auto)
    #expect(job.storage(for: model).dtype == dtype)
  }

  /// The journal is written by `prettyJSON` and read by `prettyJSONDecoder` (the shared settings);
  /// a journal in the compact form the store wrote before them (JSONEncoder, sorted keys, the same
  /// non-finite strings) still resumes, non-finite numbers included.
  @Test func aJournalOfTheEarlierFormIsStillRead() throws {
    let folder = TemporaryFolder("sharded-store-journal")
    defer { folder.remove() }
    let source = folder.file("model")
    try SyntheticModelFolder.write(Self.shape, seed: 3, to: source, dtype: .BF16, maxShardBytes: 60_000)
    let loaded = try LoadedModel(contentsOf: source)
    let store = try ShardedOutputStore(
      directory: folder.file("store"), fingerprint: ["method": "sparsegpt"], resume: false,
      plan: try ExportPlan(model: loaded.model, source: source), model: loaded.model,
      storage: OutputStorage(dtype: .BF16, maxShardBytes: 60_000), metadata: [:])
    var model = loaded.model
    try model.loadBlock(0)
    let names = model.linearLayerNames(block: 0)
    let weights = try names.map { ($0, try model.linearWeights($0).weight) }
    let report = PruningReport(method: "sparsegpt", pattern: "50%", relativeError: .infinity, damping: .nan)
    let records = names.map {
      LayerRecord(block: 0, name: $0, shape: [1, 1], zeros: 0, errorCorrected: false, report: report)
    }
    try store.save(block: 0, weights: weights, records: records)
    let written = try Data(contentsOf: store.journal(block: 0))
    #expect(written == prettyJSON(records))
    // The earlier form, written over it.
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
      positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    let old = try encoder.encode(records)
    #expect(old != written)
    for journal in [old, written] {
      try journal.write(to: store.journal(block: 0))
      let read = try #require(try store.load(block: 0, model: model)).records
      #expect(read.count == records.count)
      #expect(read.map(\.name) == names && read.allSatisfy { $0.report.relativeError == .infinity })
      #expect(read.allSatisfy { $0.report.damping?.isNaN == true })
    }
    store.remove()
  }

  /// The output's config.json names the output's dtype, not the source's: a BF16 folder written
  /// as F16 or F32 says so, and transformers (`dtype="auto"`) loads what the shards hold.
  @Test(arguments: [(SafetensorsDType.F16, "float16"), (.F32, "float32"), (.BF16, "bfloat16")])
  func configNamesTheOutputDType(_ dtype: SafetensorsDType, _ torchName: String) throws {
    let folder = TemporaryFolder("sharded-store-config-\(dtype.rawValue)")
    defer { folder.remove() }
    let source = folder.file("model")
    try SyntheticModelFolder.write(Self.shape, seed: 5, to: source, dtype: .BF16)
    let loaded = try LoadedModel(contentsOf: source)
    let store = try ShardedOutputStore(
      directory: folder.file("s"), fingerprint: ["m": "none"], resume: false,
      plan: try ExportPlan(model: loaded.model, source: source), model: loaded.model,
      storage: OutputStorage(dtype: dtype), metadata: ["method": "none"])
    try store.finish(model: loaded.model) { _ in }
    let config = try JSONSerialization.jsonObject(
      with: Data(contentsOf: store.staging.appendingPathComponent("config.json")))
    #expect((config as? [String: Any])?["torch_dtype"] as? String == torchName)
    let file = try SafetensorsFile(contentsOf: store.staging.appendingPathComponent("model.safetensors"))
    #expect(file.tensors.values.allSatisfy { $0.dtype == dtype })
    store.remove()
  }

  /// For F32 the store's single shard is byte for byte the export of the pruned model.
  @Test func oneF32ShardIsTheExport() throws {
    let folder = TemporaryFolder("sharded-store-f32")
    defer { folder.remove() }
    let source = folder.file("model")
    try SyntheticModelFolder.write(Self.shape, seed: 4, to: source)
    let loaded = try LoadedModel(contentsOf: source)
    var rng = SplitMix64(seed: 12)
    let cal = CalibrationSet(tokens: (0..<64).map { _ in Int(rng.next() % 256) }, sequenceLength: 32, source: "seeded")
    let plan = ModelPruningPlan(method: .wanda, pattern: .nOfM(n: 2, m: 4))
    var model = loaded.model
    let store = try ShardedOutputStore(
      directory: folder.file("s"), fingerprint: ["m": "wanda"], resume: false,
      plan: try ExportPlan(model: loaded.model, source: source), model: loaded.model, storage: .f32,
      metadata: ["method": "wanda"])
    _ = try ModelPruner(plan: plan, calibration: cal).run(&model, store: store)
    try store.finish(model: model) { _ in }
    try HuggingFaceExport.write(model: model, source: source, to: folder.file("export"), metadata: ["method": "wanda"])
    let exported = try Self.files(folder.file("export"))
    let streamed = try Self.files(store.staging)
    #expect(streamed.keys.sorted() == exported.keys.sorted())
    #expect(streamed["model.safetensors"] == exported["model.safetensors"])
  }
}
