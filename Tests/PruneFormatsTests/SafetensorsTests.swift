import Foundation
import PruneFormats
import PruneKernels
import PruneTestSupport
import Testing

@Suite struct SafetensorsTests {
  // MARK: Round trips

  @Test(arguments: [1, 2, 3] as [UInt64])
  func roundTripF32F64U8WithMetadata(seed: UInt64) throws {
    var rng = SplitMix64(seed: seed)
    let folder = TemporaryFolder("roundtrip-\(seed)")
    defer { folder.remove() }
    let rows = Int.random(in: 1...7, using: &rng)
    let columns = Int.random(in: 1...9, using: &rng)
    var f32 = (0..<(rows * columns)).map { _ in Float.random(in: -100...100, using: &rng) }
    // Special values must survive bit for bit.
    f32[0] = -0.0
    if f32.count > 2 {
      f32[1] = .infinity
      f32[2] = Float(bitPattern: 0x7FC0_1234)
    }
    let f64 = (0..<(columns * 3)).map { _ in Double.random(in: -1e300...1e300, using: &rng) }
    let u8 = (0..<rows).map { _ in UInt8.random(in: 0...255, using: &rng) }
    var writer = SafetensorsWriter(metadata: ["format": "pt", "seed": "\(seed)", "quote\"d": "a\\b\nc"])
    try writer.add("weight", shape: [rows, columns], .f32(f32))
    try writer.add("b.double", shape: [columns, 3], .f64(f64))
    try writer.add("mask", shape: [rows], .u8(u8))
    try writer.add("scalar", shape: [], .f32([42]))
    try writer.add("empty", shape: [0, 4], .f32([]))
    let url = folder.file("t.safetensors")
    try writer.write(to: url)

    let file = try SafetensorsFile(contentsOf: url)
    #expect(file.tensorNames == ["b.double", "empty", "mask", "scalar", "weight"], "seed \(seed)")
    #expect(file.metadata == ["format": "pt", "seed": "\(seed)", "quote\"d": "a\\b\nc"], "seed \(seed)")
    #expect(file.rawDType(of: "weight") == .F32 && file.rawDType(of: "b.double") == .F64)
    #expect(file.rawDType(of: "mask") == .U8 && file.rawDType(of: "nope") == nil)
    let w = try file.floatTensor("weight")
    #expect(w.shape == [rows, columns], "seed \(seed)")
    #expect(w.values.map(\.bitPattern) == f32.map(\.bitPattern), "seed \(seed): F32 bits changed")
    let d = try file.doubleTensor("b.double")
    #expect(d.shape == [columns, 3] && d.values == f64, "seed \(seed): F64 values changed")
    #expect(try file.bytes("mask").values == u8, "seed \(seed)")
    #expect(try file.doubleTensor("mask").values == u8.map(Double.init), "seed \(seed)")
    #expect(try file.floatTensor("scalar") == FloatTensor(shape: [], values: [42]))
    #expect(try file.floatTensor("empty").shape == [0, 4])
    let m: Matrix<Double> = try file.matrix("weight")
    #expect(m.rows == rows && m.columns == columns && m[rows - 1, columns - 1] == Double(f32.last!))
    // The atomic write leaves no temporary file behind.
    let left = try FileManager.default.contentsOfDirectory(atPath: folder.url.path)
    #expect(left == ["t.safetensors"], "seed \(seed): \(left)")
  }

  @Test func headerIsSortedPaddedAndDeterministic() throws {
    var writer = SafetensorsWriter(metadata: ["z": "1", "a": "2"])
    try writer.add("weight", shape: [1, 2], .f32([1, 2]))
    try writer.add("count", shape: [1], .f64([7]))
    try writer.add("Upper", shape: [1], .u8([1]))
    let data = writer.serialized()
    let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    #expect(n % 8 == 0, "header length \(n) is not a multiple of 8")
    let header = String(decoding: data[8..<(8 + Int(n))], as: UTF8.self)
    let trimmed = header.trimmingCharacters(in: .whitespaces)
    #expect(header.hasPrefix(trimmed) && header.dropFirst(trimmed.count).allSatisfy { $0 == " " })
    #expect(
      trimmed == """
        {"Upper":{"data_offsets":[0,1],"dtype":"U8","shape":[1]},\
        "__metadata__":{"a":"2","z":"1"},\
        "count":{"data_offsets":[1,9],"dtype":"F64","shape":[1]},\
        "weight":{"data_offsets":[9,17],"dtype":"F32","shape":[1,2]}}
        """)
    #expect(data.count == 8 + Int(n) + 17)
    #expect(writer.serialized() == data, "serialisation is not deterministic")
    // Exact bytes of the buffer: U8 1, F64 7.0, F32 1.0 and 2.0, little-endian.
    let buffer = [UInt8](data[(8 + Int(n))...])
    #expect(buffer == [1, 0, 0, 0, 0, 0, 0, 0x1C, 0x40, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40])
  }

  @Test func writerRejectsInconsistentTensors() {
    var writer = SafetensorsWriter()
    #expect(throws: SafetensorsError.invalidTensor(name: "w", reason: "3 values for shape [2, 2]")) {
      try writer.add("w", shape: [2, 2], .f32([1, 2, 3]))
    }
    #expect(throws: SafetensorsError.invalidTensor(name: "__metadata__", reason: "the name is empty or reserved")) {
      try writer.add("__metadata__", shape: [1], .u8([1]))
    }
  }

  @Test func refusesToOverwriteAnInputThroughAnyPathSpelling() throws {
    let folder = TemporaryFolder("overwrite")
    defer { folder.remove() }
    let input = folder.file("in.safetensors")
    var writer = SafetensorsWriter()
    try writer.add("weight", shape: [1], .f32([3]))
    try writer.write(to: input)
    let original = try Data(contentsOf: input)
    let link = folder.file("link.safetensors")
    try FileManager.default.createSymbolicLink(at: link, withDestinationURL: input)
    let hard = folder.file("hard.safetensors")
    try FileManager.default.linkItem(at: input, to: hard)
    let dotted = folder.url.appendingPathComponent("./sub/../in.safetensors")
    for spelling in [input, link, hard, dotted] {
      #expect(isSameFile(spelling, input), "\(spelling.path)")
      #expect(throws: SafetensorsError.wouldOverwriteInput(path: spelling.path)) {
        var w2 = SafetensorsWriter()
        try w2.add("weight", shape: [1], .f32([0]))
        try w2.write(to: spelling, protecting: [input])
      }
    }
    #expect(try Data(contentsOf: input) == original)
    #expect(!isSameFile(folder.file("other.safetensors"), input))
    // A path whose folder does not exist cannot be written; the error names it.
    let missing = folder.url.appendingPathComponent("no/such/dir/out.safetensors")
    do {
      try writer.write(to: missing)
      Issue.record("writing into a missing folder succeeded")
    } catch {
      guard case .writeFailed(let path, _) = error else {
        Issue.record("\(error)")
        return
      }
      #expect(path == missing.path)
    }
  }

  // MARK: Decoding half precision

  /// binary16 bit patterns and their exact values (IEEE 754-2008 §3.6).
  static let halfCases: [(bits: UInt16, value: Float)] = [
    (0x3C00, 1.0), (0xC100, -2.5), (0x7BFF, 65504), (0x0400, 0x1p-14),  // smallest normal
    (0x0001, 0x1p-24),  // smallest subnormal
    (0x03FF, 1023 * 0x1p-24),  // largest subnormal
    (0x8000, -0.0), (0x3555, 0x1.554p-2), (0x7C00, .infinity), (0xFC00, -.infinity),
  ]

  /// bfloat16 bit patterns and their exact values (the top half of a binary32).
  static let bfloat16Cases: [(bits: UInt16, value: Float)] = [
    (0x3F80, 1.0), (0xC020, -2.5), (0x477F, 65280), (0x7F7F, 0x1.FEp127),  // largest finite
    (0x0080, 0x1p-126),  // smallest normal
    (0x0001, 0x1p-133),  // smallest subnormal
    (0x8000, -0.0), (0x3DCD, 0.10009765625), (0x7F80, .infinity), (0xFF80, -.infinity),
  ]

  @Test func halfAndBFloat16DecodeExactly() throws {
    for (dtype, cases) in [("F16", Self.halfCases), ("BF16", Self.bfloat16Cases)] {
      let words = cases.map(\.bits) + [dtype == "F16" ? 0x7E00 : 0x7FC0]  // + a quiet NaN
      let header = "{\"h\":{\"dtype\":\"\(dtype)\",\"shape\":[\(words.count)],\"data_offsets\":[0,\(2 * words.count)]}}"
      let file = try SafetensorsFile(
        data: safetensorsBytes(header: header, buffer: littleEndianBytes(words)), name: dtype)
      let f = try file.floatTensor("h").values
      let d = try file.doubleTensor("h").values
      for (i, c) in cases.enumerated() {
        #expect(f[i].bitPattern == c.value.bitPattern, "\(dtype) 0x\(String(c.bits, radix: 16)): \(f[i]) vs \(c.value)")
        #expect(d[i].bitPattern == Double(c.value).bitPattern, "\(dtype) 0x\(String(c.bits, radix: 16)) as Double")
      }
      #expect(f.last!.isNaN && d.last!.isNaN, "\(dtype) NaN")
      #expect(floatFromHalf(0x7E00).isNaN && floatFromBFloat16(0x7FC0).isNaN)
    }
  }

  @Test func everyHalfDecodesLikeFloat16() throws {
    // The platform's Float16 is an independent oracle for all 65536 patterns.
    #if arch(x86_64) || arch(arm64)
      for bits in 0...UInt16.max {
        let mine = floatFromHalf(bits)
        let theirs = Float(Float16(bitPattern: bits))
        #expect(mine.bitPattern == theirs.bitPattern || (mine.isNaN && theirs.isNaN), "0x\(String(bits, radix: 16))")
      }
    #endif
  }

  @Test func integerAndBoolTensorsDecode() throws {
    let i32: [Int32] = [-7, 0, 2_000_000_000]
    let i64: [Int64] = [-1 << 40, 5]
    var buffer: [UInt8] = []
    for v in i32 { withUnsafeBytes(of: v.littleEndian) { buffer += $0 } }
    for v in i64 { withUnsafeBytes(of: v.littleEndian) { buffer += $0 } }
    buffer += [1, 0, 1]
    let header = """
      {"a":{"dtype":"I32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"I64","shape":[2],"data_offsets":[12,28]},\
      "c":{"dtype":"BOOL","shape":[3],"data_offsets":[28,31]}}
      """
    let file = try SafetensorsFile(data: safetensorsBytes(header: header, buffer: buffer), name: "ints")
    #expect(try file.doubleTensor("a").values == [-7, 0, 2_000_000_000])
    #expect(try file.doubleTensor("b").values == [-0x1p40, 5])
    #expect(try file.bytes("c").values == [1, 0, 1])
    #expect(throws: SafetensorsError.unsupportedDType(path: "ints", tensor: "a", dtype: .I32, wanted: "U8 or BOOL")) {
      try file.bytes("a")
    }
  }

  // MARK: Malformed files

  /// A valid two-tensor buffer: "a" F32 [2] at [0, 8), "b" U8 [4] at [8, 12).
  static let buffer12 = [UInt8](repeating: 0, count: 12)

  @Test func malformedFilesGiveTypedErrors() throws {
    func open(_ header: String, _ buffer: [UInt8] = Self.buffer12) throws(SafetensorsError) -> SafetensorsFile {
      try SafetensorsFile(data: safetensorsBytes(header: header, buffer: buffer), name: "f")
    }
    let good = """
      {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}
      """
    _ = try open(good)

    #expect(throws: SafetensorsError.truncated(path: "f", size: 5)) {
      try SafetensorsFile(data: Data([1, 2, 3, 4, 5]), name: "f")
    }
    // Header length beyond the file: claim 1000 bytes, give 20.
    var long = Data([0xE8, 0x03, 0, 0, 0, 0, 0, 0])
    long.append(contentsOf: Array("{}".utf8) + [UInt8](repeating: 0x20, count: 18))
    #expect(throws: SafetensorsError.headerLengthOutOfRange(path: "f", headerLength: 1000, fileSize: 28)) {
      try SafetensorsFile(data: long, name: "f")
    }
    // A truncated file: the header is cut off.
    let full = safetensorsBytes(header: good, buffer: Self.buffer12)
    #expect(
      throws: SafetensorsError.headerLengthOutOfRange(path: "f", headerLength: UInt64(good.utf8.count), fileSize: 40)
    ) {
      try SafetensorsFile(data: full.prefix(40), name: "f")
    }
    // A truncated file: the data buffer is cut off.
    #expect(
      throws: SafetensorsError.invalidOffsets(
        path: "f", tensor: "b", reason: "data_offsets [8, 12] reach beyond the data buffer of 10 bytes")
    ) {
      try SafetensorsFile(data: full.prefix(full.count - 2), name: "f")
    }
    #expect(throws: SafetensorsError.self) { try open("{\"a\": nonsense}") }
    #expect(throws: SafetensorsError.invalidHeader(path: "f", reason: "the top level is not a JSON object")) {
      try open("[1, 2]", [])
    }
    #expect(throws: SafetensorsError.unknownDType(path: "f", tensor: "a", dtype: "F17")) {
      try open(good.replacingOccurrences(of: "F32", with: "F17"))
    }
    #expect(throws: SafetensorsError.invalidShape(path: "f", tensor: "a", reason: "-2 is not a non-negative integer")) {
      try open(good.replacingOccurrences(of: "[2]", with: "[-2]"))
    }
    // Wrong size for dtype × shape: F32 [3] needs 12 bytes, the extent has 8.
    #expect(
      throws: SafetensorsError.invalidOffsets(
        path: "f", tensor: "a", reason: "data_offsets [0, 8] span 8 bytes, but F32 [3] needs 12")
    ) {
      try open(good.replacingOccurrences(of: "[2]", with: "[3]"))
    }
    #expect(
      throws: SafetensorsError.invalidOffsets(path: "f", tensor: "a", reason: "data_offsets [8, 0] are not increasing")
    ) {
      try open(good.replacingOccurrences(of: "[0,8]", with: "[8,0]"))
    }
    #expect(
      throws: SafetensorsError.invalidOffsets(
        path: "f", tensor: "b", reason: "data_offsets [8, 16] reach beyond the data buffer of 12 bytes")
    ) {
      try open(
        good.replacingOccurrences(
          of: "\"shape\":[4],\"data_offsets\":[8,12]", with: "\"shape\":[8],\"data_offsets\":[8,16]"))
    }
    // Overlap: b starts inside a.
    #expect(throws: SafetensorsError.overlappingTensors(path: "f", first: "a", second: "b")) {
      try open(
        good.replacingOccurrences(
          of: "\"shape\":[4],\"data_offsets\":[8,12]", with: "\"shape\":[4],\"data_offsets\":[4,8]"),
        [UInt8](repeating: 0, count: 8))
    }
    // A gap before b, and trailing bytes after it.
    #expect(throws: SafetensorsError.uncoveredBytes(path: "f", tensor: "b", offset: 8)) {
      try open(
        good.replacingOccurrences(
          of: "\"shape\":[4],\"data_offsets\":[8,12]", with: "\"shape\":[2],\"data_offsets\":[10,12]"))
    }
    #expect(throws: SafetensorsError.uncoveredBytes(path: "f", tensor: nil, offset: 12)) {
      try open(good, Self.buffer12 + [0, 0])
    }
    #expect(throws: SafetensorsError.invalidHeader(path: "f", reason: "__metadata__ value for 'k' is not a string")) {
      try open("{\"__metadata__\":{\"k\":1}}", [])
    }
    let file = try open(good)
    #expect(throws: SafetensorsError.missingTensor(path: "f", tensor: "c")) { try file.doubleTensor("c") }
    let f8 = try open(good.replacingOccurrences(of: "\"U8\"", with: "\"F8_E4M3\""))
    #expect(throws: SafetensorsError.unsupportedDType(path: "f", tensor: "b", dtype: .F8_E4M3, wanted: "Double")) {
      try f8.doubleTensor("b")
    }
  }

  @Test func unreadableFileNamesThePath() {
    let path = "/nonexistent/prunekit/x.safetensors"
    do {
      _ = try SafetensorsFile(contentsOf: URL(fileURLWithPath: path))
      Issue.record("opened a missing file")
    } catch {
      guard case .unreadable(let p, _) = error else {
        Issue.record("\(error)")
        return
      }
      #expect(p == path)
    }
  }

  @Test func everyErrorDescriptionIsOneLineWithAHint() {
    let errors: [SafetensorsError] = [
      .unreadable(path: "p", reason: "r"), .truncated(path: "p", size: 3),
      .headerLengthOutOfRange(path: "p", headerLength: 9, fileSize: 8), .invalidHeader(path: "p", reason: "r"),
      .unknownDType(path: "p", tensor: "t", dtype: "X"), .invalidShape(path: "p", tensor: "t", reason: "r"),
      .invalidOffsets(path: "p", tensor: "t", reason: "r"), .overlappingTensors(path: "p", first: "a", second: "b"),
      .uncoveredBytes(path: "p", tensor: nil, offset: 1), .missingTensor(path: "p", tensor: "t"),
      .unsupportedDType(path: "p", tensor: "t", dtype: .F8_E5M2, wanted: "Float"),
      .invalidTensor(name: "t", reason: "r"), .wouldOverwriteInput(path: "p"), .writeFailed(path: "p", reason: "r"),
    ]
    for e in errors {
      #expect(!e.description.contains("\n") && e.description.contains("Hint: "), "\(e)")
    }
  }
}
