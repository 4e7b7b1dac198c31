import Foundation
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// Whole-model pruning on the tiny golden models (2 blocks each): what each driver prunes against,
/// exact patterns, independence from jobs and threads, and resume after a simulated kill.
@Suite struct ModelPrunerTests {
  static let architectures = ["llama-tiny", "opt-tiny", "gpt2-tiny"]

  /// Seeded token windows: 8 windows of 32 tokens (256 calibration tokens).
  static func calibration(vocab: Int, seed: UInt64 = 7) -> CalibrationSet {
    var rng = SplitMix64(seed: seed)
    let tokens = (0..<(8 * 32)).map { _ in Int(rng.next() % UInt64(vocab)) }
    return CalibrationSet(tokens: tokens, sequenceLength: 32, source: "seeded")
  }

  static func load(_ name: String) throws -> TransformerLM {
    let folder = ModelFiles.packageRoot.appendingPathComponent("Fixtures/golden/\(name)")
    return try TransformerLM(
      config: try ForwardConfig(contentsOf: folder.appendingPathComponent("config.json")),
      weights: try SafetensorsFile(contentsOf: folder.appendingPathComponent("model.safetensors")))
  }

  static func allWeights(_ m: TransformerLM) throws -> [String: Matrix<Float>] {
    var out: [String: Matrix<Float>] = [:]
    for b in 0..<m.blockCount {
      for n in m.linearLayerNames(block: b) { out[n] = try m.linearWeights(n).weight }
    }
    return out
  }

  @Test(arguments: architectures, [PruningSchedule.sequential, .corrected])
  func everyLayerGetsTheExactPattern(_ name: String, _ schedule: PruningSchedule) throws {
    var model = try Self.load(name)
    let plan = ModelPruningPlan(method: .sparsegpt, pattern: .nOfM(n: 2, m: 4), schedule: schedule)
    let summary = try ModelPruner(plan: plan, calibration: Self.calibration(vocab: model.config.vocabSize)).run(&model)
    let layers = (0..<model.blockCount).flatMap { model.linearLayerNames(block: $0) }
    #expect(summary.layers.map(\.name) == layers)
    for name in layers {
      let w = try model.linearWeights(name).weight
      let mask = Mask(nonZerosOf: w)
      #expect(mask.violations(of: .nOfM(n: 2, m: 4)).isEmpty, "\(name)")
    }
    #expect(summary.realisedSparsity == 0.5)
    #expect(summary.zeroParameters == summary.prunableParameters / 2)
    // Under the corrected schedule only the first group of a block sees its dense input.
    for r in summary.layers {
      let firstGroup = model.linearGroups(block: r.block)[0].contains(r.name)
      #expect(r.errorCorrected == (schedule == .corrected && !firstGroup), "\(r.name)")
    }
  }

  /// At sparsity 0 Wanda keeps W, so the model must come back unchanged and every layer's
  /// error must vanish. Under `corrected` E is tr(ŴG*Ŵᵀ) − 2tr(WKŴᵀ) + tr(WGWᵀ) from Float Grams
  /// formed by different kernels (Gram vs GEMM), so it cancels only to rounding: 1e-5 of the energy
  /// (a few hundred units of Float roundoff over 256 tokens).
  @Test(arguments: [PruningSchedule.sequential, .corrected])
  func sparsityZeroLeavesTheModelUnchanged(_ schedule: PruningSchedule) throws {
    let dense = try Self.load("llama-tiny")
    var model = dense
    let plan = ModelPruningPlan(
      method: .wanda, pattern: .unstructured(ratio: 0, group: .matrix), schedule: schedule)
    let summary = try ModelPruner(plan: plan, calibration: Self.calibration(vocab: dense.config.vocabSize)).run(&model)
    #expect(try Self.allWeights(model) == Self.allWeights(dense))
    #expect(summary.zeroParameters == 0)
    for r in summary.layers {
      #expect(r.report.errorMeasured)
      #expect(r.report.relativeError <= (schedule == .sequential ? 0 : 1e-5), "\(r.name)")
    }
  }

  /// Magnitude reads no calibration data (`ModelPruningPlan.readsCalibration`): nothing is embedded,
  /// run or summed (those phases stay 0), every layer is the dense weight pruned by magnitude
  /// alone, under either schedule, and no layer reports an error. A calibration set of token ids
  /// beyond the vocabulary, which embedding would reject, shows it is never read. With
  /// `--refine swaps` or OWL the Grams are needed again.
  @Test(arguments: [PruningSchedule.sequential, .corrected])
  func magnitudeReadsNoCalibration(_ schedule: PruningSchedule) throws {
    let dense = try Self.load("llama-tiny")
    var model = dense
    let pattern = SparsityPattern.nOfM(n: 2, m: 4)
    let plan = ModelPruningPlan(method: .magnitude, pattern: pattern, schedule: schedule)
    #expect(!plan.readsCalibration)
    let unreadable = CalibrationSet(
      tokens: Array(repeating: dense.config.vocabSize + 5, count: 64), sequenceLength: 32, source: "out of vocabulary")
    let summary = try ModelPruner(plan: plan, calibration: unreadable).run(&model)
    let denseWeights = try Self.allWeights(dense)
    for (name, w) in try Self.allWeights(model) {
      #expect(w == (try Magnitude().prune(weight: denseWeights[name]!, pattern: pattern)).weight, "\(name)")
    }
    #expect(summary.layers.count == denseWeights.count && summary.layers.allSatisfy { !$0.report.errorMeasured })
    #expect(summary.meanRelativeError == nil && summary.realisedSparsity == 0.5)
    let phases = summary.secondsByPhase
    #expect(phases.embed == 0 && phases.forward == 0 && phases.gram == 0)
    // The record written as JSON says null, and reads back as not measured.
    let json = String(decoding: reportJSON(summary), as: UTF8.self)
    #expect(json.contains("\"relative_error\" : null") && json.contains("\"mean_relative_error\" : null"))

    var swaps = plan
    swaps.options.refine = .swaps
    var owl = plan
    owl.pattern = .unstructured(ratio: 0.5, group: .matrix)
    owl.allocation = .owl
    #expect(swaps.readsCalibration && owl.readsCalibration)
    #expect(ModelPruningPlan(method: .wanda, pattern: pattern).readsCalibration)
  }

  /// Driver C's bookkeeping: the error reported for block 1's o_proj (error-corrected) equals
  /// ‖X*Ŵᵀ − XWᵀ‖²/‖XWᵀ‖² computed directly from the activations, with X the dense block's
  /// attention output and X* the attention output once q, k, v are pruned. Tolerance 1e-3 relative:
  /// the report comes from Float Grams of 256 tokens, the direct value from Float products.
  @Test func correctedScheduleReconstructsTheDenseOutput() throws {
    let dense = try Self.load("llama-tiny")
    let cal = Self.calibration(vocab: dense.config.vocabSize)
    var model = dense
    let plan = ModelPruningPlan(method: .wanda, pattern: .unstructured(ratio: 0.5, group: .row), schedule: .corrected)
    let summary = try ModelPruner(plan: plan, calibration: cal).run(&model)

    // The dense input of block 1 and the two inputs of its o_proj.
    let h1 = dense.runBlock(0, hidden: try dense.embed(cal.tokens, sequenceLength: 32), sequenceLength: 32)
    let x = dense.groupInput(block: 1, group: 1, hidden: h1, sequenceLength: 32)
    var partial = dense
    for n in dense.linearGroups(block: 1)[0] { try partial.setLinearWeight(n, try model.linearWeights(n).weight) }
    let xStar = partial.groupInput(block: 1, group: 1, hidden: h1, sequenceLength: 32)
    let name = dense.linearGroups(block: 1)[1][0]
    let w = try dense.linearWeights(name).weight
    let wHat = try model.linearWeights(name).weight
    let target = matmul(x, w, transposeB: true)
    let got = matmul(xStar, wHat, transposeB: true)
    var num = 0.0
    var den = 0.0
    for i in 0..<target.rows {
      for j in 0..<target.columns {
        num += Double(got[i, j] - target[i, j]) * Double(got[i, j] - target[i, j])
        den += Double(target[i, j]) * Double(target[i, j])
      }
    }
    let record = try #require(summary.layers.first { $0.name == name })
    #expect(record.errorCorrected)
    #expect(x != xStar, "pruning q, k, v must change the attention output")
    #expect(abs(record.report.relativeError - num / den) <= 1e-3 * num / den)
  }

  /// Driver A: block 1 is pruned against its input in the model whose block 0 is already pruned.
  @Test func sequentialScheduleSeesThePrunedEarlierBlocks() throws {
    let dense = try Self.load("opt-tiny")
    let cal = Self.calibration(vocab: dense.config.vocabSize)
    var model = dense
    let plan = ModelPruningPlan(method: .wanda, pattern: .unstructured(ratio: 0.5, group: .matrix))
    let summary = try ModelPruner(plan: plan, calibration: cal).run(&model)
    // The reported error recomputed from the weights the run produced, on the input block 0's
    // pruned weights give (Wanda: no weight update, so Ŵ is W on its mask).
    var half = dense
    for n in dense.linearLayerNames(block: 0) { try half.setLinearWeight(n, try model.linearWeights(n).weight) }
    let h1 = half.runBlock(0, hidden: try half.embed(cal.tokens, sequenceLength: 32), sequenceLength: 32)
    let name = dense.linearGroups(block: 1)[0][0]
    let x = dense.groupInput(block: 1, group: 0, hidden: h1, sequenceLength: 32)
    let w = try dense.linearWeights(name).weight
    let wHat = try model.linearWeights(name).weight
    let d = matmul(x, Matrix(rows: w.rows, columns: w.columns) { i, j in w[i, j] - wHat[i, j] }, transposeB: true)
    let y = matmul(x, w, transposeB: true)
    let rel = d.frobeniusNorm * d.frobeniusNorm / (y.frobeniusNorm * y.frobeniusNorm)
    let record = try #require(summary.layers.first { $0.name == name })
    #expect(!record.errorCorrected)
    #expect(abs(record.report.relativeError - rel) <= 1e-3 * rel)
  }

  @Test func correctedResultsDoNotDependOnJobsOrThreads() throws {
    let dense = try Self.load("gpt2-tiny")
    let cal = Self.calibration(vocab: dense.config.vocabSize)
    func run(jobs: Int, threads: Int) throws -> [String: Matrix<Float>] {
      var model = dense
      let plan = ModelPruningPlan(method: .fista, pattern: .unstructured(ratio: 0.5, group: .matrix), jobs: jobs)
      _ = try Parallelism.$threadOverride.withValue(threads) {
        try ModelPruner(plan: plan, calibration: cal).run(&model)
      }
      return try Self.allWeights(model)
    }
    let reference = try run(jobs: 1, threads: 1)
    #expect(try run(jobs: 2, threads: 2) == reference)
    #expect(try run(jobs: 1, threads: 3) == reference)
  }

  /// Blocks pruned separately (`--blocks 0-0`, `--blocks 1-1`) and merged equal one whole run.
  @Test func correctedBlockRangesCompose() throws {
    let dense = try Self.load("llama-tiny")
    let cal = Self.calibration(vocab: dense.config.vocabSize)
    var whole = dense
    var first = dense
    var second = dense
    let plan = ModelPruningPlan(
      method: .sparsegpt, pattern: .unstructured(ratio: 0.6, group: .matrix), schedule: .corrected)
    _ = try ModelPruner(plan: plan, calibration: cal).run(&whole)
    var p0 = plan
    var p1 = plan
    p0.blocks = 0...0
    p1.blocks = 1...1
    _ = try ModelPruner(plan: p0, calibration: cal).run(&first)
    _ = try ModelPruner(plan: p1, calibration: cal).run(&second)
    for n in dense.linearLayerNames(block: 0) {
      #expect(try first.linearWeights(n).weight == whole.linearWeights(n).weight)
    }
    for n in dense.linearLayerNames(block: 1) {
      #expect(try second.linearWeights(n).weight == whole.linearWeights(n).weight)
    }
    for n in dense.linearLayerNames(block: 1) {
      #expect(try first.linearWeights(n).weight == dense.linearWeights(n).weight)
    }
  }

  @Test func invalidPlansAreRejectedBeforeAnyWork() throws {
    var model = try Self.load("llama-tiny")
    let cal = Self.calibration(vocab: model.config.vocabSize)
    let bad: [ModelPruningPlan] = [
      ModelPruningPlan(method: .wanda, pattern: .nOfM(n: 2, m: 4), blocks: 1...1),  // sequential from block 1
      ModelPruningPlan(method: .wanda, pattern: .nOfM(n: 2, m: 4), jobs: 2),  // jobs under sequential
      ModelPruningPlan(method: .fista, pattern: .nOfM(n: 2, m: 4), blocks: 0...5),  // beyond the model
    ]
    for plan in bad {
      #expect(throws: ModelPruningError.self) { try ModelPruner(plan: plan, calibration: cal).run(&model) }
    }
    #expect(try Self.allWeights(model) == Self.allWeights(try Self.load("llama-tiny")))
  }

  /// A run killed after block 0 (its store fails on block 1) and resumed from the checkpoint
  /// folder gives the same weights, bit for bit, as an uninterrupted run — under both schedules,
  /// and for magnitude's run without calibration (its records still say no error was measured).
  @Test(arguments: [PruningMethod.admm, .magnitude], [PruningSchedule.sequential, .corrected])
  func resumeAfterAKillIsBitIdentical(_ method: PruningMethod, _ schedule: PruningSchedule) throws {
    let dense = try Self.load("llama-tiny")
    let cal = Self.calibration(vocab: dense.config.vocabSize)
    let plan = ModelPruningPlan(method: method, pattern: .unstructured(ratio: 0.5, group: .matrix), schedule: schedule)
    var uninterrupted = dense
    let full = try ModelPruner(plan: plan, calibration: cal).run(&uninterrupted)

    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunekit-resume-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let fingerprint = ["method": method.rawValue, "schedule": schedule.rawValue]
    struct Killed: Error {}
    struct KillingStore: BlockStore {
      let inner: PruningCheckpoint
      func load(block: Int, model: TransformerLM) throws(ModelPruningError) -> (
        weights: [(String, Matrix<Float>)], records: [LayerRecord]
      )? {
        try inner.load(block: block, model: model)
      }
      func save(block: Int, weights: [(String, Matrix<Float>)], records: [LayerRecord]) throws(ModelPruningError) {
        guard block == 0 else { throw .checkpoint("killed", hint: "test") }
        try inner.save(block: block, weights: weights, records: records)
      }
    }
    var killed = dense
    let store = try PruningCheckpoint(directory: dir, fingerprint: fingerprint, resume: false)
    #expect(throws: ModelPruningError.self) {
      try ModelPruner(plan: plan, calibration: cal).run(&killed, store: KillingStore(inner: store))
    }
    #expect(store.completedBlocks == [0])
    // Without --resume the folder is refused; with other settings too.
    #expect(throws: ModelPruningError.self) {
      try PruningCheckpoint(directory: dir, fingerprint: fingerprint, resume: false)
    }
    #expect(throws: ModelPruningError.self) {
      try PruningCheckpoint(
        directory: dir, fingerprint: ["method": "fista", "schedule": schedule.rawValue], resume: true)
    }
    var resumed = dense
    let again = try PruningCheckpoint(directory: dir, fingerprint: fingerprint, resume: true)
    let summary = try ModelPruner(plan: plan, calibration: cal).run(&resumed, store: again)
    #expect(summary.resumedBlocks == [0])
    #expect(try Self.allWeights(resumed) == Self.allWeights(uninterrupted))
    #expect(summary.layers.map(\.report.relativeError) == full.layers.map(\.report.relativeError))
    #expect(summary.layers.map(\.report.errorMeasured) == full.layers.map(\.report.errorMeasured))
  }

  /// The streaming estimate's terms on llama-tiny (d = 64, f = 160, 2 blocks, vocabulary 256, tied
  /// head), computed here by hand from the layer shapes: q, o 64 × 64; k, v 32 × 64; gate, up
  /// 160 × 64; down 64 × 160: 43008 weights a block, the largest layer 10240 weights, the widest
  /// input 160. Calibration: 8 windows of 32 tokens (t = 256, one chunk of 256).
  @Test func memoryEstimateTermsMatchTheHandComputedOnes() throws {
    let model = try Self.load("llama-tiny")
    let cal = Self.calibration(vocab: model.config.vocabSize)
    var pruner = ModelPruner(plan: ModelPruningPlan(method: .sparsegpt, pattern: .unstructured(0.5)), calibration: cal)
    pruner.evaluation = (windows: 2, sequenceLength: 32)
    let e = pruner.estimate(for: model)
    #expect(e.baseBytes == ModelPruner.baseBytes)
    #expect(e.blockWeightBytes == (43008 + 10240) * 4, "the block and one pruned layer (sequential)")
    #expect(e.embeddingBytes == 256 * 64 * (4 + 2), "Float and the stored form")
    #expect(e.hiddenBytes == 2 * 256 * 64 * 4, "input and output hidden states")
    #expect(
      e.blockBytes == 256 * (6 * 64 + 2 * 160) * 4 + 384 * 352 * 4,
      "one piece of 256 tokens, and less than a depth block of 384 rows pending for each group's Gram")
    #expect(e.gramBytes == (3 * 64 * 64 + 160 * 160) * 4, "[q,k,v] [o] [gate,up] share 64-wide inputs, down 160")
    let errorEvaluation = 3 * 8 * 10240 + 8 * 160 * 160
    #expect(
      e.solverBytes == 10240 * 12 + 3 * 160 * 160 * 8 + errorEvaluation,
      "W in Double, result in Float; L, L⁻¹ and H⁻¹; then the error of the result")
    #expect(e.roundedBytes == 0, "an F32 output is not rounded")
    // The evaluation (`Perplexity.memoryEstimate`, the output read by rows): T = 64 tokens; the
    // golden model is F32 safetensors (s = 4 stored bytes a weight).
    #expect(model.storedType(of: "model.layers.0.self_attn.q_proj.weight") == .f32)
    let evalEmbedding = 64 * 64 * (4 + 4)  // the rows of at most 64 distinct tokens
    let evalBlock = 43008 * 4 + 10240 * 4 + 32 * (7 * 64 + 2 * 160) * 4
    let evalHead = 256 * 64 * (4 + 4) + 256 * 256 * 4 + 32 * 64 * 4  // one band (the whole 256 rows), one chunk
    #expect(evalHead > evalBlock && evalHead > evalEmbedding, "the head phase is the largest here")
    #expect(e.evaluationBytes == 64 * 64 * 4 + evalHead)
    let estimate = Perplexity.memoryEstimate(of: model, windows: 2, sequenceLength: 32)
    #expect(estimate.hiddenBytes == 64 * 64 * 4 && estimate.blockBytes == evalBlock)
    #expect(estimate.embeddingBytes == evalEmbedding && estimate.headBytes == evalHead)
    // Not read by rows: the whole embedding (256 rows).
    let whole = Perplexity.memoryEstimate(of: model, windows: 2, sequenceLength: 32, embeddingByRows: false)
    #expect(whole.embeddingBytes == 256 * 64 * (4 + 4))
    #expect(
      e.pruningBytes == (43008 + 10240) * 4 + 2 * 256 * 64 * 4 + 256 * 704 * 4 + 384 * 352 * 4 + 37888 * 4 + 10240 * 12
        + 614400 + errorEvaluation)
    #expect(e.finishingBytes == (43008 + 10240) * 4 + 2 * 256 * 64 * 4)
    #expect(e.totalBytes == ModelPruner.baseBytes + e.pruningBytes, "the pruning phase is the largest")

    // Corrected, two jobs (FISTA): the block terms double, one more hidden state per job, three
    // Grams per group, and the dense layer inputs kept for pruning (256 tokens × 352 widths).
    var two = ModelPruner(
      plan: ModelPruningPlan(method: .fista, pattern: .nOfM(n: 2, m: 4), jobs: 2), calibration: cal)
    two.evaluation = nil
    let c = two.estimate(for: model)
    #expect(c.blockWeightBytes == 2 * 2 * 43008 * 4)
    #expect(c.hiddenBytes == 3 * 256 * 64 * 4)
    #expect(
      c.blockBytes == 2 * (256 * 704 * 4 + 2 * (384 + 768) * 160 * 4) + 2 * 256 * (3 * 64 + 160) * 4,
      "per job: a piece, one group's X and X* pending for the Grams' and the cross-Gram's depth blocks")
    #expect(c.gramBytes == 2 * 3 * 37888 * 4)
    let lasso = 10240 * (7 * 4 + 16) + 160 * 160 * 4
    let warmStart = 10240 * 16 + 3 * 160 * 160 * 8
    let refit = 10240 * 28 + 3 * 160 * 160 * 8
    #expect(c.solverBytes == 2 * (max(lasso, warmStart, refit) + errorEvaluation), "the largest of FISTA's phases")
    #expect(c.evaluationBytes == 0, "no evaluation")
  }

  /// The terms the streaming estimate lacked (Docs/pipeline.md#memory): a BF16 or F16 output holds
  /// a rounded copy of the pruned block beside it while the block is finished; the layer's work
  /// space is the method's and the error evaluation's (the pipeline skips the semidefinite check
  /// of its own Grams, so no 8w² term).
  @Test func memoryEstimateCountsTheRoundedCopyAndTheErrorEvaluation() throws {
    let model = try Self.load("llama-tiny")
    let cal = Self.calibration(vocab: model.config.vocabSize)
    var plan = ModelPruningPlan(method: .wanda, pattern: .unstructured(0.5))
    let f32 = ModelPruner(plan: plan, calibration: cal).estimate(for: model)
    plan.outputDType = .BF16
    let bf16 = ModelPruner(plan: plan, calibration: cal).estimate(for: model)
    #expect(f32.roundedBytes == 0)
    #expect(bf16.roundedBytes == 43008 * 4, "one block rounded, in Float")
    #expect(bf16.finishingBytes == f32.finishingBytes + 43008 * 4)
    // Wanda on 10240 weights: scores twice in Double, mask, result (21 bytes a weight), and the
    // error evaluation (3 blocks of rows and a panel of the Gram's columns in Double).
    let errorEvaluation = 3 * 8 * 10240 + 8 * 160 * 160
    #expect(f32.solverBytes == 10240 * 21 + errorEvaluation)
    #expect(
      ModelPruner.solverBytes(.wanda, rows: 2, columns: 160, widestInput: 160)
        == 320 * 21 + 3 * 8 * 320 + 8 * 160 * 160, "no semidefinite check in the pipeline")
    // The rounded copy makes the finishing phase the largest when the block dwarfs the rest.
    let big = MemoryEstimate(
      blockWeightBytes: 2 * 1000, hiddenBytes: 10, blockBytes: 1, gramBytes: 1, roundedBytes: 1000)
    #expect(big.totalBytes == big.finishingBytes)
    #expect(big.totalBytes == 3010)
  }

}
