// Loading a model and its tokenizer from what a user has on disk:
//
//   - a GGUF file (SmolLM2's Q4_1 GGUF): hyper-parameters, weights (dequantised, q/k rows
//     un-permuted to the Hugging Face layout) and the tokenizer all come from the one file;
//   - a Hugging Face folder: config.json, the weights in model.safetensors or sharded as
//     model-0000k-of-0000n.safetensors listed by model.safetensors.index.json, and tokenizer.json.

import Foundation

/// Why a model could not be loaded. Every description is one line naming the path, with a `Hint:`.
public enum ModelLoadError: PruneKitError, Equatable {
  /// The path does not exist.
  case notFound(path: String)
  /// A file that is not a GGUF (a folder is expected otherwise).
  case unrecognized(path: String)
  /// A Hugging Face folder lacks a file it needs.
  case missingFile(folder: String, file: String, hint: String)
  /// model.safetensors.index.json is not a `weight_map` of tensor → shard file.
  case invalidIndex(path: String, reason: String)
  /// A file was found but its reader rejected it (the reader's error names the file).
  case file(ModelFileError)
  /// tokenizer.json has more tokens than config.json's vocab_size.
  case vocabularyMismatch(folder: String, tokens: Int, vocabSize: Int)

  public var message: String {
    switch self {
    case .notFound(let path): return "model \(path): no such file or folder"
    case .unrecognized(let path): return "model \(path): not a GGUF file (it does not start with \"GGUF\")"
    case .missingFile(let folder, let file, _): return "model \(folder): no \(file)"
    case .invalidIndex(let path, let reason): return "model \(path): \(reason)"
    case .file(let e): return e.message
    case .vocabularyMismatch(let folder, let tokens, let vocabSize):
      return "model \(folder): tokenizer.json has \(tokens) tokens but config.json says vocab_size \(vocabSize)"
    }
  }

  public var hint: String? {
    switch self {
    case .notFound:
      return "give a .gguf file or a Hugging Face folder (config.json, model.safetensors, tokenizer.json);"
        + " scripts/fetch-model.sh fetches SmolLM2."
    case .unrecognized:
      return "give a .gguf file or the Hugging Face folder that holds config.json and model.safetensors."
    case .missingFile(_, _, let hint): return hint
    case .invalidIndex:
      return "the index of a sharded checkpoint is {\"weight_map\": {\"<tensor>\": \"<shard>.safetensors\", ...}};"
        + " re-export the checkpoint."
    case .file(let e): return e.hint
    case .vocabularyMismatch: return "the tokenizer belongs to a different model."
    }
  }
}

/// An error of one of the readers a model goes through (GGUF, safetensors, config.json,
/// tokenizer, the transformer's own checks of the weights), kept with its type so that an error
/// wrapping it (a model load, an export) adds its context and keeps the reader's hint.
public enum ModelFileError: PruneKitError, Equatable {
  case gguf(GGUFError)
  case safetensors(SafetensorsError)
  case config(ModelConfigError)
  case tokenizer(TokenizerError)
  case tensors(TensorSourceError)
  /// The weights do not fit the configuration (`TransformerLM`).
  case weights(ForwardError)
  /// An error of a type none of the cases above names, by its description (no reader throws one
  /// today; this keeps an unforeseen one readable instead of trapping).
  case other(String)

  /// `error` by its type.
  public init(_ error: any Error) {
    switch error {
    case let e as ModelFileError: self = e
    case let e as GGUFError: self = .gguf(e)
    case let e as SafetensorsError: self = .safetensors(e)
    case let e as ModelConfigError: self = .config(e)
    case let e as TokenizerError: self = .tokenizer(e)
    case let e as TensorSourceError: self = .tensors(e)
    case let e as ForwardError: self = .weights(e)
    default: self = .other(String(describing: error))
    }
  }

  /// The wrapped error.
  private var wrapped: (any PruneKitError)? {
    switch self {
    case .gguf(let e): return e
    case .safetensors(let e): return e
    case .config(let e): return e
    case .tokenizer(let e): return e
    case .tensors(let e): return e
    case .weights(let e): return e
    case .other: return nil
    }
  }

  public var message: String {
    if case .other(let text) = self { return text }
    return wrapped!.message
  }

  public var hint: String? { wrapped?.hint }
}

/// A language model ready to run, with the tokenizer that belongs to it.
public struct LoadedModel: Sendable {
  /// Where the model came from.
  public enum Format: Sendable, Equatable {
    /// A GGUF file.
    case gguf
    /// A Hugging Face folder whose weights are in `shards` safetensors files (1: model.safetensors).
    case huggingFace(shards: Int)
  }

  /// The model, float32 weights in memory (all of them, or read block by block: `WeightLoading`).
  public let model: TransformerLM
  /// Its tokenizer (GGUF metadata or tokenizer.json).
  public let tokenizer: BPETokenizer
  /// What was read.
  public let format: Format

  /// Loads a GGUF file or a Hugging Face folder; `loading` says when the model reads its weights.
  public init(contentsOf url: URL, loading: WeightLoading = .eager) throws(ModelLoadError) {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
      throw .notFound(path: url.path)
    }
    if isDirectory.boolValue {
      try self.init(folder: url, loading: loading)
    } else {
      try self.init(gguf: url, loading: loading)
    }
  }

  private init(gguf url: URL, loading: WeightLoading) throws(ModelLoadError) {
    guard let handle = FileHandle(forReadingAtPath: url.path) else { throw .notFound(path: url.path) }
    let magic = handle.readData(ofLength: 4)
    try? handle.close()
    guard magic == Data("GGUF".utf8) else { throw .unrecognized(path: url.path) }
    do {
      let file = try GGUFFile(contentsOf: url)
      let config = try ForwardConfig(.llama(try file.llamaConfig()))
      model = try TransformerLM(config: config, weights: file, loading: loading)
      tokenizer = try BPETokenizer(gguf: file)
      format = .gguf
    } catch {
      throw .file(ModelFileError(error))
    }
  }

  private init(folder url: URL, loading: WeightLoading) throws(ModelLoadError) {
    let manager = FileManager.default
    let configURL = url.appendingPathComponent("config.json")
    guard manager.fileExists(atPath: configURL.path) else {
      throw .missingFile(
        folder: url.path, file: "config.json",
        hint: "a Hugging Face model folder holds config.json, the weights and tokenizer.json.")
    }
    let (weights, shards) = try Self.weights(inFolder: url)
    let tokenizerURL = url.appendingPathComponent("tokenizer.json")
    guard manager.fileExists(atPath: tokenizerURL.path) else {
      throw .missingFile(
        folder: url.path, file: "tokenizer.json",
        hint:
          "save the tokenizer next to the model (tokenizer.save_pretrained); vocab.json + merges.txt alone are not read."
      )
    }
    do {
      model = try TransformerLM(config: try ForwardConfig(contentsOf: configURL), weights: weights, loading: loading)
      tokenizer = try BPETokenizer(contentsOf: tokenizerURL)
    } catch {
      throw .file(ModelFileError(error))
    }
    guard tokenizer.vocabularySize <= model.config.vocabSize else {
      throw .vocabularyMismatch(folder: url.path, tokens: tokenizer.vocabularySize, vocabSize: model.config.vocabSize)
    }
    format = .huggingFace(shards: shards)
  }

  /// The weights of a Hugging Face folder: model.safetensors, or the shards that
  /// model.safetensors.index.json lists; and the number of files.
  package static func weights(inFolder url: URL) throws(ModelLoadError) -> (any TensorSource, shards: Int) {
    let manager = FileManager.default
    let single = url.appendingPathComponent("model.safetensors")
    let index = url.appendingPathComponent("model.safetensors.index.json")
    if manager.fileExists(atPath: single.path) {
      do {
        return (try SafetensorsFile(contentsOf: single), 1)
      } catch {
        throw .file(.safetensors(error))
      }
    } else if manager.fileExists(atPath: index.path) {
      let sharded = try ShardedSafetensors(index: index)
      return (sharded, sharded.shardCount)
    }
    throw .missingFile(
      folder: url.path, file: "model.safetensors or model.safetensors.index.json",
      hint: "export the weights as safetensors (PyTorch .bin files are not read).")
  }
}

/// The tensors of a sharded safetensors checkpoint: model.safetensors.index.json maps each tensor
/// name to the shard file that holds it; each shard's header is read and validated on open, its
/// tensors when they are decoded.
public struct ShardedSafetensors: TensorSource {
  /// The index file.
  public let path: String
  /// Tensor name → index into `shards`.
  private let location: [String: Int]
  private let shards: [SafetensorsFile]

  /// Number of shard files.
  public var shardCount: Int { shards.count }

  /// Opens the shards listed by the index file at `index`. Every tensor the index names must be in
  /// its shard with that name.
  public init(index: URL) throws(ModelLoadError) {
    path = index.path
    let object: Any
    let data: Data
    do { data = try InputFiles.read(index) } catch {
      throw .invalidIndex(path: index.path, reason: "cannot read it (\(error.reason))")
    }
    do { object = try JSONSerialization.jsonObject(with: data) } catch {
      throw .invalidIndex(path: index.path, reason: "not valid JSON (\(jsonErrorReason(error)))")
    }
    guard let map = (object as? [String: Any])?["weight_map"] as? [String: Any], !map.isEmpty else {
      throw .invalidIndex(path: index.path, reason: "no 'weight_map' object")
    }
    var files: [String: Int] = [:]
    var shards: [SafetensorsFile] = []
    var location: [String: Int] = [:]
    let folder = index.deletingLastPathComponent()
    for name in map.keys.sorted() {
      guard let file = map[name] as? String, !file.isEmpty, !file.contains("/") else {
        throw .invalidIndex(path: index.path, reason: "the shard of '\(name)' is not a file name")
      }
      if files[file] == nil {
        do {
          shards.append(try SafetensorsFile(contentsOf: folder.appendingPathComponent(file)))
        } catch {
          throw .file(.safetensors(error))
        }
        files[file] = shards.count - 1
      }
      let s = files[file]!
      guard shards[s].shape(of: name) != nil else {
        throw .invalidIndex(path: index.path, reason: "'\(name)' is not in its shard \(file)")
      }
      location[name] = s
    }
    self.location = location
    self.shards = shards
  }

  public var tensorNames: [String] { location.keys.sorted() }

  public func shape(of name: String) -> [Int]? { location[name].flatMap { shards[$0].shape(of: name) } }

  public func storedType(of name: String) -> StoredFloatType? {
    location[name].flatMap { shards[$0].storedType(of: name) }
  }

  public func floatTensor(_ name: String) throws -> FloatTensor {
    guard let s = location[name] else { throw TensorSourceError.missingTensor(name: name, source: path) }
    return try shards[s].floatTensor(name)
  }

  public func floatRows(_ name: String, rows: Range<Int>) throws -> FloatTensor {
    guard let s = location[name] else { throw TensorSourceError.missingTensor(name: name, source: path) }
    return try shards[s].floatRows(name, rows: rows)
  }

  public func readsRowRanges(of name: String) -> Bool {
    location[name].map { shards[$0].readsRowRanges(of: name) } ?? false
  }
}
