import Foundation
import PruneTestSupport
import Testing

@testable import PruneFormats

/// The readers that open a file and read each tensor with pread (`ByteSource`) against the same
/// readers on the whole file in memory (what the mapped reader saw): same tensors, same stored
/// types, same errors on damaged files.
@Suite struct ByteSourceTests {
  /// A safetensors file with F32, F64, U8, F16 and BF16 tensors.
  static func safetensorsFile() -> Data {
    // F16 [2]: 1.0, -2.0; BF16 [3]: 1.0, 0.5, -3.0; F32 [2]: 0.25, 7.0.
    let f16 = littleEndianBytes([0x3C00, 0xC000])
    let bf16 = littleEndianBytes([0x3F80, 0x3F00, 0xC040])
    let f32 = [Float(0.25), 7].flatMap { GGUFBuilder.le($0.bitPattern) }
    let header =
      #"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[4,10]},"#
      + #""c":{"dtype":"F32","shape":[1,2],"data_offsets":[10,18]},"d":{"dtype":"U8","shape":[2],"data_offsets":[18,20]}}"#
    return safetensorsBytes(header: header, buffer: f16 + bf16 + f32 + [3, 9])
  }

  @Test func safetensorsReadFromTheFileEqualsTheBytesInMemory() throws {
    let folder = TemporaryFolder("bytesource-st")
    defer { folder.remove() }
    let url = folder.file("m.safetensors")
    let bytes = Self.safetensorsFile()
    try bytes.write(to: url)
    let file = try SafetensorsFile(contentsOf: url)
    let memory = try SafetensorsFile(data: bytes, name: url.path)
    #expect(file.tensors == memory.tensors)
    #expect(file.tensorNames == ["a", "b", "c", "d"])
    for name in file.tensorNames {
      #expect(try file.floatTensor(name) == memory.floatTensor(name), "\(name)")
      #expect(try file.doubleTensor(name).values == memory.doubleTensor(name).values, "\(name)")
    }
    #expect(try file.floatTensor("b").values == [1, 0.5, -3])
    #expect(try file.bytes("d").values == [3, 9])
    #expect(file.storedType(of: "a") == .f16)
    #expect(file.storedType(of: "b") == .bf16)
    #expect(file.storedType(of: "c") == .f32)
    #expect(file.storedType(of: "d") == .quantized)
    #expect(file.storedType(of: "e") == nil)
  }

  /// Every prefix of a valid file is refused with the same error read from a file as from memory:
  /// the checks that need the file's size use it, not bytes that were read.
  @Test func safetensorsCutFilesGiveTheSameErrors() throws {
    let folder = TemporaryFolder("bytesource-stcut")
    defer { folder.remove() }
    let url = folder.file("cut.safetensors")
    let bytes = Self.safetensorsFile()
    for length in [0, 5, 8, 12, 100, bytes.count - 1] {
      let cut = bytes.prefix(length)
      try cut.write(to: url)
      let fromMemory = #expect(throws: SafetensorsError.self) { try SafetensorsFile(data: cut, name: url.path) }
      let fromFile = #expect(throws: SafetensorsError.self) { try SafetensorsFile(contentsOf: url) }
      #expect(fromFile == fromMemory, "length \(length)")
    }
  }

  /// A file that shrinks after it was opened: the read of a tensor past the new end says so.
  @Test func aTensorBeyondTheEndOfAShrunkFileIsUnreadable() throws {
    let folder = TemporaryFolder("bytesource-shrink")
    defer { folder.remove() }
    let url = folder.file("shrinks.safetensors")
    let bytes = Self.safetensorsFile()
    try bytes.write(to: url)
    let file = try SafetensorsFile(contentsOf: url)
    try bytes.prefix(bytes.count - 4).write(to: url)
    #expect(try file.floatTensor("a").values == [1, -2])
    let error = #expect(throws: SafetensorsError.self) { try file.floatTensor("c") }
    guard case .unreadable(let path, let reason)? = error else {
      Issue.record("expected unreadable, got \(String(describing: error))")
      return
    }
    #expect(path == url.path)
    #expect(reason.contains("changed while being read"), "\(reason)")
  }

  /// A GGUF whose metadata (a vocabulary of 150 000 tokens, 2.4 MB) is longer than the first read
  /// of the header, so the header is read again with a longer prefix.
  static func ggufFile() -> [UInt8] { ggufBuilder().build().bytes }

  static func ggufBuilder() -> GGUFBuilder {
    var builder = GGUFBuilder()
    let tokens = (0..<150_000).map { GGUFValue.string("token\($0)") }
    builder.metadata = [
      ("general.architecture", .string("llama")), ("tokenizer.ggml.tokens", .array(.string, tokens)),
    ]
    let f32 = (0..<8).flatMap { GGUFBuilder.le((Float($0) * 0.5 - 1).bitPattern) }
    let f16 = littleEndianBytes([0x3C00, 0xC000, 0x3800, 0x0000])
    builder.tensors = [
      (name: "token_embd.weight", dims: [4, 2], type: 0, bytes: f32),
      (name: "output_norm.weight", dims: [4], type: 1, bytes: f16),
    ]
    return builder
  }

  @Test func ggufReadFromTheFileEqualsTheBytesInMemory() throws {
    let folder = TemporaryFolder("bytesource-gguf")
    defer { folder.remove() }
    let url = folder.file("m.gguf")
    let bytes = Self.ggufFile()
    #expect(bytes.count > 2 * GGUFFile.headerReadBytes)
    try Data(bytes).write(to: url)
    let file = try GGUFFile(contentsOf: url)
    let memory = try GGUFFile(data: Data(bytes), path: url.path)
    #expect(file.metadata == memory.metadata)
    #expect(file.metadataKeys == memory.metadataKeys)
    #expect(file.tensorInfos == memory.tensorInfos)
    #expect(file.dataOffset == memory.dataOffset)
    #expect(file.tensorNames == ["model.embed_tokens.weight", "model.norm.weight"])
    for name in file.tensorNames { #expect(try file.floatTensor(name) == memory.floatTensor(name), "\(name)") }
    #expect(try file.floatTensor("model.norm.weight").values == [1, -2, 0.5, 0])
    #expect(file.storedType(of: "model.embed_tokens.weight") == .f32)
    #expect(file.storedType(of: "model.norm.weight") == .f16)
    #expect(file.storedType(of: "lm_head.weight") == nil)
  }

  @Test func ggufCutFilesGiveTheSameErrors() throws {
    let folder = TemporaryFolder("bytesource-ggufcut")
    defer { folder.remove() }
    let url = folder.file("cut.gguf")
    // Past the end of the last tensor's bytes comes only padding, which may be cut.
    let (bytes, _, end) = Self.ggufBuilder().buildWithEnd()
    for length in [0, 3, 20, 1 << 20, (1 << 20) + 7, end - 20, end - 1] {
      let cut = Data(bytes.prefix(length))
      try cut.write(to: url)
      let fromMemory = #expect(throws: GGUFError.self) { _ = try GGUFFile(data: cut, path: url.path) }
      let fromFile = #expect(throws: GGUFError.self) { _ = try GGUFFile(contentsOf: url) }
      #expect(fromFile == fromMemory, "length \(length)")
    }
  }

  @Test func aMissingFileOrAFolderIsRefusedWithTheReadersReasons() throws {
    let folder = TemporaryFolder("bytesource-missing")
    defer { folder.remove() }
    #expect(throws: SafetensorsError.unreadable(path: folder.url.path, reason: InputFiles.isFolder)) {
      try SafetensorsFile(contentsOf: folder.url)
    }
    let missing = folder.file("none.gguf")
    #expect(throws: GGUFError.unreadable(path: missing.path, reason: InputFiles.missing)) {
      try GGUFFile(contentsOf: missing)
    }
  }
}
