// Non-uniform sparsity over a model's blocks (`prune model --allocation owl`, Docs/methods/owl.md):
// a dense pass over every block measures each block's outlier ratio on the calibration inputs,
// `OWLAllocation` turns the ratios into per-block sparsities, and the pruning run then gives every
// layer of block ℓ the unstructured ratio s_ℓ, whatever the method and schedule.

import Foundation
import PruneKernels
import PruneSolvers

/// The per-block sparsities a run used, for reports (`ModelPruningSummary.allocation`).
public struct BlockAllocation: Sendable, Codable, Equatable {
  /// One block of the model.
  public struct Block: Sendable, Codable, Equatable {
    public var block: Int
    /// D_ℓ: the share of the block's scores |W_ij|·‖x_j‖₂ above M × their mean.
    public var outlierRatio: Double
    /// s_ℓ: the ratio every layer of the block is pruned at.
    public var sparsity: Double
    /// Weights of the block's linear layers (P_ℓ).
    public var parameters: Int
    /// Weights the block's layers prune: Σ over its layers of the pattern's count at s_ℓ.
    public var pruned: Int
    /// Whether s_ℓ left [0, 1) and was clamped into it.
    public var clamped: Bool
  }

  /// The allocation (`owl`).
  public var method: SparsityAllocation
  /// M (`--owl-threshold`).
  public var threshold: Double
  /// λ (`--owl-range`).
  public var range: Double
  /// The requested sparsity S (the plan's ratio).
  public var target: Double
  /// Every block of the model (the allocation spans the whole model even when `--blocks` prunes a
  /// range, so that the parts of a split run agree).
  public var blocks: [Block]

  /// Σ P_ℓ s_ℓ / Σ P_ℓ: S unless a block was clamped.
  public var meanSparsity: Double {
    let total = blocks.reduce(0) { $0 + $1.parameters }
    return total > 0 ? blocks.reduce(0.0) { $0 + $1.sparsity * Double($1.parameters) } / Double(total) : 0
  }

  /// The blocks that were clamped.
  public var clampedBlocks: [Int] { blocks.filter(\.clamped).map(\.block) }

  /// Block `b`'s ratio.
  public func sparsity(block b: Int) -> Double { blocks[b].sparsity }

  /// The pattern of block `b`: `base`'s group at s_ℓ.
  public func pattern(block b: Int, base: SparsityPattern) -> SparsityPattern {
    guard case .unstructured(_, let group) = base else { return base }
    return .unstructured(ratio: blocks[b].sparsity, group: group)
  }

  private enum CodingKeys: String, CodingKey {
    case method, threshold, range, target, blocks, meanSparsity
  }

  public init(
    method: SparsityAllocation, threshold: Double, range: Double, target: Double, blocks: [Block]
  ) {
    self.method = method
    self.threshold = threshold
    self.range = range
    self.target = target
    self.blocks = blocks
  }

  /// The fields, and the mean sparsity for the reader (computed again when read).
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(method, forKey: .method)
    try c.encode(threshold, forKey: .threshold)
    try c.encode(range, forKey: .range)
    try c.encode(target, forKey: .target)
    try c.encode(blocks, forKey: .blocks)
    try c.encode(meanSparsity, forKey: .meanSparsity)
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    method = try c.decode(SparsityAllocation.self, forKey: .method)
    threshold = try c.decode(Double.self, forKey: .threshold)
    range = try c.decode(Double.self, forKey: .range)
    target = try c.decode(Double.self, forKey: .target)
    blocks = try c.decode([Block].self, forKey: .blocks)
  }
}

extension ModelPruner {
  /// Checks that the plan's allocation can run: OWL needs an unstructured pattern (an N:M pattern
  /// fixes every group's count, so a block cannot prune more or less) and finite M > 0, λ ≥ 0.
  func checkAllocation() throws(ModelPruningError) {
    guard plan.allocation == .owl else { return }
    guard case .unstructured = plan.pattern else {
      throw .invalidPlan(
        "--allocation owl needs unstructured sparsity: \(plan.pattern) fixes the count of every group of"
          + " \(plan.pattern.description.split(separator: ":").last ?? "M") weights, so a block cannot prune more or less",
        hint: "give --sparsity (e.g. --sparsity 0.7) with --allocation owl, or drop --allocation owl for N:M")
    }
    guard plan.owl.threshold.isFinite, plan.owl.threshold > 0, plan.owl.range.isFinite, plan.owl.range >= 0 else {
      throw .invalidPlan(
        "OWL's M (--owl-threshold \(plan.owl.threshold)) must be positive and λ (--owl-range \(plan.owl.range))"
          + " non-negative", hint: "give --owl-threshold 5 --owl-range 0.08 (the authors' LLaMA settings)")
    }
  }

  /// OWL's dense pass (Docs/methods/owl.md): every block b = 0 … L−1 of the still-dense `model` is
  /// run over the calibration activations `input` (h₀, then each dense block's output), streamed as
  /// the pruning is (each block loaded before and, with `releasesBlocks`, dropped after), while
  ///
  ///     ‖x_j‖₂² = Σ_t x_tj²        (= G_jj, summed in Double over the pieces in order)
  ///
  /// is gathered for every linear group's input; then D_b = `OWLAllocation.outlierRatio` of the
  /// block's layers and, once every D_b is known, the sparsities (`OWLAllocation.sparsities`).
  /// One dense block pass per block: the time goes to `phases.allocation` (reads to `read`, the
  /// spill to `spill`). The result depends only on the dense weights and the calibration, so a
  /// resumed run computes the same allocation again.
  func owlAllocation(_ model: inout TransformerLM, input h0: HiddenStates, phases: inout PhaseSeconds)
    throws(ModelPruningError) -> BlockAllocation
  {
    guard case .unstructured(let target, let group) = plan.pattern else { preconditionFailure("checkAllocation") }
    let start = ContinuousClock.now
    let spilledBefore = spill?.seconds ?? 0
    var readSeconds = 0.0
    var ratios: [Double] = []
    var parameters: [Int] = []
    var hidden = h0
    for b in 0..<model.blockCount {
      let reading = ContinuousClock.now
      do { try model.loadBlock(b) } catch { throw .forward(error) }
      readSeconds += secondsSince(reading)
      let input = BlockInput(states: hidden, sequenceLength: calibration.sequenceLength, chunkWindows: plan.chunkWindows)
      var squares: [[Double]] = []
      let next = try input.output(of: model, block: b, spill: spill) { g, x in
        if squares.count == g { squares.append(Array(repeating: 0, count: x.columns)) }
        x.withUnsafeBufferPointer { p in
          squares[g].withUnsafeMutableBufferPointer { s in
            for t in 0..<x.rows {
              for j in 0..<x.columns {
                let v = Double(p[t * x.columns + j])
                s[j] += v * v
              }
            }
          }
        }
      }
      var layers: [(weight: Matrix<Float>, inputNorms: [Double])] = []
      for (g, names) in model.linearGroups(block: b).enumerated() {
        let norms = squares[g].map { $0.squareRoot() }
        for name in names {
          let w: Matrix<Float>
          do { w = try model.linearWeights(name).weight } catch { throw .forward(error) }
          try checkLayerWeight(block: b, name: name, weight: w)
          layers.append((w, norms))
        }
      }
      ratios.append(OWLAllocation.outlierRatio(layers: layers, threshold: plan.owl.threshold))
      parameters.append(layers.reduce(0) { $0 + $1.weight.rows * $1.weight.columns })
      layers = []
      if b + 1 < model.blockCount { hidden = next }
      if releasesBlocks {
        model.releaseBlock(b)
        returnFreedMemory()
      }
    }
    let result = OWLAllocation.sparsities(
      outlierRatios: ratios, parameters: parameters, target: target, range: plan.owl.range)
    var blocks: [BlockAllocation.Block] = []
    for b in 0..<model.blockCount {
      let blockPattern = SparsityPattern.unstructured(ratio: result.sparsities[b], group: group)
      let pruned = model.linearLayerNames(block: b).reduce(0) { sum, name in
        sum + ((try? model.linearShape(name)).map { blockPattern.prunedCount(rows: $0[0], columns: $0[1]) } ?? 0)
      }
      blocks.append(
        BlockAllocation.Block(
          block: b, outlierRatio: ratios[b], sparsity: result.sparsities[b], parameters: parameters[b], pruned: pruned,
          clamped: result.clamped.contains(b)))
    }
    let spilled = (spill?.seconds ?? 0) - spilledBefore
    phases.read += readSeconds
    phases.allocation = max(0, secondsSince(start) - readSeconds - spilled)
    return BlockAllocation(
      method: .owl, threshold: plan.owl.threshold, range: plan.owl.range, target: target, blocks: blocks)
  }
}
