// prune make-problem: a hidden test helper that writes a small seeded layer-problem file
// (SyntheticLayerProblem), optionally with one deliberate defect, so that Tests/cli-smoke.sh can
// exercise `prune layer` and its error messages without Python or a model.

import Foundation
import PruneKit

extension Command {
  static let makeProblem = Command(
    name: "make-problem", summary: "test helper: write a small seeded layer-problem file",
    forms: [
      Form(
        [.required(MakeProblemOptions.out)]
          + ([
            MakeProblemOptions.rows, MakeProblemOptions.columns, MakeProblemOptions.tokens, MakeProblemOptions.seed,
            MakeProblemOptions.form, MakeProblemOptions.defect,
          ] as [any DeclaredOption]).map { Synopsis.optional($0) })
    ],
    about: """
      Test helper (used by Tests/cli-smoke.sh; not listed by 'prune help'). Writes a seeded random
      layer problem: W uniform in [-1, 1], inputs with outlier-scaled, correlated features.
      """,
    sections: [
      OptionSection([
        MakeProblemOptions.out, MakeProblemOptions.rows, MakeProblemOptions.columns, MakeProblemOptions.tokens,
        MakeProblemOptions.seed, MakeProblemOptions.form, MakeProblemOptions.defect,
      ])
    ],
    hidden: true, run: runMakeProblem)
}

/// The options of `prune make-problem`.
enum MakeProblemOptions {
  static let out = Option.text("out", placeholder: "P.safetensors", help: "the file to write")
  static let rows = Option.integer("rows", in: 1...1 << 16, default: 8, help: "outputs of W")
  static let columns = Option.integer("columns", in: 1...1 << 16, default: 16, help: "inputs of W")
  static let tokens = Option.integer("tokens", in: 1...1 << 24, default: 64, help: "calibration tokens")
  static let seed = Option.integer("seed", in: 0...Int.max, default: 1, help: "seed of W and the inputs")
  static let form = Option.choice(
    "form", among: ["inputs", "gram", "corrected"], placeholder: "F", default: "inputs",
    help: """
      inputs: 'weight' F32, 'inputs' F32 [tokens, columns], 'count'
      gram: 'weight' F32, 'gram' F64 accumulated in Double, 'count'
      corrected: 'gram' = G* of X* = X + noise, 'cross_gram' K, 'dense_gram' G, 'count'
      """)
  static let defects = [
    "none", "no-weight", "no-data", "inputs-shape", "gram-shape", "nan-inputs", "inf-weight", "asymmetric",
    "no-dense-gram",
    "truncated",
  ]
  static let defect = Option.choice(
    "defect", among: defects, placeholder: "NAME", default: "none",
    help: "one deliberate defect of the file: \(defects.joined(separator: ", "))")
}

func runMakeProblem(_ args: Arguments) throws {
  let outPath = args.value(MakeProblemOptions.out)
  let rows = args.value(MakeProblemOptions.rows)
  let columns = args.value(MakeProblemOptions.columns)
  let tokens = args.value(MakeProblemOptions.tokens)
  let seed = args.value(MakeProblemOptions.seed)
  let form = args.value(MakeProblemOptions.form)
  let defect = args.value(MakeProblemOptions.defect)

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
