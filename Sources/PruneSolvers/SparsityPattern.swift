/// Which weights may be pruned, and how many: unstructured at a ratio, or N:M.
///
/// - `unstructured(ratio: s, group:)`: exactly ⌊s · |group|⌋ weights are pruned in each comparison
///   group, which is the whole matrix (`.matrix`) or each output row (`.row`, Wanda's group).
///   s ∈ [0, 1). (The reference Python codes prune ⌊s·|group|⌋ + 1 plus ties, an off-by-one;
///   PruneKit is exact, Docs/methods/README.md#patterns-groups-and-exact-counts.)
/// - `nOfM(n: N, m: M)`: in every row, each run of M consecutive input columns [kM, kM + M) has
///   exactly N pruned weights (2:4 prunes 2 of every 4). 0 < N < M, and the number of input columns
///   must be a multiple of M. Never silently turned into 2:4.
public enum SparsityPattern: Sendable, Hashable, CustomStringConvertible {
  /// The set of weights a ratio is counted over.
  public enum Group: String, Sendable, Hashable {
    /// The whole matrix: rows may end up with different sparsities.
    case matrix
    /// Each output row separately (Wanda's comparison group).
    case row
  }

  case unstructured(ratio: Double, group: Group)
  case nOfM(n: Int, m: Int)

  /// Unstructured over the whole matrix.
  public static func unstructured(_ ratio: Double) -> SparsityPattern {
    .unstructured(ratio: ratio, group: .matrix)
  }

  /// Parses "0.5", "50%", "0.5/row", "50%/matrix" or "2:4". Throws with a hint on anything else.
  public init(parsing text: String) throws(SparsityPatternError) {
    let t = text.trimmingWhitespace()
    if let colon = t.firstIndex(of: ":") {
      guard let n = Int(t[..<colon]), let m = Int(t[t.index(after: colon)...]) else {
        throw .unparsable(text)
      }
      self = .nOfM(n: n, m: m)
    } else {
      var body = Substring(t)
      var group = Group.matrix
      if let slash = body.firstIndex(of: "/") {
        guard let g = Group(rawValue: String(body[body.index(after: slash)...])) else {
          throw .unparsable(text)
        }
        group = g
        body = body[..<slash]
      }
      var ratio: Double?
      if body.hasSuffix("%") {
        ratio = Double(body.dropLast()).map { $0 / 100 }
      } else {
        ratio = Double(body)
      }
      guard let ratio else { throw .unparsable(text) }
      self = .unstructured(ratio: ratio, group: group)
    }
    try validate()
  }

  /// Parses `text` as `init(parsing:)` does, except that a ratio written without "/row" or
  /// "/matrix" compares over `defaultGroup` (a method's `PruningMethod.defaultGroup`: per row for
  /// Wanda, as its authors do; over the whole matrix for every other method).
  public init(parsing text: String, defaultGroup: Group) throws(SparsityPatternError) {
    let parsed = try SparsityPattern(parsing: text)
    if !text.contains("/"), case .unstructured(let ratio, _) = parsed {
      self = .unstructured(ratio: ratio, group: defaultGroup)
    } else {
      self = parsed
    }
  }

  /// Checks the pattern on its own: 0 ≤ ratio < 1, or 0 < N < M.
  public func validate() throws(SparsityPatternError) {
    switch self {
    case .unstructured(let ratio, _):
      guard ratio >= 0 && ratio < 1 && ratio.isFinite else { throw .ratioOutOfRange(ratio) }
    case .nOfM(let n, let m):
      guard n > 0 && m > n else { throw .invalidNM(n: n, m: m) }
    }
  }

  /// Checks the pattern against a weight with `columns` inputs (N:M needs columns % M == 0).
  public func validate(columns: Int) throws(SparsityPatternError) {
    try validate()
    if case .nOfM(let n, let m) = self, columns % m != 0 {
      throw .columnsNotMultiple(columns: columns, n: n, m: m)
    }
  }

  /// A batch of about `columns` columns that holds whole N:M groups: `columns` rounded down to a
  /// multiple of M, at least M (unstructured patterns: `columns` itself). APT's blocks and the
  /// lazy batches of FISTA's SparseGPT warm start use it.
  public func wholeGroups(_ columns: Int) -> Int {
    guard case .nOfM(_, let m) = self else { return columns }
    return max(m, columns / m * m)
  }

  /// The exact number of pruned weights in a `[rows × columns]` weight.
  public func prunedCount(rows: Int, columns: Int) -> Int {
    switch self {
    case .unstructured(let ratio, .matrix):
      return Int((ratio * Double(rows * columns)).rounded(.down))
    case .unstructured(let ratio, .row):
      return rows * Int((ratio * Double(columns)).rounded(.down))
    case .nOfM(let n, let m):
      return rows * (columns / m) * n
    }
  }

  /// The comparison groups of the pattern over a `[rows × columns]` weight, in row-major order:
  /// the whole matrix, each row, or each run of M inputs of each row. The one definition of a
  /// group that `Mask.violations` (`prune layer --mask`) and `prune verify` both count with; N:M
  /// needs `columns` to be a multiple of M.
  public func groups(rows: Int, columns: Int) -> [PatternGroup] {
    switch self {
    case .unstructured(_, .matrix):
      return [
        PatternGroup(
          row: nil, column: nil, start: 0, count: rows * columns, required: prunedCount(rows: rows, columns: columns))
      ]
    case .unstructured(_, .row):
      let k = prunedCount(rows: 1, columns: columns)
      return (0..<rows).map { PatternGroup(row: $0, column: nil, start: $0 * columns, count: columns, required: k) }
    case .nOfM(let n, let m):
      precondition(columns % m == 0, "SparsityPattern.groups: \(columns) columns for \(self)")
      var out: [PatternGroup] = []
      out.reserveCapacity(rows * (columns / m))
      for i in 0..<rows {
        for c in stride(from: 0, to: columns, by: m) {
          out.append(PatternGroup(row: i, column: c, start: i * columns + c, count: m, required: n))
        }
      }
      return out
    }
  }

  /// What a weight must do to satisfy the pattern, in words ("at least 2 of every 4 consecutive
  /// inputs of each row pruned").
  public func requirement(rows: Int, columns: Int) -> String {
    switch self {
    case .unstructured(_, .matrix):
      return "at least \(prunedCount(rows: rows, columns: columns)) of the \(rows * columns) weights pruned"
    case .unstructured(_, .row):
      return "at least \(prunedCount(rows: 1, columns: columns)) of the \(columns) inputs of every row pruned"
    case .nOfM(let n, let m): return "at least \(n) of every \(m) consecutive inputs of each row pruned"
    }
  }

  /// The pattern with its comparison group always written ("0.5/matrix", "0.5/row", "2:4"): the
  /// form every report prints, so that a reader never has to guess the group of a bare ratio.
  public var label: String {
    switch self {
    case .unstructured(let ratio, .matrix): return "\(ratio)/matrix"
    case .unstructured(let ratio, .row): return "\(ratio)/row"
    case .nOfM(let n, let m): return "\(n):\(m)"
    }
  }

  /// The fraction of weights pruned (N/M for N:M).
  public var ratio: Double {
    switch self {
    case .unstructured(let ratio, _): return ratio
    case .nOfM(let n, let m): return Double(n) / Double(m)
    }
  }

  /// "0.5", "0.5/row" or "2:4": the form `init(parsing:)` reads.
  public var description: String {
    switch self {
    case .unstructured(let ratio, .matrix): return "\(ratio)"
    case .unstructured(let ratio, .row): return "\(ratio)/row"
    case .nOfM(let n, let m): return "\(n):\(m)"
    }
  }
}

/// One comparison group of a pattern over a `[rows × columns]` weight: the row-major flat indices
/// `start ..< start + count`, which must hold `required` pruned entries.
public struct PatternGroup: Sendable, Equatable {
  /// The row (nil for the whole matrix).
  public let row: Int?
  /// The first column of an N:M group (nil for matrix and row groups).
  public let column: Int?
  public let start: Int
  public let count: Int
  public let required: Int
}

/// Why a sparsity pattern was rejected.
public enum SparsityPatternError: PruneKitError, Equatable {
  case unparsable(String)
  case ratioOutOfRange(Double)
  case invalidNM(n: Int, m: Int)
  case columnsNotMultiple(columns: Int, n: Int, m: Int)

  public var message: String {
    switch self {
    case .unparsable(let text): return "cannot read sparsity pattern '\(text)'"
    case .ratioOutOfRange(let r): return "sparsity ratio \(r) is outside [0, 1)"
    case .invalidNM(let n, let m): return "N:M pattern \(n):\(m) needs 0 < N < M"
    case .columnsNotMultiple(let columns, let n, let m):
      return "N:M pattern \(n):\(m) needs the input size to be a multiple of \(m), but it is \(columns)"
    }
  }

  public var hint: String? {
    switch self {
    case .unparsable:
      return "write a ratio such as 0.5 or 50% (optionally 0.5/row for per-row counts) or N:M such as 2:4."
    case .ratioOutOfRange: return "0.5 prunes half of the weights."
    case .invalidNM: return "2:4 prunes 2 of every 4 consecutive weights."
    case .columnsNotMultiple(let columns, _, _): return "choose M dividing \(columns), or an unstructured ratio."
    }
  }
}

extension String {
  /// The string without leading and trailing spaces, tabs and newlines (no Foundation).
  func trimmingWhitespace() -> String {
    let ws: Set<Character> = [" ", "\t", "\n", "\r"]
    var s = Substring(self)
    while let f = s.first, ws.contains(f) { s = s.dropFirst() }
    while let l = s.last, ws.contains(l) { s = s.dropLast() }
    return String(s)
  }
}
