// The project's embedded text: the six Jane Austen novels in Fixtures/janeausten, each checked
// against Fixtures/janeausten/SHA256SUMS whenever it is read, and the evaluation protocols
// (Docs/evaluation.md#the-protocols: austen-quick, austen-std) that say which text, window length
// and window count calibration and evaluation use.

import Foundation

/// Why corpus text could not be read. Every description is one line naming the folder or file and
/// ending with a `Hint:`.
public enum CorpusError: PruneKitError, Equatable {
  /// The corpus folder does not exist.
  case missingDirectory(path: String)
  /// The folder has no SHA256SUMS file (or it cannot be read).
  case missingChecksums(path: String)
  /// A line of SHA256SUMS is not `<64 hex digits>  <file name>`.
  case malformedChecksums(path: String, line: Int)
  /// A file that SHA256SUMS does not list.
  case unknownFile(name: String, available: [String])
  /// A listed file could not be read.
  case unreadable(path: String, reason: String)
  /// A file's bytes do not hash to the listed value.
  case checksumMismatch(path: String, expected: String, found: String)
  /// A file is not valid UTF-8.
  case notUTF8(path: String)

  public var message: String {
    switch self {
    case .missingDirectory(let path): return "corpus \(path): no such folder"
    case .missingChecksums(let path): return "corpus \(path): SHA256SUMS is missing or unreadable"
    case .malformedChecksums(let path, let line):
      return "corpus \(path): line \(line) of SHA256SUMS is not '<sha256>  <file>'"
    case .unknownFile(let name, _): return "corpus: no file '\(name)'"
    case .unreadable(let path, let reason): return "corpus \(path): cannot read the file (\(reason))"
    case .checksumMismatch(let path, let expected, let found):
      return "corpus \(path): sha256 is \(found), SHA256SUMS says \(expected)"
    case .notUTF8(let path): return "corpus \(path): the bytes are not UTF-8"
    }
  }

  public var hint: String? {
    switch self {
    case .missingDirectory:
      return "the corpus lives in Fixtures/janeausten of the PruneKit checkout; pass its location explicitly"
        + " (prune eval --corpus DIR) when the tool runs elsewhere."
    case .missingChecksums: return "every corpus folder lists its files with `sha256sum *.txt > SHA256SUMS`."
    case .malformedChecksums: return "regenerate it with `sha256sum *.txt > SHA256SUMS`."
    case .unknownFile(_, let available): return "the corpus holds \(available.joined(separator: ", "))."
    case .unreadable: return "check that the checkout is complete."
    case .checksumMismatch:
      return "the file was changed (line endings, an editor, a partial checkout); restore it with"
        + " `git checkout -- Fixtures/janeausten`."
    case .notUTF8: return "the corpus files are UTF-8 text; restore the file."
    }
  }
}

/// A folder of text files with a SHA256SUMS listing: by default the project's Jane Austen novels
/// (Fixtures/janeausten). Every read checks the file's sha256 against the listing, so a modified
/// file never reaches a measurement.
public struct Corpus: Sendable {
  /// The folder that holds the text files and SHA256SUMS.
  public let directory: URL
  /// File name → expected sha256 (lowercase hex), from SHA256SUMS.
  public let checksums: [String: String]

  /// Fixtures/janeausten of the checkout this file was compiled from (found from `#filePath`:
  /// Sources/PruneModels/Corpus.swift → package root). A binary copied to another machine must be
  /// given the folder explicitly.
  public static let defaultDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/janeausten")

  /// The corpus in `directory` (default: `defaultDirectory`), reading its SHA256SUMS.
  public init(directory: URL? = nil) throws(CorpusError) {
    let directory = directory ?? Self.defaultDirectory
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
    else {
      throw .missingDirectory(path: directory.path)
    }
    let sums = directory.appendingPathComponent("SHA256SUMS")
    guard let data = FileManager.default.contents(atPath: sums.path), let text = String(data: data, encoding: .utf8)
    else {
      throw .missingChecksums(path: directory.path)
    }
    var checksums: [String: String] = [:]
    for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = raw.trimmingCharacters(in: .whitespaces)
      if line.isEmpty { continue }
      // sha256sum writes "<hex>  <name>" (text mode) or "<hex> *<name>" (binary mode).
      let parts = line.split(separator: " ", maxSplits: 1)
      guard parts.count == 2 else { throw .malformedChecksums(path: sums.path, line: i + 1) }
      let hex = parts[0].lowercased()
      var name = parts[1].trimmingCharacters(in: .whitespaces)
      if name.hasPrefix("*") { name.removeFirst() }
      guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }), !name.isEmpty, checksums[name] == nil else {
        throw .malformedChecksums(path: sums.path, line: i + 1)
      }
      checksums[name] = hex
    }
    guard !checksums.isEmpty else { throw .malformedChecksums(path: sums.path, line: 1) }
    self.directory = directory
    self.checksums = checksums
  }

  /// The listed file names, sorted.
  public var fileNames: [String] { checksums.keys.sorted() }

  /// The bytes of a listed file after checking their sha256. `name` may omit ".txt".
  public func data(_ name: String) throws(CorpusError) -> Data {
    let url = try self.url(of: name)
    let expected = checksums[url.lastPathComponent]!
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw .unreadable(path: url.path, reason: (error as NSError).localizedDescription)
    }
    let found = SHA256.hexDigest(data)
    guard found == expected else { throw .checksumMismatch(path: url.path, expected: expected, found: found) }
    return data
  }

  /// The location of a listed file (not read, not checked). `name` may omit ".txt".
  public func url(of name: String) throws(CorpusError) -> URL {
    let file = checksums[name] != nil ? name : name + ".txt"
    guard checksums[file] != nil else { throw .unknownFile(name: name, available: fileNames) }
    return directory.appendingPathComponent(file)
  }

  /// The text of a listed file (UTF-8) after checking its sha256. `name` may omit ".txt".
  public func text(_ name: String) throws(CorpusError) -> String {
    let data = try data(name)
    guard let text = String(data: data, encoding: .utf8) else {
      throw .notUTF8(path: try url(of: name).path)
    }
    return text
  }

  /// The texts of `names` joined by `separator` (each file checked).
  public func text(_ names: [String], separator: String) throws(CorpusError) -> String {
    var parts: [String] = []
    for name in names { parts.append(try text(name)) }
    return parts.joined(separator: separator)
  }

  /// Checks every listed file (existence and sha256).
  public func verify() throws(CorpusError) {
    for name in fileNames { _ = try data(name) }
  }
}

// MARK: - Evaluation protocols

/// The evaluation protocols (Docs/evaluation.md#the-protocols): which text calibration
/// and evaluation read, in windows of how many tokens, and how many windows. Text is tokenized
/// whole, without BOS or EOS; windows never overlap and start at token 0.
public enum EvaluationProtocol: String, Sendable, CaseIterable {
  /// Calibration: the first 16 windows of 1024 tokens of emma.txt. Evaluation: the first 16
  /// windows of 1024 tokens of prideprejudice.txt (dense SmolLM2: 23.1508 in transformers).
  case austenQuick = "austen-quick"
  /// Calibration: the first 128 windows of 2048 tokens of emma + "\n\n" + mansfieldpark + "\n\n"
  /// + sensesensibility. Evaluation: every complete 2048-token window of prideprejudice.txt (81;
  /// dense SmolLM2: 24.9143 in transformers).
  case austenStd = "austen-std"

  /// A text from the corpus cut into windows.
  public struct TextSpec: Sendable, Equatable {
    /// Corpus files, concatenated in this order.
    public let files: [String]
    /// Put between consecutive files.
    public let separator: String
    /// Tokens per window.
    public let sequenceLength: Int
    /// How many windows from the start; nil = every complete window.
    public let windows: Int?

    /// A text of `files` joined by `separator`, in windows of `sequenceLength` tokens, the first
    /// `windows` of them (nil: every complete window).
    public init(files: [String], separator: String, sequenceLength: Int, windows: Int?) {
      self.files = files
      self.separator = separator
      self.sequenceLength = sequenceLength
      self.windows = windows
    }

    /// The text itself, read from `corpus` (every file's sha256 checked).
    public func text(in corpus: Corpus) throws(CorpusError) -> String {
      try corpus.text(files, separator: separator)
    }
  }

  /// The calibration text and windows.
  public var calibration: TextSpec {
    switch self {
    case .austenQuick:
      return TextSpec(files: ["emma.txt"], separator: "", sequenceLength: 1024, windows: 16)
    case .austenStd:
      return TextSpec(
        files: ["emma.txt", "mansfieldpark.txt", "sensesensibility.txt"], separator: "\n\n", sequenceLength: 2048,
        windows: 128)
    }
  }

  /// The evaluation text and windows.
  public var evaluation: TextSpec {
    switch self {
    case .austenQuick:
      return TextSpec(files: ["prideprejudice.txt"], separator: "", sequenceLength: 1024, windows: 16)
    case .austenStd:
      return TextSpec(files: ["prideprejudice.txt"], separator: "", sequenceLength: 2048, windows: nil)
    }
  }
}
