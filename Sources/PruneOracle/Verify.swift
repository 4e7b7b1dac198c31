// `prune verify` without the command line: certifies another backend's pruned weight for a
// layer problem and returns a `Certificate` holding every figure. Nothing is printed.

import Foundation
import PruneKernels
import PruneSolvers

/// Certifies a candidate pruned weight Ŵ for a layer problem: its sparsity pattern, its numerical
/// health, its error against the exact refit on its own mask, PruneKit's own methods on the same
/// problem, and (for a claimed lasso solution) the lasso KKT residuals.
///
/// Steps:
///   1. load the problem in Double and the candidate's `weight` [out, in] (F32, F16, BF16 or F64,
///      decoded exactly to Double); its mask M = {Ŵᵢⱼ ≠ 0}
///   2. pattern: in every group g of the pattern, with kᵍ the required pruned count and zᵍ the
///      exact zeros of Ŵ, the group passes when zᵍ ≥ kᵍ (N:M hardware needs at least N zeros per
///      group; a lasso-based method legitimately leaves extra zeros among the kept weights). With
///      `exactCount`, also zᵍ ≤ kᵍ + fᵍ, fᵍ the zeros of Ŵ where the dense W is itself zero (extra
///      zeros only where W had nothing to keep)
///   3. health: non-finite and subnormal values, and for F32, BF16, F16 (and F32 when stored as
///      F64) whether Ŵ is exactly representable, how many values change, the largest relative
///      change |round(x) − x|/|x|, and how many non-zeros round to zero or overflow
///   4. quality: E(Ŵ) and E(R) with R = the exact refit on M (`Refit`, δ = 0, the oracle mode; if a
///      row's G*[S,S] is singular its Cholesky retry adds the smallest damping that works and the
///      certificate reports it), and the gap (E(Ŵ) − E(R)) / max(E(R), `gapFloor`·tr(W G Wᵀ))
///   5. comparison: E of each requested PruneKit method on the same pattern; a ratio given without
///      "/row" or "/matrix" (`groupGiven` false) runs each method at its own group
///      (`PruningMethod.defaultGroup`: per row for Wanda, the whole matrix for the others)
///   6. lasso claim at λ: `LassoKKT` (support and off-support residuals, normalised by max|W K|)
/// Pass/fail: the pattern and finiteness always; the gap when `maxGap` is given; the KKT residual
/// when `maxKKT` is given (it needs λ). Everything else is reported, never judged.
public struct Verification: Sendable {
  /// The layer-problem file.
  public var problem: URL
  /// The candidate pruned-weight file (`weight` [out, in]).
  public var candidate: URL
  /// The pattern the candidate claims (a bare ratio resolved by `Verification.pattern(sparsity:nOfM:claimedMethod:)`).
  public var pattern: SparsityPattern
  /// Whether the ratio's group was written ("0.5/row", "0.5/matrix"): the compared methods then run
  /// at `pattern`; otherwise each at its own group (`comparisonPattern(for:)`).
  public var groupGiven: Bool
  /// PruneKit methods to run on the same problem and pattern for comparison.
  public var compare: [PruningMethod]
  /// Options of those methods.
  public var options: MethodOptions
  /// Precision of the comparison runs: Float by default, as `prune layer` (the certificate's own
  /// figures are always computed in Double).
  public var comparePrecision: LayerJob.Precision
  /// The method the candidate claims to solve (only `fista`, the lasso, has checkable conditions).
  public var claimedMethod: String?
  /// λ of a claimed lasso solution.
  public var lambda: Double?
  /// Fails the candidate when its gap to the refit on its own mask exceeds this fraction.
  public var maxGap: Double?
  /// Fails the candidate when its larger normalised KKT residual exceeds this.
  public var maxKKT: Double?
  /// How many failing groups the certificate lists (the rest are counted).
  public var listLimit: Int
  /// Also fail groups with more zeros than required (beyond the zeros of W itself).
  public var exactCount: Bool

  /// Differences of errors below `gapFloor`·tr(W G Wᵀ) are rounding: the errors are computed from
  /// the Grams in Double with an absolute error of about 1e-13 of the energies (LayerProblem), so
  /// 1e-12 leaves a factor 10 of margin.
  public static let gapFloor = 1e-12
  /// Failing groups listed by default: enough to see a pattern, short enough to read.
  public static let defaultListLimit = 20
  /// The methods that accept a lasso claim.
  public static let lassoMethods = ["fista", "lasso"]

  public init(
    problem: URL, candidate: URL, pattern: SparsityPattern, compare: [PruningMethod] = [],
    options: MethodOptions = MethodOptions(), comparePrecision: LayerJob.Precision = .float,
    claimedMethod: String? = nil, lambda: Double? = nil, maxGap: Double? = nil, maxKKT: Double? = nil,
    listLimit: Int = Verification.defaultListLimit, exactCount: Bool = false, groupGiven: Bool = true
  ) {
    self.groupGiven = groupGiven
    self.exactCount = exactCount
    self.problem = problem
    self.candidate = candidate
    self.pattern = pattern
    self.compare = compare
    self.options = options
    self.comparePrecision = comparePrecision
    self.claimedMethod = claimedMethod
    self.lambda = lambda
    self.maxGap = maxGap
    self.maxKKT = maxKKT
    self.listLimit = listLimit
  }

  /// The candidate's pattern from `--sparsity RATIO` or `--pattern N:M` (exactly one), and whether
  /// the ratio's group was written. A ratio without "/row" or "/matrix" is checked over the claimed
  /// method's own group (`--method-claimed fista`: the whole matrix); with no method claimed, per row.
  /// Per row is the conservative reading: when ratio × inputs is a whole number (0.5 of an even
  /// width), a weight with the required zeros in every row has at least the required zeros in the
  /// whole matrix, while the converse fails (a matrix count passes rows left dense), so a bare ratio
  /// never passes the weaker claim. A candidate pruned over the whole matrix says so: "0.5/matrix".
  public static func pattern(sparsity: String?, nOfM: String?, claimedMethod: String?) throws(VerifyError)
    -> (pattern: SparsityPattern, groupGiven: Bool)
  {
    let claimed = claimedMethod.flatMap { lassoMethods.contains($0) ? .fista : PruningMethod(rawValue: $0) }
    let pattern = try LayerJob.pattern(sparsity: sparsity, nOfM: nOfM, defaultGroup: claimed?.defaultGroup ?? .row)
    return (pattern, sparsity?.contains("/") ?? true)
  }

  /// The pattern a compared method runs at: `pattern`, or for a ratio given without its group, the
  /// ratio over the method's own group.
  public func comparisonPattern(for method: PruningMethod) -> SparsityPattern {
    if !groupGiven, case .unstructured(let ratio, _) = pattern {
      return .unstructured(ratio: ratio, group: method.defaultGroup)
    }
    return pattern
  }

  /// Checks the request itself: a λ with a lasso claim, a KKT bound only with λ, thresholds ≥ 0.
  public func checkRequest() throws(VerifyError) {
    if let claimedMethod, !Self.lassoMethods.contains(claimedMethod) {
      throw .usage(
        "--method-claimed \(claimedMethod) has no optimality conditions to check",
        hint: "only a lasso solution (fista) can be certified by KKT; use --max-gap for any other method")
    }
    if claimedMethod != nil, lambda == nil {
      throw .usage("--method-claimed \(claimedMethod!) needs --lambda", hint: "give the λ the lasso was solved at")
    }
    if lambda != nil, claimedMethod == nil {
      throw .usage("--lambda without --method-claimed", hint: "add --method-claimed fista")
    }
    if maxKKT != nil, lambda == nil {
      throw .usage("--max-kkt needs a lasso claim", hint: "add --method-claimed fista --lambda λ")
    }
    if isSameFile(problem, candidate) {
      throw .usage("--candidate is the same file as --problem", hint: "give the pruned weight written by the backend")
    }
  }

  /// Runs every check and returns the certificate.
  public func run() throws(VerifyError) -> Certificate {
    try checkRequest()
    let file: LayerProblemFile
    do { file = try LayerProblemFile(contentsOf: problem) } catch { throw .file(error) }
    do { try pattern.validate(columns: file.inputs) } catch { throw .pattern(error) }
    let layer: LayerProblem<Double>
    do { layer = try file.problem(as: Double.self) } catch { throw .file(error) }
    let stored = try CandidateWeight(contentsOf: candidate, rows: file.outputs, columns: file.inputs)
    return try certify(layer, candidate: stored, comparisons: comparisons(file))
  }

  /// The certificate of a candidate for a problem already in memory (the comparisons given).
  public func certify(_ layer: LayerProblem<Double>, candidate stored: CandidateWeight, comparisons: [MethodComparison])
    throws(VerifyError) -> Certificate
  {
    let wHat = stored.weight
    let mask = Mask(nonZerosOf: wHat)
    let patternCheck = PatternCheck(
      candidate: wHat, dense: layer.weight, pattern: pattern, exactCount: exactCount, listLimit: listLimit)
    let health = HealthCheck(values: wHat.elements, stored: stored.dtype, columns: wHat.columns)

    let refit: PruningResult<Double>
    do { refit = try Refit(options: .exact).refit(layer, mask: mask) } catch { throw .pruning(error) }
    let energy = layer.denseEnergy
    let error = layer.error(of: wHat)
    let refitError = refit.report.error
    let floor = Self.gapFloor * energy
    let gap = (error - refitError) / max(refitError, floor > 0 ? floor : .leastNormalMagnitude)
    let quality = QualityCheck(
      error: error, relativeError: energy > 0 ? error / energy : (error == 0 ? 0 : .infinity), denseEnergy: energy,
      refitError: refitError, refitRelativeError: refit.report.relativeError, refitDampingFraction: 0,
      refitDampingRetry: refit.report.dampingRetry ?? 0, gap: gap, realisedSparsity: mask.sparsity)

    var kkt: LassoKKT? = nil
    if let lambda { kkt = LassoKKT(problem: layer, candidate: wHat, lambda: lambda) }

    var checks: [CheckResult] = [
      CheckResult(
        name: "pattern", passed: patternCheck.passed, value: Double(patternCheck.failingGroups), threshold: 0,
        detail: exactCount
          ? "groups breaking \(pattern.label) (zeros outside [required, required + zeros where W = 0])"
          : "groups breaking \(pattern.label) (fewer zeros than required)"),
      CheckResult(
        name: "finite", passed: health.nonFinite == 0, value: Double(health.nonFinite), threshold: 0,
        detail: "NaN or infinite values in the candidate"),
    ]
    if let maxGap {
      checks.append(
        CheckResult(
          name: "gap", passed: gap <= maxGap, value: gap, threshold: maxGap,
          detail:
            "(E(Ŵ) − E(refit on Ŵ's mask)) / E(refit), refit δ = 0\(refit.report.dampingRetry.map { " + retry \($0)" } ?? "")"
        ))
    }
    if let maxKKT, let kkt {
      checks.append(
        CheckResult(
          name: "kkt", passed: kkt.residual <= maxKKT, value: kkt.residual, threshold: maxKKT,
          detail: "max lasso KKT violation / max|W K| at λ = \(kkt.lambda)"))
    }
    return Certificate(
      prunekitVersion: PruneKitVersion.current, problem: problem.relativePath, candidate: candidate.relativePath,
      shape: [layer.outputs, layer.inputs], tokens: layer.tokens, errorCorrected: layer.isErrorCorrected,
      pattern: pattern.label, claimedMethod: claimedMethod, patternCheck: patternCheck, health: health,
      quality: quality, comparison: comparisons, kkt: kkt, checks: checks)
  }

  /// PruneKit's own methods on the same problem and pattern.
  func comparisons(_ file: LayerProblemFile) throws(VerifyError) -> [MethodComparison] {
    guard !compare.isEmpty else { return [] }
    switch comparePrecision {
    case .float:
      return try Self.compare(file, as: Float.self, methods: compare, patterns: comparisonPattern, options: options)
    case .double:
      return try Self.compare(file, as: Double.self, methods: compare, patterns: comparisonPattern, options: options)
    }
  }

  /// Runs `methods` at one pattern (see `compare(_:as:methods:patterns:options:keep:)`).
  public static func compare<T: KernelScalar>(
    _ file: LayerProblemFile, as type: T.Type, methods: [PruningMethod], pattern: SparsityPattern,
    options: MethodOptions,
    keep: ((PruningMethod, PruningResult<T>) -> Void)? = nil
  ) throws(VerifyError) -> [MethodComparison] {
    try compare(file, as: type, methods: methods, patterns: { _ in pattern }, options: options, keep: keep)
  }

  /// Runs `methods` on the file's problem in precision `T`, each at `patterns(method)`; a method that refuses the problem
  /// (e.g. `exact` on a large layer) is recorded with its reason instead of a figure. `keep`
  /// receives every result.
  public static func compare<T: KernelScalar>(
    _ file: LayerProblemFile, as _: T.Type, methods: [PruningMethod], patterns: (PruningMethod) -> SparsityPattern,
    options: MethodOptions, keep: ((PruningMethod, PruningResult<T>) -> Void)? = nil
  ) throws(VerifyError) -> [MethodComparison] {
    let layer: LayerProblem<T>
    do { layer = try file.problem(as: T.self) } catch { throw .file(error) }
    var out: [MethodComparison] = []
    for method in methods {
      let pattern = patterns(method)
      do {
        let r = try prune(layer, method: method, pattern: pattern, options: options)
        keep?(method, r)
        out.append(
          MethodComparison(
            method: method.rawValue, pattern: pattern.label, error: r.report.error,
            relativeError: r.report.relativeError,
            realisedSparsity: r.report.realisedSparsity, seconds: r.report.seconds, lambda: r.report.lambda, note: nil))
      } catch {
        out.append(MethodComparison(method: method.rawValue, pattern: pattern.label, note: error.description))
      }
    }
    return out
  }
}

// MARK: - The candidate

/// A candidate pruned weight as stored by another backend: `weight` [out, in], decoded exactly to
/// Double, and the dtype it was stored in.
public struct CandidateWeight: Sendable {
  public let weight: Matrix<Double>
  public let dtype: SafetensorsDType

  /// A weight already in memory, as if stored in `dtype`.
  public init(weight: Matrix<Double>, dtype: SafetensorsDType) {
    self.weight = weight
    self.dtype = dtype
  }

  /// Reads `weight` from the file and checks its shape against the problem's [rows, columns].
  /// Non-finite values are kept: the health check reports them.
  public init(contentsOf url: URL, rows: Int, columns: Int) throws(VerifyError) {
    let file: SafetensorsFile
    do { file = try SafetensorsFile(contentsOf: url) } catch { throw .file(.file(error)) }
    let name = LayerProblemFile.Tensor.weight
    guard let shape = file.shape(of: name), let dtype = file.rawDType(of: name) else {
      throw .file(
        .missingTensor(
          path: file.path, tensor: name, hint: "a pruned-weight file holds 'weight' [out, in] with exact zeros"))
    }
    guard shape == [rows, columns] else {
      throw .file(
        .shapeMismatch(
          path: file.path, tensor: name, shape: shape, expected: "[\(rows), \(columns)]",
          reference: TensorShape(name: "the problem's weight", shape: [rows, columns])))
    }
    let allowed: [SafetensorsDType] = [.F32, .F16, .BF16, .F64]
    guard allowed.contains(dtype) else {
      throw .file(.unsupportedDType(path: file.path, tensor: name, dtype: dtype, allowed: allowed))
    }
    let values: [Double]
    do { values = try file.doubleTensor(name).values } catch { throw .file(.file(error)) }
    self.init(weight: Matrix(rows: rows, columns: columns, elements: values), dtype: dtype)
  }
}

// MARK: - The certificate

/// Everything `prune verify` measured, and whether every requested check passed.
public struct Certificate: Sendable, Codable, Equatable {
  /// The PruneKit version that certified.
  public var prunekitVersion: String
  /// The files, as given (relative paths stay relative).
  public var problem: String
  public var candidate: String
  /// [out, in].
  public var shape: [Int]
  /// Calibration tokens behind the Grams (0 when the file does not say).
  public var tokens: Int
  public var errorCorrected: Bool
  /// The pattern the candidate was checked against, its group always written ("0.5/matrix",
  /// "0.5/row", "2:4": `SparsityPattern.label`).
  public var pattern: String
  public var claimedMethod: String?
  public var patternCheck: PatternCheck
  public var health: HealthCheck
  public var quality: QualityCheck
  /// PruneKit's methods on the same problem (empty unless asked for).
  public var comparison: [MethodComparison]
  /// The lasso KKT residuals (only for a lasso claim).
  public var kkt: LassoKKT?
  /// Every pass/fail check with its value and threshold.
  public var checks: [CheckResult]

  /// True when every check passed.
  public var passed: Bool

  public init(
    prunekitVersion: String, problem: String, candidate: String, shape: [Int], tokens: Int, errorCorrected: Bool,
    pattern: String, claimedMethod: String?, patternCheck: PatternCheck, health: HealthCheck, quality: QualityCheck,
    comparison: [MethodComparison], kkt: LassoKKT?, checks: [CheckResult]
  ) {
    self.prunekitVersion = prunekitVersion
    self.problem = problem
    self.candidate = candidate
    self.shape = shape
    self.tokens = tokens
    self.errorCorrected = errorCorrected
    self.pattern = pattern
    self.claimedMethod = claimedMethod
    self.patternCheck = patternCheck
    self.health = health
    self.quality = quality
    self.comparison = comparison
    self.kkt = kkt
    self.checks = checks
    self.passed = checks.allSatisfy(\.passed)
  }

  /// The certificate as PruneKit's JSON (snake_case keys, sorted, pretty-printed: `reportJSON`).
  public func json() -> Data { reportJSON(self) }
}

/// One pass/fail check: its value against its threshold (the check passes when value ≤ threshold).
public struct CheckResult: Sendable, Codable, Equatable {
  public var name: String
  public var passed: Bool
  public var value: Double
  public var threshold: Double
  public var detail: String
}

/// The sparsity pattern of the candidate: zeros counted per group of the pattern.
public struct PatternCheck: Sendable, Codable, Equatable {
  /// Pruned weights the pattern requires in the whole matrix.
  public var required: Int
  /// Exact zeros of the candidate.
  public var zeros: Int
  /// Zeros of the candidate where the dense W is zero too (the only places extra zeros may be
  /// under `exactCount`).
  public var zerosWhereDenseIsZero: Int
  /// Σ over groups of max(0, zeros − required): zeros beyond the pattern (e.g. a lasso's).
  public var excessZeros: Int
  /// Whether extra zeros failed a group.
  public var exactCount: Bool
  /// Groups of the pattern (1 for the whole matrix, the rows, or rows × in/M) and how many fail.
  public var groups: Int
  public var failingGroups: Int
  /// The first `listLimit` failing groups, in row-major order.
  public var failures: [GroupFailure]
  /// Failing groups not listed.
  public var unlisted: Int

  public var passed: Bool { failingGroups == 0 }

  /// Counts the zeros of `candidate` in each group of `pattern` (valid for its width).
  public init(
    candidate: Matrix<Double>, dense: Matrix<Double>, pattern: SparsityPattern, exactCount: Bool, listLimit: Int
  ) {
    let m = candidate.rows
    let n = candidate.columns
    // The groups `prune layer --mask` counts too (`SparsityPattern.groups`, `Mask.CountRule.atLeast`).
    let spans = pattern.groups(rows: m, columns: n)
    var zeros = 0
    var free = 0
    var failing = 0
    var excess = 0
    var failures: [GroupFailure] = []
    candidate.withUnsafeBufferPointer { c in
      dense.withUnsafeBufferPointer { w in
        for s in spans {
          var z = 0
          var f = 0
          for idx in s.start..<(s.start + s.count) where c[idx] == 0 {
            z += 1
            if w[idx] == 0 { f += 1 }
          }
          zeros += z
          free += f
          excess += max(0, z - s.required)
          guard !Mask.CountRule.atLeast.accepts(pruned: z, required: s.required) || (exactCount && z > s.required + f)
          else { continue }
          failing += 1
          if failures.count < listLimit {
            let kept =
              s.row == nil || s.column == nil
              ? nil : (s.start..<(s.start + s.count)).filter { c[$0] != 0 }.map { $0 % n }
            failures.append(
              GroupFailure(row: s.row, column: s.column, zeros: z, required: s.required, keptColumns: kept))
          }
        }
      }
    }
    self.required = pattern.prunedCount(rows: m, columns: n)
    self.zeros = zeros
    self.zerosWhereDenseIsZero = free
    self.excessZeros = excess
    self.exactCount = exactCount
    self.groups = spans.count
    self.failingGroups = failing
    self.failures = failures
    self.unlisted = failing - failures.count
  }
}

/// One group of the pattern the candidate breaks.
public struct GroupFailure: Sendable, Codable, Equatable, CustomStringConvertible {
  /// The row (nil for the whole matrix).
  public var row: Int?
  /// The first column of the N:M group (nil for matrix and row groups).
  public var column: Int?
  /// Zeros found and pruned weights required.
  public var zeros: Int
  public var required: Int
  /// The non-zero columns of an N:M group.
  public var keptColumns: [Int]?

  public init(row: Int?, column: Int?, zeros: Int, required: Int, keptColumns: [Int]?) {
    self.row = row
    self.column = column
    self.zeros = zeros
    self.required = required
    self.keptColumns = keptColumns
  }

  public var description: String {
    switch (row, column) {
    case (let r?, let c?):
      return "row \(r), columns \(c)…: \(zeros) zeros, \(required) required, non-zeros at \(keptColumns ?? [])"
    case (let r?, nil): return "row \(r): \(zeros) zeros, \(required) required"
    default: return "the matrix: \(zeros) zeros, \(required) required"
    }
  }
}

/// The candidate's numbers as numbers: non-finite and subnormal values, and what storing it in
/// a narrower type would change.
public struct HealthCheck: Sendable, Codable, Equatable {
  /// The dtype the candidate was stored in.
  public var dtype: String
  /// NaN or infinite values, and the first one's (row, column).
  public var nonFinite: Int
  public var firstNonFinite: [Int]?
  /// Values that are subnormal in the stored dtype (flushed to zero on hardware running with
  /// flush-to-zero, which would change the mask).
  public var subnormal: Int
  /// The effect of rounding to nearest in each narrower type: "F32" (stored as F64 only), "BF16",
  /// "F16" (nothing for the stored type itself or a wider one).
  public var rounding: [String: RoundingEffect]

  public init(values: [Double], stored: SafetensorsDType, columns: Int) {
    dtype = stored.rawValue
    var bad = 0
    var first: Int? = nil
    var sub = 0
    let smallestNormal: Double
    switch stored {
    case .F64: smallestNormal = Double.leastNormalMagnitude
    case .F16: smallestNormal = 0x1p-14
    default: smallestNormal = Double(Float.leastNormalMagnitude)  // F32, BF16 share the exponent range
    }
    for (idx, v) in values.enumerated() {
      if !v.isFinite {
        bad += 1
        if first == nil { first = idx }
      } else if v != 0 && abs(v) < smallestNormal {
        sub += 1
      }
    }
    nonFinite = bad
    firstNonFinite = first.map { [$0 / max(1, columns), $0 % max(1, columns)] }
    subnormal = sub
    var targets: [(String, (Double) -> Double)] = [("BF16", roundToBFloat16), ("F16", roundToHalf)]
    if stored == .F64 { targets.insert(("F32", { Double(Float($0)) }), at: 0) }
    if stored == .BF16 { targets = [("F16", roundToHalf)] }
    if stored == .F16 { targets = [("BF16", roundToBFloat16)] }
    rounding = Dictionary(uniqueKeysWithValues: targets.map { ($0.0, RoundingEffect(values, $0.1)) })
  }
}

/// What rounding every value to nearest in a narrower type changes.
public struct RoundingEffect: Sendable, Codable, Equatable {
  /// True when every finite value is exactly representable (nothing changes).
  public var exact: Bool
  /// Values that change.
  public var changed: Int
  /// max |round(x) − x| / |x| over the finite non-zero values that stay finite.
  public var maxRelativeChange: Double
  /// Non-zero values that round to zero (the mask would change).
  public var becomeZero: Int
  /// Finite values that overflow to infinity.
  public var overflow: Int

  init(_ values: [Double], _ round: (Double) -> Double) {
    var changed = 0
    var zero = 0
    var overflow = 0
    var worst = 0.0
    for v in values where v.isFinite {
      let r = round(v)
      guard r != v else { continue }
      changed += 1
      if r == 0 { zero += 1 } else if !r.isFinite { overflow += 1 } else { worst = max(worst, abs(r - v) / abs(v)) }
    }
    self.exact = changed == 0
    self.changed = changed
    self.maxRelativeChange = worst
    self.becomeZero = zero
    self.overflow = overflow
  }
}

/// x rounded to the nearest IEEE binary16 (ties to even), as Double.
func roundToHalf(_ x: Double) -> Double { Double(Float16(x)) }

/// x rounded to the nearest bfloat16 (ties to even) through Float, as Double. (For F64 input the
/// two roundings can differ from one correctly rounded step only on exact ties of the second.)
func roundToBFloat16(_ x: Double) -> Double {
  let f = Float(x)
  guard f.isFinite else { return Double(f) }
  let bits = f.bitPattern
  let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)  // round to nearest, ties to even, on the top 16 bits
  return Double(floatFromBFloat16(UInt16(truncatingIfNeeded: rounded >> 16)))
}

/// The candidate's error against the best weights for its own mask.
public struct QualityCheck: Sendable, Codable, Equatable {
  /// E(Ŵ) = ‖X*Ŵᵀ − XWᵀ‖²_F and E(Ŵ)/tr(W G Wᵀ).
  public var error: Double
  public var relativeError: Double
  /// tr(W G Wᵀ).
  public var denseEnergy: Double
  /// The exact refit R on the candidate's mask: E(R) and E(R)/tr(W G Wᵀ).
  public var refitError: Double
  public var refitRelativeError: Double
  /// The refit's damping as a fraction of mean(diag G*): 0, the oracle mode (JSON
  /// `refit_damping_relative`).
  public var refitDampingFraction: Double
  /// Extra absolute damping the refit's Cholesky needed on a singular G*[S,S] (0 = none: exact;
  /// JSON `refit_damping_retry_absolute`).
  public var refitDampingRetry: Double
  /// (E(Ŵ) − E(R)) / max(E(R), gapFloor·tr(W G Wᵀ)): how far Ŵ's weights are from the best for its
  /// mask, as a fraction (×100 for %). Slightly negative values are rounding, or the retry damping.
  public var gap: Double
  /// Zeros / entries of the candidate.
  public var realisedSparsity: Double

  /// The dampings' units in their keys (snake_case by `reportJSON`).
  private enum CodingKeys: String, CodingKey {
    case error, relativeError, denseEnergy, refitError, refitRelativeError, gap, realisedSparsity
    case refitDampingFraction = "refitDampingRelative"
    case refitDampingRetry = "refitDampingRetryAbsolute"
  }
}

/// One PruneKit method on the same problem and pattern.
public struct MethodComparison: Sendable, Codable, Equatable {
  public var method: String
  /// The pattern the method ran at, its group written ("0.5/row", `SparsityPattern.label`).
  public var pattern: String
  public var error: Double?
  public var relativeError: Double?
  public var realisedSparsity: Double?
  public var seconds: Double?
  /// λ of FISTA's returned solution.
  public var lambda: Double?
  /// Why there is no figure (the method refused the problem).
  public var note: String?

  public init(
    method: String, pattern: String, error: Double? = nil, relativeError: Double? = nil,
    realisedSparsity: Double? = nil,
    seconds: Double? = nil, lambda: Double? = nil, note: String? = nil
  ) {
    self.method = method
    self.pattern = pattern
    self.error = error
    self.relativeError = relativeError
    self.realisedSparsity = realisedSparsity
    self.seconds = seconds
    self.lambda = lambda
    self.note = note
  }
}

/// Why a verification could not run: the same cases as a `prune layer` job (a usage error, a bad
/// pattern, a rejected file, a failed refit, an unwritable output). Usage errors exit 2, the others 1.
public typealias VerifyError = LayerJobError
