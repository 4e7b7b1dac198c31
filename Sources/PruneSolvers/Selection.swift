/// Exact k-smallest selection under the total order (score, index): the primitive behind every
/// mask. Ties in score go to the lower index, so a selection is a function of the scores alone.
///
/// Quickselect (Hoare partition, median-of-three pivot) on (score, index) pairs: O(n) expected,
/// in place, deterministic (no random pivots). Sorting 884k pairs with a comparison closure took
/// ~80 ms per mask on a SmolLM2 gate weight; selection takes a few milliseconds.
struct ScoredIndex: Comparable {
  var score: Double
  var index: Int32

  @inline(__always)
  static func < (a: ScoredIndex, b: ScoredIndex) -> Bool {
    a.score < b.score || (a.score == b.score && a.index < b.index)
  }
}

/// Reorders `items` so that its first k entries are its k smallest (in no particular order).
func partitionSmallest(_ items: UnsafeMutableBufferPointer<ScoredIndex>, _ k: Int) {
  guard k > 0 && k < items.count else { return }
  var lo = 0
  var hi = items.count - 1
  let target = k - 1  // the k-th smallest ends at `target`, smaller ones before it
  while hi > lo {
    if hi - lo < 16 {
      // Insertion sort for short ranges.
      for i in (lo + 1)...hi {
        let x = items[i]
        var j = i - 1
        while j >= lo && x < items[j] {
          items[j + 1] = items[j]
          j -= 1
        }
        items[j + 1] = x
      }
      return
    }
    // Median of three as the pivot, moved to `lo`.
    let mid = lo + (hi - lo) / 2
    if items[mid] < items[lo] { items.swapAt(mid, lo) }
    if items[hi] < items[lo] { items.swapAt(hi, lo) }
    if items[hi] < items[mid] { items.swapAt(hi, mid) }
    items.swapAt(lo, mid)
    let pivot = items[lo]
    var i = lo + 1
    var j = hi
    while true {
      while i <= j && items[i] < pivot { i += 1 }
      while i <= j && pivot < items[j] { j -= 1 }
      if i >= j { break }
      items.swapAt(i, j)
      i += 1
      j -= 1
    }
    items.swapAt(lo, j)  // pivot in its final place j
    if j == target { return }
    if j < target { lo = j + 1 } else { hi = j - 1 }
  }
}

/// The indices (into 0..<scores.count, offset by `base`) of the k lowest scores, unordered.
func lowestIndices(_ k: Int, scores: UnsafeBufferPointer<Double>, base: Int = 0) -> [Int] {
  if k <= 0 { return [] }
  var items = (0..<scores.count).map { ScoredIndex(score: scores[$0], index: Int32(truncatingIfNeeded: $0)) }
  precondition(scores.count <= Int(Int32.max), "selection: more than 2³¹ entries")
  items.withUnsafeMutableBufferPointer { partitionSmallest($0, k) }
  return items.prefix(k).map { base + Int($0.index) }
}
