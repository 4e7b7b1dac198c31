import Foundation
import PruneKit
import Testing

@testable import prune

/// The command line of `prune`, read by each command's declaration (Sources/prune/Arguments.swift,
/// Command.swift): properties of the parser that hold for every command and every option, the
/// usage text made from the same declaration, and did-you-mean. The binary itself (exit codes,
/// one-line messages, -h with anything after it, --version) is exercised by Tests/cli-smoke.sh.
@Suite("Command line")
struct CommandLineTests {
  /// Every command, the hidden test helpers included.
  static let commands = Command.all

  /// Words a user might put after a flag to mean "off" (or by mistake).
  static let wordsAfterFlags = ["false", "true", "no", "0", "off", "banana", "--", "-1", "x y"]

  /// Reads `words` by `command`'s declaration, or returns the usage error's one line.
  static func parse(_ command: Command, _ words: [String]) -> Result<Arguments, CLIError> {
    Result { () throws(CLIError) in try Arguments(parsing: words, for: command) }
  }

  /// A value the option accepts: the first of its choices (`float`), else the first of a few
  /// typical values that it reads.
  static func sampleValue(_ option: OptionSpec, in command: Command) -> String? {
    guard let value = option.value else { return nil }
    let candidates =
      (value.choices ?? []) + ["1", "16", "256", "0.5", "0-3", "0,15", "sparsegpt,wanda", "x.safetensors"]
    return candidates.first { (try? value.read($0, "--\(option.name)")) != nil }
  }

  /// A command line of `form` with every required option given a sample value, and the first
  /// alternative of each required choice of options.
  static func minimalLine(_ form: Form, of command: Command) -> [String] {
    var words: [String] = []
    func add(_ term: Synopsis) {
      switch term {
      case .required(let o):
        words.append("--\(o.spec.name)")
        if let v = sampleValue(o.spec, in: command) { words.append(v) }
      case .oneOf(let alternatives, let required) where required:
        alternatives[0].forEach(add)
      default: break
      }
    }
    form.terms.forEach(add)
    return words
  }

  // MARK: - Flags and values

  @Test("a flag never takes the word after it, nor a value after '='")
  func flagsTakeNoValue() {
    for command in Self.commands {
      for flag in command.options where flag.isFlag {
        for word in Self.wordsAfterFlags {
          for words in [["--\(flag.name)", word], ["--\(flag.name)=\(word)"]] {
            guard case .failure(let error) = Self.parse(command, words) else {
              Issue.record("prune \(command.name) \(words.joined(separator: " ")) was accepted")
              continue
            }
            #expect(error.message == "--\(flag.name) takes no value; got '\(word)'", "prune \(command.name) \(words)")
            #expect(error.exitCode == 2)
          }
        }
      }
    }
  }

  @Test("a flag is on when given and off when left out")
  func flagsOnAndOff() throws {
    let vectors = try #require(Command.named("vectors"))
    let on = try Self.parse(vectors, ["--out", "v", "--no-real", "--quiet"]).get()
    #expect(on[VectorsOptions.noReal] && on[SharedOptions.quiet])
    let off = try Self.parse(vectors, ["--out", "v"]).get()
    #expect(!off[VectorsOptions.noReal] && !off[SharedOptions.quiet])
  }

  @Test(
    "every declared option reads a value it accepts, in its form, spelled --name v or --name=v, under each spelling")
  func everyOptionParses() throws {
    for command in Self.commands {
      for form in command.forms {
        let line = Self.minimalLine(form, of: command)
        for option in command.options(of: form) {
          // The minimal line without this option, if it holds it; it is added back below.
          var base = line
          if let i = base.firstIndex(of: "--\(option.name)") {
            base.removeSubrange(i..<(option.isFlag ? i + 1 : i + 2))
          }
          for spelling in option.spellings {
            let value = Self.sampleValue(option, in: command)
            if option.value != nil, value == nil {
              Issue.record("prune \(command.name) --\(option.name): no sample value parses")
              continue
            }
            for words in [
              ["--\(spelling)"] + (value.map { [$0] } ?? []), ["--\(spelling)" + (value.map { "=\($0)" } ?? "")],
            ] {
              switch Self.parse(command, base + words) {
              case .success(let args):
                #expect(
                  args.given(Option<String>.text(option.name, placeholder: "", help: "")), "\(command.name) \(words)")
                #expect(
                  args.spelling(of: Option<String>.text(option.name, placeholder: "", help: "")) == "--\(spelling)")
              case .failure(let error):
                Issue.record("prune \(command.name) \((base + words).joined(separator: " ")): \(error)")
              }
            }
          }
        }
      }
    }
  }

  @Test("a range without a meaningful upper bound is written as its lower bound, not as Int.max")
  func ranges() throws {
    #expect(rangeText(1...256) == "in 1...256")
    #expect(rangeText(0...Int.max) == "≥ 0")
    #expect(rangeText(0...Double.greatestFiniteMagnitude) == "≥ 0.0")
    let vectors = try #require(Command.named("vectors"))
    guard case .failure(let error) = Self.parse(vectors, ["--out", "v", "--seed", "-1"]) else {
      Issue.record("--seed -1 was accepted")
      return
    }
    #expect(error.message == "--seed must be an integer ≥ 0, got '-1'")
  }

  @Test("a value option without a value names it: at the end, before another option, or empty")
  func missingValues() throws {
    let layer = try #require(Command.named("layer"))
    for option in layer.options where !option.isFlag {
      let spelling = "--\(option.name)"
      for words in [[spelling], [spelling, "--threads", "2"], [spelling, ""], ["\(spelling)="]] {
        guard case .failure(let error) = Self.parse(layer, words) else {
          Issue.record("prune layer \(words) was accepted")
          continue
        }
        #expect(error.message.hasPrefix("\(spelling) needs a value"), "\(words): \(error)")
        #expect(error.hint?.contains(option.entry) == true, "\(words): \(error)")
      }
    }
    // A value that starts with "--" is given with "=".
    let args = try Self.parse(layer, ["--problem", "p", "--method", "wanda", "--out=--odd", "--sparsity", "0.5"]).get()
    #expect(args[LayerOptions.out]?.lastPathComponent == "--odd")
  }

  @Test("a word that belongs to no option is an error, and so is an option given twice or under two spellings")
  func straysAndRepeats() throws {
    let model = try #require(Command.named("model"))
    let line = ["--model", "m", "--method", "wanda", "--sparsity", "0.5", "--protocol", "austen-quick", "--out", "o"]
    #expect(throws: Never.self) { try Self.parse(model, line).get() }
    for (words, message) in [
      (line + ["extra"], "unexpected argument 'extra'"),
      (["extra"] + line, "unexpected argument 'extra'"),
      (line + ["--out", "p"], "--out given more than once"),
      (line + ["--save_model", "p"], "--out and --save_model are the same option"),
      (line + ["--damping", "0.1", "--percdamp", "0.1"], "--damping and --percdamp are the same option"),
      (line + ["--jobs", "0"], "--jobs must be an integer in 1...256, got '0'"),
      (line + ["--schedule", "parallel"], "unknown schedule 'parallel'"),
      (line + ["--blocks", "5-2"], "--blocks takes A-B, got '5-2'"),
      (line + ["-x"], "unknown option -x"),
      (line + ["--max-masks", "3"], "unknown option --max-masks"),  // exact only: not an option of a whole model
    ] {
      guard case .failure(let error) = Self.parse(model, words) else {
        Issue.record("prune model \(words.joined(separator: " ")) was accepted")
        continue
      }
      #expect(error.message == message)
      #expect(error.exitCode == 2)
    }
  }

  @Test("each form's required options are required, and an option of another form is rejected")
  func formsAndRequiredOptions() throws {
    for command in Self.commands {
      for form in command.forms {
        let line = Self.minimalLine(form, of: command)
        #expect(throws: Never.self, "prune \(command.name) \(line.joined(separator: " "))") {
          try Self.parse(command, line).get()
        }
        // (Without its selector, a line is read by another form, which has its own required options.)
        for required in form.required where required.name != form.selector?.name {
          var words = line
          let i = words.firstIndex(of: "--\(required.name)")!
          words.removeSubrange(i..<(required.isFlag ? i + 1 : i + 2))
          guard case .failure(let error) = Self.parse(command, words) else {
            Issue.record("prune \(command.name) without --\(required.name) was accepted")
            continue
          }
          #expect(error.message == "missing --\(required.name)")
        }
      }
    }
    let verify = try #require(Command.named("verify"))
    let manifest = Self.parse(verify, ["--manifest", "m.json", "--problem", "p"])
    #expect(throws: CLIError.self) { try manifest.get() }
    if case .failure(let e) = manifest { #expect(e.message == "--problem does not go with --manifest") }
  }

  @Test("-h and --help anywhere ask for the usage")
  func help() {
    #expect(Command.asksForHelp(["--out", "x", "-h"]))
    #expect(Command.asksForHelp(["--bogus", "--help", "--json=false"]))
    #expect(!Command.asksForHelp(["--out", "x"]))
  }

  // MARK: - The declarations and the usage text

  @Test("no two options of a command share a spelling, and every option a form names is declared")
  func declarations() {
    for command in Self.commands {
      let spellings = command.options.flatMap(\.spellings)
      #expect(Set(spellings).count == spellings.count, "prune \(command.name) declares a spelling twice")
      #expect(!spellings.contains("help") && !spellings.contains("h"))
      let declared = Set(command.options.map(\.name))
      for form in command.forms {
        for option in form.options {
          #expect(declared.contains(option.name), "prune \(command.name): --\(option.name)")
        }
      }
      #expect(!command.forms.isEmpty && !command.summary.isEmpty)
    }
  }

  @Test("the usage text lists every option under every spelling, with its default, in lines of at most 100 columns")
  func usageListsEveryOption() {
    for command in Self.commands {
      let usage = command.usage
      #expect(usage.hasPrefix("Usage: prune \(command.name) "))
      for option in command.options {
        for spelling in option.spellings {
          let pattern = "--\(NSRegularExpression.escapedPattern(for: spelling))(?![A-Za-z_-])"
          #expect(
            usage.range(of: pattern, options: .regularExpression) != nil,
            "prune help \(command.name) lacks --\(spelling)")
        }
        if let d = option.value?.defaultText {
          #expect(usage.contains("default: \(d)"), "prune help \(command.name): --\(option.name)")
        }
      }
      for line in usage.split(separator: "\n") {
        #expect(line.count <= 100, "prune help \(command.name): \(line.count) columns: \(line)")
      }
    }
  }

  @Test(
    "the method options are declared from MethodOption.all: all of them in layer, those of the pipeline's methods in model and sweep"
  )
  func methodOptions() throws {
    let layer = try #require(Command.named("layer"))
    for (option, _) in methodOptionDeclarations {
      #expect(layer.option(spelled: option.cliName) != nil)
      for alias in option.aliases { #expect(layer.option(spelled: alias)?.name == option.cliName) }
    }
    for name in ["model", "sweep"] {
      let command = try #require(Command.named(name))
      for (option, _) in methodOptionDeclarations {
        let applies = option.methods.contains(where: PruningMethod.pipelineMethods.contains)
        #expect((command.option(spelled: option.cliName) != nil) == applies, "prune \(name) --\(option.cliName)")
      }
    }
    // Read under an alias, recorded under the option.
    let args = try Self.parse(
      layer, ["--problem", "p", "--method", "sparsegpt", "--sparsity", "0.5", "--out", "o", "--percdamp", "0.05"]
    ).get()
    let given = readMethodOptions(args)
    #expect(given.count == 1 && given[0].option.cliName == "damping" && given[0].value == "0.05")
  }

  @Test("the command lines shown in the usage texts parse")
  func examplesParse() throws {
    var examples: [(Command, [String])] = []
    for command in Self.commands {
      // Lines that start with "prune NAME" (joined over a trailing backslash), and 'prune NAME …'
      // quoted in prose; those with "..." or without an option are not complete examples.
      var text = command.usage.replacingOccurrences(of: "\\\n", with: " ")
      text = text.replacingOccurrences(of: "Usage: prune", with: "")
      var candidates: [String] = []
      for line in text.split(separator: "\n") where line.trimmingCharacters(in: .whitespaces).hasPrefix("prune ") {
        candidates.append(line.trimmingCharacters(in: .whitespaces))
      }
      // (An apostrophe, as in "FISTAPruner's", is not a quote: a quoted line starts with 'prune .)
      let quoted = try Regex("'(prune [^'\\n]*)'")
      candidates += text.matches(of: quoted).compactMap { $0.output[1].substring.map(String.init) }
      // A synopsis line (with [optional], (choice) or a|b) is not an example, nor is a mention of
      // one option ('prune model --blocks').
      for candidate in candidates
      where !candidate.contains("...") && candidate.components(separatedBy: " --").count > 2
        && !candidate.contains(where: "[(|".contains)
      {
        let words = candidate.split(separator: " ").map(String.init)
        guard let other = Command.named(words[1]) else { continue }
        examples.append((other, Array(words.dropFirst(2))))
      }
    }
    #expect(examples.count >= 2, "the examples of quickstart and merge")
    for (command, words) in examples {
      #expect(throws: Never.self, "prune \(command.name) \(words.joined(separator: " "))") {
        try Self.parse(command, words).get()
      }
    }
  }

  // MARK: - Did you mean

  @Test("edit distance: insertions, deletions, substitutions and adjacent swaps count one each")
  func editDistances() {
    let cases: [(String, String, Int)] = [
      ("modle", "model", 1), ("sparsty", "sparsity", 1), ("kitten", "sitting", 3), ("", "abc", 3), ("abc", "", 3),
      ("abc", "abc", 0), ("ab", "ba", 1), ("ca", "abc", 3), ("blocksze", "blocksize", 1),
      ("block_size", "block-size", 1),
    ]
    for (a, b, d) in cases {
      #expect(editDistance(a, b) == d, "\(a) → \(b)")
      #expect(editDistance(b, a) == d, "\(b) → \(a)")
    }
  }

  @Test("did you mean: the nearest within a third of the word, the earlier on a tie, nothing when far")
  func suggestions() throws {
    #expect(nearest("modle", among: ["quickstart", "layer", "model", "merge"]) == "model")
    #expect(nearest("sparsty", among: ["sparsity", "pattern"]) == "sparsity")
    #expect(nearest("xyzzy", among: ["layer", "model"]) == nil)
    #expect(nearest("ab", among: ["ax", "ay"]) == "ax")
    #expect(nearest("model", among: ["model"]) == nil, "an exact match is not a suggestion")
    #expect(Command.unknown("modle").hint == "did you mean 'model'? 'prune help' lists the commands.")
    let layer = try #require(Command.named("layer"))
    guard case .failure(let error) = Self.parse(layer, ["--sparsty", "0.5"]) else {
      Issue.record("--sparsty was accepted")
      return
    }
    #expect(error.message == "unknown option --sparsty")
    #expect(error.hint == "did you mean --sparsity? 'prune help layer' lists its options.")
    guard case .failure(let value) = Self.parse(layer, ["--method", "wnda"]) else {
      Issue.record("--method wnda was accepted")
      return
    }
    #expect(value.message == "unknown method 'wnda'")
    #expect(value.hint?.hasPrefix("did you mean 'wanda'? One of magnitude, wanda") == true)
  }
}
