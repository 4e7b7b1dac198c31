// prune eval: perplexity of a model on a text, under the rules of
// Docs/evaluation.md#windows-and-perplexity. The work is done by `LoadedModel`, `Corpus` and
// `Perplexity` (PruneModels); this file parses the options, prints progress to standard error and
// the result to standard output.

import Foundation
import PruneKit

extension Command {
  static let eval = Command(
    name: "eval", summary: "perplexity of a model on a text (or a whole evaluation protocol)",
    forms: [
      Form([
        .required(EvalOptions.model),
        .oneOf(
          [
            [.required(EvalOptions.text), .required(EvalOptions.seqlen), .optional(EvalOptions.windows)],
            [.required(EvalOptions.protocolName)],
          ],
          required: true),
        .optional(EvalOptions.json), .optional(SharedOptions.quiet), .optional(SharedOptions.threads),
        .optional(EvalOptions.corpus), .optional(ModelOptions.maxMemory),
      ])
    ],
    about: """
      Perplexity = exp(mean next-token negative log-likelihood). The whole text is tokenized once with
      no BOS or EOS; it is cut into non-overlapping windows of L tokens starting at token 0 (a trailing
      partial window is dropped); each window is run on its own from position 0 and gives L - 1
      predictions. Float32 model.
      """,
    sections: [
      OptionSection([
        EvalOptions.model, EvalOptions.text, EvalOptions.seqlen, EvalOptions.windows, EvalOptions.protocolName,
        EvalOptions.corpus, ModelOptions.maxMemory,
        EvalOptions.json, SharedOptions.quiet, SharedOptions.threads,
      ])
    ],
    epilogue: """
      The evaluation streams (Docs/evaluation.md#streaming-evaluation): each block is read once and
      run on every window, the head a band of vocabulary rows at a time. The memory estimate is printed
      before any weight is read, and a run over --max-memory is refused then (exit status 2). Progress
      goes to standard error: one line per block (elapsed, ETA), then one per window. Exit status: 0
      on success; 1 when the model or text cannot be read or is too short; 2 for usage errors.
      """,
    run: runEval)
}

/// The options of `prune eval`.
enum EvalOptions {
  static let model = Option.text(
    "model", placeholder: "M",
    help: "a GGUF file (weights and tokenizer) or a Hugging Face folder: config.json, model.safetensors or"
      + " model.safetensors.index.json with its shards, tokenizer.json")
  static let text = Option.text("text", placeholder: "FILE", help: "a UTF-8 text file")
  static let seqlen = Option.integer("seqlen", placeholder: "L", in: 2...1 << 20, help: "tokens per window")
  static let windows = Option.integer(
    "windows", in: 1...1 << 30, help: "evaluate the first N windows (default: every complete window)")
  static let protocolName = Option.choice(
    "protocol", among: EvaluationProtocol.allCases, placeholder: "P",
    help: """
      austen-quick: the first 16 windows of 1024 tokens of prideprejudice.txt
      austen-std:   every complete 2048-token window of prideprejudice.txt
      (text from the embedded corpus, checked by sha256; replaces --text, --seqlen and --windows)
      """)
  static let corpus = Option.text(
    "corpus", placeholder: "DIR",
    help: "the corpus folder for --protocol (default: Fixtures/janeausten of the checkout the tool was built from)")
  static let json = Flag(
    "json",
    help: "print one JSON object: perplexity, tokens (predicted), windows, seqlen, seconds (of the forward passes)")
}

func runEval(_ args: Arguments) throws {
  let modelPath = args.value(EvalOptions.model)
  let textPath = args[EvalOptions.text]
  let seqlen = args[EvalOptions.seqlen]
  let windowCount = args[EvalOptions.windows]
  let corpusPath = args[EvalOptions.corpus]
  let json = args[EvalOptions.json]
  let quiet = args[SharedOptions.quiet]
  let threads = args.value(SharedOptions.threads)
  let maxMemory = args[ModelOptions.maxMemory]

  // The text, window length and window count: from a protocol or from the options.
  let sequenceLength: Int
  let windows: Int?
  let loadText: () throws -> (String, String)
  if let proto = args[EvalOptions.protocolName] {
    if textPath != nil || seqlen != nil || windowCount != nil {
      throw CLIError(
        "--protocol sets the text, --seqlen and --windows itself",
        hint: "give either --protocol or --text with --seqlen (and optionally --windows)")
    }
    let spec = proto.evaluation
    sequenceLength = spec.sequenceLength
    windows = spec.windows
    loadText = {
      let corpus = try Corpus(directory: corpusPath.map { URL(fileURLWithPath: $0) })
      return (try spec.text(in: corpus), "\(proto.rawValue): \(spec.files.joined(separator: " + "))")
    }
  } else {
    guard let textPath else {
      throw CLIError(
        "missing --text",
        hint: "give a text file with --text FILE --seqlen L, or a whole protocol with --protocol austen-quick")
    }
    if corpusPath != nil {
      throw CLIError("--corpus applies to --protocol only", hint: "drop --corpus or give --protocol")
    }
    guard let seqlen else {
      throw CLIError("missing --seqlen", hint: "give the tokens per window, e.g. --seqlen 1024")
    }
    sequenceLength = seqlen
    windows = windowCount
    loadText = {
      let url = URL(fileURLWithPath: textPath)
      let data: Data
      do throws(InputFileError) { data = try InputFiles.read(url) } catch { throw CLIError(error, exitCode: 1) }
      guard let text = String(data: data, encoding: .utf8) else {
        throw CLIError("\(textPath) is not UTF-8 text", hint: "convert it to UTF-8 (iconv -t UTF-8)", exitCode: 1)
      }
      return (text, textPath)
    }
  }
  Parallelism.defaultThreads = threads

  let progress: (String) -> Void = { line in if !quiet { printError(line) } }
  // The text first: a missing or damaged text fails before the (slower) model load.
  let text: String
  let textName: String
  do {
    let loadedText = try loadText()
    text = loadedText.0
    textName = loadedText.1
  } catch let error as CLIError {
    throw error
  } catch let error as any PruneKitError {
    throw CLIError(error, exitCode: 1)
  } catch {
    throw CLIError("\(error)", exitCode: 1)
  }
  let loaded: LoadedModel
  do throws(ModelLoadError) {
    loaded = try LoadedModel(contentsOf: URL(fileURLWithPath: modelPath), loading: .lazy)
  } catch {
    throw CLIError(error, exitCode: 1)
  }
  let tokens = Perplexity.tokenize(text, with: loaded.tokenizer)
  let windowText = windows.map { "the first \($0) window(s)" } ?? "every complete window"
  progress("eval: \(textName): \(tokens.count) tokens; \(windowText) of \(sequenceLength) tokens; \(threads) thread(s)")
  // The memory estimate, and the budget, before any weight is read.
  let count: Int
  do throws(PerplexityError) {
    count = try Perplexity.windowCount(tokenCount: tokens.count, sequenceLength: sequenceLength, windows: windows)
  } catch {
    throw CLIError(error, exitCode: 1)
  }
  let estimate = Perplexity.memoryEstimate(of: loaded.model, windows: count, sequenceLength: sequenceLength)
  let total = ModelPruner.baseBytes + estimate.totalBytes
  progress(
    "eval: memory estimate \(bytes(total)) (base \(bytes(ModelPruner.baseBytes)), hidden states"
      + " \(bytes(estimate.hiddenBytes)), embedding \(bytes(estimate.embeddingBytes)), block \(bytes(estimate.blockBytes)),"
      + " head \(bytes(estimate.headBytes)))")
  if let budget = MemoryBudget.bytes(given: maxMemory), total > budget {
    throw CLIError(
      "the evaluation needs about \(OutputSafety.size(total)) of memory (estimate), more than "
        + MemoryBudget.describe(budget, given: maxMemory != nil),
      hint: "use fewer --windows or a shorter --seqlen, or give a larger --max-memory; no weight was read")
  }
  let report: PerplexityReport
  do throws(PerplexityError) {
    report = try Perplexity.evaluate(
      loaded.model, tokens: tokens, sequenceLength: sequenceLength, windows: windows,
      progress: { p in
        progress(
          String(format: "eval: window %ld/%ld  perplexity %.4f  %.1f s", p.window, p.windows, p.perplexity, p.seconds))
      }, blockProgress: { p in progress(evaluationBlockLine(p)) })
  } catch {
    throw CLIError(error, exitCode: 1)
  }
  if json {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try encoder.encode(report), as: UTF8.self))
  } else {
    print(
      String(
        format: "perplexity %.4f over %ld predicted tokens (%ld windows of %ld) in %.1f s", report.perplexity,
        report.tokens, report.windows, report.seqlen, report.seconds))
  }
}

/// The progress line of an evaluation after block `p.block` of `p.blocks` (prune eval, prune model).
func evaluationBlockLine(_ p: PerplexityBlockProgress) -> String {
  "eval: block \(p.block)/\(p.blocks) done  elapsed \(formatSeconds(p.seconds))"
    + (p.block < p.blocks ? "  ETA \(formatSeconds(p.eta))" : "")
}
