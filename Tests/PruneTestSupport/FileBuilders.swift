// Builders of test inputs that several test targets share: a temporary folder per test, and the
// raw bytes of safetensors and GGUF files whose every byte the test chooses (so readers are tested
// on files written without the code under test).

import Foundation
import PruneFormats

/// A fresh empty folder under the system temporary folder, named after the test, removed by
/// `remove()`. Test inputs never depend on the name.
public struct TemporaryFolder {
  public let url: URL

  public init(_ name: String) {
    url = FileManager.default.temporaryDirectory
      .appendingPathComponent("prunekit-tests-\(ProcessInfo.processInfo.processIdentifier)-\(name)")
    try? FileManager.default.removeItem(at: url)
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }

  public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

  public func remove() { try? FileManager.default.removeItem(at: url) }
}

/// The bytes of a safetensors file: the little-endian header length, `header` verbatim, `buffer`.
public func safetensorsBytes(header: String, buffer: [UInt8]) -> Data {
  var out = Data()
  var n = UInt64(header.utf8.count).littleEndian
  withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
  out.append(contentsOf: Array(header.utf8))
  out.append(contentsOf: buffer)
  return out
}

/// Little-endian bytes of 16-bit words.
public func littleEndianBytes(_ words: [UInt16]) -> [UInt8] {
  words.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
}

// MARK: - A GGUF writer

/// Writes GGUF v3 bytes from metadata and raw tensor blocks, following the layout in GGUF.swift,
/// so the reader is tested on files whose every byte the test chose.
public struct GGUFBuilder {
  public init() {}
  public var version: UInt32 = 3
  public var alignment = 32
  public var metadata: [(String, GGUFValue)] = []
  /// (name, ne innermost first, type, stored bytes)
  public var tensors: [(name: String, dims: [Int], type: UInt32, bytes: [UInt8])] = []

  public static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    withUnsafeBytes(of: v.littleEndian) { Array($0) }
  }

  public static func string(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

  public static func payload(_ v: GGUFValue) -> [UInt8] {
    switch v {
    case .uint8(let x): return le(x)
    case .int8(let x): return le(x)
    case .uint16(let x): return le(x)
    case .int16(let x): return le(x)
    case .uint32(let x): return le(x)
    case .int32(let x): return le(x)
    case .uint64(let x): return le(x)
    case .int64(let x): return le(x)
    case .float32(let x): return le(x.bitPattern)
    case .float64(let x): return le(x.bitPattern)
    case .bool(let x): return [x ? 1 : 0]
    case .string(let s): return string(s)
    case .array(let type, let elements):
      return le(type.rawValue) + le(UInt64(elements.count)) + elements.flatMap(payload)
    }
  }

  /// The file bytes, and the offset of the data section.
  public func build() -> (bytes: [UInt8], dataOffset: Int) {
    let (bytes, dataOffset, _) = buildWithEnd()
    return (bytes, dataOffset)
  }

  /// The file bytes, the offset of the data section and the end of the last tensor's bytes (what
  /// follows is padding).
  public func buildWithEnd() -> (bytes: [UInt8], dataOffset: Int, contentEnd: Int) {
    var out: [UInt8] =
      Array("GGUF".utf8) + Self.le(version) + Self.le(UInt64(tensors.count))
      + Self.le(UInt64(metadata.count))
    for (k, v) in metadata { out += Self.string(k) + Self.le(v.type.rawValue) + Self.payload(v) }
    var offsets: [Int] = []
    var cursor = 0
    for t in tensors {
      offsets.append(cursor)
      cursor += t.bytes.count
      cursor = (cursor + alignment - 1) / alignment * alignment
    }
    for (t, offset) in zip(tensors, offsets) {
      out +=
        Self.string(t.name) + Self.le(UInt32(t.dims.count)) + t.dims.flatMap { Self.le(UInt64($0)) }
        + Self.le(t.type) + Self.le(UInt64(offset))
    }
    while out.count % alignment != 0 { out.append(0) }
    let dataOffset = out.count
    for (t, offset) in zip(tensors, offsets) {
      while out.count < dataOffset + offset { out.append(0) }
      out += t.bytes
    }
    let contentEnd = out.count
    while (out.count - dataOffset) % alignment != 0 { out.append(0) }
    return (out, dataOffset, contentEnd)
  }

  public func file(path: String = "test.gguf") throws -> GGUFFile {
    try GGUFFile(data: Data(build().bytes), path: path)
  }
}
