// Writes a (pruned) model as a Hugging Face folder that transformers and `LoadedModel` load:
//
//   config.json            copied from a Hugging Face source; generated for a GGUF (LlamaForCausalLM)
//   model.safetensors      F32 (or BF16/F16, `OutputStorage`; in shards with model.safetensors.index.json
//                          beyond the shard size, 5 GB by default: ShardedSafetensorsWriter). Every block linear layer (weight and bias) from the model in memory,
//                          i.e. the pruned weights with their exact zeros; every other tensor
//                          (embeddings, norms, positions, the head when untied) from the source
//                          checkpoint under its Hugging Face name. GPT-2's Conv1D weights go back to
//                          the file's [in, out] layout (c_attn stays fused).
//   tokenizer files        copied from a Hugging Face source; for a GGUF, tokenizer.json (byte-level
//                          BPE: vocabulary, merges, added tokens, Digits + ByteLevel pre-tokenizer),
//                          tokenizer_config.json, special_tokens_map.json and generation_config.json
//                          are rebuilt from the metadata.
//
// The folder is assembled in a hidden sibling (`.NAME.export-…`) and renamed into place, so a
// reader never sees half an export, and on any error nothing is left behind. The destination must
// not exist; the source is only read.

import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Why a model could not be exported. Every description is one line naming the path, with a `Hint:`.
public enum ExportError: PruneKitError, Equatable {
  /// The destination already exists (a folder, a file or a link).
  case destinationExists(path: String)
  /// The folder that would hold the destination is missing, not a folder, or not writable.
  case parentNotWritable(path: String, reason: String)
  /// The source checkpoint could not be read.
  case sourceUnreadable(path: String, reason: String)
  /// A reader rejected the source checkpoint (its config, weights, GGUF metadata or tokenizer).
  case source(path: String, ModelLoadError)
  /// The source is readable but cannot be exported (an architecture, tokenizer or dtype).
  case unsupportedSource(path: String, what: String)
  /// The model in memory is not the one of the source (configuration, tensor names or shapes).
  case modelMismatch(source: String, reason: String)
  /// Writing a file or renaming the folder failed.
  case writeFailed(path: String, reason: String)

  public var message: String {
    switch self {
    case .destinationExists(let path): return "export \(path): it already exists"
    case .parentNotWritable(let path, let reason): return "export: cannot create a folder in \(path) (\(reason))"
    case .sourceUnreadable(let path, let reason): return "export: cannot read the source model \(path): \(reason)"
    case .source(let path, let e): return "export: cannot read the source model \(path): \(e.message)"
    case .unsupportedSource(let path, let what): return "export: \(path): \(what)"
    case .modelMismatch(let source, let reason): return "export: the model does not belong to \(source): \(reason)"
    case .writeFailed(let path, let reason): return "export: writing \(path) failed (\(reason))"
    }
  }

  public var hint: String? {
    switch self {
    case .destinationExists: return "choose a new folder name (an export never writes over an existing path)."
    case .parentNotWritable: return "the parent folder must exist and be writable."
    case .sourceUnreadable: return "give the .gguf file or Hugging Face folder the model was loaded from."
    case .source(_, let e): return e.hint ?? "give the .gguf file or Hugging Face folder the model was loaded from."
    case .unsupportedSource:
      return
        "PruneKit exports LLaMA-family GGUFs with a byte-level BPE tokenizer and Hugging Face llama, opt and gpt2 folders."
    case .modelMismatch: return "pass the checkpoint the pruned model was loaded from."
    case .writeFailed: return "check free disk space and permissions; no partial folder was left behind."
    }
  }
}

/// Writes pruned models as Hugging Face folders.
public enum HuggingFaceExport {
  /// Writes a Hugging Face model folder at `directory` (which must not exist yet): config.json, model.safetensors
  /// (F32; every block linear layer taken from `model` — i.e. the pruned weights, exact zeros preserved; every
  /// other tensor — embeddings, norms, positions, head if untied — from the original checkpoint at `source`),
  /// and the tokenizer files (tokenizer.json, tokenizer_config.json, special_tokens_map.json if available, generation_config.json optional).
  /// `metadata` goes into the safetensors header's __metadata__. Written atomically: into a temporary sibling folder, then renamed.
  /// Never writes over `source`.
  ///
  /// `source` is a GGUF file or a Hugging Face folder (what `LoadedModel(contentsOf:)` reads). From a
  /// folder, config.json and the tokenizer files present (tokenizer.json, tokenizer_config.json,
  /// special_tokens_map.json, generation_config.json, vocab.json, merges.txt, added_tokens.json,
  /// chat_template.jinja) are copied byte for byte, and every tensor of its safetensors (one file or
  /// sharded) keeps its name, converted to the storage's dtype (F32 by default: exact from F32, F16 and BF16); config.json's
  /// `torch_dtype` is set to that dtype (`ExportPlan.contents`), so transformers loads what was written. With tied embeddings
  /// only the embedding is written. The header's `format` is always "pt": transformers refuses
  /// other values.
  public static func write(
    model: TransformerLM, source: URL, to directory: URL, metadata: [String: String], storage: OutputStorage = .f32
  ) throws(ExportError) {
    let destination = directory.standardizedFileURL
    let manager = FileManager.default
    if manager.fileExists(atPath: destination.path)
      || (try? manager.destinationOfSymbolicLink(atPath: destination.path)) != nil
    {
      throw .destinationExists(path: destination.path)
    }
    let parent = destination.deletingLastPathComponent()
    var isDirectory: ObjCBool = false
    guard manager.fileExists(atPath: parent.path, isDirectory: &isDirectory) else {
      throw .parentNotWritable(path: parent.path, reason: "no such folder")
    }
    guard isDirectory.boolValue else { throw .parentNotWritable(path: parent.path, reason: "it is not a folder") }
    guard access(parent.path, W_OK) == 0 else {
      throw .parentNotWritable(path: parent.path, reason: String(cString: strerror(errno)))
    }

    // Everything that can be checked is checked before the first byte is written.
    let plan = try ExportPlan(model: model, source: source)
    do throws(FolderWriteError<ExportError>) {
      try AtomicOutput.writeFolder(destination, name: .export, replacing: false) { (folder: URL) throws(ExportError) in
        try write(plan, metadata: metadata, storage: storage, into: folder, naming: destination)
      }
    } catch {
      switch error {
      case .create(let folder, let reason): throw .parentNotWritable(path: folder, reason: reason)
      case .fill(let e): throw e
      case .refused(let e): throw .writeFailed(path: e.path, reason: e.reason)
      case .move(let reason, let exists):
        throw exists ? .destinationExists(path: destination.path) : .writeFailed(path: destination.path, reason: reason)
      }
    }
  }

  /// Writes the files of `plan` (model.safetensors with `metadata` in its header, then the
  /// tokenizer and config files) into `folder`, which the caller renames into place as `final`
  /// once everything is written (errors name the files of `final`).
  package static func write(
    _ plan: ExportPlan, metadata: [String: String], storage: OutputStorage = .f32, into folder: URL, naming final: URL
  )
    throws(ExportError)
  {
    var header = metadata
    header["format"] = "pt"
    try writeSafetensors(plan.tensors, metadata: header, storage: storage, into: folder, naming: final)
    for file in plan.files {
      let data: Data
      do { data = try file.contents.data() } catch {
        throw ExportError.sourceUnreadable(path: error.path, reason: error.reason)
      }
      do {
        try ExportPlan.contents(of: file.name, data, storedAs: storage.dtype)
          .write(to: folder.appendingPathComponent(file.name))
      } catch {
        throw ExportError.writeFailed(
          path: final.appendingPathComponent(file.name).path, reason: OutputSafety.reason(error))
      }
    }
  }

  /// Streams the tensors into the safetensors shards of `storage` (one tensor in memory at a time)
  /// in `folder`, plus the index when there is more than one shard. `final` is the folder the
  /// files will be in once it is in place (for messages).
  static func writeSafetensors(
    _ tensors: [ExportPlan.Tensor], metadata: [String: String], storage: OutputStorage, into folder: URL,
    naming final: URL
  ) throws(ExportError) {
    let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
    let layout: SafetensorsShardLayout
    do {
      layout = try SafetensorsShardLayout(
        SafetensorsShardLayout.modelOrder(tensors.map(\.name)).map { ($0, storage.dtype, byName[$0]!.shape) },
        maxShardBytes: storage.maxShardBytes, metadata: metadata)
    } catch {
      throw .modelMismatch(source: "the model", reason: error.message)
    }
    func failure(_ error: SafetensorsError) -> ExportError {
      switch error {
      case .writeFailed(let path, let reason), .unreadable(let path, let reason):
        let name = URL(fileURLWithPath: path).lastPathComponent
        return .writeFailed(path: final.appendingPathComponent(name).path, reason: reason)
      default: return .modelMismatch(source: "the model", reason: error.message)
      }
    }
    let writer: ShardedSafetensorsWriter
    do { writer = try ShardedSafetensorsWriter.create(layout, in: folder) } catch { throw failure(error) }
    defer { writer.close() }
    for name in layout.order {
      let tensor = byName[name]!
      let values = try tensor.values()
      guard values.count == tensor.shape.reduce(1, *) else {
        throw .modelMismatch(
          source: tensor.origin, reason: "'\(name)' has \(values.count) values for shape \(tensor.shape)")
      }
      do { try writer.write(name, values) } catch { throw failure(error) }
    }
    do {
      try writer.synchronize()
      try writer.writeIndex()
    } catch {
      throw failure(error)
    }
  }
}

/// How an export stores its tensors: the dtype (F32, BF16 or F16) and the shard size limit.
public struct OutputStorage: Sendable, Equatable {
  /// The dtype every tensor is written in.
  public var dtype: SafetensorsDType
  /// The largest shard, in bytes of tensor data (`SafetensorsShardLayout`).
  public var maxShardBytes: Int

  /// F32 in shards of 5 GB (transformers' default): one model.safetensors for models under 1.25B
  /// parameters.
  public static let f32 = OutputStorage(dtype: .F32, maxShardBytes: SafetensorsShardLayout.defaultMaxShardBytes)

  public init(dtype: SafetensorsDType, maxShardBytes: Int = SafetensorsShardLayout.defaultMaxShardBytes) {
    self.dtype = dtype
    self.maxShardBytes = maxShardBytes
  }
}

/// What an export writes: the small files and the tensors, each tensor read only when it is written.
package struct ExportPlan {
  package struct Tensor {
    package var name: String
    package var shape: [Int]
    /// Where the values come from, for messages.
    package var origin: String
    package var values: () throws(ExportError) -> [Float]
  }

  package enum Contents {
    case bytes(Data)
    case copy(URL)

    /// The bytes: as held, or read from the file copied.
    package func data() throws(InputFileError) -> Data {
      switch self {
      case .bytes(let d): return d
      case .copy(let from): return try InputFiles.read(from)
      }
    }
  }

  package var files: [(name: String, contents: Contents)] = []
  package var tensors: [Tensor] = []

  /// The bytes written for the small file `name` holding `data`, when the tensors are stored as
  /// `dtype`: config.json names the float type of the weights (`torch_dtype`, or `dtype` as
  /// transformers 4.56 and later write it), and `from_pretrained(dtype="auto")` loads in that type,
  /// so its value becomes the output's ("float32", "bfloat16", "float16"). Only the value's
  /// characters change; every other byte is kept, and a config that already names the output's
  /// type, or names none, is returned as it is. Other files are returned unchanged.
  package static func contents(of name: String, _ data: Data, storedAs dtype: SafetensorsDType) -> Data {
    guard name == "config.json", let text = String(data: data, encoding: .utf8) else { return data }
    let torchName: String
    switch dtype {
    case .BF16: torchName = "bfloat16"
    case .F16: torchName = "float16"
    default: torchName = "float32"
    }
    let floatType =
      #/"(?<key>torch_dtype|dtype)"(?<colon>\s*:\s*)"(?:float32|float16|bfloat16|float|half|double|float64)"/#
    let rewritten = text.replacing(floatType) { m in "\"\(m.key)\"\(m.colon)\"\(torchName)\"" }
    return rewritten == text ? data : Data(rewritten.utf8)
  }

  /// The files a Hugging Face source contributes unchanged, when present.
  static let copiedFiles = [
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja",
  ]

  package init(model: TransformerLM, source: URL) throws(ExportError) {
    let manager = FileManager.default
    var isDirectory: ObjCBool = false
    guard manager.fileExists(atPath: source.path, isDirectory: &isDirectory) else {
      throw .sourceUnreadable(path: source.path, reason: "no such file or folder")
    }
    let weights: any TensorSource
    let sourceConfig: ForwardConfig
    if isDirectory.boolValue {
      let configURL = source.appendingPathComponent("config.json")
      guard manager.fileExists(atPath: configURL.path) else {
        throw .sourceUnreadable(path: source.path, reason: "the folder has no config.json")
      }
      do {
        sourceConfig = try ForwardConfig(contentsOf: configURL)
      } catch {
        throw .source(path: configURL.path, .file(.config(error)))
      }
      do {
        weights = try LoadedModel.weights(inFolder: source).0
      } catch {
        throw .source(path: source.path, error)
      }
      for name in Self.copiedFiles where manager.fileExists(atPath: source.appendingPathComponent(name).path) {
        files.append((name, .copy(source.appendingPathComponent(name))))
      }
    } else {
      guard let handle = FileHandle(forReadingAtPath: source.path) else {
        throw .sourceUnreadable(path: source.path, reason: "cannot open the file")
      }
      let magic = handle.readData(ofLength: 4)
      try? handle.close()
      guard magic == Data("GGUF".utf8) else {
        throw .unsupportedSource(path: source.path, what: "the file is not a GGUF (nor is it a Hugging Face folder)")
      }
      let gguf: GGUFFile
      do {
        gguf = try GGUFFile(contentsOf: source)
      } catch {
        throw .source(path: source.path, .file(ModelFileError(error)))
      }
      let llama: LlamaConfig
      do {
        llama = try gguf.llamaConfig()
        sourceConfig = try ForwardConfig(.llama(llama))
      } catch {
        throw .source(path: source.path, .file(ModelFileError(error)))
      }
      weights = gguf
      files = try GGUFHuggingFaceFiles.files(gguf, config: llama).map { ($0.name, .bytes($0.data)) }
    }
    guard sourceConfig == model.config else {
      throw .modelMismatch(
        source: source.path,
        reason: "its configuration differs from the model's (\(Self.difference(sourceConfig, model.config)))")
    }
    try addTensors(model: model, weights: weights, origin: source.path)
  }

  /// The first differing field of two configurations, for messages.
  static func difference(_ a: ForwardConfig, _ b: ForwardConfig) -> String {
    for (label, x, y) in [
      ("architecture", "\(a.architecture)", "\(b.architecture)"), ("hidden size", "\(a.hiddenSize)", "\(b.hiddenSize)"),
      ("layers", "\(a.layerCount)", "\(b.layerCount)"), ("heads", "\(a.headCount)", "\(b.headCount)"),
      ("intermediate size", "\(a.intermediateSize)", "\(b.intermediateSize)"),
      ("vocabulary", "\(a.vocabSize)", "\(b.vocabSize)"),
    ] where x != y {
      return "\(label) \(x) in the source, \(y) in the model"
    }
    return "hyper-parameters differ"
  }

  /// The block linear layers from the model, everything else from `weights`. A block the model
  /// has not loaded (a lazily opened model) is read from the model's source when it is written.
  private mutating func addTensors(model: TransformerLM, weights: any TensorSource, origin: String) throws(ExportError)
  {
    let conv1D = model.config.architecture == .gpt2
    var fromModel = Set<String>()
    for block in 0..<model.blockCount {
      if !model.isBlockLoaded(block) {
        for layer in model.linearLayerNames(block: block) {
          try addUnloaded(layer, model: model, weights: weights, origin: origin)
          fromModel.insert(layer + ".weight")
          if model.linearHasBias(layer) { fromModel.insert(layer + ".bias") }
        }
        continue
      }
      for layer in model.linearLayerNames(block: block) {
        let linear: LinearWeights
        do {
          linear = try model.linearWeights(layer)
        } catch {
          throw .modelMismatch(source: origin, reason: error.message)
        }
        let w = linear.weight
        let shape = conv1D ? [w.columns, w.rows] : [w.rows, w.columns]
        guard weights.shape(of: layer + ".weight") == shape else {
          let found = weights.shape(of: layer + ".weight").map { "\($0)" } ?? "absent"
          throw .modelMismatch(
            source: origin, reason: "'\(layer).weight' is \(found) in the source, \(shape) in the model")
        }
        tensors.append(
          Tensor(name: layer + ".weight", shape: shape, origin: "the model") {
            conv1D ? w.transposed().elements : w.elements
          })
        fromModel.insert(layer + ".weight")
        if let bias = linear.bias {
          guard weights.shape(of: layer + ".bias") == [bias.count] else {
            throw .modelMismatch(source: origin, reason: "'\(layer).bias' of the model is not in the source")
          }
          tensors.append(Tensor(name: layer + ".bias", shape: [bias.count], origin: "the model") { bias })
          fromModel.insert(layer + ".bias")
        }
      }
    }
    try addRest(model: model, weights: weights, origin: origin, fromModel: fromModel)
  }

  /// Linear layer `layer` of a block the model has not loaded: its shapes checked now, its values
  /// read from the model's source when written.
  private mutating func addUnloaded(_ layer: String, model: TransformerLM, weights: any TensorSource, origin: String)
    throws(ExportError)
  {
    let conv1D = model.config.architecture == .gpt2
    let out: Int
    let shape: [Int]
    do {
      let s = try model.linearShape(layer)
      out = s[0]
      shape = conv1D ? [s[1], s[0]] : s
    } catch {
      throw .modelMismatch(source: origin, reason: error.message)
    }
    guard weights.shape(of: layer + ".weight") == shape else {
      let found = weights.shape(of: layer + ".weight").map { "\($0)" } ?? "absent"
      throw .modelMismatch(source: origin, reason: "'\(layer).weight' is \(found) in the source, \(shape) in the model")
    }
    tensors.append(
      Tensor(name: layer + ".weight", shape: shape, origin: "the model") { () throws(ExportError) in
        do throws(ForwardError) {
          let w = try model.readLinearWeights(layer).weight
          return conv1D ? w.transposed().elements : w.elements
        } catch {
          throw .modelMismatch(source: origin, reason: error.message)
        }
      })
    if model.linearHasBias(layer) {
      guard weights.shape(of: layer + ".bias") == [out] else {
        throw .modelMismatch(source: origin, reason: "'\(layer).bias' of the model is not in the source")
      }
      tensors.append(
        Tensor(name: layer + ".bias", shape: [out], origin: "the model") { () throws(ExportError) in
          do throws(ForwardError) { return try model.readLinearBias(layer) ?? [] } catch {
            throw .modelMismatch(source: origin, reason: error.message)
          }
        })
    }
  }

  /// Every tensor of `weights` that is not a block linear layer (`fromModel`), the tied head left out.
  private mutating func addRest(model: TransformerLM, weights: any TensorSource, origin: String, fromModel: Set<String>)
    throws(ExportError)
  {
    let tied = model.config.tieWordEmbeddings ?? !weights.tensorNames.contains("lm_head.weight")
    for name in weights.tensorNames where !fromModel.contains(name) && !(tied && name == "lm_head.weight") {
      guard let shape = weights.shape(of: name) else { continue }
      if let file = weights as? SafetensorsFile, let dtype = file.rawDType(of: name), !dtype.isDecodable {
        throw .unsupportedSource(
          path: origin, what: "tensor '\(name)' is \(dtype.rawValue), which cannot be converted to F32")
      }
      tensors.append(
        Tensor(name: name, shape: shape, origin: origin) { () throws(ExportError) in
          do {
            return try weights.floatTensor(name).values
          } catch {
            throw .source(path: origin, .file(ModelFileError(error)))
          }
        })
    }
  }
}
