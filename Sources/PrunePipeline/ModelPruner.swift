/// Prunes every linear layer of a decoder-only model, block by block, with any layer method and
/// either driver (`PruningSchedule`), checkpointing after every block so that a killed run resumes
/// to a bit-identical result.
///
/// The loop, for blocks ℓ = 0 … L−1 with calibration activations h (windows laid end to end):
///
///     h₀ = embed(calibration tokens)
///     sequential:  Ŵ_ℓ = prune(block ℓ on h_ℓ);  install Ŵ_ℓ;  h_{ℓ+1} = pruned block ℓ (h_ℓ)
///     corrected:   h_{ℓ+1} = dense block ℓ (h_ℓ);  Ŵ_ℓ = prune(block ℓ on h_ℓ, cross-Grams);  install Ŵ_ℓ
///
/// Under `corrected` the blocks of a batch of `jobs` are pruned at once (each on its own dense
/// input, threads split between them); the results do not depend on `jobs` or on the thread count.
/// Memory: the model, plus one block's activations per job (`MemoryEstimate`). Each block is loaded
/// (`TransformerLM.loadBlock`) before it is used; with `releasesBlocks` it is dropped once it is
/// saved and the next block's input is formed, so a lazily loaded model holds one block (one per
/// job under `corrected`) and the pruned weights live in the store.
///
/// Resume: a block whose pruned weights are in the checkpoint is installed instead of pruned, at
/// the same point of the loop, so the activations that follow are the same bits as in an
/// uninterrupted run (the forward pass is deterministic).

import Foundation
import PruneKernels
import PruneSolvers

/// The calibration data: token windows of `sequenceLength`, laid end to end.
public struct CalibrationSet: Sendable, Equatable {
  /// Token ids, `windows × sequenceLength` of them.
  public var tokens: [Int]
  /// Tokens per window.
  public var sequenceLength: Int
  /// Where the text came from, for reports.
  public var source: String

  public init(tokens: [Int], sequenceLength: Int, source: String) {
    precondition(
      sequenceLength > 0 && tokens.count % sequenceLength == 0 && !tokens.isEmpty, "CalibrationSet: whole windows only")
    self.tokens = tokens
    self.sequenceLength = sequenceLength
    self.source = source
  }

  /// Number of windows.
  public var windows: Int { tokens.count / sequenceLength }

  /// The first `windows` windows of `sequenceLength` tokens of `text` (tokenized whole, no BOS),
  /// as the evaluation protocols cut text (and as Wanda's `--nsamples`/`--seqlen` count it, but
  /// consecutive from the start rather than at random offsets, so that runs are reproducible
  /// without a random-number convention).
  public static func windows(
    of text: String, tokenizer: BPETokenizer, sequenceLength: Int, windows: Int, source: String
  ) throws(ModelPruningError) -> CalibrationSet {
    let ids = tokenizer.encode(text)
    guard sequenceLength >= 1, windows >= 1, ids.count >= sequenceLength * windows else {
      throw .calibrationTooShort(source: source, tokens: ids.count, sequenceLength: sequenceLength, windows: windows)
    }
    return CalibrationSet(
      tokens: Array(ids[0..<(sequenceLength * windows)]), sequenceLength: sequenceLength, source: source)
  }

  /// sha256 of the token ids (as little-endian UInt32), to recognise the same calibration on resume.
  public var digest: String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(tokens.count * 4)
    for t in tokens { withUnsafeBytes(of: UInt32(truncatingIfNeeded: t).littleEndian) { bytes.append(contentsOf: $0) } }
    return SHA256.hexDigest(bytes)
  }
}

/// What to prune and how.
public struct ModelPruningPlan: Sendable {
  /// The layer method.
  public var method: PruningMethod
  /// The pattern every linear layer gets.
  public var pattern: SparsityPattern
  /// Method options (`MethodOptions.set`).
  public var options: MethodOptions
  /// The options as given, by report key (`MethodOption.reportKey`) → value as typed, recorded in
  /// reports and checkpoints.
  public var givenOptions: [String: String]
  /// Which activations layers are pruned against (default: `PruningSchedule.defaultSchedule(for:)`).
  public var schedule: PruningSchedule
  /// The blocks to prune (nil: all). Only `corrected` can prune a range that does not start at 0,
  /// because under `sequential` a block's input depends on every earlier block being pruned.
  public var blocks: ClosedRange<Int>?
  /// Blocks pruned at once (`corrected` only).
  public var jobs: Int
  /// Calibration windows pushed through a block at once (bounds the block's internal activations;
  /// the Grams are summed over chunks, so the result does not depend on it up to rounding order —
  /// keep it fixed across a resumed run, which the checkpoint enforces).
  public var chunkWindows: Int
  /// The dtype the output stores the weights in. Under BF16 or F16 every pruned weight is rounded
  /// to it before it is installed and saved, so that the blocks after it are calibrated on the
  /// weights that are written and a resumed run continues from the same bits (exact zeros stay
  /// exact). F32 (the default) changes nothing.
  public var outputDType: SafetensorsDType = .F32
  /// How the sparsity is spread over the blocks (default uniform: every layer at `pattern`). Under
  /// `.owl` a dense pass first measures every block's outlier ratio and each block gets its own
  /// unstructured ratio (`OWLAllocation`, `ModelPruner.owlAllocation`); N:M is refused.
  public var allocation: SparsityAllocation = .uniform
  /// OWL's M and λ, used with `allocation` = `.owl`.
  public var owl = OWLAllocation.Options()

  /// Whether the run passes the calibration tokens through the model. Magnitude's Ŵ depends on W
  /// alone, so a magnitude run reads no calibration activations (no embedding, block passes or
  /// Grams: Docs/pipeline.md#magnitude-reads-no-calibration) and its layers report no error;
  /// unless OWL's dense pass or SparseSwaps (which judges swaps on the Gram) needs them.
  public var readsCalibration: Bool {
    method != .magnitude || allocation != .uniform || options.refine != .none
  }

  public init(
    method: PruningMethod, pattern: SparsityPattern, options: MethodOptions = MethodOptions(),
    givenOptions: [String: String] = [:], schedule: PruningSchedule? = nil, blocks: ClosedRange<Int>? = nil,
    jobs: Int = 1, chunkWindows: Int = 16
  ) {
    self.method = method
    self.pattern = pattern
    self.options = options
    self.givenOptions = givenOptions
    self.schedule = schedule ?? PruningSchedule.defaultSchedule(for: method)
    self.blocks = blocks
    self.jobs = jobs
    self.chunkWindows = chunkWindows
  }
}

/// The memory a streaming run needs, estimated before it starts, in bytes, term by term. One block
/// is in memory at a time (`ModelPruner.releasesBlocks`), so the peak is that of the largest of
/// four phases, each on top of `baseBytes`:
///
///     embedding phase:  embeddingBytes + hiddenBytes
///     pruning phase:    blockWeightBytes + hiddenBytes + blockBytes + gramBytes + solverBytes
///     finishing phase:  blockWeightBytes + hiddenBytes + roundedBytes
///     evaluation phase: evaluationBytes
///     total = baseBytes + max(embedding, pruning, finishing, evaluation)
///
/// `ModelPruner.estimate(for:)` is the one place the terms are computed; Docs/pipeline.md#memory
/// compares the total with measured peaks.
public struct MemoryEstimate: Sendable, Codable, Equatable {
  /// The process before any tensor: runtime, tokenizer, calibration and evaluation text, shard
  /// headers (`ModelPruner.baseBytes`).
  public var baseBytes: Int
  /// One block's weights in Float, times the jobs pruned at once: under `sequential` the block and
  /// one pruned layer (each layer's pruned weight replaces its dense one as it is pruned), under the
  /// other schedules the dense block and its pruned copy.
  public var blockWeightBytes: Int
  /// The embedding or the head, whichever is larger, in Float plus the stored bytes it is decoded
  /// from: what is held while the calibration tokens are embedded.
  public var embeddingBytes: Int
  /// Calibration activations: the hidden states kept between blocks, or with `spillFolder` the
  /// chunks of them held while the rest is on disk.
  public var hiddenBytes: Int
  /// One block's internal activations for one piece of a chunk (`BlockInput.pieceWindows`) and the
  /// rows waiting for a Gram's depth block (`DepthBlockedRows`), times the jobs (plus the dense
  /// layer inputs kept between the dense pass and the pruning under `corrected`, and SparseLLM's
  /// variables).
  public var blockBytes: Int
  /// The Grams of one block in Float (three per group under `corrected`), times the jobs.
  public var gramBytes: Int
  /// The layer's pruning for the largest layer, times the jobs: the method's work space and the
  /// error evaluation of the result (`ModelPruner.solverBytes`).
  public var solverBytes: Int
  /// The pruned block rounded to the output's dtype (BF16, F16), held with the dense and pruned
  /// copies while a block is finished, times the jobs; 0 for an F32 output (`ModelPruningPlan.outputDType`).
  public var roundedBytes: Int
  /// The evaluation after pruning (0 without one): `Perplexity.memoryEstimate`'s total, the
  /// evaluation windows' hidden states plus the largest of the embedding rows, one block with its
  /// internals over one window, and one band of the head with one chunk of logits.
  public var evaluationBytes: Int
  /// The folder the calibration activations are spilled to (Docs/pipeline.md#spill), nil when they
  /// stay in memory.
  public var spillFolder: String? = nil

  /// The pruning phase, without `baseBytes`.
  public var pruningBytes: Int { blockWeightBytes + hiddenBytes + blockBytes + gramBytes + solverBytes }
  /// The finishing phase (a block's pruned weights rounded and saved), without `baseBytes`.
  public var finishingBytes: Int { blockWeightBytes + hiddenBytes + roundedBytes }
  /// The estimated peak: the base plus the largest phase.
  public var totalBytes: Int {
    baseBytes + max(embeddingBytes + hiddenBytes, pruningBytes, finishingBytes, evaluationBytes)
  }

  public init(
    baseBytes: Int = 0, blockWeightBytes: Int, embeddingBytes: Int = 0, hiddenBytes: Int, blockBytes: Int,
    gramBytes: Int, solverBytes: Int = 0, roundedBytes: Int = 0, evaluationBytes: Int = 0
  ) {
    self.baseBytes = baseBytes
    self.blockWeightBytes = blockWeightBytes
    self.embeddingBytes = embeddingBytes
    self.hiddenBytes = hiddenBytes
    self.blockBytes = blockBytes
    self.gramBytes = gramBytes
    self.solverBytes = solverBytes
    self.roundedBytes = roundedBytes
    self.evaluationBytes = evaluationBytes
  }

  private enum CodingKeys: String, CodingKey {
    case baseBytes, blockWeightBytes, embeddingBytes, hiddenBytes, blockBytes, gramBytes, solverBytes
    case roundedBytes, evaluationBytes, totalBytes, spillFolder
  }

  /// The terms and their total (`total_bytes`, for the reader; computed again when read).
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(baseBytes, forKey: .baseBytes)
    try c.encode(blockWeightBytes, forKey: .blockWeightBytes)
    try c.encode(embeddingBytes, forKey: .embeddingBytes)
    try c.encode(hiddenBytes, forKey: .hiddenBytes)
    try c.encode(blockBytes, forKey: .blockBytes)
    try c.encode(gramBytes, forKey: .gramBytes)
    try c.encode(solverBytes, forKey: .solverBytes)
    try c.encode(roundedBytes, forKey: .roundedBytes)
    try c.encode(evaluationBytes, forKey: .evaluationBytes)
    try c.encode(totalBytes, forKey: .totalBytes)
    try c.encodeIfPresent(spillFolder, forKey: .spillFolder)
  }

  /// Reads the terms back; a report written before the streaming estimate (terms `model_bytes`,
  /// `hidden_bytes`, `block_bytes`, `gram_bytes`) or before `rounded_bytes` reads with the terms it
  /// lacks as 0.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    func term(_ key: CodingKeys) throws -> Int { try c.decodeIfPresent(Int.self, forKey: key) ?? 0 }
    baseBytes = try term(.baseBytes)
    blockWeightBytes = try term(.blockWeightBytes)
    embeddingBytes = try term(.embeddingBytes)
    hiddenBytes = try term(.hiddenBytes)
    blockBytes = try term(.blockBytes)
    gramBytes = try term(.gramBytes)
    solverBytes = try term(.solverBytes)
    roundedBytes = try term(.roundedBytes)
    evaluationBytes = try term(.evaluationBytes)
    spillFolder = try c.decodeIfPresent(String.self, forKey: .spillFolder)
  }
}

/// Progress of a run, reported as it happens (the CLI prints it; the library never does).
public enum ModelPruningEvent: Sendable {
  /// Before any work: the blocks to prune and the memory estimate.
  case started(blocks: [Int], estimate: MemoryEstimate)
  /// Blocks found complete in the checkpoint (installed, not pruned again).
  case resumed(blocks: [Int])
  /// OWL's dense pass is done (`ModelPruningPlan.allocation`): the per-block sparsities, and the
  /// pass's seconds.
  case allocated(BlockAllocation, seconds: Double)
  /// A layer is done.
  case layer(LayerRecord, elapsed: Double)
  /// A block is done (pruned and checkpointed); `eta` extrapolates this run's pace.
  case block(Int, done: Int, of: Int, elapsed: Double, eta: Double?)
}

/// Where the wall time of a run went (Docs/pipeline.md#where-the-time-goes), seconds by phase, each
/// measured with `ContinuousClock` around its calls. The phases do not overlap, so their sum is at
/// most the wall time; the rest is bookkeeping (installing weights, rounding, reports). Under
/// `corrected` with `--jobs` above 1, `gram`, `solve` and the spill reads of the blocks pruned at once
/// are summed over the jobs, and can exceed the wall time they shared.
public struct PhaseSeconds: Sendable, Codable, Equatable {
  /// Reading tensors from the source and decoding them (blocks, the embedding), and resumed blocks
  /// from the checkpoint.
  public var read = 0.0
  /// Embedding the calibration tokens.
  public var embed = 0.0
  /// The block passes that form the next block's input.
  public var forward = 0.0
  /// The block passes and sums that form the Grams (and cross-Grams) of the layers' inputs.
  public var gram = 0.0
  /// The layer method (`pruneLayer`, SparseLLM's FFN): checks, the layer problem and the solve.
  public var solve = 0.0
  /// Writing the pruned blocks to the output's shards, then completing and moving the output.
  public var write = 0.0
  /// Reading and writing the spilled activations (nil when they stayed in memory).
  public var spill: Double? = nil
  /// The perplexity evaluation after pruning.
  public var evaluate = 0.0
  /// OWL's dense pass over every block before the pruning (`ModelPruner.owlAllocation`: the block
  /// passes and the outlier counts; its reads count in `read`, its spill in `spill`); nil under the
  /// uniform allocation.
  public var allocation: Double? = nil

  public init() {}

  /// The sum of the phases.
  public var total: Double {
    read + embed + (allocation ?? 0) + forward + gram + solve + write + (spill ?? 0) + evaluate
  }

  /// The phases in the order they are listed, by report key (`allocation` and `spill` only when
  /// there is one).
  public var named: [(String, Double)] {
    var out: [(String, Double)] = [("read", read), ("embed", embed)]
    if let allocation { out.append(("allocation", allocation)) }
    out += [("forward", forward), ("gram", gram), ("solve", solve), ("write", write)]
    if let spill { out.append(("spill", spill)) }
    out.append(("evaluate", evaluate))
    return out
  }
}

/// What a whole-model run did.
public struct ModelPruningSummary: Sendable, Codable, Equatable {
  /// Every pruned layer, in block order (resumed blocks included, with their original records).
  public var layers: [LayerRecord]
  /// The blocks pruned (this run or resumed).
  public var blocks: [Int]
  /// Blocks taken from the checkpoint.
  public var resumedBlocks: [Int]
  /// The schedule used.
  public var schedule: PruningSchedule
  /// Entries of the pruned layers / zeros among them.
  public var prunableParameters: Int
  public var zeroParameters: Int
  /// All parameters of the model (embeddings, norms and head counted once if tied).
  public var totalParameters: Int
  /// Wall time of this run, seconds.
  public var seconds: Double
  /// The estimate printed at the start.
  public var estimate: MemoryEstimate
  /// Where `seconds` went (`ModelJob` adds the output's completion and the evaluation); zero in
  /// reports written before it was measured.
  public var secondsByPhase = PhaseSeconds()
  /// The per-block sparsities when they are not uniform (`ModelPruningPlan.allocation`); nil
  /// under the uniform allocation.
  public var allocation: BlockAllocation? = nil

  /// zeros / entries of the pruned layers.
  public var realisedSparsity: Double {
    prunableParameters > 0 ? Double(zeroParameters) / Double(prunableParameters) : 0
  }
  /// zeros / all parameters of the model.
  public var overallSparsity: Double { totalParameters > 0 ? Double(zeroParameters) / Double(totalParameters) : 0 }
  /// Mean relative layer error over the layers whose error was measured (nil when none was:
  /// `PruningReport.errorMeasured`).
  public var meanRelativeError: Double? {
    let measured = layers.filter(\.report.errorMeasured)
    return measured.isEmpty ? nil : measured.map(\.report.relativeError).reduce(0, +) / Double(measured.count)
  }

  public init(
    layers: [LayerRecord], blocks: [Int], resumedBlocks: [Int], schedule: PruningSchedule, prunableParameters: Int,
    zeroParameters: Int, totalParameters: Int, seconds: Double, estimate: MemoryEstimate
  ) {
    self.layers = layers
    self.blocks = blocks
    self.resumedBlocks = resumedBlocks
    self.schedule = schedule
    self.prunableParameters = prunableParameters
    self.zeroParameters = zeroParameters
    self.totalParameters = totalParameters
    self.seconds = seconds
    self.estimate = estimate
  }

  /// The keys in `pruning-report.json` (snake_case by `reportJSON`); the totals are written for
  /// the reader and computed again when read.
  private enum CodingKeys: String, CodingKey {
    case layers, blocks, resumedBlocks, schedule, prunableParameters, zeroParameters, totalParameters, seconds
    case estimate, realisedSparsity, overallSparsity, meanRelativeError, secondsByPhase, allocation
  }

  /// Every layer with its method's report in PruneKit's form (`PruningReportJSON`: dampings by
  /// unit, options typed), and the totals.
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(layers.map(ReportedLayer.init), forKey: .layers)
    try c.encode(blocks, forKey: .blocks)
    try c.encode(resumedBlocks, forKey: .resumedBlocks)
    try c.encode(schedule, forKey: .schedule)
    try c.encode(prunableParameters, forKey: .prunableParameters)
    try c.encode(zeroParameters, forKey: .zeroParameters)
    try c.encode(totalParameters, forKey: .totalParameters)
    try c.encode(seconds, forKey: .seconds)
    try c.encode(estimate, forKey: .estimate)
    try c.encode(secondsByPhase, forKey: .secondsByPhase)
    try c.encode(realisedSparsity, forKey: .realisedSparsity)
    try c.encode(overallSparsity, forKey: .overallSparsity)
    try c.encode(meanRelativeError, forKey: .meanRelativeError)
    try c.encodeIfPresent(allocation, forKey: .allocation)
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    layers = try c.decode([ReportedLayer].self, forKey: .layers).map(\.record)
    blocks = try c.decode([Int].self, forKey: .blocks)
    resumedBlocks = try c.decode([Int].self, forKey: .resumedBlocks)
    schedule = try c.decode(PruningSchedule.self, forKey: .schedule)
    prunableParameters = try c.decode(Int.self, forKey: .prunableParameters)
    zeroParameters = try c.decode(Int.self, forKey: .zeroParameters)
    totalParameters = try c.decode(Int.self, forKey: .totalParameters)
    seconds = try c.decode(Double.self, forKey: .seconds)
    estimate = try c.decode(MemoryEstimate.self, forKey: .estimate)
    secondsByPhase = try c.decodeIfPresent(PhaseSeconds.self, forKey: .secondsByPhase) ?? PhaseSeconds()
    allocation = try c.decodeIfPresent(BlockAllocation.self, forKey: .allocation)
  }
}

/// A layer of `pruning-report.json`: the `LayerRecord`'s fields with its method's report in
/// PruneKit's form (`PruningReportJSON`). The checkpoint keeps `LayerRecord`'s own encoding.
private struct ReportedLayer: Codable {
  var record: LayerRecord

  init(_ record: LayerRecord) { self.record = record }

  private enum CodingKeys: String, CodingKey {
    case block, name, shape, zeros, errorCorrected, report, targetSparsity
  }

  func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(record.block, forKey: .block)
    try c.encode(record.name, forKey: .name)
    try c.encode(record.shape, forKey: .shape)
    try c.encode(record.zeros, forKey: .zeros)
    try c.encode(record.errorCorrected, forKey: .errorCorrected)
    try c.encode(PruningReportJSON(record.report), forKey: .report)
    try c.encodeIfPresent(record.targetSparsity, forKey: .targetSparsity)
  }

  init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    record = LayerRecord(
      block: try c.decode(Int.self, forKey: .block), name: try c.decode(String.self, forKey: .name),
      shape: try c.decode([Int].self, forKey: .shape), zeros: try c.decode(Int.self, forKey: .zeros),
      errorCorrected: try c.decode(Bool.self, forKey: .errorCorrected),
      report: try c.decode(PruningReportJSON.self, forKey: .report).report)
    record.targetSparsity = try c.decodeIfPresent(Double.self, forKey: .targetSparsity)
  }
}

/// Why a whole-model run failed.
public enum ModelPruningError: PruneKitError, Equatable {
  case calibrationTooShort(source: String, tokens: Int, sequenceLength: Int, windows: Int)
  case invalidPlan(String, hint: String)
  /// Layer `name` of `block` could not be pruned.
  case layer(block: Int, name: String, LayerFailure)
  case forward(ForwardError)
  case checkpoint(String, hint: String)
  /// A block file of the checkpoint cannot be read; `hint` says what to delete.
  case checkpointFile(path: String, SafetensorsError, hint: String)
  /// A checkpoint folder that this run may not use (it exists without --resume, or was written
  /// with other settings): a problem with the request.
  case resumeConflict(String, hint: String)
  /// The calibration activations could not be written to or read from the spill folder
  /// (Docs/pipeline.md#spill): `reason` names the file and the system's error.
  case spill(folder: String, reason: String)

  public var message: String {
    switch self {
    case .calibrationTooShort(let source, let tokens, let sequenceLength, let windows):
      return "calibration text \(source) has \(tokens) tokens, fewer than \(windows) window(s) of \(sequenceLength)"
    case .invalidPlan(let message, _): return message
    case .layer(let block, let name, let failure):
      return "layer \(name): block \(block)\(failure.context): \(failure.message)"
    case .forward(let e): return e.message
    case .checkpoint(let message, _), .resumeConflict(let message, _): return "checkpoint: \(message)"
    case .checkpointFile(let path, let e, _): return "checkpoint: \(path) is unreadable: \(e.message)"
    case .spill(let folder, let reason):
      return "spilling the calibration activations to \(folder): \(OutputSafety.plain(reason))"
    }
  }

  public var hint: String? {
    switch self {
    case .calibrationTooShort: return "give a longer text, or fewer --nsamples or a shorter --seqlen."
    case .invalidPlan(_, let hint), .checkpoint(_, let hint), .resumeConflict(_, let hint),
      .checkpointFile(_, _, let hint):
      return sentence(hint)
    case .layer(_, _, let failure): return failure.hint ?? "check the model's weights and the calibration text."
    case .forward(let e): return e.hint
    case .spill(let folder, _):
      return "free space on the disk of \(folder) (the activations need about twice the calibration tokens"
        + " × hidden size × 4 bytes), or give a larger --max-memory with --spill never; the pruned blocks stay in"
        + " the checkpoint and --resume continues."
    }
  }
}

/// What went wrong with one layer of a block (`ModelPruningError.layer` names the block and the
/// layer).
public enum LayerFailure: PruneKitError, Equatable {
  /// The weight holds NaN or Inf: `entries` says how many and the first.
  case nonFiniteWeight(shape: String, entries: String)
  /// A calibration Gram of the layer's input (`what`) holds NaN or Inf.
  case nonFiniteGram(what: String, entries: String)
  /// The FFN's calibration input (behind the pruned attention) holds NaN or Inf (SparseLLM).
  case nonFiniteFFNInput(entries: String)
  /// The layer problem was rejected.
  case problem(LayerProblemError)
  /// The method failed.
  case method(PruningMethod, PruningError)
  /// SparseLLM failed on the FFN made of `layers`.
  case sparseLLM(layers: String, PruningError)

  /// What the failure adds after the block: the method, when a method failed.
  var context: String {
    if case .method(let method, _) = self { return ", \(method)" }
    return ""
  }

  public var message: String {
    switch self {
    case .nonFiniteWeight(let shape, let entries): return "the weight \(shape) has \(entries)"
    case .nonFiniteGram(let what, let entries): return "\(what) has \(entries) (row and column = input features)"
    case .nonFiniteFFNInput(let entries):
      return "the FFN's calibration input (behind the pruned attention) has \(entries) (row = token, column = feature)"
    case .problem(let e): return e.message
    case .method(_, let e): return e.message
    case .sparseLLM(let layers, let e): return "SparseLLM on the FFN (\(layers)): \(e.message)"
    }
  }

  public var hint: String? {
    switch self {
    case .nonFiniteWeight: return "the model file holds NaN or Inf in this tensor; check the file or re-download it."
    case .nonFiniteGram:
      return "the activations entering this layer are NaN or Inf, or so large (|x| ≳ 1e19) that their Float Gram"
        + " overflows; an earlier layer produces them: check the model file and the weights of the earlier blocks."
    case .nonFiniteFFNInput:
      return "the attention layers of this block or an earlier block produce NaN or Inf; check the model file."
    case .problem(let e): return e.hint
    case .method(_, let e), .sparseLLM(_, let e): return e.hint
    }
  }
}

/// Where completed blocks go and come back from; `PruningCheckpoint` is the file-backed one.
public protocol BlockStore {
  /// The outcome of `block` if it was completed earlier.
  func load(block: Int, model: TransformerLM) throws(ModelPruningError) -> (
    weights: [(String, Matrix<Float>)], records: [LayerRecord]
  )?
  /// Persists a completed block (atomically).
  func save(block: Int, weights: [(String, Matrix<Float>)], records: [LayerRecord]) throws(ModelPruningError)
}

/// Runs a plan over a model with its calibration set.
public struct ModelPruner: Sendable {
  public var plan: ModelPruningPlan
  public var calibration: CalibrationSet
  /// Drop every block from the model once it is done (saved to the store, or not pruned by this
  /// plan, and the next block's input formed): the model is left without those blocks, whose pruned
  /// weights the caller reads back from the store. Needs a store. Default false: the pruned model
  /// stays in memory.
  public var releasesBlocks: Bool
  /// Where the calibration activations go when they do not stay in memory (Docs/pipeline.md#spill):
  /// nil keeps them in memory; a spill folder keeps them in files there, a chunk of windows read or
  /// written at a time. The pruned weights are the same bits either way.
  public var spill: ActivationSpill? = nil

  public init(plan: ModelPruningPlan, calibration: CalibrationSet, releasesBlocks: Bool = false) {
    self.plan = plan
    self.calibration = calibration
    self.releasesBlocks = releasesBlocks
  }

  /// The blocks the plan prunes, checked against the model.
  public func blockList(for model: TransformerLM) throws(ModelPruningError) -> [Int] {
    let count = model.blockCount
    let range = plan.blocks ?? 0...(count - 1)
    guard range.lowerBound >= 0, range.upperBound < count else {
      throw .invalidPlan(
        "blocks \(range.lowerBound)-\(range.upperBound) outside the model's 0-\(count - 1)",
        hint: "give --blocks within 0-\(count - 1)")
    }
    if (plan.method == .sparsellm) != (plan.schedule == .sparsellm) {
      throw .invalidPlan(
        "method \(plan.method) cannot run on the \(plan.schedule) schedule: SparseLLM prunes a block's FFN layers together and needs its own driver",
        hint: plan.method == .sparsellm
          ? "drop --schedule (sparsellm uses the sparsellm schedule)" : "use --schedule sequential or corrected")
    }
    if plan.schedule != .corrected && range.lowerBound != 0 {
      throw .invalidPlan(
        "the sequential schedule cannot start at block \(range.lowerBound): a block's input comes from the pruned blocks before it",
        hint: "prune from block 0, or use --schedule corrected, whose blocks are independent")
    }
    guard plan.jobs >= 1 else { throw .invalidPlan("--jobs must be at least 1", hint: "give --jobs 1 or more") }
    if plan.schedule != .corrected && plan.jobs > 1 {
      throw .invalidPlan(
        "--jobs \(plan.jobs) needs independent blocks; under the sequential schedule each block waits for the one before",
        hint: "use --jobs 1, or --schedule corrected")
    }
    guard plan.chunkWindows >= 1 else {
      throw .invalidPlan("chunk windows must be at least 1", hint: "give a positive count")
    }
    try checkAllocation()
    return Array(range)
  }

  /// The process's memory before any tensor: the runtime, the tokenizer (SmolLM2's 49k tokens and
  /// merges), the texts and the shard headers. Measured on SmolLM2 (about 60 MiB after loading);
  /// rounded up.
  public static let baseBytes = 64 << 20

  /// Bytes per weight of the stored form a tensor is decoded from, held beside its Float copy while
  /// it is read: 2 (BF16/F16) bounds every source but F32 safetensors, and quantised GGUF blocks
  /// need less.
  static let storedBytesPerWeight = 2

  /// The evaluation after pruning, if any: its windows and their length (`estimate` counts it).
  public var evaluation: (windows: Int, sequenceLength: Int)? = nil

  /// The memory estimate of a streaming run on `model` (`MemoryEstimate` names the phases). With
  /// m × n the largest linear layer, w the widest input, d the hidden size, f the FFN size, t the
  /// calibration tokens, p the tokens of one piece (`BlockInput.pieceWindows`: about 1024, whole
  /// windows, at most a chunk), J the jobs pruned at once (1 but under `corrected`):
  ///
  ///     blockWeight = 4 · (weights of the largest block + of its largest layer)  sequential
  ///                   J · 2 · 4 · (weights of the largest block)         dense + pruned copy otherwise
  ///     embedding   = V · d · (4 + 2)                                      Float + stored form
  ///     hidden      = (2, or 1 + J under corrected) · 4 · t · d            (spilled: · c instead of · t)
  ///     block       = J · 4 · p · (6d + 2f)                                normed input, q, k, v,
  ///                                                                        attention out, residual, two FFN
  ///                 + J · 4 · (kc · Σ_groups width, or 2 · (kc + kc′) · w under corrected)   rows pending
  ///                 (+ J · min(captures, captureBudget/J) under corrected)
  ///     grams       = J · (1, or 3 under corrected) · 4 · Σ_groups width²
  ///     solver      = J · (the method's work space on m × n + the error evaluation)
  ///     rounded     = J · 4 · (weights of the largest block), 0 for an F32 output
  ///     evaluation  = `Perplexity.memoryEstimate(...).totalBytes` on the output (read by rows)
  ///
  /// (kc = 384 and kc′ = 768, the depth blocks of the Gram and of the cross-Gram's GEMM; see `Perplexity.memoryEstimate`
  /// for the evaluation.) Reading a block holds its stored form beside its Float copy (at
  /// most 4 + 4 bytes a weight), within blockWeight; the shard writer converts 1M values at a time.
  public func estimate(for model: TransformerLM) -> MemoryEstimate {
    estimate(for: model, spillFolder: spill?.folder.path)
  }

  /// The estimate with the activations spilled to `spillFolder` (nil: kept in memory): the hidden
  /// term holds the chunks read and written at once instead of every token.
  public func estimate(for model: TransformerLM, spillFolder: String?) -> MemoryEstimate {
    let c = model.config
    let t = calibration.tokens.count
    let piece = min(
      t,
      BlockInput.pieceWindows(sequenceLength: calibration.sequenceLength, chunkWindows: plan.chunkWindows)
        * calibration.sequenceLength)
    let jobs = plan.schedule == .corrected ? plan.jobs : 1
    let float = MemoryLayout<Float>.size
    let shapes = (0..<model.blockCount).map { b in
      model.linearLayerNames(block: b).compactMap { try? model.linearShape($0) }
    }
    let largestBlock = shapes.map { $0.reduce(0) { $0 + $1[0] * $1[1] } }.max() ?? 0
    let largestLayer = shapes.flatMap { $0 }.max { $0[0] * $0[1] < $1[0] * $1[1] } ?? [0, 0]
    let widestInput = shapes.flatMap { $0 }.map { $0[1] }.max() ?? 0
    let groupWidths =
      model.blockCount > 0 ? model.linearGroups(block: 0).compactMap { try? model.linearShape($0[0])[1] } : []
    // Block internals per token: the normed input, q, k, v, the attention output and the residual
    // (hidden wide), and two FFN-wide activations.
    let perToken = (6 * c.hiddenSize + 2 * c.intermediateSize) * float
    // Rows waiting for a depth block: under `sequential` every group's Gram at once; under
    // `corrected` one group's X and X* for its two Grams and for the cross-Gram (each below a block).
    let depth = GramScalar.gramBlocking.kc
    let crossDepth = GramScalar.gemmBlocking.kc
    let pending =
      plan.schedule == .corrected
      ? 2 * (depth + crossDepth) * widestInput * float : depth * groupWidths.reduce(0, +) * float
    var blockBytes = jobs * (piece * perToken + pending)
    if plan.schedule == .corrected {
      let captures = t * groupWidths.reduce(0, +) * float
      if captures <= Self.captureBudget / plan.jobs { blockBytes += jobs * captures }
    }
    // SparseLLM keeps, over all calibration tokens, the FFN's input X and target Y (hidden wide)
    // and its auxiliary variables z, p (and s for SwiGLU; intermediate wide), plus chunk-sized
    // temporaries and its Grams (G_p and the p-step's inverse, intermediate², Double).
    if plan.schedule == .sparsellm {
      let variables = c.architecture == .llama ? 3 : 2
      blockBytes +=
        t * (2 * c.hiddenSize + variables * c.intermediateSize) * float
        + min(t, plan.options.sparseLLM.chunkRows) * 4 * c.intermediateSize * float
        + 3 * c.intermediateSize * c.intermediateSize * 8
    }
    let gramsPerGroup = plan.schedule == .corrected ? 3 : 1
    // OWL's dense pass keeps h₀ for the pruning beside its own input and output.
    let hiddenStates = max(plan.schedule == .corrected ? 1 + jobs : 2, plan.allocation == .owl ? 3 : 0)
    let headOrEmbedding = c.vocabSize * c.wordEmbedDim * (float + Self.storedBytesPerWeight)
    // The evaluation reads the output as written (safetensors: the head and embedding by rows).
    let evaluationBytes =
      evaluation.map {
        Perplexity.memoryEstimate(
          of: model, windows: $0.windows, sequenceLength: $0.sequenceLength, headByRows: true, embeddingByRows: true
        ).totalBytes
      } ?? 0
    var estimate = MemoryEstimate(
      baseBytes: Self.baseBytes,
      blockWeightBytes: (plan.schedule == .sequential
        ? largestBlock + largestLayer[0] * largestLayer[1] : jobs * 2 * largestBlock) * float,
      embeddingBytes: headOrEmbedding,
      hiddenBytes: hiddenStates * (spillFolder == nil ? t : piece) * c.hiddenSize * float,
      blockBytes: blockBytes,
      gramBytes: jobs * gramsPerGroup * groupWidths.reduce(0) { $0 + $1 * $1 } * MemoryLayout<GramScalar>.size,
      solverBytes: jobs
        * Self.solverBytes(plan.method, rows: largestLayer[0], columns: largestLayer[1], widestInput: widestInput),
      roundedBytes: plan.outputDType == .F32 ? 0 : jobs * largestBlock * float,
      evaluationBytes: evaluationBytes)
    estimate.spillFolder = spillFolder
    return estimate
  }

  /// The memory of pruning a layer of `rows` × `columns` (the largest of the block; `widestInput`
  /// its widest input, for the n × n matrices): the method's work space, read from the solvers
  /// (Sources/PruneSolvers); the pipeline's Grams are its own sums Σ x xᵀ, so the semidefinite check
  /// (`LayerProblem.checkSemidefinite`, 8w²) is skipped (`prune(…, gramsAccumulated: true)`):
  ///   - SparseGPT (and APT, the same OBS setup, `OBSSetup`): W in Double and the result in Float;
  ///     at most three n × n Doubles alive at once (H's factor L, L⁻¹ and H⁻¹ while the inverse is
  ///     formed; H is dropped once factored, and U alone lives through the sweep);
  ///   - Wanda: the scores in Double twice (the matrix and `Mask.pruningLowest`'s copy), the mask
  ///     and the masked result;
  ///   - FISTA: the largest of its phases: the lasso (C = W·K, Z, Y, Y·G, the warm start, the
  ///     candidate and Jacobi's Ĉ in Float, Ĝ (n × n Float), the λ quantile's scored indices, 16
  ///     bytes each); the SparseGPT warm start beside C; the final refit (G*, W, C and the result
  ///     in Double, and one kept-columns system per thread, two n × n Doubles counted);
  ///   - ADMM: W, Z, U, B and the result in Float, and the factored system (n × n Float, twice);
  ///   - ALPS: B₀, Y, B, Z, Λ, the right-hand side and the result in Float, and G̃, the factor and
  ///     (G̃ + ρI)⁻¹ (n × n Float, three times);
  ///   - the others (magnitude, refit, SparseLLM's attention): W in Double and the result;
  /// plus the error evaluation of the result (`traceOfProduct`: a block of at most 32 MiB of rows
  /// of W − Ŵ, of Ŵ and of their product with the Gram, and a panel of 512 of the Gram's columns
  /// in Double).
  static func solverBytes(_ method: PruningMethod, rows m: Int, columns n: Int, widestInput w: Int) -> Int {
    let mn = m * n
    let work: Int
    switch method {
    case .sparsegpt, .apt: work = mn * (8 + 4) + 3 * w * w * 8
    case .wanda: work = mn * (8 + 8 + 1 + 4)
    case .fista:
      let lasso = mn * (7 * 4 + 16) + w * w * 4
      let warmStart = mn * (4 + 8 + 4) + 3 * w * w * 8
      let refit = mn * 4 + 3 * mn * 8 + w * w * 8 + 2 * w * w * 8
      work = max(lasso, warmStart, refit)
    case .admm: work = mn * 5 * 4 + 2 * w * w * 4
    case .alps: work = mn * 7 * 4 + 3 * w * w * 4
    default: work = mn * (8 + 4)
    }
    let errorEvaluation =
      3 * min(LayerProblem<Float>.errorBlockBytes, 8 * mn) + 8 * w * min(LayerProblem<Float>.errorPanelColumns, w)
    return work + errorEvaluation
  }

  /// Prunes `model` in place. Blocks found in `store` are installed instead of pruned; every block
  /// pruned here is saved to `store` before the next one starts.
  public func run(
    _ model: inout TransformerLM, store: (any BlockStore)? = nil,
    progress: @escaping (ModelPruningEvent) -> Void = { _ in }
  ) throws(ModelPruningError) -> ModelPruningSummary {
    let start = ContinuousClock.now
    precondition(!releasesBlocks || store != nil, "ModelPruner: releasesBlocks needs a store to keep the pruned blocks")
    let blocks = try blockList(for: model)
    let estimate = estimate(for: model)
    progress(.started(blocks: blocks, estimate: estimate))
    let wanted = Set(blocks)
    var records: [Int: [LayerRecord]] = [:]
    var resumed: [Int] = []
    var prunedHere = 0
    let toPrune = blocks.count

    func finish(_ b: Int, _ outcome: BlockOutcome, into model: inout TransformerLM, save: Bool)
      throws(ModelPruningError)
    {
      var outcome = outcome
      if plan.outputDType != .F32 && save {
        outcome.weights = outcome.weights.map { (name, w) in
          (name, Matrix(rows: w.rows, columns: w.columns, elements: plan.outputDType.rounded(w.elements)))
        }
      }
      for (name, w) in outcome.weights {
        do { try model.setLinearWeight(name, w) } catch { throw .forward(error) }
      }
      records[b] = outcome.records
      if save {
        try store?.save(block: b, weights: outcome.weights, records: outcome.records)
        prunedHere += 1
        let elapsed = secondsSince(start)
        let remaining = toPrune - resumed.count - prunedHere
        progress(
          .block(
            b, done: resumed.count + prunedHere, of: toPrune, elapsed: elapsed,
            eta: prunedHere > 0 ? elapsed / Double(prunedHere) * Double(remaining) : nil))
      }
    }
    func stored(_ b: Int, _ model: TransformerLM) throws(ModelPruningError) -> BlockOutcome? {
      guard let store, let found = try store.load(block: b, model: model) else { return nil }
      resumed.append(b)
      progress(.resumed(blocks: [b]))
      return BlockOutcome(weights: found.weights.map { ($0.0, $0.1) }, records: found.records)
    }

    // Where the time goes (`PhaseSeconds`): each phase measured around its calls; the spill's reads
    // and writes are counted by the spill and taken out of the phase they happen in.
    var phases = PhaseSeconds()
    let spill = self.spill
    func spillSeconds() -> Double { spill?.seconds ?? 0 }

    let sequenceLength = calibration.sequenceLength
    /// h₀: the embedded calibration tokens, in memory or spilled a chunk at a time.
    func embedded(_ model: inout TransformerLM) throws(ModelPruningError) -> HiddenStates {
      let hidden: HiddenStates
      let embeddingWasLoaded = model.isEmbeddingLoaded
      var clock = ContinuousClock.now
      do { try model.loadEmbedding() } catch { throw .forward(error) }
      phases.read += secondsSince(clock)
      if let spill {
        var file: SpillFile? = nil
        let tokens = calibration.tokens
        let chunks = BlockInput.chunks(
          rows: tokens.count, sequenceLength: sequenceLength, chunkWindows: plan.chunkWindows)
        for r in chunks {
          clock = ContinuousClock.now
          let h: Matrix<Float>
          do { h = try model.embed(Array(tokens[r]), sequenceLength: sequenceLength) } catch { throw .forward(error) }
          phases.embed += secondsSince(clock)
          if file == nil { file = try spill.file(block: 0, rows: tokens.count, columns: h.columns) }
          try file!.write(h, at: r.lowerBound)
        }
        hidden = .spilled(file!)
      } else {
        clock = ContinuousClock.now
        do { hidden = .memory(try model.embed(calibration.tokens, sequenceLength: sequenceLength)) } catch {
          throw .forward(error)
        }
        phases.embed += secondsSince(clock)
      }
      if releasesBlocks && !embeddingWasLoaded {
        model.releaseEmbedding()
        // glibc keeps freed pages in its heap; give them back so that the blocks do not sit on top
        // of the embedding's (`returnFreedMemory`).
        returnFreedMemory()
      }
      return hidden
    }

    var allocation: BlockAllocation? = nil
    func pattern(_ b: Int) -> SparsityPattern { allocation?.pattern(block: b, base: plan.pattern) ?? plan.pattern }

    let lastBlock = blocks.last ?? -1
    let layerProgress: (LayerRecord) -> Void = { r in progress(.layer(r, elapsed: secondsSince(start))) }
    func load(_ b: Int, into model: inout TransformerLM) throws(ModelPruningError) {
      let clock = ContinuousClock.now
      defer { phases.read += secondsSince(clock) }
      do { try model.loadBlock(b) } catch { throw .forward(error) }
    }
    func release(_ b: Int, from model: inout TransformerLM) {
      if releasesBlocks {
        model.releaseBlock(b)
        returnFreedMemory()
      }
    }
    func restored(_ b: Int, _ model: TransformerLM) throws(ModelPruningError) -> BlockOutcome? {
      let clock = ContinuousClock.now
      defer { phases.read += secondsSince(clock) }
      return try stored(b, model)
    }
    /// The next block's input from `input` through block `b`, its time in `forward`.
    func forward(
      _ input: BlockInput, _ b: Int, _ model: TransformerLM, captures: UnsafeMutablePointer<[[Matrix<Float>]]>? = nil
    ) throws(ModelPruningError) -> HiddenStates {
      let clock = ContinuousClock.now
      let spilled = spillSeconds()
      defer { phases.forward += secondsSince(clock) - (spillSeconds() - spilled) }
      return try input.output(of: model, block: b, captures: captures, spill: spill)
    }
    func saved(_ b: Int, _ outcome: BlockOutcome, into model: inout TransformerLM) throws(ModelPruningError) {
      var outcome = outcome
      if let allocation {
        for i in outcome.records.indices { outcome.records[i].targetSparsity = allocation.sparsity(block: b) }
      }
      phases.gram += outcome.gramSeconds
      phases.solve += outcome.solveSeconds
      let clock = ContinuousClock.now
      defer { phases.write += secondsSince(clock) }
      try finish(b, outcome, into: &model, save: true)
    }

    if plan.readsCalibration {
      var hidden = try embedded(&model)
      // OWL: a dense pass over every block measures the outlier ratios before any block is pruned
      // (Docs/methods/owl.md); each block is then pruned at its own ratio.
      allocation = plan.allocation == .owl ? try owlAllocation(&model, input: hidden, phases: &phases) : nil
      if let allocation { progress(.allocated(allocation, seconds: secondsSince(start))) }
      switch plan.schedule {
      case .sequential, .sparsellm:
        for b in 0...max(lastBlock, 0) where b <= lastBlock {
          let input = BlockInput(states: hidden, sequenceLength: sequenceLength, chunkWindows: plan.chunkWindows)
          try load(b, into: &model)
          if let outcome = try restored(b, model) {
            try finish(b, outcome, into: &model, save: false)
          } else {
            let outcome = try Self.measured(input) { () throws(ModelPruningError) in
              plan.schedule == .sparsellm
                ? try pruneBlockSparseLLM(
                  model, block: b, input: input, pattern: pattern(b), options: plan.options, progress: layerProgress)
                : try pruneBlockSequential(
                  &model, block: b, input: input, method: plan.method, pattern: pattern(b), options: plan.options,
                  progress: layerProgress)
            }
            try saved(b, outcome, into: &model)
          }
          if b < lastBlock { hidden = try forward(input, b, model) }
          release(b, from: &model)
        }
      case .corrected:
        // The dense chain runs ahead of the pruning: the inputs of a batch of `jobs` blocks are
        // computed on the still-dense blocks before any of them is pruned.
        var b = 0
        while b <= lastBlock {
          var batch: [(block: Int, input: BlockInput, dense: [[Matrix<Float>]]?)] = []
          while b <= lastBlock && batch.count < plan.jobs {
            let input = BlockInput(states: hidden, sequenceLength: sequenceLength, chunkWindows: plan.chunkWindows)
            try load(b, into: &model)
            let outcome = wanted.contains(b) ? try restored(b, model) : nil
            let prune = wanted.contains(b) && outcome == nil
            // The pass that feeds the next block also keeps this block's dense layer inputs, when
            // they fit the budget, so that pruning it does not run the dense block again.
            var captures: [[Matrix<Float>]] = []
            let keep = prune && input.captureBytes(of: model, block: b) <= Self.captureBudget / plan.jobs
            if b < lastBlock || keep {
              let next = try withUnsafeMutablePointer(to: &captures) { (p) throws(ModelPruningError) in
                try forward(input, b, model, captures: keep ? p : nil)
              }
              if b < lastBlock { hidden = next }
            }
            if let outcome { try finish(b, outcome, into: &model, save: false) }
            if prune { batch.append((b, input, keep ? captures : nil)) } else { release(b, from: &model) }
            b += 1
          }
          guard !batch.isEmpty else { continue }
          let outcomes = try pruneConcurrently(batch, model: model, allocation: allocation, progress: layerProgress)
          for (item, outcome) in zip(batch, outcomes) {
            try saved(item.block, outcome, into: &model)
            release(item.block, from: &model)
          }
        }
      }
    } else {
      // Magnitude: each block pruned from its weights alone, nothing embedded or run.
      for b in blocks {
        try load(b, into: &model)
        if let outcome = try restored(b, model) {
          try finish(b, outcome, into: &model, save: false)
        } else {
          try saved(
            b, try pruneBlockWeightsOnly(model, block: b, pattern: plan.pattern, progress: layerProgress), into: &model)
        }
        release(b, from: &model)
      }
    }
    if spill != nil { phases.spill = spillSeconds() }

    let layers = blocks.flatMap { records[$0] ?? [] }
    var summary = ModelPruningSummary(
      layers: layers, blocks: blocks, resumedBlocks: resumed, schedule: plan.schedule,
      prunableParameters: layers.reduce(0) { $0 + $1.shape[0] * $1.shape[1] },
      zeroParameters: layers.reduce(0) { $0 + $1.zeros }, totalParameters: model.parameterCount,
      seconds: secondsSince(start), estimate: estimate)
    summary.secondsByPhase = phases
    summary.allocation = allocation
    return summary
  }

  /// Runs a block driver on `input` and sets the outcome's `gramSeconds`: the driver's time less
  /// the layer method's and the spill reads of `input` (one job's own, when several run at once).
  static func measured(_ input: BlockInput, _ driver: () throws(ModelPruningError) -> BlockOutcome)
    throws(ModelPruningError) -> BlockOutcome
  {
    let clock = ContinuousClock.now
    let spilled = input.spillSeconds
    var outcome = try driver()
    outcome.gramSeconds = max(0, secondsSince(clock) - outcome.solveSeconds - (input.spillSeconds - spilled))
    return outcome
  }

  /// Bytes of dense layer inputs a run may keep between the dense pass and the pruning of a block;
  /// above it they are recomputed group by group, a piece at a time (the same bits). 128 MiB: SmolLM2
  /// on austen-quick's 16,384 tokens would keep 214 MB, and recomputing them (about two block passes
  /// a block, beside FISTA's solves) keeps FISTA's peak under 512 MiB (Docs/pipeline.md#memory).
  static let captureBudget = 128 << 20

  /// Prunes the blocks of a batch at once under `corrected`, the kernel threads split evenly
  /// between them. Layer progress is reported as each job's layers finish (serialised by a lock).
  private func pruneConcurrently(
    _ batch: [(block: Int, input: BlockInput, dense: [[Matrix<Float>]]?)], model: TransformerLM,
    allocation: BlockAllocation?, progress: @escaping (LayerRecord) -> Void
  ) throws(ModelPruningError) -> [BlockOutcome] {
    let plan = self.plan
    let patterns = batch.map { allocation?.pattern(block: $0.block, base: plan.pattern) ?? plan.pattern }
    if batch.count == 1 {
      return [
        try Self.measured(batch[0].input) { () throws(ModelPruningError) in
          try pruneBlockCorrected(
            model, block: batch[0].block, input: batch[0].input, denseInputs: batch[0].dense, method: plan.method,
            pattern: patterns[0],
            options: plan.options, progress: progress)
        }
      ]
    }
    let threads = max(1, Parallelism.threads / batch.count)
    let results = ResultSlots<Result<BlockOutcome, ModelPruningError>>(count: batch.count)
    let lock = NSLock()
    let report = UncheckedSendable(progress)
    DispatchQueue.concurrentPerform(iterations: batch.count) { i in
      let result = Parallelism.$threadOverride.withValue(threads) {
        Result { () throws(ModelPruningError) -> BlockOutcome in
          try Self.measured(batch[i].input) { () throws(ModelPruningError) in
            try pruneBlockCorrected(
              model, block: batch[i].block, input: batch[i].input, denseInputs: batch[i].dense, method: plan.method,
              pattern: patterns[i],
              options: plan.options, progress: { r in lock.withLock { report.value(r) } })
          }
        }
      }
      results.set(i, result)
    }
    return try results.values.map { r throws(ModelPruningError) in try r!.get() }
  }
}

/// One slot per concurrent job, each written by exactly one job.
private final class ResultSlots<T>: @unchecked Sendable {
  private var slots: [T?]
  private let lock = NSLock()
  init(count: Int) { slots = Array(repeating: nil, count: count) }
  func set(_ i: Int, _ value: T) { lock.withLock { slots[i] = value } }
  var values: [T?] { lock.withLock { slots } }
}

/// A closure the caller guarantees is only called under a lock.
private struct UncheckedSendable<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
