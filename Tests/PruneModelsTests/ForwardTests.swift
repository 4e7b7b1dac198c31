import Foundation
import PruneKernels
import PruneTestSupport
import Testing

@testable import PruneModels

/// Small synthetic configs: 64 wide, 4 heads, 2 blocks; LLaMA with 2 key/value heads, OPT with
/// post-LN and a narrower word embedding (project_in/out), GPT-2 plain.
enum SyntheticConfigs {
  static func llama(tie: Bool? = true) -> [String: Any] {
    var c: [String: Any] = [
      "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 100, "max_position_embeddings": 512,
      "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    ]
    if let tie { c["tie_word_embeddings"] = tie }
    return c
  }
  static func opt(preLN: Bool = true, wordEmbedDim: Int = 64) -> [String: Any] {
    [
      "model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 96,
      "vocab_size": 100, "max_position_embeddings": 512, "do_layer_norm_before": preLN,
      "word_embed_proj_dim": wordEmbedDim, "activation_function": "relu",
    ]
  }
  static func gpt2() -> [String: Any] {
    [
      "model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_inner": 96, "vocab_size": 100,
      "n_positions": 512, "activation_function": "gelu_new",
    ]
  }
  static func named(_ name: String) -> [String: Any] {
    switch name {
    case "llama": return llama()
    case "opt": return opt()
    case "opt-postln-proj": return opt(preLN: false, wordEmbedDim: 32)
    default: return gpt2()
    }
  }
  static let all = ["llama", "opt", "opt-postln-proj", "gpt2"]

  static func model(_ name: String, seed: UInt64 = 7) throws -> TransformerLM {
    let config = try ForwardConfig(json: named(name))
    return try TransformerLM(config: config, weights: SyntheticModel.tensors(for: config, seed: seed))
  }
}

extension ForwardConfig {
  /// The forward config of a config.json written as a dictionary: serialised, then read through
  /// `ModelConfig` as a file would be (source "config.json").
  init(json object: [String: Any]) throws(ModelConfigError) {
    try self.init(data: try! JSONSerialization.data(withJSONObject: object), source: "config.json")
  }
}

func randomTokens(_ count: Int, vocab: Int = 100, seed: UInt64) -> [Int] {
  var rng = SplitMix64(seed: seed)
  return (0..<count).map { _ in Int(rng.next() % UInt64(vocab)) }
}

/// Two windows of 300 tokens: three query blocks each (128 + 128 + 44) and enough rows (600 × 64)
/// for the row-wise steps to run on several threads.
let windowLength = 300

@Suite("Forward pass: structure and determinism")
struct ForwardTests {
  @Test(arguments: SyntheticConfigs.all) func threadCountDoesNotChangeTheLogits(name: String) throws {
    let model = try SyntheticConfigs.model(name)
    let tokens = randomTokens(2 * windowLength, seed: 1)
    let reference = try Parallelism.$threadOverride.withValue(1) {
      try model.forward(tokens, sequenceLength: windowLength)
    }
    #expect(reference.maxMagnitude.isFinite && reference.maxMagnitude > 0)
    for threads in [2, 3] {
      let logits = try Parallelism.$threadOverride.withValue(threads) {
        try model.forward(tokens, sequenceLength: windowLength)
      }
      #expect(logits == reference, "\(name): \(threads) threads differ from 1")
    }
  }

  /// Windows laid end to end are independent: each window's rows equal a run on that window alone
  /// (the GEMM's elements depend only on k and the data, not on the row count).
  @Test(arguments: SyntheticConfigs.all) func windowsLaidEndToEndEqualSeparateRuns(name: String) throws {
    let model = try SyntheticConfigs.model(name)
    let tokens = randomTokens(2 * windowLength, seed: 2)
    let both = try model.forward(tokens, sequenceLength: windowLength)
    for w in 0..<2 {
      let alone = try model.forward(Array(tokens[(w * windowLength)..<((w + 1) * windowLength)]))
      let rows = both.submatrix(rows: (w * windowLength)..<((w + 1) * windowLength), columns: 0..<both.columns)
      #expect(rows == alone, "\(name): window \(w) differs when batched")
    }
    let nll = try model.negativeLogLikelihood(tokens, sequenceLength: windowLength)
    let separate =
      try model.negativeLogLikelihood(Array(tokens[..<windowLength]))
      + model.negativeLogLikelihood(Array(tokens[windowLength...]))
    #expect(nll.count == 2 * (windowLength - 1) && separate.count == nll.count)
    #expect(abs(nll.sum - separate.sum) <= 1e-12 * nll.sum, "\(name): NLL \(nll.sum) vs \(separate.sum)")
  }

  /// Causality: changing the tokens after position t leaves rows 0…t bit for bit unchanged (masked
  /// keys get probability exactly 0).
  @Test(arguments: SyntheticConfigs.all) func laterTokensDoNotChangeEarlierLogits(name: String) throws {
    let model = try SyntheticConfigs.model(name)
    var tokens = randomTokens(windowLength, seed: 3)
    let before = try model.forward(tokens)
    let t = 150
    for i in (t + 1)..<tokens.count { tokens[i] = (tokens[i] + 1) % 100 }
    let after = try model.forward(tokens)
    let prefix = 0..<(t + 1)
    #expect(before.submatrix(rows: prefix, columns: 0..<100) == after.submatrix(rows: prefix, columns: 0..<100))
    #expect(before.row(t + 1) != after.row(t + 1))
  }

  /// Zeroing every linear layer of a LLaMA block (no biases) leaves only the residual stream: the
  /// block becomes the identity, exactly. Also checks `setLinearWeight` by name.
  @Test func zeroedLlamaBlockIsTheIdentity() throws {
    var model = try SyntheticConfigs.model("llama")
    let h = try model.embed(randomTokens(windowLength, seed: 4))
    #expect(model.runBlock(0, hidden: h) != h)
    for name in model.linearLayerNames(block: 0) {
      let w = try model.linearWeights(name).weight
      try model.setLinearWeight(name, Matrix(rows: w.rows, columns: w.columns))
    }
    #expect(model.runBlock(0, hidden: h) == h)
    #expect(
      throws: ForwardError.shapeMismatch(
        name: "model.layers.0.mlp.up_proj.weight", expected: [96, 64], found: [64, 96])
    ) {
      try model.setLinearWeight("model.layers.0.mlp.up_proj", Matrix(rows: 64, columns: 96))
    }
    #expect(throws: ForwardError.unknownLayer(name: "model.layers.9.mlp.up_proj")) {
      try model.linearWeights("model.layers.9.mlp.up_proj")
    }
  }

  /// Grouped-query attention: at position 0 a query sees only itself, so softmax = [1] and head h's
  /// output is row 0 of V for key/value head ⌊h/(H/KV)⌋, exactly.
  @Test func queryHeadsReadTheirKeyValueHead() throws {
    let model = try SyntheticConfigs.model("llama")
    let h = try model.embed(randomTokens(windowLength, seed: 5))
    var inputs: [String: Matrix<Float>] = [:]
    _ = try model.runBlock(0, hidden: h) { c in for l in c.layers { inputs[l] = c.input } }
    let x = try #require(inputs["model.layers.0.self_attn.v_proj"])
    let v = matmul(x, try model.linearWeights("model.layers.0.self_attn.v_proj").weight, transposeB: true)
    let attention = try #require(inputs["model.layers.0.self_attn.o_proj"])
    let d = 16
    for head in 0..<4 {
      let kv = head / 2
      let out = Array(attention.row(0)[(head * d)..<((head + 1) * d)])
      #expect(out == Array(v.row(0)[(kv * d)..<((kv + 1) * d)]), "head \(head) should read key/value head \(kv)")
    }
  }

  /// The captured input of down_proj is silu(X·W_gateᵀ) ⊙ (X·W_upᵀ) of the captured gate/up input.
  /// Tolerance: the SIMD exp is within 2 ulp, the quotient, sum and product add ~3u: |Δ| ≤ 8u·|value|.
  @Test func downProjInputIsSwiGLU() throws {
    let model = try SyntheticConfigs.model("llama")
    let h = try model.embed(randomTokens(windowLength, seed: 6))
    var inputs: [String: Matrix<Float>] = [:]
    _ = try model.runBlock(1, hidden: h) { c in for l in c.layers { inputs[l] = c.input } }
    let x = try #require(inputs["model.layers.1.mlp.gate_proj"])
    let gate = matmul(x, try model.linearWeights("model.layers.1.mlp.gate_proj").weight, transposeB: true)
    let up = matmul(x, try model.linearWeights("model.layers.1.mlp.up_proj").weight, transposeB: true)
    let got = try #require(inputs["model.layers.1.mlp.down_proj"])
    var worst = 0.0
    for i in 0..<got.rows {
      for j in 0..<got.columns {
        let g = Double(gate[i, j])
        let u = Double(up[i, j])
        let exact = g / (1 + Foundation.exp(-g)) * u
        worst = max(worst, abs(Double(got[i, j]) - exact) / max(abs(exact), 1e-30))
      }
    }
    #expect(worst <= 8 * 0x1p-24, "relative error \(worst)")
  }

  /// The q/k/v input of a LLaMA block is RMSNorm(h)·γ: row by row, mean((x/γ)²) = ms/(ms + ε) with
  /// ms = mean(h²). Tolerance 1e-5 relative: a few roundings per element, averaged.
  @Test func attentionInputIsRMSNormalised() throws {
    let model = try SyntheticConfigs.model("llama")
    let h = try model.embed(randomTokens(64, seed: 8))
    var first: Matrix<Float>?
    _ = try model.runBlock(0, hidden: h) { c in if first == nil { first = c.input } }
    let x = try #require(first)
    let tensors = SyntheticModel.tensors(for: model.config, seed: 7)
    let gamma = try tensors.floatTensor("model.layers.0.input_layernorm.weight").values
    for i in 0..<x.rows {
      var ms = 0.0
      var got = 0.0
      for j in 0..<x.columns {
        ms += Double(h[i, j]) * Double(h[i, j]) / 64
        let y = Double(x[i, j]) / Double(gamma[j])
        got += y * y / 64
      }
      let expected = ms / (ms + 1e-5)
      #expect(abs(got - expected) <= 1e-5 * expected, "row \(i): \(got) vs \(expected)")
    }
  }

  /// Post-LN OPT (do_layer_norm_before = false, as OPT-350m): a block's output is its second
  /// LayerNorm's output, so (y − β)/γ has mean 0 and variance v/(v + ε) in every row.
  @Test func postLayerNormOPTBlockOutputIsNormalised() throws {
    let model = try SyntheticConfigs.model("opt-postln-proj")
    #expect(model.config.wordEmbedDim == 32 && !model.config.normBefore && !model.config.finalNorm)
    let h = try model.embed(randomTokens(windowLength, seed: 9))
    #expect(h.columns == 64)
    let y = model.runBlock(0, hidden: h)
    let tensors = SyntheticModel.tensors(for: model.config, seed: 7)
    let gamma = try tensors.floatTensor("model.decoder.layers.0.final_layer_norm.weight").values
    let beta = try tensors.floatTensor("model.decoder.layers.0.final_layer_norm.bias").values
    for i in 0..<y.rows {
      let z = (0..<64).map { (Double(y[i, $0]) - Double(beta[$0])) / Double(gamma[$0]) }
      let mean = z.reduce(0, +) / 64
      let variance = z.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 64
      #expect(abs(mean) <= 1e-5 && abs(variance - 1) <= 1e-3, "row \(i): mean \(mean), variance \(variance)")
    }
    let logits = try model.forward(randomTokens(windowLength, seed: 10))
    #expect(logits.rows == windowLength && logits.columns == 100 && logits.maxMagnitude.isFinite)
  }

  /// A separate head is used when the config unties it: a head of 2·E gives exactly twice the
  /// tied model's logits (scaling by 2 is exact).
  @Test func untiedHeadIsRead() throws {
    let tiedConfig = try ForwardConfig(json: SyntheticConfigs.llama(tie: true))
    var tensors = SyntheticModel.tensors(for: tiedConfig, seed: 11)
    let tied = try TransformerLM(config: tiedConfig, weights: tensors)
    let e = try tensors.floatTensor("model.embed_tokens.weight")
    tensors.tensors["lm_head.weight"] = FloatTensor(shape: e.shape, values: e.values.map { 2 * $0 })
    let untied = try TransformerLM(
      config: try ForwardConfig(json: SyntheticConfigs.llama(tie: false)), weights: tensors)
    // With the key absent, the presence of lm_head.weight decides.
    let inferred = try TransformerLM(
      config: try ForwardConfig(json: SyntheticConfigs.llama(tie: nil)), weights: tensors)
    let tokens = randomTokens(40, seed: 12)
    let base = try tied.forward(tokens)
    #expect(try untied.forward(tokens) == base.map { 2 * $0 })
    #expect(try inferred.forward(tokens) == base.map { 2 * $0 })
    tensors.tensors["lm_head.weight"] = nil
    #expect(throws: ForwardError.missingTensor(name: "lm_head.weight", architecture: "llama")) {
      try TransformerLM(config: try ForwardConfig(json: SyntheticConfigs.llama(tie: false)), weights: tensors)
    }
  }

  /// OPT checkpoints come with `model.decoder.` (transformers) or `decoder.` (the original
  /// facebook/opt-* files) prefixes, GPT-2 with `transformer.` or none: both load to the same model.
  @Test(arguments: [("opt", "model.decoder.", "decoder."), ("gpt2", "transformer.", "")])
  func unprefixedCheckpointNamesLoad(name: String, prefix: String, replacement: String) throws {
    let config = try ForwardConfig(json: SyntheticConfigs.named(name))
    let tensors = SyntheticModel.tensors(for: config, seed: 13)
    var renamed: [String: FloatTensor] = [:]
    for (k, v) in tensors.tensors {
      renamed[k.hasPrefix(prefix) ? replacement + k.dropFirst(prefix.count) : k] = v
    }
    #expect(renamed.keys.contains { !$0.hasPrefix(prefix) })
    let a = try TransformerLM(config: config, weights: tensors)
    let b = try TransformerLM(config: config, weights: InMemoryTensors(renamed))
    let tokens = randomTokens(20, seed: 14)
    #expect(try a.forward(tokens) == b.forward(tokens))
    #expect(
      b.linearLayerNames(block: 1).allSatisfy { $0.hasPrefix(replacement + (name == "opt" ? "layers.1." : "h.1.")) })
  }
}

@Suite("Forward pass: numerical pieces")
struct ForwardOpsTests {
  /// fastExp against Foundation's exp over the whole clamped range: within 2 ulp (2ε relative).
  @Test func fastExpIsWithinTwoUlp() {
    var worst = 0.0
    var x = -87.0
    while x <= 88 {
      let v = Float(x)
      let exact = Foundation.exp(Double(v))
      worst = max(worst, abs(Double(fastExp(v)) - exact) / exact)
      x += 0.000_97
    }
    #expect(worst <= 2 * 0x1p-23, "max relative error \(worst)")
    #expect(fastExp(Float(0)) == 1)
  }

  /// RoPE: position 0 is the identity, every (xᵢ, x_{i+d/2}) pair keeps its length, and scores
  /// depend only on relative position: ⟨R_p q, R_p' k⟩ = ⟨R_{p+s} q, R_{p'+s} k⟩ (to rounding:
  /// angles up to ~500 rad carry |angle|·u absolute error, so 1e-3 relative to |q|·|k|).
  @Test func rotaryIsARelativePositionRotation() {
    let d = 16
    let table = RotaryTable(headDim: d, theta: 10000, positions: 512)
    var rng = SplitMix64(seed: 15)
    let q = (0..<d).map { _ in Float(Double.random(in: -1...1, using: &rng)) }
    let k = (0..<d).map { _ in Float(Double.random(in: -1...1, using: &rng)) }
    func rotated(_ v: [Float], at p: Int) -> [Float] {
      var m = Matrix<Float>(rows: p + 1, columns: d)
      m.setRow(p, to: v)
      applyRotary(&m, heads: 1, table: table, sequenceLength: p + 1)
      return m.row(p)
    }
    #expect(rotated(q, at: 0) == q)
    let r = rotated(q, at: 37)
    for i in 0..<(d / 2) {
      let before = Double(q[i] * q[i] + q[i + d / 2] * q[i + d / 2])
      let after = Double(r[i] * r[i] + r[i + d / 2] * r[i + d / 2])
      #expect(abs(before - after) <= 1e-5 * before + 1e-7)
    }
    func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
    let norm = dot(q, q).squareRoot() * dot(k, k).squareRoot()
    for (p, p2, s) in [(10, 3, 100), (200, 0, 300), (5, 5, 77)] {
      let a = dot(rotated(q, at: p), rotated(k, at: p2))
      let b = dot(rotated(q, at: p + s), rotated(k, at: p2 + s))
      #expect(abs(a - b) <= 1e-3 * norm, "p \(p) p' \(p2) shift \(s): \(a) vs \(b)")
    }
  }

  /// NLL of equal logits is log V per row; of random logits, the direct Double formula within
  /// γ₁₂₈ + 2ε relative on Σexp (Float lanes of ≤ 128 terms, 2-ulp exp) → 1e-5 per row.
  @Test func negativeLogLikelihoodIsLogSoftmax() {
    let flat = negativeLogLikelihood(logits: Matrix(rows: 3, columns: 50, repeating: 0.25), targets: [0, 7, 49])
    #expect(flat.count == 3 && abs(flat.mean - Foundation.log(50)) <= 1e-6)
    var rng = SplitMix64(seed: 16)
    let logits = Matrix<Float>.random(rows: 20, columns: 3001, in: -12...12, using: &rng)
    let targets = (0..<19).map { _ in Int(rng.next() % 3001) }
    let got = negativeLogLikelihood(logits: logits, targets: targets)
    var expected = 0.0
    for (r, y) in targets.enumerated() {
      let z = logits.row(r).map(Double.init)
      let m = z.max()!
      expected += Foundation.log(z.reduce(0) { $0 + Foundation.exp($1 - m) }) + m - z[y]
    }
    #expect(got.count == 19 && abs(got.sum - expected) <= 19 * 1e-5, "\(got.sum) vs \(expected)")
    #expect(abs(NegativeLogLikelihood(sum: 2 * Foundation.log(3), count: 2).perplexity - 3) <= 1e-12)
  }
}

@Suite("Forward pass: errors")
struct ForwardErrorTests {
  @Test func configErrorsNameTheKey() {
    var c = SyntheticConfigs.llama()
    c["hidden_size"] = nil
    #expect(throws: ModelConfigError.missingKey(source: "config.json", modelType: "llama", key: "hidden_size")) {
      try ForwardConfig(json: c)
    }
    c = SyntheticConfigs.llama()
    c["hidden_size"] = "64"
    #expect(throws: ModelConfigError.wrongType(source: "config.json", key: "hidden_size", reason: "is not of type Int"))
    {
      try ForwardConfig(json: c)
    }
    c = SyntheticConfigs.llama()
    c["num_key_value_heads"] = 3
    #expect(throws: ModelConfigError.self) { try ForwardConfig(json: c) }
    c = SyntheticConfigs.llama()
    c["rope_parameters"] = ["rope_type": "llama3", "rope_theta": 500000.0]
    #expect(throws: ModelConfigError.self) { try ForwardConfig(json: c) }
    c = SyntheticConfigs.llama()
    c["hidden_act"] = "gelu"
    #expect(throws: ModelConfigError.self) { try ForwardConfig(json: c) }
    #expect(throws: ModelConfigError.self) { try ForwardConfig(json: ["model_type": "bert"]) }
    var opt = SyntheticConfigs.opt()
    opt["activation_function"] = "tanh"
    #expect(throws: ModelConfigError.self) { try ForwardConfig(json: opt) }
    let errors: [ModelConfigError] = [
      .missingKey(source: "c", modelType: "llama", key: "x"), .wrongType(source: "c", key: "x", reason: "y"),
      .unsupported(source: "c", key: "k", value: "v", hint: "h."), .invalidValue(source: "c", key: "k", reason: "r"),
      .unreadable(path: "/p", reason: "r"),
    ]
    for e in errors { #expect(e.description.contains("Hint:") && !e.description.contains("\n"), "\(e)") }
  }

  @Test func configReadsTransformersFiveRopeParametersAndBooleans() throws {
    var c = SyntheticConfigs.llama()
    c["rope_theta"] = nil
    c["rope_parameters"] = ["rope_type": "default", "rope_theta": 100000.0]
    c["tie_word_embeddings"] = false
    let config = try ForwardConfig(json: c)
    #expect(config.ropeTheta == 100000 && config.tieWordEmbeddings == false && config.headDim == 16)
    c["tie_word_embeddings"] = 1
    #expect(
      throws: ModelConfigError.wrongType(
        source: "config.json", key: "tie_word_embeddings", reason: "is not of type Bool")
    ) {
      try ForwardConfig(json: c)
    }
  }

  @Test func modelErrorsNameTheTensorOrToken() throws {
    let config = try ForwardConfig(json: SyntheticConfigs.gpt2())
    var tensors = SyntheticModel.tensors(for: config, seed: 17)
    let model = try TransformerLM(config: config, weights: tensors)
    #expect(throws: ForwardError.tokenOutOfRange(token: 100, index: 2, vocabSize: 100)) {
      try model.forward([1, 2, 100])
    }
    #expect(throws: ForwardError.sequenceTooLong(length: 513, maxPositions: 512)) {
      try model.forward(randomTokens(513, seed: 18))
    }
    #expect(throws: ForwardError.invalidSequenceLength(tokens: 7, sequenceLength: 3)) {
      try model.forward(randomTokens(7, seed: 19), sequenceLength: 3)
    }
    #expect(throws: ForwardError.invalidSequenceLength(tokens: 0, sequenceLength: 0)) { try model.forward([]) }

    let name = "transformer.h.1.mlp.c_fc.weight"
    let saved = tensors.tensors[name]
    tensors.tensors[name] = FloatTensor(shape: [96, 64], values: saved!.values)
    #expect(throws: ForwardError.shapeMismatch(name: name, expected: [64, 96], found: [96, 64])) {
      try TransformerLM(config: config, weights: tensors)
    }
    tensors.tensors[name] = nil
    #expect(throws: ForwardError.missingTensor(name: name, architecture: "gpt2")) {
      try TransformerLM(config: config, weights: tensors)
    }
    tensors.tensors[name] = saved
    #expect(throws: ForwardError.unreadableTensor(name: "transformer.wte.weight", reason: "decode failed")) {
      try TransformerLM(config: config, weights: FailingSource(inner: tensors, failing: "transformer.wte.weight"))
    }
    let errors: [ForwardError] = [
      .missingTensor(name: "a", architecture: "llama"), .shapeMismatch(name: "a", expected: [1], found: [2]),
      .unreadableTensor(name: "a", reason: "r"), .tokenOutOfRange(token: 1, index: 0, vocabSize: 1),
      .sequenceTooLong(length: 2, maxPositions: 1), .invalidSequenceLength(tokens: 1, sequenceLength: 2),
      .unknownLayer(name: "a"),
    ]
    for e in errors { #expect(e.description.contains("Hint:") && !e.description.contains("\n"), "\(e)") }
  }
}

/// A tensor source whose decoding of one tensor fails.
struct FailingSource: TensorSource {
  struct Failure: Error, CustomStringConvertible { var description: String { "decode failed" } }
  let inner: InMemoryTensors
  let failing: String
  var tensorNames: [String] { inner.tensorNames }
  func shape(of name: String) -> [Int]? { inner.shape(of: name) }
  func floatTensor(_ name: String) throws -> FloatTensor {
    if name == failing { throw Failure() }
    return try inner.floatTensor(name)
  }
  func storedType(of name: String) -> StoredFloatType? { inner.storedType(of: name) }
}
