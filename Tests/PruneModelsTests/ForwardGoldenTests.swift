import Foundation
import PruneKernels
import PruneModels
import Testing

/// Fixtures/golden, found from this file's path (Tests/PruneModelsTests/ → package root).
let goldenFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent().appendingPathComponent("Fixtures/golden")

/// A tiny golden model: its forward model and transformers' reference output.
struct GoldenModel {
  let name: String
  let model: TransformerLM
  let inputIDs: [Int]
  /// Reference float32 logits at a few positions.
  let logits: [Int: [Float]]
  let meanNLL: Double

  init(_ name: String) throws {
    self.name = name
    let folder = goldenFolder.appendingPathComponent(name)
    let config = try ForwardConfig(contentsOf: folder.appendingPathComponent("config.json"))
    model = try TransformerLM(
      config: config, weights: try SafetensorsFile(contentsOf: folder.appendingPathComponent("model.safetensors")))
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("reference_logits.json")))
      as! [String: Any]
    inputIDs = (json["input_ids"] as! [NSNumber]).map(\.intValue)
    var logits: [Int: [Float]] = [:]
    for (key, value) in json["logits"] as! [String: Any] {
      logits[Int(key)!] = (value as! [NSNumber]).map(\.floatValue)
    }
    self.logits = logits
    meanNLL = (json["mean_nll"] as! NSNumber).doubleValue
  }
}

@Suite struct ForwardGoldenTests {
  static let models = ["llama-tiny", "opt-tiny", "gpt2-tiny"]

  @Test(arguments: models) func logitsMatchTransformers(name: String) throws {
    let golden = try GoldenModel(name)
    let logits = try golden.model.forward(golden.inputIDs)
    #expect(logits.rows == golden.inputIDs.count && logits.columns == golden.model.config.vocabSize)
    var worst = 0.0, scale = 0.0
    for (position, reference) in golden.logits.sorted(by: { $0.key < $1.key }) {
      for (j, r) in reference.enumerated() {
        worst = max(worst, abs(Double(logits[position, j]) - Double(r)))
        scale = max(scale, abs(Double(r)))
      }
    }
    let nll = try golden.model.negativeLogLikelihood(golden.inputIDs)
    print("\(name): max |Δlogit| = \(worst), max |logit| = \(scale), nll \(nll.mean) vs \(golden.meanNLL) Δ \(nll.mean - golden.meanNLL)")
  }
}
