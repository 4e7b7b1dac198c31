/// Runs any pruning method by name with its options: the one entry point the CLI, the benchmarks
/// and the model pipeline share, so that a method is configured the same way everywhere.
///
/// Method options travel as named values (`blocksize`, `percdamp`, `lambda-steps` ...), the names
/// the CLI accepts as `--name value` and the reports list under `options`. `MethodOptions.names`
/// is the table: each name, the methods it applies to and what it means.
public struct MethodOptions: Sendable, Equatable {
  public var sparseGPT = SparseGPT.Options()
  public var refit = Refit.Options()
  public var admm = ADMM.Options()
  public var fista = FISTA.Options()
  public var apt = APT.Options()
  public var exact = BruteForce.Options()
  public var sparseLLM = SparseLLM.Options()

  public init() {}

  /// One settable option.
  public struct Name: Sendable {
    public let name: String
    public let methods: [PruningMethod]
    public let help: String
  }

  /// Every option name, in the order `prune help layer` lists them.
  public static let names: [Name] = [
    Name(name: "blocksize", methods: [.sparsegpt, .apt, .sparsellm], help: "columns per lazy batch (128)"),
    Name(name: "percdamp", methods: [.sparsegpt, .apt, .admm, .sparsellm], help: "damping as a fraction of mean(diag G*) (SparseGPT/APT 0.01); ADMM: of mean(diag Ĝ) = 1, so ρ₀ (0.1)"),
    Name(name: "count-rule", methods: [.sparsegpt, .sparsellm], help: "exact | reference (the original's ⌊s·numel⌋+1 per block)"),
    Name(name: "damping", methods: [.refit, .fista, .exact], help: "refit damping as a fraction of mean(diag G*): refit and fista's final refit 0.01, exact 0 (0 = undamped)"),
    Name(name: "mask-method", methods: [.refit], help: "mask to refit when --mask is not given: wanda | magnitude"),
    Name(name: "iterations", methods: [.admm, .fista, .sparsellm], help: "ADMM iterations (20) or FISTA iterations per λ (20)"),
    Name(name: "mask-iterations", methods: [.admm], help: "iterations that re-select the mask (15; 0 = one-shot)"),
    Name(name: "rho", methods: [.admm], help: "ADMM penalty ρ (1)"),
    Name(name: "mask-schedule", methods: [.admm], help: "cubic | final (the released code's unstructured path)"),
    Name(name: "lambda-steps", methods: [.fista, .sparsellm], help: "λ bisection steps T (3)"),
    Name(name: "xi", methods: [.fista, .sparsellm], help: "rounding-error ratio threshold ξ (0.3)"),
    Name(name: "lambda", methods: [.fista, .sparsellm], help: "initial λ (default: the s-quantile of |Wᵢⱼ|·G*ⱼⱼ)"),
    Name(name: "tolerance", methods: [.fista, .sparsellm], help: "relative iterate change that stops FISTA early (1e-5)"),
    Name(name: "warm-start", methods: [.fista, .sparsellm], help: "sparsegpt | wanda | magnitude | dense (wanda)"),
    Name(name: "final-refit", methods: [.fista, .sparsellm], help: "true | false: exact refit on the final mask (false)"),
    Name(name: "subset", methods: [.apt], help: "N:M subset choice: exhaustive | scores (exhaustive)"),
    Name(name: "max-masks", methods: [.exact], help: "refuse problems with more admissible masks per row (100000)"),
    Name(name: "inner", methods: [.sparsellm], help: "the layer method inside SparseLLM's epochs and for attention: sparsegpt | fista (sparsegpt)"),
    Name(name: "alpha", methods: [.sparsellm], help: "SparseLLM α, weight of the linear fits (0.1 ReLU/GELU FFNs, 5 SwiGLU)"),
    Name(name: "beta", methods: [.sparsellm], help: "SparseLLM β, weight of the output fit (as α)"),
    Name(name: "gamma", methods: [.sparsellm], help: "SparseLLM γ, weight of the activation consistency (as α)"),
    Name(name: "epochs", methods: [.sparsellm], help: "SparseLLM alternating epochs (4; 1 = layer-local)"),
    Name(name: "remask", methods: [.sparsellm], help: "true | false: re-select the FFN masks every epoch (true)"),
    Name(name: "keep", methods: [.sparsellm], help: "best | last: the epoch whose FFN weights are returned (best output error)"),
    Name(name: "ls-damping", methods: [.sparsellm], help: "SparseLLM W-step damping toward the current weights, fraction of mean(diag G) (0.01)"),
    Name(name: "activation-steps", methods: [.sparsellm], help: "Gauss-Newton steps per entry of GELU's z-step and SwiGLU's s-step (5)"),
  ]

  /// Sets an option by its name. Throws `PruningError.invalidOption` on an unknown name, a value
  /// that does not parse, or a name that does not apply to `method`.
  public mutating func set(_ name: String, _ value: String, for method: PruningMethod) throws(PruningError) {
    guard let entry = Self.names.first(where: { $0.name == name }) else {
      throw .invalidOption(name: name, detail: "unknown option; known: \(Self.names.map(\.name).joined(separator: ", "))")
    }
    guard entry.methods.contains(method) else {
      throw .invalidOption(name: name, detail: "does not apply to \(method); it applies to \(entry.methods.map(\.rawValue).joined(separator: ", "))")
    }
    func int(_ range: ClosedRange<Int>) throws(PruningError) -> Int {
      guard let v = Int(value), range.contains(v) else { throw .invalidOption(name: name, detail: "'\(value)' is not an integer in \(range)") }
      return v
    }
    func double(_ range: ClosedRange<Double>) throws(PruningError) -> Double {
      guard let v = Double(value), v.isFinite, range.contains(v) else { throw .invalidOption(name: name, detail: "'\(value)' is not a number in \(range)") }
      return v
    }
    func bool() throws(PruningError) -> Bool {
      switch value.lowercased() {
      case "true", "yes", "1": return true
      case "false", "no", "0": return false
      default: throw .invalidOption(name: name, detail: "'\(value)' is not true or false")
      }
    }
    func oneOf<E: RawRepresentable>(_: E.Type) throws(PruningError) -> E where E.RawValue == String {
      guard let v = E(rawValue: value) else { throw .invalidOption(name: name, detail: "'\(value)' is not one of the accepted values") }
      return v
    }
    switch (name, method) {
    case ("blocksize", .sparsegpt), ("blocksize", .sparsellm): sparseGPT.blockSize = try int(1...1 << 20)
    case ("blocksize", _): apt.blockSize = try int(1...1 << 20)
    case ("percdamp", .sparsegpt), ("percdamp", .sparsellm): sparseGPT.percentDamping = try double(0...1e6)
    case ("percdamp", .apt): apt.percentDamping = try double(0...1e6)
    case ("percdamp", _): admm.percentDamping = try double(0...1e6)
    case ("count-rule", _): sparseGPT.countRule = try oneOf(SparseGPT.CountRule.self)
    case ("damping", .refit): refit.dampingFraction = try double(0...1e6)
    case ("damping", .fista): fista.refitDamping = try double(0...1e6)
    case ("damping", _): exact.dampingFraction = try double(0...1e6)
    case ("mask-method", _):
      let m = try oneOf(PruningMethod.self)
      guard m == .wanda || m == .magnitude else { throw .invalidOption(name: name, detail: "'\(value)' is not wanda or magnitude") }
      refit.maskMethod = m
    case ("iterations", .admm): admm.iterations = try int(0...1_000_000)
    case ("iterations", _): fista.iterations = try int(1...1_000_000)
    case ("mask-iterations", _): admm.maskIterations = try int(0...1_000_000)
    case ("rho", _): admm.rho = try double(1e-12...1e12)
    case ("mask-schedule", _): admm.schedule = try oneOf(ADMM.Schedule.self)
    case ("lambda-steps", _): fista.lambdaSteps = try int(1...1000)
    case ("xi", _): fista.xi = try double(1e-9...(1 - 1e-9))
    case ("lambda", _): fista.initialLambda = try double(0...Double.greatestFiniteMagnitude)
    case ("tolerance", _): fista.tolerance = try double(0...1)
    case ("warm-start", _): fista.warmStart = try oneOf(FISTA.WarmStart.self)
    case ("final-refit", _): fista.finalRefit = try bool()
    case ("subset", _): apt.subsetChoice = try oneOf(APT.SubsetChoice.self)
    case ("max-masks", _): exact.maxMasksPerRow = try int(1...Int.max)
    case ("inner", _): sparseLLM.inner = try oneOf(SparseLLM.Inner.self)
    case ("alpha", _): sparseLLM.alpha = try double(1e-12...1e12)
    case ("beta", _): sparseLLM.beta = try double(1e-12...1e12)
    case ("gamma", _): sparseLLM.gamma = try double(1e-12...1e12)
    case ("epochs", _): sparseLLM.epochs = try int(1...1000)
    case ("remask", _): sparseLLM.remask = try bool()
    case ("keep", _): sparseLLM.keep = try oneOf(SparseLLM.Keep.self)
    case ("ls-damping", _): sparseLLM.leastSquaresDamping = try double(0...1e6)
    case ("activation-steps", _): sparseLLM.activationSteps = try int(0...1000)
    default: throw .invalidOption(name: name, detail: "does not apply to \(method)")
    }
  }
}

/// Prunes `problem` to `pattern` with `method`. With `mask`, the methods that can work on a given
/// mask (refit, ADMM, APT) use it instead of choosing their own; the others reject it.
///
/// Numerical safeguards (NumericalChecks.swift; Docs/reliability.md#numerical-trouble), around
/// every method alike:
///   1. the Gram G* must be positive semidefinite up to 10⁻⁴ of its trace
///      (`LayerProblem.checkSemidefinite`), else `PruningError.invalidProblem(.notSemidefinite)`;
///      NaN, Inf and negative diagonals were already rejected when the `LayerProblem` was built;
///   2. a badly scaled problem (weights or Grams far from 1, where Float products overflow or
///      underflow) is solved in exact power-of-two units and scaled back (`ProblemScaling`,
///      reported in the notes and metrics);
///   3. a result holding NaN or Inf is `PruningError.nonFiniteResult`, never returned.
/// Calling a method's own `prune` directly skips these safeguards.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func prune<T: KernelScalar>(
  _ problem: LayerProblem<T>, method: PruningMethod, pattern: SparsityPattern,
  options: MethodOptions = MethodOptions(), mask: Mask? = nil
) throws(PruningError) -> PruningResult<T> {
  do { try problem.checkSemidefinite() } catch { throw .invalidProblem(error) }
  let result: PruningResult<T>
  if let scaling = ProblemScaling(for: problem) {
    let inner = try dispatch(scaling.apply(to: problem), method: method, pattern: pattern, options: options, mask: mask)
    result = scaling.restore(inner, original: problem)
  } else {
    result = try dispatch(problem, method: method, pattern: pattern, options: options, mask: mask)
  }
  try checkFinite(result, method: method)
  return result
}

/// `prune` without the safeguards: the method by name.
@_specialize(where T == Float)
@_specialize(where T == Double)
func dispatch<T: KernelScalar>(
  _ problem: LayerProblem<T>, method: PruningMethod, pattern: SparsityPattern, options: MethodOptions, mask: Mask?
) throws(PruningError) -> PruningResult<T> {
  if let mask {
    guard mask.rows == problem.outputs && mask.columns == problem.inputs else {
      throw .maskMismatch(detail: "mask [\(mask.rows) × \(mask.columns)] for a weight \(problem.weight.shapeDescription)")
    }
    switch method {
    case .refit: return try Refit(options: options.refit).refit(problem, mask: mask, pattern: pattern)
    case .admm: return try ADMM(options: options.admm).prune(problem, pattern: pattern, fixedMask: mask)
    case .apt: return try APT(options: options.apt).prune(problem, pattern: pattern, fixedMask: mask)
    default:
      throw .maskMismatch(detail: "\(method) chooses its own mask; a given mask works with refit, admm and apt")
    }
  }
  switch method {
  case .magnitude: return try Magnitude().prune(problem, pattern: pattern)
  case .wanda: return try Wanda().prune(problem, pattern: pattern)
  case .sparsegpt: return try SparseGPT(options: options.sparseGPT).prune(problem, pattern: pattern)
  case .refit: return try Refit(options: options.refit).prune(problem, pattern: pattern)
  case .admm: return try ADMM(options: options.admm).prune(problem, pattern: pattern)
  case .fista: return try FISTA(options: options.fista).prune(problem, pattern: pattern)
  case .apt: return try APT(options: options.apt).prune(problem, pattern: pattern)
  case .exact: return try BruteForce(options: options.exact).prune(problem, pattern: pattern)
  case .sparsellm:
    // One layer on its own has no FFN partner to coordinate with: SparseLLM prunes it with its
    // inner method, as it prunes attention layers (the FFN path is `SparseLLM.prune`).
    var result = try dispatch(problem, method: options.sparseLLM.inner.method, pattern: pattern, options: options, mask: nil)
    result.report.method = PruningMethod.sparsellm.rawValue
    result.report.notes.append("sparsellm on a single layer: pruned by its inner method \(options.sparseLLM.inner.rawValue)")
    return result
  }
}
