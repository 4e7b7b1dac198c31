// prune layer: prune one linear layer given as a layer-problem file. The work is done by
// `LayerJob` (PruneOracle); this file parses the options and prints the outcome.

import Foundation
import PruneKit

extension Command {
  static let layer = Command(
    name: "layer", summary: "prune one linear layer from a layer-problem file",
    forms: [
      Form([
        .required(LayerOptions.problem), .required(LayerOptions.method),
        .oneOf([[.required(LayerOptions.sparsity)], [.required(LayerOptions.pattern)]], required: true),
        .required(LayerOptions.out), .optional(LayerOptions.report), .optional(LayerOptions.mask),
        .optional(LayerOptions.maskOut),
        .optional(LayerOptions.precision), .optional(SharedOptions.threads), .text("[method options]"),
      ])
    ],
    about: """
      Prunes one linear layer. P holds 'weight' [out, in] and 'inputs' [tokens, in] or 'gram' [in, in]
      (optionally 'cross_gram' with 'dense_gram', and 'count'); see Docs/layer-problem-file.md.
      """,
    sections: [
      OptionSection([
        LayerOptions.problem, LayerOptions.method, LayerOptions.sparsity, LayerOptions.pattern, LayerOptions.out,
        LayerOptions.report, LayerOptions.mask, LayerOptions.maskOut, LayerOptions.precision, SharedOptions.threads,
      ]),
      OptionSection(
        """
        Method options (--name value; each applies to the methods in brackets, and is recorded in the
        report's options under its name with '_' for '-'):
        """, methodOptionDeclarations.map(\.declaration)),
    ],
    epilogue: """
      Prints a summary to standard output. Exit status: 0 on success; 1 when a file cannot be read or
      written or the method fails; 2 for usage errors (unknown or bad options, a pattern that does not
      fit the layer, an output path equal to an input).
      """,
    run: runLayer)
}

/// The options of `prune layer` (the method options are `methodOptionDeclarations`).
enum LayerOptions {
  static let problem = Option.path(
    "problem", placeholder: "P.safetensors", help: "the layer-problem file (never overwritten)")
  static let method = Option.choice(
    "method", among: PruningMethod.allCases, placeholder: "NAME",
    help: "the pruning method: \(PruningMethod.allCases.map(\.rawValue).joined(separator: ", "))")
  static let sparsity = Option.text(
    "sparsity", placeholder: "RATIO",
    help: "unstructured ratio in [0, 1): 0.5, 50%, 0.5/row or 0.5/matrix; without a suffix wanda compares per row"
      + " and every other method over the whole matrix")
  static let pattern = Option.text(
    "pattern", placeholder: "N:M", help: "N pruned in every M consecutive inputs, e.g. 2:4 (in must be a multiple of M)"
  )
  static let out = Option.path(
    "out", placeholder: "W.safetensors",
    help: "the pruned weight: 'weight' [out, in] F32 with exact zeros (written atomically)")
  static let report = Option.path(
    "report", placeholder: "R.json",
    help: "the report as JSON (sorted keys): the method's measurements and the run's context")
  static let mask = Option.path(
    "mask", placeholder: "M.safetensors",
    help: "a mask file ('mask' [out, in] U8/BOOL, 1 = kept) used instead of the method's own selection;"
      + " \(LayerJob.maskMethods.map(\.rawValue).joined(separator: ", ")) only")
  static let maskOut = Option.path(
    "mask-out", placeholder: "M.safetensors", help: "write the chosen mask ('mask' [out, in] U8)")
  static let precision = Option.choice(
    "precision", among: LayerJob.Precision.allCases, placeholder: "P", default: .float,
    help: "the scalar type of the solve")
}

func runLayer(_ args: Arguments) throws {
  let method = args.value(LayerOptions.method)
  let parsed = try parseMethodOptions(args, for: method)
  Parallelism.defaultThreads = args.value(SharedOptions.threads)
  do throws(LayerJobError) {
    let pattern = try LayerJob.pattern(
      sparsity: args[LayerOptions.sparsity], nOfM: args[LayerOptions.pattern], method: method)
    let job = LayerJob(
      problem: args.value(LayerOptions.problem), method: method, pattern: pattern, options: parsed.options,
      givenOptions: parsed.given, mask: args[LayerOptions.mask], output: args.value(LayerOptions.out),
      report: args[LayerOptions.report], maskOutput: args[LayerOptions.maskOut],
      precision: args.value(LayerOptions.precision))
    let outcome = try job.run()
    print(summary(outcome), terminator: "")
  } catch {
    throw CLIError(error, exitCode: error.isUsageError ? 2 : 1)
  }
}

/// A few lines for a person: what ran, what it achieved, what was written.
func summary(_ o: LayerJobOutcome) -> String {
  let r = o.report
  let source =
    o.gramSource == .inputs ? "inputs, \(o.tokens) tokens" : (o.tokens > 0 ? "gram, \(o.tokens) tokens" : "gram")
  var text =
    "\(r.method) \(r.pattern) on [\(o.outputs) × \(o.inputs)] (\(source)\(o.isErrorCorrected ? ", error-corrected" : ""), \(o.precision.rawValue))\n"
  text += String(
    format: "  sparsity %.4f   relative error %.6e   %.3g s\n", r.realisedSparsity, r.relativeError, r.seconds)
  for note in r.notes { text += "  note: \(note)\n" }
  text += "  wrote \(o.written.map(\.path).joined(separator: ", "))\n"
  return text
}
