import Foundation
import PruneKernels
import PruneTestSupport
import Testing

@testable import PruneModels

/// Lazily loaded models (`WeightLoading.lazy`) against eager ones: the same bits from every entry
/// point, each block read once per pass, nothing left loaded by a pass.
@Suite struct LazyLoadingTests {
  /// The four synthetic configurations (LLaMA tied, OPT pre-LN, OPT post-LN with projections,
  /// GPT-2) and an untied LLaMA.
  static let configurations = SyntheticConfigs.all + ["llama-untied"]

  static func config(_ name: String) throws -> ForwardConfig {
    try ForwardConfig(json: name == "llama-untied" ? SyntheticConfigs.llama(tie: false) : SyntheticConfigs.named(name))
  }

  static func models(_ name: String, readsRows: Bool = true) throws -> (
    eager: TransformerLM, lazy: TransformerLM, source: CountingSource
  ) {
    let config = try config(name)
    let tensors = SyntheticModel.tensors(for: config, seed: 11)
    let source = CountingSource(tensors, readsRows: readsRows)
    return (
      try TransformerLM(config: config, weights: tensors),
      try TransformerLM(config: config, weights: source, loading: .lazy),
      source
    )
  }

  @Test(arguments: configurations)
  func aLazyModelReadsNothingLargeUntilAsked(_ name: String) throws {
    let (eager, lazy, source) = try Self.models(name)
    #expect((0..<lazy.blockCount).allSatisfy { !lazy.isBlockLoaded($0) })
    #expect(!lazy.isHeadLoaded && !lazy.isEmbeddingLoaded)
    #expect((0..<eager.blockCount).allSatisfy { eager.isBlockLoaded($0) })
    #expect(eager.isHeadLoaded && eager.isEmbeddingLoaded)
    // Only the small tensors outside the blocks (final norm, positions, projections) were read.
    for read in source.reads.keys { #expect(!read.contains("layers.") && !read.contains(".h."), "\(read)") }
    #expect(source.reads["lm_head.weight"] == nil)
    // Counted from the shapes, the same as the eager model, and every tensor of the checkpoint.
    let all = source.inner.tensors.values.reduce(0) { $0 + $1.values.count }
    #expect(lazy.parameterCount == all)
    #expect(eager.parameterCount == all)
  }

  @Test(arguments: configurations)
  func lazyAndEagerGiveTheSameBits(_ name: String) throws {
    var (eager, lazy, _) = try Self.models(name)
    let length = 24
    let tokens = randomTokens(2 * length, seed: 3)
    // The whole pass, with the blocks and head read for the call.
    #expect(try lazy.forward(tokens, sequenceLength: length) == eager.forward(tokens, sequenceLength: length))
    #expect(
      try lazy.negativeLogLikelihood(tokens, sequenceLength: length)
        == eager.negativeLogLikelihood(tokens, sequenceLength: length))
    // Block by block, loading and releasing.
    var h = try lazy.embed(tokens, sequenceLength: length)
    #expect(h == (try eager.embed(tokens, sequenceLength: length)))
    for l in 0..<lazy.blockCount {
      try lazy.loadBlock(l)
      for n in lazy.linearLayerNames(block: l) { #expect(try lazy.linearWeights(n) == eager.linearWeights(n)) }
      h = lazy.runBlock(l, hidden: h, sequenceLength: length)
      lazy.releaseBlock(l)
      #expect(!lazy.isBlockLoaded(l))
    }
    try lazy.loadHead()
    #expect(lazy.logits(h) == (try eager.forward(tokens, sequenceLength: length)))
    lazy.releaseHead()
    #expect(!lazy.isHeadLoaded)
  }

  /// `forEachLogitsChunk` in chunks of 5 rows gives the rows of `logits` (GEMM computes each output
  /// row from its own input row, whatever the rows around it).
  @Test(arguments: configurations)
  func chunkedLogitsEqualTheWholeMatrix(_ name: String) throws {
    let (eager, _, _) = try Self.models(name)
    let tokens = randomTokens(23, seed: 5)
    var h = try eager.embed(tokens)
    for l in 0..<eager.blockCount { h = eager.runBlock(l, hidden: h) }
    let whole = eager.logits(h)
    var rows: [Range<Int>] = []
    eager.forEachLogitsChunk(h, rows: 5) { range, chunk in
      rows.append(range)
      #expect(chunk == whole.submatrix(rows: range, columns: 0..<whole.columns), "\(range)")
    }
    #expect(rows == [0..<5, 5..<10, 10..<15, 15..<20, 20..<23])
  }

  /// The logits formed band by band from the source (`bandedLogits`, bands of 7 vocabulary rows,
  /// the last one short) are the bits of x·Headᵀ with the whole head: each band's GEMM reduces
  /// every element over the same k in the same order. Only rows are read, never the whole head.
  @Test(arguments: configurations)
  func bandedLogitsEqualTheWholeHead(_ name: String) throws {
    let (eager, lazy, source) = try Self.models(name)
    let tokens = randomTokens(37, seed: 6)
    var h = try eager.embed(tokens)
    for l in 0..<eager.blockCount { h = eager.runBlock(l, hidden: h) }
    let x = eager.headInput(h)
    let whole = eager.logits(h)
    #expect(lazy.config.vocabSize % 7 != 0, "the last band should be a short one")
    source.reset()
    for bandRows in [7, 64, lazy.config.vocabSize, TransformerLM.headBandRows] {
      let banded = try lazy.bandedLogits(x, bandRows: bandRows)
      #expect(banded.elements.map(\.bitPattern) == whole.elements.map(\.bitPattern), "\(name) bands of \(bandRows)")
    }
    #expect(source.reads[lazy.headTensorName] == nil)
    #expect(source.rowReads[lazy.headTensorName] ?? 0 > 0)
    #expect(!lazy.isHeadLoaded)
  }

  /// The streaming evaluation equals, bit for bit, the sum of each window run through the whole
  /// model on its own (the evaluation before it streamed), on lazy and eager models alike; on a
  /// lazy model it reads every block once, only the embedding rows of the tokens used, and the head
  /// by bands (one band per chunk of logits here: the vocabulary is smaller than a band), never a
  /// whole embedding or head; and it leaves the caller's model as it was. From a source that cannot
  /// read rows by range it reads the embedding once to embed and the head once.
  @Test(arguments: configurations)
  func streamingPerplexityEqualsWindowByWindow(_ name: String) throws {
    for readsRows in [true, false] { try streamingPerplexity(name, readsRows: readsRows) }
  }

  func streamingPerplexity(_ name: String, readsRows: Bool) throws {
    let (eager, lazy, source) = try Self.models(name, readsRows: readsRows)
    let length = 16
    let tokens = randomTokens(5 * length + 3, seed: 9)
    var reference = NegativeLogLikelihood()
    for w in 0..<5 {
      reference = reference + (try eager.negativeLogLikelihood(Array(tokens[(w * length)..<((w + 1) * length)])))
    }
    source.reset()
    let streamed = try Perplexity.evaluate(lazy, tokens: tokens, sequenceLength: length)
    let fromEager = try Perplexity.evaluate(eager, tokens: tokens, sequenceLength: length)
    #expect(streamed.perplexity == reference.perplexity)
    #expect(fromEager.perplexity == reference.perplexity)
    #expect(streamed.tokens == reference.count)
    let reads = source.reads
    for l in 0..<lazy.blockCount {
      for n in lazy.linearLayerNames(block: l) { #expect(reads[n + ".weight"] == 1, "\(n)") }
    }
    let embedding = lazy.layout.tokenEmbedding
    if readsRows {
      #expect(reads[embedding] == nil && reads["lm_head.weight"] == nil)
      // The embedding: one read per run of consecutive token ids; the head: one band per chunk.
      let ids = Set(tokens[0..<(5 * length)]).sorted()
      let runs = 1 + zip(ids, ids.dropFirst()).filter { $1 != $0 + 1 }.count
      let embeddingReads = source.rowReads[embedding] ?? 0
      let headReads = source.rowReads[lazy.headTensorName] ?? 0
      #expect(lazy.config.vocabSize <= TransformerLM.headBandRows)
      if lazy.tiesHeadToEmbedding {
        #expect(embeddingReads == runs + 5, "\(name)")
      } else {
        #expect(embeddingReads == runs && headReads == 5, "\(name)")
      }
    } else if lazy.tiesHeadToEmbedding {
      #expect(reads[embedding] == 2)  // once to embed, once as the head
    } else {
      #expect(reads[embedding] == 1)
      #expect(reads["lm_head.weight"] == 1)
    }
    #expect((0..<lazy.blockCount).allSatisfy { !lazy.isBlockLoaded($0) })
    #expect(!lazy.isHeadLoaded && !lazy.isEmbeddingLoaded)
  }

  @Test func aLazyModelChecksEveryShapeWhenBuilt() throws {
    let config = try Self.config("llama")
    var tensors = SyntheticModel.tensors(for: config, seed: 1)
    let name = "model.layers.1.mlp.down_proj.weight"
    tensors.tensors[name] = FloatTensor(shape: [3, 2], values: [Float](repeating: 0, count: 6))
    #expect(throws: ForwardError.shapeMismatch(name: name, expected: [64, 96], found: [3, 2])) {
      try TransformerLM(config: config, weights: tensors, loading: .lazy)
    }
    tensors.tensors[name] = nil
    #expect(throws: ForwardError.missingTensor(name: name, architecture: "llama")) {
      try TransformerLM(config: config, weights: tensors, loading: .lazy)
    }
  }
}
