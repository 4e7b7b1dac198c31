// prune-bench solvers: seconds per method on the SmolLM2-135M layer shapes, and FISTA's
// throughput against the machine's SGEMM measured in the same run.
//
//   prune-bench solvers [--layers q,k,gate,down] [--methods magnitude,wanda,...] [--tokens 16384]
//                       [--pattern 0.5] [--threads 2] [--runs 3]
//
// Problem: W uniform in [−1, 1], X [tokens × in] with feature scales spread over two decades and
// neighbouring features mixed (as in the tests), Float, Gram accumulated in Double (LayerProblem's
// streaming initialiser). Timings are the best of `runs` (noise only slows a run down).
//
// FISTA efficiency: the FISTA solve is K·T = 60 products Y·G* of [m × n]·[n × n], 2mn² flops
// each. `fista-solve` times exactly those T runs of K iterations (`FISTA.lasso`, no early stop);
// `fista-method` times the whole method in the paper's configuration (`--preset paper`: warm
// start, eigenvalue bound, rounding, error evaluations, with the early stop off); both are
// reported as 60·2mn² flops per second and as a ratio to SGEMM on the same [m × n]·[n × n] shape
// and thread count.

import Dispatch
import Foundation
import PruneKit

struct SolverLayer {
  let name: String
  let outputs, inputs: Int
}

let solverLayers: [SolverLayer] = [
  .init(name: "q", outputs: 576, inputs: 576), .init(name: "k", outputs: 192, inputs: 576),
  .init(name: "gate", outputs: 1536, inputs: 576), .init(name: "down", outputs: 576, inputs: 1536),
]

func benchProblem(_ layer: SolverLayer, tokens: Int) -> LayerProblem<Float> {
  var rng = SplitMix64(seed: UInt64(layer.outputs * 7919 + layer.inputs))
  let n = layer.inputs
  let scales = (0..<n).map { _ in Float(pow(10, rng.uniform(in: -1...1))) }
  let w = Matrix<Float>(rows: layer.outputs, columns: n) { _, _ in Float(rng.uniform(in: -1...1)) }
  var x = Matrix<Float>(rows: tokens, columns: n) { _, j in Float(rng.uniform(in: -1...1)) * scales[j] }
  x.withUnsafeMutableBufferPointer { p in
    for t in 0..<tokens { for j in stride(from: n - 1, to: 0, by: -1) { p[t * n + j] += 0.5 * p[t * n + j - 1] } }
  }
  return try! LayerProblem(weight: w, inputs: x)
}

func bestSeconds(runs: Int, _ body: () -> Void) -> Double {
  var best = Double.infinity
  for _ in 0..<max(1, runs) {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
  }
  return best
}

func json(_ fields: [(String, Any)]) -> String {
  "{"
    + fields.map { key, value in
      let v: String
      switch value {
      case let s as String: v = "\"\(s)\""
      case let d as Double: v = d.isFinite ? String(format: "%.6g", d) : "null"
      default: v = "\(value)"
      }
      return "\"\(key)\":\(v)"
    }.joined(separator: ",") + "}"
}

func runSolverBenchmarks(
  layers: [String], methods: [PruningMethod], tokens: Int, pattern: SparsityPattern, threads: Int, runs: Int
) {
  Parallelism.threads = threads
  for layer in solverLayers where layers.contains(layer.name) {
    let t0 = DispatchTime.now().uptimeNanoseconds
    let problem = benchProblem(layer, tokens: tokens)
    let m = layer.outputs
    let n = layer.inputs
    FileHandle.standardError.write(
      Data(
        "\(layer.name) [\(m) × \(n)]: problem ready in \(String(format: "%.1f", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)) s\n"
          .utf8))
    for method in methods {
      var result: PruningResult<Float>?
      let seconds = bestSeconds(runs: method == .exact ? 0 : runs) {
        result = try! prune(problem, method: method, pattern: pattern)
      }
      print(
        json([
          ("bench", "solver"), ("layer", layer.name), ("m", m), ("n", n), ("tokens", tokens), ("threads", threads),
          ("method", method.rawValue), ("pattern", pattern.description), ("seconds", seconds),
          ("relative_error", result!.report.relativeError),
        ]))
      fflush(stdout)
    }
    // FISTA against SGEMM on [m × n]·[n × n].
    let g = problem.gram
    let w = problem.weight
    var c = Matrix<Float>(rows: m, columns: n)
    let gemmSeconds = bestSeconds(runs: max(5, runs)) { gemm(w, g, into: &c) }
    let flops = 2 * Double(m) * Double(n) * Double(n)
    let sgemm = flops / gemmSeconds / 1e9
    let gemm60 = bestSeconds(runs: runs) { for _ in 0..<60 { gemm(w, g, into: &c) } }
    FileHandle.standardError.write(Data("60 back-to-back SGEMMs: \(gemm60) s\n".utf8))
    let lipschitz = largestEigenvalueUpperBound(g).upperBound
    let lambda = 0.01 * Double(c.maxMagnitude)
    let solve = bestSeconds(runs: runs) {
      var start = w
      for _ in 0..<3 {
        start =
          FISTA.lasso(gram: g, target: c, lambda: lambda, lipschitz: lipschitz, start: start, iterations: 20).solution
      }
    }
    let full = bestSeconds(runs: runs) {
      var paper = FISTA.Options.paper  // the paper's method: no debiasing runs, no refit
      paper.tolerance = 0
      _ = try! FISTA(options: paper).prune(problem, pattern: pattern)
    }
    for (name, seconds) in [("fista-solve", solve), ("fista-method", full)] {
      let gflops = 60 * flops / seconds / 1e9
      print(
        json([
          ("bench", name), ("layer", layer.name), ("m", m), ("n", n), ("threads", threads), ("seconds", seconds),
          ("gflops", gflops), ("sgemm_gflops", sgemm), ("ratio_to_sgemm", gflops / sgemm),
        ]))
      fflush(stdout)
    }
  }
}
