import Foundation
import PruneKernels
import PruneModels
import PruneTestSupport
import Testing

/// Perplexity under the protocols' rules, on the tiny golden LLaMA (vocab 256, 128 positions).
/// The expected values are formed from `TransformerLM.negativeLogLikelihood` of each window on its
/// own, so the checks are exact: the evaluator may not carry context across windows, overlap them,
/// use the trailing partial window, or add anything (a BOS) to them.
@Suite("Perplexity")
struct PerplexityTests {
  static func tokens(_ count: Int, seed: UInt64) -> [Int] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in Int(rng.next() % 256) }
  }

  /// exp(Σ window sums / Σ predictions), each window evaluated alone.
  static func expected(_ model: TransformerLM, _ tokens: [Int], _ length: Int, _ windows: Int) throws -> (Double, Int) {
    var total = NegativeLogLikelihood()
    for w in 0..<windows {
      total = total + (try model.negativeLogLikelihood(Array(tokens[(w * length)..<((w + 1) * length)])))
    }
    return (total.perplexity, total.count)
  }

  @Test(arguments: [1, 2] as [UInt64]) func nonOverlappingWindowsFromTokenZero(seed: UInt64) throws {
    let model = try GoldenModel("llama-tiny").model
    let length = 32
    let tokens = Self.tokens(5 * length + 7, seed: seed)
    var seen: [PerplexityProgress] = []
    let report = try Perplexity.evaluate(model, tokens: tokens, sequenceLength: length) { seen.append($0) }
    let (ppl, count) = try Self.expected(model, tokens, length, 5)
    #expect(report.windows == 5 && report.seqlen == length, "seed \(seed)")
    #expect(report.tokens == 5 * (length - 1) && report.tokens == count, "seed \(seed)")
    #expect(report.perplexity == ppl, "seed \(seed): \(report.perplexity) vs \(ppl)")
    #expect(report.perplexity > 1 && report.perplexity.isFinite)
    #expect(seen.map(\.window) == [1, 2, 3, 4, 5] && seen.allSatisfy { $0.windows == 5 })
    #expect(seen.last?.perplexity == report.perplexity)

    // One block event per block, in order, all before the first window's.
    var events: [String] = []
    var blocks: [PerplexityBlockProgress] = []
    _ = try Perplexity.evaluate(
      model, tokens: tokens, sequenceLength: length, progress: { events.append("window \($0.window)") },
      blockProgress: {
        blocks.append($0)
        events.append("block \($0.block)")
      })
    let n = model.blockCount
    #expect(blocks.map(\.block) == Array(1...n) && blocks.allSatisfy { $0.blocks == n })
    #expect(events == (1...n).map { "block \($0)" } + (1...5).map { "window \($0)" })
    #expect(blocks.last?.eta == 0 && blocks.allSatisfy { $0.eta >= 0 && $0.seconds >= 0 })

    // The first N windows only.
    let two = try Perplexity.evaluate(model, tokens: tokens, sequenceLength: length, windows: 2)
    #expect(two.windows == 2 && two.tokens == 2 * (length - 1))
    #expect(two.perplexity == (try Self.expected(model, tokens, length, 2)).0, "seed \(seed)")

    // The trailing partial window is never read; the first token of a window is context only.
    var changed = tokens
    changed[5 * length + 3] = (changed[5 * length + 3] + 1) % 256
    #expect(try Perplexity.evaluate(model, tokens: changed, sequenceLength: length).perplexity == report.perplexity)
    changed = tokens
    changed[2 * length] = (changed[2 * length] + 1) % 256
    #expect(try Perplexity.evaluate(model, tokens: changed, sequenceLength: length).perplexity != report.perplexity)
  }

  /// The 48-token golden input as one window: the mean NLL transformers measured, within the
  /// forward tests' bound (2·logit tolerance + one float32 rounding of the reference).
  @Test func goldenWindowMatchesTransformers() throws {
    let golden = try GoldenModel("llama-tiny")
    let report = try Perplexity.evaluate(golden.model, tokens: golden.inputIDs, sequenceLength: golden.inputIDs.count)
    #expect(report.windows == 1 && report.tokens == 47)
    let scale = golden.logits.values.flatMap { $0 }.map { Double(abs($0)) }.max()!
    let logitTolerance = logitToleranceFactor * Double(golden.model.config.hiddenSize).squareRoot() * 0x1p-24 * scale
    let tolerance = 2 * logitTolerance + 0x1p-24 * golden.meanNLL
    #expect(abs(report.meanNLL - golden.meanNLL) <= tolerance, "mean NLL \(report.meanNLL) vs \(golden.meanNLL)")
  }

  @Test func invalidRequestsAreTypedErrors() throws {
    let model = try GoldenModel("llama-tiny").model
    let tokens = Self.tokens(100, seed: 3)
    #expect(throws: PerplexityError.invalidSequenceLength(1)) {
      _ = try Perplexity.evaluate(model, tokens: tokens, sequenceLength: 1)
    }
    #expect(throws: PerplexityError.invalidWindowCount(0)) {
      _ = try Perplexity.evaluate(model, tokens: tokens, sequenceLength: 10, windows: 0)
    }
    #expect(throws: PerplexityError.textTooShort(tokens: 100, sequenceLength: 30, windows: 4)) {
      _ = try Perplexity.evaluate(model, tokens: tokens, sequenceLength: 30, windows: 4)
    }
    #expect(throws: PerplexityError.textTooShort(tokens: 100, sequenceLength: 101, windows: nil)) {
      _ = try Perplexity.evaluate(model, tokens: tokens, sequenceLength: 101)
    }
    var bad = tokens
    bad[15] = 256
    #expect(throws: PerplexityError.forward(.tokenOutOfRange(token: 256, index: 5, vocabSize: 256))) {
      _ = try Perplexity.evaluate(model, tokens: bad, sequenceLength: 10, windows: 2)
    }
    for error: PerplexityError in [
      .invalidSequenceLength(1), .invalidWindowCount(0), .textTooShort(tokens: 3, sequenceLength: 4, windows: nil),
      .textTooShort(tokens: 3, sequenceLength: 4, windows: 2),
      .forward(.invalidSequenceLength(tokens: 3, sequenceLength: 2)),
    ] {
      #expect(error.description.contains("Hint:") && !error.description.contains("\n"), "\(error)")
    }
  }

  /// `prune eval --json` prints exactly these keys.
  @Test func reportEncodesTheFiveFields() throws {
    let report = PerplexityReport(perplexity: 23.15, tokens: 16368, windows: 16, seqlen: 1024, seconds: 1.5)
    let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any]
    #expect(Set(object?.keys.map { $0 } ?? []) == ["perplexity", "tokens", "windows", "seqlen", "seconds"])
    #expect(try JSONDecoder().decode(PerplexityReport.self, from: JSONEncoder().encode(report)) == report)
  }
}
