import PruneSolvers
import PruneTestSupport
import Testing

/// A small, well-conditioned lasso: W 4 × 12, G from 200 tokens with feature scales in 0.5…2.
private func lassoProblem(seed: UInt64) -> LayerProblem<Double> {
  randomProblem(Double.self, rows: 4, columns: 12, tokens: 200, seed: seed, scales: 0.5...2).problem
}

/// F(Z) = ½tr(ZGZᵀ) − tr(ZCᵀ) + λ‖Z‖₁ (the constant ½tr(WGWᵀ) dropped).
private func lassoObjective(_ z: Matrix<Double>, g: Matrix<Double>, c: Matrix<Double>, lambda: Double) -> Double {
  let zg = matmul(z, g)
  var f = 0.0
  for idx in 0..<z.elements.count {
    f += 0.5 * z.elements[idx] * zg.elements[idx] - z.elements[idx] * c.elements[idx] + lambda * abs(z.elements[idx])
  }
  return f
}

@Suite("FISTA (FISTAPruner)")
struct FISTATests {
  // soft_τ(v) minimises ½(x − v)² + τ|x|: no point of a fine grid around it does better (the grid
  // step is 1e-3, so the grid minimum can only tie up to rounding: compare with 1e-12 slack).
  @Test("the prox is the minimiser of ½(x − v)² + τ|x|", arguments: [-3.0, -0.7, -0.2, 0, 0.15, 0.5, 2.5])
  func proxMinimises(_ v: Double) {
    for tau in [0.0, 0.1, 0.5, 1.0] {
      let x = FISTA.softThreshold(v, tau)
      let fx = 0.5 * (x - v) * (x - v) + tau * abs(x)
      for step in -4000...4000 {
        let y = Double(step) * 1e-3
        #expect(fx <= 0.5 * (y - v) * (y - v) + tau * abs(y) + 1e-12, "v \(v) τ \(tau) y \(y)")
      }
    }
  }

  // After many iterations the lasso optimality conditions hold: g = ZG − C satisfies
  // gᵢⱼ = −λ·sign(Zᵢⱼ) where Zᵢⱼ ≠ 0 and |gᵢⱼ| ≤ λ where Zᵢⱼ = 0. FISTA converges as O(1/k²), and
  // on this conditioning 5000 iterations bring the residual to ~1e-10 of max|C|; 1e-6 is the bound
  // of Docs/oracle.md#the-certificate-figure-by-figure.
  @Test("lasso KKT conditions after convergence", arguments: [UInt64(1), 2, 3])
  func kkt(seed: UInt64) {
    let p = lassoProblem(seed: seed)
    let c = matmul(p.weight, p.gram)
    let l = largestEigenvalueUpperBound(p.gram).upperBound
    let scale = c.maxMagnitude
    for lambda in [0.05 * scale, 0.3 * scale] {
      let z = FISTA.lasso(gram: p.gram, target: c, lambda: lambda, lipschitz: l, start: p.weight, iterations: 5000)
        .solution
      let g = matmul(z, p.gram)
      var zeros = 0
      for idx in 0..<z.elements.count {
        let gi = g.elements[idx] - c.elements[idx]
        let zi = z.elements[idx]
        if zi != 0 {
          #expect(abs(gi + lambda * (zi > 0 ? 1 : -1)) <= 1e-6 * scale, "entry \(idx): g \(gi) λ \(lambda)")
        } else {
          zeros += 1
          #expect(abs(gi) <= lambda + 1e-6 * scale, "entry \(idx): |g| \(abs(gi)) > λ \(lambda)")
        }
      }
      #expect(zeros > 0, "λ = \(lambda) should zero some entries")
    }
  }

  // G* = K = c·I: the rows decouple into scalar problems and the solution is soft_{λ/c}(W), which
  // FISTA at step 1/L = 1/c reaches in one step from any start; sparsity grows with λ.
  @Test("orthogonal design: the closed form soft_{λ/c}(W), sparsity monotone in λ")
  func orthogonalDesign() {
    var rng = SplitMix64(seed: 4)
    let w = Matrix<Double>.random(rows: 5, columns: 8, using: &rng)
    let c0 = 4.0
    let g = Matrix<Double>.identity(8).map { $0 * c0 }
    let target = matmul(w, g)
    var previousZeros = -1
    for lambda in [0.0, 0.4, 1.2, 2.0, 3.2, 4.0] {
      let z = FISTA.lasso(
        gram: g, target: target, lambda: lambda, lipschitz: c0, start: Matrix(rows: 5, columns: 8), iterations: 3
      ).solution
      for idx in 0..<40 {
        #expect(abs(z.elements[idx] - FISTA.softThreshold(w.elements[idx], lambda / c0)) <= 1e-15)
      }
      let zeros = z.elements.filter { $0 == 0 }.count
      #expect(zeros >= previousZeros)
      previousZeros = zeros
    }
  }

  // λ = 0 and X* = X: the objective is minimised by W itself, so W is a fixed point (the gradient
  // WG − WG is exactly zero), and any start converges to it.
  @Test("λ = 0 keeps W; any start converges to W")
  func lambdaZero() {
    let p = lassoProblem(seed: 5)
    let c = matmul(p.weight, p.gram)
    let l = largestEigenvalueUpperBound(p.gram).upperBound
    let fixed = FISTA.lasso(gram: p.gram, target: c, lambda: 0, lipschitz: l, start: p.weight, iterations: 10).solution
    #expect(fixed == p.weight)
    let fromZero = FISTA.lasso(
      gram: p.gram, target: c, lambda: 0, lipschitz: l, start: Matrix(rows: 4, columns: 12), iterations: 4000
    ).solution
    #expect(maxAbsDifference(fromZero, p.weight).value <= 1e-8 * p.weight.maxMagnitude)
  }

  // FISTA's guarantee F(Z_k) − F* ≤ 2L‖Z₀ − Z*‖²/(k+1)² (Beck & Teboulle 2009, Thm 4.4), checked at
  // every k ≤ 60 against F*, Z* from a 20000-iteration run; 1e-9 relative slack for rounding.
  @Test("the O(1/k²) convergence bound holds at every iteration")
  func convergenceBound() {
    let p = lassoProblem(seed: 6)
    let c = matmul(p.weight, p.gram)
    let l = largestEigenvalueUpperBound(p.gram).upperBound
    let lambda = 0.1 * c.maxMagnitude
    let start = Matrix<Double>(rows: 4, columns: 12)
    let star = FISTA.lasso(gram: p.gram, target: c, lambda: lambda, lipschitz: l, start: start, iterations: 20000)
      .solution
    let fStar = lassoObjective(star, g: p.gram, c: c, lambda: lambda)
    var distance = 0.0
    for idx in 0..<star.elements.count { distance += star.elements[idx] * star.elements[idx] }
    for k in 1...60 {
      let zk = FISTA.lasso(gram: p.gram, target: c, lambda: lambda, lipschitz: l, start: start, iterations: k).solution
      let gap = lassoObjective(zk, g: p.gram, c: c, lambda: lambda) - fStar
      let bound = 2 * l * distance / Double((k + 1) * (k + 1))
      #expect(gap <= bound + 1e-9 * abs(fStar), "k \(k): gap \(gap) bound \(bound)")
    }
  }

  // The fast `lasso` (blocked GEMM with FMAs, eight-lane prox, rows on threads) against
  // `lassoReference` (plain loops over the Gram in Double): same G, C, λ, start and K, with
  // tolerance 0 so both run exactly K iterations. For T = Float both solve the same Float data
  // (the reference reads it converted exactly to Double), so only the arithmetic differs.
  // Shapes: n = 13 and 67 exercise the scalar tail after the eight-lane loop; 9 × 67 is an
  // error-corrected problem (X* ≠ X, C = W·K); λ = 0.3·max|C| zeroes most entries, 0.02 a few.
  @Test(
    "lasso agrees with lassoReference within lassoReferenceTolerance",
    arguments: [(5, 13, false), (24, 40, false), (9, 67, true), (33, 100, false)], [UInt64(1), 2])
  func lassoMatchesReference(_ shape: (Int, Int, Bool), seed: UInt64) throws {
    let (m, n, corrected) = shape
    var rng = SplitMix64(seed: seed)
    let x = Matrix<Double>.random(rows: 4 * n, columns: n, using: &rng)
    let w = Matrix<Double>.random(rows: m, columns: n, using: &rng)
    let problem =
      corrected
      ? try LayerProblem(
        weight: w, inputs: x, prunedInputs: x.map { $0 + 0.1 * Double.random(in: -1...1, using: &rng) })
      : try LayerProblem(weight: w, inputs: x)
    let g = problem.gram
    let c = matmul(w, problem.crossGram ?? problem.gram)
    let l = largestEigenvalueUpperBound(g).upperBound
    expectLassoMatchesReference(Double.self, gram: g, target: c, start: w, lipschitz: l)
    expectLassoMatchesReference(Float.self, gram: g, target: c, start: w, lipschitz: l)
  }

  // The warm start is the first candidate of the best-so-far, so FISTAPruner can only improve on
  // it (the final error is re-measured in Double: 1e-9 relative slack).
  @Test(
    "the result is never worse than its warm start",
    arguments: [FISTA.WarmStart.wanda, .sparsegpt, .magnitude, .dense], testPatterns)
  func neverWorseThanWarmStart(_ warm: FISTA.WarmStart, _ pattern: SparsityPattern) throws {
    let (problem, _) = randomProblem(Double.self, rows: 8, columns: 24, seed: 7)
    let r = try FISTA(options: .init(warmStart: warm)).prune(problem, pattern: pattern)
    let warmError = try #require(r.report.metrics["warm_start_error"])
    #expect(r.report.error <= warmError * (1 + 1e-9))
    #expect(r.report.lambdaPath.count == 3)
    #expect(r.report.objectiveTrace.count == 3)
    if warm == .wanda, case .unstructured(_, .matrix) = pattern {
      let wanda = try Wanda().prune(problem, pattern: pattern)
      #expect(r.report.error <= wanda.report.error * (1 + 1e-9))
    }
  }

  // On correlated data the paper's FISTA beats its Wanda warm start outright, and the final refit
  // beats (or ties) the paper-mode result on the same mask.
  @Test(
    "FISTA improves on Wanda; the final refit improves on FISTA",
    arguments: [SparsityPattern.unstructured(0.5), .nOfM(n: 2, m: 4)])
  func improves(_ pattern: SparsityPattern) throws {
    let (problem, _) = randomProblem(Double.self, rows: 12, columns: 32, seed: 8, scales: 0.5...2)
    let wanda = try Wanda().prune(problem, pattern: pattern).report.error
    let paper = try FISTA(options: .paper).prune(problem, pattern: pattern)
    #expect(paper.report.error < wanda, "fista \(paper.report.error) wanda \(wanda)")
    var refit = FISTA.Options.paper
    refit.finalRefit = true
    refit.damping = 0
    let refitted = try FISTA(options: refit).prune(problem, pattern: pattern)
    #expect(refitted.mask == paper.mask)
    #expect(refitted.report.error <= paper.report.error * (1 + 1e-9))
  }

  // With error correction (X* ≠ X) the objective is ‖X*Ŵᵀ − XWᵀ‖²: the report's error equals the
  // one computed from the inputs directly.
  @Test("error-corrected problems: the reported error is the direct one")
  func errorCorrected() throws {
    var rng = SplitMix64(seed: 9)
    let x = Matrix<Double>.random(rows: 120, columns: 16, using: &rng)
    let xStar = x.map { $0 * 0.8 + 0.01 }
    let w = Matrix<Double>.random(rows: 6, columns: 16, using: &rng)
    let problem = try LayerProblem(weight: w, inputs: x, prunedInputs: xStar)
    let r = try FISTA().prune(problem, pattern: .unstructured(0.5))
    let direct = directError(w: w, wHat: r.weight, x: x, xStar: xStar)
    #expect(relativeDifference(r.report.error, direct) <= 1e-9)
    #expect(r.report.error <= (r.report.metrics["warm_start_error"] ?? 0) * (1 + 1e-9))
  }
}

/// How far `FISTA.lasso` in T may be from `FISTA.lassoReference`, relative to the scale of the
/// iterates (the larger of max|Z₀| and max|Z_K|): 8·√n·u_T. The two compute the same iterations
/// and differ only in rounding: the fast path sums Y·G in the blocked GEMM's order with fused
/// multiply-adds and multiplies by a rounded 1/L; the reference sums in index order and divides by
/// L. One iteration therefore moves an entry by the rounding error of a length-n dot product,
/// which for terms of mixed sign grows like √n·u rather than n·u (Higham & Mary, "A New Approach to
/// Probabilistic Rounding Error Analysis", SIAM J. Sci. Comput. 2019), and the iteration does not
/// amplify it much: the gradient step of length 1/L ≤ 1/λmax(G) and the prox are non-expansive,
/// and the momentum factor stays below 1. Measured on the cases of `lassoMatchesReference`: at
/// most 7.5·u in Double and 5.4·u in Float (n = 100), so the bound (29·u at n = 13, 80·u at
/// n = 100) leaves a margin of 10× or more. It is still tight enough to see a slip in the
/// algorithm: stopping the reference one iteration short moves entries by more than 30 times the
/// tolerance in Float and 10¹⁰ times in Double, and the test checks that this control lies
/// outside it (by more than 10×).
func lassoReferenceTolerance<T: KernelScalar>(_: T.Type, columns n: Int) -> Double {
  8 * Double(n).squareRoot() * Double(T.ulpOfOne)
}

/// Runs `lasso` in T and `lassoReference` on the same data (rounded to T, then read exactly in
/// Double) for two λ and K = 20, and checks them against `lassoReferenceTolerance`, with the
/// control that K − 1 reference iterations lie outside it.
private func expectLassoMatchesReference<T: KernelScalar>(
  _: T.Type, gram: Matrix<Double>, target: Matrix<Double>, start: Matrix<Double>, lipschitz l: Double,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let g = gram.converted(to: T.self)
  let c = target.converted(to: T.self)
  let z0 = start.converted(to: T.self)
  let gD = g.converted(to: Double.self)
  let cD = c.converted(to: Double.self)
  let z0D = z0.converted(to: Double.self)
  let k = 20
  for lambda in [0.02 * cD.maxMagnitude, 0.3 * cD.maxMagnitude] {
    let fast = FISTA.lasso(gram: g, target: c, lambda: lambda, lipschitz: l, start: z0, iterations: k)
    let reference = FISTA.lassoReference(gram: gD, target: cD, lambda: lambda, lipschitz: l, start: z0D, iterations: k)
    #expect(fast.iterations == k && reference.iterations == k, sourceLocation: sourceLocation)
    let scale = max(z0D.maxMagnitude, reference.solution.maxMagnitude)
    let tolerance = lassoReferenceTolerance(T.self, columns: g.columns) * scale
    let worst = maxAbsDifference(fast.solution, reference.solution)
    #expect(
      worst.value <= tolerance,
      "\(T.self) λ \(lambda): |lasso − lassoReference| = \(worst.value) at (\(worst.row), \(worst.column)) > \(tolerance)",
      sourceLocation: sourceLocation)
    let short = FISTA.lassoReference(gram: gD, target: cD, lambda: lambda, lipschitz: l, start: z0D, iterations: k - 1)
    #expect(maxAbsDifference(fast.solution, short.solution).value > 10 * tolerance, sourceLocation: sourceLocation)
  }
}

@Suite("FISTA warm starts")
struct FISTAWarmStartTests {
  // The dense warm start runs FISTA from W itself, the magnitude warm start from magnitude's pruned
  // W: the first λ step sees different starts, so the two runs must differ somewhere (they were
  // identical while the warm start was rounded before the first run).
  @Test("the dense warm start is not the magnitude warm start")
  func denseIsNotMagnitude() throws {
    let (problem, _) = randomProblem(Double.self, rows: 8, columns: 24, seed: 70, scales: 0.5...2)
    let dense = try FISTA(options: .init(warmStart: .dense)).prune(problem, pattern: .unstructured(0.5))
    let magnitude = try FISTA(options: .init(warmStart: .magnitude)).prune(problem, pattern: .unstructured(0.5))
    #expect(dense.report.objectiveTrace != magnitude.report.objectiveTrace)
    // Both start their best-so-far from the same candidate (dense W rounded = magnitude).
    #expect(dense.report.metrics["warm_start_error"] == magnitude.report.metrics["warm_start_error"])
  }
}

@Suite("FISTA: the prunekit preset")
struct FISTADefaultsTests {
  // Jacobi coordinates change the iteration, not the problem: run long enough, FISTA in V = Z·S⁻¹
  // (Ĝ = SG*S, thresholds λsⱼ/L̂) reaches the lasso minimiser FISTA in Z reaches. Columns scaled
  // over 0.05…5 make G* badly conditioned, as real layers' are. Both runs stop at a relative
  // iterate change of 1e-13; the minimiser is unique (G* is positive definite here), so they
  // agree to the accuracy of that stop, 1e-8 of max|Z| with a wide margin.
  @Test("Jacobi coordinates reach the same lasso minimiser")
  func jacobiSameMinimiser() throws {
    let (problem, _) = randomProblem(Double.self, rows: 6, columns: 20, seed: 81, scales: 0.05...5)
    let g = problem.gram
    let c = matmul(problem.weight, g)
    let lambda = 0.05 * c.maxMagnitude
    let plain = FISTA.lasso(
      gram: g, target: c, lambda: lambda, lipschitz: largestEigenvalueUpperBound(g).upperBound, start: problem.weight,
      iterations: 400_000, tolerance: 1e-13)
    let coordinates = LassoCoordinates(gram: g, target: c, preconditioner: .jacobi)
    let scaled = FISTA.lasso(
      gram: coordinates.gram, target: coordinates.target, lambda: lambda,
      lipschitz: largestEigenvalueUpperBound(coordinates.gram).upperBound, start: coordinates.fromWeights(problem.weight),
      iterations: 400_000, tolerance: 1e-13, penaltyWeights: coordinates.penaltyWeights)
    let z = coordinates.toWeights(scaled.solution)
    let gap = maxAbsDifference(z, plain.solution).value
    #expect(gap <= 1e-8 * plain.solution.maxMagnitude, "gap \(gap)")
    #expect(scaled.iterations < plain.iterations, "Jacobi \(scaled.iterations), plain \(plain.iterations) iterations")
  }

  // The fast lasso with per-column penalty weights against the plain-loop reference with the
  // same weights (the tolerance of `lassoMatchesReference`).
  @Test("the weighted lasso matches its reference")
  func weightedLassoMatchesReference() throws {
    let (problem, _) = randomProblem(Double.self, rows: 7, columns: 13, seed: 82, scales: 0.2...3)
    let coordinates = LassoCoordinates(gram: problem.gram, target: matmul(problem.weight, problem.gram), preconditioner: .jacobi)
    let l = largestEigenvalueUpperBound(coordinates.gram).upperBound
    let lambda = 0.1 * coordinates.target.maxMagnitude
    let start = coordinates.fromWeights(problem.weight)
    let weights = try #require(coordinates.penaltyWeights)
    let fast = FISTA.lasso(
      gram: coordinates.gram, target: coordinates.target, lambda: lambda, lipschitz: l, start: start, iterations: 20,
      penaltyWeights: weights)
    let reference = FISTA.lassoReference(
      gram: coordinates.gram, target: coordinates.target, lambda: lambda, lipschitz: l, start: start, iterations: 20,
      penaltyWeights: weights)
    let tolerance =
      lassoReferenceTolerance(Double.self, columns: 13) * max(start.maxMagnitude, reference.solution.maxMagnitude)
    #expect(maxAbsDifference(fast.solution, reference.solution).value <= tolerance)

    // The debiasing run: λ = 0 held on a support (half the entries, by |W|).
    let support = Mask.pruningLowest(problem.weight.map { $0.magnitude }, pattern: .unstructured(0.5))
    let held = FISTA.lasso(
      gram: coordinates.gram, target: coordinates.target, lambda: 0, lipschitz: l, start: start, iterations: 20,
      support: support)
    let heldReference = FISTA.lassoReference(
      gram: coordinates.gram, target: coordinates.target, lambda: 0, lipschitz: l, start: start, iterations: 20,
      support: support)
    #expect(maxAbsDifference(held.solution, heldReference.solution).value <= tolerance)
    for i in 0..<7 { for j in 0..<13 where !support[i, j] { #expect(held.solution[i, j] == 0) } }
  }

  // The preset starts from SparseGPT and keeps its (debiased) result as the first candidate, and
  // the refit is kept only when it lowers the error: it is never worse than SparseGPT (1e-9
  // relative slack for the re-measured Double error).
  @Test("the prunekit preset is never worse than SparseGPT", arguments: testPatterns)
  func neverWorseThanSparseGPT(_ pattern: SparsityPattern) throws {
    for seed in [83, 84, 85] as [UInt64] {
      let (problem, _) = randomProblem(Double.self, rows: 8, columns: 24, seed: seed, scales: 0.1...3)
      let sparseGPT = try SparseGPT().prune(problem, pattern: pattern)
      let r = try FISTA(options: .prunekit).prune(problem, pattern: pattern)
      #expect(r.report.error <= sparseGPT.report.error * (1 + 1e-9), "seed \(seed)")
      #expect(r.report.error <= (r.report.metrics["rounded_error"] ?? 0) * (1 + 1e-9))
      #expect(r.report.options["preconditioner"] == "jacobi" && r.report.options["warm_start"] == "sparsegpt")
      #expect(r.report.options["debias_iterations"] == "20" && r.report.options["final_refit"] == "true")
    }
  }

  // SparseGPT refuses 1:3 with its lazy batch of 128 (a group would straddle two batches); the
  // warm start rounds the batch down to 126, so the defaults prune every N:M, never worse than
  // that SparseGPT. At s = 0 neither the debiasing runs nor the refit may move W.
  @Test("the defaults prune 1:3 from SparseGPT with a batch of 126, and keep W at s = 0")
  func everyNOfMAndZero() throws {
    let (problem, _) = randomProblem(Double.self, rows: 6, columns: 24, seed: 86, scales: 0.2...3)
    #expect(throws: PruningError.self) { try SparseGPT().prune(problem, pattern: .nOfM(n: 1, m: 3)) }
    let sparseGPT = try SparseGPT(options: .init(blockSize: 126)).prune(problem, pattern: .nOfM(n: 1, m: 3))
    let r = try FISTA().prune(problem, pattern: .nOfM(n: 1, m: 3))
    #expect(r.report.error <= sparseGPT.report.error * (1 + 1e-9))
    #expect(FISTA.warmStartSparseGPT(.nOfM(n: 2, m: 4)).blockSize == 128)
    #expect(FISTA.warmStartSparseGPT(.nOfM(n: 1, m: 200)).blockSize == 200)
    let zero = try FISTA().prune(problem, pattern: .unstructured(0))
    #expect(zero.weight == problem.weight && zero.report.error == 0)
  }

  // A preset is one option that stands for several; the defaults are PruneKit's configuration.
  @Test("--preset prunekit is the defaults, --preset paper the paper's configuration")
  func presets() throws {
    #expect(FISTA.Options() == FISTA.Options.prunekit && FISTA.Options().preset == .prunekit)
    #expect(FISTA.Options().presetDescription == "prunekit")
    let prunekit = FISTA.Options.prunekit
    #expect(prunekit.warmStart == .sparsegpt && prunekit.finalRefit && prunekit.preconditioner == .jacobi)
    #expect(prunekit.debiasIterations == 20 && prunekit.iterations == 20 && prunekit.lambdaSteps == 3)
    var o = MethodOptions()
    try o.set("preset", "paper", for: .fista)
    #expect(o.fista == FISTA.Options.paper && o.fista.preset == .paper && o.fista.presetDescription == "paper")
    #expect(o.fista.warmStart == .wanda && !o.fista.finalRefit && o.fista.preconditioner == .none)
    #expect(o.fista.iterations == 20 && o.fista.lambdaSteps == 3 && o.fista.xi == 0.3 && o.fista.debiasIterations == 0)
    // Options given beside a preset override it; the report then says "custom".
    try o.set("warm-start", "sparsegpt", for: .fista)
    #expect(o.fista.warmStart == .sparsegpt && !o.fista.finalRefit && o.fista.presetDescription == "custom")
    try o.set("preset", "prunekit", for: .fista)
    #expect(o.fista == FISTA.Options())
  }
}
