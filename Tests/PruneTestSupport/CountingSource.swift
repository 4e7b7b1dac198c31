// A tensor source that counts how often each tensor is decoded: the tests of lazily loaded models
// and of the streaming pruner check with it that each block is read once per pass.

import Foundation
import PruneFormats

/// Tensors in memory whose decodes are counted by name.
public final class CountingSource: TensorSource, @unchecked Sendable {
  public let inner: InMemoryTensors
  private var counts: [String: Int] = [:]
  private let lock = NSLock()

  public init(_ inner: InMemoryTensors) { self.inner = inner }

  public var tensorNames: [String] { inner.tensorNames }
  public func shape(of name: String) -> [Int]? { inner.shape(of: name) }
  public func storedType(of name: String) -> StoredFloatType? { inner.storedType(of: name) }
  public func floatTensor(_ name: String) throws -> FloatTensor {
    lock.withLock { counts[name, default: 0] += 1 }
    return try inner.floatTensor(name)
  }

  /// Decodes so far, by tensor name.
  public var reads: [String: Int] { lock.withLock { counts } }
  /// Forgets the decodes so far.
  public func reset() { lock.withLock { counts = [:] } }
}
