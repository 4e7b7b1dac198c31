// prune model: prune every linear layer of a real checkpoint and write a Hugging Face folder. The
// work is done by `ModelJob` and `ModelPruner` (PrunePipeline); this file parses the options, prints
// progress to standard error and the summary to standard output.

import Foundation
import PruneKit

extension Command {
  static let model = Command(
    name: "model", summary: "prune a whole model (GGUF or Hugging Face folder) and write a Hugging Face folder",
    usage: modelUsage(), run: { args in try runModel(&args) })
}

func modelUsage() -> String {
  let methods = PruningMethod.pipelineMethods.map(\.rawValue).joined(separator: "|")
  return """
    Usage: prune model --model M --method \(methods)
                       (--sparsity RATIO | --pattern N:M)
                       (--protocol austen-quick|austen-std | --calib FILE --nsamples N --seqlen L)
                       --out DIR [--resume] [--report R.json] [--schedule sequential|corrected]
                       [--blocks A-B] [--jobs J] [--eval P | --no-eval] [--threads N] [--quiet] [--json]
                       [method options, as in 'prune help layer']

    Prunes every linear layer of every decoder block (q, k, v, o, gate, up, down for LLaMA; the OPT
    and GPT-2 equivalents); embeddings, norms and the head stay dense.

      --model M        a GGUF file or a Hugging Face folder (never modified)
      --method NAME    \(methods)
      --sparsity S     unstructured ratio, e.g. 0.5 (per row for wanda, per matrix otherwise;
                       0.5/row or 0.5/matrix to choose)
      --pattern N:M    e.g. 2:4
      --protocol P     calibrate on the protocol's calibration text (austen-quick: 16 windows of
                       1024 tokens of emma.txt) and evaluate on its evaluation text
      --calib FILE     calibrate on the first N windows of L tokens of a UTF-8 text instead
      --nsamples N     calibration windows (with --calib; default 128)
      --seqlen L       tokens per window (with --calib; default 2048)
      --out DIR        the pruned model: config.json, model.safetensors (F32, exact zeros),
                       tokenizer files, pruning-report.json. Must not exist; built under a temporary
                       name and renamed when complete.       (Wanda: --save_model)
      --resume         continue an interrupted run from DIR.checkpoint (the same settings are
                       required); the result is bit-identical to an uninterrupted run
      --report R       also write the JSON report to R
      --schedule S     sequential: each block sees the pruned earlier blocks' output (SparseGPT,
                       Wanda, ADMM; the default except for fista); corrected: FISTAPruner's intra-layer
                       error correction on the dense model's activations (the default for fista);
                       sparsellm: SparseLLM's driver (attention local, FFN layers pruned together
                       against the pruned attention's output; sparsellm's only schedule)
      --blocks A-B     prune only blocks A..B (corrected: any range; sequential: from 0)
      --jobs J         prune J blocks at once (corrected only; threads are split between them)
      --eval P         perplexity of the pruned model on protocol P's evaluation text (default:
                       the --protocol given); --no-eval skips it
      --threads N      kernel threads (default: all processors); results do not depend on it
      --corpus DIR     the Austen corpus for --protocol (default: the embedded Fixtures/janeausten)
      --quiet          no progress lines
      --json           print the summary as one JSON line (the full report is in DIR/pruning-report.json)

    Wanda's and SparseGPT's spellings are accepted: --prune_method, --sparsity_ratio,
    --sparsity_type unstructured|N:M, --save_model DIR, --prunen N --prunem M, and among the method
    options --blocksize for --block-size and --percdamp for --damping.

    Progress (block, layer, realised sparsity, relative error, elapsed, ETA) goes to standard error;
    the summary, with the realised overall sparsity, to standard output. A checkpoint is written after
    every block to DIR.checkpoint and removed once DIR is complete. Exit status: 0 on success; 1 when
    a file cannot be read or written or a layer fails; 2 for usage errors.
    """
}

extension PruningMethod {
  /// The methods that prune a whole model (exact enumerates masks and suits tiny layers only).
  static let pipelineMethods: [PruningMethod] = [.magnitude, .wanda, .sparsegpt, .admm, .fista, .refit, .apt, .sparsellm]
}

/// The pattern from --sparsity/--pattern and their Wanda and SparseGPT spellings.
func parsePattern(_ args: inout Arguments, method: PruningMethod) throws -> SparsityPattern {
  var sparsity = args.string("sparsity", aliases: ["sparsity_ratio"])
  var nOfM = args.string("pattern")
  if let type = args.string("sparsity_type") {
    if type != "unstructured" {
      guard nOfM == nil else { throw CLIError("--pattern and --sparsity_type both given", hint: "give one of them") }
      if let s = sparsity, Double(s) != 0.5, type.contains(":") {
        throw CLIError("--sparsity_type \(type) with --sparsity_ratio \(s)", hint: "an N:M type fixes the ratio; drop --sparsity_ratio or give 0.5 as Wanda does")
      }
      nOfM = type
      sparsity = nil
    }
  }
  let n = args.string("prunen"), m = args.string("prunem")
  if n != nil || m != nil {
    guard let n, let m, nOfM == nil else {
      throw CLIError("--prunen and --prunem go together, instead of --pattern", hint: "write --prunen 2 --prunem 4, or --pattern 2:4")
    }
    nOfM = "\(n):\(m)"
    if let s = sparsity, Double(s) == 0 || s.isEmpty { sparsity = nil }  // SparseGPT passes --sparsity 0 with N:M
  }
  do throws(LayerJobError) {
    return try LayerJob.pattern(sparsity: sparsity, nOfM: nOfM, method: method)
  } catch {
    throw CLIError(error, exitCode: 2)
  }
}

func parseMethod(_ args: inout Arguments) throws -> PruningMethod {
  let names = PruningMethod.pipelineMethods.map(\.rawValue).joined(separator: ", ")
  let name = try args.required("method", aliases: ["prune_method"], hint: "one of \(names)")
  guard let method = PruningMethod(rawValue: name), PruningMethod.pipelineMethods.contains(method) else {
    throw CLIError("unknown method '\(name)' for a whole model", hint: "one of \(names)")
  }
  return method
}

func parseProtocol(_ name: String?) throws -> EvaluationProtocol? {
  guard let name else { return nil }
  guard let p = EvaluationProtocol(rawValue: name) else {
    throw CLIError("unknown protocol '\(name)'", hint: "one of \(EvaluationProtocol.allCases.map(\.rawValue).joined(separator: ", "))")
  }
  return p
}

func runModel(_ args: inout Arguments) throws {
  let modelPath = try args.required("model", hint: "give a GGUF file or a Hugging Face folder: --model PATH")
  let method = try parseMethod(&args)
  let pattern = try parsePattern(&args, method: method)
  let parsed = try parseMethodOptions(&args, for: method)
  let protocolName = args.string("protocol")
  let calibPath = args.string("calib")
  let nsamplesGiven = args.string("nsamples") != nil, seqlenGiven = args.string("seqlen") != nil
  let nsamples = try args.int("nsamples", default: 128, range: 1...1 << 20)
  let seqlen = try args.int("seqlen", default: 2048, range: 2...1 << 20)
  let out = try args.required("out", aliases: ["save_model"], hint: "give the folder for the pruned model: --out DIR")
  let resume = args.flag("resume")
  let reportPath = args.string("report")
  let scheduleName = args.string("schedule")
  let blocksText = args.string("blocks")
  let jobs = try args.int("jobs", default: 1, range: 1...256)
  let evalName = args.string("eval")
  let noEval = args.flag("no-eval")
  let threads = try args.int("threads", default: Parallelism.processorCount, range: 1...4096)
  let quiet = args.flag("quiet")
  let json = args.flag("json")
  let corpusPath = args.string("corpus")
  try args.finish()

  let calibration: CalibrationSource
  switch (try parseProtocol(protocolName), calibPath) {
  case (nil, nil):
    throw CLIError("no calibration text", hint: "give --protocol austen-quick, or --calib FILE --nsamples N --seqlen L")
  case (_?, _?):
    throw CLIError("--protocol and --calib both given", hint: "calibrate on one of them")
  case let (p?, nil):
    if nsamplesGiven || seqlenGiven {
      throw CLIError("--protocol sets the calibration windows itself", hint: "drop --nsamples and --seqlen, or use --calib FILE")
    }
    calibration = .protocolText(p)
  case let (nil, path?):
    guard !path.isEmpty else { throw CLIError("--calib needs a file", hint: "write --calib FILE") }
    calibration = .file(URL(fileURLWithPath: path), windows: nsamples, sequenceLength: seqlen)
  }
  var evaluation = try parseProtocol(evalName)
  if evaluation == nil, case let .protocolText(p) = calibration { evaluation = p }
  if noEval {
    guard evalName == nil else { throw CLIError("--eval and --no-eval both given", hint: "give one of them") }
    evaluation = nil
  }
  var schedule: PruningSchedule? = nil
  if let scheduleName {
    guard let s = PruningSchedule(rawValue: scheduleName) else {
      throw CLIError("unknown schedule '\(scheduleName)'", hint: "sequential, corrected or sparsellm")
    }
    schedule = s
  }
  var blocks: ClosedRange<Int>? = nil
  if let blocksText {
    let parts = blocksText.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
    switch parts.count {
    case 1 where parts[0] != nil: blocks = parts[0]!...parts[0]!
    case 2 where parts[0] != nil && parts[1] != nil && parts[0]! <= parts[1]!: blocks = parts[0]!...parts[1]!
    default: throw CLIError("--blocks takes A-B, got '\(blocksText)'", hint: "write e.g. --blocks 0-9 or --blocks 12")
    }
  }
  Parallelism.defaultThreads = threads

  let plan = ModelPruningPlan(
    method: method, pattern: pattern, options: parsed.options, givenOptions: parsed.given, schedule: schedule,
    blocks: blocks, jobs: jobs)
  let job = ModelJob(
    model: URL(fileURLWithPath: modelPath), plan: plan, calibration: calibration, output: URL(fileURLWithPath: out),
    report: reportPath.map { URL(fileURLWithPath: $0) }, resume: resume, evaluation: evaluation,
    corpus: corpusPath.map { URL(fileURLWithPath: $0) })
  let printer = ProgressPrinter(quiet: quiet, prefix: "model")
  let faults = FaultInjection()
  do throws(ModelJobError) {
    let report = try job.run { event in
      printer.print(event)
      faults.reached(event)
    }
    print(json ? modelJSONLine(report) : modelSummary(report), terminator: "")
  } catch {
    throw CLIError(error, exitCode: error.isUsageError ? 2 : 1)
  }
}

/// Test hooks for the fault tests (Tests/fault-kill.sh, Tests/fault-disk.sh). With
/// PRUNEKIT_KILL_AT=POINT in the environment, `prune model` sends itself SIGKILL right after the
/// event POINT; with PRUNEKIT_STOP_AT=POINT it stops itself (SIGSTOP) there until the test sends
/// SIGCONT, e.g. after filling the disk. They put a fault exactly at the delicate moments of a
/// run, which a kill from outside at a random time rarely hits. POINT is one of: loaded (model
/// read, nothing written), calibrated, started (the checkpoint folder exists, no block yet),
/// block-N (block N's checkpoint file is written), writing (all blocks done, the output not yet
/// written), written (the output folder is in place, the checkpoint not yet removed). Unset,
/// nothing happens.
struct FaultInjection {
  var killAt: String?
  var stopAt: String?

  /// The points named in the environment.
  init(environment: [String: String] = ProcessInfo.processInfo.environment) {
    killAt = environment["PRUNEKIT_KILL_AT"].flatMap { $0.isEmpty ? nil : $0 }
    stopAt = environment["PRUNEKIT_STOP_AT"].flatMap { $0.isEmpty ? nil : $0 }
  }

  /// The name of an event as a fault point.
  static func name(_ event: ModelJob.Event) -> String? {
    switch event {
    case .loaded: return "loaded"
    case .calibration: return "calibrated"
    case .pruning(.started): return "started"
    case let .pruning(.block(b, _, _, _, _)): return "block-\(b)"
    case .writing: return "writing"
    case .written: return "written"
    default: return nil
    }
  }

  /// Stops or kills this process when `event` is the point asked for.
  func reached(_ event: ModelJob.Event) {
    guard let point = Self.name(event) else { return }
    if point == stopAt {
      printError("prune: PRUNEKIT_STOP_AT=\(point): stopping this process until SIGCONT (fault test)")
      raise(SIGSTOP)
    }
    if point == killAt {
      printError("prune: PRUNEKIT_KILL_AT=\(point): killing this process (fault test)")
      raise(SIGKILL)
    }
  }
}

/// Prints the events of a run to standard error, one line each.
final class ProgressPrinter: @unchecked Sendable {
  let quiet: Bool
  let prefix: String
  private var totalBlocks = 0
  private var lastEval = 0.0

  init(quiet: Bool, prefix: String) {
    self.quiet = quiet
    self.prefix = prefix
  }

  func print(_ event: ModelJob.Event) {
    guard !quiet else { return }
    switch event {
    case let .loaded(model, blocks, parameters, seconds):
      line(String(format: "%@: %ld blocks, %.1fM parameters, loaded in %.1f s", model, blocks, Double(parameters) / 1e6, seconds))
    case let .calibration(tokens, windows, length, source):
      line("calibration: \(source): \(windows) window(s) of \(length) tokens (\(tokens) tokens)")
    case let .pruning(e):
      print(e)
    case let .evaluating(p):
      if p.window == 1 { lastEval = 0 }
      if p.window == p.windows || p.seconds - lastEval > 10 {
        lastEval = p.seconds
        line(String(format: "eval: window %ld/%ld  perplexity %.4f  %.1f s", p.window, p.windows, p.perplexity, p.seconds))
      }
    case let .writing(url, size):
      line("writing \(url.path) (\(bytes(size)))")
    case let .written(url):
      line("wrote \(url.path)")
    }
  }

  func print(_ e: ModelPruningEvent) {
    guard !quiet else { return }
    switch e {
    case let .started(blocks, estimate):
      totalBlocks = blocks.count
      let range = blocks.count > 0 ? "\(blocks.first!)-\(blocks.last!)" : "none"
      line(String(
        format: "pruning blocks %@ (%ld); memory estimate %@ (model %@, activations %@, one block %@, Grams %@)", range,
        blocks.count, bytes(estimate.totalBytes), bytes(estimate.modelBytes), bytes(estimate.hiddenBytes),
        bytes(estimate.blockBytes), bytes(estimate.gramBytes)))
    case let .resumed(blocks):
      line("resumed: block \(blocks.map(String.init).joined(separator: ", ")) taken from the checkpoint")
    case let .layer(r, elapsed):
      let extra = [r.report.lambda.map { String(format: "λ %.3g", $0) }, r.report.damping.map { String(format: "damping %.3g", $0) }]
        .compactMap { $0 }.joined(separator: "  ")
      line(String(
        format: "block %ld %@ [%ld×%ld]  sparsity %.4f  rel.err %.3e  %@  %.2f s  (elapsed %@)", r.block,
        shortName(r.name), r.shape[0], r.shape[1], r.report.realisedSparsity, r.report.relativeError, extra, r.report.seconds,
        formatSeconds(elapsed)))
    case let .block(b, done, of, elapsed, eta):
      line("block \(b) done (\(done)/\(of))  elapsed \(formatSeconds(elapsed))" + (eta.map { "  ETA \(formatSeconds($0))" } ?? ""))
    }
  }

  private func line(_ s: String) { printError("\(prefix): \(s)") }
}

func shortName(_ name: String) -> String {
  // model.layers.3.self_attn.q_proj -> self_attn.q_proj
  let parts = name.split(separator: ".")
  if let i = parts.firstIndex(where: { Int($0) != nil }), i + 1 < parts.count { return parts[(i + 1)...].joined(separator: ".") }
  return name
}

func bytes(_ n: Int) -> String {
  n >= 1 << 30 ? String(format: "%.2f GB", Double(n) / Double(1 << 30)) : String(format: "%.0f MB", Double(n) / Double(1 << 20))
}

/// The summary as one JSON line (sorted keys), for scripts and benchmarks.
func modelJSONLine(_ r: ModelReport) -> String {
  let s = r.summary
  var fields: [String: String] = [
    "method": "\"\(r.method)\"", "pattern": "\"\(r.pattern)\"", "schedule": "\"\(s.schedule.rawValue)\"",
    "blocks": "\(s.blocks.count)", "layers": "\(s.layers.count)", "realised_sparsity": "\(s.realisedSparsity)",
    "overall_sparsity": "\(s.overallSparsity)", "mean_relative_error": "\(s.meanRelativeError)",
    "prune_seconds": String(format: "%.1f", s.seconds), "total_seconds": String(format: "%.1f", r.totalSeconds),
    "peak_rss_mb": "\(r.peakResidentBytes >> 20)", "threads": "\(r.threads)", "jobs": "\(r.jobs)",
  ]
  if let p = r.perplexity { fields["perplexity"] = String(format: "%.4f", p.perplexity) }
  return "{" + fields.keys.sorted().map { "\"\($0)\":\(fields[$0]!)" }.joined(separator: ",") + "}\n"
}

/// The summary a person reads: what was pruned, the realised sparsity, quality and cost.
func modelSummary(_ r: ModelReport) -> String {
  let s = r.summary
  var text = "\(r.method) \(r.pattern) (\(s.schedule.rawValue) schedule) on \(r.model): \(s.blocks.count) blocks, \(s.layers.count) layers"
  if !s.resumedBlocks.isEmpty { text += " (\(s.resumedBlocks.count) resumed)" }
  text += "\n"
  text += String(
    format: "  realised sparsity %.4f of the pruned layers (%ld of %ld weights), %.4f of all %.1fM parameters\n",
    s.realisedSparsity, s.zeroParameters, s.prunableParameters, s.overallSparsity, Double(s.totalParameters) / 1e6)
  text += String(format: "  mean relative layer error %.4e\n", s.meanRelativeError)
  if let p = r.perplexity, let e = r.evaluation {
    text += String(format: "  perplexity %.4f on %@ (%ld predicted tokens)\n", p.perplexity, e, p.tokens)
  }
  text += String(format: "  time %@ (pruning %@), peak memory %@\n", formatSeconds(r.totalSeconds), formatSeconds(s.seconds), bytes(r.peakResidentBytes))
  text += "  wrote \(r.output)\n"
  return text
}

extension Command {
  static let merge = Command(
    name: "merge", summary: "join block ranges pruned by separate 'prune model --blocks' runs into one model",
    usage: """
      Usage: prune merge --model M --parts DIR1,DIR2,... --out DIR

      Under the corrected schedule (FISTAPruner's) blocks are pruned independently, so a model can be
      split: 'prune model ... --blocks 0-14 --out A' and '... --blocks 15-29 --out B' in two processes
      or on two machines, then 'prune merge --model M --parts A,B --out DIR'. The parts must come from
      the same model, method, pattern, options and calibration, and their blocks must not overlap;
      blocks no part pruned stay dense. DIR gets the merged weights and a merged pruning-report.json.
      Exit status: 0 on success; 1 when a file cannot be read or written; 2 for usage errors.
      """,
    run: { args in try runMerge(&args) })
}

func runMerge(_ args: inout Arguments) throws {
  let modelPath = try args.required("model", hint: "give the dense model the parts were pruned from: --model PATH")
  let partsText = try args.required("parts", hint: "give the part folders: --parts A,B")
  let out = try args.required("out", hint: "give the folder for the merged model: --out DIR")
  try args.finish()
  let merge = ModelMerge(
    model: URL(fileURLWithPath: modelPath), parts: partsText.split(separator: ",").map { URL(fileURLWithPath: String($0)) },
    output: URL(fileURLWithPath: out))
  do throws(ModelJobError) {
    let report = try merge.run()
    print(modelSummary(report), terminator: "")
  } catch {
    throw CLIError(error, exitCode: error.isUsageError ? 2 : 1)
  }
}
