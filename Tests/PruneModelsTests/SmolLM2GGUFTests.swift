import Foundation
import PruneModels
import PruneTestSupport
import Testing

/// Checks against the real SmolLM2-135M-Instruct Q4_1 GGUF (scripts/fetch-model.sh). Without the
/// file the suite is reported as skipped, never as passed.
///
/// The checksums were computed with gguf-py 0.19.0 (`gguf.quants.dequantize`, numpy 2.4.6) and the
/// un-permutation of Docs/evaluation.md#reading-the-gguf, in a converter verified against
/// transformers: checksum(w) = Σᵢ bits(wᵢ)·(i + 1) mod 2⁶⁴ over the row-major float32 values, which
/// changes when any value's bits or position change.
@Suite(.enabled(if: ModelFiles.hasSmolLM2, "SmolLM2 GGUF not fetched: run scripts/fetch-model.sh"))
struct SmolLM2GGUFTests {
  static func checksum(_ values: [Float]) -> UInt64 {
    var sum: UInt64 = 0
    for (i, v) in values.enumerated() { sum = sum &+ UInt64(v.bitPattern) &* UInt64(i + 1) }
    return sum
  }

  @Test func inventoryAndHyperParameters() throws {
    let g = try GGUFFile(contentsOf: ModelFiles.smolLM2)
    #expect(g.version == 3 && g.alignment == 32 && g.architecture == "llama")
    #expect(g.tensorInfos.count == 272 && g.tensorNames.count == 272)
    var types: [String: Int] = [:]
    for t in g.tensorInfos { types[t.type.name, default: 0] += 1 }
    #expect(types == ["Q4_1": 210, "Q8_0": 1, "F32": 61])
    #expect(g.tensorInfos.map(\.elementCount).reduce(0, +) == 134_515_008)

    let shapes: [String: [Int]] = [
      "model.embed_tokens.weight": [49152, 576], "model.norm.weight": [576],
      "model.layers.0.self_attn.q_proj.weight": [576, 576], "model.layers.0.self_attn.k_proj.weight": [192, 576],
      "model.layers.0.self_attn.v_proj.weight": [192, 576], "model.layers.0.self_attn.o_proj.weight": [576, 576],
      "model.layers.29.mlp.gate_proj.weight": [1536, 576], "model.layers.29.mlp.up_proj.weight": [1536, 576],
      "model.layers.29.mlp.down_proj.weight": [576, 1536], "model.layers.29.input_layernorm.weight": [576],
      "model.layers.29.post_attention_layernorm.weight": [576],
    ]
    for (name, shape) in shapes { #expect(g.shape(of: name) == shape, "\(name)") }
    #expect(g.shape(of: "lm_head.weight") == nil)  // tied
    let linear = g.tensorNames.filter { $0.hasPrefix("model.layers.") && $0.hasSuffix("_proj.weight") }
    #expect(linear.count == 210)

    let c = try g.llamaConfig()
    let expected = LlamaConfig(
      modelType: "llama", hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30, numAttentionHeads: 9,
      numKeyValueHeads: 3, headDim: 64, rmsNormEps: Double(Float(1e-5)), ropeTheta: 100_000,
      maxPositionEmbeddings: 8192, vocabSize: 49152, tieWordEmbeddings: true, bosTokenId: 1, eosTokenId: [2])
    #expect(c == expected)
  }

  @Test func tensorsAreBitIdenticalToTheReferenceConverter() throws {
    let g = try GGUFFile(contentsOf: ModelFiles.smolLM2)
    let reference: [(String, UInt64, [Float])] = [
      (
        "model.embed_tokens.weight", 8_619_863_071_844_056_960,
        [-0.10654449462890625, 0.032978057861328125, 0.048198699951171875, -0.022830963134765625]
      ),
      (
        "model.layers.0.self_attn.q_proj.weight", 5_299_608_424_901_908_992,
        [-0.0963134765625, 0.1573486328125, -0.0963134765625, -0.73046875]
      ),
      (
        "model.layers.0.self_attn.k_proj.weight", 12_889_547_066_965_061_632,
        [-0.1552734375, 0.3402099609375, -0.485595703125, -0.3204345703125]
      ),
      (
        "model.layers.0.self_attn.v_proj.weight", 12_793_714_534_007_636_992,
        [0.10547637939453125, 0.07936859130859375, -0.09033203125, 0.02715301513671875]
      ),
      (
        "model.layers.0.mlp.down_proj.weight", 13_661_875_947_698_091_520,
        [-0.330810546875, 0.3460693359375, 0.0753173828125, -0.4661865234375]
      ),
      (
        "model.layers.29.self_attn.q_proj.weight", 5_048_042_490_160_481_792,
        [0.261962890625, -0.065673828125, -0.02471923828125, 0.09814453125]
      ),
      (
        "model.layers.29.self_attn.k_proj.weight", 12_818_619_926_831_517_696,
        [0.062408447265625, 0.00433349609375, 0.0333709716796875, 0.01885223388671875]
      ),
      ("model.norm.weight", 178_720_733_790_208, [1.7578125, 1.8203125, 1.78125, 1.6015625]),
    ]
    for (name, sum, first) in reference {
      let t = try g.floatTensor(name)
      #expect(Array(t.values.prefix(4)) == first, "\(name)")
      #expect(Self.checksum(t.values) == sum, "\(name)")
    }
    // All 272 tensors at once: Σₖ checksumₖ·(k + 1) over the sorted names.
    var total: UInt64 = 0
    for (k, name) in g.tensorNames.enumerated() {
      total = total &+ Self.checksum(try g.floatTensor(name).values) &* UInt64(k + 1)
    }
    #expect(total == 6_576_722_751_108_116_352)
  }

  @Test func unpermutedRowsAreTheStoredRowsReordered() throws {
    let g = try GGUFFile(contentsOf: ModelFiles.smolLM2)
    for (name, gguf, heads) in [
      ("model.layers.7.self_attn.q_proj.weight", "blk.7.attn_q.weight", 9),
      ("model.layers.7.self_attn.k_proj.weight", "blk.7.attn_k.weight", 3),
    ] {
      let hf = try g.floatTensor(name)
      let raw = try g.rawFloatTensor(gguf)
      let (rows, columns) = (hf.shape[0], hf.shape[1])
      for r in 0..<rows {
        let s = LlamaRotaryPermutation.ggufRow(ofHuggingFaceRow: r, rows: rows, heads: heads)
        #expect(
          hf.values[(r * columns)..<((r + 1) * columns)] == raw.values[(s * columns)..<((s + 1) * columns)],
          "\(name) row \(r)")
      }
      // Q4_1: each block of 32 weights holds at most 16 distinct values (d·q + m, q ∈ 0...15).
      for b in stride(from: 0, to: raw.values.count, by: 32) {
        #expect(Set(raw.values[b..<(b + 32)]).count <= 16, "\(gguf) block at \(b)")
      }
    }
  }
}
