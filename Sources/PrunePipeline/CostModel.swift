// The pipeline's floor (Docs/pipeline.md#the-floor-what-each-schedule-needs): the work a method's
// schedule cannot do without over the calibration tokens (block passes, Grams and cross-Grams,
// reading and writing), priced from rates measured on the machine, to compare with what a run took
// (`prune-bench pipeline`).
//
//     floor(part) = Σ work(part) · rate(part)        work: counted from the schedule and the shapes
//                                                    rate: measured at the start of the benchmark
//
// The solve is taken at its measured time: the floor is the pipeline's around the layer method, not
// the method's own (its efficiency against SGEMM is `prune-bench solvers`' business).

import Foundation
import PruneKernels
import PruneSolvers

/// The work a run needs, with nothing repeated, in the units `MachineRates` prices.
public struct InherentWork: Sendable, Equatable {
  /// Block passes over all calibration tokens, in full-block equivalents: a pass that stops at a
  /// layer group's input counts the share of the block's flops before it (`blockPassShares`).
  public var blockPasses: Double = 0
  /// Widths of the Gram sums XᵀX the methods need (one entry per Gram, each over all tokens).
  public var gramWidths: [Int] = []
  /// Widths of the cross-Gram products XᵀX* (error correction), each over all tokens.
  public var crossGramWidths: [Int] = []
  /// Widths of the inputs of which only the column norms ‖X_j‖² are needed (Wanda).
  public var normWidths: [Int] = []
  /// Decoder blocks read from the source.
  public var blocksRead = 0
  /// Whether the calibration tokens are embedded (the embedding read and the lookup).
  public var embeds = false

  public init() {}
}

/// The rates the floor is priced at, measured on this machine (`measure`).
public struct MachineRates: Sendable, Equatable {
  /// Seconds of one full block pass per calibration token.
  public var passSecondsPerToken: Double
  /// Seconds of a Gram sum per token, by width.
  public var gramSecondsPerToken: [Int: Double]
  /// Seconds of a cross-Gram product XᵀX* per token, by width.
  public var crossSecondsPerToken: [Int: Double]
  /// Seconds of the column norms of X per token, by width.
  public var normSecondsPerToken: [Int: Double]
  /// Seconds to open the model (its header, configuration and tokenizer).
  public var openSeconds: Double
  /// Seconds to read and decode one decoder block from the source.
  public var readSecondsPerBlock: Double
  /// Seconds to read the embedding and embed the calibration tokens.
  public var embedSeconds: Double
  /// Bytes per second written to the output's file system, fsync included.
  public var writeBytesPerSecond: Double

  public init(
    passSecondsPerToken: Double, gramSecondsPerToken: [Int: Double], crossSecondsPerToken: [Int: Double],
    normSecondsPerToken: [Int: Double], openSeconds: Double, readSecondsPerBlock: Double, embedSeconds: Double,
    writeBytesPerSecond: Double
  ) {
    self.openSeconds = openSeconds
    self.passSecondsPerToken = passSecondsPerToken
    self.gramSecondsPerToken = gramSecondsPerToken
    self.crossSecondsPerToken = crossSecondsPerToken
    self.normSecondsPerToken = normSecondsPerToken
    self.readSecondsPerBlock = readSecondsPerBlock
    self.embedSeconds = embedSeconds
    self.writeBytesPerSecond = writeBytesPerSecond
  }
}

/// The floor of a run by part, seconds (`CostModel.floor`).
public struct FloorSeconds: Sendable, Equatable {
  /// Opening the model and reading its blocks (the embedding's read is in `calibration`).
  public var read = 0.0
  /// Embedding, block passes, Grams, cross-Grams and norms: the calibration work.
  public var calibration = 0.0
  /// Of `calibration`: the block passes alone.
  public var passes = 0.0
  /// Of `calibration`: the Grams, cross-Grams and norms alone.
  public var sums = 0.0
  /// Writing the output's bytes.
  public var write = 0.0
}

/// What each schedule inherently needs (Docs/pipeline.md#the-floor-what-each-schedule-needs), and its price.
public enum CostModel {
  /// The share of one block pass's flops spent before the input of each linear group is formed:
  /// `shares[g]` for group g (0 for the first group: only a norm precedes it), from the linear layers'
  /// shapes (2·in·out flops a token) and causal attention between the first and second groups
  /// (2 products of headDim a query and key, over the L(L+1)/2 pairs of a window of L tokens).
  /// Norms, activations and residual adds are not counted: they are a few percent of a pass. A
  /// sliding attention window is not either (the full causal window is priced, an upper bound).
  public static func blockPassShares(_ model: TransformerLM, block: Int, sequenceLength: Int) -> [Double] {
    let groups = model.linearGroups(block: block)
    let linear = groups.map { names in
      names.reduce(0.0) { sum, name in
        let shape = (try? model.linearShape(name)) ?? [0, 0]
        return sum + 2 * Double(shape[0] * shape[1])
      }
    }
    let c = model.config
    let l = Double(sequenceLength)
    let attention = 2 * 2 * Double(c.headCount * c.headDim) * (l + 1) / 2  // a token, averaged over the window
    let total = linear.reduce(0, +) + attention
    var shares: [Double] = []
    var before = 0.0
    for g in groups.indices {
      shares.append(total > 0 ? before / total : 0)
      before += linear[g] + (g == 0 ? attention : 0)
    }
    return shares
  }

  /// The work of pruning `blocks` (the run's blocks, ascending, ending at the run's last block) of
  /// `model` under `plan`, over calibration windows of `sequenceLength` tokens; nil for
  /// a schedule the model does not price (`sparsellm`: its FFN epochs are the method's own).
  ///
  /// - Without calibration (magnitude with nothing else): the blocks are read; nothing is run.
  /// - Every block before the last one the run prunes forms the next block's input: one full pass
  ///   (of the pruned block under `sequential`, of the dense one under `corrected`).
  /// - `sequential`: one pass of the unpruned block up to its last group's input captures every
  ///   group's input; a Gram per group (Wanda without refinement: the column norms only).
  /// - `corrected`: the dense inputs X_g come from the pass that forms the next input (the last
  ///   block: a pass up to its last group's input); the pruned path X*_g of g ≥ 1 needs every
  ///   segment of the block up to the last group's input once (the first group's layers again, as
  ///   they are pruned), each segment run once the group before it is pruned; G = XᵀX of every
  ///   group, G* = X*ᵀX* and K = XᵀX* of g ≥ 1. The floor keeps the dense inputs whatever their
  ///   size (the run keeps them within `ModelPruner.captureBudget`, else recomputes them).
  /// - OWL (`--allocation owl`): one more dense pass of every block, up to its last group's input.
  public static func inherentWork(
    plan: ModelPruningPlan, model: TransformerLM, blocks: [Int], sequenceLength: Int
  ) -> InherentWork? {
    var work = InherentWork()
    work.blocksRead = blocks.count
    guard plan.readsCalibration else { return work }
    guard plan.schedule != .sparsellm else { return nil }
    work.embeds = true
    let last = blocks.last ?? -1
    let normsOnly = plan.method == .wanda && plan.options.refine == .none
    for b in blocks {
      let shares = blockPassShares(model, block: b, sequenceLength: sequenceLength)
      let widths = model.linearGroups(block: b).map { (try? model.linearShape($0[0]))?[1] ?? 0 }
      let toLastInput = shares.last ?? 0
      if b < last { work.blockPasses += 1 }
      if plan.allocation == .owl { work.blockPasses += toLastInput }
      switch plan.schedule {
      case .sequential, .sparsellm:
        work.blockPasses += toLastInput
        if normsOnly { work.normWidths += widths } else { work.gramWidths += widths }
      case .corrected:
        if b == last { work.blockPasses += toLastInput }
        work.blockPasses += toLastInput  // the pruned path: every segment up to the last group's input
        work.gramWidths += widths + widths.dropFirst()
        work.crossGramWidths += widths.dropFirst()
      }
    }
    // Blocks before the first pruned one only carry the input forward.
    if let first = blocks.first, first > 0 { work.blockPasses += Double(first) }
    return work
  }

  /// `work` priced at `rates`, for `tokens` calibration tokens and `outputBytes` written.
  public static func floor(_ work: InherentWork, rates: MachineRates, tokens: Int, outputBytes: Int) -> FloorSeconds {
    var f = FloorSeconds()
    let t = Double(tokens)
    f.read = rates.openSeconds + Double(work.blocksRead) * rates.readSecondsPerBlock
    f.passes = work.blockPasses * t * rates.passSecondsPerToken
    func priced(_ widths: [Int], _ table: [Int: Double]) -> Double {
      widths.reduce(0.0) { $0 + t * (table[$1] ?? 0) }
    }
    f.sums =
      priced(work.gramWidths, rates.gramSecondsPerToken) + priced(work.crossGramWidths, rates.crossSecondsPerToken)
      + priced(work.normWidths, rates.normSecondsPerToken)
    f.calibration = f.passes + f.sums + (work.embeds ? rates.embedSeconds : 0)
    f.write = Double(outputBytes) / max(1, rates.writeBytesPerSecond)
    return f
  }
}

extension MachineRates {
  /// Measures the rates with block `block` of the model at `url` on `calibration`, the best of `runs`
  /// timings each (noise only slows a run down): the model opened, the block read and decoded, the
  /// embedding read and the calibration embedded, one pass of the block over every calibration token
  /// (a piece of `BlockInput.pieceTokens` tokens at a time, as the pipeline runs it), and on the group
  /// inputs of the first piece, the Gram, the cross-Gram product and the column norms of each width;
  /// then 64 MiB written and fsync'd to a temporary file in `writeDirectory` (removed after).
  public static func measure(
    modelAt url: URL, calibration: CalibrationSet, block: Int = 0, writeDirectory: URL, runs: Int = 3
  ) throws(ModelJobError) -> MachineRates {
    var model = TransformerLM?.none
    let open = try best { () throws(ModelJobError) in
      do throws(ModelLoadError) { model = try LoadedModel(contentsOf: url, loading: .lazy).model } catch {
        throw .model(error)
      }
    }
    guard var model else { preconditionFailure("MachineRates.measure: no model after opening it") }
    func best(_ body: () throws(ModelJobError) -> Void) throws(ModelJobError) -> Double {
      var seconds = Double.infinity
      for _ in 0..<max(1, runs) {
        let clock = ContinuousClock.now
        try body()
        seconds = min(seconds, secondsSince(clock))
      }
      return seconds
    }
    let read = try best { () throws(ModelJobError) in
      model.releaseBlock(block)
      do throws(ForwardError) { try model.loadBlock(block) } catch { throw .pruning(.forward(error)) }
    }
    let length = calibration.sequenceLength
    var hidden = Matrix<Float>(rows: 0, columns: 0)
    let embed = try best { () throws(ModelJobError) in
      model.releaseEmbedding()
      do throws(ForwardError) {
        try model.loadEmbedding()
        hidden = try model.embed(calibration.tokens, sequenceLength: length)
      } catch { throw .pruning(.forward(error)) }
    }
    model.releaseEmbedding()
    // The pass over every calibration token, a piece at a time as the pipeline runs it; the group
    // inputs of the first piece are kept for the sums.
    let step = BlockInput.pieceWindows(sequenceLength: length, chunkWindows: .max) * length
    let pieces = stride(from: 0, to: hidden.rows, by: step).map {
      hidden.submatrix(rows: $0..<min(hidden.rows, $0 + step), columns: 0..<hidden.columns)
    }
    let tokens = hidden.rows
    hidden = Matrix(rows: 0, columns: 0)
    var inputs: [Int: Matrix<Float>] = [:]
    let pass = try best { () throws(ModelJobError) in
      for piece in pieces {
        _ = model.runBlock(block, hidden: piece, sequenceLength: length) { captured in
          if inputs[captured.input.columns] == nil { inputs[captured.input.columns] = captured.input }
        }
      }
    }
    var gram: [Int: Double] = [:]
    var cross: [Int: Double] = [:]
    var norms: [Int: Double] = [:]
    for (width, x) in inputs {
      let t = Double(x.rows)
      gram[width] =
        try best { () throws(ModelJobError) in
          var g = GramAccumulator<GramScalar>(features: width)
          g.add(x)
        } / t
      var k = Matrix<GramScalar>(rows: width, columns: width)
      cross[width] = try best { () throws(ModelJobError) in gemm(x, x, into: &k, transposeA: true, beta: 1) } / t
      norms[width] = try best { () throws(ModelJobError) in _ = columnSquareSums(x) } / t
    }
    let bytes = 64 << 20
    let file = writeDirectory.appendingPathComponent(
      ".prunekit-write-rate-\(ProcessInfo.processInfo.processIdentifier)")
    defer { try? FileManager.default.removeItem(at: file) }
    let data = Data(count: bytes)
    let write = try best { () throws(ModelJobError) in
      do {
        try data.write(to: file)
        let handle = try FileHandle(forWritingTo: file)
        try handle.synchronize()
        try handle.close()
      } catch {
        throw .write(path: file.path, reason: "\(error)", retry: "give --out a folder on a writable file system")
      }
    }
    return MachineRates(
      passSecondsPerToken: pass / Double(max(1, tokens)), gramSecondsPerToken: gram, crossSecondsPerToken: cross,
      normSecondsPerToken: norms, openSeconds: open, readSecondsPerBlock: read, embedSeconds: embed,
      writeBytesPerSecond: Double(bytes) / write)
  }
}

/// Σ_t x_tj² for every column j of `x` (Wanda's input norms, squared), in Double.
func columnSquareSums(_ x: Matrix<Float>) -> [Double] {
  var sums = [Double](repeating: 0, count: x.columns)
  x.withUnsafeBufferPointer { p in
    for t in 0..<x.rows {
      for j in 0..<x.columns {
        let v = Double(p[t * x.columns + j])
        sums[j] += v * v
      }
    }
  }
  return sums
}
