// The architecture parameters the forward passes run on, derived from a `ModelConfig`: config.json
// and GGUF metadata are parsed once, by PruneFormats (ModelConfig.swift), and this file only maps
// the Hugging Face keys of the three families onto what `TransformerLM` needs, and refuses what it
// does not implement:
//
//   llama (also mistral/qwen2): hidden_size, num_hidden_layers, num_attention_heads,
//     num_key_value_heads, head_dim, intermediate_size, vocab_size, max_position_embeddings,
//     rms_norm_eps, rope_theta, tie_word_embeddings (absent: the presence of lm_head.weight in the
//     checkpoint decides, see TransformerLM); rope_scaling / rope_parameters of type linear,
//     llama3 or yarn (RotaryTable has the math); mistral's sliding_window and qwen2's
//     use_sliding_window + sliding_window + max_window_layers / layer_types (causalAttention's
//     window; llama ignores the keys, as transformers does). Refused: hidden_act other than silu;
//     any other RoPE type (dynamic, longrope, ...), a key the scaling type does not read, a
//     partial_rotary_factor other than 1; qwen2 windowed blocks that are not one contiguous run.
//   opt: hidden_size, num_hidden_layers, num_attention_heads, ffn_dim, vocab_size,
//     max_position_embeddings, word_embed_proj_dim, do_layer_norm_before, _remove_final_layer_norm,
//     activation_function. Refused: enable_bias or layer_norm_elementwise_affine false.
//   gpt2: n_embd, n_layer, n_head, n_inner, vocab_size, n_positions, layer_norm_epsilon,
//     activation_function, scale_attn_weights, scale_attn_by_inverse_layer_idx.

import Foundation

/// Sliding-window attention: in the blocks `layers`, the query at position t sees the keys
/// t − size + 1 … t (the others see 0 … t).
public struct SlidingWindow: Sendable, Equatable {
  /// W, the number of keys a query sees (itself included).
  public var size: Int
  /// The blocks that use the window.
  public var layers: Range<Int>

  public init(size: Int, layers: Range<Int>) {
    self.size = size
    self.layers = layers
  }

  /// The window of block `layer`, nil when it attends to every earlier key.
  public func size(layer: Int) -> Int? { layers.contains(layer) ? size : nil }
}

/// The architecture parameters a forward pass needs, derived from a `ModelConfig`.
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
  /// How RoPE scaling changes those frequencies (LLaMA only; config.json's rope_scaling, the
  /// defaults applied); nil for plain RoPE.
  public var ropeScaling: RopeFrequencyScaling?
  /// Sliding-window attention (mistral, qwen2); nil: every block attends to all earlier keys.
  public var slidingWindow: SlidingWindow?
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

  /// The forward parameters of `config` (from config.json or GGUF metadata); `source` (the file
  /// the configuration came from) names it in messages. Throws `ModelConfigError.invalidValue` for
  /// sizes that cannot describe a model and `.unsupported` for what the forward pass does not
  /// implement (see the file comment).
  public init(_ config: ModelConfig, source: String = "ModelConfig") throws(ModelConfigError) {
    try config.validate(source: source)
    func unsupported(_ key: String, _ value: String, _ hint: String) -> ModelConfigError {
      .unsupported(source: source, key: key, value: value, hint: hint)
    }
    switch config {
    case .llama(let c):
      guard c.hiddenAct == "silu" || c.hiddenAct == "swish" else {
        throw unsupported("hidden_act", c.hiddenAct, "LLaMA-family models are run with SwiGLU (silu) only.")
      }
      let scaling = try c.ropeScaling?.frequencyScaling(
        maxPositionEmbeddings: c.maxPositionEmbeddings, modelType: c.modelType, source: source)
      var window: SlidingWindow?
      if let active = c.activeSlidingWindow {
        guard let layers = active.windowedLayers else {
          throw unsupported(
            "layer_types", "sliding_attention in blocks that are not one contiguous run",
            "PruneKit windows one contiguous run of blocks (every released qwen2 config does).")
        }
        window = SlidingWindow(size: active.size, layers: layers)
      }
      self.init(
        .llama, c.modelType, hidden: c.hiddenSize, layers: c.numHiddenLayers, heads: c.numAttentionHeads,
        keyValueHeads: c.numKeyValueHeads, headDim: c.headDim, intermediate: c.intermediateSize, vocab: c.vocabSize,
        positions: c.maxPositionEmbeddings, epsilon: Float(c.rmsNormEps), activation: .silu, tie: c.tieWordEmbeddings)
      ropeTheta = c.ropeTheta
      ropeScaling = scaling
      slidingWindow = window
    case .opt(let c):
      let activation = try Self.activation(c.activationFunction, key: "activation_function", source: source)
      guard c.enableBias else {
        throw unsupported("enable_bias", "false", "OPT is run with its biases (every released OPT has them).")
      }
      guard c.layerNormElementwiseAffine else {
        throw unsupported("layer_norm_elementwise_affine", "false", "OPT is run with affine LayerNorms only.")
      }
      // ε: nn.LayerNorm's default; OPT's config has no key for it.
      self.init(
        .opt, "opt", hidden: c.hiddenSize, layers: c.numHiddenLayers, heads: c.numAttentionHeads,
        intermediate: c.ffnDim,
        vocab: c.vocabSize, positions: c.maxPositionEmbeddings, epsilon: 1e-5, activation: activation,
        tie: c.tieWordEmbeddings)
      wordEmbedDim = c.wordEmbedProjDim
      normBefore = c.doLayerNormBefore
      finalNorm = c.doLayerNormBefore && !c.removeFinalLayerNorm
    case .gpt2(let c):
      let activation = try Self.activation(c.activationFunction, key: "activation_function", source: source)
      self.init(
        .gpt2, "gpt2", hidden: c.nEmbd, layers: c.nLayer, heads: c.nHead, intermediate: c.nInner, vocab: c.vocabSize,
        positions: c.nPositions, epsilon: Float(c.layerNormEpsilon), activation: activation, tie: c.tieWordEmbeddings)
      scaleAttention = c.scaleAttnWeights
      scaleAttentionByInverseLayer = c.scaleAttnByInverseLayerIdx
    }
  }

  /// The fields every family reads from its own keys; the others start as a pre-norm decoder
  /// with scaled attention, no RoPE (θ = 0) and a token embedding as wide as the model, which
  /// `init(_:source:)` then changes where a family's keys say otherwise.
  private init(
    _ architecture: Architecture, _ modelType: String, hidden: Int, layers: Int, heads: Int, keyValueHeads: Int? = nil,
    headDim: Int? = nil, intermediate: Int, vocab: Int, positions: Int, epsilon: Float, activation: Activation,
    tie: Bool?
  ) {
    self.architecture = architecture
    self.modelType = modelType
    hiddenSize = hidden
    layerCount = layers
    headCount = heads
    keyValueHeadCount = keyValueHeads ?? heads
    self.headDim = headDim ?? hidden / heads
    intermediateSize = intermediate
    vocabSize = vocab
    maxPositions = positions
    normEpsilon = epsilon
    ropeTheta = 0
    ropeScaling = nil
    slidingWindow = nil
    self.activation = activation
    tieWordEmbeddings = tie
    wordEmbedDim = hidden
    normBefore = true
    finalNorm = true
    scaleAttention = true
    scaleAttentionByInverseLayer = false
  }

  /// Reads a `config.json` file (or the model folder holding one) through `ModelConfig`.
  public init(contentsOf url: URL) throws(ModelConfigError) {
    let file = try readFileOrFolderEntry(url, entry: "config.json") {
      ModelConfigError.unreadable(path: $0, reason: $1)
    }
    try self.init(data: file.data, source: file.path)
  }

  /// Parses the bytes of a `config.json` through `ModelConfig`; `source` (the file's path) names
  /// them in messages.
  public init(data: Data, source: String = "config.json") throws(ModelConfigError) {
    try self.init(try ModelConfig(json: data, source: source), source: source)
  }

  /// The activation named `name` in the config's `key`.
  private static func activation(_ name: String, key: String, source: String) throws(ModelConfigError) -> Activation {
    switch name {
    case "relu": return .relu
    case "gelu": return .gelu
    case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .geluTanh
    case "silu", "swish": return .silu
    default:
      throw .unsupported(
        source: source, key: key, value: name, hint: "supported activations are relu, gelu, gelu_new and silu.")
    }
  }
}
