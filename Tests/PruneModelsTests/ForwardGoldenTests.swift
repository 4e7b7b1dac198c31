import Foundation
import PruneKernels
import PruneModels
import Testing

/// Fixtures/golden, found from this file's path (Tests/PruneModelsTests/ → package root).
let goldenFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent().appendingPathComponent("Fixtures/golden")

/// A tiny golden model (random weights, made with transformers 5.23): the model and transformers'
/// float32 output for a fixed 48-token input.
struct GoldenModel {
  let name: String
  let model: TransformerLM
  let inputIDs: [Int]
  /// Reference logits at a few positions.
  let logits: [Int: [Float]]
  /// Reference mean next-token NLL over the 47 predictions.
  let meanNLL: Double

  init(_ name: String) throws {
    self.name = name
    let folder = goldenFolder.appendingPathComponent(name)
    let config = try ForwardConfig(contentsOf: folder.appendingPathComponent("config.json"))
    model = try TransformerLM(
      config: config, weights: try SafetensorsFile(contentsOf: folder.appendingPathComponent("model.safetensors")))
    let data = try Data(contentsOf: folder.appendingPathComponent("reference_logits.json"))
    let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    inputIDs = try #require(json["input_ids"] as? [NSNumber]).map(\.intValue)
    var logits: [Int: [Float]] = [:]
    for (key, value) in try #require(json["logits"] as? [String: Any]) {
      logits[try #require(Int(key))] = try #require(value as? [NSNumber]).map(\.floatValue)
    }
    self.logits = logits
    meanNLL = try #require(json["mean_nll"] as? NSNumber).doubleValue
  }
}

/// The tolerance on |our logit − transformers' logit| for a float32 forward:
///
///   max |Δ| ≤ c·√D·u·max|z|,   u = 2⁻²⁴, D = hidden size, c = 8.
///
/// Both implementations evaluate the same float32 function with different summation orders (our
/// blocked GEMM vs MKL/oneDNN, our SIMD exp vs torch's), so each logit carries two independent
/// rounding-error sums. Under the probabilistic rounding model (Higham & Mary, SISC 2019) a
/// length-k dot product errs by about √k·u relative to its terms; the logit is a length-D dot
/// product whose input already carries the errors of 2L + 1 earlier stages (L blocks × attention
/// and MLP, plus the final norm), which are O(1)-conditioned in these random-init models and add in
/// quadrature: √(2·(2L + 1)) ≈ 3.2 for L = 2, doubled for the tail of the distribution → c = 8.
/// Measured on the three golden models: max |Δ| = 3.6e−7 (LLaMA), 3.0e−7 (OPT), 2.1e−7 (GPT-2),
/// i.e. c·√D·u·max|z| with c = 0.54, 0.87 and 0.60: the bound has a margin of 9× or more, and it
/// is still ~100× below any real bug (a wrong RoPE pairing or position offset moves logits by
/// 1e−2 or more at these scales).
let logitToleranceFactor = 8.0

@Suite("Forward pass: tiny golden models")
struct ForwardGoldenTests {
  static let models = ["llama-tiny", "opt-tiny", "gpt2-tiny"]

  @Test(arguments: models) func logitsMatchTransformers(name: String) throws {
    let golden = try GoldenModel(name)
    let logits = try golden.model.forward(golden.inputIDs)
    #expect(logits.rows == golden.inputIDs.count && logits.columns == golden.model.config.vocabSize)
    let scale = golden.logits.values.flatMap { $0 }.map { abs(Double($0)) }.max() ?? 0
    let tolerance = logitToleranceFactor * Double(golden.model.config.hiddenSize).squareRoot() * 0x1p-24 * scale
    for (position, reference) in golden.logits.sorted(by: { $0.key < $1.key }) {
      var worst = 0.0
      for (j, r) in reference.enumerated() { worst = max(worst, abs(Double(logits[position, j]) - Double(r))) }
      #expect(worst <= tolerance, "\(name) position \(position): max |Δlogit| \(worst) > \(tolerance)")
    }
  }

  /// |ΔNLL| ≤ 2·max|Δlogit|: log Σ exp and z_y are both 1-Lipschitz in the max norm of the logits;
  /// the reference mean was rounded to float32 once more (u·NLL).
  @Test(arguments: models) func meanNLLMatchesTransformers(name: String) throws {
    let golden = try GoldenModel(name)
    let nll = try golden.model.negativeLogLikelihood(golden.inputIDs)
    #expect(nll.count == golden.inputIDs.count - 1)
    let scale = golden.logits.values.flatMap { $0 }.map { abs(Double($0)) }.max() ?? 0
    let logitTolerance = logitToleranceFactor * Double(golden.model.config.hiddenSize).squareRoot() * 0x1p-24 * scale
    let tolerance = 2 * logitTolerance + 0x1p-24 * golden.meanNLL
    #expect(abs(nll.mean - golden.meanNLL) <= tolerance, "\(name): mean NLL \(nll.mean) vs \(golden.meanNLL)")
    // The same NLL from the full logits matrix.
    let logits = try golden.model.forward(golden.inputIDs)
    let direct = negativeLogLikelihood(
      logits: logits.submatrix(rows: 0..<(logits.rows - 1), columns: 0..<logits.columns),
      targets: Array(golden.inputIDs.dropFirst()))
    #expect(direct == nll, "\(name): chunked NLL \(nll) vs full-logits NLL \(direct)")
  }

  @Test(arguments: models) func blockByBlockEqualsFullRun(name: String) throws {
    let golden = try GoldenModel(name)
    let model = golden.model
    var h = try model.embed(golden.inputIDs)
    var captured = 0
    for l in 0..<model.blockCount {
      h = model.runBlock(l, hidden: h, capture: { _ in captured += 1 })
    }
    #expect(captured > 0)
    #expect(model.logits(h) == (try model.forward(golden.inputIDs)), "\(name): block by block ≠ full run")
  }

  /// Every linear layer's input is captured exactly once, in order, as [tokens × in].
  @Test(arguments: models) func capturedInputsHaveLayerShapes(name: String) throws {
    let golden = try GoldenModel(name)
    let model = golden.model
    var h = try model.embed(golden.inputIDs)
    for l in 0..<model.blockCount {
      var names: [String] = []
      var inputs: [LinearInput] = []
      h = try model.runBlock(l, hidden: h) { inputs.append($0) }
      for input in inputs {
        names += input.layers
        for layer in input.layers {
          let w = try model.linearWeights(layer).weight
          #expect(
            input.input.rows == golden.inputIDs.count && input.input.columns == w.columns,
            "\(name) \(layer): input \(input.input.shapeDescription) for weight \(w.shapeDescription)")
        }
      }
      #expect(names == model.linearLayerNames(block: l), "\(name) block \(l): captured \(names)")
    }
    let expectedGroups: [String: [Int]] = [
      "llama-tiny": [3, 1, 2, 1], "opt-tiny": [3, 1, 1, 1], "gpt2-tiny": [1, 1, 1, 1],
    ]
    var groups: [Int] = []
    _ = try model.runBlock(0, hidden: try model.embed(golden.inputIDs)) { groups.append($0.layers.count) }
    #expect(groups == expectedGroups[name])
  }

  /// In these pre-LN blocks the two residual branches end in the attention output projection and
  /// the MLP's last layer, so out = (h + X_o·W_oᵀ + b_o) + X_down·W_downᵀ + b_down, computed with the
  /// same GEMM, must equal the block output bit for bit: the captured inputs are exactly what
  /// those layers consumed.
  @Test(arguments: models) func capturedInputsReconstructTheBlockOutput(name: String) throws {
    let golden = try GoldenModel(name)
    let model = golden.model
    let h = try model.embed(golden.inputIDs)
    var inputs: [String: Matrix<Float>] = [:]
    let out = try model.runBlock(0, hidden: h) { c in for l in c.layers { inputs[l] = c.input } }
    let names = model.linearLayerNames(block: 0)
    let attentionOut = names[names.count == 4 ? 1 : 3]  // o_proj, out_proj or attn.c_proj
    let mlpOut = names.last!
    func apply(_ layer: String) throws -> Matrix<Float> {
      let w = try model.linearWeights(layer)
      var y = Matrix<Float>(rows: h.rows, columns: w.weight.rows)
      if let b = w.bias { for i in 0..<y.rows { y.setRow(i, to: b) } }
      gemm(try #require(inputs[layer]), w.weight, into: &y, transposeB: true, beta: w.bias == nil ? 0 : 1)
      return y
    }
    var expected = h
    let a = try apply(attentionOut)
    let m = try apply(mlpOut)
    for i in 0..<h.rows { for j in 0..<h.columns { expected[i, j] += a[i, j] } }
    for i in 0..<h.rows { for j in 0..<h.columns { expected[i, j] += m[i, j] } }
    #expect(out == expected, "\(name): block 0 output ≠ h + attention branch + MLP branch from the captured inputs")
  }
}
