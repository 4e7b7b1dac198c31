import Foundation
import PruneFormats
import PruneTestSupport
import Testing

/// config.json's rope_scaling / rope_parameters and sliding-window keys: what each RoPE type
/// requires and defaults, what is refused, and which blocks a window applies to.
@Suite struct RopeScalingConfigTests {
  static func llama(_ extra: String, modelType: String = "llama", layers: Int = 2) throws -> LlamaConfig {
    let json = """
      {"model_type": "\(modelType)", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": \(layers),
       "num_attention_heads": 4, "vocab_size": 100, "max_position_embeddings": 4096\(extra.isEmpty ? "" : ", " + extra)}
      """
    guard case .llama(let c) = try ModelConfig(json: Data(json.utf8), source: "test.json") else {
      throw ModelConfigError.unknownModelType(source: "test.json", modelType: modelType)
    }
    return c
  }

  static func scaling(_ object: String, key: String = "rope_scaling") throws -> RopeFrequencyScaling? {
    let c = try llama("\"\(key)\": \(object)")
    return try c.ropeScaling?.frequencyScaling(maxPositionEmbeddings: c.maxPositionEmbeddings, source: "test.json")
  }

  @Test func eachTypeWithItsDefaults() throws {
    #expect(try Self.scaling(#"{"type": "linear", "factor": 2.0}"#) == .linear(factor: 2))
    // llama3 and yarn: original_max_position_embeddings absent → max_position_embeddings.
    #expect(
      try Self.scaling(#"{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4}"#)
        == .llama3(.init(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 4096)))
    let yarn = try Self.scaling(
      #"{"rope_type": "yarn", "factor": 4, "rope_theta": 10000.0}"#, key: "rope_parameters")
    #expect(
      yarn
        == .yarn(
          .init(
            factor: 4, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1, attentionFactor: 0.1 * log(4.0) + 1,
            truncate: true)))
    // null betas are absent ones, as transformers' `or` reads them; truncate false is kept.
    guard
      case .yarn(let p) = try Self.scaling(
        #"{"rope_type": "yarn", "factor": 4, "beta_fast": null, "beta_slow": 2, "truncate": false,"#
          + #" "original_max_position_embeddings": 1024, "attention_factor": 1.5}"#)
    else {
      Issue.record("not yarn")
      return
    }
    #expect(p.betaFast == 32 && p.betaSlow == 2 && !p.truncate && p.originalMaxPositions == 1024)
    #expect(p.attentionFactor == 1.5)
    // "default" is no scaling at all.
    #expect(try Self.scaling(#"{"rope_type": "default", "rope_theta": 10000.0}"#, key: "rope_parameters") == nil)
  }

  @Test func missingStrayAndUnsupportedKeysAreOneLineErrors() throws {
    func refusal(_ object: String, key: String = "rope_scaling") -> ModelConfigError? {
      do {
        _ = try Self.scaling(object, key: key)
        return nil
      } catch let error as ModelConfigError {
        let text = "\(error)"
        #expect(!text.contains("\n") && text.contains("Hint: "), "\(text)")
        return error
      } catch {
        Issue.record("not a ModelConfigError: \(error)")
        return nil
      }
    }
    #expect(
      refusal(#"{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1}"#)
        == .missingKey(
          source: "test.json", modelType: "llama with rope_type llama3", key: "rope_scaling.high_freq_factor"))
    #expect(
      refusal(#"{"rope_type": "yarn"}"#, key: "rope_parameters")
        == .missingKey(source: "test.json", modelType: "llama with rope_type yarn", key: "rope_parameters.factor"))
    guard
      case .unsupported(_, "rope_scaling.beta_fast", _, _)? = refusal(
        #"{"type": "linear", "factor": 2, "beta_fast": 8}"#)
    else {
      Issue.record("a yarn key on linear scaling is not refused")
      return
    }
    guard
      case .unsupported(_, "rope_scaling.short_factor", _, _)? = refusal(
        #"{"type": "linear", "factor": 2, "short_factor": [1]}"#)
    else {
      Issue.record("an unknown key is not refused")
      return
    }
    guard case .invalidValue(_, "rope_scaling.factor", _)? = refusal(#"{"type": "linear", "factor": 0.5}"#) else {
      Issue.record("a factor below 1 is not refused")
      return
    }
    guard
      case .invalidValue(_, "rope_scaling.high_freq_factor", _)? = refusal(
        #"{"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1}"#)
    else {
      Issue.record("high_freq_factor ≤ low_freq_factor is not refused")
      return
    }
    guard
      case .unsupported(_, "rope_scaling.partial_rotary_factor", _, _)? = refusal(
        #"{"type": "linear", "factor": 2, "partial_rotary_factor": 0.5}"#)
    else {
      Issue.record("a partial rotation is not refused")
      return
    }
    // dynamic and longrope are read (ModelConfig keeps them) but refused when run, naming the
    // types that are.
    guard
      case .unsupported(_, "rope_scaling.rope_type", "dynamic", let hint)? = refusal(
        #"{"type": "dynamic", "factor": 2}"#)
    else {
      Issue.record("dynamic is not refused")
      return
    }
    #expect(hint.contains("linear, llama3, yarn"))
  }

  @Test func slidingWindowsAsTransformersAppliesThem() throws {
    // mistral: absent → 4096 on every block; null → none; a value → that value.
    #expect(try Self.llama("", modelType: "mistral").activeSlidingWindow! == (4096, 0..<2))
    #expect(try Self.llama(#""sliding_window": null"#, modelType: "mistral").activeSlidingWindow == nil)
    #expect(try Self.llama(#""sliding_window": 16"#, modelType: "mistral").activeSlidingWindow! == (16, 0..<2))
    // llama has no window, whatever the keys say.
    #expect(try Self.llama(#""sliding_window": 16, "use_sliding_window": true"#).activeSlidingWindow == nil)
    // qwen2: only with use_sliding_window, from max_window_layers on (default 28), or by layer_types.
    #expect(try Self.llama(#""sliding_window": 16"#, modelType: "qwen2", layers: 4).activeSlidingWindow == nil)
    #expect(
      try Self.llama(#""use_sliding_window": true"#, modelType: "qwen2", layers: 30).activeSlidingWindow!
        == (4096, 28..<30))
    #expect(
      try Self.llama(#""use_sliding_window": true, "max_window_layers": 28"#, modelType: "qwen2", layers: 4)
        .activeSlidingWindow == nil)
    #expect(
      try Self.llama(
        #""use_sliding_window": true, "sliding_window": 8, "max_window_layers": 1"#, modelType: "qwen2", layers: 4
      )
      .activeSlidingWindow! == (8, 1..<4))
    let types = #""full_attention", "sliding_attention", "full_attention", "sliding_attention""#
    let split = try Self.llama(
      #""use_sliding_window": true, "sliding_window": 8, "layer_types": [\#(types)]"#, modelType: "qwen2", layers: 4)
    #expect(split.activeSlidingWindow!.size == 8 && split.activeSlidingWindow!.windowedLayers == nil)
    // A window of no keys cannot be run.
    #expect(throws: ModelConfigError.self) { try Self.llama(#""sliding_window": 0"#, modelType: "mistral") }
  }

  /// GGUF metadata: llama.cpp's rope.scaling keys become the same RopeScaling; llama3's
  /// rope_freqs tensor, a sliding-window key, and types or keys PruneKit does not map are refused.
  @Test func ggufRopeScaling() throws {
    func config(_ extra: [(String, GGUFValue)], tensors: [String] = []) throws -> LlamaConfig {
      var b = GGUFBuilder()
      b.metadata =
        [
          ("general.architecture", .string("llama")), ("llama.embedding_length", .uint32(8)),
          ("llama.block_count", .uint32(1)), ("llama.feed_forward_length", .uint32(16)),
          ("llama.attention.head_count", .uint32(2)), ("llama.context_length", .uint32(256)),
          ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)), ("llama.vocab_size", .uint32(10)),
        ] + extra
      b.tensors = tensors.map { ($0, [2], 0, [UInt8](repeating: 0, count: 8)) }
      return try b.file().llamaConfig()
    }
    #expect(try config([]).ropeScaling == nil)
    #expect(try config([("llama.rope.scaling.type", .string("none"))]).ropeScaling == nil)
    #expect(
      try config([("llama.rope.scaling.type", .string("linear")), ("llama.rope.scaling.factor", .float32(4))])
        .ropeScaling == RopeScaling(ropeType: "linear", factor: 4))
    #expect(
      try config([("llama.rope.scale_linear", .float32(2))]).ropeScaling == RopeScaling(ropeType: "linear", factor: 2))
    #expect(
      try config([
        ("llama.rope.scaling.type", .string("yarn")), ("llama.rope.scaling.factor", .float32(4)),
        ("llama.rope.scaling.original_context_length", .uint32(64)),
      ]).ropeScaling == RopeScaling(ropeType: "yarn", factor: 4, originalMaxPositionEmbeddings: 64))
    func refusedKey(_ extra: [(String, GGUFValue)], tensors: [String] = []) -> String? {
      do {
        _ = try config(extra, tensors: tensors)
        return nil
      } catch GGUFError.unsupportedMetadata(_, let key, _, _) {
        return key
      } catch {
        return "\(error)"
      }
    }
    #expect(refusedKey([], tensors: ["rope_freqs.weight"]) == "rope_freqs.weight")
    #expect(refusedKey([("llama.attention.sliding_window", .uint32(16))]) == "llama.attention.sliding_window")
    #expect(refusedKey([("llama.rope.scaling.type", .string("longrope"))]) == "llama.rope.scaling.type")
    #expect(
      refusedKey([
        ("llama.rope.scaling.type", .string("yarn")), ("llama.rope.scaling.factor", .float32(4)),
        ("llama.rope.scaling.yarn_beta_fast", .float32(16)),
      ]) == "llama.rope.scaling.yarn_beta_fast")
  }
}
