// The body shared by the libFuzzer entry points in this folder: wrap the bytes, run the target's
// parsers through FuzzHarness (Tests/PruneOracleTests/FuzzHarness.swift, the same code the
// regression test replays), and trap when a rule is broken, so libFuzzer records the input.
// A Swift runtime trap (overflow, out-of-bounds index, force unwrap) or an AddressSanitizer report
// inside a parser is recorded by libFuzzer directly.

import Foundation

enum FuzzMain {
  /// Runs one input; traps (fatalError) when FuzzHarness reports a violation.
  static func run(_ target: FuzzHarness.Target, _ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = (count == 0 || bytes == nil) ? Data() : Data(bytes: bytes!, count: count)
    let outcome = FuzzHarness.run(target, data)
    if !outcome.violations.isEmpty {
      fatalError("fuzz \(target.rawValue): " + outcome.violations.joined(separator: " | "))
    }
    return 0
  }
}
