// prune verify: certify another backend's pruned weight for a layer problem. The work is done by
// `Verification` (PruneOracle); this file parses the options and prints the certificate.

import Foundation
import PruneKit

extension Command {
  static let verify = Command(
    name: "verify", summary: "certify another backend's pruned weight for a layer problem",
    forms: [
      Form([
        .required(VerifyOptions.problem), .required(VerifyOptions.candidate),
        .oneOf([[.required(VerifyOptions.sparsity)], [.required(VerifyOptions.pattern)]], required: true),
        .optional(VerifyOptions.compare), .optional(VerifyOptions.precision),
        .oneOf([[.required(VerifyOptions.methodClaimed), .required(VerifyOptions.lambda)]], required: false),
        .optional(VerifyOptions.maxGap), .optional(VerifyOptions.maxKKT), .optional(VerifyOptions.exactCount),
        .optional(VerifyOptions.list), .optional(VerifyOptions.json), .optional(VerifyOptions.certificate),
        .optional(SharedOptions.threads),
      ]),
      Form(
        selectedBy: VerifyOptions.manifest,
        [
          .required(VerifyOptions.manifest), .optional(VerifyOptions.candidates), .optional(VerifyOptions.allowUnknown),
          .optional(VerifyOptions.json),
          .optional(VerifyOptions.certificate), .optional(SharedOptions.threads),
        ]),
    ],
    about: """
      Certifies the candidate's 'weight' [out, in] (F32, F16, BF16 or F64) for the problem P (see
      Docs/oracle.md for every figure):
        pattern   at least the required exact zeros in every group of the pattern (--exact-count:
                  exactly, bar zeros of W itself); failing groups listed (--list N)
        finite    no NaN or infinity; subnormals and F32/BF16/F16 round-off are reported
        quality   relative error, and the exact refit on the candidate's own mask (damping 0,
                  retry damping reported): the gap between them
        compare   PruneKit's methods on the same problem and pattern (at --precision)
        kkt       with --method-claimed fista --lambda λ: the lasso KKT residuals of
                  ½‖X*Ŵᵀ − XWᵀ‖² + λ‖Ŵ‖₁, normalised by max|W K|

      A bare --sparsity ratio counts over the claimed method's group (--method-claimed fista: the
      matrix) and otherwise per row, the stricter reading: a weight pruned over the whole matrix
      passes only as 0.5/matrix. --compare runs each method at its own group (wanda per row, the
      others over the matrix) unless /row or /matrix is written; every report prints the group used.
      """,
    sections: [
      OptionSection(
        "One candidate:",
        [
          VerifyOptions.problem, VerifyOptions.candidate, VerifyOptions.sparsity, VerifyOptions.pattern,
          VerifyOptions.compare,
          VerifyOptions.precision, VerifyOptions.methodClaimed, VerifyOptions.lambda, VerifyOptions.maxGap,
          VerifyOptions.maxKKT,
          VerifyOptions.exactCount, VerifyOptions.list,
        ]),
      OptionSection(
        "A suite (--manifest):",
        text: """
          Certifies a suite written by 'prune vectors': without --candidates its own files (expected
          answers pass their bounds, negative controls fail, PruneKit's outputs pass); with --candidates,
          every CANDDIR/<case>/expected.safetensors and CANDDIR/<case>/<method>.safetensors found, against
          the manifest's bounds and PruneKit's errors for the same method. The coverage is printed: cases
          with a candidate and without, and every file of CANDDIR matching no case or answer, by name;
          such unknown files fail the suite (a misspelt name is never silently skipped) unless
          --allow-unknown is given. A suite that checked no file fails.
          """, [VerifyOptions.manifest, VerifyOptions.candidates, VerifyOptions.allowUnknown]),
      OptionSection("Both:", [VerifyOptions.json, VerifyOptions.certificate, SharedOptions.threads]),
    ],
    epilogue: """
      Exit status: 0 when every check passes (pattern, finite, and gap and kkt when bounded); 1 when
      a check fails or a file cannot be read; 2 for usage errors.
      """,
    run: runVerify)
}

/// The options of `prune verify`, of its two forms.
enum VerifyOptions {
  static let problem = Option.path("problem", placeholder: "P.safetensors", help: "the layer-problem file")
  static let candidate = Option.path("candidate", placeholder: "W.safetensors", help: "the pruned weight to certify")
  static let sparsity = Option.text(
    "sparsity", placeholder: "S", help: "a ratio: 0.5/row, 0.5/matrix, or a bare 0.5 (its group: above)")
  static let pattern = Option.text(
    "pattern", placeholder: "N:M", help: "N pruned in every M consecutive inputs, e.g. 2:4")
  static let compare = Option<[PruningMethod]>(
    "compare", placeholder: "LIST",
    help: "PruneKit's methods to run on the same problem and pattern, e.g. sparsegpt,wanda,fista"
  ) { text, spelling throws(CLIError) in
    var methods: [PruningMethod] = []
    for name in text.split(separator: ",") {
      guard let m = PruningMethod(rawValue: String(name)) else {
        let names = PruningMethod.allCases.map(\.rawValue)
        throw CLIError(
          "unknown method '\(name)' in \(spelling)",
          hint: suggesting(
            nearest(String(name), among: names), "write a comma-separated list of \(names.joined(separator: ", ")).",
            quoted: true))
      }
      methods.append(m)
    }
    return methods
  }
  static let precision = Option.choice(
    "precision", among: LayerJob.Precision.allCases, placeholder: "P", default: .float,
    help: "the scalar type of the --compare runs")
  static let methodClaimed = Option.text(
    "method-claimed", placeholder: "NAME",
    help: "the method the candidate claims to be the output of; fista, with --lambda, adds the kkt check")
  static let lambda = Option.number(
    "lambda", placeholder: "λ", in: 0...Double.greatestFiniteMagnitude, help: "the λ the claimed lasso was solved at")
  static let maxGap = Option.number(
    "max-gap", placeholder: "G", in: 0...1e300,
    help: "fail when (E(Ŵ) − E(refit)) / E(refit) > G (a fraction: 0.01 = 1%)")
  static let maxKKT = Option.number(
    "max-kkt", placeholder: "R", in: 0...1e300,
    help: "fail when the larger normalised KKT residual > R (needs the lasso claim)")
  static let exactCount = Flag(
    "exact-count", help: "the pattern check demands exactly the required zeros, bar zeros of W itself")
  static let list = Option.integer(
    "list", in: 0...1_000_000, default: Verification.defaultListLimit,
    help: "failing groups of the pattern check listed")
  static let manifest = Option.text("manifest", placeholder: "DIR/manifest.json", help: "the suite's manifest")
  static let candidates = Option.text(
    "candidates", placeholder: "CANDDIR",
    help: "the candidates' folder: CANDDIR/<case>/expected.safetensors or <method>.safetensors")
  static let allowUnknown = Flag(
    "allow-unknown", help: "check the candidates that match and list, but do not fail on, files that match no case")
  static let json = Flag("json", help: "the certificate as JSON on standard output instead of the text summary")
  static let certificate = Option.path(
    "certificate", placeholder: "C.json", help: "also write the JSON certificate to C")
}

func runVerify(_ args: Arguments) throws {
  if let manifest = args[VerifyOptions.manifest] { return try runVerifySuite(args, manifest: manifest) }
  let problem = args.value(VerifyOptions.problem)
  let candidate = args.value(VerifyOptions.candidate)
  let sparsity = args[VerifyOptions.sparsity]
  let nOfM = args[VerifyOptions.pattern]
  let precision = args.value(VerifyOptions.precision)
  let claimed = args[VerifyOptions.methodClaimed]
  let lambda = args[VerifyOptions.lambda]
  let maxGap = args[VerifyOptions.maxGap]
  let maxKKT = args[VerifyOptions.maxKKT]
  let json = args[VerifyOptions.json]
  let exactCount = args[VerifyOptions.exactCount]
  let limit = args.value(VerifyOptions.list)
  let methods = args[VerifyOptions.compare] ?? []
  let certificateURL = args[VerifyOptions.certificate]
  if let certificateURL, isSameFile(certificateURL, problem) || isSameFile(certificateURL, candidate) {
    throw CLIError("--certificate \(certificateURL.path) is an input file", hint: "write the certificate to a new path")
  }
  Parallelism.defaultThreads = args.value(SharedOptions.threads)

  let certificate: Certificate
  do throws(VerifyError) {
    let (pattern, groupGiven) = try Verification.pattern(sparsity: sparsity, nOfM: nOfM, claimedMethod: claimed)
    let verification = Verification(
      problem: problem, candidate: candidate, pattern: pattern, compare: methods, comparePrecision: precision,
      claimedMethod: claimed, lambda: lambda, maxGap: maxGap, maxKKT: maxKKT, listLimit: limit,
      exactCount: exactCount, groupGiven: groupGiven)
    certificate = try verification.run()
  } catch {
    throw CLIError(error, exitCode: error.isUsageError ? 2 : 1)
  }
  if let certificateURL {
    do { try AtomicOutput.write(certificate.json(), to: certificateURL) } catch {
      throw CLIError(LayerJobError.write(error), exitCode: 1)
    }
  }
  if json {
    FileHandle.standardOutput.write(certificate.json())
  } else {
    print(certificateSummary(certificate), terminator: "")
  }
  if !certificate.passed {
    let failed = certificate.checks.filter { !$0.passed }.map(\.name)
    throw CLIError(
      "the candidate failed \(failed.count) check(s): \(failed.joined(separator: ", "))",
      hint: "the certificate on standard output gives every figure and threshold", exitCode: 1)
  }
}

/// The certificate for a person: one line per check with its threshold, then the figures.
func certificateSummary(_ c: Certificate) -> String {
  func e(_ x: Double) -> String { String(format: "%.6e", x) }
  func pct(_ x: Double) -> String { String(format: "%.4g%%", 100 * x) }
  let q = c.quality
  var text = "verify \(c.candidate)\n  for \(c.problem): [\(c.shape[0]) × \(c.shape[1])], pattern \(c.pattern)"
  text += "\(c.errorCorrected ? ", error-corrected" : "")\(c.tokens > 0 ? ", \(c.tokens) tokens" : "")\n"
  for check in c.checks {
    let verdict = check.passed ? "PASS" : "FAIL"
    let name = check.name.padding(toLength: 8, withPad: " ", startingAt: 0)
    switch check.name {
    case "pattern":
      let p = c.patternCheck
      let beyond = p.excessZeros > 0 ? ", \(p.excessZeros) beyond the pattern" : ""
      text += "  \(name)\(verdict)  \(p.failingGroups) of \(p.groups) groups break \(c.pattern) (threshold 0); "
      text += "zeros \(p.zeros), required \(p.required)\(beyond)\n"
      for f in p.failures { text += "            \(f)\n" }
      if p.unlisted > 0 { text += "            … and \(p.unlisted) more\n" }
    case "finite":
      text += "  \(name)\(verdict)  \(c.health.nonFinite) non-finite values (threshold 0)"
      text += c.health.firstNonFinite.map { ", first at \($0)\n" } ?? "\n"
    case "gap":
      text += "  \(name)\(verdict)  gap \(pct(check.value)) (threshold \(pct(check.threshold)))\n"
    case "kkt":
      text += "  \(name)\(verdict)  residual \(e(check.value)) (threshold \(e(check.threshold)))\n"
    default:
      text += "  \(name)\(verdict)  \(check.value) (threshold \(check.threshold))\n"
    }
  }
  let damping = q.refitDampingRetry > 0 ? "δ = 0 + retry \(e(q.refitDampingRetry)) (G*[S,S] singular)" : "δ = 0, exact"
  text +=
    "  error     relative \(e(q.relativeError)); refit on its mask \(e(q.refitRelativeError)) (\(damping)); gap \(pct(q.gap))\n"
  text += "  sparsity  \(String(format: "%.6f", q.realisedSparsity))\n"
  let rounding = c.health.rounding.keys.sorted().map { key -> String in
    let r = c.health.rounding[key]!
    if r.exact { return "\(key) exact" }
    var s = "\(key) \(r.changed) change (max rel \(String(format: "%.2e", r.maxRelativeChange)))"
    if r.becomeZero > 0 { s += ", \(r.becomeZero) to zero" }
    if r.overflow > 0 { s += ", \(r.overflow) overflow" }
    return s
  }
  text += "  health    stored \(c.health.dtype), \(c.health.subnormal) subnormal; \(rounding.joined(separator: "; "))\n"
  if let k = c.kkt {
    text +=
      "  lasso     λ = \(k.lambda): support residual \(e(k.supportResidual)), off-support \(e(k.offSupportResidual))"
    text += " (÷ max|WK| = \(e(k.scale))); objective \(e(k.objective))\n"
  }
  for m in c.comparison {
    let method = m.method.padding(toLength: 10, withPad: " ", startingAt: 0)
    let group = m.pattern.padding(toLength: 10, withPad: " ", startingAt: 0)
    if let r = m.relativeError {
      let ratio = r > 0 ? String(format: "%.4f", q.relativeError / r) : "-"
      text += "  compare   \(method) \(group) relative \(e(r))  candidate/method \(ratio)\n"
    } else {
      text += "  compare   \(method) \(group) no figure: \(m.note ?? "")\n"
    }
  }
  text += "  result    \(c.passed ? "PASS" : "FAIL")\n"
  return text
}

/// `prune verify --manifest`: a whole test-vector suite.
func runVerifySuite(_ args: Arguments, manifest: String) throws {
  let candidates = args[VerifyOptions.candidates]
  let allowUnknown = args[VerifyOptions.allowUnknown]
  let json = args[VerifyOptions.json]
  let certificatePath = args[VerifyOptions.certificate]?.path
  Parallelism.defaultThreads = args.value(SharedOptions.threads)
  let report: SuiteReport
  do {
    report = try SuiteVerification(
      manifest: URL(fileURLWithPath: manifest), candidates: candidates.map { URL(fileURLWithPath: $0) },
      allowUnknown: allowUnknown
    ).run()
  } catch {
    throw CLIError(error, exitCode: error.isUsageError ? 2 : 1)
  }
  if let certificatePath {
    do { try AtomicOutput.write(report.json(), to: URL(fileURLWithPath: certificatePath)) } catch {
      throw CLIError(LayerJobError.write(error), exitCode: 1)
    }
  }
  if json {
    FileHandle.standardOutput.write(report.json())
  } else {
    var text =
      "verify suite \(manifest)\(candidates.map { " with candidates from \($0)" } ?? "") (written by PruneKit \(report.prunekitVersion))\n"
    for e in report.entries {
      let checks = (e.certificate.checks + e.checks).map {
        "\($0.name) \($0.passed ? "ok" : "FAIL") \(String(format: "%.3g", $0.value))≤\(String(format: "%.3g", $0.threshold))"
      }
      let role = e.role.padding(toLength: 10, withPad: " ", startingAt: 0)
      let name = e.case.padding(toLength: 26, withPad: " ", startingAt: 0)
      let relative = String(format: "%.6e", e.certificate.quality.relativeError)
      text += "  \(e.passed ? "PASS" : "FAIL")  \(name) \(role) rel \(relative)  \(checks.joined(separator: ", "))"
      text += e.role == "control" ? "  (\(e.notes.joined(separator: "; ")))\n" : "\n"
    }
    text += suiteCoverage(report)
    text += "  result    \(report.verdict): \(report.filesPassed) of \(report.filesChecked) files pass"
    text +=
      report.unknownFiles.isEmpty
      ? "\n" : "; \(report.unknownFiles.count) unknown file(s)\(report.allowUnknown ? " allowed" : "")\n"
    print(text, terminator: "")
  }
  if !report.passed {
    let failed = report.entries.filter { !$0.passed }
    let layout = "lay the candidates out as CANDDIR/<case>/expected.safetensors or <method>.safetensors"
    if let first = failed.first {
      throw CLIError(
        "\(failed.count) file(s) failed, first \(first.case)/\(first.role)",
        hint: "the table on standard output gives every figure and threshold", exitCode: 1)
    } else if report.filesChecked == 0 {
      throw CLIError("no candidate file was checked", hint: layout, exitCode: 1)
    } else {
      throw CLIError(
        "\(report.unknownFiles.count) candidate file(s) match no case or answer, first \(report.unknownFiles[0])",
        hint: "\(layout); or add --allow-unknown to check the rest and ignore them", exitCode: 1)
    }
  }
}

/// The coverage lines of a suite: cases with and without a candidate, unknown files by name.
func suiteCoverage(_ r: SuiteReport) -> String {
  var text = "  coverage  \(r.casesWithCandidate) of \(r.casesTotal) cases have a file checked"
  text += r.casesWithoutCandidate.isEmpty ? "\n" : "; without: \(r.casesWithoutCandidate.joined(separator: ", "))\n"
  for u in r.unknownFiles { text += "  unknown   \(u)\n" }
  return text
}
