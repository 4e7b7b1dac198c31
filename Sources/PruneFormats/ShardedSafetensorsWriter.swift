// Sharded safetensors output, written tensor by tensor: the layout of every shard (which tensors,
// their dtype, shape and offsets) is computed from names, dtypes and shapes alone, before any
// value exists, so each shard's header is written when the shard is created and every tensor can
// then be written at its precomputed offset (pwrite), in any order — a block at a time while a
// model is pruned, or a chunk of rows at a time while a synthetic model is generated — with no
// tensor held in memory beyond the chunk being written.
//
// The layout follows the Hugging Face convention (transformers' `save_pretrained` with
// `max_shard_size`):
//
//   - tensors are taken in the order given (model order: embedding, block 0, …, block L−1, the
//     rest); a tensor goes into the current shard unless that would take the shard past
//     `maxShardBytes`, then a new shard begins; a tensor larger than the limit gets a shard alone;
//   - n shards are named model-00001-of-0000n.safetensors … ; one shard is model.safetensors;
//   - with more than one shard, model.safetensors.index.json maps every tensor to its shard file:
//     {"metadata": {"total_size": bytes of every tensor}, "weight_map": {name: file}}, keys sorted,
//     two-space indent, as transformers writes it;
//   - inside a shard the header lists the tensors sorted by name and their data follows in that
//     order (`SafetensorsWriter.prefix`), so a single F32 shard is byte for byte the file
//     `SafetensorsWriter` writes for the same tensors and metadata.
//
// Values arrive as Float and are stored as F32, BF16 or F16, rounded to nearest with ties to even
// (`bfloat16Bits(_:)`, `halfBits(_:)`): exact zeros stay exact zeros of the same sign, values
// beyond the format's range become ±∞, NaN stays NaN — PyTorch's `tensor.to(dtype)` on the CPU.

import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// MARK: - Rounding Float to 16 bits

/// Float → bfloat16 bits, rounded to nearest, ties to even (the top 16 bits of the binary32, plus
/// one unit in the last place when the dropped 16 bits exceed half of it, or equal half and the
/// kept part is odd). ±0 stay ±0; finite values above the largest bfloat16 (3.3895e38) round to
/// ±∞ (the carry runs into the exponent); every NaN becomes the quiet NaN 0x7FC0, as PyTorch's
/// `c10::BFloat16` writes it.
@inlinable
public func bfloat16Bits(_ x: Float) -> UInt16 {
  if x.isNaN { return 0x7FC0 }
  let bits = x.bitPattern
  let bias = 0x7FFF + ((bits >> 16) & 1)
  return UInt16(truncatingIfNeeded: (bits &+ bias) >> 16)
}

/// Float → IEEE 754 binary16 bits, rounded to nearest, ties to even, including the subnormal
/// range (multiples of 2⁻²⁴ below 2⁻¹⁴): ±0 stay ±0, magnitudes at or below 2⁻²⁵ become ±0 (2⁻²⁵
/// itself is a tie that goes to the even 0), magnitudes from 65520 up become ±∞, NaN becomes the
/// quiet NaN 0x7E00 with its sign (the FP16 library PyTorch's `c10::Half` uses).
@inlinable
public func halfBits(_ x: Float) -> UInt16 {
  let bits = x.bitPattern
  let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
  let magnitude = bits & 0x7FFF_FFFF
  if magnitude > 0x7F80_0000 { return sign | 0x7E00 }  // NaN
  if magnitude == 0x7F80_0000 { return sign | 0x7C00 }  // ±∞
  // e: the binary16 biased exponent the value would have.
  let e = Int(magnitude >> 23) - 127 + 15
  if e >= 31 { return sign | 0x7C00 }  // beyond 65504 even before rounding
  if e <= 0 {
    // Subnormal or zero: the 24-bit significand (hidden bit included) counts units of
    // 2^(E−23); in units of 2⁻²⁴ (the smallest subnormal) that is significand × 2^(e−14).
    if e < -10 { return sign }  // below 2⁻²⁵: rounds to zero
    let significand = (magnitude & 0x7F_FFFF) | 0x80_0000
    let shift = UInt32(14 - e)
    var q = significand >> shift
    let rest = significand & ((1 << shift) - 1)
    let half = UInt32(1) << (shift - 1)
    if rest > half || (rest == half && q & 1 == 1) { q += 1 }
    return sign | UInt16(q)  // q = 0x400 is the smallest normal, correctly encoded
  }
  let mantissa = magnitude & 0x7F_FFFF
  var q = (UInt32(e) << 10) | (mantissa >> 13)
  let rest = mantissa & 0x1FFF
  if rest > 0x1000 || (rest == 0x1000 && q & 1 == 1) { q += 1 }  // a carry may reach ∞ (0x7C00)
  return sign | UInt16(q)
}

// MARK: - Sizes

/// A byte count as people write it: `5GB`, `500MB`, `4GiB`, `1.5GB`, `123` (bytes). Decimal units
/// KB, MB, GB, TB are powers of 1000 and binary units KiB, MiB, GiB, TiB powers of 1024 (as
/// transformers reads `max_shard_size`); a unit's case does not matter, a `B` alone means bytes.
public enum ByteSize {
  /// The bytes `text` names, or nil when it is not a positive size.
  public static func parse(_ text: String) -> Int? {
    let t = text.trimmingCharacters(in: .whitespaces)
    let digits = t.prefix { $0.isNumber || $0 == "." }
    let unit = t.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).uppercased()
    let scale: Double
    switch unit {
    case "", "B": scale = 1
    case "KB": scale = 1e3
    case "MB": scale = 1e6
    case "GB": scale = 1e9
    case "TB": scale = 1e12
    case "KIB": scale = 1024
    case "MIB": scale = 1024 * 1024
    case "GIB": scale = 1024 * 1024 * 1024
    case "TIB": scale = 1024 * 1024 * 1024 * 1024
    default: return nil
    }
    guard let value = Double(digits), value > 0 else { return nil }
    let bytes = (value * scale).rounded()
    guard bytes >= 1, bytes < 9e18 else { return nil }
    return Int(bytes)
  }

  /// The spellings `parse` accepts, for messages.
  public static let help =
    "a number of bytes with an optional unit: KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB"
}

// MARK: - Layout

/// Where every tensor of a sharded safetensors output goes, computed from names, dtypes and shapes
/// before any data (see the file comment).
public struct SafetensorsShardLayout: Sendable, Equatable {
  /// One tensor's place.
  public struct Entry: Sendable, Equatable {
    public var name: String
    public var dtype: SafetensorsDType
    public var shape: [Int]
    /// Index into `files`.
    public var shard: Int
    /// Absolute offset of its first byte in the shard file.
    public var offset: Int
    /// Bytes of data (elements × dtype size).
    public var byteCount: Int
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
  }

  /// transformers' default `max_shard_size`, "5GB" (5 × 10⁹ bytes).
  public static let defaultMaxShardBytes = 5_000_000_000

  /// The shard file names, in order.
  public let files: [String]
  /// Every tensor, by name.
  public let entries: [String: Entry]
  /// Each shard's bytes before its data buffer: the 8-byte header length and the header.
  public let prefixes: [[UInt8]]
  /// Each shard file's size in bytes.
  public let fileSizes: [Int]
  /// Bytes of every tensor's data (`metadata.total_size` of the index).
  public let totalSize: Int
  /// The names in the order given.
  public let order: [String]

  /// The layout of `tensors` (in model order) in shards of at most `maxShardBytes` of tensor data
  /// (a larger tensor gets a shard alone); every shard's header carries `metadata`.
  public init(
    _ tensors: [(name: String, dtype: SafetensorsDType, shape: [Int])], maxShardBytes: Int,
    metadata: [String: String]
  ) throws(SafetensorsError) {
    precondition(maxShardBytes > 0, "SafetensorsShardLayout: maxShardBytes must be positive")
    var seen = Set<String>()
    var groups: [[(name: String, dtype: SafetensorsDType, shape: [Int])]] = []
    var current: [(name: String, dtype: SafetensorsDType, shape: [Int])] = []
    var currentBytes = 0
    var total = 0
    for t in tensors {
      guard !t.name.isEmpty, t.name != "__metadata__" else {
        throw .invalidTensor(name: t.name, reason: "the name is empty or reserved")
      }
      guard seen.insert(t.name).inserted else { throw .invalidTensor(name: t.name, reason: "given twice") }
      guard t.shape.allSatisfy({ $0 >= 0 }) else { throw .invalidTensor(name: t.name, reason: "shape \(t.shape)") }
      let bytes = t.shape.reduce(1, *) * t.dtype.size
      total += bytes
      if bytes > maxShardBytes {
        if !current.isEmpty { groups.append(current) }
        groups.append([t])
        current = []
        currentBytes = 0
        continue
      }
      if currentBytes + bytes > maxShardBytes && !current.isEmpty {
        groups.append(current)
        current = []
        currentBytes = 0
      }
      current.append(t)
      currentBytes += bytes
    }
    if !current.isEmpty || groups.isEmpty { groups.append(current) }
    let n = groups.count
    var files: [String] = []
    var entries: [String: Entry] = [:]
    var prefixes: [[UInt8]] = []
    var sizes: [Int] = []
    for (s, group) in groups.enumerated() {
      files.append(n == 1 ? "model.safetensors" : String(format: "model-%05d-of-%05d.safetensors", s + 1, n))
      let (names, prefix) = SafetensorsWriter.prefix(group, metadata: metadata)
      let byName = Dictionary(uniqueKeysWithValues: group.map { ($0.name, $0) })
      var offset = prefix.count
      for name in names {
        let t = byName[name]!
        let bytes = t.shape.reduce(1, *) * t.dtype.size
        entries[name] = Entry(name: name, dtype: t.dtype, shape: t.shape, shard: s, offset: offset, byteCount: bytes)
        offset += bytes
      }
      prefixes.append(prefix)
      sizes.append(offset)
    }
    self.files = files
    self.entries = entries
    self.prefixes = prefixes
    self.fileSizes = sizes
    self.totalSize = total
    self.order = tensors.map(\.name)
  }

  /// model.safetensors.index.json (only written with more than one shard), as transformers writes
  /// it: sorted keys, two-space indent, a final newline.
  public func indexJSON() -> Data {
    let names = entries.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    let map = names.map { "    \(jsonString($0)): \(jsonString(files[entries[$0]!.shard]))" }.joined(separator: ",\n")
    let text = "{\n  \"metadata\": {\n    \"total_size\": \(totalSize)\n  },\n  \"weight_map\": {\n\(map)\n  }\n}\n"
    return Data(text.utf8)
  }

  /// The index file's name.
  public static let indexFileName = "model.safetensors.index.json"

  /// The files of the output: the shards, and the index when there is more than one.
  public var outputFiles: [String] { files.count > 1 ? files + [Self.indexFileName] : files }

  /// The order a model's tensors are sharded in: the embeddings first, then the blocks in order
  /// (a name's first all-digit component is its block), then everything else (final norm, head);
  /// by name within each group.
  public static func modelOrder(_ names: [String]) -> [String] {
    func key(_ name: String) -> (Int, String) {
      if let block = blockIndex(of: name) { return (block, name) }
      if name.contains("embed") || name.contains("wte") || name.contains("wpe") { return (-1, name) }
      return (Int.max, name)
    }
    return names.sorted { key($0) < key($1) }
  }

  /// The block a tensor belongs to: its name's first all-digit component
  /// (`model.layers.12.mlp.up_proj.weight` → 12), or nil (embeddings, final norm, head).
  public static func blockIndex(of name: String) -> Int? {
    name.split(separator: ".").lazy.compactMap { Int($0) }.first
  }
}

// MARK: - Writer

/// Writes the shards of a `SafetensorsShardLayout` into a folder: `create` writes every shard's
/// header and sizes the file (the data reads as zeros until written), `open` reopens shards written
/// earlier (to continue an interrupted output); tensors are then written and read back at their
/// offsets in any order. Not thread-safe: one writer per folder, used from one thread at a time.
public final class ShardedSafetensorsWriter {
  /// The layout.
  public let layout: SafetensorsShardLayout
  /// The folder that holds the shards.
  public let folder: URL
  private var descriptors: [Int32]

  /// Values converted per pwrite (4 MB of F32).
  static let chunk = 1 << 20

  private init(layout: SafetensorsShardLayout, folder: URL, descriptors: [Int32]) {
    self.layout = layout
    self.folder = folder
    self.descriptors = descriptors
  }

  deinit { close() }

  /// Creates every shard of `layout` in `folder` (which exists; the files must not): the header,
  /// then the file extended to its full size. The index is written by `writeIndex()`.
  public static func create(_ layout: SafetensorsShardLayout, in folder: URL) throws(SafetensorsError)
    -> ShardedSafetensorsWriter
  {
    var descriptors: [Int32] = []
    func fail(_ path: String, _ code: Int32) -> SafetensorsError {
      for fd in descriptors { _ = systemClose(fd) }
      return .writeFailed(path: path, reason: String(cString: strerror(code)))
    }
    for (s, name) in layout.files.enumerated() {
      let path = folder.appendingPathComponent(name).path
      let fd = systemOpen(path, O_RDWR | O_CREAT | O_EXCL, 0o666)
      guard fd >= 0 else { throw fail(path, errno) }
      descriptors.append(fd)
      let prefix = layout.prefixes[s]
      let failure = prefix.withUnsafeBytes { pwriteAll(fd, $0, at: 0) }
      if failure != 0 { throw fail(path, failure) }
      if ftruncate(fd, off_t(layout.fileSizes[s])) != 0 { throw fail(path, errno) }
    }
    return ShardedSafetensorsWriter(layout: layout, folder: folder, descriptors: descriptors)
  }

  /// Reopens the shards of `layout` written earlier in `folder`, after checking that each starts
  /// with the header this layout gives and has its size.
  public static func open(_ layout: SafetensorsShardLayout, in folder: URL) throws(SafetensorsError)
    -> ShardedSafetensorsWriter
  {
    var descriptors: [Int32] = []
    func fail(_ error: SafetensorsError) -> SafetensorsError {
      for fd in descriptors { _ = systemClose(fd) }
      return error
    }
    for (s, name) in layout.files.enumerated() {
      let path = folder.appendingPathComponent(name).path
      let fd = systemOpen(path, O_RDWR, 0)
      guard fd >= 0 else { throw fail(.unreadable(path: path, reason: String(cString: strerror(errno)))) }
      descriptors.append(fd)
      var info = stat()
      guard fstat(fd, &info) == 0, Int(info.st_size) == layout.fileSizes[s] else {
        throw fail(.invalidHeader(path: path, reason: "the shard does not have the size of this run's layout"))
      }
      let prefix = layout.prefixes[s]
      var found = [UInt8](repeating: 0, count: prefix.count)
      let n = found.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, prefix.count, 0) }
      guard n == prefix.count, found == prefix else {
        throw fail(.invalidHeader(path: path, reason: "the shard's header is not the one of this run's layout"))
      }
    }
    return ShardedSafetensorsWriter(layout: layout, folder: folder, descriptors: descriptors)
  }

  /// The entry of `name`, or an error.
  private func entry(_ name: String) throws(SafetensorsError) -> SafetensorsShardLayout.Entry {
    guard let e = layout.entries[name] else { throw .invalidTensor(name: name, reason: "not in the layout") }
    return e
  }

  /// Writes `values` as elements `start ..< start + values.count` of tensor `name`, converted to
  /// its dtype (F32, BF16 or F16; see the file comment).
  public func write(_ name: String, _ values: [Float], startingAt start: Int = 0) throws(SafetensorsError) {
    let e = try entry(name)
    guard [.F32, .BF16, .F16].contains(e.dtype) else {
      throw .invalidTensor(name: name, reason: "\(e.dtype.rawValue) is not written from Float (F32, BF16, F16 are)")
    }
    guard start >= 0, start + values.count <= e.count else {
      throw .invalidTensor(
        name: name, reason: "elements \(start)..<\(start + values.count) beyond its \(e.count) (shape \(e.shape))")
    }
    let path = folder.appendingPathComponent(layout.files[e.shard]).path
    let fd = descriptors[e.shard]
    var failure: Int32 = 0
    values.withUnsafeBufferPointer { v in
      var i = 0
      while i < v.count && failure == 0 {
        let end = min(v.count, i + Self.chunk)
        let at = e.offset + (start + i) * e.dtype.size
        switch e.dtype {
        case .F32:
          #if _endian(little)
            failure = pwriteAll(fd, UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: v[i..<end])), at: at)
          #else
            let le = v[i..<end].map { $0.bitPattern.littleEndian }
            failure = le.withUnsafeBytes { pwriteAll(fd, $0, at: at) }
          #endif
        case .BF16:
          let bits = v[i..<end].map { bfloat16Bits($0).littleEndian }
          failure = bits.withUnsafeBytes { pwriteAll(fd, $0, at: at) }
        case .F16:
          let bits = v[i..<end].map { halfBits($0).littleEndian }
          failure = bits.withUnsafeBytes { pwriteAll(fd, $0, at: at) }
        default:
          failure = EINVAL
        }
        i = end
      }
    }
    if failure != 0 { throw .writeFailed(path: path, reason: String(cString: strerror(failure))) }
  }

  /// Tensor `name` read back from its shard and converted to Float (exact: every BF16 and F16
  /// value is a Float).
  public func read(_ name: String) throws(SafetensorsError) -> [Float] {
    let e = try entry(name)
    let path = folder.appendingPathComponent(layout.files[e.shard]).path
    var bytes = [UInt8](repeating: 0, count: e.byteCount)
    let failure = bytes.withUnsafeMutableBytes { preadAll(descriptors[e.shard], $0, at: e.offset) }
    if failure != 0 { throw .unreadable(path: path, reason: String(cString: strerror(failure))) }
    let count = e.count
    return bytes.withUnsafeBytes { raw in
      switch e.dtype {
      case .F32:
        return (0..<count).map {
          Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
        }
      case .BF16:
        return (0..<count).map {
          floatFromBFloat16(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))
        }
      default:
        return (0..<count).map {
          floatFromHalf(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))
        }
      }
    }
  }

  /// Flushes every shard to disk (fsync), so that what was written survives a crash.
  public func synchronize() throws(SafetensorsError) {
    for (s, fd) in descriptors.enumerated() where fsync(fd) != 0 {
      throw .writeFailed(
        path: folder.appendingPathComponent(layout.files[s]).path, reason: String(cString: strerror(errno)))
    }
  }

  /// Writes model.safetensors.index.json (atomically) when there is more than one shard.
  public func writeIndex() throws(SafetensorsError) {
    guard layout.files.count > 1 else { return }
    let url = folder.appendingPathComponent(SafetensorsShardLayout.indexFileName)
    do { try AtomicOutput.write(layout.indexJSON(), to: url) } catch {
      throw .writeFailed(path: url.path, reason: error.reason)
    }
  }

  /// Closes the shard files (also done when the writer is released).
  public func close() {
    for fd in descriptors { _ = systemClose(fd) }
    descriptors = []
  }
}

/// close(2) and open(2) (the writer's own `close` and `open` hide theirs).
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }

/// Writes every byte of `bytes` at `offset` of `fd` (retrying short writes and EINTR); 0 or errno.
private func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> Int32 {
  var done = 0
  while done < bytes.count {
    let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
    if n < 0 {
      if errno == EINTR { continue }
      return errno
    }
    done += n
  }
  return 0
}

/// Reads `bytes.count` bytes at `offset` of `fd`; 0 or errno (EIO for a file that ends early).
private func preadAll(_ fd: Int32, _ bytes: UnsafeMutableRawBufferPointer, at offset: Int) -> Int32 {
  guard let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
  let (done, failure) = preadFully(fd, into: base, count: bytes.count, at: offset)
  return failure != 0 ? failure : done < bytes.count ? EIO : 0
}

// MARK: - The output type

/// The floating-point type of a written model (`prune model --dtype`, `prune make-model --dtype`).
public enum OutputDType: String, Sendable, Equatable, CaseIterable, Codable {
  /// The source's float type: BF16 or F16 when the source stores its weights so, otherwise F32
  /// (quantised and F32 sources, and every GGUF, so that results from a GGUF stay F32).
  case auto
  case bf16
  case f16
  case f32

  /// The safetensors dtype written, given how the source stores its block weights (`auto` only).
  public func resolved(source: StoredFloatType?) -> SafetensorsDType {
    switch self {
    case .bf16: return .BF16
    case .f16: return .F16
    case .f32: return .F32
    case .auto:
      switch source {
      case .bf16?: return .BF16
      case .f16?: return .F16
      default: return .F32
      }
    }
  }
}

extension SafetensorsDType {
  /// `x` as this type stores it, back as a Float: rounded to nearest even for BF16 and F16 (see
  /// `bfloat16Bits`, `halfBits`); unchanged for every other type.
  @inlinable
  public func rounded(_ x: Float) -> Float {
    switch self {
    case .BF16: return floatFromBFloat16(bfloat16Bits(x))
    case .F16: return floatFromHalf(halfBits(x))
    default: return x
    }
  }

  /// Every value rounded as `rounded(_:)` does.
  public func rounded(_ values: [Float]) -> [Float] {
    self == .BF16 || self == .F16 ? values.map { rounded($0) } : values
  }
}
