/// The options of every method, and the one declaration of each option's names, values and help.
///
/// Each option is declared once, as a `MethodOption` in `MethodOption.all`. From its Swift name
/// (camelCase, the property of the methods' `Options` structs) follow the other spellings:
///
///     Swift property   blockSize             SparseGPT.Options.blockSize, APT.Options.blockSize
///     command line     --block-size 64       kebab-case; `MethodOptions.set("block-size", …)`
///     report key       "block_size": "64"    snake_case, in every report's `options`
///
/// plus the older spellings the command line still accepts (`aliases`: the references'
/// `--blocksize` and `--percdamp`). For each method it applies to, an option names the property it
/// sets by a typed key path into `MethodOptions` (`\.sparseGPT.blockSize`) and the values it
/// accepts. Defaults are written once, in each method's `Options`; help shows them by reading
/// `MethodOptions()`.
///
/// One idea, one name: every relative damping is `damping` (a fraction of mean(diag G*); for ADMM
/// of mean(diag Ĝ) = 1, which makes it ρ₀). SparseLLM has two: `damping` is its inner SparseGPT's,
/// as for `sparsegpt`, and `leastSquaresDamping` that of its own W-step, a least-squares fit pulled
/// toward the current weights.
public struct MethodOptions: Sendable, Equatable {
  public var sparseGPT = SparseGPT.Options()
  public var refit = Refit.Options()
  public var admm = ADMM.Options()
  public var fista = FISTA.Options()
  public var apt = APT.Options()
  public var exact = BruteForce.Options()
  public var sparseLLM = SparseLLM.Options()
  public var alps = ALPS.Options()
  /// What runs after the method (`--refine`; Docs/methods/swaps.md): nothing by default.
  public var refine = Refinement.none
  /// SparseSwaps' options, used when `refine` is `.swaps`.
  public var swaps = SparseSwaps.Options()

  public init() {}

  /// Sets the option spelled `name` on the command line (its CLI name or an alias) for `method`.
  /// Throws `PruningError.invalidOption` on an unknown name, a value that does not parse, or an
  /// option that does not apply to `method`.
  public mutating func set(_ name: String, _ value: String, for method: PruningMethod) throws(PruningError) {
    guard let option = MethodOption.named(name) else {
      throw .invalidOption(
        name: name, detail: "unknown option; known: \(MethodOption.declared.map(\.cliName).joined(separator: ", "))")
    }
    try set(option, value, for: method)
  }

  /// Sets `option` to `value` (as the command line writes it) for `method`.
  public mutating func set(_ option: MethodOption, _ value: String, for method: PruningMethod) throws(PruningError) {
    guard let route = option.route(for: method) else {
      throw .invalidOption(
        name: option.cliName,
        detail: "does not apply to \(method); it applies to \(option.methods.map(\.rawValue).joined(separator: ", "))")
    }
    guard route.assign(&self, value) else {
      throw .invalidOption(name: option.cliName, detail: "'\(value)' is not \(route.kind.accepted)")
    }
  }
}

/// One method option: its names, the methods it applies to and the property it sets in each, the
/// values it accepts and its help. The declarations are `MethodOption.all`.
public struct MethodOption: Sendable, CustomStringConvertible {
  /// The Swift property it sets in each method's `Options` (camelCase); the command-line and
  /// report spellings are derived from it.
  public let name: String
  /// Other command-line spellings accepted for it (the references').
  public let aliases: [String]
  /// What it means, without its values and defaults (which `help` adds).
  public let summary: String
  /// The methods it applies to, in help order, each with the property it sets.
  public let routes: [Route]

  init(_ name: String, aliases: [String] = [], _ summary: String, _ routes: [Route]) {
    self.name = name
    self.aliases = aliases
    self.summary = summary
    self.routes = routes
  }

  /// The command-line name: `blockSize` → `block-size`.
  public var cliName: String { Self.separated(name, by: "-") }
  /// The key in reports' `options`: `blockSize` → `block_size`.
  public var reportKey: String { Self.separated(name, by: "_") }
  public var description: String { cliName }
  /// The methods it applies to.
  public var methods: [PruningMethod] { routes.map(\.method) }
  /// How it reaches `method`'s options, or nil when it does not apply to `method`.
  public func route(for method: PruningMethod) -> Route? { routes.first { $0.method == method } }

  /// The option spelled `name` on the command line (its CLI name or an alias).
  public static func named(_ name: String) -> MethodOption? {
    declared.first { $0.cliName == name || $0.aliases.contains(name) }
  }

  /// camelCase → words joined by `separator`, lower case.
  static func separated(_ camel: String, by separator: Character) -> String {
    var out = ""
    for c in camel {
      if c.isUppercase {
        out.append(separator)
        out += c.lowercased()
      } else {
        out.append(c)
      }
    }
    return out
  }

  /// The values accepted, per method when they differ: "0...1000000" or "admm: 0...1000000; fista, sparsellm: 1...1000000".
  public var accepted: String { Self.grouped(routes.map { ($0.method, $0.kind.accepted) }) }
  /// The defaults, read from `MethodOptions()`, per method when they differ: "0.01; admm: 0.1; exact: 0".
  public var defaults: String { Self.grouped(routes.map { ($0.method, $0.defaultText) }) }
  /// The help of `prune help layer`: summary, values, defaults and aliases.
  public var help: String {
    var text = "\(summary). Values: \(accepted). Default: \(defaults)"
    if !aliases.isEmpty { text += ". Also spelled \(aliases.map { "--\($0)" }.joined(separator: ", "))" }
    return text
  }

  /// "v" when every method has the same text, else the most common one first, then the others with
  /// their methods: "0.01; admm: 0.1; exact: 0".
  static func grouped(_ items: [(PruningMethod, String)]) -> String {
    var groups: [(text: String, methods: [PruningMethod])] = []
    for (method, text) in items {
      if let g = groups.firstIndex(where: { $0.text == text }) {
        groups[g].methods.append(method)
      } else {
        groups.append((text, [method]))
      }
    }
    if groups.count == 1 { return groups[0].text }
    let common = groups.indices.max {
      groups[$0].methods.count < groups[$1].methods.count
        || (groups[$0].methods.count == groups[$1].methods.count && $0 > $1)
    }!
    var parts = [groups[common].text]
    for (g, group) in groups.enumerated() where g != common {
      parts.append("\(group.methods.map(\.rawValue).joined(separator: ", ")): \(group.text)")
    }
    return parts.joined(separator: "; ")
  }
}

extension MethodOption {
  /// What an option sets for one method: a property of `MethodOptions`, by a typed key path, with
  /// the values it accepts there.
  public struct Route: Sendable {
    public let method: PruningMethod
    /// The property set: `\MethodOptions.sparseGPT.blockSize`.
    public let keyPath: any PartialKeyPath<MethodOptions> & Sendable
    public let kind: Kind
    /// The default as help shows it, read from `MethodOptions()`.
    public let defaultText: String
    /// Parses `text` and sets the property; false when `text` is not an accepted value.
    let assign: @Sendable (inout MethodOptions, String) -> Bool
    /// Copies the property from the first options into the second (for the tests that check a
    /// route sets exactly its property).
    package let copy: @Sendable (MethodOptions, inout MethodOptions) -> Void

    init<V: Equatable>(
      _ method: PruningMethod, _ keyPath: WritableKeyPath<MethodOptions, V> & Sendable, kind: Kind,
      parse: @escaping @Sendable (String) -> V?, show: (V) -> String
    ) {
      self.method = method
      self.keyPath = keyPath
      self.kind = kind
      defaultText = show(MethodOptions()[keyPath: keyPath])
      assign = { options, text in
        guard let v = parse(text) else { return false }
        options[keyPath: keyPath] = v
        return true
      }
      copy = { from, to in to[keyPath: keyPath] = from[keyPath: keyPath] }
    }

    /// An integer in `range`.
    static func integer(
      _ method: PruningMethod, _ keyPath: WritableKeyPath<MethodOptions, Int> & Sendable, in range: ClosedRange<Int>
    ) -> Route {
      Route(
        method, keyPath, kind: .integer(range), parse: { Int($0).flatMap { range.contains($0) ? $0 : nil } },
        show: { "\($0)" })
    }

    /// A finite number in `range`.
    static func real(
      _ method: PruningMethod, _ keyPath: WritableKeyPath<MethodOptions, Double> & Sendable,
      in range: ClosedRange<Double>
    ) -> Route {
      Route(method, keyPath, kind: .real(range), parse: { Self.number($0, in: range) }, show: Kind.show)
    }

    /// A finite number in `range` for a property whose default is nil, meaning `unset`.
    static func real(
      _ method: PruningMethod, _ keyPath: WritableKeyPath<MethodOptions, Double?> & Sendable,
      in range: ClosedRange<Double>,
      unset: String
    ) -> Route {
      Route(
        method, keyPath, kind: .real(range), parse: { Self.number($0, in: range).map { Optional($0) } },
        show: { $0.map(Kind.show) ?? unset })
    }

    /// true or false (also yes/no and 1/0, in any case).
    static func bool(_ method: PruningMethod, _ keyPath: WritableKeyPath<MethodOptions, Bool> & Sendable) -> Route {
      Route(method, keyPath, kind: .bool, parse: Self.truth, show: { "\($0)" })
    }

    /// One of `cases`, by raw value.
    static func choice<E: RawRepresentable & Equatable & Sendable>(
      _ method: PruningMethod, _ keyPath: WritableKeyPath<MethodOptions, E> & Sendable, among cases: [E]
    ) -> Route where E.RawValue == String {
      Route(
        method, keyPath, kind: .choice(cases.map(\.rawValue)), parse: { text in cases.first { $0.rawValue == text } },
        show: \.rawValue)
    }

    /// One of the enumeration's cases, by raw value.
    static func choice<E: RawRepresentable & CaseIterable & Equatable & Sendable>(
      _ method: PruningMethod, _ keyPath: WritableKeyPath<MethodOptions, E> & Sendable
    ) -> Route where E.RawValue == String {
      choice(method, keyPath, among: Array(E.allCases))
    }

    static func number(_ text: String, in range: ClosedRange<Double>) -> Double? {
      guard let v = Double(text), v.isFinite, range.contains(v) else { return nil }
      return v
    }

    @Sendable static func truth(_ text: String) -> Bool? {
      switch text.lowercased() {
      case "true", "yes", "1": return true
      case "false", "no", "0": return false
      default: return nil
      }
    }
  }

  /// The kind of value an option takes.
  public enum Kind: Sendable, Equatable {
    case integer(ClosedRange<Int>)
    case real(ClosedRange<Double>)
    case choice([String])
    case bool

    /// What is accepted, for help and errors: "an integer in 1...1048576", "one of exact, reference".
    public var accepted: String {
      switch self {
      case .integer(let r):
        return r.upperBound == .max ? "an integer ≥ \(r.lowerBound)" : "an integer in \(r.lowerBound)...\(r.upperBound)"
      case .real(let r):
        return r.upperBound == .greatestFiniteMagnitude
          ? "a number ≥ \(Self.show(r.lowerBound))"
          : "a number in \(Self.show(r.lowerBound))...\(Self.show(r.upperBound))"
      case .choice(let values): return "one of \(values.joined(separator: ", "))"
      case .bool: return "true or false (also yes/no, 1/0)"
      }
    }

    /// A number as help writes it: integers without ".0", very small or large powers of ten as
    /// 1e-12 or 1e12, anything else as Swift prints it.
    static func show(_ v: Double) -> String {
      if v == v.rounded(), abs(v) < 1e7 { return "\(Int(v))" }
      if v > 0 {
        for e in [-15, -12, -9, -8, -6, -5, 7, 8, 9, 12, 15] where Double("1e\(e)") == v { return "1e\(e)" }
      }
      return "\(v)"
    }
  }
}

extension MethodOption {
  // The declarations, in the order `prune help layer` lists them.

  public static let blockSize = MethodOption(
    "blockSize", aliases: ["blocksize"],
    "columns per lazy batch (SparseGPT; N:M needs a multiple of M) or per block (APT; rounded down to a"
      + " multiple of M); sparsellm: its inner SparseGPT's",
    [
      .integer(.sparsegpt, \.sparseGPT.blockSize, in: 1...1 << 20), .integer(.apt, \.apt.blockSize, in: 1...1 << 20),
      .integer(.sparsellm, \.sparseGPT.blockSize, in: 1...1 << 20),
    ])

  public static let damping = MethodOption(
    "damping", aliases: ["percdamp"],
    "δ as a fraction of mean(diag G*) (0 = undamped): SparseGPT's and APT's H = G* + δI, the ridge of"
      + " refit, exact and fista's final refit; admm: ρ₀ as a fraction of mean(diag Ĝ) = 1; sparsellm: its"
      + " inner SparseGPT's; alps: δ of G* + δI before its normalisation",
    [
      .real(.sparsegpt, \.sparseGPT.damping, in: 0...1e6), .real(.apt, \.apt.damping, in: 0...1e6),
      .real(.admm, \.admm.damping, in: 0...1e6), .real(.refit, \.refit.damping, in: 0...1e6),
      .real(.fista, \.fista.damping, in: 0...1e6), .real(.exact, \.exact.damping, in: 0...1e6),
      .real(.sparsellm, \.sparseGPT.damping, in: 0...1e6), .real(.alps, \.alps.damping, in: 0...1e6),
    ])

  public static let countRule = MethodOption(
    "countRule",
    "how many weights a block prunes: exact totals, or the reference's ⌊s·m·B⌋ + 1 (+ ties) per block; sparsellm: its inner SparseGPT's",
    [.choice(.sparsegpt, \.sparseGPT.countRule), .choice(.sparsellm, \.sparseGPT.countRule)])

  public static let maskMethod = MethodOption(
    "maskMethod", "the mask to refit when --mask is not given",
    [.choice(.refit, \.refit.maskMethod, among: [.wanda, .magnitude])])

  public static let iterations = MethodOption(
    "iterations",
    "ADMM iterations; FISTA iterations per λ (sparsellm: its inner FISTA's); alps: the most ADMM iterations",
    [
      .integer(.admm, \.admm.iterations, in: 0...1_000_000), .integer(.fista, \.fista.iterations, in: 1...1_000_000),
      .integer(.sparsellm, \.fista.iterations, in: 1...1_000_000), .integer(.alps, \.alps.iterations, in: 0...1_000_000),
    ])

  public static let maskIterations = MethodOption(
    "maskIterations", "ADMM iterations that re-select the mask (0 = the mask of |V₀| once)",
    [.integer(.admm, \.admm.maskIterations, in: 0...1_000_000)])

  public static let rho = MethodOption(
    "rho", "ADMM penalty ρ (alps: its initial value)",
    [.real(.admm, \.admm.rho, in: 1e-12...1e12), .real(.alps, \.alps.rho, in: 1e-12...1e12)])

  public static let maskSchedule = MethodOption(
    "maskSchedule",
    "sparsity of ADMM's mask iterations: the paper's cubic ramp, or final at every step (the released code's unstructured path)",
    [.choice(.admm, \.admm.maskSchedule)])

  public static let lambdaSteps = MethodOption(
    "lambdaSteps", "λ bisection steps T",
    [.integer(.fista, \.fista.lambdaSteps, in: 1...1000), .integer(.sparsellm, \.fista.lambdaSteps, in: 1...1000)])

  public static let xi = MethodOption(
    "xi", "rounding-error ratio threshold ξ",
    [.real(.fista, \.fista.xi, in: 1e-9...(1 - 1e-9)), .real(.sparsellm, \.fista.xi, in: 1e-9...(1 - 1e-9))])

  public static let initialLambda = MethodOption(
    "initialLambda", aliases: ["lambda"], "the first λ of the bisection",
    [
      .real(
        .fista, \.fista.initialLambda, in: 0...Double.greatestFiniteMagnitude, unset: "the s-quantile of |Wᵢⱼ|·G*ⱼⱼ"),
      .real(
        .sparsellm, \.fista.initialLambda, in: 0...Double.greatestFiniteMagnitude, unset: "the s-quantile of |Wᵢⱼ|·G*ⱼⱼ"
      ),
    ])

  public static let tolerance = MethodOption(
    "tolerance", "relative iterate change that stops a FISTA run early (0 = run every iteration)",
    [.real(.fista, \.fista.tolerance, in: 0...1), .real(.sparsellm, \.fista.tolerance, in: 0...1)])

  public static let warmStart = MethodOption(
    "warmStart", "the weights the first FISTA run starts from",
    [.choice(.fista, \.fista.warmStart), .choice(.sparsellm, \.fista.warmStart)])

  public static let finalRefit = MethodOption(
    "finalRefit",
    "refit the kept weights exactly on FISTA's final mask, damped by --damping (sparsellm: by FISTA's default)",
    [.bool(.fista, \.fista.finalRefit), .bool(.sparsellm, \.fista.finalRefit)])

  public static let preconditioner = MethodOption(
    "preconditioner", "the coordinates of FISTA's lasso: Z itself, or Z scaled by 1/√diag G* (Jacobi)",
    [.choice(.fista, \.fista.preconditioner), .choice(.sparsellm, \.fista.preconditioner)])

  public static let debiasIterations = MethodOption(
    "debiasIterations",
    "FISTA with λ = 0 on each candidate's support before it is judged (0 = judge it as rounded, the paper)",
    [
      .integer(.fista, \.fista.debiasIterations, in: 0...1_000_000),
      .integer(.sparsellm, \.fista.debiasIterations, in: 0...1_000_000),
    ])

  public static let preset = MethodOption(
    "preset",
    "FISTA's configuration: PruneKit's (the defaults: SparseGPT warm start, Jacobi preconditioner, 20"
      + " debiasing iterations, final refit), or the paper's (Wanda warm start, none of those); options"
      + " given beside it override it",
    [.choice(.fista, \.fista.preset), .choice(.sparsellm, \.fista.preset)])

  public static let subset = MethodOption(
    "subset", "how APT chooses each N:M group's pruned subset: every subset's exact loss, or the lowest scores",
    [.choice(.apt, \.apt.subset)])

  public static let maxMasks = MethodOption(
    "maxMasks", "refuse problems with more admissible masks per row",
    [.integer(.exact, \.exact.maxMasks, in: 1...Int.max)])

  public static let inner = MethodOption(
    "inner", "the layer method inside SparseLLM's epochs and for attention", [.choice(.sparsellm, \.sparseLLM.inner)])

  public static let alpha = MethodOption(
    "alpha", "SparseLLM's α, weight of the linear fits",
    [.real(.sparsellm, \.sparseLLM.alpha, in: 1e-12...1e12, unset: alphaUnset)])

  public static let beta = MethodOption(
    "beta", "SparseLLM's β, weight of the output fit",
    [.real(.sparsellm, \.sparseLLM.beta, in: 1e-12...1e12, unset: "as α")])

  public static let gamma = MethodOption(
    "gamma", "SparseLLM's γ, weight of the activation consistency",
    [.real(.sparsellm, \.sparseLLM.gamma, in: 1e-12...1e12, unset: "as α")])

  public static let epochs = MethodOption(
    "epochs", "SparseLLM's alternating epochs (1 = layer-local pruning)",
    [.integer(.sparsellm, \.sparseLLM.epochs, in: 1...1000)])

  public static let remask = MethodOption(
    "remask", "re-select SparseLLM's FFN masks every epoch", [.bool(.sparsellm, \.sparseLLM.remask)])

  public static let keep = MethodOption(
    "keep", "the epoch whose FFN weights SparseLLM returns: the best output error, or the last",
    [.choice(.sparsellm, \.sparseLLM.keep)])

  public static let leastSquaresDamping = MethodOption(
    "leastSquaresDamping", aliases: ["ls-damping"],
    "δ of SparseLLM's W-step, a least-squares fit pulled toward the current weights, as a fraction of"
      + " mean(diag G) (its inner method's is --damping)",
    [.real(.sparsellm, \.sparseLLM.leastSquaresDamping, in: 0...1e6)])

  public static let activationSteps = MethodOption(
    "activationSteps", "Gauss–Newton steps per entry of GELU's z-step and SwiGLU's s-step",
    [.integer(.sparsellm, \.sparseLLM.activationSteps, in: 0...1000)])

  public static let refitIterations = MethodOption(
    "refitIterations", "conjugate-gradient steps per row of ALPS's refit on its final support (0 = no refit)",
    [.integer(.alps, \.alps.refitIterations, in: 0...1_000_000)])

  public static let refitTolerance = MethodOption(
    "refitTolerance", "relative residual ‖r_S‖/‖y_S‖ that ends a row's ALPS refit early (0 = every step)",
    [.real(.alps, \.alps.refitTolerance, in: 0...1)])

  /// What α = nil means, read from `SparseLLM.Options.weights(gated:)`.
  static var alphaUnset: String {
    let o = SparseLLM.Options()
    return
      "\(Kind.show(o.weights(gated: false).alpha)) for ReLU/GELU FFNs, \(Kind.show(o.weights(gated: true).alpha)) for SwiGLU"
  }

  /// Every option, in the order `prune help layer` lists them.
  public static let all: [MethodOption] = [
    blockSize, damping, countRule, maskMethod, iterations, maskIterations, rho, maskSchedule, lambdaSteps, xi,
    initialLambda, tolerance, warmStart, finalRefit, preconditioner, debiasIterations, preset,
    subset, maxMasks, inner, alpha, beta, gamma, epochs, remask,
    keep, leastSquaresDamping, activationSteps, refitIterations, refitTolerance,
  ]
}

extension MethodOption {
  // The refinements: options that run after the method (Pruner.swift's `prune`), declared once here
  // and kept out of `all`, whose options each set a method's own `Options`. They apply to every
  // method that `prune` runs alone; not to sparsellm, whose FFN layers are pruned together outside it.

  /// The methods a refinement applies to.
  static let refinable = PruningMethod.allCases.filter { $0 != .sparsellm }

  public static let refine = MethodOption(
    "refine", "what runs after the method: nothing, or SparseSwaps' optimal 1-swaps then a refit",
    refinable.map { .choice($0, \.refine) })

  public static let maxSwaps = MethodOption(
    "maxSwaps", "SparseSwaps' swaps per row at most (with --refine swaps)",
    refinable.map { .integer($0, \.swaps.maxSwaps, in: 1...1_000_000) })

  /// The refinements, in the order help lists them (after `all`).
  public static let refinements: [MethodOption] = [refine, maxSwaps]

  /// Every declared option: the methods' own (`all`), then the refinements.
  public static let declared: [MethodOption] = all + refinements
}
