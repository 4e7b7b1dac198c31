// The streaming `BlockStore`: the output's own safetensors shards are the checkpoint. A folder
// next to the output holds
//
//   run.json            the fingerprint of the run (as `PruningCheckpoint`'s)
//   block-NNN.json      the journal: one file per completed block, with its layer records, written
//                       (atomically) only after the block's bytes are in the shards and fsync'd
//   output/             the output being built: its shards, created with their headers and full
//                       size when the folder is created (`ShardedSafetensorsWriter`), then the
//                       index, config and tokenizer files once every block is done
//
// `save` writes a block's tensors (the pruned linear weights, in the output's dtype, and the
// block's other tensors — norms, biases — from the source) at their offsets, flushes them and
// journals the block; `load` reads a journaled block's pruned weights back from the shards, which
// are the values the uninterrupted run installed (ModelPruner installs the dtype-rounded weights),
// so a resumed run continues from the same bits. `finish` writes everything else (the embedding,
// final norm, head, position embeddings, and the blocks that were not pruned) and the small files,
// and renames output/ to the final folder: no second copy of the model is ever on disk.

import Foundation
import PruneKernels

/// A checkpoint folder whose `output/` holds the output being written (see the file comment).
public final class ShardedOutputStore: BlockStore, @unchecked Sendable {
  /// The folder (run.json, the journal, output/).
  public let directory: URL
  /// The output being built.
  public var staging: URL { directory.appendingPathComponent("output") }
  /// The shards' layout.
  public let layout: SafetensorsShardLayout
  private let writer: ShardedSafetensorsWriter
  private let plan: ExportPlan
  /// The dtype of every tensor written (config.json names it).
  private let dtype: SafetensorsDType
  private let conv1D: Bool
  /// The tensors of each block (names), by block index; the tensors of no block under `nil`.
  private let blockTensors: [Int?: [String]]
  private let lock = NSLock()

  /// Opens the store of a run: an existing folder only with `resume` and the same fingerprint
  /// (its shards are reopened and checked against this run's layout); otherwise the folder is
  /// created with run.json and the output's shards (all or nothing). `plan` gives the tensors and
  /// files of the output, `model` the block structure.
  package init(
    directory: URL, fingerprint: [String: String], resume: Bool, plan: ExportPlan, model: TransformerLM,
    storage: OutputStorage, metadata: [String: String]
  ) throws(ModelPruningError) {
    self.directory = directory
    var kept = plan
    let linear = Set((0..<model.blockCount).flatMap { model.linearLayerNames(block: $0).map { $0 + ".weight" } })
    kept.tensors.removeAll { linear.contains($0.name) }
    self.plan = kept
    self.dtype = storage.dtype
    self.conv1D = model.config.architecture == .gpt2
    var header = metadata
    header["format"] = "pt"
    let byName = Dictionary(uniqueKeysWithValues: plan.tensors.map { ($0.name, $0) })
    do {
      layout = try SafetensorsShardLayout(
        SafetensorsShardLayout.modelOrder(plan.tensors.map(\.name)).map { ($0, storage.dtype, byName[$0]!.shape) },
        maxShardBytes: storage.maxShardBytes, metadata: header)
    } catch {
      throw .checkpoint("the output's layout: \(error.message)", hint: "this is a bug; please report it")
    }
    var groups: [Int?: [String]] = [:]
    for name in layout.order { groups[SafetensorsShardLayout.blockIndex(of: name), default: []].append(name) }
    blockTensors = groups
    // The run.json and journal rules are PruningCheckpoint's; only the block files differ.
    let layout = self.layout
    try PruningCheckpoint.openOrCreate(
      directory: directory, fingerprint: fingerprint, resume: resume, suffix: Self.journalSuffix
    ) { (folder: URL) throws(ModelPruningError) in
      let output = folder.appendingPathComponent("output")
      let retry = "nothing was pruned yet; run the same command again once there is room"
      do {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: false)
        try ShardedSafetensorsWriter.create(layout, in: output).close()
      } catch SafetensorsError.writeFailed(let path, let reason) {
        // Named by the place the shard will have (the folder is still temporary).
        let shard = directory.appendingPathComponent("output").appendingPathComponent(
          URL(fileURLWithPath: path).lastPathComponent)
        let plain = OutputSafety.plain(reason)
        throw .checkpoint(
          "cannot create \(shard.path): \(plain)", hint: OutputSafety.writeHint(reason: plain, retry: retry))
      } catch let e as SafetensorsError {
        throw .checkpointFile(path: output.path, e, hint: retry)
      } catch {
        throw .checkpoint(
          "cannot create \(output.path): \(OutputSafety.reason(error))", hint: "check the folder's permissions")
      }
    }
    let output = directory.appendingPathComponent("output")
    AtomicOutput.removeStaleAtomicWrites(in: output)
    do { writer = try ShardedSafetensorsWriter.open(layout, in: output) } catch {
      throw .checkpointFile(
        path: output.path, error, hint: "delete \(directory.path) and start over (the run's shards do not match it)")
    }
  }

  /// The journal's file names: `block-NNN.json`.
  static let journalSuffix = ".json"

  /// The journal file of one block.
  public func journal(block: Int) -> URL {
    directory.appendingPathComponent(String(format: "block-%03d.json", block))
  }

  /// Blocks journaled so far.
  public var completedBlocks: [Int] { PruningCheckpoint.completedBlocks(in: directory, suffix: Self.journalSuffix) }

  /// The tensors of the output's block `block` other than its pruned linear weights, and their values.
  private func writeTensors(of block: Int?, except skipped: Set<String>) throws(ModelPruningError) {
    let byName = Dictionary(uniqueKeysWithValues: plan.tensors.map { ($0.name, $0) })
    for name in blockTensors[block] ?? [] where !skipped.contains(name) {
      guard let tensor = byName[name] else { continue }
      let values: [Float]
      do { values = try tensor.values() } catch {
        throw .checkpoint("cannot read \(name) of the source: \(error.message)", hint: error.hint ?? "check the model")
      }
      try write(name, values)
    }
  }

  private func write(_ name: String, _ values: [Float]) throws(ModelPruningError) {
    do { try writer.write(name, values) } catch { throw writeFailure(error, what: name) }
  }

  /// A failed write or flush of the shards, as a checkpoint error naming the shard and the reason.
  private func writeFailure(_ error: SafetensorsError, what: String) -> ModelPruningError {
    if case .writeFailed(let path, let reason) = error {
      let plain = OutputSafety.plain(reason)
      return .checkpoint(
        "cannot write \(what) to \(path): \(plain)", hint: OutputSafety.writeHint(reason: plain, retry: retryHint))
    }
    return .checkpointFile(path: staging.path, error, hint: retryHint)
  }

  private var retryHint: String {
    let kept = completedBlocks
    return kept.isEmpty
      ? "no block was finished yet; run the same command again"
      : "the \(kept.count) finished block(s) stay in \(directory.path) and the same command with --resume continues from them"
  }

  /// A pruned weight as the output stores it (GPT-2's Conv1D weights are [in, out]).
  private func stored(_ w: Matrix<Float>) -> [Float] { conv1D ? w.transposed().elements : w.elements }

  public func save(block: Int, weights: [(String, Matrix<Float>)], records: [LayerRecord]) throws(ModelPruningError) {
    lock.lock()
    defer { lock.unlock() }
    do {
      var written = Set<String>()
      for (name, w) in weights {
        try write(name + ".weight", stored(w))
        written.insert(name + ".weight")
      }
      try writeTensors(of: block, except: written)
      do { try writer.synchronize() } catch { throw writeFailure(error, what: "block \(block)") }
      // The journal in `prettyJSON`'s form (the records' own keys), read back by `prettyJSONDecoder`,
      // which also reads the compact form that earlier versions wrote.
      let file = journal(block: block)
      do {
        try AtomicOutput.write(prettyJSON(records), to: file)
      } catch {
        throw .checkpoint(
          "cannot write block \(block) to \(file.path): \(OutputSafety.plain(error.reason))",
          hint: OutputSafety.writeHint(reason: OutputSafety.plain(error.reason), retry: retryHint))
      }
    }
  }

  public func load(block: Int, model: TransformerLM) throws(ModelPruningError) -> (
    weights: [(String, Matrix<Float>)], records: [LayerRecord]
  )? {
    let file = journal(block: block)
    guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
    let hint = "delete \(file.path) (that block is pruned again) or the whole folder \(directory.path)"
    guard let records = try? prettyJSONDecoder().decode([LayerRecord].self, from: data) else {
      throw .checkpoint("\(file.path) has no readable layer records", hint: hint)
    }
    var weights: [(String, Matrix<Float>)] = []
    for name in model.linearLayerNames(block: block) {
      // The shape from the configuration: the block need not be loaded.
      let shape: [Int]
      do { shape = try model.linearShape(name) } catch { throw .forward(error) }
      let (rows, columns) = (shape[0], shape[1])
      let values: [Float]
      lock.lock()
      defer { lock.unlock() }
      do { values = try writer.read(name + ".weight") } catch {
        throw .checkpointFile(path: staging.path, error, hint: hint)
      }
      guard values.count == rows * columns else {
        throw .checkpoint("\(name) in \(staging.path) is not the model's shape", hint: hint)
      }
      let w =
        conv1D
        ? Matrix(rows: columns, columns: rows, elements: values).transposed()
        : Matrix(rows: rows, columns: columns, elements: values)
      weights.append((name, w))
    }
    return (weights, records)
  }

  /// Completes the output: every tensor not written by `save` (the blocks that were not pruned,
  /// from `model`; the embedding, final norm, head and positions from the source), flushed; then
  /// the index, the config and tokenizer files and `extras` (e.g. the report) in output/. The
  /// caller then moves output/ into place (`moveOutput(to:)`).
  public func finish(model: TransformerLM, extras: (URL) throws(WriteError) -> Void) throws(ModelPruningError) {
    let done = Set(completedBlocks)
    for block in 0..<model.blockCount where !done.contains(block) {
      // A block that was not pruned is read (dense, from the source) into a copy of the model, one
      // at a time, and written as it is.
      var reader = model
      do { try reader.loadBlock(block) } catch { throw .forward(error) }
      var written = Set<String>()
      for name in model.linearLayerNames(block: block) {
        let w: Matrix<Float>
        do { w = try reader.linearWeights(name).weight } catch { throw .forward(error) }
        try write(name + ".weight", stored(w))
        written.insert(name + ".weight")
      }
      try writeTensors(of: block, except: written)
    }
    try writeTensors(of: nil, except: [])
    do {
      try writer.synchronize()
      try writer.writeIndex()
    } catch {
      throw writeFailure(error, what: "the output")
    }
    do throws(WriteError) {
      for file in plan.files {
        let data: Data
        do { data = try file.contents.data() } catch { throw WriteError(path: error.path, reason: error.reason) }
        try AtomicOutput.write(
          ExportPlan.contents(of: file.name, data, storedAs: dtype), to: staging.appendingPathComponent(file.name))
      }
      try extras(staging)
    } catch {
      throw .checkpoint(
        "cannot write \(error.path): \(OutputSafety.plain(error.reason))",
        hint: OutputSafety.writeHint(reason: OutputSafety.plain(error.reason), retry: retryHint))
    }
  }

  /// Deletes the folder (once the output is in place): the journal first, run.json last.
  public func remove() {
    writer.close()
    PruningCheckpoint.remove(directory)
  }
}
