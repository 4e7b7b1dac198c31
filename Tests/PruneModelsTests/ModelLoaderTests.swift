import Foundation
import PruneKernels
import PruneModels
import Testing

/// `LoadedModel` on Hugging Face folders (one file and sharded) built from the tiny golden LLaMA
/// with a byte-level tokenizer.json of 256 tokens (one per byte, no merges: it fits vocab_size 256),
/// and its typed errors.
@Suite("Model loading")
struct ModelLoaderTests {
  static let tiny = goldenFolder.appendingPathComponent("llama-tiny")

  /// GPT-2's byte → character table (bytes 33–126, 161–172, 174–255 map to themselves, the rest to
  /// U+0100 onwards in order), written out independently of the tokenizer's own copy.
  static func byteTokenizerJSON() throws -> Data {
    var vocab: [String: Int] = [:]
    var next = 256
    for b in 0..<256 {
      let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
      let scalar = Unicode.Scalar(UInt32(printable ? b : next))!
      if !printable { next += 1 }
      vocab[String(Character(scalar))] = b
    }
    let json: [String: Any] = [
      "version": "1.0", "added_tokens": [] as [Any], "normalizer": NSNull(),
      "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
      "model": ["type": "BPE", "vocab": vocab, "merges": [] as [String]],
    ]
    return try JSONSerialization.data(withJSONObject: json)
  }

  static func scratch() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunekit-model-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
  }

  /// A folder with config.json, tokenizer.json and, unless `sharded`, model.safetensors; when
  /// sharded, the tensors split over two shards (alternating by sorted name) with an index.
  static func folder(sharded: Bool) throws -> URL {
    let dir = try scratch()
    let fm = FileManager.default
    try fm.copyItem(at: tiny.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
    try byteTokenizerJSON().write(to: dir.appendingPathComponent("tokenizer.json"))
    if !sharded {
      try fm.copyItem(
        at: tiny.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
      return dir
    }
    let source = try SafetensorsFile(contentsOf: tiny.appendingPathComponent("model.safetensors"))
    var writers = [SafetensorsWriter(), SafetensorsWriter()]
    var map: [String: String] = [:]
    for (i, name) in source.tensorNames.enumerated() {
      let t = try source.floatTensor(name)
      try writers[i % 2].add(name, shape: t.shape, .f32(t.values))
      map[name] = "model-0000\(i % 2 + 1)-of-00002.safetensors"
    }
    for (i, w) in writers.enumerated() {
      try w.write(to: dir.appendingPathComponent("model-0000\(i + 1)-of-00002.safetensors"))
    }
    let index = try JSONSerialization.data(
      withJSONObject: ["metadata": [:] as [String: Any], "weight_map": map] as [String: Any])
    try index.write(to: dir.appendingPathComponent("model.safetensors.index.json"))
    return dir
  }

  @Test func folderAndShardedFolderGiveTheGoldenModel() throws {
    let golden = try GoldenModel("llama-tiny")
    let reference = try golden.model.negativeLogLikelihood(golden.inputIDs)
    for sharded in [false, true] {
      let dir = try Self.folder(sharded: sharded)
      defer { try? FileManager.default.removeItem(at: dir) }
      let loaded = try LoadedModel(contentsOf: dir)
      #expect(loaded.format == .huggingFace(shards: sharded ? 2 : 1))
      #expect(try loaded.model.negativeLogLikelihood(golden.inputIDs) == reference, "sharded \(sharded)")
      // The byte tokenizer maps each byte of the text to its own id; the text round-trips.
      let text = "It is a truth universally acknowledged.\n"
      let ids = Perplexity.tokenize(text, with: loaded.tokenizer)
      #expect(ids == Array(text.utf8).map(Int.init))
      #expect(try loaded.tokenizer.decode(ids) == text)
    }
  }

  static func expectError(_ url: URL, _ check: (ModelLoadError) -> Bool) {
    do {
      _ = try LoadedModel(contentsOf: url)
      Issue.record("\(url.path) loaded")
    } catch {
      #expect(check(error), "\(error)")
      #expect(error.description.contains("Hint:") && !error.description.contains("\n"), "\(error)")
    }
  }

  @Test func missingPiecesAreTypedErrors() throws {
    Self.expectError(URL(fileURLWithPath: "/nonexistent/model.gguf")) {
      $0 == .notFound(path: "/nonexistent/model.gguf")
    }
    let dir = try Self.folder(sharded: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let fm = FileManager.default

    // An index that places a tensor in the wrong shard.
    let indexURL = dir.appendingPathComponent("model.safetensors.index.json")
    let index = try Data(contentsOf: indexURL)
    var object = try #require(try JSONSerialization.jsonObject(with: index) as? [String: Any])
    var map = try #require(object["weight_map"] as? [String: String])
    let name = "model.embed_tokens.weight"
    map[name] =
      map[name] == "model-00001-of-00002.safetensors"
      ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors"
    object["weight_map"] = map
    try JSONSerialization.data(withJSONObject: object).write(to: indexURL)
    Self.expectError(dir) {
      guard case .invalidIndex(_, let reason) = $0 else { return false }
      return reason.contains(name)
    }
    try index.write(to: indexURL)
    #expect(throws: Never.self) { _ = try LoadedModel(contentsOf: dir) }

    // A missing shard: the safetensors reader's message.
    try fm.moveItem(
      at: dir.appendingPathComponent("model-00002-of-00002.safetensors"), to: dir.appendingPathComponent("moved"))
    Self.expectError(dir) {
      guard case .file(.safetensors(let e)) = $0 else { return false }
      return e.description.contains("model-00002-of-00002.safetensors")
    }
    try fm.removeItem(at: indexURL)
    Self.expectError(dir) {
      guard case .missingFile(_, let file, _) = $0 else { return false }
      return file.contains("model.safetensors")
    }
    try fm.copyItem(
      at: Self.tiny.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
    try fm.removeItem(at: dir.appendingPathComponent("tokenizer.json"))
    Self.expectError(dir) {
      guard case .missingFile(_, "tokenizer.json", _) = $0 else { return false }
      return true
    }
    try fm.removeItem(at: dir.appendingPathComponent("config.json"))
    Self.expectError(dir) {
      guard case .missingFile(_, "config.json", _) = $0 else { return false }
      return true
    }
    // A file that is not a GGUF.
    Self.expectError(dir.appendingPathComponent("model.safetensors")) {
      $0 == .unrecognized(path: dir.appendingPathComponent("model.safetensors").path)
    }
  }
}
