// prune layer: prune one linear layer given as a layer-problem file. The work is done by
// `LayerJob` (PruneOracle); this file parses the options and prints the outcome.

import Foundation
import PruneKit

extension Command {
  static let layer = Command(
    name: "layer", summary: "prune one linear layer from a layer-problem file", usage: layerUsage(),
    run: { args in try runLayer(&args) })
}

/// The usage text, with the method-option table of `MethodOption.all`.
func layerUsage() -> String {
  let methods = PruningMethod.allCases.map(\.rawValue).joined(separator: "|")
  var text = """
    Usage: prune layer --problem P.safetensors --method \(methods)
                       (--sparsity RATIO | --pattern N:M) --out W.safetensors
                       [--report R.json] [--mask M.safetensors] [--mask-out M.safetensors]
                       [--precision float|double] [--threads N] [method options]

    Prunes one linear layer. P holds 'weight' [out, in] and 'inputs' [tokens, in] or 'gram' [in, in]
    (optionally 'cross_gram' with 'dense_gram', and 'count'); see Docs/layer-problem-file.md.

      --problem P      the layer-problem file (never overwritten)
      --method NAME    \(methods)
      --sparsity S     unstructured ratio in [0, 1): 0.5, 50%, 0.5/row or 0.5/matrix; without a
                       suffix wanda compares per row and every other method over the whole matrix
      --pattern N:M    N pruned in every M consecutive inputs, e.g. 2:4 (in must be a multiple of M)
      --out W          the pruned weight: 'weight' [out, in] F32 with exact zeros (written atomically)
      --report R       the report as JSON (sorted keys): the method's measurements and the run's context
      --mask M         a mask file ('mask' [out, in] U8/BOOL, 1 = kept) used instead of the
                       method's own selection; refit, admm and apt only
      --mask-out M     write the chosen mask ('mask' [out, in] U8)
      --precision P    float (default) or double: the scalar type of the solve
      --threads N      kernel threads (default: all processors); results do not depend on it

    Method options (--name value; each applies to the methods in brackets, and is recorded in the
    report's options under its name with '_' for '-'):

    
    """
  text += methodOptionsHelp()
  text += """

    Prints a summary to standard output. Exit status: 0 on success; 1 when a file cannot be read or
    written or the method fails; 2 for usage errors (unknown or bad options, a pattern that does not
    fit the layer, an output path equal to an input).
    """
  return text
}

/// `--name PATH` as a URL, or nil; a usage error when given without a value.
private func path(_ args: inout Arguments, _ name: String) throws -> URL? {
  guard let value = args.string(name) else { return nil }
  guard !value.isEmpty else { throw CLIError("--\(name) needs a path", hint: "write --\(name) FILE") }
  return URL(fileURLWithPath: value)
}

func runLayer(_ args: inout Arguments) throws {
  let methods = PruningMethod.allCases.map(\.rawValue).joined(separator: ", ")
  guard let problem = try path(&args, "problem") else {
    throw CLIError("missing --problem", hint: "give the layer-problem file: --problem P.safetensors")
  }
  let methodName = try args.required("method", hint: "one of \(methods)")
  guard let method = PruningMethod(rawValue: methodName) else {
    throw CLIError("unknown method '\(methodName)'", hint: "one of \(methods)")
  }
  let sparsity = args.string("sparsity")
  let nOfM = args.string("pattern")
  guard let output = try path(&args, "out") else {
    throw CLIError("missing --out", hint: "give the file for the pruned weight: --out W.safetensors")
  }
  let report = try path(&args, "report")
  let mask = try path(&args, "mask")
  let maskOutput = try path(&args, "mask-out")
  let precisionName = args.string("precision") ?? "float"
  guard let precision = LayerJob.Precision(rawValue: precisionName) else {
    throw CLIError(
      "--precision must be float or double, got '\(precisionName)'", hint: "float is the default; double solves in Double")
  }
  let threads = try args.int("threads", default: Parallelism.processorCount, range: 1...4096)
  let given = try readMethodOptions(&args)
  try args.finish()

  let parsed = try methodOptions(given, for: method)
  Parallelism.defaultThreads = threads
  do throws(LayerJobError) {
    let pattern = try LayerJob.pattern(sparsity: sparsity, nOfM: nOfM, method: method)
    let job = LayerJob(
      problem: problem, method: method, pattern: pattern, options: parsed.options, givenOptions: parsed.given, mask: mask,
      output: output, report: report, maskOutput: maskOutput, precision: precision)
    let outcome = try job.run()
    print(summary(outcome), terminator: "")
  } catch {
    throw CLIError(error, exitCode: error.isUsageError ? 2 : 1)
  }
}

/// A few lines for a person: what ran, what it achieved, what was written.
func summary(_ o: LayerJobOutcome) -> String {
  let r = o.report
  let source = o.gramSource == .inputs ? "inputs, \(o.tokens) tokens" : (o.tokens > 0 ? "gram, \(o.tokens) tokens" : "gram")
  var text = "\(r.method) \(r.pattern) on [\(o.outputs) × \(o.inputs)] (\(source)\(o.isErrorCorrected ? ", error-corrected" : ""), \(o.precision.rawValue))\n"
  text += String(format: "  sparsity %.4f   relative error %.6e   %.3g s\n", r.realisedSparsity, r.relativeError, r.seconds)
  for note in r.notes { text += "  note: \(note)\n" }
  text += "  wrote \(o.written.map(\.path).joined(separator: ", "))\n"
  return text
}
