// A tensor source that counts how often each tensor is decoded: the tests of lazily loaded models
// and of the streaming pruner check with it that each block is read once per pass.

import Foundation
import PruneFormats

/// Tensors in memory whose decodes are counted by name.
public final class CountingSource: TensorSource, @unchecked Sendable {
  public let inner: InMemoryTensors
  private var counts: [String: Int] = [:]
  private var rowCounts: [String: Int] = [:]
  private let lock = NSLock()

  /// False: `floatRows` reads (and counts) the whole tensor, as a source that cannot read rows by
  /// range does.
  public let readsRows: Bool

  public init(_ inner: InMemoryTensors, readsRows: Bool = true) {
    self.inner = inner
    self.readsRows = readsRows
  }

  public var tensorNames: [String] { inner.tensorNames }
  public func shape(of name: String) -> [Int]? { inner.shape(of: name) }
  public func storedType(of name: String) -> StoredFloatType? { inner.storedType(of: name) }
  public func floatTensor(_ name: String) throws -> FloatTensor {
    lock.withLock { counts[name, default: 0] += 1 }
    return try inner.floatTensor(name)
  }

  /// Reads rows by range (`floatRows`, sliced out of the tensor in memory), counted apart from the
  /// whole decodes (`rowReads`) when `readsRows`, as a file's F32 tensor would be; else a whole
  /// decode, sliced.
  public func floatRows(_ name: String, rows: Range<Int>) throws -> FloatTensor {
    guard readsRows else { return try floatTensor(name).rows(rows, name: name) }
    lock.withLock { rowCounts[name, default: 0] += 1 }
    return try inner.floatTensor(name).rows(rows, name: name)
  }
  public func readsRowRanges(of name: String) -> Bool { readsRows && inner.shape(of: name)?.isEmpty == false }

  /// Row-range reads so far, by tensor name.
  public var rowReads: [String: Int] { lock.withLock { rowCounts } }

  /// Decodes so far, by tensor name.
  public var reads: [String: Int] { lock.withLock { counts } }
  /// Forgets the decodes so far.
  public func reset() {
    lock.withLock {
      counts = [:]
      rowCounts = [:]
    }
  }
}
