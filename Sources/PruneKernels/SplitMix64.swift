// SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014):
// the one seeded generator of PruneKit. Every random thing PruneKit makes (synthetic layer
// problems, the test vectors' synthetic cases, synthetic models, benchmark inputs, test inputs)
// draws from it, so each can be replayed from its seed on any machine. The test vectors depend on
// its exact sequence: changing it changes every synthetic file `prune vectors` writes.
//
//   state ← state + 0x9E3779B97F4A7C15 (mod 2⁶⁴)
//   z ← (state ⊕ (state ≫ 30)) · 0xBF58476D1CE4E5B9
//   z ← (z ⊕ (z ≫ 27)) · 0x94D049BB133111EB
//   next = z ⊕ (z ≫ 31)

/// A tiny seedable generator with a fixed sequence for each seed. Never use
/// `SystemRandomNumberGenerator` for anything that must be replayed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A uniform Double in `range` from the top 53 bits of one draw:
  /// lower + u·(upper − lower), u = (next ≫ 11)·2⁻⁵³ ∈ [0, 1).
  public mutating func uniform(in range: ClosedRange<Double>) -> Double {
    let u = Double(next() >> 11) * 0x1p-53
    return range.lowerBound + u * (range.upperBound - range.lowerBound)
  }
}
