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

  static func models(_ name: String) throws -> (eager: TransformerLM, lazy: TransformerLM, source: CountingSource) {
    let config = try config(name)
    let tensors = SyntheticModel.tensors(for: config, seed: 11)
    let source = CountingSource(tensors)
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

  /// The streaming evaluation equals, bit for bit, the sum of each window run through the whole
  /// model on its own (the evaluation before it streamed), on lazy and eager models alike; on a
  /// lazy model it reads every block once, the embedding once to embed and the head once, and
  /// leaves the caller's model as it was.
  @Test(arguments: configurations)
  func streamingPerplexityEqualsWindowByWindow(_ name: String) throws {
    let (eager, lazy, source) = try Self.models(name)
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
    if lazy.tiesHeadToEmbedding {
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
