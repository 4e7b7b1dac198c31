import Foundation
import PruneFormats
import PruneKernels
import PruneTestSupport
import Testing

@Suite struct ShardedSafetensorsWriterTests {
  // MARK: Rounding to 16 bits

  /// The nearest bfloat16 to `x`, ties to even, found the naive way: the two bfloat16 values
  /// around x (truncation and the next one up in magnitude) compared by distance in Double.
  static func naiveBFloat16(_ x: Float) -> UInt16 {
    let truncated = UInt16(x.bitPattern >> 16)
    let low = Double(floatFromBFloat16(truncated))
    let next = truncated &+ 1
    let high = Double(floatFromBFloat16(next))
    let value = Double(x)
    if value == low { return truncated }
    let dLow = abs(value - low)
    let dHigh = high.isInfinite ? Double.infinity : abs(high - value)
    // Beyond the largest finite bfloat16, IEEE rounds to infinity when x is at least halfway to
    // 2^128 (the next power, where the exponent would continue).
    if high.isInfinite {
      let limit =
        Double(floatFromBFloat16(truncated))
        + (Double(floatFromBFloat16(truncated)) - Double(floatFromBFloat16(truncated &- 1))) / 2
      return abs(value) >= abs(limit) ? next : truncated
    }
    if dLow < dHigh { return truncated }
    if dHigh < dLow { return next }
    return truncated & 1 == 0 ? truncated : next
  }

  @Test func bfloat16EdgeValuesFromTheIEEERules() {
    // Exact values and signed zeros are kept.
    #expect(bfloat16Bits(0) == 0x0000)
    #expect(bfloat16Bits(-0.0) == 0x8000)
    #expect(bfloat16Bits(1) == 0x3F80)
    #expect(bfloat16Bits(-2) == 0xC000)
    #expect(bfloat16Bits(.infinity) == 0x7F80)
    #expect(bfloat16Bits(-.infinity) == 0xFF80)
    // Every NaN becomes the quiet NaN 0x7FC0 (PyTorch's), even one whose payload sits in the dropped bits.
    #expect(bfloat16Bits(.nan) == 0x7FC0)
    #expect(bfloat16Bits(Float(bitPattern: 0x7F80_0001)) == 0x7FC0)
    #expect(bfloat16Bits(Float(bitPattern: 0xFFC0_0000)) == 0x7FC0)
    // Ties go to even: 1 + 2⁻⁸ is halfway between 1 (even) and 1 + 2⁻⁷; 1 + 3·2⁻⁸ halfway between
    // 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶ (even).
    #expect(bfloat16Bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80)
    #expect(bfloat16Bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
    // Just above and below a tie.
    #expect(bfloat16Bits(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
    #expect(bfloat16Bits(Float(bitPattern: 0x3F80_7FFF)) == 0x3F80)
    // Overflow: Float.greatestFiniteMagnitude (0x7F7FFFFF) is above the largest bfloat16's halfway
    // point, so it rounds to infinity, as torch does; the largest bfloat16 itself is kept.
    #expect(bfloat16Bits(.greatestFiniteMagnitude) == 0x7F80)
    #expect(bfloat16Bits(-.greatestFiniteMagnitude) == 0xFF80)
    #expect(bfloat16Bits(Float(bitPattern: 0x7F7F_0000)) == 0x7F7F)
    #expect(bfloat16Bits(Float(bitPattern: 0x7F7F_7FFF)) == 0x7F7F)
    #expect(bfloat16Bits(Float(bitPattern: 0x7F7F_8000)) == 0x7F80)  // a tie with odd 0x7F7F: up, to ∞
    // Subnormals round like any other value (bfloat16 has Float's exponent range).
    #expect(bfloat16Bits(Float(bitPattern: 0x0000_0001)) == 0x0000)
    #expect(bfloat16Bits(Float(bitPattern: 0x0000_8001)) == 0x0001)
    #expect(bfloat16Bits(Float(bitPattern: 0x8000_8000)) == 0x8000)  // a tie with even −0: −0
  }

  @Test func bfloat16MatchesTheNaiveNearestOnSeededValues() {
    var rng = SplitMix64(seed: 16)
    var checked = 0
    for _ in 0..<200_000 {
      let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
      guard !x.isNaN else { continue }
      let fast = bfloat16Bits(x)
      let naive = Self.naiveBFloat16(x)
      if fast != naive {
        Issue.record(
          "bfloat16(\(x) = 0x\(String(x.bitPattern, radix: 16))): 0x\(String(fast, radix: 16)), naive 0x\(String(naive, radix: 16))"
        )
        return
      }
      checked += 1
    }
    #expect(checked > 190_000)
  }

  @Test func halfEdgeValuesFromTheIEEERules() {
    #expect(halfBits(0) == 0x0000)
    #expect(halfBits(-0.0) == 0x8000)
    #expect(halfBits(1) == 0x3C00)
    #expect(halfBits(-2) == 0xC000)
    #expect(halfBits(65504) == 0x7BFF)  // the largest half
    #expect(halfBits(65519.996) == 0x7BFF)  // below the halfway point to 2¹⁶
    #expect(halfBits(65520) == 0x7C00)  // the halfway point: a tie with odd 0x7BFF goes up, to ∞
    #expect(halfBits(1e10) == 0x7C00)
    #expect(halfBits(-1e10) == 0xFC00)
    #expect(halfBits(.infinity) == 0x7C00)
    #expect(halfBits(-.infinity) == 0xFC00)
    #expect(halfBits(.nan) == 0x7E00)
    #expect(halfBits(-Float.nan) == 0xFE00)
    // Subnormals: 2⁻²⁴ is the smallest; 2⁻²⁵ is a tie that goes to the even 0; anything above it to 2⁻²⁴.
    #expect(halfBits(0x1p-24) == 0x0001)
    #expect(halfBits(0x1p-25) == 0x0000)
    #expect(halfBits(-0x1p-25) == 0x8000)
    #expect(halfBits(0x1.000002p-25) == 0x0001)
    #expect(halfBits(0x1p-26) == 0x0000)
    #expect(halfBits(3 * 0x1p-25) == 0x0002)  // 1.5 units: a tie with odd 1, up to 2
    #expect(halfBits(0x1p-14) == 0x0400)  // the smallest normal
    #expect(halfBits(0x1.ff8p-15) == 0x03FF)  // the largest subnormal, 1023 · 2⁻²⁴
    #expect(halfBits(0x1.ffcp-15) == 0x0400)  // halfway between it and 2⁻¹⁴: up (odd), carrying into the exponent
    #expect(halfBits(0x1.ffbp-15) == 0x03FF)  // just below halfway
    // Ties between normals: 1 + 2⁻¹¹ is halfway between 1 and 1 + 2⁻¹⁰.
    #expect(halfBits(1 + 0x1p-11) == 0x3C00)
    #expect(halfBits(1 + 3 * 0x1p-11) == 0x3C02)
  }

  #if !(os(macOS) && arch(x86_64))
    @Test func halfMatchesSwiftFloat16OnSeededValues() {
      // Float16(x) is the standard library's conversion, round to nearest, ties to even.
      var rng = SplitMix64(seed: 17)
      for _ in 0..<200_000 {
        let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
        // Bias towards the half range too: exponents of magnitude up to 2¹⁷.
        let y = Float(
          sign: x.sign, exponent: Int(rng.next() % 48) - 30, significand: 1 + Float(rng.next() % 1_000_000) / 1_000_000)
        for v in [x, y] where !v.isNaN {
          let expected = Float16(v).bitPattern
          if halfBits(v) != expected {
            Issue.record("half(\(v)): 0x\(String(halfBits(v), radix: 16)), Float16 0x\(String(expected, radix: 16))")
            return
          }
        }
      }
    }
  #endif

  @Test func sixteenBitRoundTripsAreExact() {
    // Every bfloat16 and half that is not NaN comes back to the same bits after Float and back.
    for b in 0...UInt16.max {
      let x = floatFromBFloat16(b)
      if !x.isNaN { #expect(bfloat16Bits(x) == b) }
      let h = floatFromHalf(b)
      if !h.isNaN, halfBits(h) != b { Issue.record("half 0x\(String(b, radix: 16)) does not round-trip") }
    }
  }

  // MARK: Sizes

  @Test func sizesAsPeopleWriteThem() {
    #expect(ByteSize.parse("5GB") == 5_000_000_000)
    #expect(ByteSize.parse("500MB") == 500_000_000)
    #expect(ByteSize.parse("4GiB") == 4 << 30)
    #expect(ByteSize.parse("1.5gb") == 1_500_000_000)
    #expect(ByteSize.parse("123") == 123)
    #expect(ByteSize.parse("64 KiB") == 65536)
    #expect(ByteSize.parse("2TB") == 2_000_000_000_000)
    for bad in ["", "GB", "5XB", "-1GB", "0", "1.2.3MB", "5 G", "1e3"] { #expect(ByteSize.parse(bad) == nil, "\(bad)") }
  }

  /// A size `prune` prints, typed back as an option, names the same bytes up to the printed
  /// rounding: 0.005 GiB (half the last digit of "%.2f GiB") or 0.05 MiB. With decimal labels
  /// on binary figures ("5.24 GB" for 5.24 GiB) the round trip was off by 7.4%.
  @Test func printedSizesReadBack() throws {
    #expect(OutputSafety.size(5 << 30) == "5.00 GiB")
    #expect(OutputSafety.size(3 << 20) == "3.0 MiB")
    for bytes in [1 << 20, 949 << 20, 1 << 30, 5_626_000_000, 13_476_896_057] {
      let printed = OutputSafety.size(bytes)
      let halfLastDigit = bytes >= 1 << 30 ? Double(1 << 30) * 0.005 : Double(1 << 20) * 0.05
      let back = try #require(ByteSize.parse(printed.replacingOccurrences(of: " ", with: "")), "\(printed)")
      #expect(abs(Double(back - bytes)) <= halfLastDigit, "\(bytes) printed \(printed) reads back as \(back)")
    }
  }

  // MARK: Layout

  static let tensors: [(name: String, dtype: SafetensorsDType, shape: [Int])] = [
    ("model.embed_tokens.weight", .BF16, [10, 4]),  // 80 bytes
    ("model.layers.0.self_attn.q_proj.weight", .BF16, [4, 4]),  // 32
    ("model.layers.0.input_layernorm.weight", .BF16, [4]),  // 8
    ("model.layers.1.self_attn.q_proj.weight", .BF16, [4, 4]),  // 32
    ("model.layers.1.input_layernorm.weight", .BF16, [4]),  // 8
    ("model.norm.weight", .BF16, [4]),  // 8
    ("lm_head.weight", .BF16, [30, 4]),  // 240, beyond the limit: a shard alone
  ]

  @Test func layoutSplitsInOrderAtTheLimit() throws {
    let layout = try SafetensorsShardLayout(Self.tensors, maxShardBytes: 120, metadata: ["format": "pt"])
    // 80 + 32 = 112 ≤ 120; + 8 = 120 ≤ 120; then 32 + 8 + 8; the head alone.
    #expect(
      layout.files == [
        "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
      ])
    #expect(layout.entries["model.layers.0.input_layernorm.weight"]?.shard == 0)
    #expect(layout.entries["model.layers.1.self_attn.q_proj.weight"]?.shard == 1)
    #expect(layout.entries["model.norm.weight"]?.shard == 1)
    #expect(layout.entries["lm_head.weight"]?.shard == 2)
    #expect(layout.totalSize == 80 + 32 + 8 + 32 + 8 + 8 + 240)
    #expect(layout.outputFiles.last == "model.safetensors.index.json")
    // Inside a shard: sorted names, offsets in that order right after the header.
    let shard0 = layout.entries.values.filter { $0.shard == 0 }.sorted { $0.offset < $1.offset }.map(\.name)
    #expect(shard0 == shard0.sorted())
    let first = layout.entries[shard0[0]]!
    #expect(first.offset == layout.prefixes[0].count && layout.prefixes[0].count % 8 == 0)
    // One shard when everything fits: model.safetensors and no index.
    let one = try SafetensorsShardLayout(Self.tensors, maxShardBytes: 5_000_000_000, metadata: [:])
    #expect(one.files == ["model.safetensors"] && one.outputFiles == ["model.safetensors"])
    // Refused: a name twice, an empty name.
    #expect(throws: SafetensorsError.self) {
      try SafetensorsShardLayout([("a", .F32, [1]), ("a", .F32, [2])], maxShardBytes: 100, metadata: [:])
    }
    #expect(throws: SafetensorsError.self) {
      try SafetensorsShardLayout([("", .F32, [1])], maxShardBytes: 100, metadata: [:])
    }
  }

  @Test func indexIsWrittenAsTransformersWritesIt() throws {
    let layout = try SafetensorsShardLayout(
      [("b", .F32, [2]), ("a", .F32, [3])], maxShardBytes: 8, metadata: [:])
    let text = String(decoding: layout.indexJSON(), as: UTF8.self)
    #expect(
      text == """
        {
          "metadata": {
            "total_size": 20
          },
          "weight_map": {
            "a": "model-00002-of-00002.safetensors",
            "b": "model-00001-of-00002.safetensors"
          }
        }

        """)
  }

  @Test func modelOrderPutsEmbeddingsThenBlocksThenTheRest() {
    let names = [
      "lm_head.weight", "model.norm.weight", "model.layers.10.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weight",
      "model.embed_tokens.weight", "model.layers.2.input_layernorm.weight",
    ]
    #expect(
      SafetensorsShardLayout.modelOrder(names) == [
        "model.embed_tokens.weight", "model.layers.2.input_layernorm.weight", "model.layers.2.mlp.up_proj.weight",
        "model.layers.10.mlp.up_proj.weight", "lm_head.weight", "model.norm.weight",
      ])
  }

  // MARK: Writing

  @Test func oneF32ShardIsByteIdenticalToSafetensorsWriter() throws {
    var rng = SplitMix64(seed: 5)
    let folder = TemporaryFolder("sharded-f32")
    defer { folder.remove() }
    let shapes: [(String, [Int])] = [("z.weight", [3, 5]), ("a.bias", [7]), ("m.weight", [2, 2]), ("empty", [0, 3])]
    var values: [String: [Float]] = [:]
    var reference = SafetensorsWriter(metadata: ["format": "pt", "method": "x"])
    for (name, shape) in shapes {
      var v = (0..<shape.reduce(1, *)).map { _ in Float.random(in: -3...3, using: &rng) }
      if !v.isEmpty { v[0] = -0.0 }
      values[name] = v
      try reference.add(name, shape: shape, .f32(v))
    }
    let layout = try SafetensorsShardLayout(
      shapes.map { ($0.0, .F32, $0.1) }, maxShardBytes: SafetensorsShardLayout.defaultMaxShardBytes,
      metadata: ["format": "pt", "method": "x"])
    let writer = try ShardedSafetensorsWriter.create(layout, in: folder.url)
    // In reverse order, and one tensor in two pieces.
    for (name, _) in shapes.reversed() where name != "z.weight" { try writer.write(name, values[name]!) }
    try writer.write("z.weight", Array(values["z.weight"]![7...]), startingAt: 7)
    try writer.write("z.weight", Array(values["z.weight"]![..<7]))
    try writer.synchronize()
    try writer.writeIndex()
    writer.close()
    let written = try Data(contentsOf: folder.file("model.safetensors"))
    #expect(written == reference.serialized())
    #expect(!FileManager.default.fileExists(atPath: folder.file("model.safetensors.index.json").path))
  }

  @Test(arguments: [SafetensorsDType.BF16, .F16])
  func shardsAreReadBackByTheReaders(dtype: SafetensorsDType) throws {
    var rng = SplitMix64(seed: 9)
    let folder = TemporaryFolder("sharded-\(dtype.rawValue)")
    defer { folder.remove() }
    var values: [String: [Float]] = [:]
    for t in Self.tensors {
      var v = (0..<t.shape.reduce(1, *)).map { _ in Float.random(in: -2...2, using: &rng) }
      v[0] = 0
      v[1] = -0.0
      values[t.name] = v
    }
    let layout = try SafetensorsShardLayout(
      Self.tensors.map { ($0.name, dtype, $0.shape) }, maxShardBytes: 120, metadata: ["format": "pt"])
    let writer = try ShardedSafetensorsWriter.create(layout, in: folder.url)
    for t in Self.tensors.reversed() { try writer.write(t.name, values[t.name]!) }
    try writer.synchronize()
    try writer.writeIndex()
    func rounded(_ x: Float) -> Float {
      dtype == .BF16 ? floatFromBFloat16(bfloat16Bits(x)) : floatFromHalf(halfBits(x))
    }
    for t in Self.tensors {
      let back = try writer.read(t.name)
      #expect(back.map(\.bitPattern) == values[t.name]!.map { rounded($0).bitPattern }, "\(t.name)")
      #expect(back[0].bitPattern == 0 && back[1].bitPattern == 0x8000_0000, "exact zeros stay exact")
    }
    writer.close()
    // Each shard is a valid safetensors file; the index names every tensor's shard.
    for (s, file) in layout.files.enumerated() {
      let st = try SafetensorsFile(contentsOf: folder.file(file))
      #expect(st.metadata == ["format": "pt"])
      for t in Self.tensors where layout.entries[t.name]!.shard == s {
        #expect(st.rawDType(of: t.name) == dtype)
        #expect(try st.floatTensor(t.name).values == values[t.name]!.map(rounded))
      }
    }
    let index = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.file("model.safetensors.index.json")))
    let map = (index as? [String: Any])?["weight_map"] as? [String: String]
    #expect(map?.count == Self.tensors.count)
    #expect(map?["lm_head.weight"] == "model-00003-of-00003.safetensors")
    // Reopened (a resumed output), the shards are accepted and read back the same.
    let reopened = try ShardedSafetensorsWriter.open(layout, in: folder.url)
    #expect(try reopened.read("lm_head.weight") == values["lm_head.weight"]!.map(rounded))
    // A different layout is refused.
    let other = try SafetensorsShardLayout(
      Self.tensors.map { ($0.name, .F32, $0.shape) }, maxShardBytes: 120, metadata: ["format": "pt"])
    #expect(throws: SafetensorsError.self) { try ShardedSafetensorsWriter.open(other, in: folder.url) }
  }

  @Test func writesOutsideATensorAreRefused() throws {
    let folder = TemporaryFolder("sharded-refused")
    defer { folder.remove() }
    let layout = try SafetensorsShardLayout([("a", .F32, [2, 2])], maxShardBytes: 100, metadata: [:])
    let writer = try ShardedSafetensorsWriter.create(layout, in: folder.url)
    #expect(throws: SafetensorsError.self) { try writer.write("a", [1, 2, 3], startingAt: 2) }
    #expect(throws: SafetensorsError.self) { try writer.write("b", [1]) }
    // The shard exists already: creating it again fails instead of overwriting it.
    #expect(throws: SafetensorsError.self) { try ShardedSafetensorsWriter.create(layout, in: folder.url) }
  }
}
