import Foundation
import PruneFormats
import PruneTestSupport
import Testing

/// SHA-256 against published vectors (FIPS 180-4 examples, NIST CAVP) and, at the lengths where
/// the padding changes shape (55/56/57, 63/64/65, 119/120 bytes), against Python's hashlib.
@Suite("SHA-256")
struct SHA256Tests {
  static let vectors: [(String, String)] = [
    ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    ),
    (
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
    ),
  ]

  @Test func publishedVectors() {
    for (text, digest) in Self.vectors {
      #expect(SHA256.hexDigest(Array(text.utf8)) == digest, "\(text.debugDescription)")
    }
  }

  /// 'a' repeated n times, from hashlib.sha256(b'a' * n).
  static let repeated: [(Int, String)] = [
    (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
    (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
    (57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6"),
    (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
    (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
    (65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"),
    (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
    (120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"),
    (1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
  ]

  @Test func paddingBoundariesAndAMillionAs() {
    for (n, digest) in Self.repeated {
      #expect(SHA256.hexDigest([UInt8](repeating: UInt8(ascii: "a"), count: n)) == digest, "\(n) × 'a'")
    }
  }

  /// Every byte value, three times (768 bytes), fed in seeded random chunk sizes: the same digest as
  /// one call, and hashlib's.
  @Test(arguments: [1, 2, 3] as [UInt64]) func incrementalEqualsOneShot(seed: UInt64) {
    let bytes = [UInt8]((0..<768).map { UInt8($0 % 256) })
    let expected = "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363"
    #expect(SHA256.hexDigest(bytes) == expected)
    var rng = SplitMix64(seed: seed)
    var hasher = SHA256()
    var start = 0
    while start < bytes.count {
      let n = min(bytes.count - start, Int(rng.next() % 130))
      hasher.update(Array(bytes[start..<(start + n)]))
      start += n
    }
    #expect(hasher.finalize() == SHA256.hash(bytes), "seed \(seed)")
  }
}
