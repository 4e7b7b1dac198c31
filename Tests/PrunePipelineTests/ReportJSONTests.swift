import Foundation
import PruneKernels
import PruneSolvers
import PruneTestSupport
import Testing

@testable import PruneModels
@testable import PrunePipeline

/// The pipeline's JSON files (pruning-report.json, sweep.json, the merge's report) in PruneKit's
/// form: snake_case keys, `prunekit_version`, option values typed by their kind, dampings named by
/// unit, paths as given; read back with the same convention, and a file of the format before
/// 0.7.0 refused with the version that wrote it rather than half read.
@Suite struct ReportJSONTests {
  /// A report of two layers (one with a Cholesky retry), SparseGPT's damping given as "0.010".
  static func report() -> ModelReport {
    let layer = { (block: Int, retry: Double?) in
      LayerRecord(
        block: block, name: "model.layers.\(block).self_attn.q_proj", shape: [4, 8], zeros: 16, errorCorrected: false,
        report: PruningReport(
          method: "sparsegpt", pattern: "0.5/row", realisedSparsity: 0.5, error: 0.25, relativeError: 0.0125,
          damping: 0.003, dampingRetry: retry, iterations: 1, seconds: 0.5, metrics: ["obs_loss": 0.2],
          notes: retry == nil ? [] : ["a retry"], options: ["damping": "0.010", "block_size": "128"]))
    }
    let summary = ModelPruningSummary(
      layers: [layer(0, nil), layer(1, 1e-6)], blocks: [0, 1], resumedBlocks: [1], schedule: .sequential,
      prunableParameters: 64, zeroParameters: 32, totalParameters: 256, seconds: 1.5,
      estimate: MemoryEstimate(blockWeightBytes: 1000, hiddenBytes: 100, blockBytes: 10, gramBytes: 1))
    return ModelReport(
      model: "models/m.gguf", output: "out", method: "sparsegpt", pattern: "0.5", options: ["damping": "0.010"],
      calibration: .init(source: "calib.txt", tokens: 128, windows: 4, sequenceLength: 32, sha256: "ab12"),
      summary: summary, perplexity: PerplexityReport(perplexity: 23.5, tokens: 100, windows: 2, seqlen: 51, seconds: 2),
      evaluation: "austen-quick", threads: 2, jobs: 1, totalSeconds: 4.5, peakResidentBytes: 1 << 20)
  }

  /// Every key of a JSON value, at any depth, except the keys of `names` objects (dictionaries
  /// whose keys are names: options, metrics).
  static func keys(_ value: Any, names: Set<String> = ["options", "metrics"]) -> Set<String> {
    var out: Set<String> = []
    if let object = value as? [String: Any] {
      for (k, v) in object {
        out.insert(k)
        if !names.contains(k) { out.formUnion(keys(v, names: names)) }
      }
    } else if let array = value as? [Any] {
      for v in array { out.formUnion(keys(v, names: names)) }
    }
    return out
  }

  /// `data` as the format before 0.7.0 wrote it: every key camelCase (`total_seconds` →
  /// `totalSeconds`), but the keys of `names` objects, and no `prunekit_version`.
  static func olderFormat(_ data: Data, names: Set<String> = ["options", "metrics"]) throws -> Data {
    func camel(_ key: String) -> String {
      let words = key.split(separator: "_")
      return ([String(words[0])] + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }).joined()
    }
    func convert(_ value: Any) -> Any {
      if let object = value as? [String: Any] {
        var out: [String: Any] = [:]
        for (k, v) in object where k != "prunekit_version" { out[camel(k)] = names.contains(k) ? v : convert(v) }
        return out
      }
      if let array = value as? [Any] { return array.map(convert) }
      return value
    }
    return try JSONSerialization.data(
      withJSONObject: convert(try JSONSerialization.jsonObject(with: data)), options: [.prettyPrinted, .sortedKeys])
  }

  static func object(_ data: Data) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
  }

  @Test func pruningReportIsSnakeCaseTypedVersionedAndNamesTheDampingsUnits() throws {
    let data = Self.report().json()
    let top = try Self.object(data)
    let keys = Self.keys(top)
    #expect(keys.allSatisfy { $0 == $0.lowercased() }, "camelCase keys: \(keys.filter { $0 != $0.lowercased() })")
    for key in [
      "prunekit_version", "total_seconds", "peak_resident_bytes", "sequence_length", "resumed_blocks",
      "prunable_parameters", "realised_sparsity", "overall_sparsity", "mean_relative_error", "total_bytes",
      "damping_absolute", "damping_retry_absolute", "damping_relative", "relative_error", "error_corrected",
    ] {
      #expect(keys.contains(key), "\(key) missing")
    }
    #expect(!keys.contains("damping") && !keys.contains("damping_retry"), "a damping without its unit")
    #expect(top["prunekit_version"] as? String == PruneKitVersion.current)
    #expect(top["model"] as? String == "models/m.gguf", "the path as given")
    let options = try #require(top["options"] as? [String: Any])
    #expect(options["damping"] as? Double == 0.01, "an option's value as a number, not \(options["damping"] ?? "nil")")
    let summary = try #require(top["summary"] as? [String: Any])
    #expect(summary["realised_sparsity"] as? Double == 0.5)
    let layers = try #require(summary["layers"] as? [[String: Any]])
    let layer = try #require(layers[1]["report"] as? [String: Any])
    #expect(layer["damping_absolute"] as? Double == 0.003)
    #expect(layer["damping_retry_absolute"] as? Double == 1e-6)
    #expect(layer["damping_relative"] as? Double == 0.01)
    #expect((layer["options"] as? [String: Any])?["block_size"] as? Int == 128)
    #expect((layer["metrics"] as? [String: Any])?["obs_loss"] as? Double == 0.2, "metric names as they are")
  }

  @Test func pruningReportReadsBackAsWritten() throws {
    let report = Self.report()
    let read = try ModelReport.read(report.json())
    // Options come back as their typed values' text ("0.010" was written as the number 0.01).
    #expect(read.options == ["damping": .number(0.01)])
    #expect(read.summary.layers[0].report.options == ["damping": "0.01", "block_size": "128"])
    #expect(read.summary.layers[1].report.damping == 0.003 && read.summary.layers[1].report.dampingRetry == 1e-6)
    #expect(read.json() == report.json(), "written again, the same bytes")
    var expected = report
    for i in expected.summary.layers.indices {
      expected.summary.layers[i].report.options = ["damping": "0.01", "block_size": "128"]
    }
    #expect(read == expected)
  }

  /// A real option written as `1` (JSON has no "1.0") reads back as the number 1.0.
  @Test func aWholeNumberOfARealOptionReadsBackAsANumber() throws {
    var report = Self.report()
    report.options = ReportedOptionValue.typed(["damping": "1"], method: "sparsegpt")
    #expect(report.options == ["damping": .number(1)])
    #expect(String(decoding: report.json(), as: UTF8.self).contains("\"damping\" : 1\n"))
    #expect(try ModelReport.read(report.json()).options == ["damping": .number(1)])
  }

  /// The form before 0.7.0 (camelCase keys, no prunekit_version) is refused with the version
  /// that wrote it; `.convertFromSnakeCase` alone would have read its camelCase keys as they are.
  @Test func aReportOfTheOlderFormatIsRefusedNamingItsWriter() throws {
    let old = try Self.olderFormat(Self.report().json())
    #expect(String(decoding: old, as: UTF8.self).contains("\"totalSeconds\""))
    #expect(!String(decoding: old, as: UTF8.self).contains("prunekit"))
    do {
      _ = try ModelReport.read(old)
      Issue.record("an old report was read")
    } catch {
      let message = error.message(path: "p/pruning-report.json", what: "report")
      #expect(
        message
          == "p/pruning-report.json was written by PruneKit 0.6.0 or earlier, in the report format before 0.7.0"
          + " (no 'prunekit_version')")
    }
    do {
      _ = try ModelReport.read(Data("{\"method\": \"x\"}".utf8))
      Issue.record("a stranger's file was read")
    } catch {
      #expect(error.message(path: "r.json", what: "report").hasPrefix("r.json was written by another program"))
    }
    do {
      _ = try ModelReport.read(Data("{\"prunekit_version\": \"0.7.0\"}".utf8))
      Issue.record("a file with nothing but the version was read")
    } catch {
      #expect(error.message(path: "r.json", what: "report").hasPrefix("r.json is not a PruneKit report ("))
    }
  }

  /// `prune merge` reads each part's report with the same convention and refuses an old one.
  @Test func mergeRefusesAPartOfTheOlderFormat() throws {
    let folder = TemporaryFolder("merge-old-part")
    defer { folder.remove() }
    let part = folder.file("part")
    try FileManager.default.createDirectory(at: part, withIntermediateDirectories: false)
    try Self.olderFormat(Self.report().json()).write(to: part.appendingPathComponent("pruning-report.json"))
    let merge = ModelMerge(model: folder.file("m.gguf"), parts: [part], output: folder.file("merged"))
    do {
      _ = try merge.run()
      Issue.record("an old part was merged")
    } catch {
      #expect(error.isUsageError)
      #expect(error.message.contains("was written by PruneKit 0.6.0 or earlier, in the report format before 0.7.0"))
      #expect(error.hint?.contains("prune the part again") == true, "\(error.hint ?? "")")
    }
    #expect(!FileManager.default.fileExists(atPath: folder.file("merged").path))
  }

  static func entry(_ method: String, options: [String: String] = [:]) -> SweepEntry {
    SweepEntry(
      method: method, pattern: "0.5", sparsity: 0.5, options: ReportedOptionValue.typed(options, method: method),
      schedule: "sequential", perplexity: 30, pruneSeconds: 1, evalSeconds: 2, realisedSparsity: 0.5,
      meanRelativeError: 0.01, peakResidentBytes: 1 << 20)
  }

  @Test func sweepTableIsSnakeCaseTypedVersionedAndReadsBack() throws {
    let table = SweepTable(
      model: "models/m.gguf", evaluation: "austen-quick", calibrationSha256: "ab12", threads: 2,
      entries: [Self.entry("sparsegpt", options: ["damping": "0.010", "block_size": "64"]), Self.entry("wanda")])
    let top = try Self.object(table.json())
    let keys = Self.keys(top)
    #expect(keys.allSatisfy { $0 == $0.lowercased() }, "camelCase keys: \(keys.filter { $0 != $0.lowercased() })")
    for key in ["prunekit_version", "calibration_sha256", "prune_seconds", "eval_seconds", "peak_resident_bytes"] {
      #expect(keys.contains(key), "\(key) missing")
    }
    #expect(top["prunekit_version"] as? String == PruneKitVersion.current)
    let entries = try #require(top["entries"] as? [[String: Any]])
    let options = try #require(entries[0]["options"] as? [String: Any])
    #expect(options["damping"] as? Double == 0.01 && options["block_size"] as? Int == 64)
    let read = try SweepTable.read(table.json())
    #expect(read == table)
    #expect(read.entries[0].key == table.entries[0].key, "a resumed entry keeps its key")
    #expect(read.entries[0].key == "sparsegpt 0.5 block_size=64,damping=0.01")
  }

  @Test func aSweepTableOfTheOlderFormatIsRefusedNamingItsWriter() throws {
    let table = SweepTable(
      model: "m.gguf", evaluation: "austen-quick", calibrationSha256: "ab12", threads: 2, entries: [Self.entry("wanda")]
    )
    let old = try Self.olderFormat(table.json())
    do {
      _ = try SweepTable.read(old)
      Issue.record("an old table was read")
    } catch {
      #expect(
        error.message(path: "s/sweep.json", what: "sweep table")
          == "s/sweep.json was written by PruneKit 0.6.0 or earlier, in the sweep table format before 0.7.0"
          + " (no 'prunekit_version')")
    }
  }

  /// A sweep whose folder holds a sweep.json it cannot read stops with a usage error naming the
  /// file (it was silently replaced before), and leaves the file as it was.
  @Test func aSweepRefusesATableItCannotRead() throws {
    let folder = TemporaryFolder("sweep-old-table")
    defer { folder.remove() }
    let w = try FaultTests.workspace(folder)
    let output = folder.file("sweep")
    try FileManager.default.createDirectory(at: output, withIntermediateDirectories: false)
    let file = output.appendingPathComponent("sweep.json")
    let job = SweepJob(
      model: w.model, methods: [SweepMethod(.magnitude)], patterns: ["0.5"], evaluation: .austenQuick, output: output)
    for (bytes, expected) in [
      (
        try Self.olderFormat(
          SweepTable(model: "m", evaluation: "austen-quick", calibrationSha256: "0", threads: 1, entries: []).json()),
        "was written by PruneKit 0.6.0 or earlier, in the sweep table format before 0.7.0"
      ),
      (Data("{\"entries\": [".utf8), "is not a PruneKit sweep table (not valid JSON"),
    ] {
      try bytes.write(to: file)
      do {
        _ = try job.run()
        Issue.record("a sweep ran over a table it could not read")
      } catch {
        #expect(error.isUsageError)
        #expect(error.message.hasPrefix(file.path) && error.message.contains(expected), "\(error.message)")
        #expect(error.hint?.contains("move \(file.path) away") == true, "\(error.hint ?? "")")
      }
      #expect(try Data(contentsOf: file) == bytes)
    }
  }

  /// A sweep resumed from its own sweep.json skips every finished entry, options included
  /// ("0.010" given, the number 0.01 written).
  @Test func aSweepResumesFromItsOwnTable() throws {
    let folder = TemporaryFolder("sweep-resume-table")
    defer { folder.remove() }
    let w = try FaultTests.workspace(folder)
    let output = folder.file("sweep")
    let job = SweepJob(
      model: w.model, methods: [SweepMethod(.sparsegpt, givenOptions: ["damping": "0.010"])], patterns: ["0.5"],
      evaluation: .austenQuick, output: output)
    let first = try job.run()
    let text = try String(contentsOf: output.appendingPathComponent("sweep.json"), encoding: .utf8)
    #expect(text.contains("\"damping\" : 0.01\n") && text.contains("\"prunekit_version\" : \"0.7.0\""), "\(text)")
    // The group SparseGPT counted "0.5" over is written (Wanda's would be "row").
    #expect(first.entries.map(\.group) == [nil, "matrix"] && text.contains("\"group\" : \"matrix\""))
    var started = 0
    let second = try job.run { if case .starting = $0 { started += 1 } }
    #expect(started == 0, "an entry of the table was run again")
    #expect(second == first)
  }
}
