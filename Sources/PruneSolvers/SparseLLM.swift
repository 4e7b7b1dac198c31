/// Minimises, over sparse feed-forward weights and auxiliary activations, the coordinated objective
///
///     ReLU/GELU FFN (OPT, GPT-2):  α‖z − (XW₁ᵀ + b₁)‖² + γ‖p − φ(z)‖² + β‖Y − (pW₂ᵀ + b₂)‖²
///     SwiGLU FFN (LLaMA):          α‖z − XW_upᵀ‖² + α‖s − XW_gateᵀ‖² + γ‖p − SiLU(s)⊙z‖² + β‖Y − pW_downᵀ‖²
///
/// subject to every W meeting the sparsity pattern, so that the pruned FFN reproduces the dense FFN's
/// output Y on its calibration input X (Bai et al., "SparseLLM: Towards Global Pruning of
/// Pre-trained Language Models", NeurIPS 2024, arXiv 2402.17946; Docs/methods/sparsellm.md). X is
/// `[tokens × d]` (one row per token), z, s, p are `[tokens × f]`, Y is `[tokens × d]`.
///
/// Each epoch e = 0 … epochs−1 (z, s, p start at their dense values, W at the dense weights):
///   1. W-step (e > 0), damped least squares pulled toward the current weights W°:
///        W₁ = argmin ‖(z − b₁) − XWᵀ‖² + δ‖W − W₁°‖²  ⇒  (G_X + δI)W₁ᵀ = Xᵀ(z − b₁) + δW₁°ᵀ
///        (gate likewise with s), W₂ from (G_p + δI)W₂ᵀ = pᵀ(Y − b₂) + δW₂°ᵀ, G_p = pᵀp.
///   2. prune-step: every W is pruned by the inner method against its own Gram, W₁ with G_X and W₂
///      with G_p. By Pythagoras, for the exact least-squares Wₗₛ and any Ŵ,
///        ‖z − ŴX‖² = ‖z − WₗₛX‖² + ‖(Wₗₛ − Ŵ)X‖²,
///      so the layer-local self-reconstruction problem of Wₗₛ *is* the masked subproblem.
///      Every call damps its own copy of the Gram: damping does not compound across epochs (the
///      reference damps its stored Hessian in place,
///      Docs/methods/sparsellm.md#the-authors-code-and-where-prunekit-differs).
///   3. p-step (exact): p = (βW₂ᵀW₂ + γI)⁻¹(βW₂ᵀ(Y − b₂) + γ·act), act = φ(z) or SiLU(s)⊙z.
///   4. z-step, elementwise with m = XŴ₁ᵀ + b₁:
///        ReLU (exact): z = the better of max((γp + αm)/(γ + α), 0) and min(m, 0)
///        GELU: safeguarded Gauss–Newton on α(z − m)² + γ(p − φ(z))² (below)
///        SwiGLU (exact, a quadratic in z): z = (αm + γσp)/(α + γσ²), σ = SiLU(s)
///   5. s-step (SwiGLU): safeguarded Gauss–Newton on α(s − m_g)² + γ(p − z·SiLU(s))² per entry.
///   Steps 3–5 are skipped in the last epoch: they cannot change the returned weights.
///
/// Safeguarded Gauss–Newton (GELU's z-step, SwiGLU's s-step): f(t) = α(t − m)² + γ(p − cφ(t))² is
/// not convex. Start from whichever of the current t and m has the lower f, then take
/// `activationSteps` Gauss–Newton steps t ← t − f′(t)/(2α + 2γc²φ′(t)²) (a positive curvature, so
/// always a descent direction), each halved up to 4 times until f decreases, else stop. f never
/// increases, so neither does the objective; each entry converges to a stationary point.
///
/// The returned weights are those of the epoch with the lowest FFN output error
/// ‖FFN_Ŵ(X) − Y‖² (`keep = .best`; epoch 0 is plain layer-local pruning, so the result is never
/// worse than it on the calibration data) or of the last epoch (`.last`, the reference).
///
/// Cost per epoch: two Cholesky solves of d and f (Double), the inner pruner on each weight, the
/// Gram pᵀp and four GEMMs of tokens × d × f; memory: z, p (and s) `[tokens × f]` plus
/// `chunkRows` rows of temporaries.
///
/// Corresponds to `SparseLLM` FFN pruning in BaiTheBest/SparseLLM `opt_main.py`/`llama_main.py`
/// with `model_utils.py` (mapped in Docs/methods/sparsellm.md); its faults are fixed (no in-place
/// damping, the W₂ step is the closed form, the z-step weights are α and γ, not α = γ).

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

public struct SparseLLM: Sendable {
  /// The elementwise activation φ of the FFN (SwiGLU uses `silu` on the gate).
  public enum Activation: String, Sendable, Codable, CaseIterable {
    case relu, gelu
    /// ½t(1 + tanh(√(2/π)(t + 0.044715t³))), GPT-2's `gelu_new`.
    case geluTanh = "gelu_tanh"
    case silu

    /// φ(t).
    @inline(__always) public func value(_ t: Double) -> Double {
      switch self {
      case .relu: return max(t, 0)
      case .gelu: return 0.5 * t * (1 + erf(t * 0.707_106_781_186_547_5))
      case .geluTanh: return 0.5 * t * (1 + tanh(0.797_884_560_802_865_4 * (t + 0.044715 * t * t * t)))
      case .silu: return t / (1 + exp(-t))
      }
    }

    /// (φ(t), φ′(t)), sharing the exponential.
    @inline(__always) public func valueAndDerivative(_ t: Double) -> (Double, Double) {
      if self == .silu {
        let s = 1 / (1 + exp(-t))
        return (t * s, s * (1 + t * (1 - s)))
      }
      return (value(t), derivative(t))
    }

    /// φ′(t) (ReLU: 1 for t > 0, else 0).
    @inline(__always) public func derivative(_ t: Double) -> Double {
      switch self {
      case .relu: return t > 0 ? 1 : 0
      case .gelu: return 0.5 * (1 + erf(t * 0.707_106_781_186_547_5)) + t * 0.398_942_280_401_432_7 * exp(-0.5 * t * t)
      case .geluTanh:
        let k = 0.797_884_560_802_865_4
        let th = tanh(k * (t + 0.044715 * t * t * t))
        return 0.5 * (1 + th) + 0.5 * t * (1 - th * th) * k * (1 + 3 * 0.044715 * t * t)
      case .silu:
        let s = 1 / (1 + exp(-t))
        return s * (1 + t * (1 - s))
      }
    }
  }

  /// One feed-forward block: y = act(x)·W_downᵀ + b_down with act(x) = φ(xW_upᵀ + b_up) (gate nil)
  /// or SiLU(xW_gateᵀ + b_gate) ⊙ (xW_upᵀ + b_up) (SwiGLU). Weights `[out × in]`.
  public struct FeedForward<T: KernelScalar>: Sendable, Equatable {
    /// W_up (OPT fc1, GPT-2 c_fc, LLaMA up_proj): `[f × d]`.
    public var up: Matrix<T>
    public var upBias: [T]?
    /// W_gate (LLaMA gate_proj) `[f × d]`; nil for a plain φ FFN.
    public var gate: Matrix<T>?
    public var gateBias: [T]?
    /// W_down (OPT fc2, GPT-2 mlp.c_proj, LLaMA down_proj): `[d × f]`.
    public var down: Matrix<T>
    public var downBias: [T]?
    /// φ of a plain FFN; ignored (SiLU) when `gate` is set.
    public var activation: Activation

    public init(
      up: Matrix<T>, upBias: [T]? = nil, gate: Matrix<T>? = nil, gateBias: [T]? = nil, down: Matrix<T>,
      downBias: [T]? = nil, activation: Activation
    ) {
      precondition(
        down.columns == up.rows, "FeedForward: down \(down.shapeDescription) does not read up \(up.shapeDescription)")
      precondition(
        gate == nil || (gate!.rows == up.rows && gate!.columns == up.columns),
        "FeedForward: gate and up differ in shape")
      precondition(upBias == nil || upBias!.count == up.rows, "FeedForward: up bias count")
      precondition(gateBias == nil || gateBias!.count == up.rows, "FeedForward: gate bias count")
      precondition(downBias == nil || downBias!.count == down.rows, "FeedForward: down bias count")
      self.up = up
      self.upBias = upBias
      self.gate = gate
      self.gateBias = gateBias
      self.down = down
      self.downBias = downBias
      self.activation = gate == nil ? activation : .silu
    }

    /// True for SwiGLU (LLaMA).
    public var isGated: Bool { gate != nil }

    /// The FFN's output on x `[tokens × d]`: `[tokens × d]`.
    public func output(_ x: Matrix<T>) -> Matrix<T> {
      matmul(hidden(x), down, transposeB: true).addingBias(downBias)
    }

    /// The input of W_down on x: `[tokens × f]`.
    public func hidden(_ x: Matrix<T>) -> Matrix<T> {
      var u = matmul(x, up, transposeB: true).addingBias(upBias)
      if let gate {
        let g = matmul(x, gate, transposeB: true).addingBias(gateBias)
        return SparseLLM.swiGLU(g, u)
      }
      return u.mapped(activation)
    }
  }

  /// The layer method that prunes each weight inside an epoch (and the attention layers in the
  /// model pipeline).
  public enum Inner: String, Sendable, CaseIterable {
    /// SparseGPT (the authors' choice).
    case sparsegpt
    /// FISTAPruner's lasso with rounding, with its own options.
    case fista

    public var method: PruningMethod { self == .sparsegpt ? .sparsegpt : .fista }
  }

  /// Which epoch's weights are returned.
  public enum Keep: String, Sendable, CaseIterable {
    /// The epoch with the lowest FFN output error on the calibration data (default).
    case best
    /// The last epoch's (the reference code).
    case last
  }

  /// The options and their defaults (`MethodOption` declares their command-line names; the inner
  /// method's options are its own, in `innerOptions`).
  public struct Options: Sendable, Equatable {
    /// α, the weight of the linear fits z ≈ XW_upᵀ + b (and s ≈ XW_gateᵀ). nil: 0.1 for ReLU/GELU
    /// FFNs, 5 for SwiGLU, the authors' values. Within each family α = β = γ, and then only the
    /// ratios matter to every closed form, so the two values give the same steps.
    public var alpha: Double? = nil
    /// β, the weight of the output fit Y ≈ pW_downᵀ + b. nil: as α.
    public var beta: Double? = nil
    /// γ, the weight of the activation consistency p ≈ act. nil: as α.
    public var gamma: Double? = nil
    /// Alternating epochs (the authors' `opt_epochs`, 4; they use 1 on LLaMA-2-7B layers 1, 30, 31,
    /// a model-specific choice not replicated). 1 = plain layer-local pruning of the FFN.
    public var epochs: Int = 4
    /// The inner pruner (SparseGPT, the authors'; or FISTA).
    public var inner: Inner = .sparsegpt
    /// Re-select masks every epoch (the authors'); false keeps epoch 0's masks and refits exactly
    /// (each epoch then cannot increase the objective).
    public var remask: Bool = true
    /// δ of the W-step's least squares as a fraction of mean(diag G): 0.01, as SparseGPT's damping
    /// (the inner method's own `damping` is a separate option). The damping pulls
    /// toward the current weights, not toward zero; an undamped fit (the reference's pinv) puts
    /// large weights on input directions with almost no variance (Refit.swift,
    /// Docs/results.md#lowest-layer-error-is-not-lowest-perplexity).
    public var leastSquaresDamping: Double = 0.01
    /// Gauss–Newton steps per entry of GELU's z-step and SwiGLU's s-step (5).
    public var activationSteps: Int = 5
    /// Which epoch's weights are returned (`best`).
    public var keep: Keep = .best
    /// Token rows processed at once (bounds the temporaries; results do not depend on it beyond
    /// the summation order of the Grams).
    public var chunkRows: Int = 4096
    /// Also measure the objective after each epoch's activation updates (a pass of three GEMMs;
    /// off by default, on in the tests that check they never increase it).
    public var traceActivationSteps: Bool = false

    public init() {}

    /// α, β, γ for an FFN: the given ones or the authors' defaults for its family.
    public func weights(gated: Bool) -> (alpha: Double, beta: Double, gamma: Double) {
      let d = gated ? 5.0 : 0.1
      return (alpha ?? d, beta ?? alpha ?? d, gamma ?? alpha ?? d)
    }
  }

  /// What the alternating scheme did.
  public struct Report: Sendable, Codable, Equatable {
    /// α, β, γ used.
    public var alpha: Double, beta: Double, gamma: Double
    /// The objective in order: per epoch after the prune-step, and, with `traceActivationSteps`,
    /// after the activation updates (p-, z- and s-steps; not in the last epoch).
    public var objectiveTrace: [Double]
    /// ‖FFN_Ŵ(X) − Y‖² after each epoch's prune-step.
    public var outputErrors: [Double]
    /// ‖Y‖² − the relative errors' denominator (Y including the output bias).
    public var targetEnergy: Double
    /// The epoch whose weights are returned.
    public var keptEpoch: Int
    /// The absolute damping δ of the inner pruner per epoch and layer ("up", "gate", "down").
    public var innerDamping: [[String: Double]]
    public var seconds: Double
    /// outputErrors[keptEpoch] / targetEnergy.
    public var relativeOutputError: Double { targetEnergy > 0 ? outputErrors[keptEpoch] / targetEnergy : 0 }
  }

  /// The pruned FFN: each weight's result (its report: error against the dense weight on this
  /// X, sparsity, the inner method's damping) and the scheme's report.
  public struct Result<T: KernelScalar>: Sendable {
    public var up: PruningResult<T>
    public var gate: PruningResult<T>?
    public var down: PruningResult<T>
    public var report: Report
    /// The pruned FFN (biases unchanged).
    public var feedForward: FeedForward<T>
  }

  public var options: Options
  /// Options of the inner method (SparseGPT's `blockSize` and `damping`, FISTA's …).
  public var innerOptions: MethodOptions

  public init(options: Options = Options(), innerOptions: MethodOptions = MethodOptions()) {
    self.options = options
    self.innerOptions = innerOptions
  }

  /// Prunes `ffn` to `pattern` on the calibration input x `[tokens × d]`. The target is the dense
  /// FFN's output on x unless `target` `[tokens × d]` is given.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func prune<T: KernelScalar>(
    _ ffn: FeedForward<T>, input x: Matrix<T>, target: Matrix<T>? = nil, pattern: SparsityPattern
  ) throws(PruningError) -> Result<T> {
    let start = ContinuousClock.now
    let o = options
    guard o.epochs >= 1, o.activationSteps >= 0, o.chunkRows >= 1, o.leastSquaresDamping >= 0 else {
      throw .invalidOption(
        name: "epochs", detail: "epochs and chunk rows must be ≥ 1, damping and activation steps ≥ 0")
    }
    let (alpha, beta, gamma) = o.weights(gated: ffn.isGated)
    guard alpha > 0, beta > 0, gamma > 0, alpha.isFinite, beta.isFinite, gamma.isFinite else {
      throw .invalidOption(
        name: "alpha", detail: "α, β, γ must be positive and finite (got \(alpha), \(beta), \(gamma))")
    }
    precondition(
      x.columns == ffn.up.columns, "SparseLLM: input \(x.shapeDescription) for up \(ffn.up.shapeDescription)")
    try pattern.check(columns: ffn.up.columns)
    try pattern.check(columns: ffn.down.columns)
    try Self.checkFinite(ffn, input: x, target: target)
    let n = x.rows
    let f = ffn.up.rows
    let y = target ?? ffn.output(x)
    precondition(
      y.rows == n && y.columns == ffn.down.rows,
      "SparseLLM: target \(y.shapeDescription) for \(n) tokens of \(ffn.down.rows)")
    if target == nil, let bad = NonFiniteSummary(of: y) {
      throw .invalidProblem(
        .nonFinite(tensor: "dense FFN output (overflowed)", row: bad.row, column: bad.column, value: bad.value))
    }
    let chunks = stride(from: 0, to: n, by: o.chunkRows).map { $0..<min(n, $0 + o.chunkRows) }
    let gated = ffn.isGated
    let phi = ffn.activation

    // Auxiliary variables at their dense values.
    var z = matmul(x, ffn.up, transposeB: true).addingBias(ffn.upBias)
    var s: Matrix<T>? = ffn.gate.map { matmul(x, $0, transposeB: true).addingBias(ffn.gateBias) }
    var p = ffn.hidden(x)
    let gramX = gram(x)
    let gramXDouble = gramX.converted(to: Double.self)
    let yMinusB = y.addingBias(ffn.downBias.map { $0.map { -$0 } })

    var current = ffn
    var best:
      (
        epoch: Int, error: Double, ffn: FeedForward<T>, up: PruningResult<T>, gate: PruningResult<T>?,
        down: PruningResult<T>
      )? = nil
    var trace: [Double] = []
    var outputErrors: [Double] = []
    var dampings: [[String: Double]] = []
    var masks: (up: Mask, gate: Mask?, down: Mask)? = nil
    var denseGramP: Matrix<T>? = nil
    // The largest extra damping a W-step's Cholesky needed, per layer (reported, never silent).
    var leastSquaresRetry: [String: Double] = [:]

    for epoch in 0..<o.epochs {
      var gramP = GramAccumulator<T>(features: f)
      for r in chunks { gramP.add(p.rows(r)) }
      let gp = gramP.gram
      if epoch == 0 { denseGramP = gp }

      // 1. W-step.
      var dense = current
      if epoch > 0 {
        let up = try Self.dampedLeastSquares(
          x, (z, ffn.upBias), gram: gramXDouble, toward: current.up, damping: o.leastSquaresDamping, chunks: chunks)
        dense.up = up.weight
        leastSquaresRetry["up", default: 0] = max(leastSquaresRetry["up", default: 0], up.retry)
        if let s {
          let gate = try Self.dampedLeastSquares(
            x, (s, ffn.gateBias), gram: gramXDouble, toward: current.gate!, damping: o.leastSquaresDamping,
            chunks: chunks)
          dense.gate = gate.weight
          leastSquaresRetry["gate", default: 0] = max(leastSquaresRetry["gate", default: 0], gate.retry)
        }
        let down = try Self.dampedLeastSquares(
          p, (yMinusB, nil), gram: gp.converted(to: Double.self), toward: current.down, damping: o.leastSquaresDamping,
          chunks: chunks)
        dense.down = down.weight
        leastSquaresRetry["down", default: 0] = max(leastSquaresRetry["down", default: 0], down.retry)
      }

      // 2. prune-step: each weight against its own Gram (a fresh copy is damped by the inner method).
      func pruneOne(_ w: Matrix<T>, _ g: Matrix<T>, _ mask: Mask?) throws(PruningError) -> PruningResult<T> {
        let problem: LayerProblem<T>
        do { problem = try LayerProblem(weight: w, gram: g, tokens: n) } catch {
          throw .nonFiniteResult(
            method: "sparsellm",
            detail:
              "epoch \(epoch): the W-step's weights or the activations' Gram are not a valid layer problem (\(error.message))"
          )
        }
        if let mask { return try Refit(options: .exact).refit(problem, mask: mask, pattern: pattern) }
        return try PruneSolvers.prune(problem, method: o.inner.method, pattern: pattern, options: innerOptions)
      }
      let upResult = try pruneOne(dense.up, gramX, masks?.up)
      var gateResult: PruningResult<T>? = nil
      if let g = dense.gate { gateResult = try pruneOne(g, gramX, masks?.gate) }
      let downResult = try pruneOne(dense.down, gp, masks?.down)
      if !o.remask && masks == nil { masks = (upResult.mask, gateResult?.mask, downResult.mask) }
      current.up = upResult.weight
      current.gate = gateResult?.weight
      current.down = downResult.weight
      var damping = ["up": upResult.report.damping ?? 0, "down": downResult.report.damping ?? 0]
      if let gateResult { damping["gate"] = gateResult.report.damping ?? 0 }
      dampings.append(damping)

      let (value, error) = evaluate(current, x, yMinusB, z, s, p, alpha, beta, gamma, chunks)
      outputErrors.append(error)
      if best == nil || o.keep == .last || error < best!.error {
        best = (epoch, error, current, upResult, gateResult, downResult)
      }
      trace.append(value)
      guard epoch < o.epochs - 1 else { break }

      // 3. p-step: p = act + β·e·(γI + βW₂W₂ᵀ)⁻¹W₂ with e = (Y − b₂) − act·W₂ᵀ (`activationFit`).
      let inverse = try Self.activationFitInverse(down: current.down, beta: beta, gamma: gamma).converted(to: T.self)
      for r in chunks {
        let act: Matrix<T> = gated ? Self.swiGLU(s!.rows(r), z.rows(r)) : z.rows(r).mapped(phi)
        p.setRows(
          r, Self.activationFit(down: current.down, target: yMinusB.rows(r), act: act, beta: beta, inverse: inverse))
      }

      // 4. z-step (and 5. s-step).
      let steps = o.activationSteps
      for r in chunks {
        let xr = x.rows(r)
        let m = matmul(xr, current.up, transposeB: true).addingBias(ffn.upBias)
        var zr = z.rows(r)
        let pr = p.rows(r)
        if let sAll = s {
          updateEach(&zr, m, pr, sAll.rows(r)) { _, m, p, s in
            T(
              Self.gatedUpStep(
                m: Double(m), p: Double(p), sigma: Activation.silu.value(Double(s)), alpha: alpha, gamma: gamma))
          }
        } else {
          updateEach(&zr, m, pr) { z, m, p, _ in
            T(
              Self.activationStep(
                current: Double(z), m: Double(m), p: Double(p), scale: 1, activation: phi, alpha: alpha, gamma: gamma,
                steps: steps))
          }
        }
        z.setRows(r, zr)
      }
      if s != nil {
        for r in chunks {
          let mg = matmul(x.rows(r), current.gate!, transposeB: true).addingBias(ffn.gateBias)
          var sr = s!.rows(r)
          let pr = p.rows(r)
          let zr = z.rows(r)
          updateEach(&sr, mg, pr, zr) { s, m, p, z in
            T(
              Self.activationStep(
                current: Double(s), m: Double(m), p: Double(p), scale: Double(z), activation: .silu, alpha: alpha,
                gamma: gamma, steps: steps))
          }
          s!.setRows(r, sr)
        }
      }
      if o.traceActivationSteps {
        trace.append(evaluate(current, x, yMinusB, z, s, p, alpha, beta, gamma, chunks).objective)
      }
    }

    let kept = best!
    let returned: [(String, Matrix<T>?)] = [("up", kept.ffn.up), ("gate", kept.ffn.gate), ("down", kept.ffn.down)]
    for (name, w) in returned {
      if let w, let bad = NonFiniteSummary(of: w) {
        throw .nonFiniteResult(
          method: "sparsellm",
          detail: "\(bad.count) pruned \(name) weights are not finite (first at [\(bad.row), \(bad.column)])")
      }
    }
    var energy = 0.0
    y.withUnsafeBufferPointer { py in for v in py { energy += Double(v) * Double(v) } }
    let report = Report(
      alpha: alpha, beta: beta, gamma: gamma, objectiveTrace: trace, outputErrors: outputErrors, targetEnergy: energy,
      keptEpoch: kept.epoch, innerDamping: dampings, seconds: secondsSince(start))
    // Each layer's own report, measured against the dense weight on its dense input (up, gate: G_X;
    // down: the dense p's Gram), with the scheme's figures in its metrics.
    let targetEnergy = energy
    func layerResult(_ r: PruningResult<T>, dense: Matrix<T>, gram g: Matrix<T>, layer: String) -> PruningResult<T> {
      var out = r
      if let retry = leastSquaresRetry[layer], retry > 0 {
        out.report.metrics["ls_damping_retry"] = retry
        out.report.notes.append("a W-step's system was not positive definite and was damped by up to \(retry) more")
      }
      // The dense weight and a Gram of finite inputs always make a valid problem; if not, the
      // inner method's own error is kept.
      if let problem = try? LayerProblem(weight: dense, gram: g, tokens: n) {
        let e = problem.error(of: r.weight)
        let energy = problem.denseEnergy
        out.report.error = e
        out.report.relativeError = energy > 0 ? e / energy : 0
      }
      out.report.method = "sparsellm"
      out.report.objectiveTrace = trace
      out.report.iterations = kept.epoch + 1
      out.report.seconds = report.seconds
      out.report.metrics["ffn_relative_output_error"] = report.relativeOutputError
      out.report.metrics["ffn_output_error"] = report.outputErrors[kept.epoch]
      // Epoch 0 is plain layer-local pruning by the inner method: the baseline the scheme improves.
      out.report.metrics["ffn_relative_output_error_epoch0"] =
        targetEnergy > 0 ? report.outputErrors[0] / targetEnergy : 0
      out.report.metrics["kept_epoch"] = Double(kept.epoch)
      out.report.options = [
        "inner": o.inner.rawValue, "alpha": "\(alpha)", "beta": "\(beta)", "gamma": "\(gamma)", "epochs": "\(o.epochs)",
        "remask": "\(o.remask)", "keep": o.keep.rawValue, "least_squares_damping": "\(o.leastSquaresDamping)",
        "activation_steps": "\(o.activationSteps)",
      ]
      return out
    }
    return Result(
      up: layerResult(kept.up, dense: ffn.up, gram: gramX, layer: "up"),
      gate: kept.gate.map { layerResult($0, dense: ffn.gate!, gram: gramX, layer: "gate") },
      down: layerResult(kept.down, dense: ffn.down, gram: denseGramP!, layer: "down"),
      report: report, feedForward: kept.ffn)
  }

  /// Rejects NaN or Inf in the FFN's weights, biases, calibration input or target, naming the
  /// tensor and the first bad entry (`PruningError.invalidProblem(.nonFinite)`).
  static func checkFinite<T: KernelScalar>(_ ffn: FeedForward<T>, input x: Matrix<T>, target: Matrix<T>?)
    throws(PruningError)
  {
    var tensors: [(String, Matrix<T>)] = [("inputs", x), ("up", ffn.up), ("down", ffn.down)]
    if let g = ffn.gate { tensors.append(("gate", g)) }
    if let t = target { tensors.append(("target", t)) }
    for (name, bias) in [("up_bias", ffn.upBias), ("gate_bias", ffn.gateBias), ("down_bias", ffn.downBias)] {
      if let bias { tensors.append((name, Matrix(rows: 1, columns: bias.count, elements: bias))) }
    }
    for (name, m) in tensors {
      if let bad = NonFiniteSummary(of: m) {
        throw .invalidProblem(.nonFinite(tensor: name, row: bad.row, column: bad.column, value: bad.value))
      }
    }
  }

  // MARK: - The closed forms (static, so that tests check each one against a direct minimisation)

  /// argmin_W ‖B − AWᵀ‖² + δ‖W − W°‖² with δ = `damping`·mean(diag G), G = AᵀA given in Double,
  /// B = target − bias: (G + δI)Wᵀ = Aᵀ(B) + δW°ᵀ. Returns W `[outputs × inputs]`.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public static func leastSquares<T: KernelScalar>(
    _ a: Matrix<T>, _ target: (Matrix<T>, [T]?), gram g: Matrix<Double>, toward w0: Matrix<T>, damping: Double,
    chunks: [Range<Int>]? = nil
  ) throws(PruningError) -> Matrix<T> {
    try dampedLeastSquares(a, target, gram: g, toward: w0, damping: damping, chunks: chunks).weight
  }

  /// `leastSquares`, with the extra damping its Cholesky needed (0 when none).
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  static func dampedLeastSquares<T: KernelScalar>(
    _ a: Matrix<T>, _ target: (Matrix<T>, [T]?), gram g: Matrix<Double>, toward w0: Matrix<T>, damping: Double,
    chunks: [Range<Int>]? = nil
  ) throws(PruningError) -> (weight: Matrix<T>, retry: Double) {
    let (b, bias) = target
    let parts = chunks ?? [0..<a.rows]
    var rhs = Matrix<T>(rows: a.columns, columns: b.columns)
    for r in parts {
      let br = b.rows(r).addingBias(bias.map { $0.map { -$0 } })
      gemm(a.rows(r), br, into: &rhs, transposeA: true, beta: 1)  // Aᵀ(B − bias)
    }
    var h = g
    let delta = damping * meanDiagonal(g)
    var right = rhs.converted(to: Double.self)
    if delta > 0 {
      for i in 0..<h.rows { h[i, i] += delta }
      for i in 0..<right.rows { for j in 0..<right.columns { right[i, j] += delta * Double(w0[j, i]) } }
    }
    let factor: CholeskyFactorization<Double>
    do { factor = try cholesky(h, damping: .retry) } catch {
      throw .factorisationFailed(method: "sparsellm W-step", error)
    }
    return (choleskySolve(factor, right).transposed().converted(to: T.self), factor.addedDamping)
  }

  /// ReLU z-step: argmin_z γ(p − max(z, 0))² + α(z − m)², exactly: the better of the best z ≥ 0,
  /// max((γp + αm)/(γ + α), 0), and the best z ≤ 0, min(m, 0) (ties → the first).
  @inline(__always)
  public static func reluStep(m: Double, p: Double, alpha: Double, gamma: Double) -> Double {
    let plus = max((gamma * p + alpha * m) / (gamma + alpha), 0)
    let minus = min(m, 0)
    func f(_ t: Double) -> Double { gamma * (p - max(t, 0)) * (p - max(t, 0)) + alpha * (t - m) * (t - m) }
    return f(plus) <= f(minus) ? plus : minus
  }

  /// SwiGLU up-value step: argmin_z α(z − m)² + γ(p − σz)², a quadratic: z = (αm + γσp)/(α + γσ²).
  @inline(__always)
  public static func gatedUpStep(m: Double, p: Double, sigma: Double, alpha: Double, gamma: Double) -> Double {
    (alpha * m + gamma * sigma * p) / (alpha + gamma * sigma * sigma)
  }

  /// One entry of a z- or s-step: decreases f(t) = α(t − m)² + γ(p − c·φ(t))² from `current`
  /// (exactly minimised for ReLU with c = 1). Never returns a t with f(t) > f(current).
  @inline(__always)
  public static func activationStep(
    current: Double, m: Double, p: Double, scale c: Double, activation: Activation, alpha: Double, gamma: Double,
    steps: Int
  ) -> Double {
    if activation == .relu && c == 1 {
      let t = reluStep(m: m, p: p, alpha: alpha, gamma: gamma)
      return objective1D(t, m: m, p: p, c: c, activation, alpha, gamma)
        <= objective1D(current, m: m, p: p, c: c, activation, alpha, gamma) ? t : current
    }
    var t = current
    var ft = objective1D(t, m: m, p: p, c: c, activation, alpha, gamma)
    let fm = objective1D(m, m: m, p: p, c: c, activation, alpha, gamma)
    if fm < ft {
      t = m
      ft = fm
    }
    for _ in 0..<steps {
      let (value, slope) = activation.valueAndDerivative(t)
      let r = p - c * value
      let d = c * slope
      let gradient = 2 * alpha * (t - m) - 2 * gamma * d * r
      let curvature = 2 * alpha + 2 * gamma * d * d
      var step = gradient / curvature
      var accepted = false
      for _ in 0..<5 {
        let candidate = t - step
        let fc = objective1D(candidate, m: m, p: p, c: c, activation, alpha, gamma)
        if fc < ft {
          t = candidate
          ft = fc
          accepted = true
          break
        }
        step *= 0.5
      }
      // Stop once the step is below the precision the variables are stored in (Float: 6e-8).
      if !accepted || step.magnitude <= 1e-8 * (1 + t.magnitude) { break }
    }
    return t
  }

  /// f(t) = α(t − m)² + γ(p − c·φ(t))².
  @inline(__always)
  public static func objective1D(
    _ t: Double, m: Double, p: Double, c: Double, _ activation: Activation, _ alpha: Double, _ gamma: Double
  ) -> Double {
    let r = p - c * activation.value(t)
    return alpha * (t - m) * (t - m) + gamma * r * r
  }

  /// The p-step's small inverse (γI + βWWᵀ)⁻¹ `[d × d]` for W_down `[d × f]`, in Double.
  public static func activationFitInverse<T: KernelScalar>(down: Matrix<T>, beta: Double, gamma: Double)
    throws(PruningError) -> Matrix<Double>
  {
    let d = down.rows
    var a = gram(down.transposed().converted(to: Double.self))  // WWᵀ
    for i in 0..<d { for j in 0..<d { a[i, j] *= beta } }
    for i in 0..<d { a[i, i] += gamma }
    let factor: CholeskyFactorization<Double>
    do { factor = try cholesky(a, damping: .retry) } catch {
      throw .factorisationFailed(method: "sparsellm p-step", error)
    }
    return spdInverse(factor)
  }

  /// The p-step, the exact minimiser of γ‖p − act‖² + β‖(Y − b) − pWᵀ‖² over p `[tokens × f]`.
  /// Its normal equations, row by row, are p(βWᵀW + γI) = β(Y − b)W + γ·act; subtracting
  /// act(βWᵀW + γI) gives (p − act)(βWᵀW + γI) = β·e·W with the output residual
  /// e = (Y − b) − act·Wᵀ, and the push-through identity Wᵀ(γI + βWWᵀ)⁻¹ = (γI + βWᵀW)⁻¹Wᵀ gives
  ///
  ///     p = act + β·e·(γI + βWWᵀ)⁻¹·W,
  ///
  /// which needs only the d × d inverse (`activationFitInverse`) and costs 2·tokens·d·f + tokens·d²
  /// instead of tokens·f² for the f × f system.
  public static func activationFit<T: KernelScalar>(
    down: Matrix<T>, target yMinusB: Matrix<T>, act: Matrix<T>, beta: Double, inverse: Matrix<T>
  ) -> Matrix<T> {
    var e = yMinusB
    gemm(act, down, into: &e, transposeB: true, alpha: -1, beta: 1)  // e = (Y − b) − act·Wᵀ
    let scaled = matmul(e, inverse)  // e(γI + βWWᵀ)⁻¹
    var p = act
    gemm(scaled, down, into: &p, alpha: T(beta), beta: 1)  // act + β·(…)·W
    return p
  }

  /// The coordinated objective for weights `w` and variables z, s, p, and the FFN's output error
  /// ‖FFN_w(X) − Y‖², in one pass (they share XW_upᵀ and XW_gateᵀ; sums in Double).
  func evaluate<T: KernelScalar>(
    _ w: FeedForward<T>, _ x: Matrix<T>, _ yMinusB: Matrix<T>, _ z: Matrix<T>, _ s: Matrix<T>?, _ p: Matrix<T>,
    _ alpha: Double, _ beta: Double, _ gamma: Double, _ chunks: [Range<Int>]
  ) -> (objective: Double, outputError: Double) {
    var total = 0.0
    var output = 0.0
    for r in chunks {
      let xr = x.rows(r)
      let zr = z.rows(r)
      let pr = p.rows(r)
      let yr = yMinusB.rows(r)
      let mUp = matmul(xr, w.up, transposeB: true).addingBias(w.upBias)
      total += alpha * squaredDistance(zr, mUp)
      let act: Matrix<T>
      let hidden: Matrix<T>
      if let s {
        let sr = s.rows(r)
        let mGate = matmul(xr, w.gate!, transposeB: true).addingBias(w.gateBias)
        total += alpha * squaredDistance(sr, mGate)
        act = Self.swiGLU(sr, zr)
        hidden = Self.swiGLU(mGate, mUp)
      } else {
        act = zr.mapped(w.activation)
        hidden = mUp.mapped(w.activation)
      }
      total += gamma * squaredDistance(pr, act)
      total += beta * squaredDistance(yr, matmul(pr, w.down, transposeB: true))
      output += squaredDistance(yr, matmul(hidden, w.down, transposeB: true))
    }
    return (total, output)
  }

  /// SiLU(s) ⊙ z.
  static func swiGLU<T: KernelScalar>(_ s: Matrix<T>, _ z: Matrix<T>) -> Matrix<T> {
    var out = z
    updateEach(&out, s, s) { zv, sv, _, _ in T(Activation.silu.value(Double(sv)) * Double(zv)) }
    return out
  }
}

/// Σ (aᵢ − bᵢ)² in Double.
func squaredDistance<T: KernelScalar>(_ a: Matrix<T>, _ b: Matrix<T>) -> Double {
  precondition(
    a.rows == b.rows && a.columns == b.columns, "squaredDistance: \(a.shapeDescription) vs \(b.shapeDescription)")
  var s = 0.0
  a.withUnsafeBufferPointer { pa in
    b.withUnsafeBufferPointer { pb in
      for i in 0..<pa.count {
        let d = Double(pa[i]) - Double(pb[i])
        s += d * d
      }
    }
  }
  return s
}

extension Matrix {
  /// Rows `r` as a new matrix (self when r covers every row).
  func rows(_ r: Range<Int>) -> Matrix {
    r == 0..<rows ? self : submatrix(rows: r, columns: 0..<columns)
  }

  /// Overwrites rows r.lowerBound… with `block`'s rows.
  mutating func setRows(_ r: Range<Int>, _ block: Matrix) {
    precondition(
      block.rows == r.count && block.columns == columns,
      "setRows: \(block.shapeDescription) into \(r) of \(shapeDescription)")
    let width = columns
    withUnsafeMutableBufferPointer { p in
      block.withUnsafeBufferPointer { q in
        (p.baseAddress! + r.lowerBound * width).update(from: q.baseAddress!, count: q.count)
      }
    }
  }

  /// self + 1·biasᵀ (every row plus `bias`); self when bias is nil.
  func addingBias(_ bias: [Scalar]?) -> Matrix {
    guard let bias else { return self }
    precondition(bias.count == columns, "addingBias: \(bias.count) values for \(shapeDescription)")
    var out = self
    let width = columns
    out.withUnsafeMutableBufferPointer { p in
      for i in 0..<rows { for j in 0..<width { p[i * width + j] += bias[j] } }
    }
    return out
  }

  /// φ applied to every entry (computed in Double).
  func mapped(_ phi: SparseLLM.Activation) -> Matrix {
    var out = self
    updateEach(&out, self, self) { v, _, _, _ in Scalar(phi.value(Double(v))) }
    return out
  }

  /// selfᵢ ← op(selfᵢ, otherᵢ) for every entry.
  mutating func combine(_ other: Matrix, _ op: (Scalar, Scalar) -> Scalar) {
    precondition(
      other.rows == rows && other.columns == columns, "combine: \(other.shapeDescription) vs \(shapeDescription)")
    withUnsafeMutableBufferPointer { p in
      other.withUnsafeBufferPointer { q in for i in 0..<p.count { p[i] = op(p[i], q[i]) } }
    }
  }
}

/// outᵢ ← f(outᵢ, aᵢ, bᵢ, cᵢ) for every entry (c = 0 when nil), in parallel over fixed chunks of
/// entries: every entry is computed alone, so the result does not depend on the thread count.
func updateEach<T: KernelScalar>(
  _ out: inout Matrix<T>, _ a: Matrix<T>, _ b: Matrix<T>, _ c: Matrix<T>? = nil,
  _ f: @escaping @Sendable (T, T, T, T) -> T
) {
  let count = out.rows * out.columns
  precondition(
    a.rows * a.columns == count && b.rows * b.columns == count && (c.map { $0.rows * $0.columns } ?? count) == count,
    "updateEach: shapes differ from \(out.shapeDescription)")
  let grain = 4096
  let cc = c ?? b
  let hasC = c != nil
  out.withUnsafeMutableBufferPointer { po in
    a.withUnsafeBufferPointer { pa in
      b.withUnsafeBufferPointer { pb in
        cc.withUnsafeBufferPointer { pc in
          guard let o = po.baseAddress, let aa = pa.baseAddress, let bb = pb.baseAddress, let c3 = pc.baseAddress else {
            return
          }
          let so = SendablePointer(o)
          let sa = SendableConstPointer(aa)
          let sb = SendableConstPointer(bb)
          let sc = SendableConstPointer(c3)
          Parallelism.forEachChunk(of: (count + grain - 1) / grain) { blocks in
            for i in (blocks.lowerBound * grain)..<min(count, blocks.upperBound * grain) {
              so.base[i] = f(so.base[i], sa.base[i], sb.base[i], hasC ? sc.base[i] : 0)
            }
          }
        }
      }
    }
  }
}
