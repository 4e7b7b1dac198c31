// A decoder-only language model (LLaMA, OPT or GPT-2) with its weights in memory, run in Float.
//
// The forward pass of a window of tokens x₁ … x_L:
//
//   h⁰ = embed(x)                          token rows (+ learned positions for OPT/GPT-2)
//   hˡ = blockₗ(hˡ⁻¹),  l = 1 … N          one decoder block at a time (`runBlock`)
//   logits = head(norm(hᴺ))                [L × vocab]  (`logits`)
//   NLL = −Σₜ log softmax(logitsₜ)[x_{t+1}] (`negativeLogLikelihood`)
//
// Running block by block keeps only one block's activations alive, and `runBlock` hands the
// input of every linear layer to a callback: the calibration inputs X of the pruning problems
// (SparseGPT's sequential driver runs block l on the output of the already-pruned blocks < l).
// Several windows can be laid end to end in one matrix (`sequenceLength`): every row-wise step and
// every linear layer treats them as one batch of rows; attention stays within each window, which
// starts at position 0.
//
// Weights are read through `TensorSource` with their Hugging Face names and converted to Float.
// Linear weights are kept as [out × in] (nn.Linear's layout); GPT-2's Conv1D weights, stored
// [in, out], are transposed on load, so every layer is pruned the same way (rows = outputs).
//
// Loading (`WeightLoading`): an eager model reads every tensor when it is built; a lazy one checks
// every shape when it is built but keeps only the source and the small tensors (norms, learned
// positions, OPT's projections), and reads block ℓ when asked (`loadBlock`, dropped again by
// `releaseBlock`), only the token embedding rows of the tokens it embeds (`embed`, rows read by
// range, copied, dropped) and the head a band of `headBandRows` vocabulary rows at a time while
// forming the logits (`bandedLogits`; whole, `loadHead`, when the source cannot read rows by
// range). A model run block by block over all its inputs (Perplexity, ModelPruner) then holds one
// block at a time and never a whole embedding or head. Both read the same tensors the same way, so
// their outputs are the same bits.

import Foundation
import PruneKernels

/// One linear layer's parameters: W `[out × in]` (nn.Linear's layout) and an optional bias `[out]`.
public struct LinearWeights: Sendable, Equatable {
  /// W, `[out × in]`: y = x·Wᵀ + b.
  public var weight: Matrix<Float>
  /// b, `out` values, or nil for a layer without bias.
  public var bias: [Float]?

  /// A layer from its weight and bias.
  public init(weight: Matrix<Float>, bias: [Float]? = nil) {
    precondition(
      bias == nil || bias!.count == weight.rows, "LinearWeights: \(bias!.count) biases for \(weight.shapeDescription)")
    self.weight = weight
    self.bias = bias
  }
}

/// The input X of one or more linear layers of a block, captured during a forward pass: the
/// calibration data of their pruning problems.
public struct LinearInput: Sendable {
  /// Hugging Face module names of the layers that read this input (weights at `name + ".weight"`),
  /// e.g. `model.layers.3.self_attn.q_proj`, `…k_proj`, `…v_proj`, which all read the same X.
  public let layers: [String]
  /// X, `[tokens × in]`, one row per token.
  public let input: Matrix<Float>
}

/// A sum of next-token negative log-likelihoods and how many predictions it covers.
public struct NegativeLogLikelihood: Sendable, Equatable {
  /// Σ −log p(target), in nats.
  public var sum: Double
  /// Number of predicted tokens.
  public var count: Int

  /// A sum over `count` predictions.
  public init(sum: Double = 0, count: Int = 0) {
    self.sum = sum
    self.count = count
  }

  /// The mean NLL, sum/count.
  public var mean: Double { sum / Double(count) }
  /// exp(mean NLL).
  public var perplexity: Double { Foundation.exp(mean) }

  /// Adds another window's sums.
  public static func + (a: Self, b: Self) -> Self { Self(sum: a.sum + b.sum, count: a.count + b.count) }
}

/// When a model reads its weights from its source (see the file comment).
public enum WeightLoading: String, Sendable, CaseIterable {
  /// Every tensor is read when the model is built.
  case eager
  /// Shapes are checked when the model is built; blocks, the token embedding and the head are read
  /// when they are needed (`loadBlock`, `embed`, `loadHead`).
  case lazy
}

/// A decoder-only transformer language model (LLaMA, OPT or GPT-2 family) with its weights in
/// memory (all of them, or the blocks loaded so far: `WeightLoading`), run in Float on the
/// kernels' GEMM.
public struct TransformerLM: Sendable {
  /// The architecture parameters.
  public let config: ForwardConfig

  /// One decoder block's parameters: its two norms and its linear layers in the order of
  /// `Layout.linearRoles`.
  package struct Block: Sendable {
    package var attentionNorm: NormWeights
    package var mlpNorm: NormWeights
    package var linears: [LinearWeights]
  }

  let layout: Layout
  /// Where the weights come from (read again by `loadBlock`, `loadHead` and `embed`).
  let reader: WeightReader
  /// The decoder blocks; nil: not loaded.
  package var blocks: [Block?]
  /// Token embedding E, [vocab × wordEmbedDim]; nil: not loaded.
  package var tokenEmbedding: Matrix<Float>?
  /// Learned positions (OPT, GPT-2), [positions × hidden]; row p + positionOffset is position p.
  package let positionEmbedding: Matrix<Float>?
  let positionOffset: Int
  /// OPT's project_in (wordEmbedDim → hidden) and project_out (hidden → wordEmbedDim).
  package let projectIn: LinearWeights?
  package let projectOut: LinearWeights?
  package let finalNorm: NormWeights?
  /// The untied output projection, [vocab × wordEmbedDim]; nil when tied or not loaded.
  package var untiedHead: Matrix<Float>?
  /// True when the output projection is the token embedding (`tie_word_embeddings`, or no
  /// lm_head.weight in the checkpoint).
  public let tiesHeadToEmbedding: Bool
  /// cos/sin of RoPE for the first positions (LLaMA).
  let rotary: RotaryTable?
  /// Full module name → (block, index into `linears`).
  let linearIndex: [String: (block: Int, role: Int)]

  /// The output projection when loaded, [vocab × wordEmbedDim]: the token embedding when tied.
  package var head: Matrix<Float>? { tiesHeadToEmbedding ? tokenEmbedding : untiedHead }

  /// Builds the model from `weights` (tensors by their Hugging Face names), checking every shape
  /// against `config`: `.eager` reads every tensor now, `.lazy` only the small ones (norms,
  /// positions, projections) and the rest when needed (see `WeightLoading`).
  public init(config: ForwardConfig, weights: some TensorSource, loading: WeightLoading = .eager) throws(ForwardError) {
    self.config = config
    let layout = Layout(config: config, names: Set(weights.tensorNames))
    self.layout = layout
    let reader = WeightReader(source: weights, architecture: config.architecture.rawValue)
    self.reader = reader
    let c = config
    let d = c.hiddenSize
    let eager = loading == .eager
    let embeddingShape = [c.vocabSize, c.wordEmbedDim]
    if eager {
      tokenEmbedding = try reader.matrix(layout.tokenEmbedding, shape: embeddingShape)
    } else {
      try reader.check(layout.tokenEmbedding, shape: embeddingShape)
      tokenEmbedding = nil
    }
    switch c.architecture {
    case .llama:
      positionEmbedding = nil
      positionOffset = 0
      rotary = RotaryTable(
        headDim: c.headDim, theta: c.ropeTheta, positions: max(1, min(c.maxPositions, 8192)), scaling: c.ropeScaling)
    case .opt:
      // OPTLearnedPositionalEmbedding: position p reads row p + 2 (rows 0 and 1 are a fairseq leftover).
      positionOffset = 2
      positionEmbedding = try reader.matrix(layout.positionEmbedding!, shape: [c.maxPositions + 2, d])
      rotary = nil
    case .gpt2:
      positionOffset = 0
      positionEmbedding = try reader.matrix(layout.positionEmbedding!, shape: [c.maxPositions, d])
      rotary = nil
    }
    if c.architecture == .opt && c.wordEmbedDim != d {
      projectIn = LinearWeights(weight: try reader.matrix(layout.projectIn!, shape: [d, c.wordEmbedDim]))
      projectOut = LinearWeights(weight: try reader.matrix(layout.projectOut!, shape: [c.wordEmbedDim, d]))
    } else {
      projectIn = nil
      projectOut = nil
    }
    finalNorm = c.finalNorm ? try reader.norm(layout.finalNorm, width: d, bias: c.architecture != .llama) : nil
    let tied = c.tieWordEmbeddings ?? !weights.tensorNames.contains(layout.head)
    tiesHeadToEmbedding = tied
    if tied {
      untiedHead = nil
    } else if eager {
      untiedHead = try reader.matrix(layout.head, shape: embeddingShape)
    } else {
      try reader.check(layout.head, shape: embeddingShape)
      untiedHead = nil
    }

    var blocks: [Block?] = []
    var index: [String: (block: Int, role: Int)] = [:]
    for l in 0..<c.layerCount {
      for (r, role) in layout.linearRoles.enumerated() { index[layout.blockPrefix(l) + role.name] = (l, r) }
      // Eager: the block read; lazy: its shapes checked, nil.
      blocks.append(try Self.readBlock(l, reader: reader, layout: layout, config: c, reading: eager))
    }
    self.blocks = blocks
    linearIndex = index
  }

  /// Block `l` read from `reader` (every tensor's shape checked against `config`), or, when not
  /// `reading`, only its shapes checked (nil).
  static func readBlock(
    _ l: Int, reader: WeightReader, layout: Layout, config c: ForwardConfig, reading: Bool
  ) throws(ForwardError) -> Block? {
    let prefix = layout.blockPrefix(l)
    let hasBias = c.architecture != .llama
    let d = c.hiddenSize
    var linears: [LinearWeights] = []
    for role in layout.linearRoles {
      let name = prefix + role.name
      let shape = role.shape(c)
      // Conv1D (GPT-2): y = x·W + b with W stored [in, out].
      let stored = c.architecture == .gpt2 ? [shape[1], shape[0]] : shape
      // LLaMA-family biases are optional (attention_bias, mlp_bias, Qwen2's q/k/v biases).
      let readsBias = hasBias || reader.source.shape(of: name + ".bias") != nil
      guard reading else {
        try reader.check(name + ".weight", shape: stored)
        if readsBias { try reader.check(name + ".bias", shape: [shape[0]]) }
        continue
      }
      var weight = try reader.matrix(name + ".weight", shape: stored)
      if c.architecture == .gpt2 { weight = weight.transposed() }
      let bias = readsBias ? try reader.vector(name + ".bias", count: shape[0]) : nil
      linears.append(LinearWeights(weight: weight, bias: bias))
    }
    guard reading else {
      for norm in [layout.attentionNorm, layout.mlpNorm] {
        try reader.check(prefix + norm + ".weight", shape: [d])
        if hasBias { try reader.check(prefix + norm + ".bias", shape: [d]) }
      }
      return nil
    }
    return Block(
      attentionNorm: try reader.norm(prefix + layout.attentionNorm, width: d, bias: hasBias),
      mlpNorm: try reader.norm(prefix + layout.mlpNorm, width: d, bias: hasBias),
      linears: linears)
  }

  // MARK: - Loading and releasing

  /// True when block `index`'s weights are in memory.
  public func isBlockLoaded(_ index: Int) -> Bool {
    precondition(index >= 0 && index < blocks.count, "isBlockLoaded: block \(index) outside 0..<\(blocks.count)")
    return blocks[index] != nil
  }

  /// Reads block `index`'s weights from the source unless they are in memory.
  public mutating func loadBlock(_ index: Int) throws(ForwardError) {
    precondition(index >= 0 && index < blocks.count, "loadBlock: block \(index) outside 0..<\(blocks.count)")
    if blocks[index] == nil {
      blocks[index] = try Self.readBlock(index, reader: reader, layout: layout, config: config, reading: true)
    }
  }

  /// Drops block `index`'s weights from memory; `loadBlock` reads them again from the source, so
  /// weights replaced by `setLinearWeight` are lost (the pruner saves them first).
  public mutating func releaseBlock(_ index: Int) {
    precondition(index >= 0 && index < blocks.count, "releaseBlock: block \(index) outside 0..<\(blocks.count)")
    blocks[index] = nil
  }

  /// Reads every block, the token embedding and the head: the model becomes what `.eager` builds.
  public mutating func loadAll() throws(ForwardError) {
    for l in 0..<blocks.count { try loadBlock(l) }
    try loadEmbedding()
    try loadHead()
  }

  /// True when the output projection is in memory (`logits` needs it).
  public var isHeadLoaded: Bool { head != nil }
  /// True when the token embedding is in memory.
  public var isEmbeddingLoaded: Bool { tokenEmbedding != nil }

  /// Reads the token embedding unless it is in memory (`embed` otherwise reads it for each call).
  public mutating func loadEmbedding() throws(ForwardError) {
    if tokenEmbedding == nil { tokenEmbedding = try readEmbedding() }
  }

  /// Drops the token embedding (when tied, that is also the head).
  public mutating func releaseEmbedding() { tokenEmbedding = nil }

  /// Reads the output projection unless it is in memory: the token embedding when tied.
  public mutating func loadHead() throws(ForwardError) {
    if tiesHeadToEmbedding { try loadEmbedding() } else if untiedHead == nil { untiedHead = try readHead() }
  }

  /// Drops the output projection (when tied, that is the token embedding).
  public mutating func releaseHead() {
    if tiesHeadToEmbedding { tokenEmbedding = nil } else { untiedHead = nil }
  }

  /// `loaded`, or what `read` reads when it is nil.
  func loadedOrRead(_ loaded: Matrix<Float>?, _ read: () throws(ForwardError) -> Matrix<Float>) throws(ForwardError)
    -> Matrix<Float>
  {
    if let loaded { return loaded }
    return try read()
  }

  func readEmbedding() throws(ForwardError) -> Matrix<Float> {
    try reader.matrix(layout.tokenEmbedding, shape: [config.vocabSize, config.wordEmbedDim])
  }

  /// The tensor the output projection is read from: the token embedding when tied.
  package var headTensorName: String { tiesHeadToEmbedding ? layout.tokenEmbedding : layout.head }

  /// True when the source reads the head's rows by range (`TensorSource.readsRowRanges`): the
  /// logits of a head that is not loaded are then formed band by band (`headBandRows`); otherwise a
  /// caller that needs the logits several times loads the head (`loadHead`) once.
  public var readsHeadByRows: Bool { reader.source.readsRowRanges(of: headTensorName) }

  /// The token embedding's tensor name.
  package var embeddingTensorName: String { layout.tokenEmbedding }

  /// Bytes per weight of tensor `name` as stored, held beside its Float copy while it is read: 4
  /// for F32, 2 for F16 and BF16, 1 for quantised blocks (GGUF Q8_0 and smaller; 2 when unknown).
  package func storedBytesPerWeight(of name: String) -> Int {
    switch reader.source.storedType(of: name) {
    case .f32?: return 4
    case .quantized?: return 1
    default: return 2
    }
  }

  /// How tensor `name` is stored in the model's source (nil: no such tensor): what a writer that
  /// keeps the source's precision writes.
  public func storedType(of name: String) -> StoredFloatType? { reader.source.storedType(of: name) }

  /// True when the source reads the token embedding's rows by range: `embed` on a model whose
  /// embedding is not loaded then reads only the rows of the tokens it embeds.
  public var readsEmbeddingByRows: Bool { reader.source.readsRowRanges(of: layout.tokenEmbedding) }

  func readHead() throws(ForwardError) -> Matrix<Float> {
    tiesHeadToEmbedding
      ? try readEmbedding() : try reader.matrix(layout.head, shape: [config.vocabSize, config.wordEmbedDim])
  }

  /// The loaded block `index` (a precondition: a lazy model loads it first).
  func loadedBlock(_ index: Int, _ caller: StaticString) -> Block {
    guard let block = blocks[index] else {
      preconditionFailure("\(caller): block \(index) is not loaded (loadBlock first)")
    }
    return block
  }

  /// Query rows per attention work item (the causal attention computes, for a block of this many
  /// queries, only the keys up to the block's last row). Exposed so that benchmarks can replay the
  /// same GEMM shapes.
  public static var attentionQueryRows: Int { attentionQueryBlock }

  // MARK: - Linear layers by name

  /// Number of decoder blocks.
  public var blockCount: Int { blocks.count }

  /// Every parameter of the model, the tied head counted once: from the shapes, so a lazy model
  /// counts the blocks it has not loaded.
  public var parameterCount: Int {
    func count(_ l: LinearWeights?) -> Int { l.map { $0.weight.rows * $0.weight.columns + ($0.bias?.count ?? 0) } ?? 0 }
    func count(_ n: NormWeights?) -> Int { n.map { $0.weight.count + ($0.bias?.count ?? 0) } ?? 0 }
    let c = config
    let embedding = c.vocabSize * c.wordEmbedDim
    var n = embedding + (positionEmbedding.map { $0.rows * $0.columns } ?? 0)
    n += count(projectIn) + count(projectOut) + count(finalNorm)
    if !tiesHeadToEmbedding { n += embedding }
    let hasBias = c.architecture != .llama
    for l in 0..<blocks.count {
      n += 2 * c.hiddenSize * (hasBias ? 2 : 1)
      for role in layout.linearRoles {
        let shape = role.shape(c)
        let biased = hasBias || reader.source.shape(of: layout.blockPrefix(l) + role.name + ".bias") != nil
        n += shape[0] * shape[1] + (biased ? shape[0] : 0)
      }
    }
    return n
  }

  /// The shape [out, in] of a linear layer's weight W by module name (from the configuration: the
  /// block need not be loaded).
  public func linearShape(_ name: String) throws(ForwardError) -> [Int] {
    guard let (_, r) = linearIndex[name] else { throw .unknownLayer(name: name) }
    return layout.linearRoles[r].shape(config)
  }

  /// The Hugging Face module names of block `index`'s linear layers, in the order they run
  /// (q, k, v, o, gate, up, down for LLaMA; q, k, v, out, fc1, fc2 for OPT; c_attn, attn.c_proj,
  /// c_fc, mlp.c_proj for GPT-2).
  public func linearLayerNames(block index: Int) -> [String] {
    precondition(index >= 0 && index < blocks.count, "linearLayerNames: block \(index) outside 0..<\(blocks.count)")
    return layout.linearRoles.map { layout.blockPrefix(index) + $0.name }
  }

  /// True when linear layer `name` has a bias (OPT and GPT-2 always; LLaMA when the checkpoint
  /// has one). Its block need not be loaded.
  package func linearHasBias(_ name: String) -> Bool {
    config.architecture != .llama || reader.source.shape(of: name + ".bias") != nil
  }

  /// Linear layer `name` as its block's `loadBlock` reads it from the source (W `[out × in]`, the
  /// transpose of GPT-2's Conv1D tensor), without loading the block: what an exporter writes for a
  /// block that is not in memory.
  package func readLinearWeights(_ name: String) throws(ForwardError) -> LinearWeights {
    let shape = try linearShape(name)
    var weight = try reader.matrix(
      name + ".weight", shape: config.architecture == .gpt2 ? [shape[1], shape[0]] : shape)
    if config.architecture == .gpt2 { weight = weight.transposed() }
    return LinearWeights(weight: weight, bias: try readLinearBias(name))
  }

  /// The bias of linear layer `name` read from the source (nil when it has none).
  package func readLinearBias(_ name: String) throws(ForwardError) -> [Float]? {
    linearHasBias(name) ? try reader.vector(name + ".bias", count: try linearShape(name)[0]) : nil
  }

  /// The weights of a linear layer by module name, W as `[out × in]` (for GPT-2 the transpose of
  /// the file's Conv1D tensor). Its block must be loaded.
  public func linearWeights(_ name: String) throws(ForwardError) -> LinearWeights {
    guard let (b, r) = linearIndex[name] else { throw .unknownLayer(name: name) }
    return loadedBlock(b, "linearWeights").linears[r]
  }

  /// Replaces the weight W `[out × in]` of a linear layer (e.g. by its pruned version); the bias
  /// is kept. The shape must not change.
  public mutating func setLinearWeight(_ name: String, _ weight: Matrix<Float>) throws(ForwardError) {
    guard let (b, r) = linearIndex[name] else { throw .unknownLayer(name: name) }
    let old = loadedBlock(b, "setLinearWeight").linears[r].weight
    guard old.rows == weight.rows && old.columns == weight.columns else {
      throw .shapeMismatch(
        name: name + ".weight", expected: [old.rows, old.columns], found: [weight.rows, weight.columns])
    }
    blocks[b]!.linears[r].weight = weight
  }

  // MARK: - Forward

  /// h⁰ for `tokens`: the token embedding rows (OPT: through project_in), plus the learned
  /// position embedding of t mod sequenceLength for OPT and GPT-2. `[tokens × hidden]`. When the
  /// embedding is not loaded, only the rows of `tokens` are read for this call
  /// (`readsEmbeddingByRows`; else the whole embedding), and dropped after they are copied.
  public func embed(_ tokens: [Int], sequenceLength: Int? = nil) throws(ForwardError) -> Matrix<Float> {
    let length = try checkedSequenceLength(tokens.count, sequenceLength)
    try checkTokens(tokens, length)
    return embed(tokens, length, from: try embeddingRows(for: tokens))
  }

  /// h⁰ of each window of `windows` (each run from position 0, as `embed(window)`), the embedding
  /// rows of all of them read at once when the embedding is not loaded.
  public func embed(windows: [[Int]]) throws(ForwardError) -> [Matrix<Float>] {
    var lengths: [Int] = []
    for window in windows {
      let length = try checkedSequenceLength(window.count, nil)
      try checkTokens(window, length)
      lengths.append(length)
    }
    let rows = try embeddingRows(for: windows.flatMap { $0 })
    return zip(windows, lengths).map { embed($0, $1, from: rows) }
  }

  /// Throws unless every token is in the vocabulary and windows of `length` fit the positions.
  func checkTokens(_ tokens: [Int], _ length: Int) throws(ForwardError) {
    for (i, t) in tokens.enumerated() where t < 0 || t >= config.vocabSize {
      throw .tokenOutOfRange(token: t, index: i, vocabSize: config.vocabSize)
    }
    if let positions = positionEmbedding, length + positionOffset > positions.rows {
      throw .sequenceTooLong(length: length, maxPositions: positions.rows - positionOffset)
    }
  }

  /// Token embedding rows for `embed`: `matrix` holds the row of token t at row `rowOf[t]` (the
  /// whole embedding, `rowOf` nil, when it is loaded or the source cannot read rows by range).
  struct EmbeddingRows {
    let matrix: Matrix<Float>
    let rowOf: [Int: Int]?
  }

  /// The embedding rows of `tokens` (all in the vocabulary): the loaded embedding, or the rows of
  /// the distinct tokens read from the source in runs of consecutive ids.
  func embeddingRows(for tokens: [Int]) throws(ForwardError) -> EmbeddingRows {
    if let tokenEmbedding { return EmbeddingRows(matrix: tokenEmbedding, rowOf: nil) }
    guard readsEmbeddingByRows else { return EmbeddingRows(matrix: try readEmbedding(), rowOf: nil) }
    let width = config.wordEmbedDim
    let shape = [config.vocabSize, width]
    let ids = Set(tokens).sorted()
    var matrix = Matrix<Float>(rows: ids.count, columns: width)
    var rowOf: [Int: Int] = [:]
    rowOf.reserveCapacity(ids.count)
    var i = 0
    while i < ids.count {
      var j = i + 1
      while j < ids.count && ids[j] == ids[j - 1] + 1 { j += 1 }
      let run = try reader.rows(layout.tokenEmbedding, shape: shape, rows: ids[i]..<(ids[j - 1] + 1))
      for k in i..<j {
        matrix.setRow(k, to: run.row(k - i))
        rowOf[ids[k]] = k
      }
      i = j
    }
    return EmbeddingRows(matrix: matrix, rowOf: rowOf)
  }

  /// h⁰ of checked `tokens` (windows of `length`) from `rows`.
  func embed(_ tokens: [Int], _ length: Int, from rows: EmbeddingRows) -> Matrix<Float> {
    let width = config.wordEmbedDim
    var h = Matrix<Float>(rows: tokens.count, columns: width)
    h.withUnsafeMutableBufferPointer { hp in
      rows.matrix.withUnsafeBufferPointer { ep in
        for (i, t) in tokens.enumerated() {
          let r = rows.rowOf.map { $0[t]! } ?? t
          (hp.baseAddress! + i * width).update(from: ep.baseAddress! + r * width, count: width)
        }
      }
    }
    if let projectIn { h = linear(h, projectIn) }
    if let positions = positionEmbedding {
      let d = config.hiddenSize
      h.withUnsafeMutableBufferPointer { hp in
        positions.withUnsafeBufferPointer { pp in
          for i in 0..<tokens.count {
            let row = hp.baseAddress! + i * d
            let pos = pp.baseAddress! + (i % length + positionOffset) * d
            for j in 0..<d { row[j] += pos[j] }
          }
        }
      }
    }
    return h
  }

  /// Runs decoder block `index` on `hidden` (`[tokens × hidden]`, windows of `sequenceLength`
  /// rows laid end to end; nil = one window) and returns the block's output. `capture` receives
  /// the input of every linear layer of the block, in the order the layers run, before the
  /// layer is applied. The block must be loaded (`loadBlock`; an eager model has every block).
  public func runBlock(
    _ index: Int, hidden: Matrix<Float>, sequenceLength: Int? = nil,
    capture: (LinearInput) throws -> Void
  ) rethrows -> Matrix<Float> {
    precondition(index >= 0 && index < blocks.count, "runBlock: block \(index) outside 0..<\(blocks.count)")
    precondition(
      hidden.columns == config.hiddenSize,
      "runBlock: hidden \(hidden.shapeDescription) is not [tokens × \(config.hiddenSize)]")
    let length = sequenceLength ?? hidden.rows
    precondition(length > 0 && hidden.rows % length == 0, "runBlock: \(hidden.rows) rows are not windows of \(length)")
    return try run(loadedBlock(index, "runBlock"), index, hidden: hidden, sequenceLength: length, capture: capture)
  }

  /// `block` (block `index`'s weights) on `hidden`, windows of `length` rows.
  func run(
    _ block: Block, _ index: Int, hidden: Matrix<Float>, sequenceLength length: Int,
    capture: (LinearInput) throws -> Void
  ) rethrows -> Matrix<Float> {
    let names = linearLayerNames(block: index)
    switch config.architecture {
    case .llama: return try llamaBlock(block, index, hidden, length, names, capture)
    case .opt: return try optBlock(block, hidden, length, names, capture)
    case .gpt2: return try gpt2Block(block, index, hidden, length, names, capture)
    }
  }

  /// Runs decoder block `index` on `hidden` without capturing (see `runBlock(_:hidden:sequenceLength:capture:)`).
  public func runBlock(_ index: Int, hidden: Matrix<Float>, sequenceLength: Int? = nil) -> Matrix<Float> {
    runBlock(index, hidden: hidden, sequenceLength: sequenceLength, capture: { _ in })
  }

  /// The logits `[tokens × vocab]` of the last block's output: final norm (OPT: then project_out),
  /// then ·Headᵀ. The head must be loaded (`loadHead`; an eager model has it). Over a large
  /// vocabulary `forEachLogitsChunk` forms them a few rows at a time instead.
  public func logits(_ hidden: Matrix<Float>) -> Matrix<Float> {
    guard let head else { preconditionFailure("logits: the head is not loaded (loadHead first)") }
    return matmul(headInput(hidden), head, transposeB: true)
  }

  /// The rows of `logits(hidden)` formed `rows` at a time, so the full `[tokens × vocab]` matrix
  /// never exists: `body` receives each row range and its logits `[range.count × vocab]`, in order.
  /// The head must be loaded.
  public func forEachLogitsChunk(
    _ hidden: Matrix<Float>, rows: Int = headRows, _ body: (Range<Int>, Matrix<Float>) throws -> Void
  ) rethrows {
    precondition(rows >= 1, "forEachLogitsChunk: \(rows) rows per chunk")
    guard let head else { preconditionFailure("forEachLogitsChunk: the head is not loaded (loadHead first)") }
    let h = headInput(hidden)
    for start in stride(from: 0, to: h.rows, by: rows) {
      let range = start..<min(h.rows, start + rows)
      try body(range, matmul(h.submatrix(rows: range, columns: 0..<h.columns), head, transposeB: true))
    }
  }

  /// Rows of logits formed at once by `negativeLogLikelihood` and `forEachLogitsChunk`: 256 rows of
  /// a 49152-token vocabulary are 48 MiB.
  public static let headRows = 256

  /// The whole forward pass: embed, every block in order, logits. Equal bit for bit to calling
  /// `embed`, `runBlock` for every block and `logits` in turn. Blocks and a head that are not
  /// loaded are read for this call.
  public func forward(_ tokens: [Int], sequenceLength: Int? = nil) throws(ForwardError) -> Matrix<Float> {
    let hidden = try lastHidden(tokens, sequenceLength: sequenceLength)
    return matmul(headInput(hidden), try loadedOrRead(head, readHead), transposeB: true)
  }

  /// The next-token NLL of every window: row t of window w predicts token t + 1 of the window
  /// (L − 1 predictions per window of L tokens). The logits are formed `headRows` rows at a time,
  /// so the full `[tokens × vocab]` matrix never exists. Blocks and a head that are not loaded are
  /// read for this call.
  public func negativeLogLikelihood(_ tokens: [Int], sequenceLength: Int? = nil) throws(ForwardError)
    -> NegativeLogLikelihood
  {
    let length = try checkedSequenceLength(tokens.count, sequenceLength)
    let hidden = try lastHidden(tokens, sequenceLength: length)
    return try negativeLogLikelihood(
      lastHidden: hidden, tokens: tokens, sequenceLength: length, head: try headOrBands())
  }

  /// The head for the logits: the loaded one; nil (read band by band, `bandedLogits`) when the
  /// source reads its rows by range; else the whole head read for this call.
  func headOrBands() throws(ForwardError) -> Matrix<Float>? {
    if let head { return head }
    return readsHeadByRows ? nil : try readHead()
  }

  /// The next-token NLL of `tokens` from the last block's output on them, `lastHidden`
  /// (`[tokens × hidden]`, windows of `sequenceLength` laid end to end, nil: one window): the second
  /// half of `negativeLogLikelihood(_:sequenceLength:)`, for callers that run the blocks themselves.
  /// A head that is not loaded is read band by band for each chunk of rows (`readsHeadByRows`,
  /// `bandedLogits`), or whole for this call when the source cannot read rows by range.
  public func negativeLogLikelihood(lastHidden: Matrix<Float>, tokens: [Int], sequenceLength: Int? = nil)
    throws(ForwardError) -> NegativeLogLikelihood
  {
    let length = try checkedSequenceLength(tokens.count, sequenceLength)
    precondition(
      lastHidden.rows == tokens.count, "negativeLogLikelihood: \(lastHidden.rows) rows for \(tokens.count) tokens")
    return try negativeLogLikelihood(
      lastHidden: lastHidden, tokens: tokens, sequenceLength: length, head: try headOrBands())
  }

  /// `head` nil: the logits of each chunk formed band by band from the source (`bandedLogits`).
  func negativeLogLikelihood(lastHidden: Matrix<Float>, tokens: [Int], sequenceLength length: Int, head: Matrix<Float>?)
    throws(ForwardError) -> NegativeLogLikelihood
  {
    let h = headInput(lastHidden)
    // Rows that have a next token in their window, with their targets.
    var rows: [Int] = []
    var targets: [Int] = []
    for t in 0..<tokens.count where t % length != length - 1 {
      rows.append(t)
      targets.append(tokens[t + 1])
    }
    var total = NegativeLogLikelihood()
    let headRows = Self.headRows
    for start in stride(from: 0, to: rows.count, by: headRows) {
      let chunk = rows[start..<min(rows.count, start + headRows)]
      var x = Matrix<Float>(rows: chunk.count, columns: h.columns)
      for (i, r) in chunk.enumerated() { x.setRow(i, to: h.row(r)) }
      let logits: Matrix<Float>
      if let head { logits = matmul(x, head, transposeB: true) } else { logits = try bandedLogits(x) }
      total = total + PruneModels.negativeLogLikelihood(logits: logits, targets: Array(targets[chunk.indices]))
    }
    return total
  }

  /// Vocabulary rows of the head read from the source at once by `bandedLogits`: 2048 rows of a
  /// 4096-wide head are 32 MiB of Float (a 32000 × 4096 head whole is 500 MiB).
  public static let headBandRows = 2048

  /// x·Headᵀ, `[x.rows × vocab]`, with the head read from the source `headBandRows` vocabulary rows
  /// at a time and each band's GEMM written into its columns of the result. Each element is the
  /// same dot product over the same k = wordEmbedDim, and the GEMM's reduction order depends on k
  /// and its kc blocking alone, not on n or on which column block an element is in
  /// (GEMM+Blocked.swift, "Determinism"), so the logits are the bits of x·Headᵀ with the whole head.
  func bandedLogits(_ x: Matrix<Float>, bandRows: Int = headBandRows) throws(ForwardError) -> Matrix<Float> {
    precondition(bandRows >= 1, "bandedLogits: \(bandRows) rows per band")
    let vocab = config.vocabSize
    let k = config.wordEmbedDim
    precondition(x.columns == k, "bandedLogits: x \(x.shapeDescription) is not [rows × \(k)]")
    var logits = Matrix<Float>(rows: x.rows, columns: vocab)
    guard x.rows > 0, k > 0 else { return logits }
    for start in stride(from: 0, to: vocab, by: bandRows) {
      let band = start..<min(vocab, start + bandRows)
      let w = try reader.rows(headTensorName, shape: [vocab, k], rows: band)
      x.withUnsafeBufferPointer { xp in
        w.withUnsafeBufferPointer { wp in
          logits.withUnsafeMutableBufferPointer { lp in
            gemm(
              transposeA: false, transposeB: true, m: x.rows, n: band.count, k: k, alpha: 1, a: xp.baseAddress!,
              lda: k, b: wp.baseAddress!, ldb: k, beta: 0, c: lp.baseAddress! + start, ldc: vocab)
          }
        }
      }
    }
    return logits
  }

  // MARK: - Pieces

  /// The last block's output on `tokens`; a block that is not loaded is read for this call.
  func lastHidden(_ tokens: [Int], sequenceLength: Int?) throws(ForwardError) -> Matrix<Float> {
    var h = try embed(tokens, sequenceLength: sequenceLength)
    let length = sequenceLength ?? tokens.count
    for l in 0..<blocks.count {
      let block: Block
      if let loaded = blocks[l] {
        block = loaded
      } else {
        block = try Self.readBlock(l, reader: reader, layout: layout, config: config, reading: true)!
      }
      h = run(block, l, hidden: h, sequenceLength: length, capture: { _ in })
    }
    return h
  }

  func headInput(_ hidden: Matrix<Float>) -> Matrix<Float> {
    var h = hidden
    if let finalNorm { h = norm(h, finalNorm) }
    if let projectOut { h = linear(h, projectOut) }
    return h
  }

  func checkedSequenceLength(_ tokens: Int, _ sequenceLength: Int?) throws(ForwardError) -> Int {
    let length = sequenceLength ?? tokens
    guard tokens > 0, length > 0, tokens % length == 0 else {
      throw .invalidSequenceLength(tokens: tokens, sequenceLength: length)
    }
    return length
  }

  /// The architecture's norm: RMSNorm for LLaMA, LayerNorm otherwise.
  func norm(_ x: Matrix<Float>, _ weights: NormWeights) -> Matrix<Float> {
    config.architecture == .llama
      ? rmsNorm(x, weights, epsilon: config.normEpsilon) : layerNorm(x, weights, epsilon: config.normEpsilon)
  }

  /// RoPE cos/sin covering `length` positions.
  func rotaryTable(_ length: Int) -> RotaryTable {
    if let rotary, rotary.positions >= length { return rotary }
    return RotaryTable(
      headDim: config.headDim, theta: config.ropeTheta, positions: length, scaling: config.ropeScaling)
  }
}

// MARK: - The three blocks

extension TransformerLM {
  /// LLaMA block (`LlamaDecoderLayer`), h ∈ ℝ^{T×D}:
  ///
  ///   a = RMSNorm(h)·γ₁;  Q = a·W_qᵀ, K = a·W_kᵀ, V = a·W_vᵀ;  RoPE on Q and K
  ///   h ← h + Attn(Q, K, V)·W_oᵀ            (grouped heads, causal or sliding window, scale 1/√d)
  ///   b = RMSNorm(h)·γ₂
  ///   h ← h + (silu(b·W_gateᵀ) ⊙ b·W_upᵀ)·W_downᵀ
  func llamaBlock(
    _ b: Block, _ index: Int, _ hidden: Matrix<Float>, _ length: Int, _ names: [String],
    _ capture: (LinearInput) throws -> Void
  ) rethrows -> Matrix<Float> {
    let c = config
    var h = hidden
    let a = rmsNorm(h, b.attentionNorm, epsilon: c.normEpsilon)
    try capture(LinearInput(layers: Array(names[0...2]), input: a))
    var q = linear(a, b.linears[0])
    var k = linear(a, b.linears[1])
    let v = linear(a, b.linears[2])
    let table = rotaryTable(length)
    applyRotary(&q, heads: c.headCount, table: table, sequenceLength: length)
    applyRotary(&k, heads: c.keyValueHeadCount, table: table, sequenceLength: length)
    let attention = causalAttention(
      q: HeadOperand(matrix: q, columnOffset: 0), k: HeadOperand(matrix: k, columnOffset: 0),
      v: HeadOperand(matrix: v, columnOffset: 0), heads: c.headCount, keyValueHeads: c.keyValueHeadCount,
      headDim: c.headDim, sequenceLength: length, scale: attentionScale(layer: 0),
      window: c.slidingWindow?.size(layer: index))
    try capture(LinearInput(layers: [names[3]], input: attention))
    addInPlace(&h, linear(attention, b.linears[3]))

    let m = rmsNorm(h, b.mlpNorm, epsilon: c.normEpsilon)
    try capture(LinearInput(layers: Array(names[4...5]), input: m))
    var gate = linear(m, b.linears[4])
    swiGLU(gate: &gate, up: linear(m, b.linears[5]))
    try capture(LinearInput(layers: [names[6]], input: gate))
    addInPlace(&h, linear(gate, b.linears[6]))
    return h
  }

  /// OPT block (`OPTDecoderLayer`); pre-LN (do_layer_norm_before, every OPT but 350m):
  ///
  ///   a = LN₁(h);  h ← h + Attn(a·W_qᵀ + b_q, a·W_kᵀ + b_k, a·W_vᵀ + b_v)·W_oᵀ + b_o
  ///   b = LN₂(h);  h ← h + act(b·W₁ᵀ + b₁)·W₂ᵀ + b₂
  ///
  /// post-LN: h ← LN₁(h + Attn(h)), then h ← LN₂(h + FFN(h)).
  func optBlock(
    _ b: Block, _ hidden: Matrix<Float>, _ length: Int, _ names: [String],
    _ capture: (LinearInput) throws -> Void
  ) rethrows -> Matrix<Float> {
    let c = config
    var h = hidden
    let a = c.normBefore ? layerNorm(h, b.attentionNorm, epsilon: c.normEpsilon) : h
    try capture(LinearInput(layers: Array(names[0...2]), input: a))
    let q = linear(a, b.linears[0])
    let k = linear(a, b.linears[1])
    let v = linear(a, b.linears[2])
    let attention = causalAttention(
      q: HeadOperand(matrix: q, columnOffset: 0), k: HeadOperand(matrix: k, columnOffset: 0),
      v: HeadOperand(matrix: v, columnOffset: 0), heads: c.headCount, keyValueHeads: c.headCount,
      headDim: c.headDim, sequenceLength: length, scale: attentionScale(layer: 0))
    try capture(LinearInput(layers: [names[3]], input: attention))
    addInPlace(&h, linear(attention, b.linears[3]))
    if !c.normBefore { h = layerNorm(h, b.attentionNorm, epsilon: c.normEpsilon) }

    let m = c.normBefore ? layerNorm(h, b.mlpNorm, epsilon: c.normEpsilon) : h
    try capture(LinearInput(layers: [names[4]], input: m))
    var inner = linear(m, b.linears[4])
    activate(&inner, c.activation)
    try capture(LinearInput(layers: [names[5]], input: inner))
    addInPlace(&h, linear(inner, b.linears[5]))
    if !c.normBefore { h = layerNorm(h, b.mlpNorm, epsilon: c.normEpsilon) }
    return h
  }

  /// GPT-2 block (`GPT2Block`), with [Q K V] = a·W_attnᵀ + b_attn fused (Conv1D c_attn):
  ///
  ///   a = LN₁(h);  h ← h + Attn(Q, K, V)·W_projᵀ + b_proj
  ///   b = LN₂(h);  h ← h + gelu_tanh(b·W_fcᵀ + b_fc)·W_mlpprojᵀ + b_mlpproj
  func gpt2Block(
    _ b: Block, _ index: Int, _ hidden: Matrix<Float>, _ length: Int, _ names: [String],
    _ capture: (LinearInput) throws -> Void
  ) rethrows -> Matrix<Float> {
    let c = config
    var h = hidden
    let a = layerNorm(h, b.attentionNorm, epsilon: c.normEpsilon)
    try capture(LinearInput(layers: [names[0]], input: a))
    let qkv = linear(a, b.linears[0])
    let d = c.hiddenSize
    let attention = causalAttention(
      q: HeadOperand(matrix: qkv, columnOffset: 0), k: HeadOperand(matrix: qkv, columnOffset: d),
      v: HeadOperand(matrix: qkv, columnOffset: 2 * d), heads: c.headCount, keyValueHeads: c.headCount,
      headDim: c.headDim, sequenceLength: length, scale: attentionScale(layer: index))
    try capture(LinearInput(layers: [names[1]], input: attention))
    addInPlace(&h, linear(attention, b.linears[1]))

    let m = layerNorm(h, b.mlpNorm, epsilon: c.normEpsilon)
    try capture(LinearInput(layers: [names[2]], input: m))
    var inner = linear(m, b.linears[2])
    activate(&inner, c.activation)
    try capture(LinearInput(layers: [names[3]], input: inner))
    addInPlace(&h, linear(inner, b.linears[3]))
    return h
  }

  /// The factor on Q·Kᵀ: 1/√d (GPT-2: only with scale_attn_weights, and also 1/(layer + 1) with
  /// scale_attn_by_inverse_layer_idx).
  func attentionScale(layer: Int) -> Float {
    var scale: Float = config.scaleAttention ? 1 / Float(config.headDim).squareRoot() : 1
    if config.scaleAttentionByInverseLayer { scale /= Float(layer + 1) }
    return scale
  }
}

// MARK: - Names

/// Where an architecture keeps its tensors (Hugging Face names).
struct Layout: Sendable {
  /// One linear layer of a block: its module name relative to the block and its [out, in] shape.
  struct Role: Sendable {
    let name: String
    let shape: @Sendable (ForwardConfig) -> [Int]
  }

  package let tokenEmbedding: String
  package let positionEmbedding: String?
  package let projectIn: String?
  package let projectOut: String?
  package let finalNorm: String
  package let head = "lm_head.weight"
  let blocksPrefix: String
  let attentionNorm: String
  let mlpNorm: String
  let linearRoles: [Role]

  func blockPrefix(_ l: Int) -> String { "\(blocksPrefix)\(l)." }

  /// The layout of `config`'s architecture; `names` (the checkpoint's) decides between the prefixed
  /// and unprefixed spellings (`model.decoder.` or `decoder.` for OPT, `transformer.` or none for
  /// GPT-2).
  init(config: ForwardConfig, names: Set<String>) {
    switch config.architecture {
    case .llama:
      tokenEmbedding = "model.embed_tokens.weight"
      positionEmbedding = nil
      projectIn = nil
      projectOut = nil
      finalNorm = "model.norm"
      blocksPrefix = "model.layers."
      attentionNorm = "input_layernorm"
      mlpNorm = "post_attention_layernorm"
      linearRoles = [
        Role(name: "self_attn.q_proj") { [$0.headCount * $0.headDim, $0.hiddenSize] },
        Role(name: "self_attn.k_proj") { [$0.keyValueHeadCount * $0.headDim, $0.hiddenSize] },
        Role(name: "self_attn.v_proj") { [$0.keyValueHeadCount * $0.headDim, $0.hiddenSize] },
        Role(name: "self_attn.o_proj") { [$0.hiddenSize, $0.headCount * $0.headDim] },
        Role(name: "mlp.gate_proj") { [$0.intermediateSize, $0.hiddenSize] },
        Role(name: "mlp.up_proj") { [$0.intermediateSize, $0.hiddenSize] },
        Role(name: "mlp.down_proj") { [$0.hiddenSize, $0.intermediateSize] },
      ]
    case .opt:
      let base = names.contains("decoder.embed_tokens.weight") ? "decoder." : "model.decoder."
      tokenEmbedding = base + "embed_tokens.weight"
      positionEmbedding = base + "embed_positions.weight"
      projectIn = base + "project_in.weight"
      projectOut = base + "project_out.weight"
      finalNorm = base + "final_layer_norm"
      blocksPrefix = base + "layers."
      attentionNorm = "self_attn_layer_norm"
      mlpNorm = "final_layer_norm"
      linearRoles = [
        Role(name: "self_attn.q_proj") { [$0.hiddenSize, $0.hiddenSize] },
        Role(name: "self_attn.k_proj") { [$0.hiddenSize, $0.hiddenSize] },
        Role(name: "self_attn.v_proj") { [$0.hiddenSize, $0.hiddenSize] },
        Role(name: "self_attn.out_proj") { [$0.hiddenSize, $0.hiddenSize] },
        Role(name: "fc1") { [$0.intermediateSize, $0.hiddenSize] },
        Role(name: "fc2") { [$0.hiddenSize, $0.intermediateSize] },
      ]
    case .gpt2:
      let base = names.contains("wte.weight") ? "" : "transformer."
      tokenEmbedding = base + "wte.weight"
      positionEmbedding = base + "wpe.weight"
      projectIn = nil
      projectOut = nil
      finalNorm = base + "ln_f"
      blocksPrefix = base + "h."
      attentionNorm = "ln_1"
      mlpNorm = "ln_2"
      linearRoles = [
        Role(name: "attn.c_attn") { [3 * $0.hiddenSize, $0.hiddenSize] },
        Role(name: "attn.c_proj") { [$0.hiddenSize, $0.hiddenSize] },
        Role(name: "mlp.c_fc") { [$0.intermediateSize, $0.hiddenSize] },
        Role(name: "mlp.c_proj") { [$0.hiddenSize, $0.intermediateSize] },
      ]
    }
  }
}

/// Reads tensors with shape checks and typed errors.
struct WeightReader: Sendable {
  let source: any TensorSource
  let architecture: String

  /// Throws unless the source has tensor `name` of `shape`.
  func check(_ name: String, shape: [Int]) throws(ForwardError) {
    guard let found = source.shape(of: name) else { throw .missingTensor(name: name, architecture: architecture) }
    guard found == shape else { throw .shapeMismatch(name: name, expected: shape, found: found) }
  }

  func values(_ name: String, shape: [Int]) throws(ForwardError) -> [Float] {
    try check(name, shape: shape)
    let tensor: FloatTensor
    do {
      tensor = try source.floatTensor(name)
    } catch {
      throw .unreadableTensor(name: name, reason: "\(error)")
    }
    guard tensor.values.count == shape.reduce(1, *) else {
      throw .shapeMismatch(name: name, expected: shape, found: tensor.shape)
    }
    return tensor.values
  }

  func matrix(_ name: String, shape: [Int]) throws(ForwardError) -> Matrix<Float> {
    Matrix(rows: shape[0], columns: shape[1], elements: try values(name, shape: shape))
  }

  /// Rows `rows` of the matrix `name` of `shape`, `[rows.count × shape[1]]`, read from the source
  /// by range (`TensorSource.floatRows`).
  func rows(_ name: String, shape: [Int], rows: Range<Int>) throws(ForwardError) -> Matrix<Float> {
    try check(name, shape: shape)
    let tensor: FloatTensor
    do {
      tensor = try source.floatRows(name, rows: rows)
    } catch {
      throw .unreadableTensor(name: name, reason: "\(error)")
    }
    guard tensor.values.count == rows.count * shape[1] else {
      throw .shapeMismatch(name: name, expected: [rows.count, shape[1]], found: tensor.shape)
    }
    return Matrix(rows: rows.count, columns: shape[1], elements: tensor.values)
  }

  func vector(_ name: String, count: Int) throws(ForwardError) -> [Float] {
    try values(name, shape: [count])
  }

  /// A norm's γ (`name.weight`) and, when `bias`, β (`name.bias`).
  func norm(_ name: String, width: Int, bias: Bool) throws(ForwardError) -> NormWeights {
    NormWeights(
      weight: try vector(name + ".weight", count: width), bias: bias ? try vector(name + ".bias", count: width) : nil)
  }
}

// MARK: - Negative log-likelihood

/// Σ over rows r < targets.count of −log softmax(logits_r)[targets_r], in nats:
///
///   −log p(y | z) = log Σⱼ exp(zⱼ − m) + m − z_y,   m = maxⱼ zⱼ
///
/// The exponentials are summed in Float lanes per block of 1024 logits and the blocks in Double;
/// row sums are added in row order, so the result does not depend on the thread count.
public func negativeLogLikelihood(logits: Matrix<Float>, targets: [Int]) -> NegativeLogLikelihood {
  precondition(targets.count <= logits.rows, "negativeLogLikelihood: \(targets.count) targets for \(logits.rows) rows")
  let width = logits.columns
  var perRow = [Double](repeating: 0, count: targets.count)
  logits.withUnsafeBufferPointer { lp in
    targets.withUnsafeBufferPointer { tp in
      perRow.withUnsafeMutableBufferPointer { rp in
        let ls = SendableConstPointer(lp.baseAddress!)
        let ts = SendableConstPointer(tp.baseAddress!)
        let rs = SendablePointer(rp.baseAddress!)
        forEachRowChunk(targets.count, work: targets.count * width) { rows in
          for r in rows {
            let z = ls.base + r * width
            let y = ts.base[r]
            precondition(y >= 0 && y < width, "negativeLogLikelihood: target \(y) outside 0..<\(width)")
            var m = -Float.infinity
            for j in 0..<width { m = max(m, z[j]) }
            let mv = SIMD8<Float>(repeating: m)
            var total = 0.0
            var j = 0
            while j < width {
              let end = min(width, j + 1024)
              var acc = SIMD8<Float>(repeating: 0)
              while j + 8 <= end {
                acc += fastExp(UnsafeRawPointer(z + j).loadUnaligned(as: SIMD8<Float>.self) - mv)
                j += 8
              }
              var tail: Float = 0
              while j < end {
                tail += fastExp(z[j] - m)
                j += 1
              }
              total += Double(acc.sum()) + Double(tail)
            }
            rs.base[r] = Foundation.log(total) + Double(m) - Double(z[y])
          }
        }
      }
    }
  }
  return NegativeLogLikelihood(sum: perRow.reduce(0, +), count: targets.count)
}
