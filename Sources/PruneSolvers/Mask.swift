/// A pruning mask M ∈ {0, 1}^{rows × columns}, 1 = kept: the sparsity structure of a pruned
/// weight, apart from its values.
///
/// Selection (`Mask.pruningLowest`) is exact and deterministic: in every comparison group of the
/// pattern it prunes exactly the required number of entries with the lowest scores, and among
/// equal scores the entry with the lower flat index (row-major) is pruned first. Scores must not
/// be NaN.
public struct Mask: Sendable, Equatable {
  public let rows: Int
  public let columns: Int
  /// Row-major, `true` = kept.
  public private(set) var kept: [Bool]

  /// A mask keeping every entry (`keepAll: true`) or none.
  public init(rows: Int, columns: Int, keepAll: Bool = true) {
    precondition(rows >= 0 && columns >= 0, "Mask: negative shape")
    self.rows = rows
    self.columns = columns
    self.kept = Array(repeating: keepAll, count: rows * columns)
  }

  /// A mask over row-major kept flags.
  public init(rows: Int, columns: Int, kept: [Bool]) {
    precondition(kept.count == rows * columns, "Mask: \(kept.count) flags for [\(rows) × \(columns)]")
    self.rows = rows
    self.columns = columns
    self.kept = kept
  }

  /// The mask of a weight: kept where the value is not zero.
  public init<T: KernelScalar>(nonZerosOf w: Matrix<T>) {
    self.init(rows: w.rows, columns: w.columns, kept: w.elements.map { $0 != 0 })
  }

  /// Whether entry (i, j) is kept.
  public subscript(row: Int, column: Int) -> Bool {
    get { kept[row * columns + column] }
    set { kept[row * columns + column] = newValue }
  }

  /// Number of pruned entries.
  public var prunedCount: Int { kept.reduce(0) { $0 + ($1 ? 0 : 1) } }

  /// Number of pruned entries in row i.
  public func prunedCount(row i: Int) -> Int {
    var c = 0
    for j in 0..<columns where !kept[i * columns + j] { c += 1 }
    return c
  }

  /// The fraction of pruned entries.
  public var sparsity: Double { kept.isEmpty ? 0 : Double(prunedCount) / Double(kept.count) }

  /// The kept column indices of row i, increasing.
  public func keptColumns(row i: Int) -> [Int] {
    (0..<columns).filter { kept[i * columns + $0] }
  }

  /// Zeroes the pruned entries of `w` (`[rows × columns]`).
  public func apply<T: KernelScalar>(to w: inout Matrix<T>) {
    precondition(
      w.rows == rows && w.columns == columns,
      "Mask.apply: mask [\(rows) × \(columns)] vs weight \(w.shapeDescription)")
    w.withUnsafeMutableBufferPointer { p in
      for idx in 0..<kept.count where !kept[idx] { p[idx] = 0 }
    }
  }

  /// How a group's pruned count is held to the count its pattern requires.
  public enum CountRule: Sendable {
    /// Exactly the required count: what every method's own selection produces.
    case exactly
    /// At least the required count: what a weight needs to run on N:M hardware or to honour a
    /// ratio; extra pruned entries are allowed. `prune verify` and a mask given to `prune layer`
    /// are held to this rule.
    case atLeast

    /// Whether a group with `pruned` entries pruned meets `required`.
    public func accepts(pruned: Int, required: Int) -> Bool {
      self == .exactly ? pruned == required : pruned >= required
    }
  }

  /// The groups that break `pattern` under `rule` (empty when the mask satisfies it): for each
  /// failing group, its row, its first column (N:M only) and the pruned count found vs required.
  /// The groups are `SparsityPattern.groups(rows:columns:)`, the ones `prune verify` counts.
  public func violations(of pattern: SparsityPattern, rule: CountRule = .exactly) -> [MaskViolation] {
    if case .nOfM(_, let m) = pattern, columns % m != 0 {
      return [MaskViolation(row: nil, column: nil, pruned: prunedCount, required: -1)]
    }
    var out: [MaskViolation] = []
    for g in pattern.groups(rows: rows, columns: columns) {
      var have = 0
      for idx in g.start..<(g.start + g.count) where !kept[idx] { have += 1 }
      if !rule.accepts(pruned: have, required: g.required) {
        out.append(MaskViolation(row: g.row, column: g.column, pruned: have, required: g.required))
      }
    }
    return out
  }

  /// True when the mask satisfies `pattern` under `rule` (exactly, by default).
  public func satisfies(_ pattern: SparsityPattern, rule: CountRule = .exactly) -> Bool {
    violations(of: pattern, rule: rule).isEmpty
  }

  /// Prunes, in each comparison group of `pattern`, exactly the required number of entries with
  /// the lowest `scores` (`[rows × columns]`); ties go to the lower flat index.
  ///
  /// The pattern must be valid for `scores.columns` (see `SparsityPattern.validate(columns:)`).
  public static func pruningLowest<T: KernelScalar>(_ scores: Matrix<T>, pattern: SparsityPattern)
    -> Mask
  {
    precondition(
      (try? pattern.validate(columns: scores.columns)) != nil,
      "Mask.pruningLowest: pattern \(pattern) invalid for \(scores.columns) columns")
    let rows = scores.rows
    let columns = scores.columns
    var mask = Mask(rows: rows, columns: columns)
    let s = scores.elements.map { Double($0) }
    precondition(!s.contains { $0.isNaN }, "Mask.pruningLowest: a score is NaN")
    s.withUnsafeBufferPointer { ps in
      // Prune the k lowest (score, index) pairs of the contiguous range [start, start + count).
      func pruneLowest(_ start: Int, _ count: Int, _ k: Int) {
        for idx in lowestIndices(k, scores: UnsafeBufferPointer(rebasing: ps[start..<(start + count)]), base: start) {
          mask.kept[idx] = false
        }
      }
      switch pattern {
      case .unstructured(_, .matrix):
        pruneLowest(0, rows * columns, pattern.prunedCount(rows: rows, columns: columns))
      case .unstructured(_, .row):
        let k = pattern.prunedCount(rows: 1, columns: columns)
        for i in 0..<rows { pruneLowest(i * columns, columns, k) }
      case .nOfM(let n, let m):
        // Small groups: pick the n lowest by repeated minimum (ties to the lower index).
        var taken = [Bool](repeating: false, count: m)
        for start in stride(from: 0, to: rows * columns, by: m) {
          for q in 0..<m { taken[q] = false }
          for _ in 0..<n {
            var best = -1
            for q in 0..<m where !taken[q] && (best < 0 || ps[start + q] < ps[start + best]) { best = q }
            taken[best] = true
            mask.kept[start + best] = false
          }
        }
      }
    }
    return mask
  }
}

/// One group of a mask that breaks its pattern.
public struct MaskViolation: Sendable, Equatable, CustomStringConvertible {
  /// The row (nil for the whole matrix).
  public let row: Int?
  /// The first column of the N:M group (nil for matrix and row groups).
  public let column: Int?
  /// Pruned entries found.
  public let pruned: Int
  /// Pruned entries required (−1 when the shape itself is incompatible).
  public let required: Int

  public init(row: Int?, column: Int?, pruned: Int, required: Int) {
    self.row = row
    self.column = column
    self.pruned = pruned
    self.required = required
  }

  public var description: String {
    let place: String
    switch (row, column) {
    case (let r?, let c?): place = "row \(r), columns \(c)…"
    case (let r?, nil): place = "row \(r)"
    default: place = "the matrix"
    }
    return required < 0
      ? "\(place): shape incompatible with the pattern"
      : "\(place): \(pruned) pruned, \(required) required"
  }
}
