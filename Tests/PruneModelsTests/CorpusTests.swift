import Foundation
import PruneModels
import Testing

/// The embedded Austen corpus (Fixtures/janeausten) and its sha256 checks.
@Suite("Corpus")
struct CorpusTests {
  /// The sha256 table of the protocols (Docs/evaluation.md#the-corpus): SHA256SUMS must hold
  /// exactly these, so editing a novel and its checksum together still fails here.
  static let protocolSums = [
    "emma.txt": "7c67b5985c6d0de1efaeb5d342d52cb82c38083c40e2295129e30e87ee690ebe",
    "mansfieldpark.txt": "98bc90519cdf4ef663ad7de2734bb529435ef24f7abbde6bb1a50898871dafe9",
    "northangerabbey.txt": "51f91bbe0517db8e65cff009b097ce0a1836124c4e0532ac19e6c0cad982abed",
    "persuasion.txt": "8061549557aebd2fd6e353d18d9197cb707029112bd52d4d8b174583a925848a",
    "prideprejudice.txt": "dfc684d4f857fa938268f9ab9c5567b64bd0691251eca959644adeabe6287a4d",
    "sensesensibility.txt": "105e1651fe93bed7130078578efd31e0c557d68667ba672ddc876f735b30fe09",
  ]

  @Test func embeddedCorpusMatchesTheProtocols() throws {
    let corpus = try Corpus()
    #expect(corpus.checksums == Self.protocolSums)
    try corpus.verify()
    let emma = try corpus.text("emma")
    #expect(emma.hasPrefix("EMMA\n\nBy Jane Austen"))
    #expect(try corpus.text("emma.txt") == emma)
  }

  @Test func protocolsReadTheRightText() throws {
    let corpus = try Corpus()
    let quick = EvaluationProtocol.austenQuick
    #expect(quick.evaluation == .init(files: ["prideprejudice.txt"], separator: "", sequenceLength: 1024, windows: 16))
    #expect(quick.calibration.files == ["emma.txt"] && quick.calibration.windows == 16)
    let std = EvaluationProtocol.austenStd
    #expect(std.evaluation.windows == nil && std.evaluation.sequenceLength == 2048)
    #expect(std.calibration.windows == 128 && std.calibration.sequenceLength == 2048)
    let calibration = try std.calibration.text(in: corpus)
    let parts = try ["emma", "mansfieldpark", "sensesensibility"].map { try corpus.text($0) }
    #expect(calibration == parts.joined(separator: "\n\n"))
    #expect(calibration.utf8.count == parts.map(\.utf8.count).reduce(0, +) + 4)
  }

  /// A copy of two files in a temporary folder, to damage.
  static func scratchCorpus() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunekit-corpus-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let source = Corpus.defaultDirectory
    var sums = ""
    for name in ["persuasion.txt", "emma.txt"] {
      try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: dir.appendingPathComponent(name))
      sums += "\(protocolSums[name]!)  \(name)\n"
    }
    try sums.write(to: dir.appendingPathComponent("SHA256SUMS"), atomically: true, encoding: .utf8)
    return dir
  }

  static func expectOneLineWithHint(_ error: CorpusError) {
    #expect(error.description.contains("Hint:"), "\(error)")
    #expect(!error.description.contains("\n"), "\(error)")
  }

  @Test func damagedFilesAreRefused() throws {
    let dir = try Self.scratchCorpus()
    defer { try? FileManager.default.removeItem(at: dir) }
    let corpus = try Corpus(directory: dir)
    #expect(corpus.fileNames == ["emma.txt", "persuasion.txt"])
    try corpus.verify()

    // One byte changed: the checksum catches it.
    let url = dir.appendingPathComponent("persuasion.txt")
    var bytes = try Data(contentsOf: url)
    bytes[1000] ^= 0x20
    try bytes.write(to: url)
    #expect(
      throws: CorpusError.checksumMismatch(
        path: url.path, expected: Self.protocolSums["persuasion.txt"]!, found: SHA256.hexDigest(bytes))
    ) {
      _ = try corpus.text("persuasion")
    }
    #expect(try corpus.text("emma").count > 0)
    do {
      _ = try corpus.text("persuasion")
    } catch {
      Self.expectOneLineWithHint(error)
    }
    #expect(throws: CorpusError.unknownFile(name: "kjv", available: ["emma.txt", "persuasion.txt"])) {
      _ = try corpus.text("kjv")
    }
    // A listed file that is gone.
    try FileManager.default.removeItem(at: dir.appendingPathComponent("emma.txt"))
    let error = #expect(throws: CorpusError.self) { _ = try corpus.text("emma") }
    if case .unreadable = error {} else { Issue.record("expected .unreadable, got \(String(describing: error))") }
  }

  @Test func missingOrMalformedListings() throws {
    let nowhere = URL(fileURLWithPath: "/nonexistent/prunekit-corpus")
    #expect(throws: CorpusError.missingDirectory(path: nowhere.path)) { _ = try Corpus(directory: nowhere) }
    let dir = try Self.scratchCorpus()
    defer { try? FileManager.default.removeItem(at: dir) }
    let sums = dir.appendingPathComponent("SHA256SUMS")
    try "not-a-hash  emma.txt\n".write(to: sums, atomically: true, encoding: .utf8)
    #expect(throws: CorpusError.malformedChecksums(path: sums.path, line: 1)) { _ = try Corpus(directory: dir) }
    try FileManager.default.removeItem(at: sums)
    #expect(throws: CorpusError.missingChecksums(path: dir.path)) { _ = try Corpus(directory: dir) }
    for error: CorpusError in [
      .missingDirectory(path: "x"), .missingChecksums(path: "x"), .malformedChecksums(path: "x", line: 2),
      .unknownFile(name: "x", available: ["a"]), .unreadable(path: "x", reason: "r"),
      .checksumMismatch(path: "x", expected: "a", found: "b"), .notUTF8(path: "x"),
    ] {
      Self.expectOneLineWithHint(error)
    }
  }
}
