// oracle-consumer: PruneKit used as a library by another package, the way a pruning backend uses
// it as its oracle. Two commands:
//
//   oracle-consumer [certify]
//     Certifies a layer pruned with PruneKit's library API and prints PASS (exit 0) or FAIL (exit 1):
//       1. a seeded layer problem, W [64 × 256] and X [512 tokens × 256] (SyntheticLayerProblem)
//       2. SparseGPT at 2:4 in Float, through `prune(_:method:pattern:options:)` as `prune layer` runs it
//       3. the problem and the pruned weight written as `prune verify` reads them (LayerProblemFile,
//          PrunedWeightFile), into a temporary folder that is removed at the end
//       4. `Verification.run()`, the certificate of `prune verify`: the pattern and finiteness checks,
//          the error against the exact refit on the candidate's mask, PruneKit's SparseGPT and
//          Wanda on the same problem for comparison
//       5. a negative control: the same weight with one pruned entry put back, so that one group of
//          four keeps three; its certificate must fail the pattern check
//     PASS when the candidate's certificate passes and the control's fails.
//
//   oracle-consumer gemm [--size N] [--threads T] [--runs R] [--precision float|double]
//     Times C = A·B for N × N matrices (default 1024, 1 thread, 10 runs after one warm-up, Float)
//     and prints the best and the median GFLOP/s (2N³ flops a run), to compare a dependent's build
//     with PruneKit's own `prune-bench kernels` (Docs/using-prunekit.md).
//
// Usage errors exit with status 2.

import Dispatch
import Foundation
import PruneKit

func fail(_ message: String, status: Int32) -> Never {
  FileHandle.standardError.write(Data("oracle-consumer: \(message)\n".utf8))
  exit(status)
}

// MARK: - certify

/// A figure as a count when it is whole, else with every digit (the shortest text that reads back
/// as the same Double, so two builds print the same text exactly when they computed the same bits).
func g(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }

/// Steps 1 to 5 above; true when the candidate passes and the control fails.
func certify() throws -> Bool {
  let (rows, columns, tokens) = (64, 256, 512)
  let pattern = SparsityPattern.nOfM(n: 2, m: 4)
  let (w, x) = SyntheticLayerProblem.make(rows: rows, columns: columns, tokens: tokens, seed: 7)
  let problem = try LayerProblem(weight: w, inputs: x)
  let pruned = try prune(problem, method: .sparsegpt, pattern: pattern)

  let folder = FileManager.default.temporaryDirectory
    .appendingPathComponent("oracle-consumer-\(ProcessInfo.processInfo.processIdentifier)")
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: folder) }
  let problemURL = folder.appendingPathComponent("problem.safetensors")
  let candidateURL = folder.appendingPathComponent("sparsegpt.safetensors")
  let controlURL = folder.appendingPathComponent("control.safetensors")
  try LayerProblemFile.writer(weight: w, inputs: x, count: tokens).write(to: problemURL)
  try PrunedWeightFile.writer(pruned.weight).write(to: candidateURL)
  // The control: the first pruned entry of row 0 gets its dense value back (W is uniform in
  // [−1, 1], so it is not zero), and its group of four keeps three.
  var broken = pruned.weight
  let restored = (0..<columns).first { broken[0, $0] == 0 }!
  broken[0, restored] = w[0, restored]
  try PrunedWeightFile.writer(broken).write(to: controlURL)

  print("certify: sparsegpt \(pattern) on [\(rows) × \(columns)], \(tokens) tokens, seed 7")
  let certificate = try Verification(
    problem: problemURL, candidate: candidateURL, pattern: pattern, compare: [.sparsegpt, .wanda]
  ).run()
  for check in certificate.checks {
    let name = check.name.padding(toLength: 8, withPad: " ", startingAt: 0)
    let verdict = check.passed ? "PASS" : "FAIL"
    print("  \(name)\(verdict)  \(check.detail): \(g(check.value)) (threshold \(g(check.threshold)))")
  }
  let q = certificate.quality
  print(
    "  error   relative \(g(q.relativeError)); exact refit on its mask \(g(q.refitRelativeError)); "
      + "sparsity \(g(q.realisedSparsity))")
  for c in certificate.comparison {
    let figure = c.relativeError.map(g) ?? c.note ?? "-"
    print("  compare \(c.method) relative \(figure) (PruneKit on the same problem)")
  }

  let control = try Verification(problem: problemURL, candidate: controlURL, pattern: pattern).run()
  let controlPattern = control.patternCheck
  print(
    "  control \(control.passed ? "PASS (wrong: it breaks the pattern)" : "FAIL, as it must"): "
      + "\(controlPattern.failingGroups) of \(controlPattern.groups) groups break \(pattern)")
  return certificate.passed && !control.passed
}

// MARK: - gemm

/// Seconds of each of `runs` calls of `body`, after one warm-up call.
func timedRuns(_ runs: Int, _ body: () -> Void) -> [Double] {
  body()
  return (0..<runs).map { _ in
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
  }
}

func timeGEMM<T: KernelScalar>(_: T.Type, name: String, size n: Int, threads: Int, runs: Int) {
  var rng = SplitMix64(seed: 1)
  let a = Matrix<T>(rows: n, columns: n) { _, _ in T(rng.uniform(in: -1...1)) }
  let b = Matrix<T>(rows: n, columns: n) { _, _ in T(rng.uniform(in: -1...1)) }
  var c = Matrix<T>(rows: n, columns: n)
  let seconds = timedRuns(runs) { gemm(a, b, into: &c, threads: threads) }.sorted()
  // One entry against a plain dot product, so that a broken build cannot post a fast figure.
  var dot = 0.0
  var magnitude = 0.0
  for p in 0..<n {
    dot += Double(a[n - 1, p]) * Double(b[p, n - 1])
    magnitude += abs(Double(a[n - 1, p]) * Double(b[p, n - 1]))
  }
  guard abs(Double(c[n - 1, n - 1]) - dot) <= Double(n + 2) * T.unitRoundoff * 2 * magnitude else {
    fail("gemm gave a wrong C[\(n - 1), \(n - 1)]", status: 1)
  }
  let flops = 2 * Double(n) * Double(n) * Double(n)
  let best = flops / seconds.first! / 1e9
  let median = flops / seconds[seconds.count / 2] / 1e9
  let shape = "\(n)×\(n)·\(n)×\(n)"
  let perThreads = "\(threads) thread\(threads == 1 ? "" : "s")"
  print(
    "\(name) \(shape), \(perThreads): best \(String(format: "%.1f", best)) GFLOP/s, "
      + "median \(String(format: "%.1f", median)) GFLOP/s (\(runs) runs after one warm-up)")
}

// MARK: - main

/// The value after `--name` in `arguments`, or nil when the option is absent.
func option(_ name: String, in arguments: [String]) -> String? {
  guard let i = arguments.firstIndex(of: "--\(name)") else { return nil }
  guard i + 1 < arguments.count else { fail("--\(name) needs a value", status: 2) }
  return arguments[i + 1]
}

/// The positive integer after `--name`, or `fallback`; stops with status 2 on anything else.
func count(_ name: String, in arguments: [String], default fallback: Int) -> Int {
  guard let text = option(name, in: arguments) else { return fallback }
  guard let value = Int(text), value > 0 else { fail("--\(name) needs a positive integer", status: 2) }
  return value
}

let command = CommandLine.arguments.dropFirst().first ?? "certify"
let arguments = Array(CommandLine.arguments.dropFirst(2))

print("oracle-consumer: PruneKit \(PruneKitVersion.current), micro-kernels \(KernelISA.active)")
switch command {
case "certify":
  do {
    let passed = try certify()
    print(passed ? "PASS" : "FAIL")
    exit(passed ? 0 : 1)
  } catch {
    fail("\(error)", status: 1)
  }
case "gemm":
  let size = count("size", in: arguments, default: 1024)
  let threads = count("threads", in: arguments, default: 1)
  let runs = count("runs", in: arguments, default: 10)
  switch option("precision", in: arguments) ?? "float" {
  case "float": timeGEMM(Float.self, name: "sgemm", size: size, threads: threads, runs: runs)
  case "double": timeGEMM(Double.self, name: "dgemm", size: size, threads: threads, runs: runs)
  default: fail("--precision is float or double", status: 2)
  }
default:
  fail(
    "unknown command '\(command)'; use certify or gemm [--size N] [--threads T] [--runs R] [--precision float|double]",
    status: 2)
}
