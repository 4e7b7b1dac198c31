import Foundation
import PruneFormats
import PruneModels
import PruneTestSupport
import Testing

/// A LLaMA GGUF whose matrices are K-quants, as in llama.cpp's Q4_K_M, Q5_K_M and Q6_K files, loads
/// as a model: its config, tokenizer and every weight, bit for bit the values gguf-py decodes the
/// same blocks to (the golden blocks of Fixtures/golden/gguf-quants/ repeated to fill each tensor).
@Suite struct GGUFKQuantModelTests {
  // One block of a 256-wide model: rows of exactly one K-quant super-block each.
  static let hidden = 256
  static let heads = 4
  static let kvHeads = 2
  static let ffn = 256
  static let tokens = (33..<127).map { String(UnicodeScalar(UInt8($0))) } + ["Ġ", "Ċ", "th", "<|end|>"]

  /// (GGUF name, ne innermost first, golden type) of every matrix; the norms are F32 ones.
  static let matrices: [(name: String, dims: [Int], type: String)] = [
    ("token_embd.weight", [hidden, tokens.count], "Q6_K"),
    ("output.weight", [hidden, tokens.count], "Q2_K"),
    ("blk.0.attn_q.weight", [hidden, hidden], "Q4_K"),
    ("blk.0.attn_k.weight", [hidden, kvHeads * hidden / heads], "Q4_K"),
    ("blk.0.attn_v.weight", [hidden, kvHeads * hidden / heads], "Q6_K"),
    ("blk.0.attn_output.weight", [hidden, hidden], "Q4_K"),
    ("blk.0.ffn_gate.weight", [hidden, ffn], "Q5_K"),
    ("blk.0.ffn_up.weight", [hidden, ffn], "Q3_K"),
    ("blk.0.ffn_down.weight", [ffn, hidden], "Q6_K"),
  ]

  /// The file's bytes and, per GGUF matrix name, the bit patterns gguf-py decodes it to.
  static func model() throws -> (bytes: [UInt8], expected: [String: [UInt32]]) {
    var b = GGUFBuilder()
    b.metadata = [
      ("general.architecture", .string("llama")),
      ("llama.context_length", .uint32(64)),
      ("llama.embedding_length", .uint32(UInt32(hidden))),
      ("llama.feed_forward_length", .uint32(UInt32(ffn))),
      ("llama.block_count", .uint32(1)),
      ("llama.attention.head_count", .uint32(UInt32(heads))),
      ("llama.attention.head_count_kv", .uint32(UInt32(kvHeads))),
      ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
      ("tokenizer.ggml.model", .string("gpt2")),
      ("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) })),
      ("tokenizer.ggml.token_type", .array(.int32, tokens.indices.map { .int32($0 == tokens.count - 1 ? 3 : 1) })),
      ("tokenizer.ggml.merges", .array(.string, [.string("t h")])),
      ("tokenizer.ggml.eos_token_id", .uint32(UInt32(tokens.count - 1))),
    ]
    let ones = [Float](repeating: 1, count: hidden).flatMap { GGUFBuilder.le($0.bitPattern) }
    b.tensors = ["output_norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight"].map {
      ($0, [hidden], 0, ones)
    }
    var expected: [String: [UInt32]] = [:]
    for m in matrices {
      let golden = try GGUFQuantGolden(m.type)
      let (bytes, bits) = golden.tiled(blocks: m.dims[0] * m.dims[1] / 256)
      b.tensors.append((m.name, m.dims, golden.type.rawValue, bytes))
      expected[m.name] = bits
    }
    return (b.build().bytes, expected)
  }

  @Test func aKQuantModelLoadsWithGGUFPysValues() throws {
    let (bytes, expected) = try Self.model()
    let folder = TemporaryFolder("kquant-model")
    defer { folder.remove() }
    let url = folder.file("kquant.gguf")
    try Data(bytes).write(to: url)

    // The file: every matrix decodes (in the file's layout) to gguf-py's values.
    let gguf = try GGUFFile(contentsOf: url)
    for m in Self.matrices {
      #expect(gguf.tensorInfo(named: m.name)?.type.name == m.type)
      #expect(try gguf.rawFloatTensor(m.name).values.map(\.bitPattern) == expected[m.name], "\(m.name)")
    }
    #expect(
      try gguf.floatTensor("model.embed_tokens.weight").values.map(\.bitPattern) == expected["token_embd.weight"])
    #expect(try gguf.floatTensor("lm_head.weight").values.map(\.bitPattern) == expected["output.weight"])

    // The model: config, tokenizer and the linear layers it will prune.
    let loaded = try LoadedModel(contentsOf: url)
    #expect(loaded.format == .gguf)
    let c = loaded.model.config
    #expect(c.hiddenSize == 256 && c.layerCount == 1 && c.headCount == 4 && c.keyValueHeadCount == 2)
    #expect(c.intermediateSize == 256 && c.vocabSize == Self.tokens.count && c.tieWordEmbeddings == false)
    #expect(loaded.tokenizer.vocabularySize == Self.tokens.count)
    let unpermuted = [
      "self_attn.v_proj": "blk.0.attn_v.weight", "self_attn.o_proj": "blk.0.attn_output.weight",
      "mlp.gate_proj": "blk.0.ffn_gate.weight", "mlp.up_proj": "blk.0.ffn_up.weight",
      "mlp.down_proj": "blk.0.ffn_down.weight",
    ]
    for (role, ggufName) in unpermuted {
      let w = try loaded.model.linearWeights("model.layers.0.\(role)").weight
      #expect(w.elements.map(\.bitPattern) == expected[ggufName], "\(role)")
    }
    // q and k: the rows llama.cpp's converter permuted are put back, the values are unchanged.
    for role in ["q_proj", "k_proj"] {
      let w = try loaded.model.linearWeights("model.layers.0.self_attn.\(role)").weight
      let fromFile = try gguf.floatTensor("model.layers.0.self_attn.\(role).weight")
      #expect(w.elements.map(\.bitPattern) == fromFile.values.map(\.bitPattern), "\(role)")
      let ggufName = role == "q_proj" ? "blk.0.attn_q.weight" : "blk.0.attn_k.weight"
      #expect(w.elements.map(\.bitPattern).sorted() == expected[ggufName]?.sorted(), "\(role)")
    }
  }
}
