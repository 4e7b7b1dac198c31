// The file-backed `BlockStore` of `prune model`: a folder next to the output that holds one
// safetensors file per completed block (its pruned linear weights, F32, with the layer records as
// JSON in the header), plus `run.json`, the fingerprint of the run that wrote it. `--resume`
// accepts the folder only when the fingerprint matches exactly, so a resumed run cannot mix
// blocks pruned with different settings.

import Foundation
import PruneKernels

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A checkpoint folder: `run.json` + `block-NNN.safetensors` for every completed block.
public struct PruningCheckpoint: BlockStore, Sendable {
  /// The folder.
  public let directory: URL
  /// The run's identity: every setting that changes the result (model file, method, pattern,
  /// options, schedule, calibration digest, chunking).
  public let fingerprint: [String: String]

  /// Opens the checkpoint of a run. A folder that exists is only accepted with `resume` and a
  /// matching fingerprint; otherwise the folder is created and the fingerprint written.
  public init(directory: URL, fingerprint: [String: String], resume: Bool) throws(ModelPruningError) {
    self.directory = directory
    self.fingerprint = fingerprint
    try Self.openOrCreate(directory: directory, fingerprint: fingerprint, resume: resume, suffix: ".safetensors")
  }

  /// Opens the checkpoint folder `directory` of a run whose completed blocks are the files
  /// `block-NNN<suffix>`: a folder that exists is only accepted with `resume` and a matching
  /// fingerprint (stale half-written files are removed); otherwise the folder is created with its
  /// run.json, and whatever `prepare` puts in it, in one step.
  static func openOrCreate(
    directory: URL, fingerprint: [String: String], resume: Bool, suffix: String,
    prepare: (URL) throws(ModelPruningError) -> Void = { _ in }
  ) throws(ModelPruningError) {
    let manager = FileManager.default
    let runFile = directory.appendingPathComponent("run.json")
    // A folder with neither run.json nor a block (a kill between the last two steps of `remove`)
    // holds nothing to resume or to lose.
    if manager.fileExists(atPath: directory.path) && !manager.fileExists(atPath: runFile.path)
      && Self.completedBlocks(in: directory, suffix: suffix).isEmpty
    {
      try? manager.removeItem(at: directory)
    }
    if manager.fileExists(atPath: directory.path) {
      guard resume else {
        throw .resumeConflict(
          "\(directory.path) holds an interrupted run",
          hint: "add --resume to continue it, or delete the folder to start over")
      }
      guard let data = manager.contents(atPath: runFile.path),
        let stored = try? JSONDecoder().decode([String: String].self, from: data)
      else {
        throw .checkpoint("\(runFile.path) is missing or unreadable", hint: "delete \(directory.path) and start over")
      }
      for key in Set(stored.keys).union(fingerprint.keys).sorted() where stored[key] != fingerprint[key] {
        throw .resumeConflict(
          "\(directory.path) was written with \(key) = \(stored[key] ?? "(none)"), this run has \(fingerprint[key] ?? "(none)")",
          hint: "resume with the same settings, or delete \(directory.path) to start over")
      }
      // A killed run may have left half-written block files; they are not blocks yet.
      AtomicOutput.removeStaleAtomicWrites(in: directory)
    } else {
      try Self.create(directory, fingerprint: fingerprint, prepare: prepare)
    }
  }

  /// Creates the folder with its run.json in one step: both are written under a temporary name
  /// (`.NAME.partial-PID`) and renamed into place (`AtomicOutput.writeFolder`), so a kill never
  /// leaves a checkpoint folder without its fingerprint.
  private static func create(
    _ directory: URL, fingerprint: [String: String], prepare: (URL) throws(ModelPruningError) -> Void
  ) throws(ModelPruningError) {
    AtomicOutput.removeStaleTemporaries(
      in: directory.deletingLastPathComponent(),
      prefixes: [AtomicOutput.folderTemporaryPrefix(of: directory.lastPathComponent)])
    let retry = "nothing was pruned yet; run the same command again once the folder is writable"
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let runFile = directory.appendingPathComponent("run.json")
    enum Failure: Error {
      case write(WriteError)
      case prepare(ModelPruningError)
    }
    do throws(FolderWriteError<Failure>) {
      try AtomicOutput.writeFolder(directory, name: .partial, replacing: true) { (staging: URL) throws(Failure) in
        do throws(WriteError) {
          try AtomicOutput.write(try! encoder.encode(fingerprint), to: staging.appendingPathComponent("run.json"))
        } catch {
          throw .write(error)
        }
        do throws(ModelPruningError) { try prepare(staging) } catch { throw .prepare(error) }
      }
    } catch {
      switch error {
      case .create(_, let reason), .move(let reason, _):
        throw .checkpoint(
          "cannot create the checkpoint folder \(directory.path): \(reason)",
          hint: OutputSafety.writeHint(reason: reason, retry: retry))
      case .refused(let e):
        throw .checkpoint(
          "cannot create the checkpoint folder \(directory.path): \(e.reason)",
          hint: e.hint ?? "give the path of a new folder")
      case .fill(.prepare(let e)):
        throw e
      case .fill(.write(let e)):
        let reason = OutputSafety.plain(e.reason)
        throw .checkpoint(
          "cannot write \(runFile.path): \(reason)", hint: OutputSafety.writeHint(reason: reason, retry: retry))
      }
    }
  }

  /// The underlying reason of a Foundation file error (e.g. "No space left on device").
  static func reason(_ error: any Error) -> String { OutputSafety.reason(error) }

  /// The settings of a run that change its result, as a checkpoint's fingerprint: model path,
  /// method, pattern, schedule, chunking, the calibration tokens' sha256, and the options given.
  public static func fingerprint(model: URL, plan: ModelPruningPlan, calibration: CalibrationSet) -> [String: String] {
    var f: [String: String] = [
      "format": "prunekit-checkpoint-1", "model": model.standardizedFileURL.path, "method": plan.method.rawValue,
      "pattern": plan.pattern.description, "schedule": plan.schedule.rawValue, "chunk_windows": "\(plan.chunkWindows)",
      "calibration_sha256": calibration.digest, "calibration_seqlen": "\(calibration.sequenceLength)",
    ]
    for (k, v) in plan.givenOptions { f["option." + k] = v }
    // Only a non-uniform allocation is named, so that the checkpoints of uniform runs keep their
    // fingerprint. The allocation itself is computed again on resume (the same bits: it depends on
    // the dense weights and the calibration only).
    if plan.allocation == .owl {
      f["allocation"] = plan.allocation.rawValue
      f["owl_threshold"] = "\(plan.owl.threshold)"
      f["owl_range"] = "\(plan.owl.range)"
    }
    return f
  }

  /// The file of one block.
  public func url(block: Int) -> URL {
    directory.appendingPathComponent(String(format: "block-%03d.safetensors", block))
  }

  /// Blocks completed so far.
  public var completedBlocks: [Int] { Self.completedBlocks(in: directory) }

  /// The blocks whose files (`block-NNN<suffix>`) are in `directory` (none when it does not exist).
  public static func completedBlocks(in directory: URL, suffix: String = ".safetensors") -> [Int] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.compactMap { n -> Int? in
      guard n.hasPrefix("block-"), n.hasSuffix(suffix) else { return nil }
      return Int(n.dropFirst(6).dropLast(suffix.count))
    }.sorted()
  }

  public func save(block: Int, weights: [(String, Matrix<Float>)], records: [LayerRecord]) throws(ModelPruningError) {
    var writer = SafetensorsWriter()
    let file = url(block: block)
    do {
      for (name, w) in weights { try writer.add(name + ".weight", matrix: w) }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
      writer.metadata = ["records": String(decoding: try encoder.encode(records), as: UTF8.self), "block": "\(block)"]
      try writer.write(to: file)
    } catch {
      let reason: String
      switch error {
      case SafetensorsError.writeFailed(_, let why): reason = OutputSafety.plain(why)
      case let e as any PruneKitError: reason = e.message
      default: reason = "\(error)"
      }
      let kept = completedBlocks
      let retry =
        kept.isEmpty
        ? "no block was finished yet; run the same command again"
        : "the \(kept.count) finished block(s) stay in \(directory.path) and the same command with --resume continues from them"
      throw .checkpoint(
        "cannot write block \(block) to \(file.path): \(reason)",
        hint: OutputSafety.writeHint(reason: reason, retry: retry))
    }
  }

  public func load(block: Int, model: TransformerLM) throws(ModelPruningError) -> (
    weights: [(String, Matrix<Float>)], records: [LayerRecord]
  )? {
    let file = url(block: block)
    guard FileManager.default.fileExists(atPath: file.path) else { return nil }
    let hint = "delete \(file.path) (that block is pruned again) or the whole checkpoint folder"
    do {
      let st = try SafetensorsFile(contentsOf: file)
      guard let json = st.metadata["records"],
        let records = try? decoder.decode([LayerRecord].self, from: Data(json.utf8))
      else { throw ModelPruningError.checkpoint("\(file.path) has no readable layer records", hint: hint) }
      var weights: [(String, Matrix<Float>)] = []
      for name in model.linearLayerNames(block: block) {
        let w = try st.matrix(name + ".weight", as: Float.self)
        let dense = try model.linearWeights(name).weight
        guard w.rows == dense.rows && w.columns == dense.columns else {
          throw ModelPruningError.checkpoint(
            "\(file.path): \(name) is \(w.shapeDescription), the model's is \(dense.shapeDescription)", hint: hint)
        }
        weights.append((name, w))
      }
      return (weights, records)
    } catch let e as ModelPruningError {
      throw e
    } catch let e as SafetensorsError {
      throw .checkpointFile(path: file.path, e, hint: hint)
    } catch let e as any PruneKitError {
      throw .checkpoint("\(file.path) is unreadable: \(e.message)", hint: hint)
    } catch {
      throw .checkpoint("\(file.path) is unreadable: \(error)", hint: hint)
    }
  }

  /// Deletes the folder (after the output is safely written): the block files first and run.json
  /// last, so a kill during the deletion leaves a checkpoint that still names its run (which
  /// `--resume` recognises and finishes removing), or an empty folder, never blocks without run.json.
  public func remove() { Self.remove(directory) }

  /// Deletes the checkpoint folder `directory` (if any) in the order of `remove()`.
  public static func remove(_ directory: URL) {
    let manager = FileManager.default
    // An output being built first (a streaming store's output/), so that no journal outlives it.
    try? manager.removeItem(at: directory.appendingPathComponent("output"))
    for name in (try? manager.contentsOfDirectory(atPath: directory.path)) ?? [] where name != "run.json" {
      try? manager.removeItem(at: directory.appendingPathComponent(name))
    }
    try? manager.removeItem(at: directory.appendingPathComponent("run.json"))
    try? manager.removeItem(at: directory)
  }

  private var decoder: JSONDecoder {
    let d = JSONDecoder()
    d.nonConformingFloatDecodingStrategy = .convertFromString(
      positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    return d
  }
}
