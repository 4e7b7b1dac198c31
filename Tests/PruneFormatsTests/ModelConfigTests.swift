import Foundation
import PruneFormats
import PruneTestSupport
import Testing

@Suite struct ModelConfigTests {
  static func parse(_ json: String) throws -> ModelConfig {
    try ModelConfig(json: Data(json.utf8), source: "test.json")
  }

  // The tiny golden models' configs live in the shared folder; without it these are skipped.
  @Test(.enabled(if: ModelFiles.hasTinyConfigs, "needs shared/golden/{llama,opt,gpt2}-tiny/config.json"))
  func tinyLlamaConfig() throws {
    let url = try #require(ModelFiles.sharedFile("golden/llama-tiny"))
    guard case .llama(let c) = try ModelConfig(contentsOf: url) else {
      Issue.record("llama-tiny is not a llama config")
      return
    }
    #expect(c.modelType == "llama" && c.hiddenSize == 64 && c.intermediateSize == 160 && c.numHiddenLayers == 2)
    #expect(c.numAttentionHeads == 4 && c.numKeyValueHeads == 2 && c.headDim == 16)
    #expect(c.rmsNormEps == 1e-5 && c.maxPositionEmbeddings == 128 && c.vocabSize == 256)
    // transformers 5 writes rope_theta inside rope_parameters.
    #expect(c.ropeTheta == 10000 && c.ropeScaling == nil)
    #expect(c.tieWordEmbeddings == true && !c.attentionBias && !c.mlpBias && c.hiddenAct == "silu")
    #expect(c.bosTokenId == 1 && c.eosTokenId == [2])
  }

  @Test(.enabled(if: ModelFiles.hasTinyConfigs, "needs shared/golden/{llama,opt,gpt2}-tiny/config.json"))
  func tinyOPTConfig() throws {
    let url = try #require(ModelFiles.sharedFile("golden/opt-tiny/config.json"))
    guard case .opt(let c) = try ModelConfig(contentsOf: url) else {
      Issue.record("opt-tiny is not an opt config")
      return
    }
    #expect(c.hiddenSize == 64 && c.ffnDim == 160 && c.numHiddenLayers == 2 && c.numAttentionHeads == 4)
    #expect(c.maxPositionEmbeddings == 128 && c.vocabSize == 256 && c.wordEmbedProjDim == 64)
    #expect(c.doLayerNormBefore && !c.removeFinalLayerNorm && c.activationFunction == "relu")
    #expect(c.enableBias && c.layerNormElementwiseAffine && c.tieWordEmbeddings == true)
    #expect(c.bosTokenId == 2 && c.eosTokenId == 2 && c.padTokenId == 1)
  }

  @Test(.enabled(if: ModelFiles.hasTinyConfigs, "needs shared/golden/{llama,opt,gpt2}-tiny/config.json"))
  func tinyGPT2Config() throws {
    let url = try #require(ModelFiles.sharedFile("golden/gpt2-tiny/config.json"))
    guard case .gpt2(let c) = try ModelConfig(contentsOf: url) else {
      Issue.record("gpt2-tiny is not a gpt2 config")
      return
    }
    #expect(c.nEmbd == 64 && c.nLayer == 2 && c.nHead == 4 && c.nInner == 160 && c.nPositions == 128)
    #expect(c.vocabSize == 256 && c.activationFunction == "gelu_new" && c.layerNormEpsilon == 1e-5)
    #expect(
      c.scaleAttnWeights && !c.scaleAttnByInverseLayerIdx && !c.reorderAndUpcastAttn && c.tieWordEmbeddings == true)
    #expect(c.bosTokenId == 50256 && c.eosTokenId == 50256)
  }

  @Test func legacyLlamaKeysAndDefaults() throws {
    // transformers 4 style: rope_theta at the top level, eos as a list, no num_key_value_heads.
    let json = """
      {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
       "num_attention_heads": 32, "vocab_size": 128256, "rope_theta": 500000.0, "eos_token_id": [128001, 128009],
       "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 8192}, "head_dim": null}
      """
    guard case .llama(let c) = try Self.parse(json) else {
      Issue.record("not llama")
      return
    }
    #expect(c.numKeyValueHeads == 32 && c.headDim == 128)
    #expect(
      c.ropeTheta == 500_000
        && c.ropeScaling
          == RopeScaling(
            ropeType: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192)
    )
    #expect(c.eosTokenId == [128001, 128009] && c.bosTokenId == nil)
    // transformers' defaults for absent keys; an absent tie_word_embeddings stays nil (the
    // checkpoint decides).
    #expect(
      c.rmsNormEps == 1e-6 && c.maxPositionEmbeddings == 2048 && c.tieWordEmbeddings == nil && c.hiddenAct == "silu")
  }

  @Test func mistralAndQwen2ShareTheLlamaLayout() throws {
    guard
      case .llama(let m) = try Self.parse(
        """
        {"model_type": "mistral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 100, "sliding_window": 4096}
        """)
    else {
      Issue.record("not llama")
      return
    }
    #expect(
      m.modelType == "mistral" && m.slidingWindow == 4096 && m.useSlidingWindow && m.headDim == 8 && !m.attentionBias)
    guard
      case .llama(let q) = try Self.parse(
        """
        {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": true}
        """)
    else {
      Issue.record("not llama")
      return
    }
    // Qwen2 always has q/k/v biases and never an o_proj bias.
    #expect(q.queryKeyValueBias && !q.outputProjectionBias && q.tieWordEmbeddings == true && !q.useSlidingWindow)
  }

  @Test func gpt2NullInnerMeansFourTimesTheWidth() throws {
    guard
      case .gpt2(let c) = try Self.parse(
        """
        {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": null, "vocab_size": 50257}
        """)
    else {
      Issue.record("not gpt2")
      return
    }
    #expect(c.nInner == 3072 && c.nPositions == 1024)
  }

  @Test func encodingWritesTheHuggingFaceKeysBack() throws {
    guard
      case .llama(let c) = try Self.parse(
        """
        {"model_type": "llama", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "eos_token_id": 2,
         "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}, "tie_word_embeddings": true}
        """)
    else {
      Issue.record("not llama")
      return
    }
    let data = try JSONEncoder().encode(c)
    let keys = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]).keys
    for key in [
      "model_type", "hidden_size", "num_key_value_heads", "rope_theta", "rms_norm_eps", "tie_word_embeddings",
      "eos_token_id",
    ] {
      #expect(keys.contains(key), "\(key)")
    }
    #expect(try ModelConfig(json: data) == .llama(c))
  }

  @Test func errorsNameTheKeyAndGiveAHint() {
    let cases: [(String, ModelConfigError)] = [
      (#"{"model_type": "bert", "hidden_size": 8}"#, .unknownModelType(source: "test.json", modelType: "bert")),
      (#"{"hidden_size": 8}"#, .unknownModelType(source: "test.json", modelType: nil)),
      (
        #"{"model_type": "llama", "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10}"#,
        .missingKey(source: "test.json", modelType: "llama", key: "hidden_size")
      ),
      (
        #"{"model_type": "opt", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10}"#,
        .missingKey(source: "test.json", modelType: "opt", key: "ffn_dim")
      ),
      (
        #"{"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "vocab_size": 10}"#,
        .missingKey(source: "test.json", modelType: "gpt2", key: "n_head")
      ),
      (
        #"{"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10}"#,
        .invalidValue(
          source: "test.json", key: "num_key_value_heads", reason: "is 3, which does not divide num_attention_heads = 4"
        )
      ),
      (
        #"{"model_type": "gpt2", "n_embd": 8, "n_layer": 0, "n_head": 2, "vocab_size": 10}"#,
        .invalidValue(source: "test.json", key: "n_layer", reason: "is 0; it must be positive")
      ),
    ]
    for (json, expected) in cases {
      #expect(throws: expected, "\(json)") { try Self.parse(json) }
      #expect(expected.description.contains("Hint:") && !expected.description.contains("\n"))
    }
    // Wrong JSON types and non-JSON: the kind of error and the key.
    #expect {
      try Self.parse(
        #"{"model_type": "llama", "hidden_size": "64", "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10}"#
      )
    } throws: { e in
      guard case .wrongType(_, let key, _) = e as? ModelConfigError else { return false }
      return key == "hidden_size" && (e as! ModelConfigError).description.contains("Hint:")
    }
    #expect {
      try Self.parse("not json")
    } throws: { e in
      guard case .invalidJSON = e as? ModelConfigError else { return false }
      return true
    }
    #expect {
      try ModelConfig(contentsOf: URL(fileURLWithPath: "/nonexistent/prunekit/config.json"))
    } throws: { e in
      guard case .unreadable = e as? ModelConfigError else { return false }
      return true
    }
  }

  /// A model folder whose config.json (or tokenizer.json) is a folder: the error names that path
  /// and says it is a folder (it said "config.json/config.json: no such file").
  @Test func aConfigJSONThatIsAFolderSaysSo() throws {
    let folder = TemporaryFolder("config-json-folder")
    defer { folder.remove() }
    for entry in ["config.json", "tokenizer.json"] {
      let inner = folder.file(entry)
      try FileManager.default.createDirectory(at: inner, withIntermediateDirectories: false)
      for url in [folder.url, inner] {
        do {
          _ = try readFileOrFolderEntry(url, entry: entry) { ModelConfigError.unreadable(path: $0, reason: $1) }
          Issue.record("read a folder as \(entry)")
        } catch {
          guard case .unreadable(let path, let reason) = error else {
            Issue.record("\(error)")
            continue
          }
          #expect(path == inner.path && reason == InputFiles.isFolder, "\(path): \(reason)")
        }
      }
    }
    #expect {
      try ModelConfig(contentsOf: folder.file("config.json"))
    } throws: { e in
      (e as? ModelConfigError)?.description.contains(
        "\(folder.file("config.json").path): cannot read the file (it is a folder, not a file)") == true
    }
  }
}
