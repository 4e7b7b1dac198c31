// The row-wise operations of a decoder block, in Float, and causal attention built on the GEMM.
//
// Every operation works on a [tokens × width] matrix, one row per token. Row-wise operations are
// split over threads by rows (`Parallelism.forEachChunk`); a row is always computed by the same
// sequence of operations whichever thread runs it, so results are bit-identical for every thread
// count. Reductions inside a row (norm statistics, softmax sums) run in a fixed order.

import Foundation
import PruneKernels
import Synchronization

// MARK: - Vectorised exp

/// eˣ for eight lanes, with the Cephes `expf` polynomial (relative error ≤ 2 ulp on the range
/// used; tested against Foundation's `exp`).
///
///   n = round(x·log₂e),  r = x − n·ln2 (ln2 split into 0.693359375 − 2.12194440e−4 so that n·C₁
///   is exact),  eʳ ≈ 1 + r + r²·P(r) on |r| ≤ ½ln2,  eˣ = 2ⁿ·eʳ (2ⁿ built in the exponent bits).
///
/// x is clamped to [−87, 88] so that 2ⁿ stays a normal number: below −87 the result is
/// e⁻⁸⁷ ≈ 1.6e−38 instead of a smaller value, which no softmax sum or sigmoid can see.
@inline(__always)
func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
  // (`clamped` is a generic call that does not inline; compare-and-blend does.)
  let low = SIMD8<Float>(repeating: -87)
  let high = SIMD8<Float>(repeating: 88)
  var x = x.replacing(with: low, where: x .< low)
  x.replace(with: high, where: x .> high)
  // Adding 1.5·2²³ rounds to the nearest integer, which then sits in the low mantissa bits.
  let magic = SIMD8<Float>(repeating: 12_582_912)
  let t = x * SIMD8(repeating: 1.442_695_04) + magic
  let n = t - magic
  var r = x.addingProduct(n, SIMD8(repeating: -0.693_359_375))
  r = r.addingProduct(n, SIMD8(repeating: 2.121_944_40e-4))
  var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
  p = SIMD8(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
  p = SIMD8(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
  p = SIMD8(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
  p = SIMD8(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
  p = SIMD8(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
  let y = (r + 1).addingProduct(p, r * r)
  let exponent =
    (unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
      &+ 127) &<< 23
  return y * unsafeBitCast(exponent, to: SIMD8<Float>.self)
}

/// eˣ for one value, by the same arithmetic as `fastExp(_: SIMD8<Float>)` (lane 0).
@inline(__always)
func fastExp(_ x: Float) -> Float { fastExp(SIMD8(repeating: x))[0] }

/// Loads up to eight floats, padding with `fill`.
@inline(__always)
func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, fill: Float) -> SIMD8<Float> {
  var v = SIMD8<Float>(repeating: fill)
  for l in 0..<count { v[l] = p[l] }
  return v
}

// MARK: - Row-parallel helper

/// Runs `body(rows)` over contiguous chunks of 0..<rows on the default thread count; small
/// problems (fewer than `minimumWork` elements) run on the calling thread.
@inline(__always)
func forEachRowChunk(_ rows: Int, work: Int, _ body: @Sendable (Range<Int>) -> Void) {
  let minimumWork = 1 << 15
  if work < minimumWork || Parallelism.threads == 1 || rows < 2 {
    body(0..<rows)
  } else {
    Parallelism.forEachChunk(of: rows, body)
  }
}

// MARK: - Linear layers

/// y = x·Wᵀ + b, with W `[out × in]` (nn.Linear layout), x `[tokens × in]`, y `[tokens × out]`.
/// The bias is folded into the GEMM as its C (β = 1): each element is rounded once as acc + b.
func linear(_ x: Matrix<Float>, _ layer: LinearWeights) -> Matrix<Float> {
  var y: Matrix<Float>
  if let bias = layer.bias {
    y = Matrix(rows: x.rows, columns: layer.weight.rows)
    let width = y.columns
    y.withUnsafeMutableBufferPointer { out in
      bias.withUnsafeBufferPointer { b in
        for i in 0..<x.rows { (out.baseAddress! + i * width).update(from: b.baseAddress!, count: width) }
      }
    }
    gemm(x, layer.weight, into: &y, transposeB: true, beta: 1)
  } else {
    y = matmul(x, layer.weight, transposeB: true)
  }
  return y
}

/// h ← h + y, elementwise.
func addInPlace(_ h: inout Matrix<Float>, _ y: Matrix<Float>) {
  precondition(h.rows == y.rows && h.columns == y.columns, "addInPlace: \(h.shapeDescription) vs \(y.shapeDescription)")
  let width = h.columns
  let rows = h.rows
  h.withUnsafeMutableBufferPointer { hp in
    y.withUnsafeBufferPointer { yp in
      let hs = SendablePointer(hp.baseAddress!)
      let ys = SendableConstPointer(yp.baseAddress!)
      forEachRowChunk(rows, work: rows * width) { rows in
        for i in rows.lowerBound * width..<rows.upperBound * width { hs.base[i] += ys.base[i] }
      }
    }
  }
}

// MARK: - Norms

/// The weights of a norm: γ (and β for LayerNorm), over the hidden width.
package struct NormWeights: Sendable, Equatable {
  package var weight: [Float]
  package var bias: [Float]?
}

/// RMSNorm, row by row: yᵢ = γᵢ·(xᵢ · 1/√(mean(x²) + ε)) (Zhang & Sennrich 2019; `LlamaRMSNorm`).
/// mean(x²) is accumulated in Double; the scaling is rounded as transformers does, x·r then γ·(x·r).
func rmsNorm(_ x: Matrix<Float>, _ norm: NormWeights, epsilon: Float) -> Matrix<Float> {
  var y = Matrix<Float>(rows: x.rows, columns: x.columns)
  let width = x.columns
  x.withUnsafeBufferPointer { xp in
    y.withUnsafeMutableBufferPointer { yp in
      norm.weight.withUnsafeBufferPointer { gp in
        let xs = SendableConstPointer(xp.baseAddress!)
        let ys = SendablePointer(yp.baseAddress!)
        let gs = SendableConstPointer(gp.baseAddress!)
        forEachRowChunk(x.rows, work: x.rows * width) { rows in
          for i in rows {
            let row = xs.base + i * width
            let out = ys.base + i * width
            var sum = 0.0
            for j in 0..<width { sum += Double(row[j]) * Double(row[j]) }
            let r = Float(1 / (Float(sum / Double(width)) + epsilon).squareRoot())
            for j in 0..<width { out[j] = gs.base[j] * (row[j] * r) }
          }
        }
      }
    }
  }
  return y
}

/// LayerNorm, row by row: yᵢ = (xᵢ − μ)/√(σ² + ε)·γᵢ + βᵢ with μ, σ² the mean and biased variance of
/// the row (accumulated in Double).
func layerNorm(_ x: Matrix<Float>, _ norm: NormWeights, epsilon: Float) -> Matrix<Float> {
  var y = Matrix<Float>(rows: x.rows, columns: x.columns)
  let width = x.columns
  let bias = norm.bias ?? [Float](repeating: 0, count: width)
  x.withUnsafeBufferPointer { xp in
    y.withUnsafeMutableBufferPointer { yp in
      norm.weight.withUnsafeBufferPointer { gp in
        bias.withUnsafeBufferPointer { bp in
          let xs = SendableConstPointer(xp.baseAddress!)
          let ys = SendablePointer(yp.baseAddress!)
          let gs = SendableConstPointer(gp.baseAddress!)
          let bs = SendableConstPointer(bp.baseAddress!)
          forEachRowChunk(x.rows, work: x.rows * width) { rows in
            for i in rows {
              let row = xs.base + i * width
              let out = ys.base + i * width
              var sum = 0.0
              for j in 0..<width { sum += Double(row[j]) }
              let mean = sum / Double(width)
              var squares = 0.0
              for j in 0..<width {
                let d = Double(row[j]) - mean
                squares += d * d
              }
              let rstd = Float(1 / (squares / Double(width) + Double(epsilon)).squareRoot())
              let mu = Float(mean)
              for j in 0..<width { out[j] = (row[j] - mu) * rstd * gs.base[j] + bs.base[j] }
            }
          }
        }
      }
    }
  }
  return y
}

// MARK: - Activations

/// Applies the MLP activation in place: ReLU max(x, 0), GELU x·Φ(x) = ½x(1 + erf(x/√2)), or
/// GELU-tanh ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (`NewGELUActivation`).
func activate(_ x: inout Matrix<Float>, _ activation: ForwardConfig.Activation) {
  let width = x.columns
  let rowCount = x.rows
  x.withUnsafeMutableBufferPointer { xp in
    let xs = SendablePointer(xp.baseAddress!)
    forEachRowChunk(rowCount, work: rowCount * width) { rows in
      let range = rows.lowerBound * width..<rows.upperBound * width
      switch activation {
      case .relu:
        for i in range { xs.base[i] = max(xs.base[i], 0) }
      case .gelu:
        for i in range {
          let v = xs.base[i]
          xs.base[i] = 0.5 * v * (1 + Float(erf(Double(v) * 0.707_106_781_186_547_5)))
        }
      case .geluTanh:
        let c = Float((2 / Double.pi).squareRoot())
        for i in range {
          let v = xs.base[i]
          xs.base[i] = 0.5 * v * (1 + tanh(c * (v + 0.044715 * (v * v * v))))
        }
      case .silu:
        for i in range {
          let v = xs.base[i]
          xs.base[i] = v / (1 + fastExp(-v))
        }
      }
    }
  }
}

/// SwiGLU's gate, in place on `gate`: gᵢ ← silu(gᵢ)·uᵢ with silu(g) = g/(1 + e⁻ᵍ).
func swiGLU(gate: inout Matrix<Float>, up: Matrix<Float>) {
  precondition(
    gate.rows == up.rows && gate.columns == up.columns, "swiGLU: \(gate.shapeDescription) vs \(up.shapeDescription)")
  let count = gate.rows * gate.columns
  let width = gate.columns
  let rowCount = gate.rows
  gate.withUnsafeMutableBufferPointer { gp in
    up.withUnsafeBufferPointer { upp in
      let gs = SendablePointer(gp.baseAddress!)
      let us = SendableConstPointer(upp.baseAddress!)
      forEachRowChunk(rowCount, work: count) { rows in
        var i = rows.lowerBound * width
        let end = rows.upperBound * width
        while i + 8 <= end {
          let g = UnsafeRawPointer(gs.base + i).loadUnaligned(as: SIMD8<Float>.self)
          let u = UnsafeRawPointer(us.base + i).loadUnaligned(as: SIMD8<Float>.self)
          let s = g / (1 + fastExp(-g)) * u
          UnsafeMutableRawPointer(gs.base + i).storeBytes(of: s, as: SIMD8<Float>.self)
          i += 8
        }
        while i < end {
          let g = gs.base[i]
          gs.base[i] = g / (1 + fastExp(-g)) * us.base[i]
          i += 1
        }
      }
    }
  }
}

// MARK: - Rotary position embedding

/// cos and sin of the rotate-half RoPE angles, [positions × headDim/2] each:
///
///   ωᵢ = θ^(−2i/d) (i < d/2),   angle(p, i) = p·ω'ᵢ,   cos = a·cos(angle), sin = a·sin(angle),
///
/// where ω' = ω and a = 1 for plain RoPE, and a scaling (config.json's rope_scaling) changes them
/// (s = factor, L = original_max_position_embeddings, λᵢ = 2π/ωᵢ the wavelength of dimension i):
///
///   linear:  ω'ᵢ = ωᵢ/s (position interpolation: angle(p) = (p/s)·ωᵢ).
///   llama3:  λᵢ < L/high_freq_factor: ω'ᵢ = ωᵢ (fast dimensions kept);
///            λᵢ > L/low_freq_factor:  ω'ᵢ = ωᵢ/s (slow dimensions interpolated);
///            between, with r = (L/λᵢ − low)/(high − low):  ω'ᵢ = (1 − r)·ωᵢ/s + r·ωᵢ.
///   yarn:    dimension i turns L/λᵢ times over L positions; with dim(β) = d·ln(L/(2πβ))/(2 ln θ)
///            (the dimension that turns β times), lo = max(⌊dim(β_fast)⌋, 0),
///            hi = min(⌈dim(β_slow)⌉, d − 1) (no rounding when truncate is false; hi += 0.001 when
///            lo = hi), γᵢ = 1 − clamp((i − lo)/(hi − lo), 0, 1):
///            ω'ᵢ = (ωᵢ/s)·(1 − γᵢ) + ωᵢ·γᵢ (fast dimensions kept, slow ones interpolated), and
///            a = attention factor (default 0.1·ln s + 1), which scales every attention logit by a².
///
/// computed as transformers does in float32: θ^(2i/d) rounded to Float, each step of the scaling
/// a Float operation (the scalars rounded to Float first), the angle as a Float product, cos and
/// sin of that Float angle (evaluated in Double, rounded once), then the Float product with a.
struct RotaryTable: Sendable {
  let halfDim: Int
  let positions: Int
  let cos: [Float]
  let sin: [Float]

  init(headDim: Int, theta: Double, positions: Int, scaling: RopeFrequencyScaling? = nil) {
    halfDim = headDim / 2
    self.positions = positions
    let exponents = (0..<halfDim).map { Float(2 * $0) / Float(headDim) }
    let powers = exponents.map { Float(pow(Double(Float(theta)), Double($0))) }  // θ^(2i/d)
    let (inverseFrequency, attentionFactor) = Self.frequencies(
      powers: powers, headDim: headDim, theta: theta, scaling: scaling)
    var c = [Float](repeating: 0, count: positions * halfDim)
    var s = c
    for p in 0..<positions {
      for i in 0..<halfDim {
        let angle = Double(Float(p) * inverseFrequency[i])
        // a = 1 leaves every value as it is (x·1 = x exactly).
        c[p * halfDim + i] = Float(Foundation.cos(angle)) * attentionFactor
        s[p * halfDim + i] = Float(Foundation.sin(angle)) * attentionFactor
      }
    }
    cos = c
    sin = s
  }

  /// ω' and a of the type comment, from powers[i] = θ^(2i/d) (Float).
  static func frequencies(
    powers: [Float], headDim: Int, theta: Double, scaling: RopeFrequencyScaling?
  ) -> (inverseFrequency: [Float], attentionFactor: Float) {
    let omega = powers.map { 1 / $0 }
    switch scaling {
    case nil:
      return (omega, 1)
    case .linear(let factor):
      let s = Float(factor)
      return (omega.map { $0 / s }, 1)
    case .llama3(let p):
      let s = Float(p.factor)
      let low = Float(p.lowFreqFactor)
      let lowWavelength = Float(Double(p.originalMaxPositions) / p.lowFreqFactor)
      let highWavelength = Float(Double(p.originalMaxPositions) / p.highFreqFactor)
      let span = Float(p.highFreqFactor - p.lowFreqFactor)
      let original = Float(p.originalMaxPositions)
      let twoPi = Float(2 * Double.pi)
      let scaled = omega.map { w -> Float in
        let wavelength = twoPi / w
        let interpolated = wavelength > lowWavelength ? w / s : w
        guard !(wavelength < highWavelength) && !(wavelength > lowWavelength) else { return interpolated }
        let r = (original / wavelength - low) / span
        return (1 - r) * interpolated / s + r * interpolated
      }
      return (scaled, 1)
    case .yarn(let p):
      let half = powers.count
      let d = Double(headDim)
      func dimension(turns: Double) -> Double {
        d * Foundation.log(Double(p.originalMaxPositions) / (turns * 2 * Double.pi)) / (2 * Foundation.log(theta))
      }
      var lo = dimension(turns: p.betaFast)
      var hi = dimension(turns: p.betaSlow)
      if p.truncate {
        lo = lo.rounded(.down)
        hi = hi.rounded(.up)
      }
      lo = max(lo, 0)
      hi = min(hi, d - 1)
      if lo == hi { hi += 0.001 }  // a ramp of zero width would divide by zero
      let s = Float(p.factor)
      let scaled = (0..<half).map { i -> Float in
        let ramp = min(max((Float(i) - Float(lo)) / Float(hi - lo), 0), 1)
        let keep = 1 - ramp  // γᵢ: the share of the original frequency
        let interpolated = 1 / (s * powers[i])
        return interpolated * (1 - keep) + omega[i] * keep
      }
      return (scaled, Float(p.attentionFactor))
    }
  }
}

/// Applies RoPE in place to every head of x ([tokens × heads·d]); row t is at position
/// t mod sequenceLength. For each head and i < d/2, with (x₁, x₂) = (xᵢ, x_{i+d/2}):
///
///   xᵢ ← x₁·cos − x₂·sin,   x_{i+d/2} ← x₂·cos + x₁·sin
///
/// i.e. x·cos + rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁), rounded as transformers does
/// (two products, then the sum).
func applyRotary(_ x: inout Matrix<Float>, heads: Int, table: RotaryTable, sequenceLength: Int) {
  let half = table.halfDim
  let width = x.columns
  precondition(width == heads * 2 * half, "applyRotary: \(x.shapeDescription) is not \(heads) heads of \(2 * half)")
  precondition(
    sequenceLength <= table.positions, "applyRotary: table of \(table.positions) positions for \(sequenceLength)")
  let rowCount = x.rows
  x.withUnsafeMutableBufferPointer { xp in
    table.cos.withUnsafeBufferPointer { cp in
      table.sin.withUnsafeBufferPointer { sp in
        let xs = SendablePointer(xp.baseAddress!)
        let cs = SendableConstPointer(cp.baseAddress!)
        let ss = SendableConstPointer(sp.baseAddress!)
        forEachRowChunk(rowCount, work: rowCount * width * 4) { rows in
          for t in rows {
            let p = t % sequenceLength
            let c = cs.base + p * half
            let s = ss.base + p * half
            for h in 0..<heads {
              let v = xs.base + t * width + h * 2 * half
              for i in 0..<half {
                let x1 = v[i]
                let x2 = v[i + half]
                v[i] = x1 * c[i] + (-x2) * s[i]
                v[i + half] = x2 * c[i] + x1 * s[i]
              }
            }
          }
        }
      }
    }
  }
}

// MARK: - Causal attention

/// Columns of a matrix holding one of Q, K, V (GPT-2's fused q/k/v output holds all three).
struct HeadOperand {
  let matrix: Matrix<Float>
  /// First column of head 0.
  let columnOffset: Int
}

/// Query rows per attention work item. Fixed, so the reduction lengths of P·V (keys 0..<end of
/// the block) never depend on the thread count.
let attentionQueryBlock = 128

/// Causal multi-head attention with grouped key/value heads, for sequences laid end to end
/// (row t belongs to sequence ⌊t/L⌋ at position t mod L):
///
///   for each sequence, query head h and its key/value head g = ⌊h·KV/H⌋:
///     S = scale·Q_h·K_gᵀ                     [L × L]
///     P_ij = exp(S_ij − mᵢ)/Σ_{j'∈Vᵢ} exp(S_ij' − mᵢ) for j ∈ Vᵢ, 0 otherwise  (mᵢ = max_{j∈Vᵢ} S_ij)
///     O_h = P·V_g                            [L × d]
///
/// where query i sees the keys Vᵢ = {0 … i}, or with a sliding window of W keys (Mistral)
/// Vᵢ = {i − W + 1 … i} ∩ {0 … i}: the query itself and the W − 1 keys before it, as transformers'
/// sliding-window mask keeps key j for query i when j > i − W.
///
/// Returns O = [O_1 … O_H], [tokens × H·d]. The work is cut into items (sequence, head, block of
/// `attentionQueryBlock` query rows); an item computes only the keys its rows can see (lo..<end,
/// end the block's end and lo = max(0, first row − W + 1), 0 without a window), with two
/// single-threaded GEMMs, and items are shared between threads through an atomic counter, largest
/// first. Every item is computed the same way by whichever thread takes it, so the result does not
/// depend on the thread count; a window of W ≥ L computes exactly what no window does.
func causalAttention(
  q: HeadOperand, k: HeadOperand, v: HeadOperand, heads: Int, keyValueHeads: Int, headDim d: Int,
  sequenceLength: Int, scale: Float, window: Int? = nil, threads: Int = Parallelism.threads
) -> Matrix<Float> {
  let tokens = q.matrix.rows
  precondition(tokens % sequenceLength == 0, "causalAttention: \(tokens) rows are not sequences of \(sequenceLength)")
  precondition(heads % keyValueHeads == 0, "causalAttention: \(keyValueHeads) key/value heads for \(heads) heads")
  precondition(
    q.columnOffset + heads * d <= q.matrix.columns && k.columnOffset + keyValueHeads * d <= k.matrix.columns
      && v.columnOffset + keyValueHeads * d <= v.matrix.columns, "causalAttention: head columns outside the operands")
  precondition(window.map { $0 > 0 } ?? true, "causalAttention: a window of \(window ?? 0) keys")
  var out = Matrix<Float>(rows: tokens, columns: heads * d)
  let sequences = tokens / sequenceLength
  let blocks = (sequenceLength + attentionQueryBlock - 1) / attentionQueryBlock
  let itemCount = sequences * heads * blocks
  let group = heads / keyValueHeads
  let ldq = q.matrix.columns
  let ldk = k.matrix.columns
  let ldv = v.matrix.columns
  let ldo = heads * d
  q.matrix.withUnsafeBufferPointer { qp in
    k.matrix.withUnsafeBufferPointer { kp in
      v.matrix.withUnsafeBufferPointer { vp in
        out.withUnsafeMutableBufferPointer { op in
          let qs = SendableConstPointer(qp.baseAddress! + q.columnOffset)
          let ks = SendableConstPointer(kp.baseAddress! + k.columnOffset)
          let vs = SendableConstPointer(vp.baseAddress! + v.columnOffset)
          let os = SendablePointer(op.baseAddress!)
          let next = Atomic<Int>(0)
          let workers = max(1, min(threads, itemCount))
          let body: @Sendable (Int) -> Void = { _ in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: attentionQueryBlock * sequenceLength)
            defer { scratch.deallocate() }
            while true {
              let item = next.wrappingAdd(1, ordering: .relaxed).oldValue
              if item >= itemCount { break }
              // Largest blocks first: item → (block from the end, sequence, head).
              let block = blocks - 1 - item / (sequences * heads)
              let sequence = (item / heads) % sequences
              let head = item % heads
              let kvHead = head / group
              let first = block * attentionQueryBlock
              let end = min(sequenceLength, first + attentionQueryBlock)
              let rows = end - first
              let base = sequence * sequenceLength
              // The first key any row of the block sees, and how many keys the block spans.
              let lo = window.map { max(0, first - $0 + 1) } ?? 0
              let width = end - lo
              // S = scale·Q_h[first..<end]·K_g[lo..<end]ᵀ, [rows × width] with row stride `width`.
              gemm(
                transposeA: false, transposeB: true, m: rows, n: width, k: d, alpha: scale,
                a: qs.base + (base + first) * ldq + head * d, lda: ldq,
                b: ks.base + (base + lo) * ldk + kvHead * d, ldb: ldk,
                beta: 0, c: scratch, ldc: width, threads: 1)
              for r in 0..<rows {
                // Row r (query first + r) sees keys from..<first + r + 1 of the block's span.
                let from = window.map { max(0, first + r - $0 + 1) - lo } ?? 0
                let row = scratch + r * width
                softmaxCausalRow(row + from, visible: first + r + 1 - lo - from, width: width - from)
                for j in 0..<from { row[j] = 0 }
              }
              // O_h[first..<end] = P·V_g[lo..<end].
              gemm(
                transposeA: false, transposeB: false, m: rows, n: d, k: width, alpha: 1,
                a: scratch, lda: width, b: vs.base + (base + lo) * ldv + kvHead * d, ldb: ldv,
                beta: 0, c: os.base + (base + first) * ldo + head * d, ldc: ldo, threads: 1)
            }
          }
          if workers == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: body) }
        }
      }
    }
  }
  return out
}

/// One row of the causal softmax, in place: the first `visible` entries become
/// exp(sⱼ − m)/Σ exp(sⱼ' − m) (m their maximum), the rest of the `width` entries exact zeros (so
/// that P·V adds nothing for keys after the query).
@inline(__always)
func softmaxCausalRow(_ s: UnsafeMutablePointer<Float>, visible n: Int, width: Int) {
  var m = -Float.infinity
  for j in 0..<n { m = max(m, s[j]) }
  let mv = SIMD8<Float>(repeating: m)
  var acc = SIMD8<Float>(repeating: 0)
  var j = 0
  while j + 8 <= n {
    let e = fastExp(UnsafeRawPointer(s + j).loadUnaligned(as: SIMD8<Float>.self) - mv)
    UnsafeMutableRawPointer(s + j).storeBytes(of: e, as: SIMD8<Float>.self)
    acc += e
    j += 8
  }
  if j < n {
    // The tail as one padded vector; the padding lanes are neither stored nor summed.
    let e = fastExp(loadPartial(s + j, n - j, fill: m) - mv)
    for l in 0..<(n - j) {
      s[j + l] = e[l]
      acc[l] += e[l]
    }
  }
  let inverse = 1 / acc.sum()
  for j in 0..<n { s[j] *= inverse }
  for j in n..<width { s[j] = 0 }
}
