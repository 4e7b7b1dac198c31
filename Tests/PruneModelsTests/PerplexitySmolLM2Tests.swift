import Foundation
import PruneModels
import PruneTestSupport
import Testing

/// Dense SmolLM2-135M-Instruct (Q4_1 GGUF, scripts/fetch-model.sh) on the embedded corpus under
/// the austen-quick protocol. Without the model file the suite is reported as skipped, never as
/// passed.
@Suite(.enabled(if: ModelFiles.hasSmolLM2, "SmolLM2 GGUF not fetched: run scripts/fetch-model.sh"))
struct PerplexitySmolLM2Tests {
  /// austen-quick evaluation: the first 16 windows of 1024 tokens of prideprejudice.txt.
  /// transformers (float32) measured 23.1508; the issue asks for 23.15 ± 0.01. Our float32 forward
  /// differs from transformers' by at most ~4e-5 per logit (ForwardSmolLM2Tests), so the mean NLL
  /// moves by at most ~1e-4 and the perplexity by ~23 · 1e-4 ≈ 2e-3: well inside ± 0.01.
  /// Measured: 23.151158631787. The whole protocol runs here (33 s on 2 cores, the longest test of
  /// the suite); austen-std (81 × 2048 tokens, 24.9147, about 7 min) is left to `prune eval`.
  @Test func austenQuickDensePerplexity() throws {
    let loaded = try LoadedModel(contentsOf: ModelFiles.smolLM2)
    #expect(loaded.format == .gguf)
    let spec = EvaluationProtocol.austenQuick.evaluation
    let tokens = Perplexity.tokenize(try spec.text(in: try Corpus()), with: loaded.tokenizer)
    #expect(tokens.count == 167_892)  // transformers' count for prideprejudice.txt
    let report = try Perplexity.evaluate(
      loaded.model, tokens: tokens, sequenceLength: spec.sequenceLength, windows: spec.windows)
    #expect(report.windows == 16 && report.tokens == 16_368 && report.seqlen == 1024)
    #expect(abs(report.perplexity - 23.15) <= 0.01, "perplexity \(report.perplexity)")
  }
}
