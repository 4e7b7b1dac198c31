import Foundation
import PruneFormats
import PruneKernels
import PruneTestSupport
import Testing

/// `TensorSource.floatRows`: rows read by range equal, bit for bit, the same rows sliced out of the
/// whole tensor (`floatTensor`), for every safetensors dtype PruneKit decodes and every GGUF type
/// with golden blocks; a range outside the tensor, or rows of a scalar, are errors.
@Suite struct TensorRowsTests {
  /// Every row range of a tensor of `rows` rows: the empty ones at both ends, single rows, and
  /// runs.
  static func ranges(_ rows: Int) -> [Range<Int>] {
    var all: [Range<Int>] = [0..<0, rows..<rows, 0..<rows]
    for a in 0..<rows { all += [a..<(a + 1), a..<rows, 0..<a] }
    return all
  }

  static func expectRows(_ source: some TensorSource, _ name: String, _ label: String) throws {
    let whole = try source.floatTensor(name)
    let width = whole.shape.dropFirst().reduce(1, *)
    for range in ranges(whole.shape[0]) {
      let rows = try source.floatRows(name, rows: range)
      #expect(rows.shape == [range.count] + whole.shape.dropFirst(), "\(label) \(range)")
      let expected = whole.values[(range.lowerBound * width)..<(range.upperBound * width)]
      #expect(rows.values.map(\.bitPattern) == expected.map(\.bitPattern), "\(label) \(range)")
    }
    #expect(
      throws: TensorSourceError.rowsOutOfRange(name: name, rows: 0..<(whole.shape[0] + 1), rowCount: whole.shape[0])
    ) {
      try source.floatRows(name, rows: 0..<(whole.shape[0] + 1))
    }
    #expect(throws: TensorSourceError.rowsOutOfRange(name: name, rows: -1..<1, rowCount: whole.shape[0])) {
      try source.floatRows(name, rows: -1..<1)
    }
  }

  /// Each decodable safetensors dtype, random bytes (every bit pattern, NaNs and infinities
  /// included), a [5 × 3] and a [4 × 2 × 2] tensor.
  @Test(arguments: ["F32", "F64", "F16", "BF16", "U8", "BOOL", "I32", "I64"])
  func safetensorsRowsEqualTheSlicedTensor(dtype: String) throws {
    let type = SafetensorsDType(rawValue: dtype)!
    var rng = SplitMix64(seed: 7)
    var buffer: [UInt8] = []
    var entries: [String] = []
    for (name, shape) in [("a", [5, 3]), ("b", [4, 2, 2]), ("c", [6])] {
      let count = shape.reduce(1, *) * type.size
      let begin = buffer.count
      buffer += (0..<count).map { _ in
        type == .BOOL ? UInt8.random(in: 0...1, using: &rng) : UInt8.random(in: 0...255, using: &rng)
      }
      entries.append(
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(begin),\(buffer.count)]}")
    }
    let file = try SafetensorsFile(
      data: safetensorsBytes(header: "{" + entries.joined(separator: ",") + "}", buffer: buffer),
      name: "rows.safetensors")
    for name in ["a", "b", "c"] {
      #expect(file.readsRowRanges(of: name), "\(dtype) \(name)")
      try Self.expectRows(file, name, "\(dtype) \(name)")
    }
  }

  @Test func aScalarHasNoRowsAndAMissingTensorIsNamed() throws {
    var writer = SafetensorsWriter()
    try writer.add("scalar", shape: [], .f32([42]))
    let file = try SafetensorsFile(data: writer.serialized(), name: "s.safetensors")
    #expect(!file.readsRowRanges(of: "scalar") && !file.readsRowRanges(of: "nope"))
    #expect(throws: TensorSourceError.rowsOutOfRange(name: "scalar", rows: 0..<1, rowCount: nil)) {
      try file.floatRows("scalar", rows: 0..<1)
    }
    #expect(throws: SafetensorsError.missingTensor(path: "s.safetensors", tensor: "nope")) {
      try file.floatRows("nope", rows: 0..<1)
    }
    // The default (whole tensor, sliced) says the same.
    let memory = InMemoryTensors(["scalar": FloatTensor(shape: [], values: [42])])
    #expect(!memory.readsRowRanges(of: "scalar"))
    #expect(throws: TensorSourceError.rowsOutOfRange(name: "scalar", rows: 0..<1, rowCount: nil)) {
      try memory.floatRows("scalar", rows: 0..<1)
    }
  }

  /// Each GGUF type with golden blocks, as `output.weight` (lm_head.weight) of rows holding two
  /// blocks each, read by range.
  @Test(arguments: GGUFQuantGolden.typeNames)
  func ggufRowsEqualTheSlicedTensor(name: String) throws {
    let golden = try GGUFQuantGolden(name)
    let block = golden.type.blockSize!
    let rows = 6
    let (bytes, _) = golden.tiled(blocks: 2 * rows)
    var b = GGUFBuilder()
    b.tensors = [("output.weight", [2 * block, rows], golden.type.rawValue, bytes)]
    let file = try b.file(path: "rows.gguf")
    #expect(file.readsRowRanges(of: "lm_head.weight"), "\(name)")
    try Self.expectRows(file, "lm_head.weight", name)

    guard block > 1 else { return }
    // Rows of half a block cannot be: a GGUF tensor's rows hold whole blocks (the reader refuses
    // the file), so every quantised tensor of a valid file reads by rows.
    var half = GGUFBuilder()
    half.tensors = [("output.weight", [block / 2, 4 * rows], golden.type.rawValue, bytes)]
    #expect(throws: GGUFError.self, "\(name)") { try half.file(path: "half.gguf") }
  }

  /// The q and k projections of a LLaMA GGUF are un-permuted on reading: their rows are sliced out
  /// of the whole (un-permuted) tensor, never read by range.
  @Test func permutedQueryRowsAreReadWhole() throws {
    var b = GGUFBuilder()
    b.metadata = [
      ("general.architecture", .string("llama")), ("llama.attention.head_count", .uint32(2)),
    ]
    let values = (0..<32).map { Float($0) }
    b.tensors = [("blk.0.attn_q.weight", [4, 8], 0, values.flatMap { GGUFBuilder.le($0.bitPattern) })]
    let file = try b.file(path: "q.gguf")
    let name = "model.layers.0.self_attn.q_proj.weight"
    #expect(!file.readsRowRanges(of: name))
    try Self.expectRows(file, name, "q_proj")
  }
}
