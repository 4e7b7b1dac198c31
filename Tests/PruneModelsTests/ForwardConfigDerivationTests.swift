import Foundation
import PruneFormats
import PruneTestSupport
import Testing

@testable import PruneModels

/// `ForwardConfig` is derived from `ModelConfig`, the one parser of config.json (and of GGUF
/// metadata, through `llamaConfig()`). These are the forward configs of every config the project
/// reads: the tiny golden models, the fuzz seed configs, the configs `prune make-model` writes (and
/// the Hugging Face export copies), the config.json the export writes for the SmolLM2 GGUF and
/// that GGUF's metadata, and the configs of the unit tests and the benchmarks. The expectations
/// are literal: the values the separate parser ForwardConfig had before gave (recorded when it was
/// removed), and its refusals (unsupported RoPE scaling, sliding windows, activations, biases...).
/// Four differ on purpose, each noted where it stands; seven more since RoPE scaling and sliding
/// windows are run (every field gained `ropeScaling` and `slidingWindow`, nil before).
@Suite struct ForwardConfigDerivationTests {
  /// Every stored field of `config`, in declaration order.
  static func summary(_ config: ForwardConfig) -> String {
    Mirror(reflecting: config).children.map { "\($0.label!)=\($0.value)" }.joined(separator: " ")
  }

  /// The summary of the config `body` gives, or what it refused and why (by the error's case and
  /// key).
  static func outcome(_ body: () throws(ModelConfigError) -> ForwardConfig) -> String {
    do {
      return summary(try body())
    } catch {
      switch error {
      case .unsupported(_, let key, let value, _): return "refused: \(key) = \(value) is not supported"
      case .missingKey(_, _, let key): return "refused: '\(key)' is missing"
      case .wrongType(_, let key, _): return "refused: '\(key)' has the wrong type"
      case .invalidValue(_, let key, _): return "refused: '\(key)' has an invalid value"
      case .invalidJSON: return "refused: not a JSON object"
      case .unknownModelType(_, let type): return "refused: model_type \(type ?? "absent")"
      case .unreadable: return "refused: unreadable"
      }
    }
  }

  static func json(_ object: [String: Any]) -> Data {
    try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
  }

  /// The configs, by name (the SmolLM2 ones are in their own test: the model is fetched apart).
  static func configs() throws -> [(String, Data)] {
    var out: [(String, Data)] = []
    for name in ["llama", "opt", "gpt2"] {
      out.append(
        (
          "golden/\(name)-tiny",
          try Data(
            contentsOf: ModelFiles.packageRoot.appendingPathComponent("Fixtures/golden/\(name)-tiny/config.json"))
        ))
    }
    let corpus = ModelFiles.packageRoot.appendingPathComponent("Fixtures/fuzz/config-json/corpus")
    for f in try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted() {
      out.append(("fuzz/\(f)", try Data(contentsOf: corpus.appendingPathComponent(f))))
    }
    for (name, shape) in [
      ("make-model default", SyntheticModelFolder.Shape()),
      ("make-model 2 layers", SyntheticModelFolder.Shape(layers: 2)),
      (
        "make-model fault-kill",
        SyntheticModelFolder.Shape(layers: 6, hidden: 128, intermediate: 320, vocabulary: 32768)
      ),
      (
        "make-model FaultTests",
        SyntheticModelFolder.Shape(layers: 3, hidden: 32, intermediate: 64, heads: 4, keyValueHeads: 2)
      ),
    ] {
      out.append(
        (
          name,
          try JSONSerialization.data(
            withJSONObject: SyntheticModelFolder.config(shape), options: [.prettyPrinted, .sortedKeys])
        ))
    }
    for name in SyntheticConfigs.all { out.append(("SyntheticConfigs.\(name)", json(SyntheticConfigs.named(name)))) }
    out.append(("SyntheticConfigs.llama(tie: false)", json(SyntheticConfigs.llama(tie: false))))
    out.append(("SyntheticConfigs.llama(tie: nil)", json(SyntheticConfigs.llama(tie: nil))))
    var c = SyntheticConfigs.llama()
    c["hidden_size"] = nil
    out.append(("llama without hidden_size", json(c)))
    c = SyntheticConfigs.llama()
    c["hidden_size"] = "64"
    out.append(("llama hidden_size string", json(c)))
    c = SyntheticConfigs.llama()
    c["num_key_value_heads"] = 3
    out.append(("llama kv 3", json(c)))
    c = SyntheticConfigs.llama()
    c["rope_parameters"] = ["rope_type": "llama3", "rope_theta": 500000.0]
    out.append(("llama rope llama3", json(c)))
    c = SyntheticConfigs.llama()
    c["hidden_act"] = "gelu"
    out.append(("llama gelu", json(c)))
    out.append(("bert", json(["model_type": "bert"])))
    var opt = SyntheticConfigs.opt()
    opt["activation_function"] = "tanh"
    out.append(("opt tanh", json(opt)))
    c = SyntheticConfigs.llama()
    c["rope_theta"] = nil
    c["rope_parameters"] = ["rope_type": "default", "rope_theta": 100000.0]
    c["tie_word_embeddings"] = false
    out.append(("llama rope_parameters default", json(c)))
    c["tie_word_embeddings"] = 1
    out.append(("llama tie 1", json(c)))
    c = SyntheticConfigs.llama()
    c["sliding_window"] = 4096
    c["model_type"] = "mistral"
    out.append(("mistral window", json(c)))
    c["model_type"] = "qwen2"
    c["use_sliding_window"] = false
    out.append(("qwen2 window off", json(c)))
    c["use_sliding_window"] = true
    out.append(("qwen2 window on", json(c)))
    c = SyntheticConfigs.llama()
    c["rope_scaling"] = ["type": "linear", "factor": 2.0]
    out.append(("llama rope_scaling linear", json(c)))
    var o2 = SyntheticConfigs.opt()
    o2["enable_bias"] = false
    out.append(("opt no bias", json(o2)))
    o2 = SyntheticConfigs.opt()
    o2["layer_norm_elementwise_affine"] = false
    out.append(("opt no affine", json(o2)))
    o2 = SyntheticConfigs.opt()
    o2["_remove_final_layer_norm"] = true
    out.append(("opt remove final norm", json(o2)))
    var g = SyntheticConfigs.gpt2()
    g["scale_attn_weights"] = false
    g["scale_attn_by_inverse_layer_idx"] = true
    g["layer_norm_epsilon"] = 1e-6
    g["tie_word_embeddings"] = false
    out.append(("gpt2 flags", json(g)))
    // ModelConfigTests
    out.append(
      (
        "ModelConfigTests legacy llama3",
        Data(
          """
          {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
           "num_attention_heads": 32, "vocab_size": 128256, "rope_theta": 500000.0, "eos_token_id": [128001, 128009],
           "rope_scaling": {"rope_type": "llama3", "factor": 8.0}, "head_dim": null}
          """.utf8)
      ))
    out.append(
      (
        "ModelConfigTests mistral",
        Data(
          """
          {"model_type": "mistral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 100, "sliding_window": 4096}
          """.utf8)
      ))
    out.append(
      (
        "ModelConfigTests qwen2",
        Data(
          """
          {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": true}
          """.utf8)
      ))
    out.append(
      (
        "ModelConfigTests gpt2 null inner",
        Data(
          """
          {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": null, "vocab_size": 50257}
          """.utf8)
      ))
    out.append(
      (
        "ModelConfigTests encoding llama",
        Data(
          """
          {"model_type": "llama", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "eos_token_id": 2,
           "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}, "tie_word_embeddings": true}
          """.utf8)
      ))
    out.append(
      (
        "fuzz overflow",
        Data(
          #"{"model_type": "gpt2", "n_embd": 4611686018427387904, "n_layer": 1, "n_head": 1, "vocab_size": 5, "n_positions": 8}"#
            .utf8)
      ))
    out.append(("fuzz opt missing", Data(#"{"model_type": "opt"}"#.utf8)))
    out.append(("fuzz latin", Data([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D])))
    out.append(("fuzz array", Data("[1]".utf8)))
    out.append(
      (
        "bench smollm2",
        json([
          "model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
          "num_key_value_heads": 3, "head_dim": 64, "intermediate_size": 1536, "vocab_size": 49152,
          "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": true,
        ])
      ))
    return out
  }

  static let expected: [String: String] = [
    "golden/llama-tiny":
      "architecture=llama modelType=llama hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=160 vocabSize=256 maxPositions=128 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "golden/opt-tiny":
      "architecture=opt modelType=opt hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=160 vocabSize=256 maxPositions=128 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=relu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "golden/gpt2-tiny":
      "architecture=gpt2 modelType=gpt2 hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=160 vocabSize=256 maxPositions=128 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=geluTanh tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "fuzz/gpt2-null-inner.json":
      "architecture=gpt2 modelType=gpt2 hiddenSize=32 layerCount=1 headCount=4 keyValueHeadCount=4 headDim=8 intermediateSize=128 vocabSize=50 maxPositions=16 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=gelu tieWordEmbeddings=nil wordEmbedDim=32 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=true",
    "fuzz/gpt2-tiny.json":
      "architecture=gpt2 modelType=gpt2 hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=160 vocabSize=256 maxPositions=128 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=geluTanh tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "fuzz/llama-tiny.json":
      "architecture=llama modelType=llama hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=160 vocabSize=256 maxPositions=128 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "fuzz/mistral-window.json":
      // Differs on purpose (RoPE scaling landed): linear scaling is run.
      "architecture=llama modelType=mistral hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=128 vocabSize=100 maxPositions=2048 normEpsilon=1e-06 ropeTheta=10000.0 ropeScaling=Optional(PruneFormats.RopeFrequencyScaling.linear(factor: 2.0)) slidingWindow=nil activation=silu tieWordEmbeddings=nil wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "fuzz/llama3-scaling.json":
      "architecture=llama modelType=llama hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=128 vocabSize=100 maxPositions=131072 normEpsilon=1e-06 ropeTheta=500000.0 ropeScaling=Optional(PruneFormats.RopeFrequencyScaling.llama3(PruneFormats.RopeFrequencyScaling.Llama3(factor: 8.0, lowFreqFactor: 1.0, highFreqFactor: 4.0, originalMaxPositions: 8192))) slidingWindow=nil activation=silu tieWordEmbeddings=nil wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "fuzz/yarn-scaling.json":
      "architecture=llama modelType=qwen2 hiddenSize=64 layerCount=4 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=128 vocabSize=100 maxPositions=2048 normEpsilon=1e-06 ropeTheta=1000000.0 ropeScaling=Optional(PruneFormats.RopeFrequencyScaling.yarn(PruneFormats.RopeFrequencyScaling.Yarn(factor: 4.0, originalMaxPositions: 32768, betaFast: 32.0, betaSlow: 1.0, attentionFactor: 1.138629436111989, truncate: true))) slidingWindow=Optional(PruneModels.SlidingWindow(size: 4096, layers: Range(2..<4))) activation=silu tieWordEmbeddings=nil wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "fuzz/opt-tiny.json":
      "architecture=opt modelType=opt hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=160 vocabSize=256 maxPositions=128 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=relu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "fuzz/smollm2-like.json":
      "architecture=llama modelType=llama hiddenSize=576 layerCount=30 headCount=9 keyValueHeadCount=3 headDim=64 intermediateSize=1536 vocabSize=49152 maxPositions=8192 normEpsilon=1e-05 ropeTheta=100000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=576 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "make-model default":
      "architecture=llama modelType=llama hiddenSize=128 layerCount=6 headCount=4 keyValueHeadCount=2 headDim=32 intermediateSize=320 vocabSize=256 maxPositions=2048 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=128 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "make-model 2 layers":
      "architecture=llama modelType=llama hiddenSize=128 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=32 intermediateSize=320 vocabSize=256 maxPositions=2048 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=128 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "make-model fault-kill":
      "architecture=llama modelType=llama hiddenSize=128 layerCount=6 headCount=4 keyValueHeadCount=2 headDim=32 intermediateSize=320 vocabSize=32768 maxPositions=2048 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=128 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "make-model FaultTests":
      "architecture=llama modelType=llama hiddenSize=32 layerCount=3 headCount=4 keyValueHeadCount=2 headDim=8 intermediateSize=64 vocabSize=256 maxPositions=2048 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=32 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "SyntheticConfigs.llama":
      "architecture=llama modelType=llama hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "SyntheticConfigs.opt":
      "architecture=opt modelType=opt hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=relu tieWordEmbeddings=nil wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "SyntheticConfigs.opt-postln-proj":
      "architecture=opt modelType=opt hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=relu tieWordEmbeddings=nil wordEmbedDim=32 normBefore=false finalNorm=false scaleAttention=true scaleAttentionByInverseLayer=false",
    "SyntheticConfigs.gpt2":
      "architecture=gpt2 modelType=gpt2 hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=geluTanh tieWordEmbeddings=nil wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "SyntheticConfigs.llama(tie: false)":
      "architecture=llama modelType=llama hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(false) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "SyntheticConfigs.llama(tie: nil)":
      "architecture=llama modelType=llama hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=nil wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "llama without hidden_size":
      "refused: 'hidden_size' is missing",
    "llama hidden_size string":
      "refused: 'hidden_size' has the wrong type",
    "llama kv 3":
      "refused: 'num_key_value_heads' has an invalid value",
    "llama rope llama3":
      // Differs on purpose: llama3 is run, and this one lacks its required factor.
      "refused: 'rope_parameters.factor' is missing",
    "llama gelu":
      "refused: hidden_act = gelu is not supported",
    "bert":
      "refused: model_type bert",
    "opt tanh":
      "refused: activation_function = tanh is not supported",
    "llama rope_parameters default":
      "architecture=llama modelType=llama hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=100000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(false) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    // the old parser read the integer 1 from a file as true (NSNumber bridging) but refused it in a dictionary; ModelConfig refuses both.
    "llama tie 1":
      "refused: 'tie_word_embeddings' has the wrong type",
    "mistral window":
      // Differs on purpose (sliding windows landed): the window is run on both blocks.
      "architecture=llama modelType=mistral hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=Optional(PruneModels.SlidingWindow(size: 4096, layers: Range(0..<2))) activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "qwen2 window off":
      "architecture=llama modelType=qwen2 hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "qwen2 window on":
      // Differs on purpose: qwen2 windows blocks from max_window_layers (default 28) on: none of 2.
      "architecture=llama modelType=qwen2 hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "llama rope_scaling linear":
      // Differs on purpose: linear scaling is run.
      "architecture=llama modelType=llama hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=10000.0 ropeScaling=Optional(PruneFormats.RopeFrequencyScaling.linear(factor: 2.0)) slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "opt no bias":
      "refused: enable_bias = false is not supported",
    "opt no affine":
      "refused: layer_norm_elementwise_affine = false is not supported",
    "opt remove final norm":
      "architecture=opt modelType=opt hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=relu tieWordEmbeddings=nil wordEmbedDim=64 normBefore=true finalNorm=false scaleAttention=true scaleAttentionByInverseLayer=false",
    "gpt2 flags":
      "architecture=gpt2 modelType=gpt2 hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=4 headDim=16 intermediateSize=96 vocabSize=100 maxPositions=512 normEpsilon=1e-06 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=geluTanh tieWordEmbeddings=Optional(false) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=false scaleAttentionByInverseLayer=true",
    "ModelConfigTests legacy llama3":
      // Differs on purpose: llama3 is run, and this one lacks its required low_freq_factor.
      "refused: 'rope_scaling.low_freq_factor' is missing",
    "ModelConfigTests mistral":
      // Differs on purpose: the window is run on both blocks.
      "architecture=llama modelType=mistral hiddenSize=64 layerCount=2 headCount=8 keyValueHeadCount=2 headDim=8 intermediateSize=128 vocabSize=100 maxPositions=2048 normEpsilon=1e-06 ropeTheta=10000.0 ropeScaling=nil slidingWindow=Optional(PruneModels.SlidingWindow(size: 4096, layers: Range(0..<2))) activation=silu tieWordEmbeddings=nil wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    // was maxPositions=0: the old parser's value for an absent max_position_embeddings, which made a rotary table of one position (a trap for any longer sequence); now transformers' default 2048.
    "ModelConfigTests qwen2":
      "architecture=llama modelType=qwen2 hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=128 vocabSize=100 maxPositions=2048 normEpsilon=1e-06 ropeTheta=10000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    // was refused ('n_positions' is missing); now transformers' default 1024, and a checkpoint whose position table differs fails its shape check.
    "ModelConfigTests gpt2 null inner":
      "architecture=gpt2 modelType=gpt2 hiddenSize=768 layerCount=12 headCount=12 keyValueHeadCount=12 headDim=64 intermediateSize=3072 vocabSize=50257 maxPositions=1024 normEpsilon=1e-05 ropeTheta=0.0 ropeScaling=nil slidingWindow=nil activation=geluTanh tieWordEmbeddings=nil wordEmbedDim=768 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    // was maxPositions=0, as above; now 2048.
    "ModelConfigTests encoding llama":
      "architecture=llama modelType=llama hiddenSize=64 layerCount=2 headCount=4 keyValueHeadCount=2 headDim=16 intermediateSize=160 vocabSize=256 maxPositions=2048 normEpsilon=1e-06 ropeTheta=100000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=64 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
    "fuzz overflow":
      "refused: 'n_embd' has the wrong type",
    "fuzz opt missing":
      "refused: 'hidden_size' is missing",
    "fuzz latin":
      "refused: not a JSON object",
    "fuzz array":
      "refused: not a JSON object",
    "bench smollm2":
      "architecture=llama modelType=llama hiddenSize=576 layerCount=30 headCount=9 keyValueHeadCount=3 headDim=64 intermediateSize=1536 vocabSize=49152 maxPositions=8192 normEpsilon=1e-05 ropeTheta=100000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=576 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false",
  ]

  @Test func everyConfigGivesTheForwardConfigItGaveBefore() throws {
    let configs = try Self.configs()
    #expect(Set(configs.map(\.0)) == Set(Self.expected.keys))
    for (name, data) in configs {
      #expect(
        Self.outcome { () throws(ModelConfigError) in try ForwardConfig(data: data, source: "config.json") }
          == Self.expected[name], "\(name)")
    }
  }

  /// The SmolLM2 GGUF: its metadata through `llamaConfig()`, and the config.json the Hugging Face
  /// export writes from it, give the same forward config as before.
  @Test(.enabled(if: ModelFiles.hasSmolLM2, "needs the SmolLM2 GGUF (scripts/fetch-model.sh)"))
  func smolLM2MetadataAndItsExportedConfig() throws {
    let expected =
      "architecture=llama modelType=llama hiddenSize=576 layerCount=30 headCount=9 keyValueHeadCount=3 headDim=64 intermediateSize=1536 vocabSize=49152 maxPositions=8192 normEpsilon=1e-05 ropeTheta=100000.0 ropeScaling=nil slidingWindow=nil activation=silu tieWordEmbeddings=Optional(true) wordEmbedDim=576 normBefore=true finalNorm=true scaleAttention=true scaleAttentionByInverseLayer=false"
    let gguf = try GGUFFile(contentsOf: ModelFiles.smolLM2)
    let llama = try gguf.llamaConfig()
    #expect(Self.outcome { () throws(ModelConfigError) in try ForwardConfig(.llama(llama)) } == expected)
    let exported = try #require(try GGUFHuggingFaceFiles.files(gguf, config: llama).first { $0.name == "config.json" })
      .data
    #expect(
      Self.outcome { () throws(ModelConfigError) in try ForwardConfig(data: exported, source: "config.json") }
        == expected)
  }

  /// The refusals are one line naming the file and the key, with a hint.
  @Test func refusalsNameTheFileAndTheKey() throws {
    var c = SyntheticConfigs.llama()
    c["rope_scaling"] = ["rope_type": "dynamic", "factor": 4.0]
    #expect {
      try ForwardConfig(data: Self.json(c), source: "/m/config.json")
    } throws: { e in
      let text = "\(e)"
      return text.hasPrefix("config /m/config.json: rope_scaling.rope_type = dynamic is not supported. Hint: ")
        && !text.contains("\n")
    }
  }
}
