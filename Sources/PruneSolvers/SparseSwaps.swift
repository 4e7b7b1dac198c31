/// Lowers the layer error E(Ŵ) = ‖X*Ŵᵀ − XWᵀ‖²_F of any method's result by optimal 1-swaps (prune
/// one kept weight of a row, keep one pruned weight of the same row), then refits the kept weights:
/// SparseSwaps (Zimmer, Roux, Wagner, Hendrych, Pokutta, "SparseSwaps: Tractable LLM Pruning Mask
/// Refinement at Scale", arXiv 2512.10922). `--refine swaps` runs it after any method.
///
/// Derivation (Docs/methods/swaps.md#derivation). E separates over the rows; for one row, with ŵ
/// the current row, w the dense row, G* = X*ᵀX*, K = XᵀX* and c = w·K (c = w·G without error
/// correction, where K = G* = G):
///
///     E(ŵ) = ŵG*ŵᵀ − 2cŵᵀ + wGwᵀ,        g = ŵG* − c      (½∇E, the gradient of ½ŵG*ŵᵀ − cŵᵀ)
///
/// (without error correction g = (ŵ − w)G). E is quadratic, so changing ŵ by d changes it by exactly
///
///     ΔE(d) = 2g·dᵀ + dG*dᵀ.
///
/// A 1-swap (p, q) prunes the kept p and keeps the pruned q. Weight rule: ŵ_p ← 0 and ŵ_q ← w_q (a
/// weight that comes back takes its dense value; every other weight stays as the method left it).
/// d has two entries, d_p = −ŵ_p and d_q = w_q, and the change is O(1) once g is known:
///
///     Δ(p, q) = A_p + B_q + 2·d_p·d_q·G*_pq,   A_p = 2g_p·d_p + d_p²G*_pp,   B_q = 2g_q·d_q + d_q²G*_qq.
///
/// A swap changes no row's count (nor, when q is taken in p's group of M, any N:M group's count),
/// so the result satisfies the same pattern as the input, whatever its comparison group.
///
/// Steps, for each row independently (rows in parallel, each on one thread):
///   1. g = ŵG* − c (one GEMM for all rows), E_row from g (no cancellation without correction:
///      E_row = (ŵ − w)·gᵀ)
///   2. (p, q) = argmin Δ over kept p and pruned q, q in p's group of M under N:M; ties go to the
///      lower p, then the lower q. Cost O(|S|·n) per swap (|S| kept entries; O(|S|·M) under N:M),
///      less where lower bounds rule a p out without changing the answer (`swapRow`)
///   3. if Δ < −ε·E_row (ε = `relativeGain`): swap; g ← g + d_p·G*[p, :] + d_q·G*[q, :] (O(n));
///      E_row ← E_row + Δ; repeat from 2, at most `maxSwaps` times. Otherwise the row is a 1-swap
///      local optimum under the weight rule, and stops
/// Then for the layer:
///   4. refit the kept weights on the new mask (Refit, δ = `damping`·mean(diag G*), Refit's 0.01)
///   5. return the lowest E (LayerProblem.error) of: the input, the swapped weights of step 3, the
///      refit of step 4; ties to the earlier. So E never increases, and a refit that does worse than
///      the swapped weights (the damping pulls the refit away from the exact least squares) is not
///      taken.
///
/// Defaults (`Options`). `maxSwaps` = 100 per row: a cap, not a tuning knob; rows stop earlier at a
/// local optimum (Docs/methods/swaps.md#options-and-defaults explains the choice: the paper presents
/// the method as essentially hyperparameter-free, an iteration cap being its one setting). ε = 1e-9:
/// far above the rounding of Δ (~1e-13 of E in Double), so no swap is taken on rounding noise and
/// the search cannot cycle. The refit damping is Refit's default (SparseGPT's `percdamp`).
///
/// `swapRowsReference` is steps 1–3 by brute force (every pair's row error recomputed from
/// scratch); SparseSwapsTests compares it with the fast path.
///
/// Precision: everything in Double (the Grams and weights converted once), whatever T is.
public struct SparseSwaps: Sendable {
  /// The options and their defaults.
  public struct Options: Sendable, Equatable {
    /// Swaps per row at most (100; see the type's documentation).
    public var maxSwaps: Int = 100
    /// δ of the final refit as a fraction of mean(diag G*): 0.01, Refit's default.
    public var damping: Double = Refit.Options().damping

    /// The defaults above, except for the values given.
    public init(maxSwaps: Int? = nil, damping: Double? = nil) {
      if let maxSwaps { self.maxSwaps = maxSwaps }
      if let damping { self.damping = damping }
    }
  }

  /// ε: a swap is taken only when it lowers the row's error by more than ε times that error.
  public static let relativeGain = 1e-9

  public var options: Options

  public init(options: Options = Options()) { self.options = options }

  /// Steps 1–5 on `result` (a method's result for `problem` and `pattern`).
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func refine<T: KernelScalar>(_ problem: LayerProblem<T>, result: PruningResult<T>, pattern: SparsityPattern)
    throws(PruningError) -> PruningResult<T>
  {
    let start = ContinuousClock.now
    precondition(options.maxSwaps >= 0, "SparseSwaps: maxSwaps must be ≥ 0")
    guard result.mask.rows == problem.outputs && result.mask.columns == problem.inputs else {
      throw .maskMismatch(
        detail: "mask [\(result.mask.rows) × \(result.mask.columns)] for a weight \(problem.weight.shapeDescription)")
    }
    let errorBefore = problem.error(of: result.weight)
    // Steps 1–3.
    let swapped = Self.swapRows(
      problem, weight: result.weight, mask: result.mask, groupSize: Self.groupSize(pattern), maxSwaps: options.maxSwaps)
    let swappedWeight = swapped.weight.converted(to: T.self)
    let errorSwapped = problem.error(of: swappedWeight)
    // Step 4.
    let refit = try Refit(options: .init(damping: options.damping)).refit(problem, mask: swapped.mask, pattern: pattern)
    let errorRefit = refit.report.error
    // Step 5: the lowest error, ties to the earlier candidate.
    var out = result
    var kept = "input"
    var error = errorBefore
    if errorSwapped < error {
      (out.weight, out.mask, kept, error) = (swappedWeight, swapped.mask, "swapped", errorSwapped)
    }
    if errorRefit < error {
      (out.weight, out.mask, kept, error) = (refit.weight, swapped.mask, "refit", errorRefit)
    }
    let total = swapped.swaps.reduce(0, +)
    let energy = problem.denseEnergy
    var r = result.report
    r.error = error
    r.relativeError = energy > 0 ? error / energy : (error == 0 ? 0 : .infinity)
    r.realisedSparsity = out.mask.sparsity
    r.options["refine"] = Refinement.swaps.rawValue
    r.options["max_swaps"] = "\(options.maxSwaps)"
    r.metrics["swaps"] = Double(total)
    r.metrics["swaps_rows_changed"] = Double(swapped.swaps.count(where: { $0 > 0 }))
    r.metrics["swaps_rows_at_limit"] = Double(
      swapped.swaps.count(where: { $0 >= options.maxSwaps && options.maxSwaps > 0 }))
    r.metrics["swaps_scan_fraction"] = swapped.candidates > 0 ? Double(swapped.scans) / Double(swapped.candidates) : 0
    r.metrics["swaps_error_before"] = errorBefore
    r.metrics["swaps_error_swapped"] = errorSwapped
    r.metrics["swaps_error_refit"] = errorRefit
    r.metrics["swaps_error_after"] = error
    r.metrics["swaps_seconds"] = secondsSince(start)
    if let retry = refit.report.dampingRetry, kept == "refit" { r.dampingRetry = max(r.dampingRetry ?? 0, retry) }
    r.notes.append(
      "refine=swaps: \(total) swaps in \(swapped.swaps.count(where: { $0 > 0 })) of \(problem.outputs) rows;"
        + " kept the \(kept) weights (error \(errorBefore) → \(error))")
    r.seconds += secondsSince(start)
    out.report = r
    return out
  }

  /// M for an N:M pattern (a swap stays in its group of M), nil for a ratio (anywhere in the row).
  static func groupSize(_ pattern: SparsityPattern) -> Int? {
    if case .nOfM(_, let m) = pattern { return m }
    return nil
  }

  /// The outcome of steps 1–3: the swapped weights, their mask and the swaps of each row.
  struct Swapped {
    var weight: Matrix<Double>
    var mask: Mask
    var swaps: [Int]
    /// Step 2's scans of a p's partners, all rows, and the scans without the bounds (every kept p at
    /// every step): what the bounds save. The reference counts neither.
    var scans = 0
    var candidates = 0
  }

  /// Steps 1–3, the fast path: g kept up to date, each candidate pair's change in O(1).
  /// `bounds: false` scans every p (the plain scan the bounds must agree with; tests only).
  static func swapRows<T: KernelScalar>(
    _ problem: LayerProblem<T>, weight: Matrix<T>, mask: Mask, groupSize: Int?, maxSwaps: Int, bounds: Bool = true
  ) -> Swapped {
    let m = problem.outputs
    let n = problem.inputs
    var wHat = weight.converted(to: Double.self)
    mask.apply(to: &wHat)
    var kept = mask.kept
    var swaps = [Int](repeating: 0, count: m)
    var scans = [(scans: Int, candidates: Int)](repeating: (0, 0), count: m)  // per row
    guard m > 0, n > 0, maxSwaps > 0 else { return Swapped(weight: wHat, mask: mask, swaps: swaps) }
    let w = problem.weight.converted(to: Double.self)
    let gStar = problem.gram.converted(to: Double.self)
    let c = problem.crossGram.map { matmul(w, $0.converted(to: Double.self)) } ?? matmul(w, gStar)  // C = W·K
    var g = matmul(wHat, gStar)  // step 1: g = ŴG* − C
    g.withUnsafeMutableBufferPointer { pg in
      c.withUnsafeBufferPointer { pc in for idx in 0..<pg.count { pg[idx] -= pc[idx] } }
    }
    // tr-terms of the error-corrected row error: w·G·wᵀ per row (0 without correction, unused).
    var denseRowEnergy = [Double](repeating: 0, count: m)
    if let denseGram = problem.denseGram {
      let wg = matmul(w, denseGram.converted(to: Double.self))
      for i in 0..<m {
        var s = 0.0
        for j in 0..<n { s += w[i, j] * wg[i, j] }
        denseRowEnergy[i] = s
      }
    }
    let corrected = problem.crossGram != nil
    w.withUnsafeBufferPointer { pw in
      gStar.withUnsafeBufferPointer { pG in
        c.withUnsafeBufferPointer { pc in
          wHat.withUnsafeMutableBufferPointer { ph in
            g.withUnsafeMutableBufferPointer { pg in
              kept.withUnsafeMutableBufferPointer { pk in
                swaps.withUnsafeMutableBufferPointer { ps in
                  scans.withUnsafeMutableBufferPointer { pn in
                    let wP = SendableConstPointer(pw.baseAddress!)
                    let gP = SendableConstPointer(pG.baseAddress!)
                    let cP = SendableConstPointer(pc.baseAddress!)
                    let hP = SendablePointer(ph.baseAddress!)
                    let gradP = SendablePointer(pg.baseAddress!)
                    let kP = SendablePointer(pk.baseAddress!)
                    let sP = SendablePointer(ps.baseAddress!)
                    let nP = SendablePointer(pn.baseAddress!)
                    let energies = denseRowEnergy
                    Parallelism.forEachChunk(of: m) { rows in
                      let scratch = UnsafeMutablePointer<Double>.allocate(capacity: 5 * n)
                      defer { scratch.deallocate() }
                      for i in rows {
                        let o = i * n
                        // E_row from g: (ŵ − w)·g without correction, ŵ·g − c·ŵ + wGwᵀ with it.
                        var e = 0.0
                        for j in 0..<n {
                          e +=
                            corrected
                            ? hP.base[o + j] * gradP.base[o + j] - cP.base[o + j] * hP.base[o + j]
                            : (hP.base[o + j] - wP.base[o + j]) * gradP.base[o + j]
                        }
                        if corrected { e += energies[i] }
                        let counts = swapRow(
                          w: wP.base + o, wHat: hP.base + o, g: gradP.base + o, kept: kP.base + o, gStar: gP.base,
                          n: n, groupSize: groupSize, bounds: bounds, error: e, maxSwaps: maxSwaps, scratch: scratch)
                        sP.base[i] = counts.swaps
                        nP.base[i] = (counts.scans, counts.candidates)
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return Swapped(
      weight: wHat, mask: Mask(rows: m, columns: n, kept: kept), swaps: swaps,
      scans: scans.reduce(0) { $0 + $1.scans }, candidates: scans.reduce(0) { $0 + $1.candidates })
  }

  /// Steps 2–3 on one row: best swaps until none gains more than ε·E_row or `maxSwaps` are done.
  /// Returns the number of swaps, of scans and of scans without the bounds. `scratch` holds 5n Doubles.
  ///
  /// The scan of step 2 is pruned by lower bounds, for per-matrix and per-row patterns (under N:M a
  /// p's scan is only its group of M, nothing to prune). Write m_p = min_q (B_q + 2·d_p·d_q·G*_pq),
  /// so the best swap starting from p changes E by A_p + m_p. A swap (P, Q) changes g, hence every
  /// B_q, by δB_q = 2·d_q·δg_q, and leaves every other term of m_p as it was except the candidates
  /// P (now pruned, a new q) and Q (now kept, gone). So with L_p ≤ m_p from the previous step,
  ///
  ///     m_p ≥ min(L_p + min_q δB_q, B_P + 2·d_p·d_P·G*_pP)       (q over the pruned, P excepted)
  ///
  /// is a lower bound after the swap, kept up to date in O(1) per p. A p whose A_p + L_p exceeds the
  /// best change found so far (plus a margin for rounding, `boundMargin`) cannot win and is not
  /// scanned; a scanned p's L_p becomes its exact m_p. The p of the lowest bound is scanned first, so
  /// that the best change is low early. The swap chosen is the plain scan's (lowest change, ties to
  /// the lower p, then the lower q; the values compared are computed by the same expressions), so the
  /// result is bit for bit the same: SparseSwapsTests compares both with `swapRowsReference`.
  static func swapRow(
    w: UnsafePointer<Double>, wHat: UnsafeMutablePointer<Double>, g: UnsafeMutablePointer<Double>,
    kept: UnsafeMutablePointer<Bool>, gStar: UnsafePointer<Double>, n: Int, groupSize: Int?, bounds: Bool,
    error: Double, maxSwaps: Int, scratch: UnsafeMutablePointer<Double>
  ) -> (swaps: Int, scans: Int, candidates: Int) {
    let b = scratch  // B_q for pruned q, +∞ for kept q (never chosen)
    let dq = scratch + n  // d_q = w_q for pruned q, 0 for kept q
    let values = scratch + 2 * n  // lowestPartner's pass
    let bound = scratch + 3 * n  // L_p for kept p (per-matrix patterns)
    let aOf = scratch + 4 * n  // A_p for kept p
    let bounded = bounds && groupSize == nil
    var scans = 0
    var candidates = 0
    let keptCount = (0..<n).count(where: { kept[$0] })  // constant: a swap keeps the row's count
    var e = error
    var done = 0
    var last: (p: Int, q: Int)? = nil  // the previous swap
    var largestB = 0.0  // max |B_q| seen in this row: the scale of the bounds' rounding
    while done < maxSwaps && e > 0 {
      candidates += keptCount
      var shift = Double.infinity  // min δB_q over the q pruned before and after the last swap
      for q in 0..<n {
        if kept[q] {
          b[q] = .infinity
          dq[q] = 0
        } else {
          let d = w[q]
          dq[q] = d
          let value = 2 * g[q] * d + d * d * gStar[q * n + q]
          if let last, q != last.p { shift = min(shift, value - b[q]) }
          b[q] = value
          largestB = max(largestB, abs(value))
        }
      }
      var best = 0.0
      var bestP = -1
      var bestQ = -1
      // Scans p: its exact m_p (its new bound) and, when A_p + m_p is the lowest so far, the swap.
      func scan(_ p: Int, _ a: Double) {
        let d = -wHat[p]
        let lo = groupSize.map { p / $0 * $0 } ?? 0
        let hi = groupSize.map { lo + $0 } ?? n
        let (v, q) = lowestPartner(b: b, d: dq, gRow: gStar + p * n, scale: 2 * d, range: lo..<hi, values: values)
        bound[p] = v
        guard q >= 0 else { return }
        let delta = a + v
        if bestP < 0 || delta < best || (delta == best && p < bestP) {
          best = delta
          bestP = p
          bestQ = q
        }
      }
      // A_p = 2·g_p·d_p + d_p²·G*_pp, the change of removing p, for every kept p.
      for p in 0..<n where kept[p] {
        let d = -wHat[p]
        aOf[p] = 2 * g[p] * d + d * d * gStar[p * n + p]
      }
      if bounded {
        // The bounds; the p of the lowest A_p + L_p first.
        var first = -1
        var firstBound = Double.infinity
        for p in 0..<n where kept[p] {
          let d = -wHat[p]
          if let last {
            if p == last.q {
              bound[p] = -.infinity
            } else if bound[p] != -.infinity {
              let fromP = b[last.p] + 2 * d * dq[last.p] * gStar[p * n + last.p]
              bound[p] = min(bound[p] + shift, fromP)
            }
          } else {
            bound[p] = -.infinity
          }
          if first < 0 || aOf[p] + bound[p] < firstBound {
            first = p
            firstBound = aOf[p] + bound[p]
          }
        }
        if first >= 0 {
          scan(first, aOf[first])
          scans += 1
        }
        for p in 0..<n where kept[p] && p != first {
          let lower = aOf[p] + bound[p]
          if bestP >= 0 && lower - boundMargin * (abs(aOf[p]) + abs(bound[p]) + abs(best) + largestB) > best {
            continue
          }
          scan(p, aOf[p])
          scans += 1
        }
      } else {
        for p in 0..<n where kept[p] { scan(p, aOf[p]) }
        scans += keptCount
      }
      guard bestP >= 0, best < -relativeGain * e else { break }
      let dP = -wHat[bestP]
      let dQ = w[bestQ]
      wHat[bestP] = 0
      wHat[bestQ] = dQ
      kept[bestP] = false
      kept[bestQ] = true
      let rowP = gStar + bestP * n
      let rowQ = gStar + bestQ * n
      for j in 0..<n { g[j] += dP * rowP[j] + dQ * rowQ[j] }
      e += best
      done += 1
      last = (bestP, bestQ)
    }
    return (done, scans, candidates)
  }

  /// The rounding allowance of the pruned scan, relative to the magnitudes a bound is made of: a bound
  /// is a sum of at most `maxSwaps` differences of B values, each exact to a few units in the last
  /// place (~1e-16 relative), so 1e-9 leaves a factor of 10⁴ even at 100 swaps per row and skips no p
  /// that could win or tie.
  static let boundMargin = 1e-9

  /// min over q in `range` of b_q + scale·d_q·gRow_q, and the q (ties: the lower q; −1 when every
  /// value is +∞, i.e. no pruned q). Two passes: the values and their minimum (a loop the compiler
  /// vectorises), then the first q holding the minimum, so the answer is the plain strict-< scan's.
  /// (A hand-written SIMD8 scan with per-lane indices was 40× slower: its lane subscripts were not
  /// inlined.) `values` holds at least `range.upperBound` Doubles.
  @inline(__always)
  static func lowestPartner(
    b: UnsafePointer<Double>, d: UnsafePointer<Double>, gRow: UnsafePointer<Double>, scale: Double, range: Range<Int>,
    values: UnsafeMutablePointer<Double>
  ) -> (Double, Int) {
    var best = Double.infinity
    for j in range {
      let v = b[j] + scale * d[j] * gRow[j]
      values[j] = v
      best = v < best ? v : best
    }
    if best == .infinity { return (best, -1) }
    for j in range where values[j] == best { return (best, j) }
    return (best, -1)
  }

  /// Steps 1–3 by brute force, the definition the fast path is tested against: for every row, every
  /// admissible pair's candidate row (the weight rule applied) has its error recomputed from
  /// scratch, E(v) = vG*vᵀ − 2c·vᵀ + wGwᵀ (= (v − w)G(v − w)ᵀ without correction) by plain loops;
  /// the lowest is taken (ties: lower p, then lower q) while it gains more than ε·E. O(n⁴) per swap:
  /// tiny problems only.
  static func swapRowsReference<T: KernelScalar>(
    _ problem: LayerProblem<T>, weight: Matrix<T>, mask: Mask, groupSize: Int?, maxSwaps: Int
  ) -> Swapped {
    let m = problem.outputs
    let n = problem.inputs
    let w = problem.weight.converted(to: Double.self)
    let gStar = problem.gram.converted(to: Double.self)
    let k = (problem.crossGram ?? problem.gram).converted(to: Double.self)
    let gDense = (problem.denseGram ?? problem.gram).converted(to: Double.self)
    var wHat = weight.converted(to: Double.self)
    mask.apply(to: &wHat)
    var kept = mask.kept
    var swaps = [Int](repeating: 0, count: m)
    for i in 0..<m {
      var c = [Double](repeating: 0, count: n)
      var dense = 0.0
      for j in 0..<n {
        for l in 0..<n {
          c[j] += w[i, l] * k[l, j]
          dense += w[i, j] * gDense[j, l] * w[i, l]
        }
      }
      func rowError(_ v: [Double]) -> Double {
        var s = 0.0
        if problem.crossGram == nil {
          for j in 0..<n { for l in 0..<n { s += (v[j] - w[i, j]) * gStar[j, l] * (v[l] - w[i, l]) } }
          return s
        }
        for j in 0..<n {
          for l in 0..<n { s += v[j] * gStar[j, l] * v[l] }
          s -= 2 * c[j] * v[j]
        }
        return s + dense
      }
      var row = (0..<n).map { wHat[i, $0] }
      var e = rowError(row)
      while swaps[i] < maxSwaps && e > 0 {
        var best = 0.0
        var bestPair: (Int, Int)? = nil
        for p in 0..<n where kept[i * n + p] {
          let lo = groupSize.map { p / $0 * $0 } ?? 0
          let hi = groupSize.map { lo + $0 } ?? n
          for q in lo..<hi where !kept[i * n + q] {
            var v = row
            v[p] = 0
            v[q] = w[i, q]
            let delta = rowError(v) - e
            if bestPair == nil || delta < best {
              best = delta
              bestPair = (p, q)
            }
          }
        }
        guard let pair = bestPair, best < -relativeGain * e else { break }
        let (p, q) = pair
        row[p] = 0
        row[q] = w[i, q]
        kept[i * n + p] = false
        kept[i * n + q] = true
        e = rowError(row)
        swaps[i] += 1
      }
      for j in 0..<n { wHat[i, j] = row[j] }
    }
    return Swapped(weight: wHat, mask: Mask(rows: m, columns: n, kept: kept), swaps: swaps)
  }
}

/// What runs after a method's own result (`--refine`): nothing, or SparseSwaps.
public enum Refinement: String, Sendable, CaseIterable {
  case none, swaps
}
