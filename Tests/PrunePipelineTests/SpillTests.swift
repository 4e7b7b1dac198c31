import Foundation
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// The calibration activations spilled to disk (Docs/pipeline.md#spill): the same pruned weights,
/// bit for bit, as in memory; the spill folder chosen by the budget, removed at the end and after a
/// failure; a resumed spilled run equal to an uninterrupted one; and the time by phase.
@Suite struct SpillTests {
  /// Windows per chunk in the library runs: 8 windows of 32 tokens give 3 chunks (3, 3, 2), so the
  /// spill files are written and read in several pieces, one short.
  static let chunkWindows = 3

  static func plan(_ schedule: PruningSchedule) -> ModelPruningPlan {
    ModelPruningPlan(
      method: schedule == .sparsellm ? .sparsellm : .sparsegpt, pattern: .unstructured(ratio: 0.5, group: .row),
      schedule: schedule, jobs: schedule == .corrected ? 2 : 1, chunkWindows: chunkWindows)
  }

  /// Every golden architecture and schedule: the pruned weights and every layer's report (errors,
  /// dampings) equal those of the in-memory run bit for bit, the spill files are gone once the run
  /// returns, and the spill's time is reported.
  @Test(arguments: ModelPrunerTests.architectures, [PruningSchedule.sequential, .corrected, .sparsellm])
  func aSpilledRunEqualsTheInMemoryOne(_ name: String, _ schedule: PruningSchedule) throws {
    let folder = TemporaryFolder("spill-\(name)-\(schedule)")
    defer { folder.remove() }
    var inMemory = try ModelPrunerTests.load(name)
    let cal = ModelPrunerTests.calibration(vocab: inMemory.config.vocabSize)
    let plain = try ModelPruner(plan: Self.plan(schedule), calibration: cal).run(&inMemory)

    var spilled = try ModelPrunerTests.load(name)
    var pruner = ModelPruner(plan: Self.plan(schedule), calibration: cal)
    let spill = try ActivationSpill.create(folder.file("acts"))
    pruner.spill = spill
    let summary = try pruner.run(&spilled)
    #expect(
      try ModelPrunerTests.allWeights(spilled) == (try ModelPrunerTests.allWeights(inMemory)), "\(name) \(schedule)")
    #expect(summary.layers.map(\.zeros) == plain.layers.map(\.zeros))
    #expect(summary.layers.map(\.report.relativeError) == plain.layers.map(\.report.relativeError))
    #expect(summary.layers.map(\.report.damping) == plain.layers.map(\.report.damping))
    #expect(try FileManager.default.contentsOfDirectory(atPath: spill.folder.path).isEmpty, "files removed")
    #expect(summary.estimate.spillFolder == spill.folder.path && plain.estimate.spillFolder == nil)
    #expect(summary.estimate.hiddenBytes < plain.estimate.hiddenBytes, "the spilled hidden term holds chunks")
    #expect(summary.secondsByPhase.spill != nil && plain.secondsByPhase.spill == nil)
    spill.remove()
  }

  /// A spill file reads back the bits it was given, chunk by chunk, and is deleted with its last
  /// reference; its reads and writes are timed.
  @Test func aSpillFileRoundTripsAndIsDeletedWhenDropped() throws {
    let folder = TemporaryFolder("spill-file")
    defer { folder.remove() }
    let spill = try ActivationSpill.create(folder.file("acts"))
    var rng = SplitMix64(seed: 11)
    let m = Matrix<Float>(rows: 10, columns: 7, elements: (0..<70).map { _ in Float(rng.uniform(in: -0.5...0.5)) })
    var file: SpillFile? = try spill.file(block: 4, rows: 10, columns: 7)
    try file!.write(m.submatrix(rows: 6..<10, columns: 0..<7), at: 6)
    try file!.write(m.submatrix(rows: 0..<6, columns: 0..<7), at: 0)
    #expect(try file!.read(0..<10) == m, "seed 11")
    #expect(try file!.read(3..<8) == m.submatrix(rows: 3..<8, columns: 0..<7))
    #expect(try FileManager.default.contentsOfDirectory(atPath: spill.folder.path) == ["input-004.f32"])
    #expect(spill.seconds > 0)
    file = nil
    #expect(try FileManager.default.contentsOfDirectory(atPath: spill.folder.path).isEmpty)
    // Owner-only.
    let mode = try FileManager.default.attributesOfItem(atPath: spill.folder.path)[.posixPermissions] as? Int
    #expect(mode == 0o700)
    spill.remove()
    #expect(!FileManager.default.fileExists(atPath: spill.folder.path))
  }

  /// A folder of that name that is not a spill folder is left alone, and refused.
  @Test func aForeignFolderIsNeitherRemovedNorUsed() throws {
    let folder = TemporaryFolder("spill-foreign")
    defer { folder.remove() }
    let foreign = folder.file("out.spill")
    try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
    try Data("mine".utf8).write(to: foreign.appendingPathComponent("notes.txt"))
    do {
      _ = try ActivationSpill.create(foreign)
      Issue.record("a foreign folder was used")
    } catch {
      #expect(error.message.contains(foreign.path), "\(error)")
    }
    #expect(FileManager.default.fileExists(atPath: foreign.appendingPathComponent("notes.txt").path))
  }

  static func job(_ w: (model: URL, calibration: URL), output: URL, spill: SpillMode, resume: Bool = false)
    -> ModelJob
  {
    var job = ModelJob(
      model: w.model,
      plan: ModelPruningPlan(method: .sparsegpt, pattern: .unstructured(0.5), chunkWindows: 1),
      calibration: .file(w.calibration, windows: 4, sequenceLength: 32), output: output, resume: resume)
    job.spill = spill
    return job
  }

  /// `prune model --spill always` writes the same bytes as `--spill never`, says where it spilled,
  /// and leaves no spill folder; the phases are present, non-negative and sum to at most the wall
  /// time.
  @Test func aSpilledJobWritesTheSameBytesAndCleansUp() throws {
    let folder = TemporaryFolder("spill-job")
    defer { folder.remove() }
    let w = try FaultTests.workspace(folder)
    let never = try Self.job(w, output: folder.file("never"), spill: .never).run()
    var sawSpill = false
    let spilledJob = Self.job(w, output: folder.file("always"), spill: .always)
    let always = try spilledJob.run { event in
      if case .pruning(.block) = event {
        sawSpill = sawSpill || FileManager.default.fileExists(atPath: spilledJob.spillDirectory.path)
      }
    }
    #expect(sawSpill, "the spill folder exists while blocks are pruned")
    #expect(!FileManager.default.fileExists(atPath: spilledJob.spillDirectory.path), "removed at the end")
    for file in ["model.safetensors", "config.json"] {
      #expect(
        try Data(contentsOf: folder.file("never/\(file)")) == (try Data(contentsOf: folder.file("always/\(file)"))))
    }
    #expect(always.summary.estimate.spillFolder == spilledJob.spillDirectory.path)
    #expect(never.summary.estimate.spillFolder == nil)
    for report in [never, always] {
      let phases = report.summary.secondsByPhase
      #expect(phases.named.allSatisfy { $0.1 >= 0 }, "\(phases)")
      #expect(phases.total <= report.totalSeconds + Self.timingSlack, "\(phases) vs \(report.totalSeconds)")
      #expect(phases.read > 0 && phases.solve > 0 && phases.write > 0)
    }
    #expect(always.summary.secondsByPhase.spill != nil && never.summary.secondsByPhase.spill == nil)
    let written = try ModelReport.read(Data(contentsOf: folder.file("always/pruning-report.json")))
    #expect(written.summary.secondsByPhase == always.summary.secondsByPhase)
    let json = String(decoding: always.json(), as: UTF8.self)
    #expect(json.contains("\"seconds_by_phase\"") && json.contains("\"spill_folder\""))
  }

  /// Slack for the phases' sum against the wall time: every phase is measured inside the job's own
  /// wall-clock interval on the same clock, so the sum can only exceed it by the rounding of the
  /// subtractions (the spill taken out of forward and gram): far below a millisecond.
  static let timingSlack = 1e-3

  /// Under `--spill auto` the budget decides: a budget between the spilled and the in-memory
  /// estimates spills (the same bytes), one below both is refused with a hint that does not
  /// suggest spilling, and `--spill never` under the same budget is refused with a hint that does.
  @Test func theBudgetDecidesWhetherToSpill() throws {
    let folder = TemporaryFolder("spill-auto")
    defer { folder.remove() }
    let w = try FaultTests.workspace(folder)
    let reference = try Self.job(w, output: folder.file("reference"), spill: .never).run()
    let inMemory = reference.summary.estimate.totalBytes
    var auto = Self.job(w, output: folder.file("auto"), spill: .auto)
    auto.maxMemory = inMemory - 1
    let spilled = try auto.run()
    #expect(spilled.summary.estimate.spillFolder != nil, "spilled under a budget the in-memory run exceeds")
    #expect(spilled.summary.estimate.totalBytes < inMemory)
    #expect(
      try Data(contentsOf: folder.file("auto/model.safetensors"))
        == (try Data(contentsOf: folder.file("reference/model.safetensors"))))

    var never = Self.job(w, output: folder.file("never"), spill: .never)
    never.maxMemory = inMemory - 1
    do {
      _ = try never.run()
      Issue.record("--spill never ran over the budget")
    } catch {
      guard case .memory(_, _, _, let fits) = error else { throw error }
      #expect(fits != nil && error.hint?.contains("--spill never") == true, "\(error)")
    }
    var tiny = Self.job(w, output: folder.file("tiny"), spill: .auto)
    tiny.maxMemory = 1_000_000
    do {
      _ = try tiny.run()
      Issue.record("a run over both estimates was not refused")
    } catch {
      guard case .memory(let estimate, _, _, let fits) = error else { throw error }
      #expect(estimate.spillFolder != nil && fits == nil, "the refused estimate is the spilled one")
      #expect(error.message.contains("spilled to disk"), "\(error)")
      #expect(error.hint?.contains("--nsamples") == true && error.hint?.contains("--spill") == false, "\(error)")
    }
    #expect(!FileManager.default.fileExists(atPath: tiny.spillDirectory.path))
  }

  /// Killed after block 1 (the checkpoint copied aside there, a stale spill folder left behind):
  /// `--resume --spill always` removes the stale folder and writes the bytes of an uninterrupted run.
  @Test func aResumedSpilledRunIsBitIdentical() throws {
    let folder = TemporaryFolder("spill-resume")
    defer { folder.remove() }
    let w = try FaultTests.workspace(folder)
    let out = folder.file("out")
    let job = Self.job(w, output: out, spill: .always)
    let saved = folder.file("saved-checkpoint")
    _ = try job.run { event in
      if case .pruning(.block(1, _, _, _, _)) = event { FaultTests.copy(job.checkpointDirectory, to: saved) }
    }
    let weights = try Data(contentsOf: out.appendingPathComponent("model.safetensors"))
    try FileManager.default.removeItem(at: out)
    FaultTests.copy(saved, to: job.checkpointDirectory)  // the state the kill left
    try FileManager.default.createDirectory(at: job.spillDirectory, withIntermediateDirectories: true)
    try Data(count: 64).write(to: job.spillDirectory.appendingPathComponent("input-002.f32"))

    let resumed = try Self.job(w, output: out, spill: .always, resume: true).run()
    #expect(resumed.summary.resumedBlocks == [0, 1])
    #expect(try Data(contentsOf: out.appendingPathComponent("model.safetensors")) == weights)
    #expect(!FileManager.default.fileExists(atPath: job.spillDirectory.path))
    #expect(!FileManager.default.fileExists(atPath: job.checkpointDirectory.path))
  }
}
