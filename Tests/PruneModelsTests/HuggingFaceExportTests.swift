import Foundation
import PruneKernels
import PruneModels
import PruneTestSupport
import Testing

/// `HuggingFaceExport.write` on the tiny golden models (LLaMA, OPT, GPT-2 as Hugging Face folders
/// with a 256-token byte tokenizer): prune a few layers, export, load the export back. Every check
/// is exact (bit patterns), because the export copies floats and never computes with them.
@Suite("Hugging Face export")
struct HuggingFaceExportTests {
  static let metadata = ["method": "test-zeros", "sparsity": "0.5"]

  /// A scratch folder holding `source/` (a copy of a tiny golden model with tokenizer files).
  static func workspace(_ name: String) throws -> (root: URL, source: URL) {
    let root = try ModelLoaderTests.scratch()
    let source = root.appendingPathComponent("source")
    let fm = FileManager.default
    try fm.createDirectory(at: source, withIntermediateDirectories: false)
    let golden = goldenFolder.appendingPathComponent(name)
    for file in ["config.json", "model.safetensors"] {
      try fm.copyItem(at: golden.appendingPathComponent(file), to: source.appendingPathComponent(file))
    }
    try ModelLoaderTests.byteTokenizerJSON().write(to: source.appendingPathComponent("tokenizer.json"))
    try Data("{\"tokenizer_class\": \"PreTrainedTokenizerFast\"}\n".utf8)
      .write(to: source.appendingPathComponent("tokenizer_config.json"))
    return (root, source)
  }

  /// Zeros about half of the weights of every layer of block 0 and of the first layer of the last
  /// block (a −0.0 among them, whose sign bit must survive too); returns the names changed.
  static func prune(_ model: inout TransformerLM, seed: UInt64) throws -> [String] {
    var rng = SplitMix64(seed: seed)
    let names = model.linearLayerNames(block: 0) + [model.linearLayerNames(block: model.blockCount - 1)[0]]
    for name in names {
      var w = try model.linearWeights(name).weight
      var elements = w.elements
      for i in elements.indices where rng.next() % 2 == 0 { elements[i] = 0 }
      elements[elements.count / 2] = -0.0
      w = Matrix(rows: w.rows, columns: w.columns, elements: elements)
      try model.setLinearWeight(name, w)
    }
    return names
  }

  static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

  /// Every linear layer (weight and bias) of `b` has the bit patterns of `a`'s.
  static func expectSameLinears(_ a: TransformerLM, _ b: TransformerLM, _ label: String) throws {
    #expect(a.blockCount == b.blockCount)
    for block in 0..<a.blockCount {
      for name in a.linearLayerNames(block: block) {
        let x = try a.linearWeights(name)
        let y = try b.linearWeights(name)
        #expect(bits(x.weight.elements) == bits(y.weight.elements), "\(label): \(name).weight")
        #expect(x.bias.map(bits) == y.bias.map(bits), "\(label): \(name).bias")
      }
    }
  }

  /// A lazily opened model whose pruned block is loaded and whose other blocks never were is
  /// written byte for byte as the eager model: the blocks not in memory are read from the source as
  /// they are written.
  @Test(arguments: [("llama-tiny", UInt64(21)), ("opt-tiny", 22), ("gpt2-tiny", 23)])
  func aLazyModelIsWrittenAsTheEagerOne(_ name: String, _ seed: UInt64) throws {
    let (root, source) = try Self.workspace(name)
    defer { try? FileManager.default.removeItem(at: root) }
    var eager = try LoadedModel(contentsOf: source).model
    var lazy = try LoadedModel(contentsOf: source, loading: .lazy).model
    // Block 0 pruned (half its weights zeroed), the others left as in the source.
    func pruneBlock0(_ model: inout TransformerLM) throws {
      var rng = SplitMix64(seed: seed)
      for layer in model.linearLayerNames(block: 0) {
        let w = try model.linearWeights(layer).weight
        var elements = w.elements
        for i in elements.indices where rng.next() % 2 == 0 { elements[i] = 0 }
        try model.setLinearWeight(layer, Matrix(rows: w.rows, columns: w.columns, elements: elements))
      }
    }
    try pruneBlock0(&eager)
    try lazy.loadBlock(0)
    try pruneBlock0(&lazy)
    #expect(lazy.blockCount >= 2 && (1..<lazy.blockCount).allSatisfy { !lazy.isBlockLoaded($0) })
    let a = root.appendingPathComponent("eager")
    let b = root.appendingPathComponent("lazy")
    try HuggingFaceExport.write(model: eager, source: source, to: a, metadata: Self.metadata)
    try HuggingFaceExport.write(model: lazy, source: source, to: b, metadata: Self.metadata)
    #expect(
      try Data(contentsOf: a.appendingPathComponent("model.safetensors"))
        == Data(contentsOf: b.appendingPathComponent("model.safetensors")), "\(name)")
  }

  @Test(arguments: [("llama-tiny", UInt64(11)), ("opt-tiny", 12), ("gpt2-tiny", 13)])
  func roundTripKeepsPrunedWeightsAndLogits(_ name: String, _ seed: UInt64) throws {
    let (root, source) = try Self.workspace(name)
    defer { try? FileManager.default.removeItem(at: root) }
    let loaded = try LoadedModel(contentsOf: source)
    var model = loaded.model
    let pruned = try Self.prune(&model, seed: seed)
    let out = root.appendingPathComponent("export")
    try HuggingFaceExport.write(model: model, source: source, to: out, metadata: Self.metadata)

    // Nothing but the two folders in the parent: the temporary folder was renamed away.
    #expect(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted() == ["export", "source"])
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
    for file in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
      #expect(
        try Data(contentsOf: out.appendingPathComponent(file)) == Data(contentsOf: source.appendingPathComponent(file)),
        "\(name): \(file) copied verbatim")
    }

    let reloaded = try LoadedModel(contentsOf: out)
    #expect(reloaded.format == .huggingFace(shards: 1))
    #expect(reloaded.model.config == model.config)
    try Self.expectSameLinears(model, reloaded.model, name)
    // The pruned layers really are the pruned ones (and not the source's dense weights).
    for layer in pruned {
      let w = try reloaded.model.linearWeights(layer).weight.elements
      #expect(w.filter { $0 == 0 }.count * 3 >= w.count, "\(name): \(layer) lost its zeros")
      #expect(w[w.count / 2].bitPattern == (-0.0 as Float).bitPattern, "\(name): \(layer): −0.0 kept")
    }
    var rng = SplitMix64(seed: seed ^ 0xA5A5)
    let ids = (0..<40).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
    let expected = try model.forward(ids)
    let found = try reloaded.model.forward(ids)
    #expect(Self.bits(expected.elements) == Self.bits(found.elements), "\(name): logits differ (seed \(seed))")

    // The file: F32, the source's names, every other tensor bit for bit the source's, the metadata.
    let file = try SafetensorsFile(contentsOf: out.appendingPathComponent("model.safetensors"))
    let original = try SafetensorsFile(contentsOf: source.appendingPathComponent("model.safetensors"))
    #expect(file.tensorNames == original.tensorNames)
    #expect(file.tensors.values.allSatisfy { $0.dtype == .F32 })
    #expect(file.metadata == Self.metadata.merging(["format": "pt"]) { a, _ in a })
    let linearNames = Set(
      (0..<model.blockCount).flatMap { model.linearLayerNames(block: $0) }
        .flatMap { [$0 + ".weight", $0 + ".bias"] })
    for tensor in original.tensorNames {
      #expect(file.shape(of: tensor) == original.shape(of: tensor), "\(name): \(tensor) shape")
      if !linearNames.contains(tensor) {
        #expect(
          Self.bits(try file.floatTensor(tensor).values) == Self.bits(try original.floatTensor(tensor).values),
          "\(name): \(tensor)")
      }
    }
    if name == "gpt2-tiny" {
      // Conv1D is written back as [in, out]: element (i, j) of the file is W[j, i].
      let layer = pruned[0]
      #expect(layer.hasSuffix("attn.c_attn"))
      let w = try model.linearWeights(layer).weight
      let stored = try file.floatTensor(layer + ".weight")
      #expect(stored.shape == [w.columns, w.rows])
      #expect(stored.values[5 * w.rows + 17].bitPattern == w[17, 5].bitPattern)
    }

    // Deterministic: a second export is byte for byte the first.
    let again = root.appendingPathComponent("again")
    try HuggingFaceExport.write(model: model, source: source, to: again, metadata: Self.metadata)
    for f in ["model.safetensors", "config.json"] {
      #expect(try Data(contentsOf: again.appendingPathComponent(f)) == Data(contentsOf: out.appendingPathComponent(f)))
    }
  }

  /// config.json names the dtype the tensors are written in (transformers' `dtype="auto"` loads
  /// in the type config.json names): only the value of `torch_dtype` / `dtype` changes, every other
  /// byte is the source's; a config naming the output's type already is written unchanged.
  @Test func configNamesTheWrittenDType() throws {
    let gguf = Data("{\n  \"rms_norm_eps\": 1e-05,\n  \"torch_dtype\": \"float32\",\n  \"use_cache\": true\n}\n".utf8)
    let asBF16 = ExportPlan.contents(of: "config.json", gguf, storedAs: .BF16)
    #expect(
      String(decoding: asBF16, as: UTF8.self)
        == "{\n  \"rms_norm_eps\": 1e-05,\n  \"torch_dtype\": \"bfloat16\",\n  \"use_cache\": true\n}\n")
    #expect(ExportPlan.contents(of: "config.json", gguf, storedAs: .F32) == gguf)
    #expect(ExportPlan.contents(of: "tokenizer_config.json", gguf, storedAs: .BF16) == gguf)
    let nested = Data(
      "{\"dtype\":\"bfloat16\",\"text_config\":{\"torch_dtype\" : \"bfloat16\"},\"name\":\"dtype\"}".utf8)
    #expect(
      String(decoding: ExportPlan.contents(of: "config.json", nested, storedAs: .F16), as: UTF8.self)
        == "{\"dtype\":\"float16\",\"text_config\":{\"torch_dtype\" : \"float16\"},\"name\":\"dtype\"}")
    let none = Data("{\"model_type\": \"llama\"}".utf8)
    #expect(ExportPlan.contents(of: "config.json", none, storedAs: .BF16) == none)

    // An export in BF16 of a float32 folder says bfloat16; everything else in config.json is kept.
    let (root, source) = try Self.workspace("llama-tiny")
    defer { try? FileManager.default.removeItem(at: root) }
    let model = try LoadedModel(contentsOf: source).model
    let out = root.appendingPathComponent("bf16")
    try HuggingFaceExport.write(
      model: model, source: source, to: out, metadata: Self.metadata, storage: OutputStorage(dtype: .BF16))
    let written = try String(contentsOf: out.appendingPathComponent("config.json"), encoding: .utf8)
    let original = try String(contentsOf: source.appendingPathComponent("config.json"), encoding: .utf8)
    #expect(original.contains("\"dtype\": \"float32\""))
    #expect(written == original.replacingOccurrences(of: "\"dtype\": \"float32\"", with: "\"dtype\": \"bfloat16\""))
  }

  @Test func shardedSourceGivesOneFileWithTheSameModel() throws {
    let source = try ModelLoaderTests.folder(sharded: true)
    let root = try ModelLoaderTests.scratch()
    defer {
      try? FileManager.default.removeItem(at: source)
      try? FileManager.default.removeItem(at: root)
    }
    let loaded = try LoadedModel(contentsOf: source)
    #expect(loaded.format == .huggingFace(shards: 2))
    var model = loaded.model
    _ = try Self.prune(&model, seed: 21)
    let out = root.appendingPathComponent("export")
    try HuggingFaceExport.write(model: model, source: source, to: out, metadata: [:])
    let reloaded = try LoadedModel(contentsOf: out)
    #expect(reloaded.format == .huggingFace(shards: 1))
    try Self.expectSameLinears(model, reloaded.model, "sharded")
    let ids = Array(0..<32).map { ($0 * 37) % 256 }
    #expect(Self.bits(try model.forward(ids).elements) == Self.bits(try reloaded.model.forward(ids).elements))
    #expect(
      try SafetensorsFile(contentsOf: out.appendingPathComponent("model.safetensors")).metadata == ["format": "pt"])
  }

  /// `write` must throw `check`'s error and leave the parent folder's listing as it was.
  static func expectFailure(
    _ model: TransformerLM, source: URL, to out: URL, _ check: (ExportError) -> Bool,
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    let parent = out.deletingLastPathComponent()
    let before = (try? FileManager.default.contentsOfDirectory(atPath: parent.path).sorted()) ?? []
    do {
      try HuggingFaceExport.write(model: model, source: source, to: out, metadata: [:])
      Issue.record("export to \(out.path) succeeded", sourceLocation: sourceLocation)
    } catch {
      #expect(check(error), "\(error)", sourceLocation: sourceLocation)
      #expect(
        error.description.contains("Hint:") && !error.description.contains("\n"), "\(error)",
        sourceLocation: sourceLocation)
    }
    let after = (try? FileManager.default.contentsOfDirectory(atPath: parent.path).sorted()) ?? []
    #expect(after == before, "partial export left in \(parent.path)", sourceLocation: sourceLocation)
  }

  @Test func failuresAreTypedAndLeaveNothingBehind() throws {
    let (root, source) = try Self.workspace("llama-tiny")
    defer { try? FileManager.default.removeItem(at: root) }
    let fm = FileManager.default
    let model = try LoadedModel(contentsOf: source).model

    // The destination exists: as a folder (its content untouched) and as a file; the source itself.
    let existing = root.appendingPathComponent("existing")
    try fm.createDirectory(at: existing, withIntermediateDirectories: false)
    try Data("keep".utf8).write(to: existing.appendingPathComponent("note.txt"))
    Self.expectFailure(model, source: source, to: existing) { $0 == .destinationExists(path: existing.path) }
    #expect(try fm.contentsOfDirectory(atPath: existing.path) == ["note.txt"])
    let file = root.appendingPathComponent("file.txt")
    try Data("x".utf8).write(to: file)
    Self.expectFailure(model, source: source, to: file) { $0 == .destinationExists(path: file.path) }
    Self.expectFailure(model, source: source, to: source) { $0 == .destinationExists(path: source.path) }

    // The parent is missing, or is a file.
    let orphan = root.appendingPathComponent("missing/export")
    Self.expectFailure(model, source: source, to: orphan) {
      if case .parentNotWritable = $0 { return true } else { return false }
    }
    Self.expectFailure(model, source: source, to: file.appendingPathComponent("export")) {
      if case .parentNotWritable = $0 { return true } else { return false }
    }
    if geteuid() != 0 {  // root writes into read-only folders
      let locked = root.appendingPathComponent("locked")
      try fm.createDirectory(at: locked, withIntermediateDirectories: false)
      try fm.setAttributes([.posixPermissions: 0o555], ofItemAtPath: locked.path)
      defer { try? fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: locked.path) }
      Self.expectFailure(model, source: source, to: locked.appendingPathComponent("export")) {
        if case .parentNotWritable = $0 { return true } else { return false }
      }
    }

    // The source is missing, is not a model file, or is a folder without config.json.
    let out = root.appendingPathComponent("export")
    let nowhere = root.appendingPathComponent("nowhere.gguf")
    Self.expectFailure(model, source: nowhere, to: out) {
      if case .sourceUnreadable(nowhere.path, _) = $0 { return true } else { return false }
    }
    Self.expectFailure(model, source: file, to: out) {
      if case .unsupportedSource(file.path, _) = $0 { return true } else { return false }
    }
    Self.expectFailure(model, source: existing, to: out) {
      if case .sourceUnreadable(_, let reason) = $0 { return reason.contains("config.json") } else { return false }
    }

    // The model is not the source's.
    let (otherRoot, opt) = try Self.workspace("opt-tiny")
    defer { try? fm.removeItem(at: otherRoot) }
    Self.expectFailure(model, source: opt, to: out) {
      if case .modelMismatch = $0 { return true } else { return false }
    }

    // A failure after the temporary folder was filled (a tokenizer file that cannot be read) removes it.
    try fm.removeItem(at: source.appendingPathComponent("tokenizer_config.json"))
    try fm.createDirectory(
      at: source.appendingPathComponent("tokenizer_config.json"), withIntermediateDirectories: false)
    Self.expectFailure(model, source: source, to: out) {
      if case .sourceUnreadable(let path, _) = $0 {
        return path.hasSuffix("tokenizer_config.json")
      } else {
        return false
      }
    }
    #expect(!fm.fileExists(atPath: out.path))
  }
}

/// The export of the real SmolLM2 GGUF: generated config.json and tokenizer.json, the same model
/// back from the folder. Without the model file the suite is reported as skipped, never as passed.
@Suite(.enabled(if: ModelFiles.hasSmolLM2, "SmolLM2 GGUF not fetched: run scripts/fetch-model.sh"))
struct HuggingFaceExportSmolLM2Tests {
  @Test func ggufExportReloadsToTheSameModelAndTokenizer() throws {
    let loaded = try LoadedModel(contentsOf: ModelFiles.smolLM2)
    var model = loaded.model
    let pruned = try HuggingFaceExportTests.prune(&model, seed: 135)
    let root = try ModelLoaderTests.scratch()
    defer { try? FileManager.default.removeItem(at: root) }
    let out = root.appendingPathComponent("smollm2-export")
    try HuggingFaceExport.write(model: model, source: ModelFiles.smolLM2, to: out, metadata: ["method": "test"])
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: out.path).sorted() == [
        "config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json",
        "tokenizer_config.json",
      ])

    let reloaded = try LoadedModel(contentsOf: out)
    #expect(reloaded.model.config == model.config)
    try HuggingFaceExportTests.expectSameLinears(model, reloaded.model, "SmolLM2")
    #expect(pruned.count == 8)
    // Tied: only the embedding is written; 272 tensors as in the GGUF.
    let file = try SafetensorsFile(contentsOf: out.appendingPathComponent("model.safetensors"))
    #expect(file.tensorNames.count == 272 && file.shape(of: "lm_head.weight") == nil)
    let gguf = try GGUFFile(contentsOf: ModelFiles.smolLM2)
    for name in ["model.embed_tokens.weight", "model.norm.weight", "model.layers.7.input_layernorm.weight"] {
      #expect(
        HuggingFaceExportTests.bits(try file.floatTensor(name).values)
          == HuggingFaceExportTests.bits(try gguf.floatTensor(name).values), "\(name)")
    }

    // The same logits, bit for bit, on a short text.
    let text =
      "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife."
    let ids = loaded.tokenizer.encode(text)
    #expect(reloaded.tokenizer.encode(text) == ids)
    #expect(
      HuggingFaceExportTests.bits(try model.forward(ids).elements)
        == HuggingFaceExportTests.bits(try reloaded.model.forward(ids).elements))

    // The rebuilt tokenizer.json gives transformers' ids on the golden samples (special tokens,
    // digits, whitespace runs, non-ASCII) and the GGUF tokenizer's ids on a chapter of Austen.
    let golden = try #require(
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: goldenFolder.appendingPathComponent("smollm2-golden.json"))) as? [String: Any])
    let samples = try #require(golden["tokenizer_samples"] as? [[String: Any]])
    #expect(samples.count == 9)
    for sample in samples {
      let text = try #require(sample["text"] as? String)
      let expected = try #require(sample["ids"] as? [NSNumber]).map(\.intValue)
      #expect(reloaded.tokenizer.encode(text) == expected, "\(text.debugDescription)")
    }
    let austen = String(decoding: try Corpus().data("prideprejudice.txt").prefix(40_000), as: UTF8.self)
    #expect(reloaded.tokenizer.encode(austen) == loaded.tokenizer.encode(austen))
    #expect(reloaded.tokenizer.specialTokenIds == loaded.tokenizer.specialTokenIds)

    // config.json carries what transformers needs for LlamaForCausalLM.
    let config = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json")))
        as? [String: Any])
    #expect(config["architectures"] as? [String] == ["LlamaForCausalLM"])
    #expect(config["model_type"] as? String == "llama" && config["torch_dtype"] as? String == "float32")
    #expect(config["num_key_value_heads"] as? Int == 3 && config["num_hidden_layers"] as? Int == 30)
    #expect(config["rope_theta"] as? Double == 100_000 && config["rms_norm_eps"] as? Double == 1e-5)
    #expect(config["bos_token_id"] as? Int == 1 && config["eos_token_id"] as? Int == 2)
    #expect(config["tie_word_embeddings"] as? Bool == true && config["hidden_act"] as? String == "silu")
  }
}
