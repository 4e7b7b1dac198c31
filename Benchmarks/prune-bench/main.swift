// prune-bench: PruneKit's benchmarks. Each prints one JSON object per line on standard output
// (progress and notes go to standard error), so results can be diffed and plotted.
//
//   swift run -c release prune-bench kernels [--json] [--threads 1,2] [--only sgemm,dgemm,sgram,dgram]
//                                            [--min-runs 5] [--min-seconds 1] [--quick]
//
// Benchmarks refuse to run from a debug build: the kernels are ~800x slower there and the figures
// would mislead.

import Foundation
import PruneKit

let isDebugBuild: Bool = {
  #if DEBUG
    return true
  #else
    return false
  #endif
}()
if isDebugBuild {
  FileHandle.standardError.write(
    Data("prune-bench: this is a debug build; run `swift run -c release prune-bench ...`\n".utf8))
  exit(1)
}

let usage = """
  Usage: prune-bench <benchmark> [options]

  Benchmarks:
    kernels   SGEMM, DGEMM and Gram GFLOP/s over the shapes of Docs/benchmarks.md
    factor    Cholesky, triangular and SPD inverse, solves, eigenvalue bound (--sizes, --threads)
    solvers   seconds per method on the SmolLM2 layer shapes, and FISTA's throughput against
              SGEMM (--layers q,k,gate,down --methods LIST --tokens 16384 --pattern 0.5
              --threads 2 --runs 3)
    forward   tokens/s of the SmolLM2-135M forward (its GGUF if fetched, else random weights of
              its shapes) and its efficiency against its own GEMMs alone (--tokens 1024
              --layers 30 --threads 2 --runs 3 --model PATH.gguf --random)
    pipeline  each method's `prune model --no-eval` against its floor: one JSON line per method and
              part (read, calibration, solve, write, other, total) with seconds and floor_seconds
              (--model PATH --methods magnitude,wanda,sparsegpt,admm,fista --sparsity 0.5
              --protocol austen-quick --blocks A-B --threads 2 --eval --out DIR)
    tune      compare GEMM cache blockings on one shape (--m --n --k --threads --precision
              --blockings kc/mc/nc,... --rounds --runs), interleaved; --kernel gram times
              the Gram of X [m tokens × k features] instead (n unused)

  Options (kernels):
    --json                one JSON object per line (default: also JSON; the table goes to stderr)
    --threads LIST        thread counts, comma-separated (default 1,2)
    --only LIST           kernels among sgemm,dgemm,sgram,dgram (default all)
    --shapes LIST         shape groups among square,smollm2,opt,gram (default all)
    --min-runs N          timed runs per case after one warm-up (default 5)
    --min-seconds S       keep timing until this much time has passed (default 1.0)
    --quick               one shape per group, 3 runs: a smoke test, not a measurement
  """

var args = Array(CommandLine.arguments.dropFirst())
guard let benchmark = args.first else {
  print(usage)
  exit(2)
}
args.removeFirst()

func option(_ name: String) -> String? {
  guard let i = args.firstIndex(of: "--\(name)"), i + 1 < args.count else { return nil }
  return args[i + 1]
}
func flag(_ name: String) -> Bool { args.contains("--\(name)") }
/// The methods of a comma-separated list; an unknown name ends the benchmark with status 2.
func methodList(_ spec: String, bench: String) -> [PruningMethod] {
  spec.split(separator: ",").map { name in
    guard let m = PruningMethod(rawValue: String(name)) else {
      FileHandle.standardError.write(Data("prune-bench \(bench): unknown method '\(name)'\n".utf8))
      exit(2)
    }
    return m
  }
}

switch benchmark {
case "kernels":
  var config = KernelBenchmarkConfiguration()
  if let t = option("threads") { config.threads = t.split(separator: ",").compactMap { Int($0) } }
  if let o = option("only") { config.kernels = Set(o.split(separator: ",").map(String.init)) }
  if let s = option("shapes") { config.groups = Set(s.split(separator: ",").map(String.init)) }
  if let r = option("min-runs").flatMap(Int.init) { config.minRuns = r }
  if let s = option("min-seconds").flatMap(Double.init) { config.minSeconds = s }
  if flag("quick") { config.quick = true }
  runKernelBenchmarks(config)
case "tune":
  let blockings = (option("blockings") ?? "256/144/768").split(separator: ",").map { spec -> (Int, Int, Int) in
    let v = spec.split(separator: "/").compactMap { Int($0) }
    precondition(v.count == 3, "prune-bench tune: blockings are kc/mc/nc, got \(spec)")
    return (v[0], v[1], v[2])
  }
  runTune(
    m: option("m").flatMap(Int.init) ?? 576, n: option("n").flatMap(Int.init) ?? 576,
    k: option("k").flatMap(Int.init) ?? 576, threads: option("threads").flatMap(Int.init) ?? 1,
    double: option("precision") == "double", blockings: blockings,
    rounds: option("rounds").flatMap(Int.init) ?? 5, runs: option("runs").flatMap(Int.init) ?? 10,
    gramKernel: option("kernel") == "gram")
case "factor":
  runFactorBenchmarks(
    sizes: (option("sizes") ?? "576,1536").split(separator: ",").compactMap { Int($0) },
    threads: (option("threads") ?? "1,2").split(separator: ",").compactMap { Int($0) })
case "solvers":
  let methods = methodList(option("methods") ?? "magnitude,wanda,sparsegpt,admm,fista,refit,apt", bench: "solvers")
  guard let pattern = try? SparsityPattern(parsing: option("pattern") ?? "0.5") else {
    FileHandle.standardError.write(Data("prune-bench solvers: bad --pattern\n".utf8))
    exit(2)
  }
  runSolverBenchmarks(
    layers: (option("layers") ?? "q,k,gate,down").split(separator: ",").map(String.init), methods: methods,
    tokens: option("tokens").flatMap(Int.init) ?? 16384, pattern: pattern,
    threads: option("threads").flatMap(Int.init) ?? 2, runs: option("runs").flatMap(Int.init) ?? 3)
case "forward":
  if let path = option("model"), !FileManager.default.fileExists(atPath: path) {
    FileHandle.standardError.write(
      Data(
        "prune-bench forward: no model at \(path). Hint: run scripts/fetch-model.sh, or drop --model for random weights.\n"
          .utf8))
    exit(2)
  }
  runForwardBenchmark(
    tokens: option("tokens").flatMap(Int.init) ?? 1024, layers: option("layers").flatMap(Int.init) ?? 30,
    threads: option("threads").flatMap(Int.init) ?? Parallelism.processorCount,
    runs: option("runs").flatMap(Int.init) ?? 3,
    modelPath: flag("random") ? nil : (option("model") ?? ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
case "pipeline":
  let methods = methodList(option("methods") ?? "magnitude,wanda,sparsegpt,admm,fista", bench: "pipeline")
  guard let pattern = try? SparsityPattern(parsing: option("sparsity") ?? "0.5"),
    let proto = EvaluationProtocol(rawValue: option("protocol") ?? "austen-quick")
  else {
    FileHandle.standardError.write(Data("prune-bench pipeline: bad --sparsity or --protocol\n".utf8))
    exit(2)
  }
  var blocks: ClosedRange<Int>? = nil
  if let spec = option("blocks") {
    let v = spec.split(separator: "-").compactMap { Int($0) }
    guard v.count == 2, v[0] <= v[1] else {
      FileHandle.standardError.write(Data("prune-bench pipeline: --blocks is A-B, got \(spec)\n".utf8))
      exit(2)
    }
    blocks = v[0]...v[1]
  }
  let modelPath = option("model") ?? ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
  guard FileManager.default.fileExists(atPath: modelPath) else {
    FileHandle.standardError.write(
      Data("prune-bench pipeline: no model at \(modelPath). Hint: run scripts/fetch-model.sh.\n".utf8))
    exit(2)
  }
  do {
    try runPipelineBenchmark(
      model: URL(fileURLWithPath: modelPath), methods: methods, pattern: pattern, evaluation: proto, blocks: blocks,
      threads: option("threads").flatMap(Int.init) ?? 2, eval: flag("eval"),
      outDirectory: URL(fileURLWithPath: option("out") ?? NSTemporaryDirectory() + "prune-bench-pipeline"))
  } catch {
    FileHandle.standardError.write(Data("prune-bench pipeline: \(error)\n".utf8))
    exit(1)
  }
case "help", "--help", "-h":
  print(usage)
default:
  FileHandle.standardError.write(Data("prune-bench: unknown benchmark '\(benchmark)'\n\(usage)\n".utf8))
  exit(2)
}
