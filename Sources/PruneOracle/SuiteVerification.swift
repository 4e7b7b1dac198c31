// `prune verify --manifest` without the command line: certifies a whole test-vector suite, either
// PruneKit's own files or another backend's answers laid out like the suite. Nothing is printed.

import Foundation
import PruneKernels
import PruneSolvers

/// Certifies every case of a test-vector manifest (`TestVectors`):
///
/// - without `candidates`: the suite's own files. Each case's expected answer must pass its
///   tolerances (gap or KKT), its negative controls must fail exactly the checks they name, and
///   every PruneKit method output must pass the pattern and finiteness checks.
/// - with `candidates` (a folder laid out like the suite: `<case>/expected.safetensors` and
///   `<case>/<method>.safetensors`, any subset): every file found is certified. An `expected`
///   answer is held to the case's gap or KKT bound and its relative error must match the known
///   one within `expectedRelativeError`; a method's output must match PruneKit's error for the same
///   method within `methodRelativeError`: |E_candidate − E_PruneKit| / E_PruneKit.
///   Coverage is reported: the cases with a candidate and without, and every file of the folder
///   that matches no case, or no answer of its case (a misspelt method name, a method the manifest
///   has no figure for), named with the reason. Unknown files fail the suite unless `allowUnknown`;
///   the suite's own inputs copied beside the answers (problem, masks, controls, the manifest) are
///   not candidates and are skipped.
/// Comparisons with PruneKit's methods are not rerun (the manifest holds their figures). The suite
/// passes when at least one file was checked, every checked file passed, and no file is unknown
/// (or unknown files are allowed): a suite that checked nothing never passes.
public struct SuiteVerification: Sendable {
  /// The manifest (`manifest.json`); its folder is the root of the relative paths.
  public var manifest: URL
  /// Another backend's answers, laid out like the suite; nil = the suite's own files.
  public var candidates: URL?
  /// Do not fail the suite on candidate files that match no case or answer (they are still
  /// listed): `prune verify --allow-unknown`.
  public var allowUnknown: Bool

  public init(manifest: URL, candidates: URL? = nil, allowUnknown: Bool = false) {
    self.manifest = manifest
    self.candidates = candidates
    self.allowUnknown = allowUnknown
  }

  /// Reads the manifest and certifies every candidate.
  public func run() throws(VerifyError) -> SuiteReport {
    let data: Data
    do { data = try InputFiles.read(manifest) } catch {
      throw .usage(
        "cannot read the manifest \(manifest.path) (\(error.reason))",
        hint: "give DIR/manifest.json as written by 'prune vectors'")
    }
    // A manifest of PruneKit 0.6.0 or earlier has camelCase keys; snake_case decoding leaves them as
    // they are, so it would read with its multi-word fields (bounds such as maxKKT) missing and
    // verify less than the suite holds. It is refused instead, naming the version that wrote it.
    if let writer = reportWriterBeforeVersion(data) {
      throw .usage(
        "\(manifest.path) was written by \(writer), in the manifest format before \(PruneKitVersion.snakeCaseFiles)"
          + " (no 'prunekit_version')",
        hint: "write the suite again with 'prune vectors' (this is PruneKit \(PruneKitVersion.current))")
    }
    let suite: VectorManifest
    do { suite = try reportJSONDecoder().decode(VectorManifest.self, from: data) } catch {
      throw .usage(
        "\(manifest.path) is not a test-vector manifest (\(jsonDecodingReason(error)))",
        hint: "give DIR/manifest.json as written by 'prune vectors'")
    }
    let root = manifest.deletingLastPathComponent()
    var entries: [SuiteEntry] = []
    for c in suite.cases {
      let pattern: SparsityPattern
      do { pattern = try SparsityPattern(parsing: c.pattern) } catch { throw .pattern(error) }
      let problem = root.appendingPathComponent(c.problem)
      func certify(_ file: URL, claim: Bool) throws(VerifyError) -> Certificate {
        try Verification(
          problem: problem, candidate: file, pattern: pattern,
          claimedMethod: claim && c.expected?.lambda != nil ? "fista" : nil, lambda: claim ? c.expected?.lambda : nil,
          maxGap: claim ? c.tolerances.maxGap : nil, maxKKT: claim ? c.tolerances.maxKKT : nil
        ).run()
      }
      // The known answer (or the backend's), held to the case's bounds.
      if let expected = c.expected, c.kind != "real" {
        let file =
          candidates.map { $0.appendingPathComponent(c.name).appendingPathComponent("expected.safetensors") }
          ?? root.appendingPathComponent(expected.file)
        if FileManager.default.fileExists(atPath: file.path) {
          var entry = SuiteEntry(
            case: c.name, role: "expected", file: file.relativePath, certificate: try certify(file, claim: true))
          if let tolerance = c.tolerances.expectedRelativeError {
            entry.add(
              matching: entry.certificate.quality.relativeError, reference: expected.relativeError,
              tolerance: tolerance, name: "expected-error")
          }
          entries.append(entry)
        }
      }
      // Negative controls (the suite's own files only): the named checks must fail.
      if candidates == nil {
        for control in c.controls {
          let file = root.appendingPathComponent(control.file)
          var entry = SuiteEntry(
            case: c.name, role: "control", file: file.relativePath, certificate: try certify(file, claim: true))
          let failed = Set(entry.certificate.checks.filter { !$0.passed }.map(\.name))
          entry.passed = Set(control.mustFail).isSubset(of: failed)
          entry.notes.append(
            "must fail \(control.mustFail.joined(separator: ", ")); failed \(failed.sorted().joined(separator: ", "))")
          entries.append(entry)
        }
      }
      // Method outputs, held to PruneKit's error for the same method.
      // A backend's answer needs only PruneKit's figure, not PruneKit's own file (the real cases
      // store one method's weights but every method's error).
      for output in c.methods {
        guard let reference = output.relativeError else { continue }
        let file: URL
        if let candidates {
          file = candidates.appendingPathComponent(c.name).appendingPathComponent("\(output.method).safetensors")
        } else {
          guard let own = output.file else { continue }
          file = root.appendingPathComponent(own)
        }
        guard FileManager.default.fileExists(atPath: file.path) else { continue }
        var entry = SuiteEntry(
          case: c.name, role: output.method, file: file.relativePath, certificate: try certify(file, claim: false))
        entry.add(
          matching: entry.certificate.quality.relativeError, reference: reference,
          tolerance: c.tolerances.methodRelativeError, name: "method-error")
        entries.append(entry)
      }
    }
    let unknown = try candidates.map { folder throws(VerifyError) in try unknownFiles(in: folder, suite: suite) } ?? []
    let covered = Set(entries.map(\.case))
    return SuiteReport(
      manifest: manifest.relativePath, candidates: candidates?.relativePath, prunekitVersion: suite.prunekitVersion,
      entries: entries, casesWithoutCandidate: suite.cases.map(\.name).filter { !covered.contains($0) },
      casesTotal: suite.cases.count, unknownFiles: unknown, allowUnknown: allowUnknown)
  }

  /// The files of the candidates folder that are no answer of the suite: a name matching no case,
  /// a file of a case matching neither `expected` (when the case has a known answer) nor a method
  /// the manifest has a figure for. Hidden files and the suite's own inputs are skipped.
  func unknownFiles(in folder: URL, suite: VectorManifest) throws(VerifyError) -> [UnknownCandidateFile] {
    let fm = FileManager.default
    func list(_ url: URL) throws(VerifyError) -> [String] {
      do { return try fm.contentsOfDirectory(atPath: url.path).filter { !$0.hasPrefix(".") }.sorted() } catch {
        throw .usage(
          "cannot read the candidates folder \(url.relativePath)",
          hint: "give a folder laid out as CANDDIR/<case>/expected.safetensors or <method>.safetensors")
      }
    }
    let cases = Dictionary(suite.cases.map { ($0.name, $0) }) { a, _ in a }
    var unknown: [UnknownCandidateFile] = []
    for name in try list(folder) where name != "manifest.json" {
      var isDirectory: ObjCBool = false
      let url = folder.appendingPathComponent(name)
      guard let c = cases[name], fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue
      else {
        unknown.append(UnknownCandidateFile(file: name, reason: "matches no case of the manifest"))
        continue
      }
      var answers = c.methods.filter { $0.relativeError != nil }.map(\.method)
      if c.expected != nil, c.kind != "real" { answers.insert("expected", at: 0) }
      let suiteFiles = Set([c.problem] + c.controls.map(\.file) + c.methods.compactMap(\.mask))
      for file in try list(url) where !suiteFiles.contains("\(name)/\(file)") {
        let stem = file.hasSuffix(".safetensors") ? String(file.dropLast(".safetensors".count)) : nil
        if let stem, answers.contains(stem) { continue }
        let reason: String
        if stem == nil {
          reason = "not a .safetensors file"
        } else if stem == "expected" {
          reason = "case \(name) has no known answer to hold it to"
        } else if c.methods.contains(where: { $0.method == stem }) {
          reason = "the manifest has no PruneKit figure for \(stem!) on \(name)"
        } else {
          reason = "matches no answer of \(name) (\(answers.joined(separator: ", ")))"
        }
        unknown.append(UnknownCandidateFile(file: "\(name)/\(file)", reason: reason))
      }
    }
    return unknown
  }
}

/// A file of the candidates folder that is no answer of the suite, and why.
public struct UnknownCandidateFile: Sendable, Codable, Equatable, CustomStringConvertible {
  /// The path inside the candidates folder.
  public var file: String
  public var reason: String

  public var description: String { "\(file) (\(reason))" }
}

/// The certificates of a suite, its coverage and its verdict.
public struct SuiteReport: Sendable, Codable, Equatable {
  /// "PASS" or "FAIL" (`passed`).
  public var verdict: String
  /// At least one file was checked, every checked file passed, and no candidate file is unknown
  /// (or unknown files were allowed).
  public var passed: Bool
  public var manifest: String
  public var candidates: String?
  /// The version that wrote the suite.
  public var prunekitVersion: String
  /// Cases in the manifest, with at least one file checked, and without (their names).
  public var casesTotal: Int
  public var casesWithCandidate: Int
  public var casesWithoutCandidate: [String]
  /// Files of the candidates folder that are no answer of the suite (never checked).
  public var unknownFiles: [UnknownCandidateFile]
  /// Whether unknown files were allowed (`--allow-unknown`).
  public var allowUnknown: Bool
  /// Files certified, and how many passed and failed.
  public var filesChecked: Int
  public var filesPassed: Int
  public var filesFailed: Int
  public var entries: [SuiteEntry]

  private enum CodingKeys: String, CodingKey {
    case verdict, passed, manifest, candidates, entries
    case prunekitVersion = "prunekit_version"
    case casesTotal = "cases_total"
    case casesWithCandidate = "cases_with_candidate"
    case casesWithoutCandidate = "cases_without_candidate"
    case unknownFiles = "unknown_files"
    case allowUnknown = "allow_unknown"
    case filesChecked = "files_checked"
    case filesPassed = "files_passed"
    case filesFailed = "files_failed"
  }

  public init(
    manifest: String, candidates: String?, prunekitVersion: String, entries: [SuiteEntry],
    casesWithoutCandidate: [String], casesTotal: Int, unknownFiles: [UnknownCandidateFile] = [],
    allowUnknown: Bool = false
  ) {
    self.manifest = manifest
    self.candidates = candidates
    self.prunekitVersion = prunekitVersion
    self.entries = entries
    self.casesTotal = casesTotal
    self.casesWithoutCandidate = casesWithoutCandidate
    self.casesWithCandidate = casesTotal - casesWithoutCandidate.count
    self.unknownFiles = unknownFiles
    self.allowUnknown = allowUnknown
    self.filesChecked = entries.count
    self.filesPassed = entries.filter(\.passed).count
    self.filesFailed = filesChecked - filesPassed
    self.passed = filesChecked > 0 && filesFailed == 0 && (unknownFiles.isEmpty || allowUnknown)
    self.verdict = passed ? "PASS" : "FAIL"
  }

  public func json() -> Data { reportJSON(self) }
}

/// One certified file of a suite.
public struct SuiteEntry: Sendable, Codable, Equatable {
  public var `case`: String
  /// "expected", "control" or a method name.
  public var role: String
  public var file: String
  public var certificate: Certificate
  /// Checks against the manifest's figures (expected-error, method-error).
  public var checks: [CheckResult] = []
  public var notes: [String] = []
  /// The certificate passed and so did `checks` (for a control: the named checks failed).
  public var passed: Bool

  init(case name: String, role: String, file: String, certificate: Certificate) {
    self.case = name
    self.role = role
    self.file = file
    self.certificate = certificate
    self.passed = certificate.passed
  }

  /// Adds the check |value − reference| / reference ≤ tolerance (absolute when reference is 0).
  mutating func add(matching value: Double, reference: Double, tolerance: Double, name: String) {
    let difference = abs(value - reference) / (reference > 0 ? reference : 1)
    let check = CheckResult(
      name: name, passed: difference <= tolerance, value: difference, threshold: tolerance,
      detail: "relative error \(value) against the manifest's \(reference)")
    checks.append(check)
    passed = passed && check.passed
  }
}
