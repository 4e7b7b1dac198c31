// The safetensors format (https://github.com/huggingface/safetensors), read and written without
// dependencies:
//
//     [8 bytes: N, little-endian u64] [N bytes: JSON header, UTF-8] [the data buffer]
//
// The header maps each tensor name to {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}
// (offsets relative to the start of the data buffer, e − b = element count × dtype size,
// row-major, little-endian) and may hold "__metadata__": {string: string}. The reader validates
// as strictly as the reference Rust crate: the header fits in the file, every dtype is known,
// every extent has the size its dtype and shape need, and the tensors tile the data buffer with
// no overlap, gap or trailing bytes.

import Foundation
import PruneKernels

/// A safetensors element type, spelled as in the header ("F32", "BF16", ...).
public enum SafetensorsDType: String, Sendable, CaseIterable, Codable {
  case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64

  /// Bytes per element.
  public var size: Int {
    switch self {
    case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: return 1
    case .I16, .U16, .F16, .BF16: return 2
    case .I32, .U32, .F32: return 4
    case .F64, .I64, .U64: return 8
    }
  }

  /// True for the types `SafetensorsFile` converts to floating point: F64, F32, F16, BF16, U8,
  /// BOOL, I32, I64.
  public var isDecodable: Bool {
    switch self {
    case .F64, .F32, .F16, .BF16, .U8, .BOOL, .I32, .I64: return true
    default: return false
    }
  }
}

/// Why a safetensors file could not be read or written. Every description is one line naming
/// the file (and tensor) and ending with a `Hint:`.
public enum SafetensorsError: PruneKitError, Equatable {
  /// The file could not be opened or read.
  case unreadable(path: String, reason: String)
  /// Fewer than the 8 bytes of the header length.
  case truncated(path: String, size: Int)
  /// The header length points beyond the end of the file (or is absurdly small).
  case headerLengthOutOfRange(path: String, headerLength: UInt64, fileSize: Int)
  /// The header is not a JSON object of the expected form.
  case invalidHeader(path: String, reason: String)
  /// A dtype the format does not define.
  case unknownDType(path: String, tensor: String, dtype: String)
  /// A shape that is not a list of non-negative integers.
  case invalidShape(path: String, tensor: String, reason: String)
  /// data_offsets that are malformed, beyond the buffer, or of the wrong size for dtype × shape.
  case invalidOffsets(path: String, tensor: String, reason: String)
  /// The header names the same tensor twice (JSON parsers silently keep one of the two entries).
  case duplicateTensor(path: String, tensor: String)
  /// Two tensors share bytes.
  case overlappingTensors(path: String, first: String, second: String)
  /// The data buffer has bytes no tensor covers (a gap before `tensor`, or trailing bytes when
  /// `tensor` is nil).
  case uncoveredBytes(path: String, tensor: String?, offset: Int)
  /// No tensor of that name.
  case missingTensor(path: String, tensor: String)
  /// The tensor's dtype cannot be converted to what was asked for.
  case unsupportedDType(path: String, tensor: String, dtype: SafetensorsDType, wanted: String)
  /// A tensor handed to the writer is inconsistent (value count vs shape, empty or duplicate name).
  case invalidTensor(name: String, reason: String)
  /// The output path is one of the inputs of the run.
  case wouldOverwriteInput(path: String)
  /// Writing or renaming failed.
  case writeFailed(path: String, reason: String)

  public var message: String {
    switch self {
    case .unreadable(let path, let reason): return "safetensors \(path): cannot read the file (\(reason))"
    case .truncated(let path, let size):
      return "safetensors \(path): the file has \(size) bytes, fewer than the 8-byte header length"
    case .headerLengthOutOfRange(let path, let n, let size):
      return "safetensors \(path): header length \(n) does not fit in a file of \(size) bytes"
    case .invalidHeader(let path, let reason): return "safetensors \(path): invalid header: \(reason)"
    case .unknownDType(let path, let tensor, let dtype):
      return "safetensors \(path): tensor '\(tensor)' has unknown dtype '\(dtype)'"
    case .invalidShape(let path, let tensor, let reason):
      return "safetensors \(path): tensor '\(tensor)' has an invalid shape: \(reason)"
    case .invalidOffsets(let path, let tensor, let reason): return "safetensors \(path): tensor '\(tensor)': \(reason)"
    case .duplicateTensor(let path, let tensor): return "safetensors \(path): the header lists tensor '\(tensor)' twice"
    case .overlappingTensors(let path, let first, let second):
      return "safetensors \(path): tensors '\(first)' and '\(second)' overlap"
    case .uncoveredBytes(let path, let tensor, let offset):
      let place = tensor.map { "before tensor '\($0)'" } ?? "after the last tensor"
      return "safetensors \(path): the data buffer has unused bytes at offset \(offset), \(place)"
    case .missingTensor(let path, let tensor): return "safetensors \(path): no tensor named '\(tensor)'"
    case .unsupportedDType(let path, let tensor, let dtype, let wanted):
      return "safetensors \(path): tensor '\(tensor)' is \(dtype.rawValue), which cannot be read as \(wanted)"
    case .invalidTensor(let name, let reason): return "safetensors writer: tensor '\(name)': \(reason)"
    case .wouldOverwriteInput(let path): return "refusing to write \(path): it is one of the input files"
    case .writeFailed(let path, let reason): return "safetensors \(path): cannot write (\(reason))"
    }
  }

  public var hint: String? {
    switch self {
    case .unreadable(_, let reason): return InputFiles.hint(reason: reason)
    case .truncated, .headerLengthOutOfRange: return "the file is truncated or not a safetensors file."
    case .invalidHeader:
      return "the header must be a UTF-8 JSON object of {\"dtype\", \"shape\", \"data_offsets\"} entries;"
        + " the file is damaged or not a safetensors file, re-export it."
    case .unknownDType: return "known dtypes are \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", "))."
    case .invalidShape: return "a shape is a list of non-negative integers."
    case .invalidOffsets:
      return "the file is truncated or corrupt (data_offsets [begin, end] are relative to the data buffer"
        + " and span elements × dtype size bytes); re-export it."
    case .duplicateTensor, .uncoveredBytes:
      return "the file is corrupt or was written by a non-conforming tool; re-export it."
    case .overlappingTensors: return "the file is corrupt; re-export it."
    case .missingTensor: return "list the tensor names of the file and check the spelling."
    case .unsupportedDType: return "convert it (e.g. to F32) when exporting."
    case .invalidTensor: return "this is a bug in the caller."
    case .wouldOverwriteInput: return "choose a different output path."
    case .writeFailed: return "check that the folder exists and is writable."
    }
  }
}

// MARK: - Reader

/// A safetensors file, its header read and validated on open; each tensor is read from the file and
/// decoded when asked for (no mapping of the file is kept).
public struct SafetensorsFile: TensorSource {
  /// Where a tensor lives in the file.
  public struct TensorInfo: Sendable, Equatable {
    /// The element type.
    public let dtype: SafetensorsDType
    /// The shape, outermost dimension first.
    public let shape: [Int]
    /// The tensor's bytes, as absolute offsets into the file.
    public let byteRange: Range<Int>

    /// Number of elements (1 for a scalar of shape []).
    public var count: Int { shape.reduce(1, *) }
  }

  /// The path the file was read from (or the name given to `init(data:name:)`), for messages.
  public let path: String
  /// The `__metadata__` map (empty when absent).
  public let metadata: [String: String]
  /// Every tensor, by name.
  public let tensors: [String: TensorInfo]
  /// The file's bytes, read by range when a tensor is decoded.
  private let source: ByteSource

  /// Opens and validates the file at `url`: the header is read now, each tensor's bytes when it is
  /// decoded (`ByteSource`: read with pread, no mapping kept).
  public init(contentsOf url: URL) throws(SafetensorsError) {
    let source: ByteSource
    do { source = try ByteSource(contentsOf: url) } catch {
      throw .unreadable(path: url.path, reason: error.reason)
    }
    try self.init(source: source)
  }

  /// Validates the bytes of a safetensors file held in memory; `name` is used in messages.
  public init(data: Data, name: String) throws(SafetensorsError) {
    try self.init(source: ByteSource(data: data, name: name))
  }

  /// Reads and validates the header of the file behind `source` (every extent is checked against
  /// the file's size; no tensor's bytes are read).
  public init(source: ByteSource) throws(SafetensorsError) {
    let name = source.path
    self.path = name
    self.source = source
    let size = source.size
    guard size >= 8 else { throw .truncated(path: name, size: size) }
    let lengthBytes = try Self.read(source, 0..<8)
    var n: UInt64 = 0
    for i in 0..<8 { n |= UInt64(lengthBytes[i]) << (8 * UInt64(i)) }
    // The smallest header is "{}" (2 bytes).
    guard n >= 2, n <= UInt64(size - 8) else {
      throw .headerLengthOutOfRange(path: name, headerLength: n, fileSize: size)
    }
    let headerEnd = 8 + Int(n)
    let headerBytes = Data(try Self.read(source, 8..<headerEnd))
    // The format says UTF-8; JSONSerialization would also take UTF-16 and UTF-32 (whose ASCII
    // characters come with NUL bytes, which UTF-8 JSON never holds).
    if let bad = firstInvalidUTF8(headerBytes) {
      throw .invalidHeader(path: name, reason: "byte \(8 + bad) of the file (in the header) is not valid UTF-8")
    }
    if let nul = headerBytes.firstIndex(of: 0) {
      throw .invalidHeader(
        path: name,
        reason:
          "byte \(8 + nul - headerBytes.startIndex) of the file (in the header) is NUL, which UTF-8 JSON never holds")
    }
    let object: Any
    do {
      object = try JSONSerialization.jsonObject(with: headerBytes, options: [])
    } catch {
      throw .invalidHeader(path: name, reason: "not valid JSON (\(jsonErrorReason(error)))")
    }
    guard let header = object as? [String: Any] else {
      throw .invalidHeader(path: name, reason: "the top level is not a JSON object")
    }
    if let repeated = duplicateTopLevelKey(headerBytes) {
      throw .duplicateTensor(path: name, tensor: repeated)
    }
    var metadata: [String: String] = [:]
    var tensors: [String: TensorInfo] = [:]
    let bufferSize = size - headerEnd
    for key in header.keys.sorted() {
      let value = header[key]!
      if key == "__metadata__" {
        guard let m = value as? [String: Any] else {
          throw .invalidHeader(path: name, reason: "__metadata__ is not an object")
        }
        for (k, v) in m {
          guard let s = v as? String else {
            throw .invalidHeader(path: name, reason: "__metadata__ value for '\(k)' is not a string")
          }
          metadata[k] = s
        }
        continue
      }
      guard let entry = value as? [String: Any] else {
        throw .invalidHeader(path: name, reason: "entry '\(key)' is not an object")
      }
      guard let dtypeName = entry["dtype"] as? String else {
        throw .invalidHeader(path: name, reason: "entry '\(key)' has no string 'dtype'")
      }
      guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
        throw .unknownDType(path: name, tensor: key, dtype: dtypeName)
      }
      guard let shapeList = entry["shape"] as? [Any] else {
        throw .invalidShape(path: name, tensor: key, reason: "'shape' is missing or not a list")
      }
      var shape: [Int] = []
      // The product of the non-zero dimensions must not overflow, not only the element count: with
      // a zero dimension the count is 0, and [0, 2⁴⁰, 2⁴⁰] multiplied in another order would overflow.
      var nonZeroProduct = 1
      for d in shapeList {
        guard let v = Self.integer(d), v >= 0 else {
          throw .invalidShape(path: name, tensor: key, reason: "\(d) is not a non-negative integer")
        }
        let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: max(v, 1))
        guard !overflow else { throw .invalidShape(path: name, tensor: key, reason: "the element count overflows") }
        shape.append(v)
        nonZeroProduct = product
      }
      let count = shape.contains(0) ? 0 : nonZeroProduct
      guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
        let begin = Self.integer(offsets[0]), let end = Self.integer(offsets[1])
      else {
        throw .invalidOffsets(path: name, tensor: key, reason: "'data_offsets' is missing or not two integers")
      }
      guard begin >= 0, end >= begin else {
        throw .invalidOffsets(path: name, tensor: key, reason: "data_offsets [\(begin), \(end)] are not increasing")
      }
      guard end <= bufferSize else {
        throw .invalidOffsets(
          path: name, tensor: key,
          reason: "data_offsets [\(begin), \(end)] reach beyond the data buffer of \(bufferSize) bytes")
      }
      let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
      guard !overflow, end - begin == bytes else {
        throw .invalidOffsets(
          path: name, tensor: key,
          reason:
            "data_offsets [\(begin), \(end)] span \(end - begin) bytes, but \(dtype.rawValue) \(shape) needs \(bytes)")
      }
      for k in entry.keys where k != "dtype" && k != "shape" && k != "data_offsets" {
        throw .invalidHeader(path: name, reason: "entry '\(key)' has an unknown field '\(k)'")
      }
      tensors[key] = TensorInfo(dtype: dtype, shape: shape, byteRange: (headerEnd + begin)..<(headerEnd + end))
    }
    // The tensors must tile the data buffer: sorted by offset (then name), each starts where the
    // previous one ended, and the last ends at the end of the file.
    let ordered = tensors.sorted {
      ($0.value.byteRange.lowerBound, $0.value.byteRange.upperBound, $0.key)
        < ($1.value.byteRange.lowerBound, $1.value.byteRange.upperBound, $1.key)
    }
    var cursor = headerEnd
    var previous: String? = nil
    for (tensorName, info) in ordered {
      if info.byteRange.lowerBound < cursor, let previous {
        throw .overlappingTensors(path: name, first: previous, second: tensorName)
      }
      if info.byteRange.lowerBound > cursor {
        throw .uncoveredBytes(path: name, tensor: tensorName, offset: cursor - headerEnd)
      }
      cursor = info.byteRange.upperBound
      previous = tensorName
    }
    if cursor != size { throw .uncoveredBytes(path: name, tensor: nil, offset: cursor - headerEnd) }
    self.metadata = metadata
    self.tensors = tensors
  }

  /// Every tensor name, sorted.
  public var tensorNames: [String] { tensors.keys.sorted() }

  /// The shape of a tensor, or nil when there is no such tensor.
  public func shape(of name: String) -> [Int]? { tensors[name]?.shape }

  /// The element type of a tensor as stored, or nil when there is no such tensor.
  public func rawDType(of name: String) -> SafetensorsDType? { tensors[name]?.dtype }

  /// F32, F16 and BF16 as themselves, every other dtype as `.quantized` (see `StoredFloatType`).
  public func storedType(of name: String) -> StoredFloatType? {
    switch tensors[name]?.dtype {
    case nil: return nil
    case .F32?: return .f32
    case .F16?: return .f16
    case .BF16?: return .bf16
    default: return .quantized
    }
  }

  /// The tensor converted to Float (F64 is rounded to nearest; integers converted).
  public func floatTensor(_ name: String) throws -> FloatTensor {
    let (shape, values) = try decode(name, as: Float.self)
    return FloatTensor(shape: shape, values: values)
  }

  /// The tensor converted to Double (exact for every floating-point dtype): its values,
  /// row-major, and its shape.
  public func doubleTensor(_ name: String) throws(SafetensorsError) -> (values: [Double], shape: [Int]) {
    let (shape, values) = try decode(name, as: Double.self)
    return (values, shape)
  }

  /// A 2-D tensor as a matrix of `T` (a 1-D tensor is one row). Throws on other ranks.
  public func matrix<T: KernelScalar>(_ name: String, as _: T.Type = T.self) throws(SafetensorsError) -> Matrix<T> {
    let (shape, values) = try decode(name, as: T.self)
    switch shape.count {
    case 1: return Matrix(rows: 1, columns: shape[0], elements: values)
    case 2: return Matrix(rows: shape[0], columns: shape[1], elements: values)
    default:
      throw .unsupportedDType(
        path: path, tensor: name, dtype: tensors[name]!.dtype, wanted: "a matrix (shape \(shape))")
    }
  }

  /// The raw bytes of a U8 or BOOL tensor (masks).
  public func bytes(_ name: String) throws(SafetensorsError) -> (values: [UInt8], shape: [Int]) {
    guard let info = tensors[name] else { throw .missingTensor(path: path, tensor: name) }
    guard info.dtype == .U8 || info.dtype == .BOOL else {
      throw .unsupportedDType(path: path, tensor: name, dtype: info.dtype, wanted: "U8 or BOOL")
    }
    return (try Self.read(source, info.byteRange), info.shape)
  }

  /// The tensor's shape and values converted to `T`.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func decode<T: BinaryFloatingPoint>(_ name: String, as _: T.Type) throws(SafetensorsError) -> (
    shape: [Int], values: [T]
  ) {
    guard let info = tensors[name] else { throw .missingTensor(path: path, tensor: name) }
    guard info.dtype.isDecodable else {
      throw .unsupportedDType(path: path, tensor: name, dtype: info.dtype, wanted: "\(T.self)")
    }
    return (info.shape, try Self.decodeValues(source, info.dtype, from: info.byteRange, count: info.count, as: T.self))
  }

  /// Rows `rows` of a tensor, read from the file alone: the rows of a row-major tensor are
  /// contiguous, so their bytes are one range (`TensorSource.floatRows`).
  public func floatRows(_ name: String, rows: Range<Int>) throws -> FloatTensor {
    guard let info = tensors[name] else { throw SafetensorsError.missingTensor(path: path, tensor: name) }
    let width = try elementsPerRow(rows, of: name, shape: info.shape)
    guard info.dtype.isDecodable else {
      throw SafetensorsError.unsupportedDType(path: path, tensor: name, dtype: info.dtype, wanted: "Float")
    }
    let count = rows.count * width
    let start = info.byteRange.lowerBound + rows.lowerBound * width * info.dtype.size
    let values = try Self.decodeValues(
      source, info.dtype, from: start..<(start + count * info.dtype.size), count: count, as: Float.self)
    return FloatTensor(shape: [rows.count] + info.shape.dropFirst(), values: values)
  }

  /// True for every decodable tensor of rank 1 or more: `floatRows` reads only the rows' bytes.
  public func readsRowRanges(of name: String) -> Bool {
    guard let info = tensors[name] else { return false }
    return info.dtype.isDecodable && !info.shape.isEmpty
  }

  /// The `count` values of `dtype` stored in `range` of the file, converted to `T`.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  private static func decodeValues<T: BinaryFloatingPoint>(
    _ source: ByteSource, _ dtype: SafetensorsDType, from range: Range<Int>, count: Int, as _: T.Type
  ) throws(SafetensorsError) -> [T] {
    // An empty tensor is `[]`: `Array(unsafeUninitializedCapacity: 0)` writes its count into the
    // shared empty-array singleton, which ThreadSanitizer reports as a race when two threads decode
    // empty tensors at once (scripts/sanitize.sh thread found it).
    if count == 0 { return [] }
    var values: [T] = []
    try withBytes(source, range) { (raw: UnsafeRawBufferPointer) in
      values = [T](unsafeUninitializedCapacity: count) { out, initialised in
        let base = raw.baseAddress!
        switch dtype {
        case .F32:
          for i in 0..<count {
            out[i] = T(
              Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))))
          }
        case .F64:
          for i in 0..<count {
            out[i] = T(
              Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
          }
        case .F16:
          for i in 0..<count {
            out[i] = T(floatFromHalf(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
          }
        case .BF16:
          for i in 0..<count {
            out[i] = T(
              floatFromBFloat16(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
          }
        case .U8, .BOOL:
          for i in 0..<count { out[i] = T(base.load(fromByteOffset: i, as: UInt8.self)) }
        case .I32:
          for i in 0..<count {
            out[i] = T(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
          }
        case .I64:
          for i in 0..<count {
            out[i] = T(Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
          }
        default:
          preconditionFailure("unreachable: \(dtype) is not decodable")
        }
        initialised = count
      }
    }
    return values
  }

  /// The bytes of `range` of the file.
  private static func read(_ source: ByteSource, _ range: Range<Int>) throws(SafetensorsError) -> [UInt8] {
    var bytes: [UInt8] = []
    try withBytes(source, range) { bytes = [UInt8]($0) }
    return bytes
  }

  /// `body` on the bytes of `range` of the file; a failed read is `unreadable`.
  private static func withBytes(
    _ source: ByteSource, _ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void
  ) throws(SafetensorsError) {
    do { try source.withBytes(range, body) } catch let error as InputFileError {
      throw .unreadable(path: source.path, reason: error.reason)
    } catch {
      throw .unreadable(path: source.path, reason: "\(error)")
    }
  }

  /// A JSON integer (JSONSerialization gives an NSNumber; booleans, which bridge to 0 and 1,
  /// and numbers written with a fraction or exponent are refused).
  private static func integer(_ any: Any) -> Int? {
    guard let n = any as? NSNumber else { return nil }
    switch String(cString: n.objCType) {
    case "c", "d", "f": return nil  // Bool, Double, Float
    case "Q": return n.uint64Value <= UInt64(Int.max) ? Int(n.uint64Value) : nil
    default: return n.intValue
    }
  }
}

/// The offset of the first byte of `bytes` that is not part of a valid UTF-8 sequence, or nil.
func firstInvalidUTF8(_ bytes: Data) -> Int? {
  var iterator = bytes.makeIterator()
  var decoder = UTF8()
  var offset = 0
  while true {
    switch decoder.decode(&iterator) {
    case .scalarValue(let scalar): offset += UTF8.width(scalar)
    case .emptyInput: return nil
    case .error: return offset
    }
  }
}

/// The first key that appears twice at the top level of a JSON object, or nil. `json` must already
/// have been parsed successfully (it is scanned, not validated). JSONSerialization keeps one of two
/// equal keys without saying so; safetensors names must be unique.
func duplicateTopLevelKey(_ json: Data) -> String? {
  json.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> String? in
    let b = raw.bindMemory(to: UInt8.self)
    var seen = Set<String>()
    var depth = 0
    var expectKey = false
    var i = 0
    while i < b.count {
      switch b[i] {
      case UInt8(ascii: "\""):
        let start = i + 1
        i += 1
        var escaped = false
        while i < b.count && b[i] != UInt8(ascii: "\"") {
          if b[i] == UInt8(ascii: "\\") {
            escaped = true
            i += 1
          }
          i += 1
        }
        if depth == 1 && expectKey {
          expectKey = false
          let bytes = UnsafeBufferPointer(rebasing: b[start..<min(i, b.count)])
          let key: String
          if escaped {
            // Decode the escapes the way the parser did ("\u0061" is "a").
            var quoted = Data([UInt8(ascii: "\"")])
            quoted.append(contentsOf: bytes)
            quoted.append(UInt8(ascii: "\""))
            key =
              (try? JSONSerialization.jsonObject(with: quoted, options: .fragmentsAllowed)) as? String
              ?? String(decoding: bytes, as: UTF8.self)
          } else {
            key = String(decoding: bytes, as: UTF8.self)
          }
          if !seen.insert(key).inserted { return key }
        }
      case UInt8(ascii: "{"):
        depth += 1
        if depth == 1 { expectKey = true }
      case UInt8(ascii: "["):
        depth += 1
      case UInt8(ascii: "}"), UInt8(ascii: "]"):
        depth -= 1
      case UInt8(ascii: ","):
        if depth == 1 { expectKey = true }
      default:
        break
      }
      i += 1
    }
    return nil
  }
}

/// IEEE 754 binary16 → Float, exactly (every half is a Float): normals, subnormals, ±0, ±∞ and
/// NaN (payload kept in the top mantissa bits).
@inlinable
public func floatFromHalf(_ h: UInt16) -> Float {
  let sign = UInt32(h & 0x8000) << 16
  let exponent = Int((h >> 10) & 0x1F)
  let mantissa = UInt32(h & 0x03FF)
  if exponent == 0x1F {  // ∞ or NaN
    return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
  }
  if exponent == 0 {
    // ±0 or a subnormal: mantissa · 2⁻²⁴, exact in Float.
    let magnitude = Float(mantissa) * 0x1p-24
    return sign == 0 ? magnitude : -magnitude
  }
  return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}

/// bfloat16 → Float, exactly: bfloat16 is the top half of a binary32.
@inlinable
public func floatFromBFloat16(_ b: UInt16) -> Float {
  Float(bitPattern: UInt32(b) << 16)
}

// MARK: - Writer

/// Builds a safetensors file in memory and writes it atomically: F32, F64 and U8 tensors plus an
/// optional `__metadata__` map. The header lists keys in sorted order and is padded with spaces
/// to a multiple of 8 bytes; the data buffer holds the tensors in name order.
public struct SafetensorsWriter: Sendable {
  /// The values of one tensor, in a dtype the writer supports.
  public enum Values: Sendable, Equatable {
    case f32([Float])
    case f64([Double])
    case u8([UInt8])

    var dtype: SafetensorsDType {
      switch self {
      case .f32: return .F32
      case .f64: return .F64
      case .u8: return .U8
      }
    }

    var count: Int {
      switch self {
      case .f32(let v): return v.count
      case .f64(let v): return v.count
      case .u8(let v): return v.count
      }
    }
  }

  /// The `__metadata__` map written in the header (omitted when empty).
  public var metadata: [String: String]
  private var entries: [String: (shape: [Int], values: Values)] = [:]

  /// An empty file with the given metadata.
  public init(metadata: [String: String] = [:]) { self.metadata = metadata }

  /// Adds (or replaces) a tensor. Throws when the value count does not match the shape or the
  /// name is empty or reserved.
  public mutating func add(_ name: String, shape: [Int], _ values: Values) throws(SafetensorsError) {
    guard !name.isEmpty, name != "__metadata__" else {
      throw .invalidTensor(name: name, reason: "the name is empty or reserved")
    }
    guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
      throw .invalidTensor(name: name, reason: "\(values.count) values for shape \(shape)")
    }
    entries[name] = (shape, values)
  }

  /// Adds a matrix as a 2-D tensor: F32 for Float, F64 for Double.
  public mutating func add<T: KernelScalar>(_ name: String, matrix: Matrix<T>) throws(SafetensorsError) {
    let values: Values
    if let m = matrix as? Matrix<Float> {
      values = .f32(m.elements)
    } else if let m = matrix as? Matrix<Double> {
      values = .f64(m.elements)
    } else {
      values = .f64(matrix.elements.map { Double($0) })
    }
    try add(name, shape: [matrix.rows, matrix.columns], values)
  }

  /// The names added so far, sorted.
  public var tensorNames: [String] { entries.keys.sorted() }

  /// The complete file as bytes.
  public func serialized() -> Data {
    let (names, prefix) = Self.prefix(
      entries.map { (name: $0.key, dtype: $0.value.values.dtype, shape: $0.value.shape) }, metadata: metadata)
    var out = Data(capacity: prefix.count + entries.values.reduce(0) { $0 + $1.values.count * $1.values.dtype.size })
    out.append(contentsOf: prefix)
    for name in names {
      switch entries[name]!.values {
      case .f32(let v):
        for x in v {
          var b = x.bitPattern.littleEndian
          withUnsafeBytes(of: &b) { out.append(contentsOf: $0) }
        }
      case .f64(let v):
        for x in v {
          var b = x.bitPattern.littleEndian
          withUnsafeBytes(of: &b) { out.append(contentsOf: $0) }
        }
      case .u8(let v):
        out.append(contentsOf: v)
      }
    }
    return out
  }

  /// The bytes before the data buffer (the 8-byte length and the JSON header, padded with spaces
  /// to a multiple of 8) for tensors laid out in UTF-8 byte order of their names, which is also
  /// returned: the order their data must follow.
  package static func prefix(
    _ tensors: [(name: String, dtype: SafetensorsDType, shape: [Int])], metadata: [String: String]
  ) -> (names: [String], bytes: [UInt8]) {
    let ordered = tensors.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
    var offset = 0
    var keyed: [(String, String)] = []
    for t in ordered {
      let bytes = t.shape.reduce(1, *) * t.dtype.size
      let json =
        "{\"data_offsets\":[\(offset),\(offset + bytes)],\"dtype\":\"\(t.dtype.rawValue)\","
        + "\"shape\":[\(t.shape.map(String.init).joined(separator: ","))]}"
      keyed.append((t.name, json))
      offset += bytes
    }
    if !metadata.isEmpty {
      let body = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
      keyed.append(("__metadata__", "{\(body)}"))
    }
    // Sorted keys for the whole object ("__metadata__" sorts with the others by its bytes).
    keyed.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
    var header = Array("{\(keyed.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ","))}".utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var out: [UInt8] = []
    out.reserveCapacity(8 + header.count)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: header)
    return (ordered.map(\.name), out)
  }

  /// Writes the file to `url` atomically (`AtomicOutput.write`: a temporary file in the same
  /// folder, flushed, then renamed over `url`), so a reader never sees a partial file. Refuses when
  /// `url` is the same file as one of `inputs` (compared by resolved path and by file identity).
  public func write(to url: URL, protecting inputs: [URL] = []) throws(SafetensorsError) {
    for input in inputs where isSameFile(url, input) { throw .wouldOverwriteInput(path: url.path) }
    do { try AtomicOutput.write(serialized(), to: url) } catch {
      throw .writeFailed(path: error.path, reason: error.reason)
    }
  }
}

/// True when `a` and `b` name the same file: equal after resolving `.`, `..` and symbolic links
/// (for a path that does not exist yet, its folder is resolved), or, when both exist, the same
/// device and inode (hard links).
public func isSameFile(_ a: URL, _ b: URL) -> Bool {
  func resolved(_ u: URL) -> String {
    let s = u.standardizedFileURL
    if FileManager.default.fileExists(atPath: s.path) { return s.resolvingSymlinksInPath().path }
    return s.deletingLastPathComponent().resolvingSymlinksInPath().appendingPathComponent(s.lastPathComponent).path
  }
  if resolved(a) == resolved(b) { return true }
  let fm = FileManager.default
  guard let x = try? fm.attributesOfItem(atPath: a.path), let y = try? fm.attributesOfItem(atPath: b.path),
    let dx = x[.systemNumber] as? NSNumber, let dy = y[.systemNumber] as? NSNumber,
    let ix = x[.systemFileNumber] as? NSNumber, let iy = y[.systemFileNumber] as? NSNumber
  else { return false }
  return dx == dy && ix == iy
}

/// A JSON string literal for `s` (quotes, backslashes and control characters escaped).
package func jsonString(_ s: String) -> String {
  var out = "\""
  for u in s.unicodeScalars {
    switch u {
    case "\"": out += "\\\""
    case "\\": out += "\\\\"
    case "\n": out += "\\n"
    case "\r": out += "\\r"
    case "\t": out += "\\t"
    default:
      if u.value < 0x20 {
        let hex = String(u.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      } else {
        out.unicodeScalars.append(u)
      }
    }
  }
  return out + "\""
}
