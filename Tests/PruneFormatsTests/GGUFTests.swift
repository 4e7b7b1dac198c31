import Foundation
import PruneFormats
import PruneTestSupport
import Testing

/// IEEE half-float bit patterns used below and their exact values.
private enum Half {
  static let one: UInt16 = 0x3C00  // 1
  static let minusTwo: UInt16 = 0xC000  // −2
  static let half: UInt16 = 0x3800  // 0.5
  static let quarter: UInt16 = 0x3400  // 0.25
  static let two: UInt16 = 0x4000  // 2
  static let minusOne: UInt16 = 0xBC00  // −1
  static let max: UInt16 = 0x7BFF  // 65504
  static let smallestSubnormal: UInt16 = 0x0001  // 2⁻²⁴
  static let infinity: UInt16 = 0x7C00
  static let third: UInt16 = 0x3555  // 0.333251953125 = 1365/4096
}

private func le16(_ v: UInt16) -> [UInt8] { GGUFBuilder.le(v) }

/// Every metadata type once, including nested and empty arrays and a non-ASCII string.
private let allMetadata: [(String, GGUFValue)] = [
  ("general.architecture", .string("llama")),
  ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60000)), ("t.i16", .int16(-30000)),
  ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)),
  ("t.u64", .uint64(18_000_000_000_000_000_000)), ("t.i64", .int64(-9_000_000_000_000_000_000)),
  ("t.f32", .float32(0.1)), ("t.f64", .float64(-2.5e-300)), ("t.true", .bool(true)), ("t.false", .bool(false)),
  ("t.string", .string("naïve “GGUF” 🙂")), ("t.empty", .string("")),
  ("t.strings", .array(.string, [.string("Ġt"), .string(""), .string("<|im_start|>")])),
  ("t.ints", .array(.int32, [.int32(3), .int32(-1)])),
  ("t.nested", .array(.array, [.array(.uint8, [.uint8(1), .uint8(2)]), .array(.float32, [])])),
  ("t.none", .array(.uint64, [])),
]

// MARK: - Tests

@Suite struct GGUFTests {
  @Test func everyMetadataTypeRoundTrips() throws {
    var b = GGUFBuilder()
    b.metadata = allMetadata
    let g = try b.file()
    #expect(g.version == 3)
    #expect(g.metadataKeys == allMetadata.map(\.0))
    for (k, v) in allMetadata { #expect(g.metadata[k] == v, "key \(k)") }
    #expect(g.tensorInfos.isEmpty)
    #expect(g.alignment == 32)
    #expect(g.architecture == "llama")
    #expect(try g.int("t.u32") == 4_000_000_000)
    #expect(try g.int("t.i8") == -100)
    #expect(try g.double("t.f32") == Double(Float(0.1)))
    #expect(try g.string("t.string") == "naïve “GGUF” 🙂")
    #expect(try g.array("t.strings").compactMap(\.string) == ["Ġt", "", "<|im_start|>"])
    // u64 beyond Int.max is not an Int: a typed error, not a trap.
    #expect(throws: GGUFError.self) { try g.int("t.u64") }
    #expect(throws: GGUFError.missingMetadata(path: "test.gguf", key: "nope")) { try g.int("nope") }
    #expect(throws: GGUFError.self) { try g.string("t.u8") }
  }

  /// The dequantised values of each type, computed by hand from the block layouts.
  @Test func dequantisesEachTypeToHandComputedValues() throws {
    var b = GGUFBuilder()
    // F32: 2×3, shape [2, 3] (ne = [3, 2]).
    let f32: [Float] = [1, -2, 0.5, 3.25, -0, 1e-30]
    b.tensors.append(("f32", [3, 2], 0, f32.flatMap { GGUFBuilder.le($0.bitPattern) }))
    // F16: exact values of the bit patterns.
    let f16Bits = [Half.one, Half.minusTwo, Half.max, Half.smallestSubnormal, Half.infinity, Half.third]
    b.tensors.append(("f16", [6], 1, f16Bits.flatMap(le16)))
    // BF16: the upper half of a float.
    b.tensors.append(("bf16", [2], 30, le16(0x3F80) + le16(0xC040)))
    // Q8_0: d = 0.25, q = −128, −127, ..., −97 (32 values): w = 0.25·q.
    let q8: [Int8] = (0..<32).map { Int8(-128 + $0) }
    b.tensors.append(("q8_0", [32], 8, le16(Half.quarter) + q8.map { UInt8(bitPattern: $0) }))
    // Q4_0: d = 2, byte j = (15 − j) << 4 | j: low nibbles 0...15, high nibbles 15...0:
    // w_j = 2·(j − 8), w_{16+j} = 2·(15 − j − 8).
    let q4bytes: [UInt8] = (0..<16).map { UInt8((15 - $0) << 4 | $0) }
    b.tensors.append(("q4_0", [32], 2, le16(Half.two) + q4bytes))
    // Q4_1: two blocks in one row of 64. Block 0: d = 0.5, m = −1 → w_j = 0.5·j − 1,
    // w_{16+j} = 0.5·(15 − j) − 1. Block 1: d = 1/3 (half 0x3555), m = 1 with all nibbles 3 →
    // 3·0.333251953125 + 1 = 1.999755859375 (exact in Float).
    b.tensors.append(
      (
        "q4_1", [64], 3,
        le16(Half.half) + le16(Half.minusOne) + q4bytes + le16(Half.third) + le16(Half.one)
          + [UInt8](repeating: 0x33, count: 16)
      ))
    let g = try b.file()

    let t32 = try g.floatTensor("f32")
    #expect(t32.shape == [2, 3])
    #expect(t32.values.map(\.bitPattern) == f32.map(\.bitPattern))

    #expect(try g.floatTensor("f16").values == [1, -2, 65504, 0x1p-24, .infinity, 0.333251953125])
    #expect(try g.floatTensor("bf16").values == [1, -3])
    #expect(try g.floatTensor("q8_0").values == q8.map { 0.25 * Float($0) })
    let q40Low: [Float] = (0..<16).map { j in Float(2 * (j - 8)) }
    let q40High: [Float] = (0..<16).map { j in Float(2 * (15 - j - 8)) }
    #expect(try g.floatTensor("q4_0").values == q40Low + q40High)
    let q41Low: [Float] = (0..<16).map { j in 0.5 * Float(j) - 1 }
    let q41High: [Float] = (0..<16).map { j in 0.5 * Float(15 - j) - 1 }
    let q41 = q41Low + q41High + [Float](repeating: 1.999755859375, count: 32)
    #expect(try g.floatTensor("q4_1").values == q41)

    // The tensor infos as stored.
    let info = try #require(g.tensorInfo(named: "q4_1"))
    #expect(info.type == .q4_1 && info.dimensions == [64] && info.byteCount == 40 && info.offset % 32 == 0)
    #expect(g.tensorInfo(named: "f32")?.shape == [2, 3])
    #expect(g.tensorNames == ["bf16", "f16", "f32", "q4_0", "q4_1", "q8_0"])
  }

  @Test(arguments: [1, 8, 32, 64, 256])
  func honoursGeneralAlignment(alignment: Int) throws {
    var b = GGUFBuilder()
    b.alignment = alignment
    if alignment != 32 { b.metadata = [("general.alignment", .uint32(UInt32(alignment)))] }
    // Odd sizes, so the padding matters.
    b.tensors = [
      ("a", [3], 0, [Float](arrayLiteral: 1, 2, 3).flatMap { GGUFBuilder.le($0.bitPattern) }),
      ("b", [5], 1, [Half.one, Half.two, Half.half, Half.quarter, Half.minusOne].flatMap(le16)),
      ("c", [1], 0, GGUFBuilder.le(Float(7).bitPattern)),
    ]
    let (bytes, dataOffset) = b.build()
    let g = try GGUFFile(data: Data(bytes), path: "align\(alignment)")
    #expect(g.alignment == alignment)
    #expect(g.dataOffset == dataOffset && dataOffset % alignment == 0)
    #expect(try g.floatTensor("a").values == [1, 2, 3])
    #expect(try g.floatTensor("b").values == [1, 2, 0.5, 0.25, -1])
    #expect(try g.floatTensor("c").values == [7])
  }

  @Test func mapsLlamaNamesAndUnpermutesQueryAndKeyRows() throws {
    // A tiny llama: hidden 8, 2 query heads and 1 key/value head of size 4.
    let hidden = 8
    let heads = 2
    let kvHeads = 1
    let headDim = 4
    var b = GGUFBuilder()
    b.metadata = [
      ("general.architecture", .string("llama")),
      ("llama.embedding_length", .uint32(UInt32(hidden))), ("llama.block_count", .uint32(1)),
      ("llama.feed_forward_length", .uint32(16)), ("llama.attention.head_count", .uint32(UInt32(heads))),
      ("llama.attention.head_count_kv", .uint32(UInt32(kvHeads))), ("llama.context_length", .uint32(64)),
      ("llama.rope.freq_base", .float32(10000)), ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
    ]
    // Row r of every stored matrix holds the value r in each column, so where rows moved is visible.
    func rowsTensor(_ name: String, rows: Int, columns: Int) -> (String, [Int], UInt32, [UInt8]) {
      let values = (0..<rows).flatMap { r in [Float](repeating: Float(r), count: columns) }
      return (name, [columns, rows], 0, values.flatMap { GGUFBuilder.le($0.bitPattern) })
    }
    b.tensors = [
      rowsTensor("token_embd.weight", rows: 10, columns: hidden),
      rowsTensor("blk.0.attn_q.weight", rows: heads * headDim, columns: hidden),
      rowsTensor("blk.0.attn_k.weight", rows: kvHeads * headDim, columns: hidden),
      rowsTensor("blk.0.attn_v.weight", rows: kvHeads * headDim, columns: hidden),
      rowsTensor("blk.0.attn_output.weight", rows: hidden, columns: hidden),
      rowsTensor("blk.0.ffn_gate.weight", rows: 16, columns: hidden),
      rowsTensor("blk.0.ffn_up.weight", rows: 16, columns: hidden),
      rowsTensor("blk.0.ffn_down.weight", rows: hidden, columns: 16),
      rowsTensor("blk.0.attn_norm.weight", rows: 1, columns: hidden),
      rowsTensor("blk.0.ffn_norm.weight", rows: 1, columns: hidden),
      rowsTensor("output_norm.weight", rows: 1, columns: hidden),
    ]
    // 1-D norms: ne = [hidden].
    for i in b.tensors.indices where b.tensors[i].name.hasSuffix("norm.weight") { b.tensors[i].dims = [hidden] }
    let g = try b.file()
    #expect(
      g.tensorNames == [
        "model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.mlp.down_proj.weight",
        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.post_attention_layernorm.weight", "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.o_proj.weight", "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.v_proj.weight", "model.norm.weight",
      ])
    #expect(g.shape(of: "model.layers.0.mlp.down_proj.weight") == [hidden, 16])
    #expect(g.shape(of: "model.norm.weight") == [hidden])
    #expect(g.shape(of: "blk.0.attn_q.weight") == nil)

    // GGUF row 2p + s of a head holds HF row s·d/2 + p: with d = 4, stored rows [0 1 2 3] are HF
    // rows [0 2 1 3], so HF row order reads stored rows 0 2 1 3 (and 4 6 5 7 in head 1).
    func firstColumn(_ t: FloatTensor) -> [Float] {
      stride(from: 0, to: t.values.count, by: t.shape[1]).map { t.values[$0] }
    }
    #expect(firstColumn(try g.floatTensor("model.layers.0.self_attn.q_proj.weight")) == [0, 2, 1, 3, 4, 6, 5, 7])
    #expect(firstColumn(try g.floatTensor("model.layers.0.self_attn.k_proj.weight")) == [0, 2, 1, 3])
    // Other tensors keep their rows; the raw accessor keeps the stored order.
    #expect(firstColumn(try g.floatTensor("model.layers.0.self_attn.v_proj.weight")) == [0, 1, 2, 3])
    #expect(firstColumn(try g.rawFloatTensor("blk.0.attn_q.weight")) == [0, 1, 2, 3, 4, 5, 6, 7])

    let config = try g.llamaConfig()
    #expect(config.hiddenSize == hidden && config.numAttentionHeads == heads && config.numKeyValueHeads == kvHeads)
    #expect(config.headDim == headDim && config.intermediateSize == 16 && config.numHiddenLayers == 1)
    #expect(config.vocabSize == 10)  // from the embedding: no vocab_size key, no token list
    #expect(config.tieWordEmbeddings == true)  // no output.weight
    #expect(config.ropeTheta == 10000 && config.rmsNormEps == Double(Float(1e-5)) && config.maxPositionEmbeddings == 64)
  }

  @Test func impossibleHyperParametersAreTypedErrors() throws {
    var b = GGUFBuilder()
    b.metadata = [
      ("general.architecture", .string("llama")), ("llama.embedding_length", .uint32(8)),
      ("llama.block_count", .uint32(1)), ("llama.feed_forward_length", .uint32(16)),
      ("llama.attention.head_count", .uint32(2)), ("llama.attention.head_count_kv", .uint32(3)),
      ("llama.context_length", .uint32(64)), ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
      ("llama.vocab_size", .uint32(10)),
    ]
    #expect(
      throws: GGUFError.invalidMetadata(
        path: "test.gguf", key: "llama hyper-parameter num_key_value_heads",
        reason: "is 3, which does not divide num_attention_heads = 2")
    ) { try b.file().llamaConfig() }
    b.metadata.removeLast()
    b.metadata[1].1 = .string("eight")
    #expect(
      throws: GGUFError.invalidMetadata(
        path: "test.gguf", key: "llama.embedding_length", reason: "expected an integer, found string")
    ) {
      try b.file().llamaConfig()
    }
    b.metadata[0].1 = .string("gpt2")
    #expect(throws: GGUFError.self) { try b.file().llamaConfig() }
  }

  @Test func nameMapCoversTheLlamaTensors() {
    let cases = [
      ("token_embd.weight", "model.embed_tokens.weight"), ("output_norm.weight", "model.norm.weight"),
      ("output.weight", "lm_head.weight"), ("blk.12.attn_norm.weight", "model.layers.12.input_layernorm.weight"),
      ("blk.0.ffn_norm.weight", "model.layers.0.post_attention_layernorm.weight"),
      ("blk.3.attn_q.weight", "model.layers.3.self_attn.q_proj.weight"),
      ("blk.3.attn_k.bias", "model.layers.3.self_attn.k_proj.bias"),
      ("blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight"),
      ("blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight"),
      ("blk.29.ffn_gate.weight", "model.layers.29.mlp.gate_proj.weight"),
      ("blk.29.ffn_up.weight", "model.layers.29.mlp.up_proj.weight"),
      ("blk.29.ffn_down.weight", "model.layers.29.mlp.down_proj.weight"),
      // Unknown names pass through unchanged.
      ("rope_freqs.weight", "rope_freqs.weight"), ("blk.x.attn_q.weight", "blk.x.attn_q.weight"),
      ("blk.01.attn_q.weight", "blk.01.attn_q.weight"), ("blk.0.attn_q.scale", "blk.0.attn_q.scale"),
    ]
    for (gguf, hf) in cases { #expect(GGUFFile.huggingFaceName(for: gguf) == hf, "\(gguf)") }
  }

  @Test func qwen2RowsAreNotUnpermuted() throws {
    var b = GGUFBuilder()
    b.metadata = [("general.architecture", .string("qwen2")), ("qwen2.attention.head_count", .uint32(1))]
    b.tensors = [
      ("blk.0.attn_q.weight", [1, 4], 0, [Float](arrayLiteral: 0, 1, 2, 3).flatMap { GGUFBuilder.le($0.bitPattern) })
    ]
    let g = try b.file()
    #expect(!g.unpermutesQueryKey)
    #expect(try g.floatTensor("model.layers.0.self_attn.q_proj.weight").values == [0, 1, 2, 3])
  }
}

// MARK: - The RoPE permutation

@Suite struct LlamaRotaryPermutationTests {
  /// llama.cpp's converter, transcribed: `w.reshape(heads, 2, d/2, in).swapaxes(1, 2).reshape(out, in)`
  /// with explicit loops (index (h, s, p, c) of the source goes to (h, p, s, c)).
  static func convertPermute(_ w: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
    let d = rows / heads
    let half = d / 2
    var out = [Float](repeating: .nan, count: w.count)
    for h in 0..<heads {
      for s in 0..<2 {
        for p in 0..<half {
          for c in 0..<columns {
            out[((h * half + p) * 2 + s) * columns + c] = w[((h * 2 + s) * half + p) * columns + c]
          }
        }
      }
    }
    return out
  }

  @Test(arguments: [
    (rows: 8, columns: 3, heads: 2), (rows: 12, columns: 1, heads: 3), (rows: 576, columns: 5, heads: 9),
    (rows: 192, columns: 4, heads: 3), (rows: 2, columns: 2, heads: 1),
  ])
  func permuteMatchesTheConverterAndUnpermuteInvertsIt(rows: Int, columns: Int, heads: Int) {
    var rng = SplitMix64(seed: UInt64(rows * 1000 + columns * 10 + heads))
    let w = (0..<(rows * columns)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 7 }
    let permuted = LlamaRotaryPermutation.permuteRows(w, rows: rows, columns: columns, heads: heads)
    #expect(
      permuted == Self.convertPermute(w, rows: rows, columns: columns, heads: heads),
      "\(rows)×\(columns), \(heads) heads")
    #expect(LlamaRotaryPermutation.unpermuteRows(permuted, rows: rows, columns: columns, heads: heads) == w)
    #expect(
      LlamaRotaryPermutation.permuteRows(
        LlamaRotaryPermutation.unpermuteRows(w, rows: rows, columns: columns, heads: heads),
        rows: rows, columns: columns, heads: heads) == w)
    // The row formula: HF row h·d + s·d/2 + p is GGUF row h·d + 2p + s.
    let d = rows / heads
    for hfRow in 0..<rows {
      let h = hfRow / d
      let s = (hfRow % d) / (d / 2)
      let p = hfRow % (d / 2)
      #expect(LlamaRotaryPermutation.ggufRow(ofHuggingFaceRow: hfRow, rows: rows, heads: heads) == h * d + 2 * p + s)
    }
  }
}

// MARK: - Damaged files

@Suite struct GGUFDamagedFileTests {
  /// A small valid file with metadata of every type and one tensor of each decodable type.
  static func sample() -> [UInt8] { sampleBuilder().build().bytes }

  static func sampleBuilder() -> GGUFBuilder {
    var b = GGUFBuilder()
    b.metadata = allMetadata
    b.tensors = [
      ("a", [2], 0, [Float](arrayLiteral: 1, 2).flatMap { GGUFBuilder.le($0.bitPattern) }),
      ("b", [32], 8, le16(Half.quarter) + [UInt8](repeating: 4, count: 32)),
      ("c", [32], 3, le16(Half.half) + le16(Half.one) + [UInt8](repeating: 0x21, count: 16)),
      ("d", [32], 2, le16(Half.two) + [UInt8](repeating: 0x88, count: 16)),
      ("e", [2], 1, le16(Half.one) + le16(Half.two)),
    ]
    return b
  }

  /// Opens the bytes and decodes every tensor; returns the GGUFError thrown, nil when all worked.
  /// Any other error fails the test; a crash would end it.
  static func openAndDecodeAll(_ bytes: [UInt8], _ context: String) -> GGUFError? {
    do {
      let g = try GGUFFile(data: Data(bytes), path: "damaged.gguf")
      for name in g.tensorNames { _ = try g.floatTensor(name) }
      return nil
    } catch let e as GGUFError {
      #expect(e.description.contains("Hint:"), "\(context): \(e)")
      #expect(!e.description.contains("\n"), "\(context): one line")
      return e
    } catch {
      Issue.record("\(context): untyped error \(error)")
      return nil
    }
  }

  @Test func everyTruncationIsATypedError() {
    let (full, _, contentEnd) = Self.sampleBuilder().buildWithEnd()
    #expect(Self.openAndDecodeAll(full, "full file") == nil)
    // Cutting into the header, metadata, tensor infos or tensor bytes is an error; only the final
    // padding may go.
    for n in 0..<contentEnd {
      let e = Self.openAndDecodeAll(Array(full.prefix(n)), "prefix of \(n) bytes")
      #expect(e != nil, "a prefix of \(n) of \(full.count) bytes was accepted")
    }
    #expect(Self.openAndDecodeAll(Array(full.prefix(contentEnd)), "without the final padding") == nil)
  }

  @Test(arguments: 0..<64)
  func randomByteDamageNeverCrashes(seed: Int) {
    var rng = SplitMix64(seed: UInt64(seed))
    var bytes = Self.sample()
    // Damage 1 to 4 bytes, mostly in the header and metadata where counts and lengths live.
    for _ in 0..<(1 + Int(rng.next() % 4)) {
      let i = Int(rng.next() % UInt64(min(bytes.count, 700)))
      bytes[i] = UInt8(truncatingIfNeeded: rng.next())
    }
    _ = Self.openAndDecodeAll(bytes, "seed \(seed)")
  }

  static func patched(_ body: (inout GGUFBuilder) -> Void) -> [UInt8] {
    var b = GGUFBuilder()
    b.metadata = [("general.architecture", .string("llama"))]
    b.tensors = [("a", [2], 0, [Float](arrayLiteral: 1, 2).flatMap { GGUFBuilder.le($0.bitPattern) })]
    body(&b)
    return b.build().bytes
  }

  @Test func headerLiesGiveTheRightError() throws {
    let p = "damaged.gguf"
    func open(_ bytes: [UInt8]) throws { _ = try GGUFFile(data: Data(bytes), path: p) }

    var bad = Self.patched { _ in }
    bad[0] = UInt8(ascii: "X")
    #expect(throws: GGUFError.badMagic(path: p, found: Array("XGUF".utf8))) { try open(bad) }
    #expect(throws: GGUFError.unsupportedVersion(path: p, version: 1)) { try open(Self.patched { $0.version = 1 }) }
    #expect(throws: GGUFError.unsupportedVersion(path: p, version: 4)) { try open(Self.patched { $0.version = 4 }) }

    // A tensor count far beyond what the file can hold: no allocation, a truncation error.
    var huge = Self.patched { _ in }
    huge.replaceSubrange(8..<16, with: GGUFBuilder.le(UInt64(1) << 60))
    #expect(throws: GGUFError.self) { try open(huge) }
    var hugeKV = Self.patched { _ in }
    hugeKV.replaceSubrange(16..<24, with: GGUFBuilder.le(UInt64.max))
    #expect(throws: GGUFError.self) { try open(hugeKV) }

    // A string length beyond the file.
    var longKey = Self.patched { _ in }
    longKey.replaceSubrange(24..<32, with: GGUFBuilder.le(UInt64(1) << 40))
    #expect(throws: GGUFError.self) { try open(longKey) }

    // Value type 13 does not exist; it is the u32 after the first key.
    var badType = Self.patched { _ in }
    let typeAt = 24 + 8 + "general.architecture".utf8.count
    badType.replaceSubrange(typeAt..<(typeAt + 4), with: GGUFBuilder.le(UInt32(13)))
    #expect(throws: GGUFError.invalidValueType(path: p, key: "general.architecture", code: 13)) { try open(badType) }

    #expect(throws: GGUFError.duplicate(path: p, name: "general.architecture")) {
      try open(Self.patched { $0.metadata.append(("general.architecture", .string("gpt2"))) })
    }
    #expect(throws: GGUFError.duplicate(path: p, name: "a")) {
      try open(Self.patched { $0.tensors.append($0.tensors[0]) })
    }
    #expect(throws: GGUFError.self) {  // two GGUF names, one Hugging Face name
      try open(
        Self.patched { b in
          b.tensors.append(("output_norm.weight", [2], 0, b.tensors[0].bytes))
          b.tensors.append(("model.norm.weight", [2], 0, b.tensors[0].bytes))
        })
    }
    #expect(throws: GGUFError.invalidAlignment(path: p, value: "\(GGUFValue.uint32(24))")) {
      try open(Self.patched { $0.metadata.append(("general.alignment", .uint32(24))) })
    }
    #expect(throws: GGUFError.self) { try open(Self.patched { $0.metadata.append(("general.alignment", .uint32(0))) }) }
    // A boolean byte other than 0 or 1 (the value byte follows the 24-byte header, the key and
    // its type).
    var badBool = Self.patched { $0.metadata = [("t.bool", .bool(true))] }
    badBool[24 + 8 + 6 + 4] = 2
    #expect(throws: GGUFError.invalidMetadata(path: p, key: "t.bool", reason: "boolean byte 2 is neither 0 nor 1")) {
      try open(badBool)
    }
    #expect(throws: GGUFError.self) { try open(Self.patched { $0.tensors[0].dims = [] }) }
    #expect(throws: GGUFError.self) { try open(Self.patched { $0.tensors[0].dims = [1, 1, 1, 1, 2] }) }
    // Q4_1 rows must be whole blocks.
    #expect(throws: GGUFError.self) {
      try open(Self.patched { $0.tensors = [("q", [16], 3, [UInt8](repeating: 0, count: 20))] })
    }
    // A tensor claiming more elements than its bytes: its extent passes the end of the file.
    #expect(throws: GGUFError.self) { try open(Self.patched { $0.tensors[0].dims = [1000] }) }
  }

  @Test func offsetsThatLieAreCaught() throws {
    let p = "damaged.gguf"
    // The tensor info's offset is the last u64 before the padding; find it from the layout.
    func withOffset(_ offset: UInt64) -> [UInt8] {
      var b = GGUFBuilder()
      b.tensors = [("a", [2], 0, [Float](arrayLiteral: 1, 2).flatMap { GGUFBuilder.le($0.bitPattern) })]
      var bytes = b.build().bytes
      let at = 24 + 8 + 1 + 4 + 8 + 4  // header, name, n_dims, one dim, type
      bytes.replaceSubrange(at..<(at + 8), with: GGUFBuilder.le(offset))
      return bytes
    }
    #expect(try GGUFFile(data: Data(withOffset(0)), path: p).floatTensor("a").values == [1, 2])
    #expect(throws: GGUFError.self) { try GGUFFile(data: Data(withOffset(4)), path: p) }  // misaligned
    #expect(throws: GGUFError.self) { try GGUFFile(data: Data(withOffset(64)), path: p) }  // past the end
    #expect(throws: GGUFError.self) { try GGUFFile(data: Data(withOffset(UInt64.max)), path: p) }
    // Two tensors on the same bytes.
    var b = GGUFBuilder()
    b.tensors = [("a", [8], 0, [UInt8](repeating: 0, count: 32)), ("b", [8], 0, [UInt8](repeating: 0, count: 32))]
    var bytes = b.build().bytes
    let secondOffsetAt = 24 + (8 + 1 + 4 + 8 + 4 + 8) + (8 + 1 + 4 + 8 + 4)
    bytes.replaceSubrange(secondOffsetAt..<(secondOffsetAt + 8), with: GGUFBuilder.le(UInt64(0)))
    #expect(throws: GGUFError.invalidTensor(path: p, tensor: "b", reason: "its bytes overlap those of 'a'")) {
      try GGUFFile(data: Data(bytes), path: p)
    }
  }

  /// Q8_K is ggml's intermediate type for dot products, never stored in a model file.
  @Test func unknownAndUndecodableTypesAreListedButNotDecoded() throws {
    let p = "types.gguf"
    var b = GGUFBuilder()
    b.tensors = [("k", [256], 15, [UInt8](repeating: 0, count: 292)), ("x", [4], 99, [])]
    let g = try GGUFFile(data: Data(b.build().bytes), path: p)
    #expect(g.tensorInfo(named: "k")?.type.name == "Q8_K")
    #expect(g.tensorInfo(named: "x")?.type.name == "type 99")
    #expect(throws: GGUFError.unsupportedTensorType(path: p, tensor: "k", type: "Q8_K")) { try g.floatTensor("k") }
    #expect(throws: GGUFError.unsupportedTensorType(path: p, tensor: "x", type: "type 99")) { try g.floatTensor("x") }
    #expect(throws: GGUFError.missingTensor(path: p, tensor: "nope")) { try g.floatTensor("nope") }
    for e in [
      GGUFError.unsupportedTensorType(path: p, tensor: "k", type: "Q8_K"), .missingTensor(path: p, tensor: "n"),
    ] {
      #expect(e.description.contains("Hint:"))
    }
  }

  @Test func unreadablePathIsATypedError() {
    let url = URL(fileURLWithPath: "/nonexistent/prunekit/model.gguf")
    #expect {
      try GGUFFile(contentsOf: url)
    } throws: { error in
      guard case .unreadable(let path, _) = error as? GGUFError else { return false }
      return path == url.path && (error as! GGUFError).description.contains("Hint:")
    }
  }
}
