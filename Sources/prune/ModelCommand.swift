// prune model: prune every linear layer of a real checkpoint and write a Hugging Face folder. The
// work is done by `ModelJob` and `ModelPruner` (PrunePipeline); this file parses the options, prints
// progress to standard error and the summary to standard output.

import Foundation
import PruneKit

extension Command {
  static let model = Command(
    name: "model", summary: "prune a whole model (GGUF or Hugging Face folder) and write a Hugging Face folder",
    forms: [
      Form([
        .required(ModelOptions.model), .required(ModelOptions.method),
        .oneOf([[.required(ModelOptions.sparsity)], [.required(ModelOptions.pattern)]], required: true),
        .oneOf(
          [
            [.required(ModelOptions.protocolName)],
            [.required(ModelOptions.calib), .optional(ModelOptions.nsamples), .optional(ModelOptions.seqlen)],
          ], required: true),
        .required(ModelOptions.out), .optional(ModelOptions.resume), .optional(ModelOptions.report),
        .optional(ModelOptions.schedule),
        .optional(ModelOptions.blocks), .optional(ModelOptions.jobs),
        .oneOf([[.required(ModelOptions.eval)], [.required(ModelOptions.noEval)]], required: false),
        .optional(SharedOptions.threads), .optional(ModelOptions.corpus), .optional(SharedOptions.quiet),
        .optional(ModelOptions.json), .optional(ModelOptions.dtype), .optional(ModelOptions.shardSize),
        .optional(ModelOptions.maxMemory), .optional(ModelOptions.spill),
        .optional(ModelOptions.allocation), .optional(ModelOptions.owlThreshold), .optional(ModelOptions.owlRange),
        .text("[method options]"),
      ])
    ],
    about: """
      Prunes every linear layer of every decoder block (q, k, v, o, gate, up, down for LLaMA; the OPT
      and GPT-2 equivalents); embeddings, norms and the head stay dense.
      """,
    sections: [
      OptionSection([
        ModelOptions.model, ModelOptions.method, ModelOptions.sparsity, ModelOptions.pattern, ModelOptions.protocolName,
        ModelOptions.calib, ModelOptions.nsamples, ModelOptions.seqlen, ModelOptions.out, ModelOptions.resume,
        ModelOptions.report,
        ModelOptions.schedule, ModelOptions.blocks, ModelOptions.jobs, ModelOptions.eval, ModelOptions.noEval,
        SharedOptions.threads,
        ModelOptions.corpus, SharedOptions.quiet, ModelOptions.json, ModelOptions.dtype, ModelOptions.shardSize,
        ModelOptions.maxMemory, ModelOptions.spill, ModelOptions.allocation, ModelOptions.owlThreshold,
        ModelOptions.owlRange,
      ]),
      OptionSection(
        """
        Wanda's and SparseGPT's spellings are accepted: --prune_method, --sparsity_ratio and
        --save_model (above), and these:
        """, [ModelOptions.sparsityType, ModelOptions.pruneN, ModelOptions.pruneM]),
      OptionSection(
        """
        Method options (--name value), as in 'prune help layer', where each names the methods it
        applies to:
        """, layout: .list,
        methodOptionDeclarations(for: PruningMethod.pipelineMethods)),
    ],
    epilogue: """
      Progress (block, layer, realised sparsity, relative error, elapsed, ETA) goes to standard error;
      the summary, with the realised overall sparsity, to standard output. Every pruned block is written
      into the output's shards, built in DIR.checkpoint (its journal lists the finished blocks), which
      is moved to DIR once complete. Exit status: 0 on success; 1 when
      a file cannot be read or written or a layer fails; 2 for usage errors.
      """,
    run: runModel)
}

extension PruningMethod {
  /// The methods that prune a whole model (exact enumerates masks and suits tiny layers only).
  static let pipelineMethods: [PruningMethod] = [
    .magnitude, .wanda, .sparsegpt, .admm, .fista, .refit, .apt, .sparsellm, .alps,
  ]
}

/// The options of `prune model` (the method options are `methodOptionDeclarations`).
enum ModelOptions {
  static let model = Option.path(
    "model", placeholder: "M", help: "a GGUF file or a Hugging Face folder (never modified)")
  static let method = Option.choice(
    "method", aliases: ["prune_method"], among: PruningMethod.pipelineMethods, placeholder: "NAME",
    scope: " for a whole model",
    help: "the pruning method: \(PruningMethod.pipelineMethods.map(\.rawValue).joined(separator: ", "))")
  static let sparsity = Option.text(
    "sparsity", aliases: ["sparsity_ratio"], placeholder: "RATIO",
    help:
      "unstructured ratio, e.g. 0.5; per row for wanda and per matrix otherwise, unless written 0.5/row or 0.5/matrix")
  static let pattern = Option.text("pattern", placeholder: "N:M", help: "N:M sparsity, e.g. 2:4")
  static let protocolName = Option.choice(
    "protocol", among: EvaluationProtocol.allCases, placeholder: "P",
    help: "calibrate on the protocol's calibration text (austen-quick: 16 windows of 1024 tokens of emma.txt) and"
      + " evaluate on its evaluation text")
  static let calib = Option.path(
    "calib", placeholder: "FILE", help: "calibrate on the first N windows of L tokens of a UTF-8 text instead")
  static let nsamples = Option.integer(
    "nsamples", in: 1...1 << 20, default: 128, help: "calibration windows, with --calib")
  static let seqlen = Option.integer(
    "seqlen", placeholder: "L", in: 2...1 << 20, default: 2048, help: "tokens per window, with --calib")
  static let out = Option.path(
    "out", aliases: ["save_model"], placeholder: "DIR",
    help: "the pruned model: config.json, model.safetensors (exact zeros; sharded with model.safetensors.index.json"
      + " beyond --shard-size), tokenizer files, pruning-report.json."
      + " Must not exist; built in DIR.checkpoint (whose shards are the checkpoint) and renamed when complete")
  static let resume = Flag(
    "resume",
    help: "continue an interrupted run from DIR.checkpoint (the same settings are required); the result is"
      + " bit-identical to an uninterrupted run")
  static let report = Option.path("report", placeholder: "R.json", help: "also write the JSON report to R")
  static let schedule = Option.choice(
    "schedule", among: PruningSchedule.allCases, placeholder: "S",
    help: "sequential: each block sees the pruned earlier blocks' output (SparseGPT, Wanda, ADMM, ALPS; the default"
      + " except for fista); corrected: FISTAPruner's intra-layer error correction on the dense model's activations"
      + " (the default for fista); sparsellm: SparseLLM's driver (attention local, FFN layers pruned together"
      + " against the pruned attention's output; sparsellm's only schedule)")
  static let blocks = Option<ClosedRange<Int>>(
    "blocks", placeholder: "A-B", help: "prune only blocks A..B (corrected: any range; sequential: from 0)"
  ) { text, spelling throws(CLIError) in
    let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
    switch parts.count {
    case 1 where parts[0] != nil: return parts[0]!...parts[0]!
    case 2 where parts[0] != nil && parts[1] != nil && parts[0]! <= parts[1]!: return parts[0]!...parts[1]!
    default: throw CLIError("\(spelling) takes A-B, got '\(text)'", hint: "write e.g. --blocks 0-9 or --blocks 12.")
    }
  }
  static let jobs = Option.integer(
    "jobs", placeholder: "J", in: 1...256, default: 1,
    help: "prune J blocks at once, corrected schedule only; threads are split between them")
  static let eval = Option.choice(
    "eval", among: EvaluationProtocol.allCases, placeholder: "P", noun: "protocol",
    help: "perplexity of the pruned model on protocol P's evaluation text (default: the --protocol given)")
  static let noEval = Flag("no-eval", help: "skip the evaluation")
  static let corpus = Option.path(
    "corpus", placeholder: "DIR", help: "the Austen corpus for --protocol (default: the embedded Fixtures/janeausten)")
  static let json = Flag(
    "json", help: "print the summary as one JSON line (the full report is in DIR/pruning-report.json)")
  static let dtype = Option.choice(
    "dtype", among: OutputDType.allCases, placeholder: "T", default: .auto,
    help: "the output's float type: auto keeps a Hugging Face folder's (BF16 stays BF16) and writes F32 for a GGUF;"
      + " bf16 and f16 round to nearest even (exact zeros stay exact, beyond the range is ±Inf). Pruned weights are"
      + " rounded before the next block is calibrated")
  static let maxMemory = Option.size(
    "max-memory", defaultText: "available memory less 20%",
    help: "refuse, before any work, a run whose memory estimate is larger (e.g. 4GiB), after spilling the"
      + " calibration activations to disk if that makes it fit (--spill)")
  static let spill = Option.choice(
    "spill", among: SpillMode.allCases, placeholder: "S", default: .auto,
    help: "where the calibration activations live: auto keeps them in memory unless the estimate exceeds"
      + " --max-memory and spilling them fits; always spills them to DIR.spill (owner-only, removed at the end),"
      + " a chunk of windows read or written at a time; never keeps them in memory. The result is the same bits")
  static let shardSize = Option.size(
    "shard-size", default: SafetensorsShardLayout.defaultMaxShardBytes, defaultText: "5GB",
    help: "the largest safetensors shard of the output, as transformers' max_shard_size (e.g. 5GB, 500MB, 2GiB);"
      + " one shard is model.safetensors")
  static let allocation = Option.choice(
    "allocation", among: SparsityAllocation.allCases, placeholder: "A", default: .uniform,
    help: "how the sparsity is spread over the blocks: uniform (every layer at --sparsity) or owl (Outlier"
      + " Weighed Layerwise sparsity, Yin et al. 2023: a dense pass first, then blocks with more outlier scores"
      + " |W|·‖x‖ get lower sparsity, the mean kept at --sparsity; unstructured only)")
  static let owlThreshold = Option.number(
    "owl-threshold", placeholder: "M", in: 1e-9...1e9, default: OWLAllocation.Options().threshold,
    help: "OWL's M: a score above M × its block's mean score is an outlier (the authors' LLaMA setting)")
  static let owlRange = Option.number(
    "owl-range", placeholder: "λ", in: 0...1, default: OWLAllocation.Options().range,
    help: "OWL's λ: the block sparsities span 2λ around their mean (the authors' LLaMA setting)")
  static let sparsityType = Option.text(
    "sparsity_type", placeholder: "T", help: "unstructured (with --sparsity_ratio) or N:M, as Wanda's --sparsity_type")
  static let pruneN = Option.integer(
    "prunen", in: 1...1 << 20, help: "N of N:M, with --prunem, as SparseGPT's --prunen")
  static let pruneM = Option.integer(
    "prunem", placeholder: "M", in: 1...1 << 20, help: "M of N:M, with --prunen, as SparseGPT's --prunem")
}

/// The pattern from --sparsity/--pattern and their Wanda and SparseGPT spellings.
func parsePattern(_ args: Arguments, method: PruningMethod) throws -> SparsityPattern {
  var sparsity = args[ModelOptions.sparsity]
  var nOfM = args[ModelOptions.pattern]
  if let type = args[ModelOptions.sparsityType] {
    if type != "unstructured" {
      guard nOfM == nil else { throw CLIError("--pattern and --sparsity_type both given", hint: "give one of them") }
      if let s = sparsity, Double(s) != 0.5, type.contains(":") {
        throw CLIError(
          "--sparsity_type \(type) with \(args.spelling(of: ModelOptions.sparsity)) \(s)",
          hint: "an N:M type fixes the ratio; drop --sparsity_ratio or give 0.5 as Wanda does")
      }
      nOfM = type
      sparsity = nil
    }
  }
  let n = args[ModelOptions.pruneN]
  let m = args[ModelOptions.pruneM]
  if n != nil || m != nil {
    guard let n, let m, nOfM == nil else {
      throw CLIError(
        "--prunen and --prunem go together, instead of --pattern", hint: "write --prunen 2 --prunem 4, or --pattern 2:4"
      )
    }
    nOfM = "\(n):\(m)"
    if let s = sparsity, Double(s) == 0 { sparsity = nil }  // SparseGPT passes --sparsity 0 with N:M
  }
  do throws(LayerJobError) {
    return try LayerJob.pattern(sparsity: sparsity, nOfM: nOfM, method: method)
  } catch {
    throw CLIError(error, exitCode: 2)
  }
}

func runModel(_ args: Arguments) throws {
  let method = args.value(ModelOptions.method)
  let pattern = try parsePattern(args, method: method)
  let parsed = try parseMethodOptions(args, for: method)

  let calibration: CalibrationSource
  switch (args[ModelOptions.protocolName], args[ModelOptions.calib]) {
  case (nil, nil):
    throw CLIError("no calibration text", hint: "give --protocol austen-quick, or --calib FILE --nsamples N --seqlen L")
  case (_?, _?):
    throw CLIError("--protocol and --calib both given", hint: "calibrate on one of them")
  case (let p?, nil):
    if args.given(ModelOptions.nsamples) || args.given(ModelOptions.seqlen) {
      throw CLIError(
        "--protocol sets the calibration windows itself", hint: "drop --nsamples and --seqlen, or use --calib FILE")
    }
    calibration = .protocolText(p)
  case (nil, let file?):
    calibration = .file(
      file, windows: args.value(ModelOptions.nsamples), sequenceLength: args.value(ModelOptions.seqlen))
  }
  var evaluation = args[ModelOptions.eval]
  if evaluation == nil, case .protocolText(let p) = calibration { evaluation = p }
  if args[ModelOptions.noEval] {
    guard !args.given(ModelOptions.eval) else {
      throw CLIError("--eval and --no-eval both given", hint: "give one of them")
    }
    evaluation = nil
  }
  Parallelism.defaultThreads = args.value(SharedOptions.threads)

  var plan = ModelPruningPlan(
    method: method, pattern: pattern, options: parsed.options, givenOptions: parsed.given,
    schedule: args[ModelOptions.schedule],
    blocks: args[ModelOptions.blocks], jobs: args.value(ModelOptions.jobs))
  plan.allocation = args.value(ModelOptions.allocation)
  for option in [ModelOptions.owlThreshold, ModelOptions.owlRange] where args.given(option) {
    guard plan.allocation == .owl else {
      throw CLIError(
        "\(args.spelling(of: option)) applies to --allocation owl", hint: "add --allocation owl, or drop the option")
    }
  }
  plan.owl = OWLAllocation.Options(
    threshold: args.value(ModelOptions.owlThreshold), range: args.value(ModelOptions.owlRange))
  var job = ModelJob(
    model: args.value(ModelOptions.model), plan: plan, calibration: calibration, output: args.value(ModelOptions.out),
    report: args[ModelOptions.report], resume: args[ModelOptions.resume], evaluation: evaluation,
    corpus: args[ModelOptions.corpus], dtype: args.value(ModelOptions.dtype),
    maxShardBytes: args.value(ModelOptions.shardSize), maxMemory: args[ModelOptions.maxMemory])
  job.spill = args.value(ModelOptions.spill)
  let printer = ProgressPrinter(quiet: args[SharedOptions.quiet], prefix: "model")
  let faults = FaultInjection()
  let json = args[ModelOptions.json]
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
    case .pruning(.block(let b, _, _, _, _)): return "block-\(b)"
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
    case .loaded(let model, let blocks, let parameters, let seconds):
      line(
        String(
          format: "%@: %ld blocks, %.1fM parameters, loaded in %.1f s", model, blocks, Double(parameters) / 1e6, seconds
        ))
    case .calibration(let tokens, let windows, let length, let source):
      line("calibration: \(source): \(windows) window(s) of \(length) tokens (\(tokens) tokens)")
    case .pruning(let e):
      print(e)
    case .evaluatingBlock(let p):
      if p.block == 1 { lastEval = 0 }
      if p.block == p.blocks || p.seconds - lastEval > 10 {
        lastEval = p.seconds
        line(evaluationBlockLine(p))
      }
    case .evaluating(let p):
      if p.window == 1 { lastEval = 0 }
      if p.window == p.windows || p.seconds - lastEval > 10 {
        lastEval = p.seconds
        line(
          String(format: "eval: window %ld/%ld  perplexity %.4f  %.1f s", p.window, p.windows, p.perplexity, p.seconds))
      }
    case .writing(let url, let size):
      line("writing \(url.path) (\(bytes(size)))")
    case .written(let url):
      line("wrote \(url.path)")
    }
  }

  func print(_ e: ModelPruningEvent) {
    guard !quiet else { return }
    switch e {
    case .started(let blocks, let estimate):
      totalBlocks = blocks.count
      let range = blocks.count > 0 ? "\(blocks.first!)-\(blocks.last!)" : "none"
      line(
        String(
          format:
            "pruning blocks %@ (%ld); memory estimate %@ (base %@, block weights %@, embedding %@, activations %@,"
            + " one piece %@, Grams %@, solver %@, rounded %@, evaluation %@)",
          range, blocks.count, bytes(estimate.totalBytes), bytes(estimate.baseBytes), bytes(estimate.blockWeightBytes),
          bytes(estimate.embeddingBytes), bytes(estimate.hiddenBytes), bytes(estimate.blockBytes),
          bytes(estimate.gramBytes), bytes(estimate.solverBytes), bytes(estimate.roundedBytes),
          bytes(estimate.evaluationBytes))
          + (estimate.spillFolder.map { "; activations spilled to \($0), a piece held at a time" } ?? ""))
    case .allocated(let a, let seconds):
      let s = a.blocks.map(\.sparsity)
      line(
        String(
          format: "allocation %@: dense pass done (elapsed %@); block sparsities %.4f–%.4f, mean %.6f%@",
          a.method.rawValue, formatSeconds(seconds), s.min() ?? 0, s.max() ?? 0, a.meanSparsity,
          a.clampedBlocks.isEmpty ? "" : "; blocks \(a.clampedBlocks) clamped into [0, 1)"))
    case .resumed(let blocks):
      line("resumed: block \(blocks.map(String.init).joined(separator: ", ")) taken from the checkpoint")
    case .layer(let r, let elapsed):
      let extra = [
        r.report.lambda.map { String(format: "λ %.3g", $0) },
        r.report.damping.map { String(format: "damping %.3g", $0) },
      ]
      .compactMap { $0 }.joined(separator: "  ")
      line(
        String(
          format: "block %ld %@ [%ld×%ld]  sparsity %.4f  rel.err %@  %@  %.2f s  (elapsed %@)", r.block,
          shortName(r.name), r.shape[0], r.shape[1], r.report.realisedSparsity,
          r.report.errorMeasured ? String(format: "%.3e", r.report.relativeError) : "-", extra,
          r.report.seconds,
          formatSeconds(elapsed)))
    case .block(let b, let done, let of, let elapsed, let eta):
      line(
        "block \(b) done (\(done)/\(of))  elapsed \(formatSeconds(elapsed))"
          + (eta.map { "  ETA \(formatSeconds($0))" } ?? ""))
    }
  }

  private func line(_ s: String) { printError("\(prefix): \(s)") }
}

func shortName(_ name: String) -> String {
  // model.layers.3.self_attn.q_proj -> self_attn.q_proj
  let parts = name.split(separator: ".")
  if let i = parts.firstIndex(where: { Int($0) != nil }), i + 1 < parts.count {
    return parts[(i + 1)...].joined(separator: ".")
  }
  return name
}

func bytes(_ n: Int) -> String { OutputSafety.size(n) }

/// The summary as one JSON line (sorted keys), for scripts and benchmarks.
func modelJSONLine(_ r: ModelReport) -> String {
  let s = r.summary
  var fields: [String: String] = [
    "method": "\"\(r.method)\"", "pattern": "\"\(r.pattern)\"", "schedule": "\"\(s.schedule.rawValue)\"",
    "blocks": "\(s.blocks.count)", "layers": "\(s.layers.count)", "realised_sparsity": "\(s.realisedSparsity)",
    "overall_sparsity": "\(s.overallSparsity)", "mean_relative_error": s.meanRelativeError.map { "\($0)" } ?? "null",
    "prune_seconds": String(format: "%.1f", s.seconds), "total_seconds": String(format: "%.1f", r.totalSeconds),
    "peak_rss_mb": "\(r.peakResidentBytes >> 20)", "threads": "\(r.threads)", "jobs": "\(r.jobs)",
    "seconds_by_phase": "{"
      + s.secondsByPhase.named.map { "\"\($0.0)\":" + String(format: "%.2f", $0.1) }.joined(separator: ",") + "}",
  ]
  if let folder = s.estimate.spillFolder { fields["spill_folder"] = jsonString(folder) }
  if let a = s.allocation {
    fields["allocation"] = "\"\(a.method.rawValue)\""
    fields["block_sparsities"] = "[" + a.blocks.map { "\($0.sparsity)" }.joined(separator: ",") + "]"
    fields["outlier_ratios"] = "[" + a.blocks.map { "\($0.outlierRatio)" }.joined(separator: ",") + "]"
  }
  if let p = r.perplexity { fields["perplexity"] = String(format: "%.4f", p.perplexity) }
  return "{" + fields.keys.sorted().map { "\"\($0)\":\(fields[$0]!)" }.joined(separator: ",") + "}\n"
}

/// "read 1.2 s, embed 0.1 s, …": the phases of `PhaseSeconds` in order, one line.
func phaseBreakdown(_ p: PhaseSeconds) -> String {
  p.named.map { "\($0.0) \(formatSeconds($0.1))" }.joined(separator: ", ")
}

/// A JSON string literal (quotes, backslashes and control characters escaped).
func jsonString(_ text: String) -> String {
  let encoder = JSONEncoder()
  encoder.outputFormatting = .withoutEscapingSlashes
  return String(decoding: (try? encoder.encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
}

/// The summary a person reads: what was pruned, the realised sparsity, quality and cost.
func modelSummary(_ r: ModelReport) -> String {
  let s = r.summary
  var text =
    "\(r.method) \(r.pattern) (\(s.schedule.rawValue) schedule) on \(r.model): \(s.blocks.count) blocks, \(s.layers.count) layers"
  if !s.resumedBlocks.isEmpty { text += " (\(s.resumedBlocks.count) resumed)" }
  text += "\n"
  text += String(
    format: "  realised sparsity %.4f of the pruned layers (%ld of %ld weights), %.4f of all %.1fM parameters\n",
    s.realisedSparsity, s.zeroParameters, s.prunableParameters, s.overallSparsity, Double(s.totalParameters) / 1e6)
  text +=
    s.meanRelativeError.map { String(format: "  mean relative layer error %.4e\n", $0) }
    ?? "  mean relative layer error: not measured (\(r.method) reads no calibration data)\n"
  if let line = swapsSummary(s.layers) { text += line }
  if let a = s.allocation { text += allocationSummary(a) }
  if let p = r.perplexity, let e = r.evaluation {
    text += String(format: "  perplexity %.4f on %@ (%ld predicted tokens)\n", p.perplexity, e, p.tokens)
  }
  text += String(
    format: "  time %@ (pruning %@), peak memory %@\n", formatSeconds(r.totalSeconds), formatSeconds(s.seconds),
    bytes(r.peakResidentBytes))
  text += "  time by phase: \(phaseBreakdown(s.secondsByPhase))\n"
  if let folder = s.estimate.spillFolder { text += "  calibration activations spilled to \(folder) (removed)\n" }
  text += "  wrote \(r.output)\n"
  return text
}

/// With `--refine swaps`: the swaps taken over the layers and the mean relative layer error the
/// method had before them (each layer's `swaps_error_before` over its dense energy); nil otherwise.
func swapsSummary(_ layers: [LayerRecord]) -> String? {
  let refined = layers.filter { $0.report.metrics["swaps"] != nil }
  guard !refined.isEmpty else { return nil }
  var swaps = 0.0
  var before = 0.0
  for l in refined {
    swaps += l.report.metrics["swaps"]!
    // E / (E / energy) = energy; a layer with E = 0 had nothing to refine (before = 0 too).
    let r = l.report
    let energyRatio = r.error > 0 ? r.relativeError / r.error : 0
    before += (r.metrics["swaps_error_before"] ?? 0) * energyRatio
  }
  return String(
    format: "  refine swaps: %.0f swaps in %ld layers; mean relative layer error %.4e before them\n", swaps,
    refined.count, before / Double(refined.count))
}

/// The lines of an OWL allocation in the summary: the settings, the range and mean of the block
/// sparsities, any clamp, then each block's outlier ratio, sparsity and pruned count.
func allocationSummary(_ a: BlockAllocation) -> String {
  let s = a.blocks.map(\.sparsity)
  var text = String(
    format: "  allocation %@ (M %@, λ %@): block sparsities %.4f–%.4f, mean %.6f (requested %.4f)\n",
    a.method.rawValue, "\(a.threshold)", "\(a.range)", s.min() ?? 0, s.max() ?? 0, a.meanSparsity, a.target)
  if !a.clampedBlocks.isEmpty {
    text +=
      "  clamped into [0, 1): block \(a.clampedBlocks.map(String.init).joined(separator: ", ")); the mean is"
      + " not the requested sparsity\n"
  }
  for b in a.blocks {
    text += String(
      format: "    block %2ld: outliers %.4f%%  sparsity %.4f  (%ld of %ld weights)\n", b.block, b.outlierRatio * 100,
      b.sparsity, b.pruned, b.parameters)
  }
  return text
}

extension Command {
  static let merge = Command(
    name: "merge", summary: "join block ranges pruned by separate 'prune model --blocks' runs into one model",
    forms: [Form([.required(MergeOptions.model), .required(MergeOptions.parts), .required(MergeOptions.out)])],
    about: """
      Under the corrected schedule (FISTAPruner's) blocks are pruned independently, so a model can be
      split: 'prune model ... --blocks 0-14 --out A' and '... --blocks 15-29 --out B' in two processes
      or on two machines, then 'prune merge --model M --parts A,B --out DIR'. The parts must come from
      the same model, method, pattern, options and calibration, and their blocks must not overlap;
      blocks no part pruned stay dense. DIR gets the merged weights and a merged pruning-report.json.
      """,
    sections: [OptionSection([MergeOptions.model, MergeOptions.parts, MergeOptions.out])],
    epilogue: "Exit status: 0 on success; 1 when a file cannot be read or written; 2 for usage errors.",
    run: runMerge)
}

/// The options of `prune merge`.
enum MergeOptions {
  static let model = Option.path("model", placeholder: "M", help: "the dense model the parts were pruned from")
  static let parts = Option.text(
    "parts", placeholder: "DIR1,DIR2,...", help: "the folders written by the 'prune model --blocks' runs")
  static let out = Option.path("out", placeholder: "DIR", help: "the merged model (must not exist)")
}

func runMerge(_ args: Arguments) throws {
  let partsText = args.value(MergeOptions.parts)
  let merge = ModelMerge(
    model: args.value(MergeOptions.model),
    parts: partsText.split(separator: ",").map { URL(fileURLWithPath: String($0)) },
    output: args.value(MergeOptions.out))
  do throws(ModelJobError) {
    let report = try merge.run()
    print(modelSummary(report), terminator: "")
  } catch {
    throw CLIError(error, exitCode: error.isUsageError ? 2 : 1)
  }
}
