/// What every pruning method returns: the pruned weight, its mask, and a report.
public struct PruningResult<T: KernelScalar>: Sendable {
  /// Ŵ: `[out × in]`, exactly zero where `mask` is false.
  public var weight: Matrix<T>
  /// The sparsity structure of `weight` (true = kept).
  public var mask: Mask
  /// Everything the method measured; printed by the CLI, written as JSON by `prune layer`.
  public var report: PruningReport

  public init(weight: Matrix<T>, mask: Mask, report: PruningReport) {
    self.weight = weight
    self.mask = mask
    self.report = report
  }
}

/// The measurements of one pruning run. Fields a method does not use stay nil or empty.
public struct PruningReport: Sendable, Codable, Equatable {
  /// The method's name as the CLI spells it (`magnitude`, `wanda`, `sparsegpt`, `admm`, `fista`,
  /// `refit`, `apt`, `exact`).
  public var method: String
  /// The requested pattern, as `SparsityPattern.description` spells it ("0.5", "0.5/row", "2:4").
  public var pattern: String
  /// Pruned entries / all entries of the result.
  public var realisedSparsity: Double
  /// E(Ŵ) = ‖X*Ŵᵀ − XWᵀ‖²_F (LayerProblem.error).
  public var error: Double
  /// E(Ŵ) / tr(W G Wᵀ).
  public var relativeError: Double
  /// Whether `error` and `relativeError` were measured: false only for a layer pruned from its
  /// weight alone, without calibration data (magnitude in a model run, `Magnitude.prune(weight:)`);
  /// both are then 0 and written as null.
  public var errorMeasured: Bool {
    get { errorNotMeasured != true }
    set { errorNotMeasured = newValue ? nil : true }
  }
  /// `errorMeasured` as stored: absent (nil) unless false, so that checkpoints written before it
  /// existed read back as measured.
  private var errorNotMeasured: Bool? = nil
  /// The absolute damping δ added to the Gram's diagonal by the method (nil if none).
  public var damping: Double?
  /// Extra damping added by Cholesky retries (nil if none was needed).
  public var dampingRetry: Double?
  /// The ℓ1 weight λ of the returned solution (FISTA).
  public var lambda: Double?
  /// Every λ tried, in order (FISTA's bisection).
  public var lambdaPath: [Double]
  /// The objective after each iteration or outer step, as the method defines it (documented per
  /// method).
  public var objectiveTrace: [Double]
  /// Iterations performed (method-specific meaning).
  public var iterations: Int
  /// Wall time of the method, seconds.
  public var seconds: Double
  /// Named scalar diagnostics a method wants to expose (e.g. SparseGPT's accumulated OBS loss,
  /// FISTA's final E_round/E_total), documented with the method.
  public var metrics: [String: Double]
  /// Free-form remarks (a fallback taken, a warning).
  public var notes: [String]
  /// The options the method ran with, under their report keys (`MethodOption.reportKey`), as
  /// key → value strings.
  public var options: [String: String]

  public init(
    method: String, pattern: String, realisedSparsity: Double = 0, error: Double = 0,
    relativeError: Double = 0, damping: Double? = nil, dampingRetry: Double? = nil,
    lambda: Double? = nil, lambdaPath: [Double] = [], objectiveTrace: [Double] = [],
    iterations: Int = 0, seconds: Double = 0, metrics: [String: Double] = [:], notes: [String] = [],
    options: [String: String] = [:]
  ) {
    self.method = method
    self.pattern = pattern
    self.realisedSparsity = realisedSparsity
    self.error = error
    self.relativeError = relativeError
    self.damping = damping
    self.dampingRetry = dampingRetry
    self.lambda = lambda
    self.lambdaPath = lambdaPath
    self.objectiveTrace = objectiveTrace
    self.iterations = iterations
    self.seconds = seconds
    self.metrics = metrics
    self.notes = notes
    self.options = options
  }
}

/// Seconds elapsed since `start` (a `ContinuousClock` instant), for reports.
public func secondsSince(_ start: ContinuousClock.Instant) -> Double {
  let d = ContinuousClock.now - start
  return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
