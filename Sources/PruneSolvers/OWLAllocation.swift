/// Per-block sparsities s_ℓ whose parameter-weighted mean is the requested S, lower where a block
/// has more outlier scores: OWL, "Outlier Weighed Layerwise sparsity" (Yin, Wu, Liu, Jaiswal,
/// Chen, Wang, Liu, Wang, "Outlier Weighed Layerwise Sparsity (OWL): A Missing Secret Sauce for
/// Pruning LLMs to High Sparsity", ICML 2024, arXiv 2310.05175; code luuyin/OWL).
///
/// For the blocks ℓ = 0 … L−1 of a model, with P_ℓ the weights of block ℓ's linear layers:
///
///   1. Scores A_ij = |W_ij|·‖x_j‖₂ over every linear layer of the block, concatenated (Wanda's
///      score; ‖x_j‖₂ = √G_jj, the dense model's inputs to that layer on the calibration tokens).
///   2. Outlier ratio D_ℓ = #{A_ij > M·mean(A)} / #A, with M = `threshold`.
///   3. a_ℓ = 2λ·(D_ℓ − min D)/(max D − min D) ∈ [0, 2λ], with λ = `range`;
///      a_ℓ = 0 for every block when max D = min D (the reference divides by zero there).
///   4. ā = Σ P_ℓ a_ℓ / Σ P_ℓ, and s_ℓ = S − (a_ℓ − ā): more outliers → larger a_ℓ → lower sparsity,
///      and Σ P_ℓ s_ℓ = S·Σ P_ℓ.
///   5. s_ℓ is clamped into [0, 1) (`Result.clamped` names the blocks; their mean is then not S).
///
/// Each layer of block ℓ then prunes `SparsityPattern.unstructured(ratio: s_ℓ, group:)`'s count:
/// ⌊s_ℓ·m·n⌋ over the matrix, or m·⌊s_ℓ·n⌋ per row. The floor loses less than one weight per layer
/// (per row for the row group), so the model prunes S·Σ P_ℓ weights less fewer than one per layer
/// (Docs/methods/owl.md#exact-counts).
///
/// The reference code (`prune_wanda_outlier`, `prune_sparsegpt_outlier` in lib/prune_all.py) takes
/// the plain mean of the a_ℓ (`np.mean`), the same as ā when the blocks are the same size, as they
/// are in every model PruneKit reads. The spread max s − min s is 2λ; the paper's text writes the
/// range as [S − λ, S + λ], which holds when ā = λ; the code (followed here) centres the mean, not
/// the interval, on S. The scores of step 1 use ‖x_j‖₂ where the reference uses ‖x_j‖₂/√N
/// (its `scaler_row`), a positive constant factor that changes no comparison with M·mean(A).
public enum OWLAllocation {
  /// OWL's two hyperparameters. Defaults: the authors' LLaMA scripts (README of luuyin/OWL, "pruning
  /// llama-7b using OWL-wanda" and "OWL-SparseGPT" at 70% unstructured: `--Hyper_m 5 --Lamda 0.08`;
  /// their argparse default for M is 3, which no published script uses).
  public struct Options: Sendable, Equatable, Codable {
    /// M: a score is an outlier when it exceeds M times the block's mean score.
    public var threshold: Double = 5
    /// λ: the block sparsities span 2λ (the reference's `Lamda`, applied as `Lamda*2` in its
    /// unstructured paths).
    public var range: Double = 0.08

    public init() {}

    public init(threshold: Double, range: Double) {
      self.threshold = threshold
      self.range = range
    }
  }

  /// What the allocation gave every block.
  public struct Result: Sendable, Equatable {
    /// s_ℓ after the clamp, one per block.
    public var sparsities: [Double]
    /// Blocks whose s_ℓ left [0, 1) and were clamped into it.
    public var clamped: [Int]
  }

  /// The largest ratio a clamped block gets: the largest Double below 1 (`SparsityPattern` wants < 1).
  public static let largestRatio = 1.0.nextDown

  /// Step 2 over one block: the share of the scores |W_ij|·norms_j of every layer (weight and the
  /// norms ‖x_j‖₂ of its input columns) that exceed `threshold` × their mean. Summed in Double, layer
  /// by layer and row by row, so the result does not depend on the thread count. 0 for no weights.
  public static func outlierRatio(
    layers: [(weight: Matrix<Float>, inputNorms: [Double])], threshold: Double
  ) -> Double {
    var count = 0
    var sum = 0.0
    for (w, norms) in layers {
      precondition(norms.count == w.columns, "OWLAllocation: \(norms.count) norms for \(w.shapeDescription)")
      count += w.rows * w.columns
      w.withUnsafeBufferPointer { p in
        for i in 0..<w.rows {
          var row = 0.0
          for j in 0..<w.columns { row += Double(p[i * w.columns + j].magnitude) * norms[j] }
          sum += row
        }
      }
    }
    guard count > 0 else { return 0 }
    let bar = threshold * (sum / Double(count))
    var outliers = 0
    for (w, norms) in layers {
      w.withUnsafeBufferPointer { p in
        for i in 0..<w.rows {
          for j in 0..<w.columns where Double(p[i * w.columns + j].magnitude) * norms[j] > bar { outliers += 1 }
        }
      }
    }
    return Double(outliers) / Double(count)
  }

  /// Steps 3–5: the sparsity of every block from its outlier ratio D_ℓ and its weight count P_ℓ, for
  /// the requested sparsity `target` S ∈ [0, 1) and λ = `range` ≥ 0.
  public static func sparsities(outlierRatios d: [Double], parameters p: [Int], target: Double, range: Double)
    -> Result
  {
    precondition(d.count == p.count, "OWLAllocation: \(d.count) ratios for \(p.count) blocks")
    guard let lo = d.min(), let hi = d.max() else { return Result(sparsities: [], clamped: []) }
    let a = hi > lo ? d.map { 2 * range * ($0 - lo) / (hi - lo) } : d.map { _ in 0.0 }
    let total = p.reduce(0, +)
    let mean = total > 0 ? zip(a, p).reduce(0.0) { $0 + $1.0 * Double($1.1) } / Double(total) : 0
    var clamped: [Int] = []
    let s = a.enumerated().map { (l, al) -> Double in
      let v = target - (al - mean)
      if v < 0 || v > largestRatio {
        clamped.append(l)
        return v < 0 ? 0 : largestRatio
      }
      return v
    }
    return Result(sparsities: s, clamped: clamped)
  }
}

/// How the requested sparsity is spread over a model's blocks (`prune model --allocation`).
public enum SparsityAllocation: String, Sendable, CaseIterable, Codable {
  /// Every layer at the requested sparsity.
  case uniform
  /// OWL's per-block sparsities (`OWLAllocation`), unstructured patterns only.
  case owl
}
