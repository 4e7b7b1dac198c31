import Foundation
import PruneKernels
import PruneOracle
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// What a killed or failing run leaves behind, and what the next run makes of it: the states a
/// SIGKILL can leave (simulated by copying the checkpoint aside at the event where the kill would
/// land), stale temporaries of dead processes, failing writes of the output folder, and the
/// messages of these failures. Tests/fault-kill.sh and Tests/fault-disk.sh do the same with real
/// kills, file-size limits and full file systems.
@Suite struct FaultTests {
  /// A process id no process has (beyond Linux's pid_max and any Darwin pid).
  static let deadPID: Int32 = Int32.max - 1

  /// A small seeded model folder and calibration text in `folder`.
  static func workspace(_ folder: TemporaryFolder) throws -> (model: URL, calibration: URL) {
    let model = folder.file("model")
    try SyntheticModelFolder.write(
      .init(layers: 3, hidden: 32, intermediate: 64, heads: 4, keyValueHeads: 2), seed: 5, to: model)
    let text = folder.file("calib.txt")
    try Data(
      String(
        repeating: "It is a truth universally acknowledged, that a single man in possession of a good fortune. ",
        count: 8
      ).utf8
    )
    .write(to: text)
    return (model, text)
  }

  static func job(_ w: (model: URL, calibration: URL), output: URL, resume: Bool = false) -> ModelJob {
    ModelJob(
      model: w.model, plan: ModelPruningPlan(method: .sparsegpt, pattern: .unstructured(0.5)),
      calibration: .file(w.calibration, windows: 4, sequenceLength: 32), output: output, resume: resume)
  }

  static func copy(_ from: URL, to: URL) {
    try? FileManager.default.removeItem(at: to)
    try! FileManager.default.copyItem(at: from, to: to)
  }

  static func names(_ folder: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
  }

  /// A run whose memory estimate exceeds `maxMemory` is refused before any work: a usage error
  /// (exit 2) carrying the estimate, with neither the output nor its checkpoint folder created.
  @Test func aRunOverTheMemoryBudgetIsRefusedBeforeAnyWork() throws {
    let folder = TemporaryFolder("fault-memory")
    defer { folder.remove() }
    let w = try Self.workspace(folder)
    let out = folder.file("out")
    var job = Self.job(w, output: out)
    job.maxMemory = 1_000_000
    var started = false
    do {
      _ = try job.run { event in if case .pruning = event { started = true } }
      Issue.record("a run over --max-memory 1MB was not refused")
    } catch {
      guard case .memory(let estimate, let budget, let given, _) = error else {
        Issue.record("unexpected error \(error)")
        return
      }
      #expect(estimate.totalBytes > budget && budget == 1_000_000 && given)
      #expect(error.isUsageError, "exit 2")
      #expect(error.message.contains("--max-memory"))
      #expect(error.hint?.contains("--nsamples") == true)
    }
    #expect(!started, "no block was pruned")
    #expect(Self.names(folder.url) == ["calib.txt", "model"], "no output, no checkpoint")
  }

  @Test func syntheticModelFolderLoadsWithItsByteTokenizer() throws {
    let folder = TemporaryFolder("fault-synthetic")
    defer { folder.remove() }
    let w = try Self.workspace(folder)
    let loaded = try LoadedModel(contentsOf: w.model)
    #expect(loaded.model.blockCount == 3)
    #expect(loaded.tokenizer.vocabularySize == 256)
    #expect(loaded.tokenizer.encode("Emma").count == 4, "one token per byte")
  }

  /// Killed after the output was renamed into place but before the checkpoint was removed: the
  /// output is complete, and `--resume` checks it against the checkpoint, removes the checkpoint
  /// and returns the report; without `--resume` the message says to add it.
  @Test func resumeFinishesARunKilledAfterItsOutputWasWritten() throws {
    let folder = TemporaryFolder("fault-after-rename")
    defer { folder.remove() }
    let w = try Self.workspace(folder)
    let out = folder.file("out")
    let job = Self.job(w, output: out)
    let saved = folder.file("saved-checkpoint")
    let report = try job.run { event in
      if case .written = event { Self.copy(job.checkpointDirectory, to: saved) }
    }
    #expect(!FileManager.default.fileExists(atPath: job.checkpointDirectory.path))
    let weights = try Data(contentsOf: out.appendingPathComponent("model.safetensors"))
    Self.copy(saved, to: job.checkpointDirectory)  // the state the kill left

    do {
      _ = try job.run()
      Issue.record("a run without --resume overwrote an existing output")
    } catch {
      #expect(error.isUsageError && error.description.contains("add --resume"), "\(error)")
    }
    let finished = try Self.job(w, output: out, resume: true).run()
    #expect(finished == report)
    #expect(try Data(contentsOf: out.appendingPathComponent("model.safetensors")) == weights)
    #expect(!FileManager.default.fileExists(atPath: job.checkpointDirectory.path))
  }

  /// Killed while the output was being written, with the temporaries of the dead process around
  /// (staging folders, a half-written block file): the resume removes them, takes every block from
  /// the checkpoint and writes the same bytes.
  @Test func resumeAfterAKillDuringTheOutputWriteIsBitIdenticalAndClean() throws {
    let folder = TemporaryFolder("fault-during-write")
    defer { folder.remove() }
    let w = try Self.workspace(folder)
    let out = folder.file("out")
    let job = Self.job(w, output: out)
    let saved = folder.file("saved-checkpoint")
    _ = try job.run { event in
      if case .writing = event { Self.copy(job.checkpointDirectory, to: saved) }
    }
    let weights = try Data(contentsOf: out.appendingPathComponent("model.safetensors"))
    try FileManager.default.removeItem(at: out)
    Self.copy(saved, to: job.checkpointDirectory)
    let dead = Self.deadPID
    let stale = [".out.partial-\(dead)", "..out.partial-\(dead).export-\(dead)-7", ".out.checkpoint.partial-\(dead)"]
    for name in stale {
      try FileManager.default.createDirectory(at: folder.file(name), withIntermediateDirectories: false)
      try Data("half".utf8).write(to: folder.file(name).appendingPathComponent("model.safetensors"))
    }
    let halfBlock = job.checkpointDirectory.appendingPathComponent(".block-001.safetensors.tmp-\(dead)-3")
    try Data("half".utf8).write(to: halfBlock)

    let report = try Self.job(w, output: out, resume: true).run()
    #expect(report.summary.resumedBlocks == [0, 1, 2])
    #expect(try Data(contentsOf: out.appendingPathComponent("model.safetensors")) == weights)
    #expect(Self.names(folder.url) == ["calib.txt", "model", "out", "saved-checkpoint"], "\(Self.names(folder.url))")
  }

  /// A checkpoint folder is created with its run.json in one step, and a run that finds a
  /// half-written block file of a dead process ignores and removes it.
  @Test func checkpointsNeverLackTheirFingerprintAndIgnoreHalfWrittenBlocks() throws {
    let folder = TemporaryFolder("fault-checkpoint")
    defer { folder.remove() }
    let dir = folder.file("out.checkpoint")
    try FileManager.default.createDirectory(
      at: folder.file(".out.checkpoint.partial-\(Self.deadPID)"), withIntermediateDirectories: false)
    let store = try PruningCheckpoint(directory: dir, fingerprint: ["method": "wanda"], resume: false)
    #expect(Self.names(folder.url) == ["out.checkpoint"])
    #expect(Self.names(dir) == ["run.json"])
    try Data("half".utf8).write(to: dir.appendingPathComponent(".block-000.safetensors.tmp-\(Self.deadPID)-1"))
    #expect(store.completedBlocks.isEmpty)
    _ = try PruningCheckpoint(directory: dir, fingerprint: ["method": "wanda"], resume: true)
    #expect(Self.names(dir) == ["run.json"])
  }

  /// A block that cannot be saved: the message names the block and its file, and says what was kept.
  @Test func aFailedCheckpointWriteNamesTheBlockAndItsFile() throws {
    let folder = TemporaryFolder("fault-save")
    defer { folder.remove() }
    let dir = folder.file("out.checkpoint")
    let store = try PruningCheckpoint(directory: dir, fingerprint: ["method": "wanda"], resume: false)
    // The block's path is taken by a folder: the rename of the written file onto it fails.
    try FileManager.default.createDirectory(at: store.url(block: 3), withIntermediateDirectories: false)
    _ = FileManager.default.createFile(atPath: store.url(block: 3).appendingPathComponent("x").path, contents: Data())
    do {
      try store.save(
        block: 3,
        weights: [("model.layers.3.mlp.up_proj", Matrix<Float>(rows: 2, columns: 2) { i, j in Float(i + j) })],
        records: [])
      Issue.record("the save succeeded")
    } catch {
      let text = error.description
      #expect(text.contains("cannot write block 3 to \(store.url(block: 3).path)") && text.contains("Hint:"), "\(text)")
      #expect(!text.contains("\n"))
    }
    #expect(!Self.names(dir).contains { $0.hasPrefix(".") }, "\(Self.names(dir))")
  }

  /// The output folder's writer on failure: the error names the file of the final folder, the
  /// temporary folder is gone, the final folder does not exist, and the hint fits the cause.
  @Test(arguments: [ENOSPC, EFBIG, EACCES])
  func aFailedOutputWriteLeavesNothingBehind(_ code: Int32) throws {
    let folder = TemporaryFolder("fault-output-\(code)")
    defer { folder.remove() }
    let w = try Self.workspace(folder)
    let model = try LoadedModel(contentsOf: w.model).model
    let final = folder.file("out")
    let reason = String(cString: strerror(code))
    do {
      try writeModelFolder(
        model, source: w.model, to: final, method: "magnitude", pattern: "0.5", retry: "run it again"
      ) {
        (staging: URL) throws(WriteError) in
        #expect(FileManager.default.fileExists(atPath: staging.appendingPathComponent("model.safetensors").path))
        throw WriteError(path: staging.appendingPathComponent("pruning-report.json").path, reason: reason)
      }
      Issue.record("the write succeeded")
    } catch {
      guard case .write(let path, let got, _) = error else {
        Issue.record("\(error)")
        return
      }
      #expect(path == final.appendingPathComponent("pruning-report.json").path)
      #expect(got == reason)
      let advice = code == ENOSPC ? "free space on that disk" : code == EFBIG ? "raise it (ulimit -f)" : "writable"
      #expect(error.description.contains(advice), "\(error)")
      #expect(error.description.contains("run it again") && !error.description.contains("\n"), "\(error)")
    }
    #expect(Self.names(folder.url) == ["calib.txt", "model"])
  }

  /// Outputs that cannot be created fail before any work, for root too: a folder that is a file, a
  /// missing folder, an output that is a file.
  @Test func unwritableOutputsAreRefusedBeforeAnyWork() throws {
    let folder = TemporaryFolder("fault-paths")
    defer { folder.remove() }
    let w = try Self.workspace(folder)
    let file = folder.file("a-file")
    try Data().write(to: file)
    let cases: [(URL, String)] = [
      (file.appendingPathComponent("out"), "\(file.path) is a file, not a folder"),
      (
        folder.file("none/sub/out"),
        "\(folder.file("none/sub").path) for --out \(folder.file("none/sub/out").path) does not exist"
      ),
      (file, "--out \(file.path) already exists"),
      (w.model, "is the input model"),
    ]
    for (out, fragment) in cases {
      do {
        try Self.job(w, output: out).checkPaths()
        Issue.record("\(out.path) accepted")
      } catch {
        #expect(
          error.isUsageError && error.description.contains(fragment) && error.description.contains("Hint:"), "\(error)")
      }
    }
    let layer = LayerJob(
      problem: w.model, method: .wanda, pattern: .unstructured(0.5),
      output: file.appendingPathComponent("w.safetensors"))
    #expect(throws: LayerJobError.self) { try layer.checkPaths() }
    #expect(Self.names(folder.url) == ["a-file", "calib.txt", "model"])
  }

  /// `AtomicOutput.write` writes every file or none: when one cannot be written, the others keep
  /// what they had.
  @Test func writeAllIsAllOrNothing() throws {
    let folder = TemporaryFolder("fault-write-all")
    defer { folder.remove() }
    let a = folder.file("a.bin")
    try Data("old".utf8).write(to: a)
    let b = folder.file("missing/b.bin")
    do {
      try AtomicOutput.write([(Data("new".utf8), a), (Data("b".utf8), b)])
      Issue.record("wrote into a missing folder")
    } catch {
      #expect(error == WriteError(path: b.path, reason: String(cString: strerror(ENOENT))))
    }
    #expect(try Data(contentsOf: a) == Data("old".utf8))
    #expect(Self.names(folder.url) == ["a.bin"])
    try AtomicOutput.write([(Data("new".utf8), a), (Data("c".utf8), folder.file("c.bin"))])
    #expect(try Data(contentsOf: a) == Data("new".utf8))
    #expect(Self.names(folder.url) == ["a.bin", "c.bin"])
  }

  @Test func staleTemporariesOfLiveProcessesAreKept() throws {
    let folder = TemporaryFolder("fault-stale")
    defer { folder.remove() }
    let mine = ".out.partial-\(getpid())"
    let dead = ".out.partial-\(Self.deadPID)"
    let other = ".other.partial-\(Self.deadPID)"
    for name in [mine, dead, other, "out"] {
      try FileManager.default.createDirectory(at: folder.file(name), withIntermediateDirectories: false)
    }
    let removed = AtomicOutput.removeStaleTemporaries(
      in: folder.url, prefixes: AtomicOutput.temporaryPrefixes(of: "out"))
    #expect(removed == [dead])
    #expect(Self.names(folder.url) == [mine, other, "out"].sorted())
  }

  /// The up-front space check: the output (every parameter in F32) and the checkpoint must fit.
  @Test func theSpaceCheckCountsTheOutputAndTheCheckpoint() throws {
    let folder = TemporaryFolder("fault-space")
    defer { folder.remove() }
    let w = try Self.workspace(folder)
    let model = try LoadedModel(contentsOf: w.model).model
    let needed = ModelJob.outputBytes(model) + ModelJob.checkpointBytes(model, blocks: [0, 1, 2])
    #expect(ModelJob.outputBytes(model) >= model.parameterCount * 4)
    #expect(
      ModelJob.spaceShortfall(model, blocks: [0, 1, 2], folder: folder.url, available: needed)?.description == nil)
    let error = try #require(
      ModelJob.spaceShortfall(model, blocks: [0, 1, 2], folder: folder.url, available: needed - 1))
    #expect(!error.isUsageError)
    #expect(
      error.description.contains("not enough free space in \(folder.url.path)")
        && error.description.contains("Hint: free space"), "\(error)")
    // Blocks already in the checkpoint need no more room.
    #expect(
      ModelJob.spaceShortfall(model, blocks: [], folder: folder.url, available: ModelJob.outputBytes(model))?
        .description == nil)
  }

  /// The error-message audit: each error raised at the pipeline's edges is one line that says
  /// what was wrong, where (file, block, option) and, after "Hint:", what to do.
  @Test func pipelineErrorsSayWhatWhereAndWhatToDo() {
    let cases: [(String, String)] = [
      (
        ModelJobError.write(path: "/o/model.safetensors", reason: "No space left on device", retry: "resume")
          .description, "/o/model.safetensors"
      ),
      (
        ModelJobError.noSpace(folder: "/o", needed: 1 << 30, available: 1 << 20, detail: "the output 1 GB").description,
        "/o"
      ),
      (
        ModelJobError.evaluation(protocolName: "austen-quick", .textTooShort(tokens: 5, sequenceLength: 8, windows: 2))
          .description, "austen-quick"
      ),
      (
        ModelPruningError.checkpoint("cannot write block 3 to /o.checkpoint/block-003.safetensors: x", hint: "y")
          .description, "block 3"
      ),
      (
        ModelPruningError.resumeConflict("/o.checkpoint was written with pattern = 0.5, this run has 2:4", hint: "z")
          .description, "pattern"
      ),
      (LayerJobError.write(WriteError(path: "/w.safetensors", reason: "File too large")).description, "/w.safetensors"),
    ]
    for (text, place) in cases {
      #expect(text.contains(place) && !text.contains("\n"), "\(text)")
      #expect(text.components(separatedBy: "Hint:").count == 2, "exactly one hint: \(text)")
    }
  }
}

/// A sweep that fails before its first entry is recorded leaves no folder it created.
@Suite struct SweepOutputTests {
  @Test func aFailedSweepLeavesNoFolder() throws {
    let folder = TemporaryFolder("sweep-failed")
    defer { folder.remove() }
    let model = folder.file("broken.gguf")
    try Data("not a model".utf8).write(to: model)
    let output = folder.file("sweep")
    let job = SweepJob(
      model: model, methods: [SweepMethod(.magnitude)], patterns: ["0.5"], evaluation: .austenQuick, output: output)
    #expect(throws: ModelJobError.self) { try job.run() }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path) == ["broken.gguf"])
    // An existing folder is the user's: it stays, even when the sweep fails.
    try FileManager.default.createDirectory(at: output, withIntermediateDirectories: false)
    #expect(throws: ModelJobError.self) { try job.run() }
    #expect(FileManager.default.fileExists(atPath: output.path))
  }
}
