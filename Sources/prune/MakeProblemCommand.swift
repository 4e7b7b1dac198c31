// prune make-problem: a hidden test helper that writes a small seeded layer-problem file
// (SyntheticLayerProblem), optionally with one deliberate defect, so that Tests/cli-smoke.sh can
// exercise `prune layer` and its error messages without Python or a model.

import Foundation
import PruneKit

extension Command {
  static let makeProblem = Command(
    name: "make-problem", summary: "test helper: write a small seeded layer-problem file",
    usage: """
      Usage: prune make-problem --out P.safetensors [--rows 8] [--columns 16] [--tokens 64] [--seed 1]
                                [--form inputs|gram|corrected] [--defect NAME]

      Test helper (used by Tests/cli-smoke.sh; not listed by 'prune help'). Writes a seeded random
      layer problem: W uniform in [-1, 1], inputs with outlier-scaled, correlated features.

        --form inputs     'weight' F32, 'inputs' F32 [tokens, columns], 'count' (default)
        --form gram       'weight' F32, 'gram' F64 accumulated in Double, 'count'
        --form corrected  'gram' = G* of X* = X + noise, 'cross_gram' K, 'dense_gram' G, 'count'
        --defect NAME     none | no-weight | no-data | inputs-shape | gram-shape | nan-inputs |
                          inf-weight | asymmetric | no-dense-gram | truncated
      """,
    run: { args in try runMakeProblem(&args) }, hidden: true)
}

func runMakeProblem(_ args: inout Arguments) throws {
  let outPath = try args.required("out", hint: "give the file to write: --out P.safetensors")
  let rows = try args.int("rows", default: 8, range: 1...1 << 16)
  let columns = try args.int("columns", default: 16, range: 1...1 << 16)
  let tokens = try args.int("tokens", default: 64, range: 1...1 << 24)
  let seed = try args.int("seed", default: 1, range: 0...Int.max)
  let form = args.string("form") ?? "inputs"
  let defect = args.string("defect") ?? "none"
  try args.finish()
  let forms = ["inputs", "gram", "corrected"]
  let defects = [
    "none", "no-weight", "no-data", "inputs-shape", "gram-shape", "nan-inputs", "inf-weight", "asymmetric",
    "no-dense-gram", "truncated",
  ]
  guard forms.contains(form) else { throw CLIError("unknown --form '\(form)'", hint: forms.joined(separator: ", ")) }
  guard defects.contains(defect) else { throw CLIError("unknown --defect '\(defect)'", hint: defects.joined(separator: ", ")) }

  var (w, x) = SyntheticLayerProblem.make(rows: rows, columns: columns, tokens: tokens, seed: UInt64(seed))
  if defect == "nan-inputs" { x[tokens / 2, columns / 2] = .nan }
  if defect == "inf-weight" { w[rows - 1, 0] = .infinity }
  if defect == "inputs-shape" { x = x.submatrix(rows: 0..<tokens, columns: 0..<max(1, columns - 1)) }
  let xd = x.converted(to: Double.self)
  var writer = SafetensorsWriter(metadata: ["generator": "prune make-problem", "seed": "\(seed)", "form": form])
  if defect != "no-weight" { try writer.add("weight", matrix: w) }
  try writer.add("count", shape: [1], .f64([Double(tokens)]))
  if defect != "no-data" {
    switch form {
    case "inputs":
      try writer.add("inputs", matrix: x)
    case "gram":
      var g = gram(xd)
      if defect == "asymmetric" && columns > 1 { g[0, columns - 1] += 1 + abs(g[0, columns - 1]) }
      if defect == "gram-shape" { g = g.submatrix(rows: 0..<columns, columns: 0..<max(1, columns - 1)) }
      try writer.add("gram", matrix: g)
    default:
      // X* = X + a small seeded perturbation: the inputs an already-pruned earlier layer passes on.
      let noise = SyntheticLayerProblem.make(rows: 1, columns: columns, tokens: tokens, seed: UInt64(seed) &+ 1).inputs
      var xStar = xd
      for t in 0..<tokens { for j in 0..<columns { xStar[t, j] += 0.05 * Double(noise[t, j]) } }
      try writer.add("gram", matrix: gram(xStar))
      try writer.add("cross_gram", matrix: matmul(xd, xStar, transposeA: true))
      if defect != "no-dense-gram" { try writer.add("dense_gram", matrix: gram(xd)) }
    }
  }
  var data = writer.serialized()
  if defect == "truncated" { data = data.prefix(data.count - 4) }
  do {
    try AtomicOutput.write(data, to: URL(fileURLWithPath: outPath))
  } catch {
    throw CLIError(LayerJobError.write(error), exitCode: 1)
  }
  print("wrote \(outPath): [\(rows) × \(columns)], \(tokens) tokens, form \(form), defect \(defect), seed \(seed)")
}
