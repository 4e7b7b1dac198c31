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
/// Comparisons with PruneKit's methods are not rerun (the manifest holds their figures).
public struct SuiteVerification: Sendable {
  /// The manifest (`manifest.json`); its folder is the root of the relative paths.
  public var manifest: URL
  /// Another backend's answers, laid out like the suite; nil = the suite's own files.
  public var candidates: URL?

  public init(manifest: URL, candidates: URL? = nil) {
    self.manifest = manifest
    self.candidates = candidates
  }

  /// Reads the manifest and certifies every candidate.
  public func run() throws(VerifyError) -> SuiteReport {
    let data: Data
    do { data = try Data(contentsOf: manifest) } catch {
      throw .usage(
        "cannot read the manifest \(manifest.path)", hint: "give DIR/manifest.json as written by 'prune vectors'")
    }
    let suite: VectorManifest
    do { suite = try JSONDecoder().decode(VectorManifest.self, from: data) } catch {
      throw .usage(
        "\(manifest.path) is not a test-vector manifest (\(error))",
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
            case: c.name, role: "expected", file: file.path, certificate: try certify(file, claim: true))
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
            case: c.name, role: "control", file: file.path, certificate: try certify(file, claim: true))
          let failed = Set(entry.certificate.checks.filter { !$0.passed }.map(\.name))
          entry.passed = Set(control.mustFail).isSubset(of: failed)
          entry.notes.append(
            "must fail \(control.mustFail.joined(separator: ", ")); failed \(failed.sorted().joined(separator: ", "))")
          entries.append(entry)
        }
      }
      // Method outputs, held to PruneKit's error for the same method.
      for output in c.methods {
        guard let reference = output.relativeError, let own = output.file else { continue }
        let file =
          candidates.map { $0.appendingPathComponent(c.name).appendingPathComponent("\(output.method).safetensors") }
          ?? root.appendingPathComponent(own)
        guard FileManager.default.fileExists(atPath: file.path) else { continue }
        var entry = SuiteEntry(
          case: c.name, role: output.method, file: file.path, certificate: try certify(file, claim: false))
        entry.add(
          matching: entry.certificate.quality.relativeError, reference: reference,
          tolerance: c.tolerances.methodRelativeError, name: "method-error")
        entries.append(entry)
      }
    }
    return SuiteReport(
      manifest: manifest.path, candidates: candidates?.path, prunekitVersion: suite.prunekitVersion, entries: entries)
  }
}

/// The certificates of a suite.
public struct SuiteReport: Sendable, Codable, Equatable {
  public var manifest: String
  public var candidates: String?
  /// The version that wrote the suite.
  public var prunekitVersion: String
  public var entries: [SuiteEntry]
  /// True when every entry passed (and there was at least one).
  public var passed: Bool { !entries.isEmpty && entries.allSatisfy(\.passed) }

  public func json() -> Data { prettyJSON(self) }
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
