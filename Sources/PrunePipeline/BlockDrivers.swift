// The two ways of pruning one decoder block (Docs/pipeline.md#schedules): which calibration inputs
// each linear layer is pruned against. `ModelPruner` walks the blocks and calls one of these per
// block.

import Foundation
import PruneKernels
import PruneSolvers

/// Which activations each linear layer of a block is pruned against (Docs/pipeline.md#schedules).
public enum PruningSchedule: String, Sendable, CaseIterable, Codable {
  /// Driver A (SparseGPT, Wanda, ADMM): the block's input comes from the already-pruned earlier
  /// blocks, x_ℓ^pr; one pass of the *unpruned* block gathers the Grams of all its layers; every
  /// layer is pruned against its own input, ‖ŴX − WX‖; the pruned block then produces x_{ℓ+1}^pr.
  case sequential
  /// Driver C (FISTAPruner's intra-layer cumulative error correction,
  /// Docs/pipeline.md#corrected-driver-c): the block's input is the dense model's x_ℓ^dense; its
  /// layer groups are pruned in order (q,k,v → o → gate,up → down), each against the dense output
  /// with the inputs the already-pruned groups produce, ‖ŴX* − WX‖ with X the dense input and X*
  /// the pruned-path input. Blocks are independent, so they can be pruned in any order, several at
  /// once, or in separate processes.
  case corrected
  /// Driver D (SparseLLM, Docs/pipeline.md#sparsellm-driver-d): sequential between blocks as Driver
  /// A; inside a block the attention layers are pruned locally by SparseLLM's inner method, then
  /// the FFN's layers together by `SparseLLM.prune` against the pruned attention's output
  /// (`pruneBlockSparseLLM`). Only for `--method sparsellm`, which only runs on it.
  case sparsellm

  /// FISTAPruner's own schedule for FISTA, Driver D for SparseLLM, Driver A for every other method.
  public static func defaultSchedule(for method: PruningMethod) -> PruningSchedule {
    switch method {
    case .fista: return .corrected
    case .sparsellm: return .sparsellm
    default: return .sequential
    }
  }
}

/// One pruned linear layer of a model run: where it is and what its method reported.
public struct LayerRecord: Sendable, Codable, Equatable {
  /// Decoder block index.
  public var block: Int
  /// Hugging Face module name, e.g. `model.layers.3.self_attn.q_proj`.
  public var name: String
  /// [out, in].
  public var shape: [Int]
  /// Entries set to zero (exact zeros of the pruned weight).
  public var zeros: Int
  /// Whether the layer was pruned against error-corrected inputs (X* ≠ X).
  public var errorCorrected: Bool
  /// The method's report: realised sparsity, relative error, λ, damping, time...
  public var report: PruningReport
  /// The sparsity the layer was asked for when its block's differs from the plan's (OWL,
  /// `ModelPruningPlan.allocation`); nil under the uniform allocation.
  public var targetSparsity: Double? = nil
}

extension LayerRecord {
  /// The record of a layer pruned to `result`: its shape, its exact zeros counted, its report.
  init(block: Int, name: String, result: PruningResult<Float>, errorCorrected: Bool) {
    var zeros = 0
    result.weight.withUnsafeBufferPointer { p in for v in p where v == 0 { zeros += 1 } }
    self.init(
      block: block, name: name, shape: [result.weight.rows, result.weight.columns], zeros: zeros,
      errorCorrected: errorCorrected, report: result.report)
  }
}

/// What pruning one block produced: its new linear weights (in the order they run) and records.
struct BlockOutcome: Sendable {
  var weights: [(name: String, weight: Matrix<Float>)]
  var records: [LayerRecord]
  /// Seconds spent in the layer method (`pruneLayer`, SparseLLM's FFN), for `PhaseSeconds.solve`.
  var solveSeconds = 0.0
  /// Seconds of the driver outside the method and the spill reads, for `PhaseSeconds.gram`
  /// (`ModelPruner.measured`).
  var gramSeconds = 0.0
}

/// Where the calibration activations entering a block are kept: in memory, or in a file of the
/// spill folder (Docs/pipeline.md#spill), read a chunk at a time.
enum HiddenStates: Sendable {
  case memory(Matrix<Float>)
  case spilled(SpillFile)

  var rows: Int {
    switch self {
    case .memory(let m): return m.rows
    case .spilled(let f): return f.rows
    }
  }
  var columns: Int {
    switch self {
    case .memory(let m): return m.columns
    case .spilled(let f): return f.columns
    }
  }
}

/// The calibration activations entering one block: `[tokens × hidden]`, windows of
/// `sequenceLength` tokens laid end to end. The Grams are reduced over chunks of `chunkWindows`
/// windows (the chunk fixes the rounding order: `DepthBlockedRows`), and the block runs over
/// pieces of `pieceWindows` windows of a chunk, so that its internal activations stay bounded by
/// one piece whatever the chunk. Spilled, the activations are read from disk a piece at a time;
/// the pieces and their bits are the same either way.
struct BlockInput: Sendable {
  var states: HiddenStates
  var sequenceLength: Int
  var chunkWindows: Int
  /// Windows the block runs on at once (`pieceWindows(sequenceLength:chunkWindows:)` unless a test
  /// compares others; the results do not depend on it).
  var pieceWindows: Int

  init(states: HiddenStates, sequenceLength: Int, chunkWindows: Int, pieceWindows: Int? = nil) {
    self.states = states
    self.sequenceLength = sequenceLength
    self.chunkWindows = chunkWindows
    self.pieceWindows =
      pieceWindows ?? Self.pieceWindows(sequenceLength: sequenceLength, chunkWindows: chunkWindows)
  }

  /// Tokens the block is run on at once, at most (whole windows, at least one): one window of
  /// 1024 tokens of SmolLM2 has 26 MiB of internal activations, and as a GEMM its rows are still
  /// many cache blocks.
  static let pieceTokens = 1024

  /// Windows the block runs on at once: `pieceTokens` of them, at least one window, at most a chunk.
  static func pieceWindows(sequenceLength: Int, chunkWindows: Int) -> Int {
    max(1, min(chunkWindows, pieceTokens / max(1, sequenceLength)))
  }

  init(hidden: Matrix<Float>, sequenceLength: Int, chunkWindows: Int, pieceWindows: Int? = nil) {
    self.init(
      states: .memory(hidden), sequenceLength: sequenceLength, chunkWindows: chunkWindows, pieceWindows: pieceWindows)
  }

  /// Calibration tokens (rows).
  var tokens: Int { states.rows }

  /// Seconds spent reading and writing this input's spill file so far (0 in memory).
  var spillSeconds: Double {
    if case .spilled(let file) = states { return file.seconds }
    return 0
  }

  /// Row ranges of the chunks.
  var chunks: [Range<Int>] { Self.chunks(rows: tokens, sequenceLength: sequenceLength, chunkWindows: chunkWindows) }

  /// Row ranges of `chunkWindows` windows of `sequenceLength` over `rows` rows.
  static func chunks(rows: Int, sequenceLength: Int, chunkWindows: Int) -> [Range<Int>] {
    let step = sequenceLength * chunkWindows
    return stride(from: 0, to: rows, by: step).map { $0..<min(rows, $0 + step) }
  }

  /// Row ranges of the pieces of `chunk`, in order.
  func pieces(of chunk: Range<Int>) -> [Range<Int>] {
    let step = sequenceLength * pieceWindows
    return stride(from: chunk.lowerBound, to: chunk.upperBound, by: step).map {
      $0..<min(chunk.upperBound, $0 + step)
    }
  }

  /// Row ranges of every piece of every chunk, in order.
  var pieces: [Range<Int>] { chunks.flatMap { pieces(of: $0) } }

  /// Rows `r` of the activations (read from the spill file when spilled).
  func rows(_ r: Range<Int>) throws(ModelPruningError) -> Matrix<Float> {
    switch states {
    case .memory(let hidden):
      return r == 0..<hidden.rows ? hidden : hidden.submatrix(rows: r, columns: 0..<hidden.columns)
    case .spilled(let file):
      return try file.read(r)
    }
  }

  /// The block applied to every piece, rows in the same order (the forward pass treats rows
  /// independently but for attention within a window, and a GEMM reduces each element in an order
  /// that depends on its depth only, so the output has the same bits as one pass over all rows):
  /// in memory, or with `spill` into a new file of the spill folder (`spill.file(block: block + 1,
  /// …)`), a piece at a time. With `captures`, also keeps the input of every linear group:
  /// `captures[group][piece]`. `observe(group, input)` sees every linear group's input of every
  /// piece, in order, as it is formed (OWL's input norms, `ModelPruner.owlAllocation`).
  func output(
    of model: TransformerLM, block: Int, captures: UnsafeMutablePointer<[[Matrix<Float>]]>? = nil,
    spill: ActivationSpill? = nil, observe: (Int, Matrix<Float>) -> Void = { _, _ in }
  ) throws(ModelPruningError) -> HiddenStates {
    let parts = pieces
    let columns = states.columns
    let file = try spill?.file(block: block + 1, rows: tokens, columns: columns)
    var out =
      parts.count == 1 || file != nil
      ? Matrix<Float>(rows: 0, columns: 0) : Matrix<Float>(rows: tokens, columns: columns)
    for r in parts {
      var g = 0
      let y = model.runBlock(block, hidden: try rows(r), sequenceLength: sequenceLength) { captured in
        if let captures {
          if captures.pointee.count == g { captures.pointee.append([]) }
          captures.pointee[g].append(captured.input)
        }
        observe(g, captured.input)
        g += 1
      }
      if let file {
        try file.write(y, at: r.lowerBound)
        continue
      }
      if parts.count == 1 { return .memory(y) }
      out.withUnsafeMutableBufferPointer { po in
        y.withUnsafeBufferPointer { py in
          for i in 0..<py.count { po[r.lowerBound * columns + i] = py[i] }
        }
      }
    }
    if let file { return .spilled(file) }
    return .memory(out)
  }

  /// Bytes of the inputs of every linear group over all chunks (what `captures` would hold).
  func captureBytes(of model: TransformerLM, block: Int) -> Int {
    let widths = model.linearGroups(block: block).compactMap { names in
      (try? model.linearShape(names[0])[1])
    }
    return tokens * widths.reduce(0, +) * 4
  }
}

/// The rows of one operand of a calibration reduction over a chunk (G += XᵀX, K += XᵀX*), received
/// a piece at a time and handed on in the depth blocks (`GEMMBlocking.depthBlocks`) of the one
/// product over the whole chunk. Adding the blocks in turn gives the same bits as that product
/// (Docs/pipeline.md#memory), while at most one block and one piece of rows are held: the Grams
/// depend on the chunk, not on the piece size.
struct DepthBlockedRows {
  /// The chunk's depth blocks, in order.
  private let blocks: [Range<Int>]
  /// The next block to hand on.
  private var next = 0
  /// Rows received and not yet handed on, row-major.
  private var pending: [Float] = []
  /// Columns of every row.
  let columns: Int

  /// For a chunk of `chunkRows` rows reduced with `blocking`'s depth blocks.
  init(chunkRows: Int, columns: Int, blocking: GEMMBlocking) {
    blocks = blocking.depthBlocks(chunkRows)
    self.columns = columns
  }

  /// Appends `rows` (the next rows of the chunk) and returns the blocks now complete, in order.
  mutating func append(_ rows: Matrix<Float>) -> [Matrix<Float>] {
    precondition(rows.columns == columns, "DepthBlockedRows: \(rows.shapeDescription), want \(columns) columns")
    pending.append(contentsOf: rows.elements)
    var out: [Matrix<Float>] = []
    while next < blocks.count && pending.count >= blocks[next].count * columns {
      let n = blocks[next].count * columns
      out.append(Matrix(rows: blocks[next].count, columns: columns, elements: Array(pending[0..<n])))
      pending.removeFirst(n)
      next += 1
    }
    return out
  }

  /// Whether every row of the chunk was received and handed on.
  var isComplete: Bool { next == blocks.count && pending.isEmpty }
}

/// Thrown from a capture callback to stop a block's forward pass once the wanted input is seen.
private struct CaptureDone: Error {}

extension TransformerLM {
  /// The groups of block `index`'s linear layers that read the same input, in the order they run:
  /// LLaMA [q,k,v] [o] [gate,up] [down]; OPT [q,k,v] [out] [fc1] [fc2]; GPT-2 [c_attn] [c_proj]
  /// [c_fc] [mlp.c_proj].
  func linearGroups(block index: Int) -> [[String]] {
    let n = linearLayerNames(block: index)
    switch config.architecture {
    case .llama: return [Array(n[0...2]), [n[3]], Array(n[4...5]), [n[6]]]
    case .opt: return [Array(n[0...2]), [n[3]], [n[4]], [n[5]]]
    case .gpt2: return n.map { [$0] }
    }
  }

  /// The input of linear group `group` of block `index` on `hidden`: the forward pass stops as soon
  /// as that input is formed.
  func groupInput(block index: Int, group: Int, hidden: Matrix<Float>, sequenceLength: Int) -> Matrix<Float> {
    var seen = 0
    var captured: Matrix<Float>? = nil
    do {
      _ = try runBlock(index, hidden: hidden, sequenceLength: sequenceLength) { input in
        if seen == group {
          captured = input.input
          throw CaptureDone()
        }
        seen += 1
      }
    } catch {}
    guard let captured else { preconditionFailure("groupInput: block \(index) has no linear group \(group)") }
    return captured
  }
}

/// The scalar the pipeline accumulates Grams in. Float, as the reference codes do (SparseGPT, Wanda
/// and ADMM accumulate in float32, Docs/pipeline.md#gram-precision): the layer problems are solved
/// in Float, and over 16k tokens the blocked Float sum is within ~1e-6 relative of the Double one,
/// while the Float Gram and cross-Gram run twice as fast and need no Double copies of the
/// activations.
typealias GramScalar = Float

/// Prunes one layer from its Grams and records it.
///
/// Every error names the block and the layer: a weight or Gram holding NaN or Inf is reported with
/// the number of bad entries, the first one and where they come from, before any method runs; a
/// method's own error (`PruningError`) is wrapped with the layer's name.
func pruneLayer(
  _ model: TransformerLM, block: Int, name: String, gram: Matrix<GramScalar>, crossGram: Matrix<GramScalar>?,
  denseGram: Matrix<GramScalar>?, tokens: Int, method: PruningMethod, pattern: SparsityPattern, options: MethodOptions
) throws(ModelPruningError) -> (weight: Matrix<Float>, record: LayerRecord) {
  let w: Matrix<Float>
  do { w = try model.linearWeights(name).weight } catch { throw .forward(error) }
  try checkLayerInputs(block: block, name: name, weight: w, gram: gram, crossGram: crossGram, denseGram: denseGram)
  let problem: LayerProblem<Float>
  do {
    problem = try LayerProblem(
      weight: w, gram: gram, crossGram: crossGram, denseGram: denseGram, tokens: tokens)
  } catch {
    throw .layer(block: block, name: name, .problem(error))
  }
  let result: PruningResult<Float>
  do {
    // The Grams are the pipeline's own sums Σ x xᵀ: semidefinite by construction.
    result = try prune(problem, method: method, pattern: pattern, options: options, gramsAccumulated: true)
  } catch {
    throw .layer(block: block, name: name, .method(method, error))
  }
  let record = LayerRecord(block: block, name: name, result: result, errorCorrected: problem.isErrorCorrected)
  return (result.weight, record)
}

/// Stops with `ModelPruningError.layer` when the weight or a calibration Gram of layer `name`
/// holds NaN or Inf, saying how many entries, the first one, and where such values come from.
func checkLayerInputs(
  block: Int, name: String, weight: Matrix<Float>, gram: Matrix<GramScalar>, crossGram: Matrix<GramScalar>?,
  denseGram: Matrix<GramScalar>?
) throws(ModelPruningError) {
  try checkLayerWeight(block: block, name: name, weight: weight)
  let grams: [(String, Matrix<GramScalar>?)] = [
    ("the calibration Gram of its input (X*ᵀX* under error correction)", gram),
    ("the cross-Gram XᵀX* of its input", crossGram), ("the dense Gram XᵀX of its input", denseGram),
  ]
  for case (let what, let g?) in grams {
    if let bad = NonFiniteSummary(of: g) {
      throw .layer(block: block, name: name, .nonFiniteGram(what: what, entries: nonFiniteEntries(bad, of: g)))
    }
  }
}

/// Stops with `ModelPruningError.layer` when the weight of layer `name` holds NaN or Inf.
func checkLayerWeight(block: Int, name: String, weight: Matrix<Float>) throws(ModelPruningError) {
  if let bad = NonFiniteSummary(of: weight) {
    throw .layer(
      block: block, name: name,
      .nonFiniteWeight(shape: weight.shapeDescription, entries: nonFiniteEntries(bad, of: weight)))
  }
}

/// "12 non-finite entries of 331776 (first [0, 5] = nan)", or "1 non-finite entry of …".
func nonFiniteEntries<T: KernelScalar>(_ bad: NonFiniteSummary, of m: Matrix<T>) -> String {
  "\(bad.count) non-finite \(bad.count == 1 ? "entry" : "entries") of \(m.rows * m.columns)"
    + " (first [\(bad.row), \(bad.column)] = \(bad.value))"
}

/// G_g = Σ_chunks X_gᵀX_g of the first `groups` linear groups of block `block`, from one pass of
/// the block as it is over `input`, a piece at a time (stopped after the last wanted group's input);
/// each chunk's rows are added in its depth blocks (`DepthBlockedRows`).
func groupGrams(_ model: TransformerLM, block: Int, input: BlockInput, groups: Int) throws(ModelPruningError)
  -> [GramAccumulator<GramScalar>]
{
  var grams: [GramAccumulator<GramScalar>] = []
  for chunk in input.chunks {
    var rows: [DepthBlockedRows] = []
    for r in input.pieces(of: chunk) {
      let hidden = try input.rows(r)
      var g = 0
      do {
        _ = try model.runBlock(block, hidden: hidden, sequenceLength: input.sequenceLength) { captured in
          let x = captured.input
          if grams.count == g { grams.append(GramAccumulator<GramScalar>(features: x.columns)) }
          if rows.count == g {
            rows.append(DepthBlockedRows(chunkRows: chunk.count, columns: x.columns, blocking: GramScalar.gramBlocking))
          }
          for part in rows[g].append(x) { grams[g].add(part) }
          g += 1
          if g == groups { throw CaptureDone() }
        }
      } catch {}
    }
    assert(rows.allSatisfy(\.isComplete), "groupGrams: a chunk's rows were not all reduced")
  }
  return grams
}

/// Driver A on one block: one pass of the block as it is (unpruned) over `input` gathers the Gram
/// G = XᵀX of every linear group; every layer is pruned against its own input. Returns the pruned
/// weights (the caller installs them, rounded to the output's dtype, and runs the pruned block to
/// get the next block's input).
///
/// Memory: each layer's pruned weight replaces its dense weight in `model` as soon as it is
/// pruned, and each group's Gram is dropped once its layers are done, so the block is held once
/// (not dense and pruned side by side) and the Grams shrink as the block goes. The results do not
/// change: every layer is pruned from its own dense weight and the Grams of the unpruned block.
func pruneBlockSequential(
  _ model: inout TransformerLM, block: Int, input: BlockInput, method: PruningMethod, pattern: SparsityPattern,
  options: MethodOptions, progress: (LayerRecord) -> Void
) throws(ModelPruningError) -> BlockOutcome {
  let groups = model.linearGroups(block: block)
  var grams = try groupGrams(model, block: block, input: input, groups: groups.count)
  var outcome = BlockOutcome(weights: [], records: [])
  for (g, names) in groups.enumerated() {
    let gram = grams[g].gram
    let tokens = grams[g].tokens
    grams[g] = GramAccumulator(features: 0)
    for name in names {
      let solving = ContinuousClock.now
      let (w, record) = try pruneLayer(
        model, block: block, name: name, gram: gram, crossGram: nil, denseGram: nil, tokens: tokens,
        method: method, pattern: pattern, options: options)
      outcome.solveSeconds += secondsSince(solving)
      do { try model.setLinearWeight(name, w) } catch { throw .forward(error) }
      outcome.weights.append((name, w))
      outcome.records.append(record)
      progress(record)
    }
  }
  return outcome
}

/// Magnitude without calibration (`ModelPruningPlan.readsCalibration` false): every linear layer
/// of block `block` pruned from its weight alone (`Magnitude.prune(weight:pattern:)`), the same Ŵ
/// as under either schedule; the records carry no error (`PruningReport.errorMeasured` false).
func pruneBlockWeightsOnly(
  _ model: TransformerLM, block: Int, pattern: SparsityPattern, progress: (LayerRecord) -> Void
) throws(ModelPruningError) -> BlockOutcome {
  var outcome = BlockOutcome(weights: [], records: [])
  for name in model.linearGroups(block: block).joined() {
    let w: Matrix<Float>
    do { w = try model.linearWeights(name).weight } catch { throw .forward(error) }
    try checkLayerWeight(block: block, name: name, weight: w)
    let solving = ContinuousClock.now
    let result: PruningResult<Float>
    do { result = try Magnitude().prune(weight: w, pattern: pattern) } catch {
      throw .layer(block: block, name: name, .method(.magnitude, error))
    }
    outcome.solveSeconds += secondsSince(solving)
    let record = LayerRecord(block: block, name: name, result: result, errorCorrected: false)
    outcome.weights.append((name, result.weight))
    outcome.records.append(record)
    progress(record)
  }
  return outcome
}

/// Driver C on one block (Docs/pipeline.md#corrected-driver-c): `input` is the dense model's input
/// to the block. For each group g in order, with X_g its input in the dense block and X*_g its
/// input once the groups before g are pruned (X*_0 = X_0):
///
///     G = XᵀX,  G* = X*ᵀX*,  K = XᵀX*            (summed over chunks)
///     Ŵ = method(‖X*Ŵᵀ − XWᵀ‖², pattern)        for every layer of the group,
///
/// then the group's pruned weights are installed before the next group's X* is formed. The block's
/// output is not needed: the next block again starts from the dense model.
///
/// `denseInputs[g][p]`, when given, holds X_g of piece p (`BlockInput.pieces`) from the pass that produced the dense
/// chain's next input, so the dense block is not run again; otherwise it is recomputed per group.
func pruneBlockCorrected(
  _ model: TransformerLM, block: Int, input: BlockInput, denseInputs: [[Matrix<Float>]]? = nil, method: PruningMethod,
  pattern: SparsityPattern, options: MethodOptions, progress: (LayerRecord) -> Void
) throws(ModelPruningError) -> BlockOutcome {
  let dense = model
  var pruned = model
  let groups = model.linearGroups(block: block)
  var outcome = BlockOutcome(weights: [], records: [])
  for (g, names) in groups.enumerated() {
    var gDense: GramAccumulator<GramScalar>? = nil
    var gPruned: GramAccumulator<GramScalar>? = nil
    var cross: Matrix<GramScalar>? = nil
    var piece = 0
    for chunk in input.chunks {
      // Each sum in its own depth blocks over the chunk: the Grams' and the cross-Gram GEMM's.
      var xRows: DepthBlockedRows? = nil
      var xStarRows: DepthBlockedRows? = nil
      var crossRows: (x: DepthBlockedRows, xStar: DepthBlockedRows)? = nil
      for r in input.pieces(of: chunk) {
        let h = try input.rows(r)
        let x =
          denseInputs?[g][piece]
          ?? dense.groupInput(block: block, group: g, hidden: h, sequenceLength: input.sequenceLength)
        piece += 1
        if gDense == nil { gDense = GramAccumulator(features: x.columns) }
        if xRows == nil {
          xRows = DepthBlockedRows(chunkRows: chunk.count, columns: x.columns, blocking: GramScalar.gramBlocking)
        }
        for part in xRows!.append(x) { gDense!.add(part) }
        guard g > 0 else { continue }  // nothing upstream in this block is pruned yet: X* = X
        let xStar = pruned.groupInput(block: block, group: g, hidden: h, sequenceLength: input.sequenceLength)
        if gPruned == nil {
          gPruned = GramAccumulator(features: x.columns)
          cross = Matrix(rows: x.columns, columns: x.columns)
        }
        if xStarRows == nil {
          xStarRows = DepthBlockedRows(chunkRows: chunk.count, columns: x.columns, blocking: GramScalar.gramBlocking)
          let crossBlocking = GramScalar.gemmBlocking
          crossRows = (
            DepthBlockedRows(chunkRows: chunk.count, columns: x.columns, blocking: crossBlocking),
            DepthBlockedRows(chunkRows: chunk.count, columns: x.columns, blocking: crossBlocking)
          )
        }
        for part in xStarRows!.append(xStar) { gPruned!.add(part) }
        let xParts = crossRows!.x.append(x)
        let xStarParts = crossRows!.xStar.append(xStar)
        for (a, b) in zip(xParts, xStarParts) {
          gemm(a, b, into: &cross!, transposeA: true, beta: 1)  // K += XᵀX*
        }
      }
    }
    let denseGram = gDense!.gram
    let prunedGram = gPruned?.gram
    for name in names {
      let (w, record): (Matrix<Float>, LayerRecord)
      let solving = ContinuousClock.now
      defer { outcome.solveSeconds += secondsSince(solving) }
      if let prunedGram, let cross {
        (w, record) = try pruneLayer(
          dense, block: block, name: name, gram: prunedGram, crossGram: cross, denseGram: denseGram,
          tokens: gDense!.tokens, method: method, pattern: pattern, options: options)
      } else {
        (w, record) = try pruneLayer(
          dense, block: block, name: name, gram: denseGram, crossGram: nil, denseGram: nil, tokens: gDense!.tokens,
          method: method, pattern: pattern, options: options)
      }
      outcome.weights.append((name, w))
      outcome.records.append(record)
      progress(record)
    }
    for (name, w) in outcome.weights where names.contains(name) {
      do { try pruned.setLinearWeight(name, w) } catch { throw .forward(error) }
    }
  }
  return outcome
}
