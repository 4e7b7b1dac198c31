// The element types of GGUF tensors, decoded to Float exactly as ggml's `dequantize_row_*`
// (ggml-quants.c) and gguf-py's `gguf.quants.dequantize` decode them. A quantised type stores a
// row as blocks; a block holds the quants of its weights and the half-float scales they are
// multiplied by. Everything is little-endian; `d`, `m`, `dmin` are IEEE half floats, q are
// unsigned bit fields unless said otherwise, and w is the decoded weight.
//
// Blocks of 32 weights; q_i is the quant of weight i < 32:
//
//     type  bytes  fields (in order)        q_i                                                 weight
//     Q8_0  34     d, qs[32] int8           qs[i]                                               w = d·q
//     Q4_0  18     d, qs[16]                qs[i] & 15 for i < 16, qs[i − 16] >> 4 for i ≥ 16   w = d·(q − 8)
//     Q4_1  20     d, m, qs[16]             as Q4_0                                             w = d·q + m
//     Q5_0  22     d, qh u32, qs[16]        Q4_0's q_i | (bit i of qh) << 4                     w = d·(q − 16)
//     Q5_1  24     d, m, qh u32, qs[16]     as Q5_0                                             w = d·q + m
//     IQ4_NL 18    d, qs[16]                as Q4_0                                             w = d·grid[q]
//
// IQ4_NL's grid is ggml's non-linear table of 16 int8 levels (`iq4NLGrid` below). Row lengths that
// are not a multiple of 256 cannot hold K-quants, so llama.cpp stores such tensors of a K-quant
// file in Q5_0 (for Q4_K), Q5_1 (Q5_K), Q8_0 (Q6_K) or IQ4_NL (Q2_K, Q3_K): a Q4_K_M file of a model
// of hidden size 576 is mostly those types.
//
// K-quants: super-blocks of 256 weights in sub-blocks of 16 or 32 that have their own small
// integer scale (and min), themselves scaled by the super-block's `d` (and `dmin`). Weight
// k < 256 of a super-block is written k = 128·h + 32·j + l (h < 2 the half, j < 4 the quarter of
// the half, l < 32); s is the sub-block of k:
//
//     type  bytes  fields (in order)                                    sub-block s of weight k
//     Q2_K   84    scales[16], qs[64], d, dmin                          k / 16
//     Q3_K  110    hmask[32], qs[64], scales[12] (16 × 6 bits), d       k / 16
//     Q4_K  144    d, dmin, scales[12] (8 × 6 + 8 × 6 bits), qs[128]    k / 32
//     Q5_K  176    d, dmin, scales[12] (as Q4_K), qh[32], qs[128]       k / 32
//     Q6_K  210    ql[128], qh[64], scales[16] int8, d                  k / 16
//
// with the weights and quants
//
//     Q2_K  w = d·(scales[s] & 15)·q − dmin·(scales[s] >> 4)   q = (qs[32h + l] >> 2j) & 3
//     Q3_K  w = d·(sc_s − 32)·q                                 q = ((qs[32h + l] >> 2j) & 3) − 4·(1 − e),
//                                                                   e = bit 4h + j of hmask[l]
//     Q4_K  w = d·sc_s·q − dmin·m_s                             q = (qs[32·(s / 2) + l] >> 4·(s % 2)) & 15
//     Q5_K  w = d·sc_s·q − dmin·m_s                             q = (Q4_K's q) | (bit s of qh[l]) << 4
//     Q6_K  w = d·scales[s]·(q − 32)                            q = (ql[64h + 32·(j % 2) + l] >> 4·(j / 2)) & 15
//                                                                   | ((qh[32h + l] >> 2j) & 3) << 4
//
// So in Q4_K and Q5_K the 32 quants of sub-block s are the low (s even) or high (s odd) nibbles of
// qs[32·(s / 2) ..< 32·(s / 2) + 32]. The packed 6-bit scales: Q3_K's twelve bytes b hold
// sc_s = (s < 8 ? b[s] & 15 : b[s − 8] >> 4) | ((b[8 + s % 4] >> 2·(s / 4)) & 3) << 4;
// Q4_K's and Q5_K's hold, for s < 4, sc_s = b[s] & 63 and m_s = b[s + 4] & 63, and for s ≥ 4
// sc_s = (b[s + 4] & 15) | (b[s − 4] >> 6) << 4 and m_s = (b[s + 4] >> 4) | (b[s] >> 6) << 4.
//
// Rounding. A half float has an 11-bit significand and Float a 24-bit one, so every product above
// is exact in Float: d·sc·q has at most 11 + 7 + 5 = 23 significant bits (Q6_K, the widest:
// |scales[s]| ≤ 128 and |q − 32| ≤ 32 have at most 7 and 5), and no half times a small integer
// leaves Float's normal range. The only rounding is the one addition of Q4_1, Q5_1, Q2_K, Q4_K and
// Q5_K (+ m, − dmin·m_s), done once in Float as gguf-py (numpy, float32) and ggml do it; since the
// product is exact, a fused multiply-add rounds the same way. So the values are bit-identical to
// theirs, which the golden files in Fixtures/golden/gguf-quants/ (made from gguf-py by
// scripts/make-gguf-golden.py) check.

/// Converts one tensor's stored elements to Float. Reads are unaligned little-endian loads; the
/// caller has checked that `count` elements (whole blocks) lie inside the memory at `p`.
enum GGUFDequantize {
  /// The types `run` decodes, in the order their codes are numbered.
  static let decodableTypes: [GGMLType] = [
    .f32, .f16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_NL, .f64, .bf16,
  ]

  @inline(__always)
  static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
  }

  @inline(__always)
  static func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
    p.load(fromByteOffset: offset, as: UInt8.self)
  }

  static func run(_ type: GGMLType, from p: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
    switch type {
    case .f32:
      for i in 0..<count {
        out[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
      }
    case .f16:
      for i in 0..<count { out[i] = half(p, 2 * i) }
    case .bf16:
      for i in 0..<count {
        let b = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
        out[i] = Float(bitPattern: UInt32(b) << 16)
      }
    case .f64:
      for i in 0..<count {
        out[i] = Float(
          Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
      }
    case .q8_0: blocks(count, 32, 34, p, out, q8_0)
    case .q4_0: blocks(count, 32, 18, p, out, q4_0)
    case .q4_1: blocks(count, 32, 20, p, out, q4_1)
    case .q5_0: blocks(count, 32, 22, p, out, q5_0)
    case .q5_1: blocks(count, 32, 24, p, out, q5_1)
    case .iq4_NL: blocks(count, 32, 18, p, out, iq4_NL)
    case .q2_K: blocks(count, 256, 84, p, out, q2_K)
    case .q3_K: blocks(count, 256, 110, p, out, q3_K)
    case .q4_K: blocks(count, 256, 144, p, out, q4_K)
    case .q5_K: blocks(count, 256, 176, p, out, q5_K)
    case .q6_K: blocks(count, 256, 210, p, out, q6_K)
    default:
      preconditionFailure("GGUFDequantize: type \(type.name) is not decodable (checked by the caller)")
    }
  }

  /// Decodes `count / weights` blocks of `bytes` bytes each with `block`.
  @inline(__always)
  private static func blocks(
    _ count: Int, _ weights: Int, _ bytes: Int, _ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>,
    _ block: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void
  ) {
    for b in 0..<(count / weights) { block(p + bytes * b, out + weights * b) }
  }

  // MARK: Blocks of 32

  static func q8_0(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let d = half(x, 0)
    for j in 0..<32 { w[j] = d * Float(Int8(bitPattern: byte(x, 2 + j))) }
  }

  static func q4_0(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let d = half(x, 0)
    for j in 0..<16 {
      let q = byte(x, 2 + j)
      w[j] = d * Float(Int(q & 15) - 8)
      w[j + 16] = d * Float(Int(q >> 4) - 8)
    }
  }

  static func q4_1(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let d = half(x, 0)
    let m = half(x, 2)
    for j in 0..<16 {
      let q = byte(x, 4 + j)
      // The products are exact; the sum is rounded once, as in gguf-py and ggml.
      let lo = d * Float(q & 15)
      let hi = d * Float(q >> 4)
      w[j] = lo + m
      w[j + 16] = hi + m
    }
  }

  /// The 5-bit quants of a Q5_0 or Q5_1 block whose `qh` word is at `qhAt` and `qs` bytes follow.
  @inline(__always)
  private static func fiveBitQuants(_ x: UnsafeRawPointer, qhAt: Int, _ body: (_ i: Int, _ q: Int) -> Void) {
    let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: qhAt, as: UInt32.self))
    for j in 0..<16 {
      let q = byte(x, qhAt + 4 + j)
      body(j, Int(q & 15) | Int((qh >> UInt32(j)) & 1) << 4)
      body(j + 16, Int(q >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4)
    }
  }

  static func q5_0(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let d = half(x, 0)
    fiveBitQuants(x, qhAt: 2) { i, q in w[i] = d * Float(q - 16) }
  }

  static func q5_1(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let d = half(x, 0)
    let m = half(x, 2)
    fiveBitQuants(x, qhAt: 4) { i, q in
      let product = d * Float(q)  // exact
      w[i] = product + m
    }
  }

  /// IQ4_NL's 16 levels (ggml's `kvalues_iq4nl`), indexed by a 4-bit quant.
  static let iq4NLGrid: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

  static func iq4_NL(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let d = half(x, 0)
    for j in 0..<16 {
      let q = byte(x, 2 + j)
      w[j] = d * Float(iq4NLGrid[Int(q & 15)])
      w[j + 16] = d * Float(iq4NLGrid[Int(q >> 4)])
    }
  }

  // MARK: K-quants (super-blocks of 256)

  /// Q4_K's and Q5_K's scale and min of sub-block s < 8, from the 12 bytes at `b`.
  @inline(__always)
  static func scaleAndMin(_ b: UnsafeRawPointer, _ s: Int) -> (scale: Float, min: Float) {
    if s < 4 { return (Float(byte(b, s) & 63), Float(byte(b, s + 4) & 63)) }
    let scale = (byte(b, s + 4) & 15) | (byte(b, s - 4) >> 6) << 4
    let min = (byte(b, s + 4) >> 4) | (byte(b, s) >> 6) << 4
    return (Float(scale), Float(min))
  }

  /// Q3_K's signed scale sc_s − 32 of sub-block s < 16, from the 12 bytes at `b`.
  @inline(__always)
  static func q3KScale(_ b: UnsafeRawPointer, _ s: Int) -> Float {
    let low = s < 8 ? byte(b, s) & 15 : byte(b, s - 8) >> 4
    let high = (byte(b, 8 + s % 4) >> UInt8(2 * (s / 4))) & 3
    return Float(Int(low | high << 4) - 32)
  }

  static func q2_K(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let scales = x
    let qs = x + 16
    let d = half(x, 80)
    let dmin = half(x, 82)
    for h in 0..<2 {
      for j in 0..<4 {
        for l in 0..<32 {
          let k = 128 * h + 32 * j + l
          let sc = byte(scales, k / 16)
          let q = (byte(qs, 32 * h + l) >> UInt8(2 * j)) & 3
          let product = d * Float(sc & 15) * Float(q)  // exact
          w[k] = product - dmin * Float(sc >> 4)
        }
      }
    }
  }

  static func q3_K(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let hmask = x
    let qs = x + 32
    let scales = x + 96
    let d = half(x, 108)
    for h in 0..<2 {
      for j in 0..<4 {
        for l in 0..<32 {
          let k = 128 * h + 32 * j + l
          let low = Int((byte(qs, 32 * h + l) >> UInt8(2 * j)) & 3)
          let highBit = Int((byte(hmask, l) >> UInt8(4 * h + j)) & 1)
          let q = low - 4 * (1 - highBit)
          w[k] = d * q3KScale(scales, k / 16) * Float(q)
        }
      }
    }
  }

  static func q4_K(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let d = half(x, 0)
    let dmin = half(x, 2)
    let scales = x + 4
    let qs = x + 16
    for s in 0..<8 {
      let (sc, m) = scaleAndMin(scales, s)
      let ds = d * sc
      let mins = dmin * m
      for l in 0..<32 {
        let q = (byte(qs, 32 * (s / 2) + l) >> UInt8(4 * (s % 2))) & 15
        let product = ds * Float(q)  // exact
        w[32 * s + l] = product - mins
      }
    }
  }

  static func q5_K(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let d = half(x, 0)
    let dmin = half(x, 2)
    let scales = x + 4
    let qh = x + 16
    let qs = x + 48
    for s in 0..<8 {
      let (sc, m) = scaleAndMin(scales, s)
      let ds = d * sc
      let mins = dmin * m
      for l in 0..<32 {
        let low = (byte(qs, 32 * (s / 2) + l) >> UInt8(4 * (s % 2))) & 15
        let q = low | ((byte(qh, l) >> UInt8(s)) & 1) << 4
        let product = ds * Float(q)  // exact
        w[32 * s + l] = product - mins
      }
    }
  }

  static func q6_K(_ x: UnsafeRawPointer, _ w: UnsafeMutablePointer<Float>) {
    let ql = x
    let qh = x + 128
    let scales = x + 192
    let d = half(x, 208)
    for h in 0..<2 {
      for j in 0..<4 {
        for l in 0..<32 {
          let k = 128 * h + 32 * j + l
          let low = (byte(ql, 64 * h + 32 * (j % 2) + l) >> UInt8(4 * (j / 2))) & 15
          let high = (byte(qh, 32 * h + l) >> UInt8(2 * j)) & 3
          let q = Int(low | high << 4) - 32
          w[k] = d * Float(Int8(bitPattern: byte(scales, k / 16))) * Float(q)
        }
      }
    }
  }
}
