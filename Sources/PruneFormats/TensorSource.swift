import Foundation
import PruneKernels

/// A tensor converted to Float: row-major values and the shape (outermost dimension first, as in
/// safetensors and PyTorch; a linear weight is [out, in]).
public struct FloatTensor: Sendable, Equatable {
  public let shape: [Int]
  public let values: [Float]

  public init(shape: [Int], values: [Float]) {
    precondition(
      shape.reduce(1, *) == values.count,
      "FloatTensor: \(values.count) values for shape \(shape)")
    self.shape = shape
    self.values = values
  }

  /// The tensor as a `[rows × columns]` matrix: a 2-D tensor as is; a 1-D tensor as one row.
  public func matrix() -> Matrix<Float> {
    switch shape.count {
    case 1: return Matrix(rows: 1, columns: shape[0], elements: values)
    case 2: return Matrix(rows: shape[0], columns: shape[1], elements: values)
    default:
      let columns = shape.last ?? 1
      return Matrix(rows: values.count / max(1, columns), columns: columns, elements: values)
    }
  }
}

/// A named collection of tensors, with Hugging Face tensor names (`model.layers.0.self_attn.q_proj.weight`):
/// a safetensors file, a sharded checkpoint folder, a GGUF file mapped to Hugging Face names, or
/// tensors in memory. The forward passes read their weights through this protocol only.
public protocol TensorSource: Sendable {
  /// Every tensor name, sorted.
  var tensorNames: [String] { get }
  /// The shape of a tensor, or nil when there is no such tensor.
  func shape(of name: String) -> [Int]?
  /// The tensor converted to Float. Throws when it is missing or cannot be decoded.
  func floatTensor(_ name: String) throws -> FloatTensor
  /// How the tensor is stored (what a writer that keeps the source's precision writes), or nil
  /// when there is no such tensor.
  func storedType(of name: String) -> StoredFloatType?
  /// Rows `rows` of a tensor (its outermost dimension) converted to Float: the shape is
  /// `[rows.count] + shape.dropFirst()` and the values are those of `floatTensor(name)` in those
  /// rows, bit for bit. Throws when the tensor is missing, is a scalar, or `rows` is not within
  /// `0...shape[0]` (`TensorSourceError.rowsOutOfRange`). The default reads the whole tensor and
  /// slices it; a file source reads only the rows' bytes where `readsRowRanges(of:)` says so.
  func floatRows(_ name: String, rows: Range<Int>) throws -> FloatTensor
  /// True when `floatRows` reads only the bytes of the rows asked for (a file's F32/F16/BF16
  /// tensors; GGUF quantised rows made of whole blocks), false when it reads the whole tensor.
  func readsRowRanges(of name: String) -> Bool
}

extension TensorSource {
  /// The rows sliced out of the whole tensor (`floatTensor`).
  public func floatRows(_ name: String, rows: Range<Int>) throws -> FloatTensor {
    let whole = try floatTensor(name)
    return try whole.rows(rows, name: name)
  }

  /// False: the default `floatRows` reads the whole tensor.
  public func readsRowRanges(of name: String) -> Bool { false }
}

/// The elements per row of tensor `name` of `shape`, after checking that `rows` is a range of its
/// rows (rank ≥ 1, within `0...shape[0]`); `rowsOutOfRange` otherwise.
public func elementsPerRow(_ rows: Range<Int>, of name: String, shape: [Int]) throws(TensorSourceError) -> Int {
  guard let outer = shape.first else { throw .rowsOutOfRange(name: name, rows: rows, rowCount: nil) }
  guard rows.lowerBound >= 0, rows.upperBound <= outer else {
    throw .rowsOutOfRange(name: name, rows: rows, rowCount: outer)
  }
  return shape.dropFirst().reduce(1, *)
}

extension FloatTensor {
  /// Rows `rows` of this tensor (outermost dimension), or `rowsOutOfRange`.
  public func rows(_ rows: Range<Int>, name: String) throws(TensorSourceError) -> FloatTensor {
    let width = try elementsPerRow(rows, of: name, shape: shape)
    return FloatTensor(
      shape: [rows.count] + shape.dropFirst(),
      values: Array(values[(rows.lowerBound * width)..<(rows.upperBound * width)]))
  }
}

/// How a tensor is stored in its source: the float types a checkpoint is shipped in, or anything
/// else (GGUF's quantised blocks, F64, integers), which a writer that keeps the source's type
/// writes as F32 since Float holds every value such a tensor decodes to.
public enum StoredFloatType: String, Sendable, Equatable, CaseIterable {
  /// IEEE binary32.
  case f32
  /// IEEE binary16.
  case f16
  /// bfloat16 (the top half of a binary32).
  case bf16
  /// Quantised blocks (GGUF Q4_1, Q8_0, ...) or a type that is not one of the three above.
  case quantized
}

/// Tensors held in memory (tests, and models assembled in code).
public struct InMemoryTensors: TensorSource {
  public var tensors: [String: FloatTensor]

  public init(_ tensors: [String: FloatTensor] = [:]) { self.tensors = tensors }

  public var tensorNames: [String] { tensors.keys.sorted() }
  public func shape(of name: String) -> [Int]? { tensors[name]?.shape }
  public func floatTensor(_ name: String) throws -> FloatTensor {
    guard let t = tensors[name] else { throw TensorSourceError.missingTensor(name: name, source: "memory") }
    return t
  }
  /// `.f32` for every tensor: they are held as Float.
  public func storedType(of name: String) -> StoredFloatType? { tensors[name] == nil ? nil : .f32 }
}

/// Errors common to every tensor source.
public enum TensorSourceError: PruneKitError, Equatable {
  case missingTensor(name: String, source: String)
  /// Rows asked of a tensor that does not have them (`rowCount` nil: a scalar has no rows).
  case rowsOutOfRange(name: String, rows: Range<Int>, rowCount: Int?)

  public var message: String {
    switch self {
    case .missingTensor(let name, let source): return "tensor '\(name)' not found in \(source)"
    case .rowsOutOfRange(let name, let rows, let count):
      return "rows \(rows.lowerBound)..<\(rows.upperBound) of tensor '\(name)' asked for, but it has "
        + (count.map { "\($0) rows" } ?? "no rows (a scalar)")
    }
  }

  public var hint: String? {
    switch self {
    case .missingTensor: return "check the architecture in config.json and the tensor names of the checkpoint."
    case .rowsOutOfRange:
      return "this is a bug in the caller: ask for rows within 0..<rows of a tensor of rank 1 or more."
    }
  }
}
