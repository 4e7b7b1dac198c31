import Foundation
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// The block runs over pieces of a calibration chunk (Docs/pipeline.md#memory), so that its
/// internal activations are bounded by a piece; the Grams are still reduced in the depth blocks of
/// the whole chunk. Nothing may depend on the piece size: every check here is bit for bit.
@Suite struct CalibrationPieceTests {
  /// 64 windows of 32 tokens in one chunk (2048 tokens): the default piece is 32 windows (1024
  /// tokens), and the Gram's depth blocks of 2048 (6 of 342 or less) and the cross-Gram GEMM's
  /// (3 of 683 or less) end inside pieces.
  static func input(_ model: TransformerLM, pieceWindows: Int? = nil) throws -> BlockInput {
    var rng = SplitMix64(seed: 31)
    let tokens = (0..<(64 * 32)).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
    let hidden = try model.embed(tokens, sequenceLength: 32)
    return BlockInput(hidden: hidden, sequenceLength: 32, chunkWindows: 64, pieceWindows: pieceWindows)
  }

  /// Piece sizes compared with one piece of the whole chunk (the block run over all of it at once):
  /// the default, one window, and 3 windows (96 tokens, which no depth block boundary follows).
  static let pieces: [Int?] = [nil, 1, 3]

  @Test func defaultPieceIsAtMostOneThousandTokensOfWholeWindows() {
    #expect(BlockInput.pieceWindows(sequenceLength: 32, chunkWindows: 64) == 32)
    #expect(BlockInput.pieceWindows(sequenceLength: 1024, chunkWindows: 16) == 1, "SmolLM2 austen-quick")
    #expect(BlockInput.pieceWindows(sequenceLength: 2048, chunkWindows: 16) == 1, "a window longer than a piece")
    #expect(BlockInput.pieceWindows(sequenceLength: 512, chunkWindows: 1) == 1, "never more than a chunk")
  }

  /// The Grams of the pieces equal those of one pass over the whole chunk, each group's input
  /// captured whole and added at once (what the drivers did before pieces): without the depth
  /// blocks (`DepthBlockedRows`) the pieces would be reduced in another order.
  @Test(arguments: ModelPrunerTests.architectures, pieces)
  func gramsEqualOnePassOverTheChunk(_ name: String, _ piece: Int?) throws {
    let model = try ModelPrunerTests.load(name)
    let input = try Self.input(model, pieceWindows: piece)
    #expect(input.pieces.count == (64 + input.pieceWindows - 1) / input.pieceWindows, "the last piece may be short")
    let groups = model.linearGroups(block: 0).count
    let hidden = try input.rows(0..<input.tokens)
    var whole: [GramAccumulator<GramScalar>] = []
    _ = model.runBlock(0, hidden: hidden, sequenceLength: 32) { captured in
      var acc = GramAccumulator<GramScalar>(features: captured.input.columns)
      acc.add(captured.input)
      whole.append(acc)
    }
    let streamed = try groupGrams(model, block: 0, input: input, groups: groups)
    #expect(streamed.count == groups)
    for g in 0..<groups {
      #expect(streamed[g].tokens == 64 * 32)
      expectBitIdentical(streamed[g].gram, whole[g].gram, "\(name) group \(g), pieces of \(input.pieceWindows)")
    }
    guard case .memory(let output) = try input.output(of: model, block: 0) else {
      Issue.record("\(name): the block output of an input in memory was not in memory")
      return
    }
    expectBitIdentical(
      output, model.runBlock(0, hidden: hidden, sequenceLength: 32),
      "\(name) block output, pieces of \(input.pieceWindows)")
  }

  /// Both drivers prune a block to the same bits (weights and reports) whatever the piece.
  @Test(arguments: ModelPrunerTests.architectures, [PruningSchedule.sequential, .corrected])
  func blocksArePrunedTheSameForEveryPiece(_ name: String, _ schedule: PruningSchedule) throws {
    let model = try ModelPrunerTests.load(name)
    let method: PruningMethod = schedule == .corrected ? .fista : .sparsegpt
    func prune(_ piece: Int?) throws -> BlockOutcome {
      let input = try Self.input(model, pieceWindows: piece)
      if schedule == .corrected {
        var captures: [[Matrix<Float>]] = []
        _ = try withUnsafeMutablePointer(to: &captures) { p throws(ModelPruningError) in
          try input.output(of: model, block: 0, captures: p)
        }
        #expect(captures.allSatisfy { $0.count == input.pieces.count })
        return try pruneBlockCorrected(
          model, block: 0, input: input, denseInputs: piece == 3 ? nil : captures, method: method,
          pattern: .nOfM(n: 2, m: 4), options: MethodOptions(), progress: { _ in })
      }
      var pruned = model
      return try pruneBlockSequential(
        &pruned, block: 0, input: input, method: method, pattern: .nOfM(n: 2, m: 4), options: MethodOptions(),
        progress: { _ in })
    }
    let reference = try prune(64)
    for piece in Self.pieces {
      let outcome = try prune(piece)
      #expect(outcome.weights.map(\.name) == reference.weights.map(\.name))
      for (a, b) in zip(outcome.weights, reference.weights) {
        expectBitIdentical(a.weight, b.weight, "\(name) \(schedule) \(a.name), pieces of \(piece ?? 32)")
      }
      // The reports but their timings.
      #expect(
        outcome.records.map(\.report.relativeError) == reference.records.map(\.report.relativeError),
        "\(name) \(schedule), pieces of \(piece ?? 32)")
      #expect(outcome.records.map(\.zeros) == reference.records.map(\.zeros))
    }
  }
}
