import Dispatch
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// How many threads the kernels use when a call does not say.
///
/// The kernels split their work over `threads` contiguous ranges of output tiles and run them with
/// `DispatchQueue.concurrentPerform`. The split never changes the order in which any single output
/// element is reduced, so every result is bit-identical whatever the thread count.
public enum Parallelism {
  /// The number of online processors, read once.
  public static let processorCount: Int = {
    let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
    return n > 0 ? Int(n) : 1
  }()

  /// The process-wide default thread count (initially `processorCount`). Set it once at
  /// start-up, before any kernel runs (the `prune` tool does so for `--threads`).
  nonisolated(unsafe) public static var defaultThreads: Int = processorCount

  /// A thread count for the current task only, e.g. a test comparing thread counts:
  /// `Parallelism.$threadOverride.withValue(1) { … }`. Read on the calling thread when a kernel
  /// starts (worker threads never read it).
  @TaskLocal public static var threadOverride: Int? = nil

  /// The thread count of every kernel call that does not pass one: the task's override, else the
  /// process-wide default. Setting it sets the default.
  public static var threads: Int {
    get { threadOverride ?? defaultThreads }
    set {
      precondition(newValue >= 1, "Parallelism.threads must be ≥ 1")
      defaultThreads = newValue
    }
  }

  /// Runs `body` on `threads` contiguous chunks of 0..<count at once (`concurrentPerform`); chunk
  /// boundaries depend only on `count` and `threads`. For independent work such as the rows of a
  /// weight: each index must be processed the same way whichever chunk holds it, so that results
  /// do not depend on the thread count.
  public static func forEachChunk(
    of count: Int, threads: Int = Parallelism.threads, _ body: @Sendable (Range<Int>) -> Void
  ) {
    let t = max(1, min(threads, count))
    let chunks = splitRange(count, parts: t, granule: 1)
    parallelFor(t) { body(chunks[$0]) }
  }
}

/// A raw pointer that may cross into a `concurrentPerform` closure. Each iteration writes a
/// disjoint part of the memory, which is what makes this `@unchecked Sendable` sound.
public struct SendablePointer<T>: @unchecked Sendable {
  public let base: UnsafeMutablePointer<T>
  @inlinable public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// A read-only raw pointer that may cross into a `concurrentPerform` closure.
public struct SendableConstPointer<T>: @unchecked Sendable {
  public let base: UnsafePointer<T>
  @inlinable public init(_ base: UnsafePointer<T>) { self.base = base }
}

/// Runs `body(t)` for t in 0..<count, in parallel when count > 1.
@inline(__always)
func parallelFor(_ count: Int, _ body: @Sendable (Int) -> Void) {
  if count <= 1 {
    if count == 1 { body(0) }
    return
  }
  DispatchQueue.concurrentPerform(iterations: count, execute: body)
}

/// Splits `0..<total` units into `parts` contiguous ranges whose boundaries are multiples of
/// `granule` (the last range takes the remainder). Ranges may be empty.
func splitRange(_ total: Int, parts: Int, granule: Int) -> [Range<Int>] {
  precondition(parts >= 1 && granule >= 1)
  let units = (total + granule - 1) / granule
  var result: [Range<Int>] = []
  result.reserveCapacity(parts)
  var start = 0
  for p in 0..<parts {
    let endUnit = units * (p + 1) / parts
    let end = min(total, endUnit * granule)
    result.append(start..<max(start, end))
    start = max(start, end)
  }
  return result
}

/// Shared work counters of one parallel kernel call: claim the next item of a phase, mark one
/// done, and wait until a phase is complete.
///
/// Waiting only ever waits for items that a running thread has claimed, so the scheme cannot
/// deadlock if the runtime executes the "parallel" iterations one after another. Memory ordering:
/// `complete` releases what the item wrote; `wait` acquires it.
struct WorkCounters: @unchecked Sendable {
  private let base: UnsafeMutablePointer<Atomic<Int>>
  private let count: Int

  init(count: Int) {
    self.count = count
    base = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: max(1, count))
    for i in 0..<count { (base + i).initialize(to: Atomic(0)) }
  }

  func deallocate() {
    base.deinitialize(count: count)
    base.deallocate()
  }

  /// The index of the next unclaimed item of counter i.
  @inline(__always)
  func claim(_ i: Int) -> Int { base[i].wrappingAdd(1, ordering: .relaxed).oldValue }

  /// Marks one item of counter i done.
  @inline(__always)
  func complete(_ i: Int) { base[i].wrappingAdd(1, ordering: .releasing) }

  /// Spins (then yields) until counter i reaches `target`.
  @inline(__always)
  func wait(_ i: Int, reaches target: Int) {
    var spins = 0
    while base[i].load(ordering: .acquiring) < target {
      spins += 1
      if spins >= 256 {
        sched_yield()
        spins = 0
      }
    }
  }
}
