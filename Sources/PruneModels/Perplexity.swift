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
// The windows go through the model block by block (Docs/evaluation.md#streaming-evaluation):
//
//   1. h⁰ of every window: only the embedding rows of the tokens used are read (all windows at
//      once; the whole embedding when the source cannot read rows by range);
//   2. block ℓ = 0 … N−1: loaded once, run on each window in turn, released when the model reads its
//      blocks lazily (a `PerplexityBlockProgress` after each);
//   3. each window's NLL, `TransformerLM.headRows` rows of logits at a time; a head that is not
//      loaded is read `TransformerLM.headBandRows` vocabulary rows at a time for each chunk of rows
//      (or whole, once, when the source cannot read rows by range) (a `PerplexityProgress` after
//      each window).
//
// Peak memory (`memoryEstimate`): the hidden states of every window ([windows × seqlen × hidden]
// Floats) plus the largest of the embedding rows, one block with its internals over one window, and
// one band of the head with one chunk of logits. Each window is computed with the same operations
// as when it runs through the whole model on its own, so the result is the same bits either way.

import Foundation
import PruneKernels

#if canImport(Glibc)
  import Glibc
#endif

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

/// Where an evaluation has got to, passed to the block callback after each block has run on every
/// window (the blocks come before any window's perplexity is known).
public struct PerplexityBlockProgress: Sendable, Equatable {
  /// Blocks done so far (1 … `blocks`).
  public var block: Int
  /// Blocks in the model.
  public var blocks: Int
  /// Seconds since the evaluation started.
  public var seconds: Double
  /// Seconds left for the remaining blocks at the pace of the blocks done so far (the head's work
  /// after them is not counted).
  public var eta: Double { block > 0 ? seconds / Double(block) * Double(blocks - block) : 0 }
}

/// The memory of a streaming evaluation by phase, in bytes (`Perplexity.memoryEstimate`; the
/// process's base is not counted).
public struct PerplexityMemoryEstimate: Sendable, Equatable {
  /// The hidden states of every window, kept from the embedding to the head.
  public var hiddenBytes: Int
  /// The embedding rows read for the windows' tokens (all of it when not read by rows).
  public var embeddingBytes: Int
  /// One block's weights, the stored form of its largest tensor, and its internals over one window.
  public var blockBytes: Int
  /// One band of the head (or all of it when not read by rows) with its stored form, one chunk of
  /// logits and one window's normed hidden state.
  public var headBytes: Int

  /// The estimated peak above the base: the hidden states plus the largest phase.
  public var totalBytes: Int { hiddenBytes + max(embeddingBytes, blockBytes, headBytes) }
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

  /// The memory `evaluate` needs on `model` for `windows` windows of `sequenceLength` tokens, by
  /// phase (see the file comment). With T = windows · L tokens, d the hidden size, E the embedding
  /// width, V the vocabulary, f the FFN size, s the stored bytes per weight of a tensor (4 for F32,
  /// 2 for F16/BF16, 1 for quantised blocks), B = `TransformerLM.headBandRows`:
  ///
  ///     hidden    = 4 · T · d
  ///     embedding = min(V, T) · E · (4 + s)         (by rows; V · E · (4 + s) whole)
  ///     block     = 4 · (block weights) + s · (its largest tensor) + 4 · L · (7d + 2f)
  ///     head      = B · E · (4 + s) + 4 · 256 · V + 4 · L · d   (by rows; V · E · (4 + s) whole)
  ///
  /// The same formula is the evaluation term of `prune model`'s estimate, whose output is read by
  /// rows (`headByRows`, `embeddingByRows` override what the model's own source says).
  public static func memoryEstimate(
    of model: TransformerLM, windows: Int, sequenceLength: Int, headByRows: Bool? = nil, embeddingByRows: Bool? = nil
  ) -> PerplexityMemoryEstimate {
    let c = model.config
    let float = MemoryLayout<Float>.size
    let tokens = windows * sequenceLength
    let shapes = (0..<model.blockCount).map { b in
      model.linearLayerNames(block: b).compactMap { try? model.linearShape($0) }
    }
    let largestBlock = shapes.map { $0.reduce(0) { $0 + $1[0] * $1[1] } }.max() ?? 0
    let largestTensor = shapes.flatMap { $0 }.map { $0[0] * $0[1] }.max() ?? 0
    let blockStored =
      model.blockCount > 0 ? model.storedBytesPerWeight(of: model.linearLayerNames(block: 0)[0] + ".weight") : 2
    let headStored = model.storedBytesPerWeight(of: model.headTensorName)
    let embeddingStored = model.storedBytesPerWeight(of: model.embeddingTensorName)
    let embeddingRows = (embeddingByRows ?? model.readsEmbeddingByRows) ? min(c.vocabSize, tokens) : c.vocabSize
    let headRows = (headByRows ?? model.readsHeadByRows) ? min(c.vocabSize, TransformerLM.headBandRows) : c.vocabSize
    // One window through a block: the normed input, q, k, v, the attention output, the residual and
    // the block's output (hidden wide), and two FFN-wide activations.
    let perToken = (7 * c.hiddenSize + 2 * c.intermediateSize) * float
    return PerplexityMemoryEstimate(
      hiddenBytes: tokens * c.hiddenSize * float,
      embeddingBytes: embeddingRows * c.wordEmbedDim * (float + embeddingStored),
      blockBytes: largestBlock * float + largestTensor * blockStored + sequenceLength * perToken,
      headBytes: headRows * c.wordEmbedDim * (float + headStored) + TransformerLM.headRows * c.vocabSize * float
        + sequenceLength * c.hiddenSize * float)
  }

  /// The perplexity of `model` on the first `windows` windows of `sequenceLength` tokens of
  /// `tokens` (nil: every complete window), each window run on its own from position 0, block by
  /// block (see the file comment; the caller's model is not changed: what is loaded here is
  /// released here). `blockProgress` is called after each block has run on every window, `progress`
  /// after every window's NLL; the library never prints.
  public static func evaluate(
    _ model: TransformerLM, tokens: [Int], sequenceLength: Int, windows: Int? = nil,
    progress: ((PerplexityProgress) -> Void)? = nil,
    blockProgress: ((PerplexityBlockProgress) -> Void)? = nil
  ) throws(PerplexityError) -> PerplexityReport {
    let count = try windowCount(tokenCount: tokens.count, sequenceLength: sequenceLength, windows: windows)
    let start = DispatchTime.now().uptimeNanoseconds
    func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    var model = model
    let windowTokens = (0..<count).map { w in Array(tokens[(w * sequenceLength)..<((w + 1) * sequenceLength)]) }
    var total = NegativeLogLikelihood()
    do throws(ForwardError) {
      // h⁰ of every window: the rows of the tokens used (or the whole embedding) read once.
      var hidden = try model.embed(windows: windowTokens)
      returnFreedMemory()
      for l in 0..<model.blockCount {
        let wasLoaded = model.isBlockLoaded(l)
        try model.loadBlock(l)
        for w in 0..<count { hidden[w] = model.runBlock(l, hidden: hidden[w]) }
        if !wasLoaded {
          model.releaseBlock(l)
          returnFreedMemory()
        }
        blockProgress?(PerplexityBlockProgress(block: l + 1, blocks: model.blockCount, seconds: elapsed()))
      }
      // A head read by rows is read band by band for each chunk of logits; any other is read once.
      if !model.readsHeadByRows { try model.loadHead() }
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

/// Gives the pages of freed memory back to the system (glibc's `malloc_trim`; elsewhere nothing).
/// glibc keeps a freed block below its mmap threshold (which rises to 32 MiB as large blocks are
/// freed) in its heap, and a heap pinned by a later allocation is not shrunk: without this, a block
/// read after another was released lands beside the first one's freed pages and the resident peak
/// grows by up to a block (tinyllama-1b BF16, one window of 128: 342–401 MB measured instead of
/// about 232 MB; Docs/evaluation.md#streaming-evaluation).
package func returnFreedMemory() {
  #if canImport(Glibc)
    _ = mallocTrim?(0)
  #endif
}

#if canImport(Glibc)
  /// glibc's `int malloc_trim(size_t pad)` (declared in malloc.h, which the Glibc module does not
  /// export), looked up once; nil when the C library has none (musl).
  private let mallocTrim: (@convention(c) (Int) -> Int32)? = dlsym(nil, "malloc_trim").map {
    unsafeBitCast($0, to: (@convention(c) (Int) -> Int32).self)
  }
#endif
