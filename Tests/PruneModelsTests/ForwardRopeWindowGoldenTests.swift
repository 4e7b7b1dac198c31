import Foundation
import PruneKernels
import PruneTestSupport
import Testing

@testable import PruneModels

/// RoPE scaling (linear, llama3, yarn) and Mistral's sliding window against transformers: four
/// tiny random models (Fixtures/golden/llama-rope-*, mistral-window; scripts/make-rope-golden.py),
/// and the properties of the scaled frequencies and the windowed attention beside their naive
/// references.
@Suite("Forward pass: RoPE scaling and sliding window")
struct ForwardRopeWindowGoldenTests {
  static let models = ["llama-rope-linear", "llama-rope-llama3", "llama-rope-yarn", "mistral-window"]

  /// The bound of ForwardGoldenTests (c·√D·u·max|z|, c = `logitToleranceFactor`): these models run
  /// the same float32 function with the same number of stages (2 blocks); the scaled frequencies
  /// are computed with the same Float operations as transformers' (so their angles agree to an ulp
  /// or so), and YaRN's attention factor a ≈ 1.14 multiplies cos and sin once more (one rounding).
  /// Their weights are ten times larger than transformers' default (sharp attention, so that a
  /// wrong frequency moves the logits), which the bound follows through max|z|. Measured: max |Δ|
  /// = 4.4e−6 (linear), 2.5e−6 (llama3), 2.6e−6 (yarn), 2.6e−6 (window), i.e. c = 2.6, 1.7, 1.8 and
  /// 1.6: a margin of 3× or more. Leaving out the scaling or the window moves the logits by more
  /// than 0.1 (`scalingAndWindowMatter`), ten thousand times these differences.
  static func tolerance(_ golden: GoldenModel) -> Double {
    let scale = golden.logits.values.flatMap { $0 }.map { abs(Double($0)) }.max() ?? 0
    return logitToleranceFactor * Double(golden.model.config.hiddenSize).squareRoot() * 0x1p-24 * scale
  }

  static func worstDifference(_ logits: Matrix<Float>, _ golden: GoldenModel) -> Double {
    var worst = 0.0
    for (position, reference) in golden.logits {
      for (j, r) in reference.enumerated() { worst = max(worst, abs(Double(logits[position, j]) - Double(r))) }
    }
    return worst
  }

  @Test(arguments: models) func logitsMatchTransformers(name: String) throws {
    let golden = try GoldenModel(name)
    let logits = try golden.model.forward(golden.inputIDs)
    let worst = Self.worstDifference(logits, golden)
    #expect(worst <= Self.tolerance(golden), "\(name): max |Δlogit| \(worst) > \(Self.tolerance(golden))")
    // The mean NLL over all 47 predictions (every position, not only the stored ones): |ΔNLL| ≤
    // 2·max|Δlogit| as in ForwardGoldenTests.
    let nll = try golden.model.negativeLogLikelihood(golden.inputIDs)
    #expect(abs(nll.mean - golden.meanNLL) <= 2 * Self.tolerance(golden) + 0x1p-24 * golden.meanNLL)
  }

  /// Each fixture tests what it is named for: the same weights without the scaling (plain RoPE) or
  /// without the window give logits more than 0.1 away from transformers' (about 8000 times the
  /// tolerance), so a forward pass that ignored the key could not pass `logitsMatchTransformers`.
  @Test(arguments: models) func scalingAndWindowMatter(name: String) throws {
    let golden = try GoldenModel(name)
    var plain = golden.model.config
    #expect(plain.ropeScaling != nil || plain.slidingWindow != nil, "\(name) has neither scaling nor window")
    plain.ropeScaling = nil
    plain.slidingWindow = nil
    let folder = goldenFolder.appendingPathComponent(name)
    let model = try TransformerLM(
      config: plain, weights: try SafetensorsFile(contentsOf: folder.appendingPathComponent("model.safetensors")))
    let worst = Self.worstDifference(try model.forward(golden.inputIDs), golden)
    #expect(worst > 0.1, "\(name): without its scaling or window the logits move only \(worst)")
  }

  @Test func fixturesParseAsIntended() throws {
    #expect(try GoldenModel("llama-rope-linear").model.config.ropeScaling == .linear(factor: 4))
    #expect(
      try GoldenModel("llama-rope-llama3").model.config.ropeScaling
        == .llama3(.init(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64)))
    let yarn = try GoldenModel("llama-rope-yarn").model.config.ropeScaling
    #expect(
      yarn
        == .yarn(
          .init(
            factor: 4, originalMaxPositions: 64, betaFast: 32, betaSlow: 1, attentionFactor: 0.1 * log(4.0) + 1,
            truncate: true)))
    let mistral = try GoldenModel("mistral-window").model.config
    #expect(mistral.slidingWindow == SlidingWindow(size: 16, layers: 0..<2) && mistral.ropeScaling == nil)
  }

  /// The config.json the Hugging Face export writes for a GGUF carries the RoPE scaling its
  /// metadata gave (SmolLM2's metadata with a yarn scaling put in), so the folder runs as the GGUF.
  @Test(.enabled(if: ModelFiles.hasSmolLM2, "needs the SmolLM2 GGUF (scripts/fetch-model.sh)"))
  func ggufExportWritesTheScaling() throws {
    let gguf = try GGUFFile(contentsOf: ModelFiles.smolLM2)
    var llama = try gguf.llamaConfig()
    #expect(llama.ropeScaling == nil)
    llama.ropeScaling = RopeScaling(ropeType: "yarn", factor: 4, originalMaxPositionEmbeddings: 2048)
    let exported = try #require(try GGUFHuggingFaceFiles.files(gguf, config: llama).first { $0.name == "config.json" })
    let forward = try ForwardConfig(data: exported.data, source: "config.json")
    #expect(forward == (try ForwardConfig(.llama(llama))))
    #expect(forward.ropeScaling == .yarn(.init(factor: 4, originalMaxPositions: 2048)))
  }

  // MARK: - Frequencies

  static let headDim = 16
  static let theta = 10_000.0
  static var powers: [Float] {
    (0..<(headDim / 2)).map { Float(pow(Double(Float(theta)), Double(Float(2 * $0) / Float(headDim)))) }
  }
  static func frequencies(_ scaling: RopeFrequencyScaling?) -> (inverseFrequency: [Float], attentionFactor: Float) {
    RotaryTable.frequencies(powers: powers, headDim: headDim, theta: theta, scaling: scaling)
  }

  /// No scaling: the table is the one plain RoPE always had, bit for bit (SmolLM2 unchanged).
  @Test func noScalingIsPlainRope() {
    let plain = RotaryTable(headDim: 64, theta: 100_000, positions: 300)
    let omega = (0..<32).map { 1 / Float(pow(Double(Float(100_000.0)), Double(Float(2 * $0) / Float(64)))) }
    for p in [0, 1, 17, 299] {
      for i in 0..<32 {
        let angle = Double(Float(p) * omega[i])
        #expect(plain.cos[p * 32 + i] == Float(cos(angle)) && plain.sin[p * 32 + i] == Float(sin(angle)))
      }
    }
  }

  @Test func linearDividesEveryFrequency() {
    let omega = Self.frequencies(nil).inverseFrequency
    let (scaled, a) = Self.frequencies(.linear(factor: 4))
    #expect(scaled == omega.map { $0 / 4 } && a == 1)
  }

  /// llama3 bands (L = 64, low 1, high 4: wavelengths below 16 kept, above 64 divided by s = 8,
  /// between blended): the kept and divided ones exactly, the blended ones strictly between.
  @Test func llama3KeepsFastDividesSlowAndBlendsBetween() {
    let omega = Self.frequencies(nil).inverseFrequency
    let p = RopeFrequencyScaling.Llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64)
    let (scaled, a) = Self.frequencies(.llama3(p))
    #expect(a == 1)
    var bands = [0, 0, 0]
    for (w, s) in zip(omega, scaled) {
      let wavelength = 2 * Double.pi / Double(w)
      if wavelength < 16 {
        #expect(s == w)
        bands[0] += 1
      } else if wavelength > 64 {
        #expect(s == w / 8)
        bands[2] += 1
      } else {
        #expect(s < w && s > w / 8, "blended ω' \(s) not between ω/8 and ω = \(w)")
        bands[1] += 1
      }
    }
    #expect(bands.allSatisfy { $0 > 0 }, "every band used: \(bands)")
  }

  /// YaRN (d = 16, θ = 10⁴, L = 64, β 32/1): the ramp runs from dimension 0 to ⌈2.02⌉ = 3, so
  /// frequency 0 is kept, frequencies from 3 on are interpolated (ω/s), 1 and 2 blended; the
  /// attention factor is 0.1·ln 4 + 1.
  @Test func yarnRampsFromKeptToInterpolated() {
    let omega = Self.frequencies(nil).inverseFrequency
    let p = RopeFrequencyScaling.Yarn(factor: 4, originalMaxPositions: 64)
    #expect(p.betaFast == 32 && p.betaSlow == 1 && p.truncate)
    let (scaled, a) = Self.frequencies(.yarn(p))
    #expect(a == Float(0.1 * log(4.0) + 1))
    #expect(scaled[0] == omega[0])
    for i in 1...2 { #expect(scaled[i] < omega[i] && scaled[i] > 1 / (4 * Self.powers[i]), "dimension \(i)") }
    for i in 3..<8 { #expect(scaled[i] == 1 / (4 * Self.powers[i]), "dimension \(i)") }
    // attention_factor given wins; mscale/mscale_all_dim give the ratio of the two corrections.
    #expect(RopeFrequencyScaling.Yarn(factor: 4, originalMaxPositions: 64, attentionFactor: 0.5).attentionFactor == 0.5)
    let deepSeek = RopeFrequencyScaling.Yarn(factor: 40, originalMaxPositions: 4096, mscale: 1, mscaleAllDim: 0.707)
    #expect(abs(deepSeek.attentionFactor - (0.1 * log(40.0) + 1) / (0.0707 * log(40.0) + 1)) < 1e-15)
  }

  // MARK: - Windowed attention

  /// The attention of one sequence computed naively in Double: for query i, softmax over the keys
  /// j ∈ [i − W + 1, i] ∩ [0, i] of scale·q_i·k_j, then the weighted sum of v_j.
  static func naiveAttention(
    q: Matrix<Float>, k: Matrix<Float>, v: Matrix<Float>, heads: Int, keyValueHeads: Int, d: Int, window: Int?,
    scale: Float
  ) -> Matrix<Double> {
    let length = q.rows
    var out = Matrix<Double>(rows: length, columns: heads * d)
    for h in 0..<heads {
      let g = h / (heads / keyValueHeads)
      for i in 0..<length {
        let keys = max(0, i - (window ?? length) + 1)...i
        var scores: [Double] = []
        for j in keys {
          var s = 0.0
          for c in 0..<d { s += Double(q[i, h * d + c]) * Double(k[j, g * d + c]) }
          scores.append(Double(scale) * s)
        }
        let m = scores.max()!
        let e = scores.map { exp($0 - m) }
        let total = e.reduce(0, +)
        for c in 0..<d {
          var acc = 0.0
          for (n, j) in keys.enumerated() { acc += e[n] / total * Double(v[j, g * d + c]) }
          out[i, h * d + c] = acc
        }
      }
    }
    return out
  }

  /// Windows of 1, 5, 127, 128, 129 and 200 keys over a 300-token sequence (three query blocks of
  /// 128, so a window's start falls inside, on and across block boundaries) agree with the naive
  /// Double reference. Tolerance 1e-5 on outputs of size ~1: softmax weights from the 2-ulp SIMD
  /// exp and a d = 8 dot product (a few u each), sums of at most 300 terms in Float (≤ 300·u ≈
  /// 2e-5 worst case, far less in practice: the errors are random).
  @Test func windowedAttentionMatchesTheNaiveReference() {
    var rng = SplitMix64(seed: 16)
    let (length, heads, kvHeads, d) = (300, 4, 2, 8)
    let q = Matrix<Float>.random(rows: length, columns: heads * d, using: &rng)
    let k = Matrix<Float>.random(rows: length, columns: kvHeads * d, using: &rng)
    let v = Matrix<Float>.random(rows: length, columns: kvHeads * d, using: &rng)
    for window in [1, 5, 127, 128, 129, 200] {
      let got = causalAttention(
        q: HeadOperand(matrix: q, columnOffset: 0), k: HeadOperand(matrix: k, columnOffset: 0),
        v: HeadOperand(matrix: v, columnOffset: 0), heads: heads, keyValueHeads: kvHeads, headDim: d,
        sequenceLength: length, scale: 0.5, window: window)
      let reference = Self.naiveAttention(
        q: q, k: k, v: v, heads: heads, keyValueHeads: kvHeads, d: d, window: window, scale: 0.5)
      var worst = 0.0
      for i in 0..<length {
        for c in 0..<(heads * d) { worst = max(worst, abs(Double(got[i, c]) - reference[i, c])) }
      }
      #expect(worst <= 1e-5, "window \(window): max |Δ| \(worst)")
      // A window of one key: each query reads its own value row, exactly.
      if window == 1 {
        for i in [0, 150, 299] { #expect(got[i, 0] == v[i, 0] && got[i, 2 * d] == v[i, d]) }
      }
    }
  }

  /// A window at least as long as the sequence is full causal attention, bit for bit; and the
  /// windowed result is the same at any thread count (several sequences laid end to end).
  @Test func wideWindowIsCausalAndThreadCountDoesNotMatter() {
    var rng = SplitMix64(seed: 17)
    let (length, sequences, heads, d) = (260, 2, 2, 16)
    let q = Matrix<Float>.random(rows: length * sequences, columns: heads * d, using: &rng)
    let k = Matrix<Float>.random(rows: length * sequences, columns: heads * d, using: &rng)
    let v = Matrix<Float>.random(rows: length * sequences, columns: heads * d, using: &rng)
    func run(_ window: Int?, threads: Int) -> Matrix<Float> {
      causalAttention(
        q: HeadOperand(matrix: q, columnOffset: 0), k: HeadOperand(matrix: k, columnOffset: 0),
        v: HeadOperand(matrix: v, columnOffset: 0), heads: heads, keyValueHeads: heads, headDim: d,
        sequenceLength: length, scale: 0.25, window: window, threads: threads)
    }
    let full = run(nil, threads: 2)
    #expect(run(length, threads: 2) == full && run(10 * length, threads: 1) == full)
    let windowed = run(40, threads: 1)
    #expect(windowed != full)
    #expect(run(40, threads: 2) == windowed && run(40, threads: 5) == windowed)
  }
}
