// The few keys of a Hugging Face `config.json` that the forward passes need, read from the JSON
// object with the Hugging Face key names and defaults. Deliberately small: the full `ModelConfig`
// (every key, GGUF metadata) lives elsewhere; this struct is what `TransformerLM` runs on.
//
//   llama (also mistral/qwen2 without a sliding window): hidden_size, num_hidden_layers,
//     num_attention_heads, num_key_value_heads (default = heads), head_dim (default hidden/heads),
//     intermediate_size, vocab_size, rms_norm_eps, rope_theta (or rope_parameters.rope_theta;
//     default 10000), hidden_act (silu), tie_word_embeddings (default true in the config files we
//     read, false in transformers' LlamaConfig: an absent key is decided by the presence of
//     lm_head.weight in the checkpoint, see TransformerLM).
//   opt: hidden_size, num_hidden_layers, num_attention_heads, ffn_dim, vocab_size,
//     max_position_embeddings, word_embed_proj_dim, do_layer_norm_before, _remove_final_layer_norm,
//     activation_function, enable_bias, layer_norm_elementwise_affine (must be true).
//   gpt2: n_embd, n_layer, n_head, n_inner (default 4·n_embd), vocab_size, n_positions,
//     layer_norm_epsilon, activation_function, scale_attn_weights, scale_attn_by_inverse_layer_idx.

import Foundation

/// The architecture parameters a forward pass needs, parsed from a Hugging Face `config.json`.
public struct ForwardConfig: Sendable, Equatable {
  /// The decoder family.
  public enum Architecture: String, Sendable, Equatable, CaseIterable {
    /// LLaMA: RMSNorm, rotate-half RoPE, grouped key/value heads, SwiGLU MLP, no biases.
    case llama
    /// OPT: learned positions offset by 2, LayerNorm (pre or post), ReLU FFN, biases.
    case opt
    /// GPT-2: Conv1D weights stored [in, out], fused q/k/v, GELU-tanh, learned positions.
    case gpt2
  }

  /// The activation of the MLP (for LLaMA the gate's activation in SwiGLU).
  public enum Activation: String, Sendable, Equatable {
    /// x·σ(x) (`silu`, `swish`).
    case silu
    /// max(x, 0).
    case relu
    /// x·Φ(x) with the exact normal CDF (`gelu`).
    case gelu
    /// ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (`gelu_new`, `gelu_pytorch_tanh`).
    case geluTanh
  }

  /// The decoder family.
  public var architecture: Architecture
  /// The Hugging Face `model_type` as written in the file.
  public var modelType: String
  /// Width of the residual stream (`hidden_size`, `n_embd`).
  public var hiddenSize: Int
  /// Number of decoder blocks.
  public var layerCount: Int
  /// Number of query heads.
  public var headCount: Int
  /// Number of key/value heads (= headCount except for LLaMA-style grouped-query attention).
  public var keyValueHeadCount: Int
  /// Width of one head.
  public var headDim: Int
  /// Width of the MLP's hidden layer (`intermediate_size`, `ffn_dim`, `n_inner`).
  public var intermediateSize: Int
  /// Vocabulary size.
  public var vocabSize: Int
  /// Longest sequence the learned position table covers (OPT, GPT-2); for LLaMA only informative.
  public var maxPositions: Int
  /// ε of RMSNorm / LayerNorm.
  public var normEpsilon: Float
  /// θ of RoPE (LLaMA only): frequency i of a head is θ^(−2i/headDim).
  public var ropeTheta: Double
  /// The MLP activation.
  public var activation: Activation
  /// Whether the head reuses the token embedding. nil: the config does not say; the checkpoint
  /// decides (tied unless it holds `lm_head.weight`).
  public var tieWordEmbeddings: Bool?
  /// OPT: width of the token embedding (`word_embed_proj_dim`); project_in/out map it to and from
  /// hiddenSize when they differ. Equal to hiddenSize for the other families.
  public var wordEmbedDim: Int
  /// OPT: LayerNorm before each sub-layer (true) or after the residual add (false, OPT-350m).
  /// Always true for LLaMA and GPT-2.
  public var normBefore: Bool
  /// Whether a final norm precedes the head (OPT drops it when `do_layer_norm_before` is false or
  /// `_remove_final_layer_norm` is true).
  public var finalNorm: Bool
  /// GPT-2 `scale_attn_weights` (scores divided by √headDim; the others always scale).
  public var scaleAttention: Bool
  /// GPT-2 `scale_attn_by_inverse_layer_idx`: block i also divides its scores by i + 1.
  public var scaleAttentionByInverseLayer: Bool

  /// Reads the keys of a parsed `config.json` object (see the file comment for which keys).
  public init(json: [String: Any]) throws(ForwardConfigError) {
    let r = JSONReader(json)
    let type = try r.string("model_type")
    modelType = type
    switch type {
    case "llama", "mistral", "qwen2":
      architecture = .llama
      hiddenSize = try r.int("hidden_size")
      layerCount = try r.int("num_hidden_layers")
      headCount = try r.int("num_attention_heads")
      keyValueHeadCount = try r.optionalInt("num_key_value_heads") ?? headCount
      headDim = try r.optionalInt("head_dim") ?? (headCount > 0 ? hiddenSize / headCount : 0)
      intermediateSize = try r.int("intermediate_size")
      vocabSize = try r.int("vocab_size")
      maxPositions = try r.optionalInt("max_position_embeddings") ?? 0
      normEpsilon = Float(try r.optionalDouble("rms_norm_eps") ?? 1e-6)
      let act = try r.optionalString("hidden_act") ?? "silu"
      guard act == "silu" || act == "swish" else {
        throw .unsupported(key: "hidden_act", value: act, hint: "LLaMA-family models are run with SwiGLU (silu) only")
      }
      activation = .silu
      // rope_theta moved into rope_parameters in transformers 5; rope_scaling is the older name.
      var ropeParameters = try r.optionalObject("rope_parameters")
      if ropeParameters == nil { ropeParameters = try r.optionalObject("rope_scaling") }
      if let p = ropeParameters {
        let rp = JSONReader(p, prefix: "rope_parameters.")
        var ropeType = try rp.optionalString("rope_type")
        if ropeType == nil { ropeType = try rp.optionalString("type") }
        let kind = ropeType ?? "default"
        guard kind == "default" else {
          throw .unsupported(
            key: "rope_parameters.rope_type", value: kind,
            hint: "only the default rotate-half RoPE is implemented (no linear, dynamic, yarn or llama3 scaling)")
        }
      }
      var theta = try r.optionalDouble("rope_theta")
      if theta == nil, let p = ropeParameters {
        theta = try JSONReader(p, prefix: "rope_parameters.").optionalDouble("rope_theta")
      }
      ropeTheta = theta ?? 10000
      tieWordEmbeddings = try r.optionalBool("tie_word_embeddings")
      if let window = try r.optionalInt("sliding_window"), try r.optionalBool("use_sliding_window") ?? (type == "mistral") {
        throw .unsupported(
          key: "sliding_window", value: String(window),
          hint: "sliding-window attention is not implemented; only full causal attention")
      }
      wordEmbedDim = hiddenSize
      normBefore = true
      finalNorm = true
      scaleAttention = true
      scaleAttentionByInverseLayer = false
    case "opt":
      architecture = .opt
      hiddenSize = try r.int("hidden_size")
      layerCount = try r.int("num_hidden_layers")
      headCount = try r.int("num_attention_heads")
      keyValueHeadCount = headCount
      headDim = headCount > 0 ? hiddenSize / headCount : 0
      intermediateSize = try r.int("ffn_dim")
      vocabSize = try r.int("vocab_size")
      maxPositions = try r.int("max_position_embeddings")
      normEpsilon = 1e-5  // nn.LayerNorm's default; OPT's config has no key for it
      activation = try Self.activation(r, key: "activation_function", default: "relu")
      ropeTheta = 0
      tieWordEmbeddings = try r.optionalBool("tie_word_embeddings")
      wordEmbedDim = try r.optionalInt("word_embed_proj_dim") ?? hiddenSize
      normBefore = try r.optionalBool("do_layer_norm_before") ?? true
      let removeFinalNorm = try r.optionalBool("_remove_final_layer_norm") ?? false
      finalNorm = normBefore && !removeFinalNorm
      if try r.optionalBool("enable_bias") == false {
        throw .unsupported(key: "enable_bias", value: "false", hint: "OPT is run with its biases (every released OPT has them)")
      }
      if try r.optionalBool("layer_norm_elementwise_affine") == false {
        throw .unsupported(
          key: "layer_norm_elementwise_affine", value: "false", hint: "OPT is run with affine LayerNorms only")
      }
      scaleAttention = true
      scaleAttentionByInverseLayer = false
    case "gpt2":
      architecture = .gpt2
      hiddenSize = try r.int("n_embd")
      layerCount = try r.int("n_layer")
      headCount = try r.int("n_head")
      keyValueHeadCount = headCount
      headDim = headCount > 0 ? hiddenSize / headCount : 0
      let (fourTimes, overflow) = hiddenSize.multipliedReportingOverflow(by: 4)
      if let inner = try r.optionalInt("n_inner") {
        intermediateSize = inner
      } else if overflow {
        throw .invalid(key: "n_embd", reason: "\(hiddenSize) is too large (4 × n_embd, the default n_inner, overflows)")
      } else {
        intermediateSize = fourTimes
      }
      vocabSize = try r.int("vocab_size")
      maxPositions = try r.int("n_positions")
      normEpsilon = Float(try r.optionalDouble("layer_norm_epsilon") ?? 1e-5)
      activation = try Self.activation(r, key: "activation_function", default: "gelu_new")
      ropeTheta = 0
      tieWordEmbeddings = try r.optionalBool("tie_word_embeddings")
      wordEmbedDim = hiddenSize
      normBefore = true
      finalNorm = true
      scaleAttention = try r.optionalBool("scale_attn_weights") ?? true
      scaleAttentionByInverseLayer = try r.optionalBool("scale_attn_by_inverse_layer_idx") ?? false
    default:
      throw .unsupported(
        key: "model_type", value: type, hint: "supported model types are llama (also mistral, qwen2), opt and gpt2")
    }
    try validate()
  }

  /// Reads and parses a `config.json` file.
  public init(contentsOf url: URL) throws(ForwardConfigError) {
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw .unreadable(path: url.path, reason: "\(error.localizedDescription)")
    }
    try self.init(data: data, source: url.path)
  }

  /// Parses the bytes of a `config.json`; `source` (the file's path) names them in messages. Every
  /// error is wrapped in `.inFile(path: source, …)`.
  public init(data: Data, source: String = "config.json") throws(ForwardConfigError) {
    let object: Any
    do {
      object = try JSONSerialization.jsonObject(with: data)
    } catch {
      throw .invalidJSON(path: source, reason: jsonErrorReason(error))
    }
    guard let json = object as? [String: Any] else {
      throw .invalidJSON(path: source, reason: "the top level is not a JSON object")
    }
    do { self = try ForwardConfig(json: json) } catch { throw error.located(in: source) }
  }

  private static func activation(_ r: JSONReader, key: String, default value: String) throws(ForwardConfigError)
    -> Activation
  {
    let name = try r.optionalString(key) ?? value
    switch name {
    case "relu": return .relu
    case "gelu": return .gelu
    case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .geluTanh
    case "silu", "swish": return .silu
    default:
      throw .unsupported(key: key, value: name, hint: "supported activations are relu, gelu, gelu_new and silu")
    }
  }

  private func validate() throws(ForwardConfigError) {
    for (key, value) in [
      ("hidden size", hiddenSize), ("layer count", layerCount), ("head count", headCount),
      ("key/value head count", keyValueHeadCount), ("head dim", headDim),
      ("intermediate size", intermediateSize), ("vocab size", vocabSize), ("word embedding dim", wordEmbedDim),
    ] where value <= 0 {
      throw .invalid(key: key, reason: "must be positive, got \(value)")
    }
    if headCount % keyValueHeadCount != 0 {
      throw .invalid(
        key: "num_key_value_heads",
        reason: "\(keyValueHeadCount) key/value heads do not divide \(headCount) query heads")
    }
    if architecture != .llama && headDim * headCount != hiddenSize {
      throw .invalid(key: "num_attention_heads", reason: "\(headCount) heads do not divide hidden size \(hiddenSize)")
    }
    if architecture == .llama && headDim % 2 != 0 {
      throw .invalid(key: "head_dim", reason: "rotate-half RoPE needs an even head dim, got \(headDim)")
    }
    if architecture == .llama && !(ropeTheta > 0) {
      throw .invalid(key: "rope_theta", reason: "must be positive, got \(ropeTheta)")
    }
  }
}

/// Why a `config.json` could not be used by the forward pass. Each description is one line that
/// says what is wrong, in which file and key, and ends with a `Hint:`. Errors about keys are
/// thrown bare by `init(json:)` (which has no file) and wrapped in `inFile` by the initialisers
/// that know where the JSON came from.
public enum ForwardConfigError: Error, Equatable, CustomStringConvertible {
  /// The file could not be read.
  case unreadable(path: String, reason: String)
  /// The bytes are not JSON, or the top level is not an object.
  case invalidJSON(path: String, reason: String)
  /// A required key is absent.
  case missingKey(String)
  /// A key holds a value of the wrong JSON type.
  case wrongType(key: String, expected: String)
  /// A value that is well-formed but not implemented here.
  case unsupported(key: String, value: String, hint: String)
  /// Values that contradict each other or are out of range.
  case invalid(key: String, reason: String)
  /// One of the key errors above, found in the config at `path`.
  indirect case inFile(path: String, ForwardConfigError)

  public var description: String { oneLine(message(file: "config.json")) }

  /// The error wrapped with the file it was found in (unchanged when it already names one).
  func located(in path: String) -> ForwardConfigError {
    switch self {
    case .missingKey, .wrongType, .unsupported, .invalid: return .inFile(path: path, self)
    case .unreadable, .invalidJSON, .inFile: return self
    }
  }

  /// The message, starting with `file` ("config.json" when the file is not known, else
  /// "config <path>").
  private func message(file: String) -> String {
    switch self {
    case let .unreadable(path, reason):
      return "config \(path): cannot read the file (\(reason)). Hint: pass the config.json of a Hugging Face"
        + " model folder, and check the path and its permissions."
    case let .invalidJSON(path, reason):
      return "config \(path): not a JSON object (\(reason)). Hint: the file is damaged or not a Hugging Face"
        + " config.json."
    case let .missingKey(key):
      return "\(file): '\(key)' is missing. Hint: the file must be a Hugging Face config of a llama,"
        + " opt or gpt2 model; copy the key from the original config.json."
    case let .wrongType(key, expected):
      return "\(file): '\(key)' is not \(expected). Hint: check the file against the model's Hugging"
        + " Face config."
    case let .unsupported(key, value, hint):
      return "\(file): \(key) = \(value) is not supported. Hint: \(hint)."
    case let .invalid(key, reason):
      return "\(file): \(key): \(reason). Hint: check the file against the model's Hugging Face config."
    case let .inFile(path, inner):
      return inner.message(file: "config \(path)")
    }
  }
}

/// Typed access to a JSON object's keys, with errors that name the key.
struct JSONReader {
  let object: [String: Any]
  let prefix: String

  init(_ object: [String: Any], prefix: String = "") {
    self.object = object
    self.prefix = prefix
  }

  /// The value, or nil when the key is absent or JSON null.
  private func value(_ key: String) -> Any? {
    guard let v = object[key], !(v is NSNull) else { return nil }
    return v
  }

  func optionalInt(_ key: String) throws(ForwardConfigError) -> Int? {
    guard let v = value(key) else { return nil }
    if let n = v as? NSNumber, !Self.isBool(n), let i = Int(exactly: n.doubleValue) { return i }
    throw .wrongType(key: prefix + key, expected: "an integer")
  }

  func int(_ key: String) throws(ForwardConfigError) -> Int {
    guard let v = try optionalInt(key) else { throw .missingKey(prefix + key) }
    return v
  }

  func optionalDouble(_ key: String) throws(ForwardConfigError) -> Double? {
    guard let v = value(key) else { return nil }
    if let n = v as? NSNumber, !Self.isBool(n) { return n.doubleValue }
    throw .wrongType(key: prefix + key, expected: "a number")
  }

  func optionalBool(_ key: String) throws(ForwardConfigError) -> Bool? {
    guard let v = value(key) else { return nil }
    if let n = v as? NSNumber, Self.isBool(n) { return n.boolValue }
    if let b = v as? Bool { return b }
    throw .wrongType(key: prefix + key, expected: "true or false")
  }

  func optionalString(_ key: String) throws(ForwardConfigError) -> String? {
    guard let v = value(key) else { return nil }
    if let s = v as? String { return s }
    throw .wrongType(key: prefix + key, expected: "a string")
  }

  func string(_ key: String) throws(ForwardConfigError) -> String {
    guard let v = try optionalString(key) else { throw .missingKey(prefix + key) }
    return v
  }

  func optionalObject(_ key: String) throws(ForwardConfigError) -> [String: Any]? {
    guard let v = value(key) else { return nil }
    if let o = v as? [String: Any] { return o }
    throw .wrongType(key: prefix + key, expected: "an object")
  }

  /// JSONSerialization returns booleans as NSNumber; tell them from 0 and 1. (JSON never yields
  /// an 8-bit integer, whose objCType is also "c".)
  private static func isBool(_ n: NSNumber) -> Bool {
    #if canImport(Darwin)
    return CFGetTypeID(n) == CFBooleanGetTypeID()
    #else
    return String(cString: n.objCType) == "c"
    #endif
  }
}

extension ForwardConfig {
  /// The forward parameters of a parsed `ModelConfig` (from config.json or GGUF metadata), read
  /// through its Hugging Face keys so that both parsers apply the same rules.
  /// `source` (the file the configuration came from) names it in messages.
  public init(_ config: ModelConfig, source: String = "ModelConfig") throws(ForwardConfigError) {
    let encoded: Data
    do {
      switch config {
      case let .llama(c): encoded = try JSONEncoder().encode(c)
      case let .opt(c): encoded = try JSONEncoder().encode(c)
      case let .gpt2(c): encoded = try JSONEncoder().encode(c)
      }
    } catch {
      throw .unreadable(path: source, reason: "\(error)")
    }
    guard var json = (try? JSONSerialization.jsonObject(with: encoded)) as? [String: Any] else {
      throw .unreadable(path: source, reason: "its encoding is not a JSON object")
    }
    json["model_type"] = config.modelType
    do { self = try ForwardConfig(json: json) } catch { throw error.located(in: source) }
  }
}
