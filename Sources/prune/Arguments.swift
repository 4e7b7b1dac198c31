// The command line's options, declared once per command, and the parser that reads a command line
// by that declaration. Each command (`<Name>Command.swift`) declares its options here as typed
// values (`Option<Int>`, `Flag`, ...) with their names, aliases, value, default and help; its
// usage text (Command.swift) and its parser are both made from that declaration, so they cannot
// drift apart. The parser accepts exactly what is declared:
//
//   --name value, --name=value   an option with a value. The value is the next word unless that
//                                word starts with "--" (then write --name=--odd); never empty
//   --flag                       a boolean flag: on when given, off when left out. It takes no
//                                value: --json=false and --json false are usage errors
//   -h, --help                   anywhere on the line: the command's usage (main.swift)
//
// Everything else is a usage error (exit code 2, one line, with a hint): an unknown option (the
// hint names the nearest declared spelling), a word that belongs to no option, an option given
// twice or under two of its spellings, an option of another form of the command, a missing
// required option, a value its option does not accept. No package dependencies.

import Foundation
import PruneKit

/// A user-facing command-line error: what was wrong and what to do, printed as one line
/// (`PruneKitError`'s description). Exit code 2 for usage errors, 1 for failures while running.
struct CLIError: PruneKitError {
  let message: String
  let hint: String?
  let exitCode: Int32

  init(_ message: String, hint: String? = nil, exitCode: Int32 = 2) {
    self.message = message
    self.hint = hint
    self.exitCode = exitCode
  }

  /// A library error, with its own message and hint, and the exit code it calls for.
  init(_ error: some PruneKitError, exitCode: Int32) {
    self.init(error.message, hint: error.hint, exitCode: exitCode)
  }
}

// MARK: - Declarations

/// One option of a command, as declared: its spellings, how its value is read (nil for a boolean
/// flag) and its help line. Commands declare options as `Option<Value>` or `Flag`, which wrap one.
struct OptionSpec: Sendable {
  /// The name, without its dashes: `out` for `--out`.
  let name: String
  /// Other spellings it is accepted under (the references' `--save_model`), listed in its help.
  let aliases: [String]
  /// How its value is read; nil for a boolean flag, which takes none.
  let value: ValueSpec?
  /// What it does, for the usage text (wrapped there; the default and aliases are appended).
  let help: String

  /// The name first, then the aliases.
  var spellings: [String] { [name] + aliases }
  var isFlag: Bool { value == nil }
  /// "--out DIR", or "--json" for a flag: how the usage text's option table shows it.
  var entry: String { "--\(name)" + (value.map { " \($0.placeholder)" } ?? "") }
  /// "--precision float|double": how the synopsis shows it.
  var synopsis: String { "--\(name)" + (value.map { " \($0.synopsis ?? $0.placeholder)" } ?? "") }
}

/// How an option's value is read and shown.
struct ValueSpec: Sendable {
  /// The value's name in the usage text: `N`, `DIR`, `P.safetensors`.
  let placeholder: String
  /// The value as the synopsis shows it, when that differs from `placeholder`: `float|double`.
  let synopsis: String?
  /// The default as the usage text shows it; nil when the option has none (or when its help
  /// says it, as the method options' does).
  let defaultText: String?
  /// The values it accepts, when it is one of a list (`float`, `double`); nil for any other kind.
  let choices: [String]?
  /// Reads the text of a value given under `spelling` (`--seed`); throws a usage error that names
  /// the spelling and what it accepts.
  let read: @Sendable (_ text: String, _ spelling: String) throws(CLIError) -> any Sendable
}

/// Anything a command declares as an option: `Option<Value>` or `Flag`.
protocol DeclaredOption: Sendable {
  var spec: OptionSpec { get }
}

/// A boolean flag: on when given, off when left out; it takes no value.
struct Flag: DeclaredOption {
  let spec: OptionSpec

  init(_ name: String, aliases: [String] = [], help: String) {
    spec = OptionSpec(name: name, aliases: aliases, value: nil, help: help)
  }
}

/// An option with a value of type `Value`, read by its declaration, with its default (written
/// here, once, and shown by the usage text).
struct Option<Value: Sendable>: DeclaredOption {
  let spec: OptionSpec
  /// The value when the option is not given, or nil when it has none.
  let defaultValue: Value?

  /// An option whose value `read` turns into a `Value` or rejects with a usage error (it is given
  /// the text and the spelling used, `--blocks`, for its message).
  init(
    _ name: String, aliases: [String] = [], placeholder: String, synopsis: String? = nil,
    default defaultValue: Value? = nil,
    defaultText: String? = nil, choices: [String]? = nil, help: String,
    read: @escaping @Sendable (String, String) throws(CLIError) -> Value
  ) {
    self.defaultValue = defaultValue
    let shown = defaultText ?? defaultValue.map { "\($0)" }
    spec = OptionSpec(
      name: name, aliases: aliases,
      value: ValueSpec(placeholder: placeholder, synopsis: synopsis, defaultText: shown, choices: choices) {
        text, spelling throws(CLIError) in
        try read(text, spelling)
      },
      help: help)
  }
}

extension Option where Value == String {
  /// Any text (a path, a list read later, a ratio read by the library).
  static func text(
    _ name: String, aliases: [String] = [], placeholder: String, default defaultValue: String? = nil, help: String
  ) -> Option<String> {
    Option(name, aliases: aliases, placeholder: placeholder, default: defaultValue, help: help) { text, _ in text }
  }

  /// One of `values`; anything else is a usage error naming the nearest of them.
  static func choice(
    _ name: String, among values: [String], placeholder: String, default defaultValue: String? = nil, help: String
  ) -> Option<String> {
    choice(name, among: values.map { ($0, $0) }, placeholder: placeholder, default: defaultValue, help: help)
  }
}

extension Option where Value == URL {
  /// A file or folder path, as given (relative to the working directory).
  static func path(
    _ name: String, aliases: [String] = [], placeholder: String, default defaultPath: String? = nil, help: String
  ) -> Option<URL> {
    Option(
      name, aliases: aliases, placeholder: placeholder, default: defaultPath.map { URL(fileURLWithPath: $0) },
      defaultText: defaultPath,
      help: help
    ) { text, _ in URL(fileURLWithPath: text) }
  }
}

/// "in 1...4096", or "≥ 0" when the range has no upper bound a user could mean (`Int.max`).
func rangeText(_ range: ClosedRange<Int>) -> String {
  range.upperBound == .max ? "≥ \(range.lowerBound)" : "in \(range.lowerBound)...\(range.upperBound)"
}

/// "in 0...1e+300", or "≥ 0" when the range reaches the largest finite number.
func rangeText(_ range: ClosedRange<Double>) -> String {
  range.upperBound == .greatestFiniteMagnitude
    ? "≥ \(range.lowerBound)" : "in \(range.lowerBound)...\(range.upperBound)"
}

extension Option where Value == Int {
  /// A whole number in `range`.
  static func integer(
    _ name: String, aliases: [String] = [], placeholder: String = "N", in range: ClosedRange<Int>,
    default defaultValue: Int? = nil,
    defaultText: String? = nil, help: String
  ) -> Option<Int> {
    Option(
      name, aliases: aliases, placeholder: placeholder, default: defaultValue, defaultText: defaultText, help: help
    ) {
      text, spelling throws(CLIError) in
      guard let v = Int(text), range.contains(v) else {
        throw CLIError(
          "\(spelling) must be an integer \(rangeText(range)), got '\(text)'",
          hint: "write \(spelling) followed by a whole number in that range.")
      }
      return v
    }
  }
}

extension Option where Value == Int {
  /// A byte count as `ByteSize.parse` reads it: 5GB, 500MB, 2GiB, 123.
  static func size(
    _ name: String, aliases: [String] = [], placeholder: String = "SIZE", default defaultValue: Int? = nil,
    defaultText: String? = nil, help: String
  ) -> Option<Int> {
    Option(
      name, aliases: aliases, placeholder: placeholder, default: defaultValue, defaultText: defaultText, help: help
    ) {
      text, spelling throws(CLIError) in
      guard let v = ByteSize.parse(text) else {
        throw CLIError("\(spelling) must be a size, got '\(text)'", hint: "write \(ByteSize.help), e.g. 5GB.")
      }
      return v
    }
  }
}

extension Option where Value == Double {
  /// A finite number in `range`.
  static func number(
    _ name: String, aliases: [String] = [], placeholder: String = "X", in range: ClosedRange<Double>,
    default defaultValue: Double? = nil,
    help: String
  ) -> Option<Double> {
    Option(name, aliases: aliases, placeholder: placeholder, default: defaultValue, help: help) {
      text, spelling throws(CLIError) in
      guard let v = Double(text), v.isFinite, range.contains(v) else {
        throw CLIError(
          "\(spelling) must be a number \(rangeText(range)), got '\(text)'",
          hint: "write \(spelling) followed by a number in that range.")
      }
      return v
    }
  }
}

extension Option where Value: RawRepresentable, Value.RawValue == String {
  /// One of `cases`, by raw value; anything else is "unknown NOUN 'x'" (NOUN is the option's name
  /// unless given, `scope` follows the quote) with the nearest case as a hint.
  static func choice(
    _ name: String, aliases: [String] = [], among cases: [Value], placeholder: String,
    default defaultValue: Value? = nil,
    noun: String? = nil, scope: String = "", help: String
  ) -> Option<Value> {
    choice(
      name, aliases: aliases, among: cases.map { ($0.rawValue, $0) }, placeholder: placeholder, default: defaultValue,
      defaultText: defaultValue?.rawValue, noun: noun, scope: scope, help: help)
  }
}

extension Option {
  /// One of the named `values`. The synopsis shows them as `a|b|c` when that is short (at most 64
  /// characters), else the placeholder.
  static func choice(
    _ name: String, aliases: [String] = [], among values: [(String, Value)], placeholder: String,
    default defaultValue: Value? = nil,
    defaultText: String? = nil, noun: String? = nil, scope: String = "", help: String
  ) -> Option<Value> {
    let names = values.map(\.0)
    let synopsis = names.joined(separator: "|")
    return Option(
      name, aliases: aliases, placeholder: placeholder, synopsis: synopsis.count <= 64 ? synopsis : nil,
      default: defaultValue,
      defaultText: defaultText, choices: names, help: help
    ) { text, _ throws(CLIError) in
      if let v = values.first(where: { $0.0 == text }) { return v.1 }
      throw CLIError(
        "unknown \(noun ?? name) '\(text)'\(scope)",
        hint: suggesting(nearest(text, among: names), "one of \(names.joined(separator: ", ")).", quoted: true))
    }
  }
}

// MARK: - Parsing

/// The options given to one command, read and checked by its declaration: the typed values of
/// the options given, and the declared defaults of the others.
struct Arguments: Sendable {
  /// The command read (for messages).
  let command: String
  /// The value of each option given (`true` for a flag), by option name.
  private var values: [String: any Sendable] = [:]
  /// How each option given was spelled, with its dashes: `--save_model`.
  private var spelled: [String: String] = [:]

  /// Reads `words` (the command line after the command's name) by `command`'s declaration; see
  /// the top of this file for what it accepts.
  init(parsing words: [String], for command: Command) throws(CLIError) {
    self.command = command.name
    let helpHint = "'prune help \(command.name)' lists its options."
    var i = 0
    /// The flag the previous word turned on, if it was one (for the message of a word after it).
    var lastFlag: String? = nil
    while i < words.count {
      let word = words[i]
      defer { i += 1 }
      guard Self.isOption(word) else {
        if let flag = lastFlag {
          throw CLIError(
            "\(flag) takes no value; got '\(word)'", hint: "drop the value, or leave \(flag) out to turn it off.")
        }
        if word.count > 1, word.hasPrefix("-"), !word.hasPrefix("--"), Double(word) == nil {
          let suggestion = command.option(spelled: String(word.dropFirst())).map { "--\($0.name)" }
          throw CLIError(
            "unknown option \(word)", hint: suggesting(suggestion, "options are written with two dashes; " + helpHint))
        }
        throw CLIError("unexpected argument '\(word)'", hint: "every input is given as --name value; " + helpHint)
      }
      lastFlag = nil
      let body = word.dropFirst(2)
      let equals = body.firstIndex(of: "=")
      let key = String(body[..<(equals ?? body.endIndex)])
      let spelling = "--\(key)"
      guard let spec = command.option(spelled: key) else {
        let suggestion = nearest(key, among: command.options.flatMap(\.spellings)).map { "--\($0)" }
        throw CLIError("unknown option \(spelling)", hint: suggesting(suggestion, helpHint))
      }
      if let previous = spelled[spec.name] {
        throw previous == spelling
          ? CLIError("\(spelling) given more than once", hint: "give each option once.")
          : CLIError("\(previous) and \(spelling) are the same option", hint: "give it once, as --\(spec.name).")
      }
      let value: any Sendable
      if let reader = spec.value {
        let text: String
        if let equals {
          text = String(body[body.index(after: equals)...])
        } else if i + 1 < words.count, !Self.isOption(words[i + 1]) {
          text = words[i + 1]
          i += 1
        } else {
          let next = i + 1 < words.count ? "; it is followed by \(words[i + 1])" : ""
          throw CLIError("\(spelling) needs a value\(next)", hint: "write \(spelling) \(reader.placeholder).")
        }
        guard !text.isEmpty else {
          throw CLIError(
            "\(spelling) needs a value; got an empty one", hint: "write \(spelling) \(reader.placeholder).")
        }
        value = try reader.read(text, spelling)
      } else {
        if let equals {
          let given = body[body.index(after: equals)...]
          throw CLIError(
            "\(spelling) takes no value; got '\(given)'",
            hint: "drop the value, or leave \(spelling) out to turn it off.")
        }
        value = true
        lastFlag = spelling
      }
      values[spec.name] = value
      spelled[spec.name] = spelling
    }
    try checkForm(of: command, helpHint: helpHint)
  }

  /// Whether `word` is written as an option: "--" and a name.
  static func isOption(_ word: String) -> Bool { word.hasPrefix("--") && word.count > 2 }

  /// Every option given belongs to the form of the command selected, and that form's required
  /// options are given.
  private func checkForm(of command: Command, helpHint: String) throws(CLIError) {
    let form = command.form(given: Set(values.keys))
    let members = Set(command.options(of: form).map(\.name))
    for spec in command.options where values[spec.name] != nil && !members.contains(spec.name) {
      let spelling = spelled[spec.name]!
      if let selector = form.selector {
        throw CLIError(
          "\(spelling) does not go with --\(selector.name)",
          hint: "'prune help \(command.name)' lists the options of each form.")
      }
      let other = command.forms.first {
        $0.selector != nil && command.options(of: $0).contains { $0.name == spec.name }
      }
      throw CLIError(
        "\(spelling) goes with --\(other?.selector?.name ?? "?")",
        hint: "'prune help \(command.name)' lists the options of each form.")
    }
    for spec in form.required where values[spec.name] == nil {
      throw CLIError("missing --\(spec.name)", hint: "write \(spec.entry); " + helpHint)
    }
  }

  /// The value of `option` when given, else its declared default, else nil.
  subscript<Value>(_ option: Option<Value>) -> Value? {
    values[option.spec.name].map { $0 as! Value } ?? option.defaultValue
  }

  /// The value of an option that is required or has a default (the parser made sure it exists).
  func value<Value>(_ option: Option<Value>) -> Value {
    guard let v = self[option] else {
      preconditionFailure("--\(option.spec.name) of prune \(command) is neither required nor defaulted")
    }
    return v
  }

  /// Whether the flag was given.
  subscript(_ flag: Flag) -> Bool { values[flag.spec.name] != nil }

  /// Whether the option was given (rather than defaulted).
  func given(_ option: some DeclaredOption) -> Bool { values[option.spec.name] != nil }

  /// The spelling the option was given under (`--sparsity_ratio`), or its name.
  func spelling(of option: some DeclaredOption) -> String { spelled[option.spec.name] ?? "--\(option.spec.name)" }
}

// MARK: - Did you mean

/// A hint: "did you mean X? Rest" when there is a suggestion, else "rest". `quoted` writes 'X'.
func suggesting(_ suggestion: String?, _ rest: String, quoted: Bool = false) -> String {
  guard let suggestion else { return rest }
  return "did you mean \(quoted ? "'\(suggestion)'" : suggestion)? " + rest.prefix(1).uppercased() + rest.dropFirst()
}

/// The candidate nearest to `typed` by `editDistance`, if within ⌈|typed| / 3⌉ edits (a third of
/// the word mistyped at most); the earlier candidate wins a tie.
func nearest(_ typed: String, among candidates: [String]) -> String? {
  let limit = (typed.count + 2) / 3
  var best: (candidate: String, distance: Int)? = nil
  for candidate in candidates where candidate != typed {
    let d = editDistance(typed, candidate)
    if d <= limit, d < (best?.distance ?? .max) { best = (candidate, d) }
  }
  return best?.candidate
}

/// The optimal-string-alignment distance (restricted Damerau–Levenshtein) between `a` and `b`: the
/// fewest insertions, deletions, substitutions and swaps of two adjacent characters that turn `a`
/// into `b`, no substring edited twice. `modle` → `model` is 1 (a swap), `sparsty` → `sparsity` 1.
///
///     d[i][j] = min(d[i-1][j] + 1, d[i][j-1] + 1, d[i-1][j-1] + [aᵢ ≠ bⱼ],
///                   d[i-2][j-2] + 1  when aᵢ = bⱼ₋₁ and aᵢ₋₁ = bⱼ)
func editDistance(_ a: String, _ b: String) -> Int {
  let a = Array(a)
  let b = Array(b)
  guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
  var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
  for i in 0...a.count { d[i][0] = i }
  for j in 0...b.count { d[0][j] = j }
  for i in 1...a.count {
    for j in 1...b.count {
      d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
      if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
    }
  }
  return d[a.count][b.count]
}

/// Writes a line to standard error (progress and diagnostics; results go to standard output).
func printError(_ text: String) {
  FileHandle.standardError.write(Data((text + "\n").utf8))
}
