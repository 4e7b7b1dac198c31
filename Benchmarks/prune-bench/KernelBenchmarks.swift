// GFLOP/s of the dense kernels on the shapes the pruner uses.
//
// GEMM: C[m × n] = A[m × k]·B[k × n], 2mnk flops. Gram: G = XᵀX with X [m tokens × n features],
// 2mn² flops (the full-product count for both PruneKit and OpenBLAS's syrk, although both compute
// one triangle). Each case: one warm-up run, then timed runs until both `minRuns` runs and
// `minSeconds` have passed; the median is reported. Every result is sanity-checked against a few
// directly computed entries, so a broken kernel cannot produce a fast figure.

import Dispatch
import Foundation
import PruneKit

struct KernelBenchmarkConfiguration {
  var threads = [1, 2]
  var kernels: Set<String> = ["sgemm", "dgemm", "sgram", "dgram"]
  var groups: Set<String> = ["square", "smollm2", "opt", "gram"]
  var minRuns = 5
  var minSeconds = 1.0
  var quick = false
}

struct GEMMShape {
  let group: String
  let m, n, k: Int
}

/// The shapes of the issue: square sizes, the SmolLM2 and OPT-125M pruning products W·G
/// (W [out × in], G [in × in]), and Gram accumulation over 16384 tokens.
let gemmShapes: [GEMMShape] = [
  .init(group: "square", m: 256, n: 256, k: 256), .init(group: "square", m: 512, n: 512, k: 512),
  .init(group: "square", m: 1024, n: 1024, k: 1024), .init(group: "square", m: 2048, n: 2048, k: 2048),
  // SmolLM2-135M: q/o 576×576, k/v 192×576, gate/up 1536×576, down 576×1536.
  .init(group: "smollm2", m: 576, n: 576, k: 576), .init(group: "smollm2", m: 192, n: 576, k: 576),
  .init(group: "smollm2", m: 1536, n: 576, k: 576), .init(group: "smollm2", m: 576, n: 1536, k: 1536),
  // OPT-125M: 768×768 attention, fc1 3072×768, fc2 768×3072.
  .init(group: "opt", m: 768, n: 768, k: 768), .init(group: "opt", m: 3072, n: 768, k: 768),
  .init(group: "opt", m: 768, n: 3072, k: 3072),
]
let gramShapes: [(tokens: Int, features: Int)] = [(16384, 576), (16384, 1536), (16384, 3072)]

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Median seconds of `body` over the configured runs, after one warm-up.
func timeMedian(_ config: KernelBenchmarkConfiguration, _ body: () -> Void) -> (median: Double, runs: Int) {
  body()  // warm-up: page faults, packing buffers, frequency ramp
  var times: [Double] = []
  let start = now()
  let minRuns = config.quick ? 3 : config.minRuns
  let minSeconds = config.quick ? 0 : config.minSeconds
  while times.count < minRuns || Double(now() - start) / 1e9 < minSeconds {
    let t0 = now()
    body()
    times.append(Double(now() - t0) / 1e9)
    if times.count >= 1000 { break }
  }
  times.sort()
  return (times[times.count / 2], times.count)
}

func emit(_ kernel: String, m: Int, n: Int, k: Int, threads: Int, seconds: Double, flops: Double, runs: Int) {
  let gflops = flops / seconds / 1e9
  print(
    "{\"kernel\":\"\(kernel)\",\"m\":\(m),\"n\":\(n),\"k\":\(k),\"threads\":\(threads),"
      + "\"gflops\":\(String(format: "%.2f", gflops)),\"median_ms\":\(String(format: "%.3f", seconds * 1e3)),\"runs\":\(runs)}"
  )
  fflush(stdout)
}

/// Checks a few entries of C = A·B against direct dot products in Double.
func sanityCheck<T: KernelScalar>(_ a: Matrix<T>, _ b: Matrix<T>, _ c: Matrix<T>, _ what: String) {
  for (i, j) in [(0, 0), (a.rows - 1, b.columns - 1), (a.rows / 2, b.columns / 3)] {
    var s = 0.0
    var mag = 0.0
    for p in 0..<a.columns {
      s += Double(a[i, p]) * Double(b[p, j])
      mag += abs(Double(a[i, p]) * Double(b[p, j]))
    }
    let tol = Double(a.columns + 2) * T.unitRoundoff * 2 * mag
    precondition(abs(Double(c[i, j]) - s) <= tol, "prune-bench: \(what) gives a wrong C[\(i), \(j)]")
  }
}

func runGEMM<T: KernelScalar>(_: T.Type, _ name: String, _ s: GEMMShape, _ config: KernelBenchmarkConfiguration) {
  var rng = SystemRandomNumberGenerator()  // benchmark data; values do not affect timing
  let a = Matrix<T>(rows: s.m, columns: s.k) { _, _ in T(Double.random(in: -1...1, using: &rng)) }
  let b = Matrix<T>(rows: s.k, columns: s.n) { _, _ in T(Double.random(in: -1...1, using: &rng)) }
  var c = Matrix<T>(rows: s.m, columns: s.n)
  for t in config.threads {
    let (sec, runs) = timeMedian(config) { gemm(a, b, into: &c, threads: t) }
    sanityCheck(a, b, c, "\(name) \(s.m)×\(s.k)·\(s.k)×\(s.n)")
    emit(
      name, m: s.m, n: s.n, k: s.k, threads: t, seconds: sec, flops: 2 * Double(s.m) * Double(s.n) * Double(s.k),
      runs: runs)
  }
}

func runGram<T: KernelScalar>(
  _: T.Type, _ name: String, tokens: Int, features: Int, _ config: KernelBenchmarkConfiguration
) {
  var rng = SystemRandomNumberGenerator()
  let x = Matrix<T>(rows: tokens, columns: features) { _, _ in T(Double.random(in: -1...1, using: &rng)) }
  var g = Matrix<T>(rows: features, columns: features)
  for t in config.threads {
    let (sec, runs) = timeMedian(config) {
      // G = XᵀX from zero each run (the kernel accumulates).
      g.withUnsafeMutableBufferPointer { p in p.update(repeating: 0) }
      gram(x, into: &g, threads: t)
    }
    sanityCheck(x.transposed(), x, g, "\(name) \(tokens)×\(features)")
    emit(
      name, m: tokens, n: features, k: features, threads: t, seconds: sec,
      flops: 2 * Double(tokens) * Double(features) * Double(features), runs: runs)
  }
}

func runKernelBenchmarks(_ config: KernelBenchmarkConfiguration) {
  let banner =
    "prune-bench kernels: \(ProcessInfo.processInfo.activeProcessorCount) processors, threads \(config.threads), "
    + "micro-kernels \(KernelISA.active) (Float \(Float.gemmBlocking.mr)×\(Float.gemmBlocking.nr), "
    + "Double \(Double.gemmBlocking.mr)×\(Double.gemmBlocking.nr))\n"
  FileHandle.standardError.write(Data(banner.utf8))
  let shapes = config.quick ? gemmShapes.filter { [256, 576, 768].contains($0.m) && $0.m == $0.n } : gemmShapes
  for s in shapes where config.groups.contains(s.group) {
    if config.kernels.contains("sgemm") { runGEMM(Float.self, "sgemm", s, config) }
  }
  for s in shapes where config.groups.contains(s.group) {
    if config.kernels.contains("dgemm") { runGEMM(Double.self, "dgemm", s, config) }
  }
  if config.groups.contains("gram") {
    let grams = config.quick ? [(tokens: 4096, features: 576)] : gramShapes
    for g in grams where config.kernels.contains("sgram") {
      runGram(Float.self, "sgram", tokens: g.tokens, features: g.features, config)
    }
    for g in grams where config.kernels.contains("dgram") {
      runGram(Double.self, "dgram", tokens: g.tokens, features: g.features, config)
    }
  }
}
