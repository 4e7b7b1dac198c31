import Foundation
import PruneFormats
import PruneTestSupport
import Testing

/// The GGUF decoders of GGUFQuants.swift against gguf-py: each golden type's blocks (random quants,
/// finite random half scales, edge cases first: the largest and the smallest subnormal half scale,
/// signed zeros, all-ones and all-zero quants) decode to gguf-py's float32 values bit for bit.
/// The goldens are made by scripts/make-gguf-golden.py; these tests only read them.
@Suite struct GGUFQuantsTests {
  /// A file holding `bytes` as the one 1-D tensor "t" of `count` weights of `type`.
  static func file(_ type: GGMLType, count: Int, _ bytes: [UInt8], path: String = "quants.gguf") throws -> GGUFFile {
    var b = GGUFBuilder()
    b.tensors = [("t", [count], type.rawValue, bytes)]
    return try b.file(path: path)
  }

  @Test(arguments: GGUFQuantGolden.typeNames)
  func decodesBitForBitAsGGUFPy(name: String) throws {
    let golden = try GGUFQuantGolden(name)
    let count = golden.valueBits.count
    // The files hold whole blocks, and the K-quants several super-blocks each.
    #expect(golden.blocks.count == count / golden.type.blockSize! * golden.type.blockBytes!)
    #expect(count % golden.type.blockSize! == 0 && golden.blockCount >= (golden.type.blockSize! == 256 ? 8 : 32))
    let decoded = try Self.file(golden.type, count: count, golden.blocks).rawFloatTensor("t")
    #expect(decoded.shape == [count])
    let bits = decoded.values.map(\.bitPattern)
    let mismatches = zip(bits, golden.valueBits).enumerated().filter { $0.element.0 != $0.element.1 }
    #expect(
      mismatches.isEmpty,
      "\(name): \(mismatches.count) of \(count) values differ, first at \(mismatches.first?.offset ?? -1)")
    // Quantised goldens have finite values, and on average two distinct ones or more per block (a
    // decoder of constant blocks, or of zeros, would pass a golden of such blocks; Q2_K, whose 2-bit
    // quants give at most 4 values per sub-block, has the fewest: 198 in 8 super-blocks).
    if name != "F16" && name != "BF16" {
      #expect(decoded.values.allSatisfy { $0.isFinite })
      #expect(Set(bits).count >= 2 * golden.blockCount, "\(name): the golden values are too uniform to test anything")
    }
  }

  /// The golden files are the ones the manifest describes (a hand edit or a partial rerun of the
  /// generator shows here), and every decodable type but the plain F32 and F64 has a golden.
  @Test func goldensMatchTheirManifestAndCoverEveryDecodedType() throws {
    let manifestURL = GGUFQuantGolden.folder.appendingPathComponent("manifest.json")
    let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any])
    let types = try #require(manifest["types"] as? [String: [String: Any]])
    #expect(Set(types.keys) == Set(GGUFQuantGolden.typeNames))
    for name in GGUFQuantGolden.typeNames {
      let entry = try #require(types[name])
      for suffix in ["blocks", "f32"] {
        let data = try Data(contentsOf: GGUFQuantGolden.folder.appendingPathComponent("\(name).\(suffix)"))
        #expect(SHA256.hexDigest(data) == entry["sha256_\(suffix)"] as? String, "\(name).\(suffix)")
        // Small files: a few KB each.
        #expect(data.count <= 8192, "\(name).\(suffix) is \(data.count) bytes")
      }
    }
    let withoutGolden = GGMLType.decodable.map(\.name).filter { !GGUFQuantGolden.typeNames.contains($0) }
    #expect(withoutGolden.sorted() == ["F32", "F64"])
  }

  /// A K-quant row must hold whole super-blocks of 256 weights: llama.cpp stores shorter rows in
  /// another type, so such a tensor is a damaged file, refused when it is opened.
  @Test(arguments: [GGMLType.q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
  func kQuantRowsOfPartialSuperBlocksAreRefused(type: GGMLType) throws {
    var b = GGUFBuilder()
    b.tensors = [("t", [128, 2], type.rawValue, [UInt8](repeating: 0, count: type.blockBytes!))]
    #expect(
      throws: GGUFError.invalidTensor(
        path: "bad.gguf", tensor: "t", reason: "the row length 128 is not a multiple of the \(type.name) block size 256"
      )
    ) { try b.file(path: "bad.gguf") }
  }

  /// A K-quant tensor whose blocks the file does not hold (it claims two super-blocks, one is
  /// there) is refused with the sizes, and every truncation of a file holding one is a typed
  /// error, never a read past the end.
  @Test(arguments: ["Q4_K", "Q5_K", "Q6_K"])
  func truncatedKQuantTensorsAreTypedErrors(name: String) throws {
    let golden = try GGUFQuantGolden(name)
    let oneBlock = Array(golden.blocks.prefix(golden.type.blockBytes!))
    var b = GGUFBuilder()
    b.tensors = [("t", [512], golden.type.rawValue, oneBlock)]
    let short = b.build().bytes
    #expect {
      _ = try GGUFFile(data: Data(short), path: "short.gguf")
    } throws: { error in
      guard case .invalidTensor(_, "t", let reason) = error as? GGUFError else { return false }
      return reason.hasPrefix("its \(2 * golden.type.blockBytes!) bytes at data offset 0 end past the end of the file")
    }
    let whole = try GGUFQuantsTests.file(golden.type, count: 512, golden.tiled(blocks: 2).bytes)
    #expect(try whole.rawFloatTensor("t").values.map(\.bitPattern) == golden.tiled(blocks: 2).valueBits)
    var full = GGUFBuilder()
    full.tensors = [("t", [512], golden.type.rawValue, golden.tiled(blocks: 2).bytes)]
    let (bytes, dataOffset, contentEnd) = full.buildWithEnd()
    for cut in stride(from: dataOffset, to: contentEnd, by: 7) {
      #expect(throws: GGUFError.self, "cut at \(cut)") {
        _ = try GGUFFile(data: Data(bytes[0..<cut]), path: "cut.gguf").rawFloatTensor("t")
      }
    }
  }
}
