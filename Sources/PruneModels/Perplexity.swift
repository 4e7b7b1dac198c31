// Perplexity of a language model on a token stream, under the rules of the evaluation protocols
// (Docs/evaluation.md#windows-and-perplexity):
//
//   - the whole text is tokenized once, with no BOS or EOS added (the caller's job: `tokenize`
//     below does it with `BPETokenizer.encode`, which adds neither);
//   - window w is tokens[w·L ..< (w + 1)·L]: windows never overlap, start at token 0, and a
//     trailing partial window is never used;
//   - each window is run on its own from position 0 (no context carried over), and position t
//     predicts token t + 1 of the same window, so a window of L tokens gives L − 1 predictions;
//   - perplexity = exp(Σ NLL / Σ predictions) over all windows, float32 model, NLL in nats.
//
// The NLL sums of the windows are added in window order in Double, so the result does not depend
// on the thread count (TransformerLM.negativeLogLikelihood is itself thread-count independent).
//
// The windows go through the model block by block: every window's hidden state is kept
// ([windows × seqlen × hidden] Floats), block ℓ is loaded once, run on each window in turn, and
// released when the model reads its blocks lazily; then the head is loaded and each window's NLL
// formed `TransformerLM.headRows` rows of logits at a time. Peak memory: one block, the hidden
// states, the head and one chunk of logits. Each window is computed with the same operations as
// when it runs through the whole model on its own, so the result is the same bits either way.

import Foundation
import PruneKernels

/// The outcome of a perplexity evaluation. Encoded as JSON it is the object `prune eval --json`
/// prints: `perplexity`, `tokens`, `windows`, `seqlen`, `seconds`.
public struct PerplexityReport: Sendable, Equatable, Codable {
  /// exp(mean next-token NLL).
  public var perplexity: Double
  /// Number of predicted tokens the mean is over: windows × (seqlen − 1).
  public var tokens: Int
  /// Number of windows evaluated.
  public var windows: Int
  /// Tokens per window.
  public var seqlen: Int
  /// Wall-clock seconds of the forward passes (tokenization and model loading excluded).
  public var seconds: Double

  /// The mean NLL in nats, log(perplexity).
  public var meanNLL: Double { Foundation.log(perplexity) }

  /// A report from its fields.
  public init(perplexity: Double, tokens: Int, windows: Int, seqlen: Int, seconds: Double) {
    self.perplexity = perplexity
    self.tokens = tokens
    self.windows = windows
    self.seqlen = seqlen
    self.seconds = seconds
  }
}

/// Where an evaluation has got to, passed to the progress callback after each window.
public struct PerplexityProgress: Sendable, Equatable {
  /// Windows done so far (1 … `windows`).
  public var window: Int
  /// Windows in the evaluation.
  public var windows: Int
  /// The perplexity of the windows done so far.
  public var perplexity: Double
  /// Seconds since the evaluation started.
  public var seconds: Double
}

/// Why a perplexity evaluation could not run. Every description is one line with a `Hint:`.
public enum PerplexityError: PruneKitError, Equatable {
  /// A window must hold at least two tokens (one prediction).
  case invalidSequenceLength(Int)
  /// A requested window count below 1.
  case invalidWindowCount(Int)
  /// The text has fewer tokens than the windows need.
  case textTooShort(tokens: Int, sequenceLength: Int, windows: Int?)
  /// The model rejected a window (token outside the vocabulary, window longer than its positions).
  case forward(ForwardError)

  /// What went wrong, without the "perplexity: " that `message` starts with (an error that wraps
  /// this one names the evaluation itself).
  public var reason: String {
    switch self {
    case .invalidSequenceLength(let length): return "a window of \(length) tokens has no next token to predict"
    case .invalidWindowCount(let count): return "\(count) windows requested"
    case .textTooShort(let tokens, let length, let windows):
      let wanted =
        windows.map { "\($0) windows of \(length) tokens need \($0 * length)" } ?? "one window needs \(length)"
      return "the text has \(tokens) tokens, but \(wanted)"
    case .forward(let error): return error.message
    }
  }

  public var message: String { "perplexity: \(reason)" }

  public var hint: String? {
    switch self {
    case .invalidSequenceLength: return "use --seqlen 2 or more (the protocols use 1024 and 2048)."
    case .invalidWindowCount: return "give --windows 1 or more, or leave --windows out to use every complete window."
    case .textTooShort: return "use a longer text, a shorter --seqlen or fewer --windows."
    case .forward(let error): return error.hint
    }
  }
}

/// Perplexity evaluation (see the rules at the top of this file).
public enum Perplexity {
  /// The token ids of `text` as the protocols want them: the whole text at once, no BOS or EOS.
  public static func tokenize(_ text: String, with tokenizer: BPETokenizer) -> [Int] {
    tokenizer.encode(text)
  }

  /// How many windows an evaluation of `tokenCount` tokens uses: `windows` when given (it must
  /// fit), else every complete window.
  public static func windowCount(tokenCount: Int, sequenceLength: Int, windows: Int?) throws(PerplexityError) -> Int {
    guard sequenceLength >= 2 else { throw .invalidSequenceLength(sequenceLength) }
    if let windows, windows < 1 { throw .invalidWindowCount(windows) }
    let available = tokenCount / sequenceLength
    let count = windows ?? available
    guard count >= 1, count <= available else {
      throw .textTooShort(tokens: tokenCount, sequenceLength: sequenceLength, windows: windows)
    }
    return count
  }

  /// The perplexity of `model` on the first `windows` windows of `sequenceLength` tokens of
  /// `tokens` (nil: every complete window), each window run on its own from position 0, block by
  /// block (see the file comment; the caller's model is not changed: what is loaded here is
  /// released here). `progress` is called after every window's NLL; the library never prints.
  public static func evaluate(
    _ model: TransformerLM, tokens: [Int], sequenceLength: Int, windows: Int? = nil,
    progress: ((PerplexityProgress) -> Void)? = nil
  ) throws(PerplexityError) -> PerplexityReport {
    let count = try windowCount(tokenCount: tokens.count, sequenceLength: sequenceLength, windows: windows)
    let start = DispatchTime.now().uptimeNanoseconds
    func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    var model = model
    let windowTokens = (0..<count).map { w in Array(tokens[(w * sequenceLength)..<((w + 1) * sequenceLength)]) }
    var total = NegativeLogLikelihood()
    do throws(ForwardError) {
      // h⁰ of every window, the embedding read once.
      let embeddingWasLoaded = model.isEmbeddingLoaded
      try model.loadEmbedding()
      var hidden = try windowTokens.map { (window) throws(ForwardError) in try model.embed(window) }
      if !embeddingWasLoaded { model.releaseEmbedding() }
      for l in 0..<model.blockCount {
        let wasLoaded = model.isBlockLoaded(l)
        try model.loadBlock(l)
        for w in 0..<count { hidden[w] = model.runBlock(l, hidden: hidden[w]) }
        if !wasLoaded { model.releaseBlock(l) }
      }
      try model.loadHead()
      for w in 0..<count {
        total = total + (try model.negativeLogLikelihood(lastHidden: hidden[w], tokens: windowTokens[w]))
        hidden[w] = Matrix(rows: 0, columns: 0)
        progress?(PerplexityProgress(window: w + 1, windows: count, perplexity: total.perplexity, seconds: elapsed()))
      }
    } catch {
      throw .forward(error)
    }
    return PerplexityReport(
      perplexity: total.perplexity, tokens: total.count, windows: count, seqlen: sequenceLength, seconds: elapsed())
  }
}
