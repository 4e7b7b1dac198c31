import Foundation
import PruneKernels
import PruneOracle
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// Errors cross module lines as typed values: the outer error adds its context (block, layer,
/// file, protocol) to the inner `message` and keeps the inner `hint`, or gives its own when the
/// inner error has none. The description is put together once (`PruneKitError`): one line, one
/// `Hint:`, one full stop between the message and the hint.
@Suite struct ErrorWrappingTests {
  static let cholesky = CholeskyError.notPositiveDefinite(column: 3, pivot: -1, attempts: 9, lastDamping: 0.1)

  @Test func aLayerErrorNamesTheBlockTheLayerAndTheMethodAndKeepsTheHint() {
    let error = ModelPruningError.layer(
      block: 2, name: "model.layers.2.mlp.up_proj",
      .method(.sparsegpt, .factorisationFailed(method: "sparsegpt", Self.cholesky)))
    #expect(
      error.message == "layer model.layers.2.mlp.up_proj: block 2, sparsegpt: sparsegpt: \(Self.cholesky.message)")
    #expect(error.hint == Self.cholesky.hint)
    #expect(error.description == "\(error.message). Hint: \(Self.cholesky.hint!)")
  }

  /// An inner error without a hint gets the wrapper's, and the line keeps one full stop.
  @Test func anInnerErrorWithoutAHintGetsTheWrappersHint() {
    let inner = LayerProblemError.negativeTokenCount(-1)
    #expect(inner.hint == nil && inner.description == "layer problem: token count -1 is negative.")
    let layer = ModelPruningError.layer(block: 0, name: "q", .problem(inner))
    #expect(
      layer.description
        == "layer q: block 0: layer problem: token count -1 is negative. Hint: check the model's weights and the calibration text."
    )
    let job = LayerJobError.pruning(.invalidProblem(inner))
    #expect(job.description == "layer problem: token count -1 is negative. Hint: see 'prune help layer'.")
    let file = LayerProblemFileError.problem(path: "/p.safetensors", inner)
    #expect(
      file.description
        == "/p.safetensors: layer problem: token count -1 is negative. Hint: check the producer of the file.")
    for e in [layer.description, job.description, file.description] {
      #expect(e.components(separatedBy: "Hint:").count == 2 && !e.contains("..") && !e.contains("\n"), "\(e)")
    }
  }

  /// The evaluation names its protocol in place of the "perplexity: " of the bare error.
  @Test func anEvaluationErrorNamesTheProtocol() {
    let inner = PerplexityError.textTooShort(tokens: 5, sequenceLength: 8, windows: 2)
    #expect(inner.description.hasPrefix("perplexity: the text has 5 tokens"))
    let error = ModelJobError.evaluation(protocolName: "austen-quick", inner)
    #expect(
      error.description
        == "evaluating the pruned model on austen-quick: the text has 5 tokens, but 2 windows of 8 tokens need 16. Hint: \(inner.hint!)"
    )
  }

  /// A reader's error reaches the user through a model load unchanged, and through the vectors'
  /// real cases with what to do there.
  @Test func aReaderErrorKeepsItsWordsThroughTheLayers() {
    let inner = SafetensorsError.truncated(path: "/m/model.safetensors", size: 3)
    let load = ModelLoadError.file(ModelFileError(inner))
    #expect(load == .file(.safetensors(inner)))
    #expect(load.description == inner.description)
    let vectors = VectorsError.model(load)
    #expect(
      vectors.description
        == "real cases: \(inner.message). Hint: check --model (scripts/fetch-model.sh fetches SmolLM2), or pass --no-real."
    )
    let export = ModelJobError.export(.source(path: "/m", load))
    #expect(export.description == "export: cannot read the source model /m: \(inner.message). Hint: \(inner.hint!)")
  }
}
