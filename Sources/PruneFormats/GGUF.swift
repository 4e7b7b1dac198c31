// The GGUF file format (ggml / llama.cpp, version 3; version 2 has the same layout), read without
// dependencies. Everything is little-endian:
//
//     u32 magic "GGUF" · u32 version · u64 tensor_count · u64 kv_count
//     kv_count × (string key · u32 value_type · value)
//     tensor_count × (string name · u32 n_dims · n_dims × u64 ne · u32 ggml_type · u64 offset)
//     padding to `general.alignment` (default 32) · the data section
//
// A string is a u64 byte count and UTF-8 bytes (no terminator). An array value is u32 element type,
// u64 count and the elements. `ne[0]` is the innermost (fastest) dimension, so a PyTorch weight
// [out, in] is stored as ne = [in, out]; `shape` below is `ne` reversed. A tensor's offset counts
// from the start of the data section and is a multiple of the alignment.
//
// The tensor element types and their decoding to Float (F32, F16, BF16, F64 and the quantised
// blocks Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, bit-identical to
// gguf-py and ggml) are written out in GGUFQuants.swift.
//
// llama.cpp's converter permutes the rows of the LLaMA q and k projections so that its RoPE can
// rotate interleaved pairs; `GGUFFile` undoes that (see `LlamaRotaryPermutation`) and renames the
// tensors, so a GGUF and its Hugging Face export give identical tensors under identical names.

import Foundation

// MARK: - Metadata values

/// A GGUF metadata value type, with the numbers the file format uses.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
  case uint8 = 0
  case int8 = 1
  case uint16 = 2
  case int16 = 3
  case uint32 = 4
  case int32 = 5
  case float32 = 6
  case bool = 7
  case string = 8
  case array = 9
  case uint64 = 10
  case int64 = 11
  case float64 = 12

  /// Bytes of one value of a fixed-size type; nil for strings and arrays.
  public var fixedSize: Int? {
    switch self {
    case .uint8, .int8, .bool: return 1
    case .uint16, .int16: return 2
    case .uint32, .int32, .float32: return 4
    case .uint64, .int64, .float64: return 8
    case .string, .array: return nil
    }
  }
}

/// One GGUF metadata value: a number, a boolean, a string or a typed array of values.
public enum GGUFValue: Sendable, Equatable {
  case uint8(UInt8)
  case int8(Int8)
  case uint16(UInt16)
  case int16(Int16)
  case uint32(UInt32)
  case int32(Int32)
  case uint64(UInt64)
  case int64(Int64)
  case float32(Float)
  case float64(Double)
  case bool(Bool)
  case string(String)
  /// An array: the element type written in the file and the elements.
  case array(GGUFValueType, [GGUFValue])

  /// The type tag this value is written with.
  public var type: GGUFValueType {
    switch self {
    case .uint8: return .uint8
    case .int8: return .int8
    case .uint16: return .uint16
    case .int16: return .int16
    case .uint32: return .uint32
    case .int32: return .int32
    case .uint64: return .uint64
    case .int64: return .int64
    case .float32: return .float32
    case .float64: return .float64
    case .bool: return .bool
    case .string: return .string
    case .array: return .array
    }
  }

  /// The value as an Int when it is an integer of any width that fits; nil otherwise.
  public var int: Int? {
    switch self {
    case .uint8(let v): return Int(v)
    case .int8(let v): return Int(v)
    case .uint16(let v): return Int(v)
    case .int16(let v): return Int(v)
    case .uint32(let v): return Int(v)
    case .int32(let v): return Int(v)
    case .uint64(let v): return Int(exactly: v)
    case .int64(let v): return Int(v)
    default: return nil
    }
  }

  /// The value as a Double when it is a float or an integer; nil otherwise.
  public var double: Double? {
    switch self {
    case .float32(let v): return Double(v)
    case .float64(let v): return v
    default: return int.map(Double.init)
    }
  }

  /// The string, when the value is one.
  public var string: String? {
    if case .string(let s) = self { return s }
    return nil
  }

  /// The boolean, when the value is one.
  public var bool: Bool? {
    if case .bool(let b) = self { return b }
    return nil
  }

  /// The elements, when the value is an array.
  public var array: [GGUFValue]? {
    if case .array(_, let a) = self { return a }
    return nil
  }
}

// MARK: - Tensor types

/// A ggml tensor element type, with the numbers GGUF files use. Codes this reader does not know are
/// kept (`name` is then "type N") so a file can still be listed.
public struct GGMLType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public let rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }

  public static let f32 = GGMLType(rawValue: 0)
  public static let f16 = GGMLType(rawValue: 1)
  public static let q4_0 = GGMLType(rawValue: 2)
  public static let q4_1 = GGMLType(rawValue: 3)
  public static let q5_0 = GGMLType(rawValue: 6)
  public static let q5_1 = GGMLType(rawValue: 7)
  public static let q8_0 = GGMLType(rawValue: 8)
  public static let q8_1 = GGMLType(rawValue: 9)
  public static let q2_K = GGMLType(rawValue: 10)
  public static let q3_K = GGMLType(rawValue: 11)
  public static let q4_K = GGMLType(rawValue: 12)
  public static let q5_K = GGMLType(rawValue: 13)
  public static let q6_K = GGMLType(rawValue: 14)
  public static let q8_K = GGMLType(rawValue: 15)
  public static let iq4_NL = GGMLType(rawValue: 20)
  public static let i8 = GGMLType(rawValue: 24)
  public static let i16 = GGMLType(rawValue: 25)
  public static let i32 = GGMLType(rawValue: 26)
  public static let i64 = GGMLType(rawValue: 27)
  public static let f64 = GGMLType(rawValue: 28)
  public static let bf16 = GGMLType(rawValue: 30)

  /// (name, weights per block, bytes per block) of the types whose layout this reader knows.
  private var layout: (name: String, blockSize: Int, blockBytes: Int)? {
    switch rawValue {
    case 0: return ("F32", 1, 4)
    case 1: return ("F16", 1, 2)
    case 2: return ("Q4_0", 32, 18)
    case 3: return ("Q4_1", 32, 20)
    case 6: return ("Q5_0", 32, 22)
    case 7: return ("Q5_1", 32, 24)
    case 8: return ("Q8_0", 32, 34)
    case 9: return ("Q8_1", 32, 36)
    case 10: return ("Q2_K", 256, 84)
    case 11: return ("Q3_K", 256, 110)
    case 12: return ("Q4_K", 256, 144)
    case 13: return ("Q5_K", 256, 176)
    case 14: return ("Q6_K", 256, 210)
    case 15: return ("Q8_K", 256, 292)
    case 20: return ("IQ4_NL", 32, 18)
    case 24: return ("I8", 1, 1)
    case 25: return ("I16", 1, 2)
    case 26: return ("I32", 1, 4)
    case 27: return ("I64", 1, 8)
    case 28: return ("F64", 1, 8)
    case 30: return ("BF16", 1, 2)
    default: return nil
    }
  }

  /// The name llama.cpp uses ("Q4_1"), or "type N" for an unknown code.
  public var name: String { layout?.name ?? "type \(rawValue)" }
  public var description: String { name }
  /// Weights per block (1 for plain types); nil for an unknown code.
  public var blockSize: Int? { layout?.blockSize }
  /// Bytes per block; nil for an unknown code.
  public var blockBytes: Int? { layout?.blockBytes }
  /// True for the types `GGUFFile` converts to Float (`decodable`).
  public var isDecodable: Bool { GGUFDequantize.decodableTypes.contains(self) }
  /// The types `GGUFFile` converts to Float: F32, F16, BF16, F64, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
  /// IQ4_NL and the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (GGUFQuants.swift).
  public static var decodable: [GGMLType] { GGUFDequantize.decodableTypes }
}

// MARK: - Errors

/// Why a GGUF file could not be read or a tensor decoded. Every description is one line naming the
/// file (and key or tensor) and ending with a `Hint:`.
public enum GGUFError: PruneKitError, Equatable {
  /// The file could not be opened or read.
  case unreadable(path: String, reason: String)
  /// The first four bytes are not "GGUF".
  case badMagic(path: String, found: [UInt8])
  /// A version other than 2 or 3.
  case unsupportedVersion(path: String, version: UInt32)
  /// The file ends inside the header, the metadata or the tensor infos.
  case truncated(path: String, offset: Int, reading: String)
  /// A metadata value type code outside 0...12.
  case invalidValueType(path: String, key: String, code: UInt32)
  /// The same metadata key or tensor name twice.
  case duplicate(path: String, name: String)
  /// `general.alignment` is not a positive power of two.
  case invalidAlignment(path: String, value: String)
  /// A tensor whose dimensions, offset or extent cannot be right.
  case invalidTensor(path: String, tensor: String, reason: String)
  /// A tensor whose type this reader cannot convert to Float.
  case unsupportedTensorType(path: String, tensor: String, type: String)
  /// No tensor of that name (GGUF or Hugging Face name).
  case missingTensor(path: String, tensor: String)
  /// A metadata key that is needed is absent.
  case missingMetadata(path: String, key: String)
  /// A metadata value has the wrong type or an impossible value.
  case invalidMetadata(path: String, key: String, reason: String)
  /// Metadata that is read but describes what the forward pass does not run (a RoPE scaling
  /// PruneKit does not implement); `hint` says what is.
  case unsupportedMetadata(path: String, key: String, value: String, hint: String)

  public var message: String {
    switch self {
    case .unreadable(let path, let reason): return "GGUF \(path): cannot read the file (\(reason))"
    case .badMagic(let path, let found):
      let hex = found.map { String($0, radix: 16) }.joined(separator: " ")
      return "GGUF \(path): the file starts with bytes [\(hex)], not \"GGUF\""
    case .unsupportedVersion(let path, let version):
      return "GGUF \(path): format version \(version) is not supported (2 and 3 are)"
    case .truncated(let path, let offset, let reading):
      return "GGUF \(path): the file ends at byte \(offset) while reading \(reading)"
    case .invalidValueType(let path, let key, let code):
      return "GGUF \(path): metadata '\(key)' has value type \(code), which GGUF does not define"
    case .duplicate(let path, let name): return "GGUF \(path): '\(name)' appears twice"
    case .invalidAlignment(let path, let value):
      return "GGUF \(path): general.alignment = \(value) is not a positive power of two"
    case .invalidTensor(let path, let tensor, let reason): return "GGUF \(path): tensor '\(tensor)': \(reason)"
    case .unsupportedTensorType(let path, let tensor, let type):
      let known = GGMLType.decodable.map(\.name).joined(separator: ", ")
      return "GGUF \(path): tensor '\(tensor)' has type \(type), which PruneKit cannot decode (it decodes \(known))"
    case .missingTensor(let path, let tensor): return "GGUF \(path): no tensor '\(tensor)'"
    case .missingMetadata(let path, let key): return "GGUF \(path): metadata '\(key)' is missing"
    case .invalidMetadata(let path, let key, let reason): return "GGUF \(path): metadata '\(key)': \(reason)"
    case .unsupportedMetadata(let path, let key, let value, _):
      return "GGUF \(path): metadata \(key) = \(value) is not supported"
    }
  }

  public var hint: String? {
    switch self {
    case .unreadable(_, let reason):
      return InputFiles.hint(reason: reason).dropLast() + "; scripts/fetch-model.sh fetches the SmolLM2 model."
    case .badMagic: return "this is not a GGUF file (safetensors and PyTorch files need their own readers)."
    case .unsupportedVersion: return "convert the model with a recent llama.cpp, which writes version 3."
    case .truncated, .invalidTensor:
      return "the file is truncated or corrupted; download it again and check its sha256."
    case .invalidValueType: return "the file is corrupted or from a newer GGUF version."
    case .duplicate: return "the file is corrupted or was written by a faulty converter."
    case .invalidAlignment: return "the file is corrupted."
    case .unsupportedTensorType:
      return "use a GGUF whose tensors are all of those types (llama.cpp's Q8_0, Q6_K, Q5_K_M and Q4_K_M files are)"
        + " or a float GGUF."
    case .missingTensor:
      return "tensorNames lists the Hugging Face names; tensorInfos the GGUF names (blk.N.attn_q.weight, ...)."
    case .missingMetadata: return "the file was not written for this architecture, or by an old converter."
    case .invalidMetadata: return "the file is corrupted or not written for this architecture."
    case .unsupportedMetadata(_, _, _, let hint): return hint
    }
  }
}

// MARK: - Tensor infos

/// The description of one tensor in a GGUF file: its GGUF name, dimensions, type and where its
/// bytes are.
public struct GGUFTensorInfo: Sendable, Equatable {
  /// The name in the file (`blk.0.attn_q.weight`).
  public let name: String
  /// The dimensions as stored: `ne[0]` innermost (a linear weight [out, in] is [in, out]).
  public let dimensions: [Int]
  /// The element type.
  public let type: GGMLType
  /// Byte offset from the start of the data section.
  public let offset: Int

  /// The row-major shape, outermost first (`dimensions` reversed), as in PyTorch and safetensors.
  public var shape: [Int] { dimensions.reversed() }
  /// The number of elements.
  public var elementCount: Int { dimensions.reduce(1, *) }
  /// The bytes the tensor occupies, or nil when the type's layout is unknown.
  public var byteCount: Int? {
    guard let bs = type.blockSize, let bb = type.blockBytes else { return nil }
    return elementCount / bs * bb
  }
}

// MARK: - The file

/// A GGUF model file: its metadata and tensor infos, read on open, and its tensors, each read from
/// the file and decoded when asked for (no mapping of the file is kept). As a `TensorSource` it
/// presents the tensors under Hugging Face names and layout (LLaMA q/k rows un-permuted), converted
/// to Float.
public struct GGUFFile: TensorSource {
  /// The path the file was read from (or a label for in-memory bytes), for messages.
  public let path: String
  /// The format version (2 or 3).
  public let version: UInt32
  /// Every metadata key and value.
  public let metadata: [String: GGUFValue]
  /// The metadata keys in file order.
  public let metadataKeys: [String]
  /// The tensor infos in file order, with GGUF names.
  public let tensorInfos: [GGUFTensorInfo]
  /// The alignment of the data section and of every tensor (`general.alignment`, default 32).
  public let alignment: Int
  /// Byte offset of the data section in the file.
  public let dataOffset: Int
  /// `general.architecture` ("llama"), when present.
  public var architecture: String? { metadata["general.architecture"]?.string }
  /// True when the q/k projection rows are un-permuted on reading (LLaMA-family architectures
  /// whose llama.cpp converter permutes them: llama, mistral).
  public let unpermutesQueryKey: Bool

  /// The file's bytes, read by range when a tensor is decoded.
  private let source: ByteSource
  private let infoIndex: [String: Int]
  /// Hugging Face name → index in `tensorInfos`.
  private let hfIndex: [String: Int]

  /// The architectures whose q/k rows llama.cpp's converter permutes.
  public static let permutedArchitectures: Set<String> = ["llama", "mistral"]

  /// Opens the file at `url` and parses its header, metadata and tensor infos (the tensors' bytes
  /// are read when decoded).
  public init(contentsOf url: URL) throws {
    let source: ByteSource
    do { source = try ByteSource(contentsOf: url) } catch {
      throw GGUFError.unreadable(path: url.path, reason: error.reason)
    }
    try self.init(source: source)
  }

  /// Parses GGUF bytes held in memory; `path` only labels messages.
  public init(data: Data, path: String = "<memory>") throws {
    try self.init(source: ByteSource(data: data, name: path))
  }

  /// The first bytes of a file read to parse its header (tried again with 4 times as many while
  /// the metadata and tensor infos reach further; a tokenizer's vocabulary takes a few MB).
  static let headerReadBytes = 1 << 20

  /// Parses the header, metadata and tensor infos of the file behind `source`; every tensor's extent
  /// is checked against the file's size, no tensor's bytes are read.
  public init(source: ByteSource) throws {
    self.source = source
    let path = source.path
    self.path = path
    var prefix = min(source.size, Self.headerReadBytes)
    var header: Parsed? = nil
    while header == nil {
      do {
        header = try Self.withBytes(source, 0..<prefix) { raw in
          var reader = GGUFReader(buffer: raw, fileSize: source.size, path: path)
          return try reader.parse()
        }
      } catch is GGUFReader.NeedsMoreBytes {
        prefix = min(source.size, prefix * 4)
      }
    }
    let parsed = header!
    version = parsed.version
    metadata = parsed.metadata
    metadataKeys = parsed.keys
    tensorInfos = parsed.tensors
    alignment = parsed.alignment
    dataOffset = parsed.dataOffset
    var index: [String: Int] = [:]
    for (i, t) in parsed.tensors.enumerated() { index[t.name] = i }
    infoIndex = index
    let arch = parsed.metadata["general.architecture"]?.string ?? ""
    unpermutesQueryKey = Self.permutedArchitectures.contains(arch)
    var hf: [String: Int] = [:]
    for (i, t) in parsed.tensors.enumerated() {
      let name = Self.huggingFaceName(for: t.name)
      if hf[name] != nil { throw GGUFError.duplicate(path: path, name: name) }
      hf[name] = i
    }
    hfIndex = hf
  }

  // MARK: Metadata access

  /// The integer at `key`; throws when it is missing or not an integer.
  public func int(_ key: String) throws -> Int {
    guard let v = metadata[key] else { throw GGUFError.missingMetadata(path: path, key: key) }
    guard let i = v.int else {
      throw GGUFError.invalidMetadata(path: path, key: key, reason: "expected an integer, found \(v.type)")
    }
    return i
  }

  /// The integer at `key`, or nil when the key is absent; throws when it is not an integer.
  public func optionalInt(_ key: String) throws -> Int? {
    guard metadata[key] != nil else { return nil }
    return try int(key)
  }

  /// The number at `key` (float or integer); throws when it is missing or not a number.
  public func double(_ key: String) throws -> Double {
    guard let v = metadata[key] else { throw GGUFError.missingMetadata(path: path, key: key) }
    guard let d = v.double else {
      throw GGUFError.invalidMetadata(path: path, key: key, reason: "expected a number, found \(v.type)")
    }
    return d
  }

  /// The string at `key`; throws when it is missing or not a string.
  public func string(_ key: String) throws -> String {
    guard let v = metadata[key] else { throw GGUFError.missingMetadata(path: path, key: key) }
    guard let s = v.string else {
      throw GGUFError.invalidMetadata(path: path, key: key, reason: "expected a string, found \(v.type)")
    }
    return s
  }

  /// The array at `key`; throws when it is missing or not an array.
  public func array(_ key: String) throws -> [GGUFValue] {
    guard let v = metadata[key] else { throw GGUFError.missingMetadata(path: path, key: key) }
    guard let a = v.array else {
      throw GGUFError.invalidMetadata(path: path, key: key, reason: "expected an array, found \(v.type)")
    }
    return a
  }

  // MARK: Names

  /// The Hugging Face name of a GGUF tensor name (`blk.3.ffn_up.weight` →
  /// `model.layers.3.mlp.up_proj.weight`, `token_embd.weight` → `model.embed_tokens.weight`); names
  /// outside the LLaMA map are returned unchanged.
  public static func huggingFaceName(for ggufName: String) -> String {
    if let top = topLevelNames[ggufName] { return top }
    let parts = ggufName.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1],
      let module = blockNames[String(parts[2])], parts[3] == "weight" || parts[3] == "bias"
    else { return ggufName }
    return "model.layers.\(layer).\(module).\(parts[3])"
  }

  private static let topLevelNames: [String: String] = [
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output_norm.bias": "model.norm.bias",
    "output.weight": "lm_head.weight",
  ]

  private static let blockNames: [String: String] = [
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
  ]

  /// The GGUF tensor info behind a GGUF name.
  public func tensorInfo(named ggufName: String) -> GGUFTensorInfo? {
    infoIndex[ggufName].map { tensorInfos[$0] }
  }

  // MARK: TensorSource

  /// Every tensor under its Hugging Face name, sorted.
  public var tensorNames: [String] { hfIndex.keys.sorted() }

  /// The row-major shape of a tensor named the Hugging Face way.
  public func shape(of name: String) -> [Int]? {
    hfIndex[name].map { tensorInfos[$0].shape }
  }

  /// F32, F16 and BF16 as themselves, quantised and other types as `.quantized`.
  public func storedType(of name: String) -> StoredFloatType? {
    guard let i = hfIndex[name] else { return nil }
    switch tensorInfos[i].type {
    case .f32: return .f32
    case .f16: return .f16
    case .bf16: return .bf16
    default: return .quantized
    }
  }

  /// The tensor named the Hugging Face way, converted to Float, in Hugging Face layout: the rows of
  /// the q and k projections (weights and biases) un-permuted for LLaMA-family files.
  public func floatTensor(_ name: String) throws -> FloatTensor {
    guard let i = hfIndex[name] else { throw GGUFError.missingTensor(path: path, tensor: name) }
    let info = tensorInfos[i]
    let raw = try decode(info)
    guard unpermutesQueryKey, let heads = try headsToUnpermute(info.name) else { return raw }
    let rows = info.shape[0]
    let columns = rows == 0 ? 0 : raw.values.count / rows
    guard heads > 0 else {
      throw GGUFError.invalidMetadata(
        path: path, key: "\(architecture ?? "llama").attention.head_count", reason: "\(heads) heads")
    }
    if rows == 0 { return raw }
    // rows % (2 · heads) == 0, written so that a huge head count cannot overflow.
    guard rows % heads == 0, (rows / heads) % 2 == 0 else {
      throw GGUFError.invalidTensor(
        path: path, tensor: info.name,
        reason: "\(rows) rows cannot be split into \(heads) heads of an even size for the RoPE un-permutation")
    }
    let values = LlamaRotaryPermutation.unpermuteRows(raw.values, rows: rows, columns: columns, heads: heads)
    return FloatTensor(shape: raw.shape, values: values)
  }

  /// Rows `rows` of a tensor named the Hugging Face way (`TensorSource.floatRows`): read from the
  /// file alone when `readsRowRanges(of:)` holds, else sliced out of the whole tensor.
  public func floatRows(_ name: String, rows: Range<Int>) throws -> FloatTensor {
    guard let i = hfIndex[name] else { throw GGUFError.missingTensor(path: path, tensor: name) }
    let info = tensorInfos[i]
    let width = try elementsPerRow(rows, of: name, shape: info.shape)
    guard readsRowRanges(of: name), let blockSize = info.type.blockSize, let blockBytes = info.type.blockBytes else {
      return try floatTensor(name).rows(rows, name: name)
    }
    let rowBytes = width / blockSize * blockBytes
    let count = rows.count * width
    let start = dataOffset + info.offset + rows.lowerBound * rowBytes
    let end = start + rows.count * rowBytes
    // Checked when the file was opened; repeated here because it guards raw memory reads.
    guard start >= 0, end <= source.size else {
      throw GGUFError.invalidTensor(path: path, tensor: info.name, reason: "data beyond the end of the file")
    }
    let shape = [rows.count] + info.shape.dropFirst()
    if count == 0 { return FloatTensor(shape: shape, values: []) }
    let type = info.type
    let values = try Self.withBytes(source, start..<end) { raw in
      [Float](unsafeUninitializedCapacity: count) { out, initialized in
        GGUFDequantize.run(type, from: raw.baseAddress!, count: count, into: out.baseAddress!)
        initialized = count
      }
    }
    return FloatTensor(shape: shape, values: values)
  }

  /// True when `floatRows` reads only the rows' bytes: a decodable tensor of rank 1 or more whose
  /// row length is a whole number of its type's blocks (every tensor of a file this reader opens:
  /// it refuses rows that split a block), and which is not un-permuted on reading (LLaMA q and k).
  public func readsRowRanges(of name: String) -> Bool {
    guard let i = hfIndex[name] else { return false }
    let info = tensorInfos[i]
    let shape = info.shape
    guard info.type.isDecodable, let blockSize = info.type.blockSize, info.type.blockBytes != nil, !shape.isEmpty,
      shape.dropFirst().reduce(1, *) % blockSize == 0
    else { return false }
    if unpermutesQueryKey {
      do { if try headsToUnpermute(info.name) != nil { return false } } catch { return false }
    }
    return true
  }

  /// The tensor named the GGUF way, converted to Float exactly as stored (no un-permutation); the
  /// shape is `dimensions` reversed.
  public func rawFloatTensor(_ ggufName: String) throws -> FloatTensor {
    guard let i = infoIndex[ggufName] else { throw GGUFError.missingTensor(path: path, tensor: ggufName) }
    return try decode(tensorInfos[i])
  }

  /// The head count whose RoPE permutation a q or k tensor carries, or nil for other tensors.
  private func headsToUnpermute(_ ggufName: String) throws -> Int? {
    let parts = ggufName.split(separator: ".")
    guard parts.count == 4, parts[0] == "blk" else { return nil }
    let arch = architecture ?? "llama"
    switch parts[2] {
    case "attn_q": return try int("\(arch).attention.head_count")
    case "attn_k":
      return try optionalInt("\(arch).attention.head_count_kv") ?? int("\(arch).attention.head_count")
    default: return nil
    }
  }

  /// Dequantises a tensor to Float.
  private func decode(_ info: GGUFTensorInfo) throws -> FloatTensor {
    guard info.type.isDecodable, let byteCount = info.byteCount else {
      throw GGUFError.unsupportedTensorType(path: path, tensor: info.name, type: info.type.name)
    }
    let count = info.elementCount
    let start = dataOffset + info.offset
    // Checked when the file was opened; repeated here because it guards raw memory reads.
    guard start >= 0, start + byteCount <= source.size else {
      throw GGUFError.invalidTensor(path: path, tensor: info.name, reason: "data beyond the end of the file")
    }
    let type = info.type
    if count == 0 { return FloatTensor(shape: info.shape, values: []) }
    let values = try Self.withBytes(source, start..<(start + byteCount)) { raw in
      [Float](unsafeUninitializedCapacity: count) { out, initialized in
        GGUFDequantize.run(type, from: raw.baseAddress!, count: count, into: out.baseAddress!)
        initialized = count
      }
    }
    return FloatTensor(shape: info.shape, values: values)
  }

  /// `body` on the bytes of `range` of the file; a failed read is `GGUFError.unreadable`.
  private static func withBytes<R>(
    _ source: ByteSource, _ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R
  ) throws -> R {
    do { return try source.withBytes(range, body) } catch let error as InputFileError {
      throw GGUFError.unreadable(path: source.path, reason: error.reason)
    }
  }

  // MARK: Hyper-parameters

  /// The LLaMA-family hyper-parameters in the metadata (`llama.embedding_length`,
  /// `llama.block_count`, `llama.attention.head_count`, ...) as a Hugging Face `LlamaConfig`.
  /// The vocabulary size comes from `<arch>.vocab_size`, else the token list, else the embedding;
  /// the embeddings are tied when there is no `output.weight`.
  public func llamaConfig() throws -> LlamaConfig {
    let arch = try string("general.architecture")
    guard ["llama", "mistral", "qwen2"].contains(arch) else {
      throw GGUFError.invalidMetadata(
        path: path, key: "general.architecture",
        reason: "'\(arch)' is not a LLaMA-family architecture (llama, mistral, qwen2)")
    }
    let hidden = try int("\(arch).embedding_length")
    let heads = try int("\(arch).attention.head_count")
    let kvHeads = try optionalInt("\(arch).attention.head_count_kv") ?? heads
    let headDim: Int
    if metadata["\(arch).attention.key_length"] != nil {
      headDim = try int("\(arch).attention.key_length")
    } else {
      guard heads > 0, hidden % heads == 0 else {
        throw GGUFError.invalidMetadata(
          path: path, key: "\(arch).attention.head_count",
          reason: "\(heads) heads do not divide the embedding length \(hidden)")
      }
      headDim = hidden / heads
    }
    let vocab: Int
    if metadata["\(arch).vocab_size"] != nil {
      vocab = try int("\(arch).vocab_size")
    } else if let tokens = metadata["tokenizer.ggml.tokens"]?.array {
      vocab = tokens.count
    } else if let embed = tensorInfo(named: "token_embd.weight"), embed.dimensions.count == 2 {
      vocab = embed.dimensions[1]
    } else {
      throw GGUFError.missingMetadata(path: path, key: "\(arch).vocab_size")
    }
    var ropeTheta = 10_000.0
    if metadata["\(arch).rope.freq_base"] != nil { ropeTheta = try double("\(arch).rope.freq_base") }
    let contextLength = try int("\(arch).context_length")
    let ropeScaling = try ggufRopeScaling(arch: arch, path: path)
    // llama.cpp runs LLaMA-family GGUFs with full causal attention; a window key (written for
    // other architectures) would be ignored there and here, so it is refused rather than dropped.
    if metadata["\(arch).attention.sliding_window"] != nil {
      throw GGUFError.unsupportedMetadata(
        path: path, key: "\(arch).attention.sliding_window", value: "present",
        hint: "PruneKit runs sliding windows from a Hugging Face config.json (mistral, qwen2); use that checkpoint.")
    }
    let eos = try optionalInt("tokenizer.ggml.eos_token_id").map { [$0] }
    let bos = try optionalInt("tokenizer.ggml.bos_token_id")
    let config = LlamaConfig(
      modelType: arch,
      hiddenSize: hidden,
      intermediateSize: try int("\(arch).feed_forward_length"),
      numHiddenLayers: try int("\(arch).block_count"),
      numAttentionHeads: heads,
      numKeyValueHeads: kvHeads,
      headDim: headDim,
      rmsNormEps: try double("\(arch).attention.layer_norm_rms_epsilon"),
      ropeTheta: ropeTheta,
      ropeScaling: ropeScaling,
      maxPositionEmbeddings: contextLength,
      vocabSize: vocab,
      tieWordEmbeddings: tensorInfo(named: "output.weight") == nil,
      attentionBias: tensorInfo(named: "blk.0.attn_q.bias") != nil,
      bosTokenId: bos,
      eosTokenId: eos)
    do {
      try config.validate(source: path)
    } catch {
      // The config key (e.g. num_key_value_heads) stands for the GGUF key it was read from.
      guard case .invalidValue(_, let key, let reason) = error else { throw error }
      throw GGUFError.invalidMetadata(path: path, key: "\(arch) hyper-parameter \(key)", reason: reason)
    }
    return config
  }

  /// RoPE scaling as llama.cpp's converter writes it: `<arch>.rope.scaling.type` ("none",
  /// "linear" or "yarn") with `.rope.scaling.factor` and `.rope.scaling.original_context_length`
  /// (yarn; absent, the context length stands in), or the older `<arch>.rope.scale_linear`.
  /// llama3's scaling is not in the metadata but baked into a `rope_freqs.weight` tensor of
  /// per-frequency divisors, and YaRN's llama.cpp-specific keys (attn_factor, beta_fast, ...)
  /// have no exact Hugging Face counterpart here: both are refused rather than guessed.
  private func ggufRopeScaling(arch: String, path: String) throws -> RopeScaling? {
    let prefix = "\(arch).rope.scaling."
    if tensorInfo(named: "rope_freqs.weight") != nil {
      throw GGUFError.unsupportedMetadata(
        path: path, key: "rope_freqs.weight", value: "a tensor of per-frequency RoPE factors (llama3 scaling)",
        hint: "convert the Hugging Face checkpoint instead: PruneKit runs llama3 scaling from config.json.")
    }
    let known: Set = [prefix + "type", prefix + "factor", prefix + "original_context_length", prefix + "finetuned"]
    if let extra = metadata.keys.filter({ $0.hasPrefix(prefix) && !known.contains($0) }).sorted().first {
      throw GGUFError.unsupportedMetadata(
        path: path, key: extra, value: "present",
        hint: "PruneKit maps only rope.scaling.type, .factor and .original_context_length; convert the Hugging Face"
          + " checkpoint instead.")
    }
    var type = metadata[prefix + "type"] != nil ? try string(prefix + "type") : "none"
    var factor = metadata[prefix + "factor"] != nil ? try double(prefix + "factor") : nil
    if type == "none", metadata["\(arch).rope.scale_linear"] != nil {
      type = "linear"
      factor = try double("\(arch).rope.scale_linear")
    }
    switch type {
    case "none": return nil
    case "linear", "yarn":
      guard let factor else { throw GGUFError.missingMetadata(path: path, key: prefix + "factor") }
      if type == "linear" { return factor == 1 ? nil : RopeScaling(ropeType: "linear", factor: factor) }
      return RopeScaling(
        ropeType: "yarn", factor: factor,
        originalMaxPositionEmbeddings: try optionalInt(prefix + "original_context_length"))
    default:
      throw GGUFError.unsupportedMetadata(
        path: path, key: prefix + "type", value: type,
        hint: "PruneKit runs GGUF RoPE scaling types none, linear and yarn.")
    }
  }
}

// MARK: - Parsing

private struct Parsed {
  var version: UInt32 = 0
  var metadata: [String: GGUFValue] = [:]
  var keys: [String] = []
  var tensors: [GGUFTensorInfo] = []
  var alignment = 32
  var dataOffset = 0
}

/// A bounds-checked little-endian cursor over the first bytes of the file (`buffer`, a prefix of a
/// file of `fileSize` bytes). Every read that would pass the end of the file throws `truncated`;
/// one that passes the end of the prefix only throws `NeedsMoreBytes` (the caller reads a longer
/// prefix and parses again). Counts read from the file are checked against the bytes left in the
/// file before anything is allocated for them, so a corrupted count cannot exhaust memory.
private struct GGUFReader {
  /// The header reaches past the prefix read so far.
  struct NeedsMoreBytes: Error {}

  let buffer: UnsafeRawBufferPointer
  let fileSize: Int
  let path: String
  var offset = 0

  init(buffer: UnsafeRawBufferPointer, fileSize: Int, path: String) {
    self.buffer = buffer
    self.fileSize = fileSize
    self.path = path
  }

  var remaining: Int { fileSize - offset }

  mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
    guard n >= 0, n <= remaining else { throw GGUFError.truncated(path: path, offset: fileSize, reading: what()) }
    if n > buffer.count - offset { throw NeedsMoreBytes() }
  }

  mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
    try need(MemoryLayout<T>.size, what())
    let v = T(littleEndian: buffer.baseAddress!.loadUnaligned(fromByteOffset: offset, as: T.self))
    offset += MemoryLayout<T>.size
    return v
  }

  mutating func readCount(_ what: @autoclosure () -> String) throws -> Int {
    let n = try read(UInt64.self, what())
    guard let c = Int(exactly: n), c <= fileSize else {
      throw GGUFError.truncated(path: path, offset: fileSize, reading: "\(what()) (count \(n))")
    }
    return c
  }

  mutating func readString(_ what: @autoclosure () -> String) throws -> String {
    let n = try readCount("the length of \(what())")
    try need(n, what())
    let s = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + n)]), as: UTF8.self)
    offset += n
    return s
  }

  /// How deeply arrays may nest. GGUF sets no limit (llama.cpp refuses any nesting); each level
  /// recurses once, so a limit keeps a damaged file from exhausting the stack.
  static let maximumArrayDepth = 8

  mutating func readValue(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
    let what = "the value of '\(key)'"
    switch type {
    case .uint8: return .uint8(try read(UInt8.self, what))
    case .int8: return .int8(try read(Int8.self, what))
    case .uint16: return .uint16(try read(UInt16.self, what))
    case .int16: return .int16(try read(Int16.self, what))
    case .uint32: return .uint32(try read(UInt32.self, what))
    case .int32: return .int32(try read(Int32.self, what))
    case .uint64: return .uint64(try read(UInt64.self, what))
    case .int64: return .int64(try read(Int64.self, what))
    case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what)))
    case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what)))
    case .bool:
      let b = try read(UInt8.self, what)
      guard b <= 1 else {
        throw GGUFError.invalidMetadata(path: path, key: key, reason: "boolean byte \(b) is neither 0 nor 1")
      }
      return .bool(b == 1)
    case .string: return .string(try readString(what))
    case .array:
      let code = try read(UInt32.self, "the element type of '\(key)'")
      guard let elementType = GGUFValueType(rawValue: code) else {
        throw GGUFError.invalidValueType(path: path, key: key, code: code)
      }
      if elementType == .array && depth + 1 >= Self.maximumArrayDepth {
        throw GGUFError.invalidMetadata(
          path: path, key: key,
          reason: "arrays nest more than \(Self.maximumArrayDepth) levels deep (at byte \(offset))")
      }
      let count = try readCount("the length of '\(key)'")
      // Each element takes at least its fixed size (8 bytes for a string's length, 12 for a
      // nested array's type and count).
      let minimum = elementType.fixedSize ?? (elementType == .string ? 8 : 12)
      guard count <= remaining / minimum else {
        throw GGUFError.truncated(path: path, offset: fileSize, reading: "the \(count) elements of '\(key)'")
      }
      var elements: [GGUFValue] = []
      elements.reserveCapacity(count)
      for _ in 0..<count { elements.append(try readValue(elementType, key: key, depth: depth + 1)) }
      return .array(elementType, elements)
    }
  }

  mutating func parse() throws -> Parsed {
    var p = Parsed()
    let magic = try read(UInt32.self, "the magic number")
    guard magic == 0x4655_4747 else {  // "GGUF" read as little-endian u32
      throw GGUFError.badMagic(path: path, found: Array(buffer.prefix(4)))
    }
    p.version = try read(UInt32.self, "the version")
    guard p.version == 2 || p.version == 3 else {
      throw GGUFError.unsupportedVersion(path: path, version: p.version)
    }
    let tensorCount = try readCount("the tensor count")
    let kvCount = try readCount("the metadata count")
    // A key-value pair takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8.
    guard kvCount <= remaining / 13 else {
      throw GGUFError.truncated(path: path, offset: fileSize, reading: "\(kvCount) metadata entries")
    }
    for k in 0..<kvCount {
      let key = try readString("metadata key #\(k)")
      let code = try read(UInt32.self, "the value type of '\(key)'")
      guard let type = GGUFValueType(rawValue: code) else {
        throw GGUFError.invalidValueType(path: path, key: key, code: code)
      }
      let value = try readValue(type, key: key)
      guard p.metadata.updateValue(value, forKey: key) == nil else { throw GGUFError.duplicate(path: path, name: key) }
      p.keys.append(key)
    }
    if let a = p.metadata["general.alignment"] {
      guard let v = a.int, v > 0, v.nonzeroBitCount == 1 else {
        throw GGUFError.invalidAlignment(path: path, value: "\(a)")
      }
      p.alignment = v
    }
    guard tensorCount <= remaining / 24 else {
      throw GGUFError.truncated(path: path, offset: fileSize, reading: "\(tensorCount) tensor infos")
    }
    var names = Set<String>()
    for t in 0..<tensorCount {
      let name = try readString("the name of tensor #\(t)")
      let nDims = try read(UInt32.self, "the dimension count of '\(name)'")
      guard (1...4).contains(nDims) else {
        throw GGUFError.invalidTensor(path: path, tensor: name, reason: "\(nDims) dimensions (ggml allows 1 to 4)")
      }
      var dims: [Int] = []
      // The product of the non-zero dimensions is bounded, not only the element count: a zero
      // dimension makes the count 0, and the shape (`dimensions` reversed) multiplied in the other
      // order must not overflow either ([0, 2⁴⁰, 2⁴⁰] is refused, not read as an empty tensor).
      var nonZeroProduct = 1
      for _ in 0..<nDims {
        let d = try read(UInt64.self, "the dimensions of '\(name)'")
        guard let di = Int(exactly: d), di >= 0 else {
          throw GGUFError.invalidTensor(path: path, tensor: name, reason: "dimension \(d) is out of range")
        }
        let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: max(di, 1))
        guard !overflow, product <= Int(Int32.max) * 64 else {
          throw GGUFError.invalidTensor(path: path, tensor: name, reason: "dimensions \(dims + [di]) are too large")
        }
        nonZeroProduct = product
        dims.append(di)
      }
      let type = GGMLType(rawValue: try read(UInt32.self, "the type of '\(name)'"))
      let offset64 = try read(UInt64.self, "the offset of '\(name)'")
      guard let offset = Int(exactly: offset64), offset <= fileSize else {
        throw GGUFError.invalidTensor(path: path, tensor: name, reason: "offset \(offset64) is beyond the file")
      }
      guard names.insert(name).inserted else { throw GGUFError.duplicate(path: path, name: name) }
      if let bs = type.blockSize, dims[0] % bs != 0 {
        throw GGUFError.invalidTensor(
          path: path, tensor: name,
          reason: "the row length \(dims[0]) is not a multiple of the \(type.name) block size \(bs)")
      }
      guard offset % p.alignment == 0 else {
        throw GGUFError.invalidTensor(
          path: path, tensor: name, reason: "offset \(offset) is not a multiple of the alignment \(p.alignment)")
      }
      p.tensors.append(GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: offset))
    }
    let padded = (offset + p.alignment - 1) / p.alignment * p.alignment
    p.dataOffset = padded
    // Every tensor must lie inside the file and no two may share bytes.
    // Sorted by offset, then file order, so the message is the same on every platform.
    let extents = p.tensors.enumerated()
      .compactMap { i, t in t.byteCount.map { (name: t.name, start: t.offset, count: $0, index: i) } }
      .sorted { ($0.start, $0.index) < ($1.start, $1.index) }
    var previous: (name: String, end: Int)? = nil
    for (name, start, count, _) in extents {
      guard padded + start + count <= fileSize else {
        throw GGUFError.invalidTensor(
          path: path, tensor: name,
          reason: "its \(count) bytes at data offset \(start) end past the end of the file (\(fileSize) bytes)")
      }
      if let prev = previous, start < prev.end, count > 0 {
        throw GGUFError.invalidTensor(path: path, tensor: name, reason: "its bytes overlap those of '\(prev.name)'")
      }
      if count > 0 { previous = (name, start + count) }
    }
    return p
  }
}

// MARK: - The LLaMA RoPE row permutation

/// The row permutation llama.cpp's converter applies to LLaMA q and k projections, and its inverse.
///
/// Hugging Face LLaMA rotates the pairs (i, i + d/2) of each head of size d ("rotate half");
/// llama.cpp rotates adjacent pairs (2p, 2p + 1). Its converter therefore reorders the rows of each
/// head: with a head's rows indexed as (s, p), s ∈ {0, 1} the half and p ∈ 0..<d/2 the position in
/// it, HF row h·d + s·d/2 + p is stored as GGUF row h·d + 2p + s. In numpy terms:
/// `permute(w) = w.reshape(heads, 2, d/2, in).swapaxes(1, 2).reshape(out, in)` and
/// `unpermute(w) = w.reshape(heads, d/2, 2, in).swapaxes(1, 2).reshape(out, in)`.
public enum LlamaRotaryPermutation {
  /// The GGUF row that holds Hugging Face row `row`, for `rows` rows in `heads` heads.
  public static func ggufRow(ofHuggingFaceRow row: Int, rows: Int, heads: Int) -> Int {
    let d = rows / heads
    let half = d / 2
    let h = row / d
    let r = row % d
    let s = r / half
    let p = r % half
    return h * d + 2 * p + s
  }

  /// HF layout → GGUF layout (what llama.cpp's converter does). `values` is row-major
  /// [rows × columns]; `rows` must be a multiple of 2·heads.
  public static func permuteRows(_ values: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
    reorder(values, rows: rows, columns: columns, heads: heads, toGGUF: true)
  }

  /// GGUF layout → HF layout (the inverse of `permuteRows`).
  public static func unpermuteRows(_ values: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
    reorder(values, rows: rows, columns: columns, heads: heads, toGGUF: false)
  }

  private static func reorder(_ values: [Float], rows: Int, columns: Int, heads: Int, toGGUF: Bool) -> [Float] {
    precondition(heads > 0 && rows % (2 * heads) == 0, "LlamaRotaryPermutation: \(rows) rows, \(heads) heads")
    precondition(
      values.count == rows * columns, "LlamaRotaryPermutation: \(values.count) values for \(rows)×\(columns)")
    var out = [Float](repeating: 0, count: values.count)
    values.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for hfRow in 0..<rows {
          let g = ggufRow(ofHuggingFaceRow: hfRow, rows: rows, heads: heads)
          let (from, to) = toGGUF ? (hfRow, g) : (g, hfRow)
          for c in 0..<columns { dst[to * columns + c] = src[from * columns + c] }
        }
      }
    }
    return out
  }
}
