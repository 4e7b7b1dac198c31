import PruneKernels
import Testing

/// max |aᵢ − bᵢ| and where it occurs, for failure messages.
public func maxAbsDifference<T: KernelScalar, U: KernelScalar>(_ a: Matrix<T>, _ b: Matrix<U>) -> (
  value: Double, row: Int, column: Int
) {
  precondition(
    a.rows == b.rows && a.columns == b.columns, "maxAbsDifference: \(a.shapeDescription) vs \(b.shapeDescription)")
  var best = (value: 0.0, row: 0, column: 0)
  for i in 0..<a.rows {
    for j in 0..<a.columns {
      let d = abs(Double(a[i, j]) - Double(b[i, j]))
      if d > best.value || d.isNaN { best = (d, i, j) }
    }
  }
  return best
}

/// Checks |actualᵢⱼ − expectedᵢⱼ| ≤ boundᵢⱼ elementwise and records one issue naming the worst
/// element (value, bound, position) and `context` (the seed and case) otherwise.
public func expectWithinBounds<T: KernelScalar>(
  _ actual: Matrix<T>, _ expected: Matrix<Double>, bounds: Matrix<Double>, _ context: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  guard actual.rows == expected.rows && actual.columns == expected.columns else {
    Issue.record(
      "shape \(actual.shapeDescription) vs \(expected.shapeDescription): \(context)", sourceLocation: sourceLocation)
    return
  }
  var worst: (ratio: Double, row: Int, column: Int, diff: Double, bound: Double)? = nil
  for i in 0..<actual.rows {
    for j in 0..<actual.columns {
      let d = abs(Double(actual[i, j]) - expected[i, j])
      let b = bounds[i, j]
      if !(d <= b) {
        let ratio = b > 0 ? d / b : .infinity
        if worst == nil || ratio > worst!.ratio || d.isNaN { worst = (ratio, i, j, d, b) }
      }
    }
  }
  if let w = worst {
    Issue.record(
      "|Δ| = \(w.diff) exceeds bound \(w.bound) at (\(w.row), \(w.column)) [\(w.ratio)× the bound]: \(context)",
      sourceLocation: sourceLocation)
  }
}

/// Checks that two matrices are bit-identical; records the first differing element otherwise.
public func expectBitIdentical<T: KernelScalar>(
  _ a: Matrix<T>, _ b: Matrix<T>, _ context: String, sourceLocation: SourceLocation = #_sourceLocation
) {
  guard a.rows == b.rows && a.columns == b.columns else {
    Issue.record("shape \(a.shapeDescription) vs \(b.shapeDescription): \(context)", sourceLocation: sourceLocation)
    return
  }
  for i in 0..<a.elements.count where a.elements[i].bitPattern != b.elements[i].bitPattern {
    Issue.record(
      "element \(i) (row \(i / max(1, a.columns)), column \(i % max(1, a.columns))) differs: \(a.elements[i]) vs \(b.elements[i]): \(context)",
      sourceLocation: sourceLocation)
    return
  }
}

extension BinaryFloatingPoint {
  /// The raw bits, for bit-identity checks (Float and Double only).
  var bitPattern: UInt64 {
    if let f = self as? Float { return UInt64(f.bitPattern) }
    if let d = self as? Double { return d.bitPattern }
    return UInt64(Double(self).bitPattern)
  }
}
