/// A dense `[rows × columns]` matrix stored row-major: element (i, j) lives at
/// `elements[i * columns + j]`.
///
/// This is the one storage type of PruneKit. A layer weight W is `[out × in]` (PyTorch's
/// `nn.Linear.weight` layout), calibration inputs X are `[tokens × in]` (one row per token) and a
/// Gram matrix G = XᵀX is `[in × in]`. Shapes are checked with `precondition` at every API edge,
/// and a failure prints both shapes.
public struct Matrix<Scalar: KernelScalar>: Sendable, Equatable {
  /// Number of rows.
  public let rows: Int
  /// Number of columns (also the row stride of `elements`).
  public let columns: Int
  /// The row-major storage; `storage.count == rows * columns` always holds.
  @usableFromInline var storage: [Scalar]

  /// The row-major elements.
  @inlinable public var elements: [Scalar] { storage }

  /// A matrix filled with `value`.
  @inlinable
  public init(rows: Int, columns: Int, repeating value: Scalar = 0) {
    precondition(rows >= 0 && columns >= 0, "Matrix: negative shape [\(rows) × \(columns)]")
    self.rows = rows
    self.columns = columns
    self.storage = Array(repeating: value, count: rows * columns)
  }

  /// A matrix over the given row-major elements.
  @inlinable
  public init(rows: Int, columns: Int, elements: [Scalar]) {
    precondition(rows >= 0 && columns >= 0, "Matrix: negative shape [\(rows) × \(columns)]")
    precondition(
      elements.count == rows * columns,
      "Matrix: \(elements.count) elements do not fill [\(rows) × \(columns)]")
    self.rows = rows
    self.columns = columns
    self.storage = elements
  }

  /// A matrix whose element (i, j) is `entry(i, j)`, evaluated in row-major order.
  @inlinable
  public init(rows: Int, columns: Int, _ entry: (_ row: Int, _ column: Int) throws -> Scalar)
    rethrows
  {
    precondition(rows >= 0 && columns >= 0, "Matrix: negative shape [\(rows) × \(columns)]")
    var elements: [Scalar] = []
    elements.reserveCapacity(rows * columns)
    for i in 0..<rows {
      for j in 0..<columns { elements.append(try entry(i, j)) }
    }
    self.rows = rows
    self.columns = columns
    self.storage = elements
  }

  /// The n × n identity.
  @inlinable
  public static func identity(_ n: Int) -> Matrix {
    var m = Matrix(rows: n, columns: n)
    for i in 0..<n { m[i, i] = 1 }
    return m
  }

  /// Element (i, j).
  @inlinable
  public subscript(row: Int, column: Int) -> Scalar {
    get {
      precondition(
        row >= 0 && row < rows && column >= 0 && column < columns,
        "Matrix: index (\(row), \(column)) outside [\(rows) × \(columns)]")
      return storage[row * columns + column]
    }
    set {
      precondition(
        row >= 0 && row < rows && column >= 0 && column < columns,
        "Matrix: index (\(row), \(column)) outside [\(rows) × \(columns)]")
      storage[row * columns + column] = newValue
    }
  }

  /// Row i as a new zero-based array (a copy).
  @inlinable
  public func row(_ i: Int) -> [Scalar] {
    precondition(i >= 0 && i < rows, "Matrix: row \(i) outside [\(rows) × \(columns)]")
    return Array(storage[(i * columns)..<((i + 1) * columns)])
  }

  /// Replaces row i.
  @inlinable
  public mutating func setRow<C: Collection>(_ i: Int, to values: C) where C.Element == Scalar {
    precondition(i >= 0 && i < rows, "Matrix: row \(i) outside [\(rows) × \(columns)]")
    precondition(values.count == columns, "Matrix: row of \(values.count) values for \(columns) columns")
    storage.replaceSubrange((i * columns)..<((i + 1) * columns), with: values)
  }

  /// The shape as `[rows × columns]`, for messages.
  public var shapeDescription: String { "[\(rows) × \(columns)]" }

  /// True when the matrix is square.
  public var isSquare: Bool { rows == columns }

  /// Calls `body` with the row-major elements.
  @inlinable
  public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) rethrows
    -> R
  {
    try storage.withUnsafeBufferPointer(body)
  }

  /// Calls `body` with the mutable row-major elements (the count must not change).
  @inlinable
  public mutating func withUnsafeMutableBufferPointer<R>(
    _ body: (inout UnsafeMutableBufferPointer<Scalar>) throws -> R
  ) rethrows -> R {
    try storage.withUnsafeMutableBufferPointer(body)
  }

  /// Aᵀ.
  @inlinable
  public func transposed() -> Matrix {
    var t = Matrix(rows: columns, columns: rows)
    // 32 × 32 tiles keep both the read and the write streams in cache.
    let tile = 32
    elements.withUnsafeBufferPointer { src in
      t.storage.withUnsafeMutableBufferPointer { dst in
        for i0 in stride(from: 0, to: rows, by: tile) {
          for j0 in stride(from: 0, to: columns, by: tile) {
            for i in i0..<min(i0 + tile, rows) {
              for j in j0..<min(j0 + tile, columns) { dst[j * rows + i] = src[i * columns + j] }
            }
          }
        }
      }
    }
    return t
  }

  /// The same matrix in another precision (each element rounded to nearest).
  @inlinable
  public func converted<Other: KernelScalar>(to: Other.Type = Other.self) -> Matrix<Other> {
    Matrix<Other>(rows: rows, columns: columns, elements: elements.map { Other($0) })
  }

  /// Applies `transform` to every element.
  @inlinable
  public func map(_ transform: (Scalar) throws -> Scalar) rethrows -> Matrix {
    Matrix(rows: rows, columns: columns, elements: try elements.map(transform))
  }

  /// The sub-matrix of the given rows and columns (contiguous ranges).
  @inlinable
  public func submatrix(rows r: Range<Int>, columns c: Range<Int>) -> Matrix {
    precondition(
      r.lowerBound >= 0 && r.upperBound <= rows && c.lowerBound >= 0 && c.upperBound <= columns,
      "Matrix: sub-matrix \(r) × \(c) outside \(shapeDescription)")
    var out: [Scalar] = []
    out.reserveCapacity(r.count * c.count)
    for i in r { out.append(contentsOf: elements[(i * columns + c.lowerBound)..<(i * columns + c.upperBound)]) }
    return Matrix(rows: r.count, columns: c.count, elements: out)
  }

  /// The main diagonal of a square matrix.
  @inlinable
  public var diagonal: [Scalar] {
    precondition(isSquare, "Matrix.diagonal: \(shapeDescription) is not square")
    return (0..<rows).map { elements[$0 * columns + $0] }
  }

  /// Σᵢ Aᵢᵢ of a square matrix.
  @inlinable
  public var trace: Scalar { diagonal.reduce(0, +) }

  /// max |Aᵢⱼ| (0 for an empty matrix; NaN if any element is NaN).
  @inlinable
  public var maxMagnitude: Scalar {
    var m: Scalar = 0
    for v in elements {
      if v.isNaN { return .nan }
      m = Swift.max(m, v.magnitude)
    }
    return m
  }

  /// ‖A‖_F, accumulated in Double.
  @inlinable
  public var frobeniusNorm: Double {
    var s = 0.0
    for v in elements { s += Double(v) * Double(v) }
    return s.squareRoot()
  }
}

extension Matrix: CustomStringConvertible {
  /// The shape and, for small matrices, the elements.
  public var description: String {
    if rows * columns > 64 { return "Matrix\(shapeDescription)" }
    var s = "Matrix\(shapeDescription)["
    for i in 0..<rows {
      s += (i == 0 ? "" : "; ") + row(i).map { "\($0)" }.joined(separator: ", ")
    }
    return s + "]"
  }
}
