import Foundation
import PruneKernels
import PruneModels
import PruneTestSupport
import Testing

/// The forward pass of the real SmolLM2-135M-Instruct (Q4_1 GGUF, scripts/fetch-model.sh) against
/// transformers' float32 logits of the same dequantised weights (Fixtures/golden/smollm2-golden.json:
/// 128 tokens, the first 16 logits, the maximum and the argmax at positions 0, 1, 63, 127, and the
/// mean NLL). Without the model file the suite is reported as skipped, never as passed.
///
/// Tolerance: the bound of the tiny models, |Δz| ≤ c·√D·u·max|z|, with c = 2·√(2·(2L + 1)) for
/// L = 30 blocks (≈ 22; c = 8 for L = 2 is the same formula rounded up) and D = 576:
/// ≈ 22 · 24 · 6.0e−8 · 29 ≈ 9.2e−4 at the largest logit. Measured: max |Δlogit| = 2.8e−5, 1.0e−5,
/// 4.2e−5 and 1.9e−5 at positions 0, 1, 63, 127 (c = 0.68, 0.25, 1.01, 0.46: a margin of 22×), and
/// |ΔNLL| = 1.8e−6 against a bound of 1.8e−3.
@Suite(.enabled(if: ModelFiles.hasSmolLM2, "SmolLM2 GGUF not fetched: run scripts/fetch-model.sh"))
struct ForwardSmolLM2Tests {
  struct Golden {
    let ids: [Int]
    let positions: [Int: (first16: [Float], max: Float, argmax: Int)]
    let meanNLL: Double
  }

  static func golden() throws -> Golden {
    let data = try Data(contentsOf: goldenFolder.appendingPathComponent("smollm2-golden.json"))
    let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let ids = try #require(json["logits_input_ids"] as? [NSNumber]).map(\.intValue)
    var positions: [Int: (first16: [Float], max: Float, argmax: Int)] = [:]
    for (key, value) in try #require(json["logits"] as? [String: [String: Any]]) {
      positions[try #require(Int(key))] = (
        try #require(value["first16"] as? [NSNumber]).map(\.floatValue),
        try #require(value["max"] as? NSNumber).floatValue, try #require(value["argmax"] as? NSNumber).intValue
      )
    }
    return Golden(ids: ids, positions: positions, meanNLL: try #require(json["mean_nll_128"] as? NSNumber).doubleValue)
  }

  static func model() throws -> TransformerLM {
    let gguf = try GGUFFile(contentsOf: ModelFiles.smolLM2)
    return try TransformerLM(config: try ForwardConfig(.llama(try gguf.llamaConfig())), weights: gguf)
  }

  static func tolerance(_ config: ForwardConfig, scale: Double) -> Double {
    let c = 2 * (2 * (2 * Double(config.layerCount) + 1)).squareRoot()
    return c * Double(config.hiddenSize).squareRoot() * 0x1p-24 * scale
  }

  @Test func logitsMatchTransformers() throws {
    let golden = try Self.golden()
    let model = try Self.model()
    #expect(model.config.layerCount == 30 && model.config.keyValueHeadCount == 3 && model.config.ropeTheta == 100_000)
    let logits = try model.forward(golden.ids)
    let scale = golden.positions.values.map { Double(abs($0.max)) }.max()!
    let tolerance = Self.tolerance(model.config, scale: scale)
    for (p, reference) in golden.positions.sorted(by: { $0.key < $1.key }) {
      let row = logits.row(p)
      var worst = 0.0
      for (j, r) in reference.first16.enumerated() { worst = max(worst, abs(Double(row[j]) - Double(r))) }
      let top = row.indices.max { (row[$0], $1) < (row[$1], $0) }!
      worst = max(worst, abs(Double(row[top]) - Double(reference.max)))
      #expect(worst <= tolerance, "position \(p): max |Δlogit| \(worst) > \(tolerance)")
      #expect(top == reference.argmax, "position \(p): argmax \(top), transformers \(reference.argmax)")
    }
  }

  /// |ΔNLL| ≤ 2·max|Δlogit| (log-sum-exp and z_y are 1-Lipschitz in the max norm).
  @Test func meanNLLMatchesTransformers() throws {
    let golden = try Self.golden()
    let model = try Self.model()
    let nll = try model.negativeLogLikelihood(golden.ids)
    #expect(nll.count == 127)
    let scale = golden.positions.values.map { Double(abs($0.max)) }.max()!
    let tolerance = 2 * Self.tolerance(model.config, scale: scale)
    #expect(abs(nll.mean - golden.meanNLL) <= tolerance, "mean NLL \(nll.mean) vs \(golden.meanNLL)")
  }
}
