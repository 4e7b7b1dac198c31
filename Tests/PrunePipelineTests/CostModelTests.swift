import Foundation
import PruneFormats
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// The pipeline's floor (`CostModel`): the pass shares of a block from its shapes, the work each
/// schedule needs, its price, and the rates measured on a tiny seeded LLaMA.
@Suite struct CostModelTests {
  /// hidden 64, 4 heads of 16 (2 key/value heads), FFN 96, 3 blocks.
  static let shape = SyntheticModelFolder.Shape(
    layers: 3, hidden: 64, intermediate: 96, heads: 4, keyValueHeads: 2, vocabulary: 256, untied: false)

  static func model(in folder: TemporaryFolder) throws -> (URL, TransformerLM) {
    let source = folder.file("model")
    try SyntheticModelFolder.write(Self.shape, seed: 8, to: source)
    return (source, try LoadedModel(contentsOf: source).model)
  }

  /// A token's flops by segment, written out: q,k,v 2·64·(64+32+32); causal attention over a window
  /// of 32, 2 products of 64 a pair, (32+1)/2 keys a query on average; o 2·64·64; gate,up 2·2·64·96;
  /// down 2·96·64. The shares are the sums before each group over the total.
  @Test func passSharesFollowTheShapes() throws {
    let folder = TemporaryFolder("cost-shares")
    defer { folder.remove() }
    let (_, model) = try Self.model(in: folder)
    let qkv = 2.0 * 64 * 128
    let attention = 2.0 * 2 * 64 * 33 / 2
    let o = 2.0 * 64 * 64
    let gateUp = 2.0 * 2 * 64 * 96
    let down = 2.0 * 96 * 64
    let total = qkv + attention + o + gateUp + down
    let want = [0, (qkv + attention) / total, (qkv + attention + o) / total, (qkv + attention + o + gateUp) / total]
    let shares = CostModel.blockPassShares(model, block: 1, sequenceLength: 32)
    #expect(shares.count == 4)
    for (s, w) in zip(shares, want) { #expect(abs(s - w) < 1e-12) }
  }

  /// Magnitude reads and runs nothing; the sequential methods pass every block up to its last
  /// group's input and every block but the last once more, with a Gram per group (Wanda: norms);
  /// the corrected schedule passes the dense block and the pruned path, with seven Grams and three
  /// cross-Grams a block; blocks before the first pruned one are passed once; SparseLLM is not priced.
  @Test func workPerSchedule() throws {
    let folder = TemporaryFolder("cost-work")
    defer { folder.remove() }
    let (_, model) = try Self.model(in: folder)
    let last = CostModel.blockPassShares(model, block: 0, sequenceLength: 32)[3]
    let half = SparsityPattern.unstructured(ratio: 0.5, group: .matrix)
    func work(_ method: PruningMethod, blocks: [Int] = [0, 1, 2]) -> InherentWork? {
      CostModel.inherentWork(
        plan: ModelPruningPlan(method: method, pattern: half), model: model, blocks: blocks, sequenceLength: 32)
    }
    let magnitude = try #require(work(.magnitude))
    #expect(magnitude.blockPasses == 0 && magnitude.gramWidths.isEmpty && !magnitude.embeds)
    #expect(magnitude.blocksRead == 3)

    let sparsegpt = try #require(work(.sparsegpt))
    #expect(abs(sparsegpt.blockPasses - (2 + 3 * last)) < 1e-12)
    #expect(sparsegpt.gramWidths == Array(repeating: [64, 64, 64, 96], count: 3).flatMap { $0 })
    #expect(sparsegpt.crossGramWidths.isEmpty && sparsegpt.normWidths.isEmpty && sparsegpt.embeds)

    let wanda = try #require(work(.wanda))
    #expect(wanda.gramWidths.isEmpty && wanda.normWidths.count == 12)

    let fista = try #require(work(.fista))
    #expect(abs(fista.blockPasses - (2 + last + 3 * last)) < 1e-12)
    #expect(
      fista.gramWidths.count == 21 && fista.crossGramWidths == Array(repeating: [64, 64, 96], count: 3).flatMap { $0 })

    let tail = try #require(work(.sparsegpt, blocks: [2]))
    #expect(abs(tail.blockPasses - (2 + last)) < 1e-12)
    #expect(work(.sparsellm) == nil)
  }

  /// The floor is the work times the rates: checked by hand on made-up rates.
  @Test func floorPricesTheWork() {
    var work = InherentWork()
    work.blocksRead = 2
    work.blockPasses = 1.5
    work.gramWidths = [64, 96]
    work.crossGramWidths = [96]
    work.normWidths = [64]
    work.embeds = true
    let rates = MachineRates(
      passSecondsPerToken: 1e-3, gramSecondsPerToken: [64: 2e-4, 96: 3e-4], crossSecondsPerToken: [96: 5e-4],
      normSecondsPerToken: [64: 1e-5], openSeconds: 0.5, readSecondsPerBlock: 0.25, embedSeconds: 0.125,
      writeBytesPerSecond: 1e6)
    let f = CostModel.floor(work, rates: rates, tokens: 1000, outputBytes: 3_000_000)
    #expect(abs(f.read - 1.0) < 1e-12)
    #expect(abs(f.passes - 1.5) < 1e-12)
    #expect(abs(f.sums - (0.2 + 0.3 + 0.5 + 0.01)) < 1e-12)
    #expect(abs(f.calibration - (1.5 + 1.01 + 0.125)) < 1e-12)
    #expect(abs(f.write - 3) < 1e-12)
  }

  /// Every rate measured on the tiny model is positive and finite, for both input widths.
  @Test func ratesAreMeasured() throws {
    let folder = TemporaryFolder("cost-rates")
    defer { folder.remove() }
    let (url, _) = try Self.model(in: folder)
    var rng = SplitMix64(seed: 3)
    let calibration = CalibrationSet(
      tokens: (0..<128).map { _ in Int(rng.next() % 256) }, sequenceLength: 32, source: "seeded")
    let rates = try MachineRates.measure(
      modelAt: url, calibration: calibration, writeDirectory: folder.url, runs: 1)
    #expect(Set(rates.gramSecondsPerToken.keys) == [64, 96])
    #expect(Set(rates.crossSecondsPerToken.keys) == [64, 96] && Set(rates.normSecondsPerToken.keys) == [64, 96])
    let all =
      [
        rates.passSecondsPerToken, rates.openSeconds, rates.readSecondsPerBlock, rates.embedSeconds,
        rates.writeBytesPerSecond,
      ]
      + Array(rates.gramSecondsPerToken.values) + Array(rates.crossSecondsPerToken.values)
    #expect(all.allSatisfy { $0 > 0 && $0.isFinite })
    let left = try FileManager.default.contentsOfDirectory(atPath: folder.url.path)
    #expect(!left.contains { $0.hasPrefix(".prunekit-write-rate") })
  }
}
