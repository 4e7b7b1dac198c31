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
  /// The floating-point type the tensor is stored in, or nil when there is no such tensor
  /// (default: `.f32` for every tensor the source has).
  func storedType(of name: String) -> StoredFloatType?
}

/// How a source stores a tensor's values: what `prune model --dtype auto` keeps.
public enum StoredFloatType: String, Sendable, Equatable, CaseIterable {
  /// IEEE binary32 (also: any type wider than 16 bits, converted to Float on reading).
  case f32
  /// IEEE binary16.
  case f16
  /// bfloat16.
  case bf16
  /// A block-quantised GGUF type (Q4_0, Q4_K, ...).
  case quantized
}

extension TensorSource {
  public func storedType(of name: String) -> StoredFloatType? { shape(of: name) == nil ? nil : .f32 }
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
}

/// Errors common to every tensor source.
public enum TensorSourceError: PruneKitError, Equatable {
  case missingTensor(name: String, source: String)

  public var message: String {
    switch self {
    case .missingTensor(let name, let source): return "tensor '\(name)' not found in \(source)"
    }
  }

  public var hint: String? { "check the architecture in config.json and the tensor names of the checkpoint." }
}
