// The golden files of GGUF tensor decoding, Fixtures/golden/gguf-quants/: for each type, stored
// blocks (<TYPE>.blocks) and the little-endian float32 values gguf-py dequantises them to
// (<TYPE>.f32), written by scripts/make-gguf-golden.py with their sha256 in manifest.json.

import Foundation
import PruneFormats

/// One type's golden blocks and gguf-py's values for them.
public struct GGUFQuantGolden {
  /// The folder of the golden files.
  public static let folder = ModelFiles.packageRoot.appendingPathComponent("Fixtures/golden/gguf-quants")

  /// The types with golden files, as llama.cpp names them.
  public static let typeNames = [
    "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16",
  ]

  public let type: GGMLType
  /// The stored bytes: whole blocks.
  public let blocks: [UInt8]
  /// The bit patterns of gguf-py's float32 values, one per weight.
  public let valueBits: [UInt32]

  /// Reads the golden files of the type named `name` ("Q4_K").
  public init(_ name: String) throws {
    guard let type = GGMLType.decodable.first(where: { $0.name == name }) else {
      throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: "\(name) is not decodable"])
    }
    self.type = type
    blocks = Array(try Data(contentsOf: Self.folder.appendingPathComponent("\(name).blocks")))
    let raw = Array(try Data(contentsOf: Self.folder.appendingPathComponent("\(name).f32")))
    valueBits = stride(from: 0, to: raw.count, by: 4).map { i in
      UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24
    }
  }

  /// The number of stored blocks.
  public var blockCount: Int { blocks.count / type.blockBytes! }

  /// The bytes of `count` blocks, the golden blocks repeated in order, and the bit patterns of
  /// their values: a tensor of any whole number of blocks with known values.
  public func tiled(blocks count: Int) -> (bytes: [UInt8], valueBits: [UInt32]) {
    let bytesPerBlock = type.blockBytes!
    let weightsPerBlock = type.blockSize!
    var bytes: [UInt8] = []
    var bits: [UInt32] = []
    bytes.reserveCapacity(count * bytesPerBlock)
    bits.reserveCapacity(count * weightsPerBlock)
    for b in 0..<count {
      let g = b % blockCount
      bytes += blocks[(g * bytesPerBlock)..<((g + 1) * bytesPerBlock)]
      bits += valueBits[(g * weightsPerBlock)..<((g + 1) * weightsPerBlock)]
    }
    return (bytes, bits)
  }
}
