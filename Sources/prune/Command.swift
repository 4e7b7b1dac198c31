// The commands of `prune`, each declared once: name, summary, forms (the synopsis, which also says
// which options are required), prose, sections of options, entry point. The usage text is made
// here from that declaration, and the parser (Arguments.swift) reads the command line by it.

import Foundation
import PruneKit

/// A subcommand: its name, one line of help, its declaration (forms, prose and options) and its
/// entry point. `usage` and `Arguments(parsing:for:)` are both made from the declaration.
struct Command: Sendable {
  let name: String
  let summary: String
  /// The ways to call it, each a synopsis line; most commands have one.
  let forms: [Form]
  /// The prose between the synopsis and the options (hand-written).
  let about: String
  /// Its options, in the order the usage text lists them.
  let sections: [OptionSection]
  /// The prose after the options: output, exit status (hand-written).
  let epilogue: String
  /// Hidden commands (test helpers) run and have usage, but `prune help` does not list them.
  let hidden: Bool
  let run: @Sendable (Arguments) throws -> Void

  init(
    name: String, summary: String, forms: [Form], about: String, sections: [OptionSection], epilogue: String = "",
    hidden: Bool = false, run: @escaping @Sendable (Arguments) throws -> Void
  ) {
    self.name = name
    self.summary = summary
    self.forms = forms
    self.about = about
    self.sections = sections
    self.epilogue = epilogue
    self.hidden = hidden
    self.run = run
  }

  /// Every command, in the order `prune help` lists them. Commands register here, one line each.
  static let all: [Command] = [
    .quickstart,
    .layer,
    .model,
    .merge,
    .sweep,
    .eval,
    .makeProblem,
    .makeModel,
    .verify,
    .vectors,
  ]

  /// The command called `name`.
  static func named(_ name: String) -> Command? { all.first { $0.name == name } }

  /// Every option it declares, in usage order.
  var options: [OptionSpec] { sections.flatMap(\.options) }

  /// The option spelled `spelling` (its name or an alias, without dashes).
  func option(spelled spelling: String) -> OptionSpec? { options.first { $0.spellings.contains(spelling) } }

  /// The form a command line with the options `given` (by name) is read by: the first whose
  /// selector is given, else the first form without a selector.
  func form(given: Set<String>) -> Form {
    forms.first { $0.selector.map { given.contains($0.name) } ?? false } ?? forms.first { $0.selector == nil }
      ?? forms[0]
  }

  /// The options a form accepts: with one form, every option; with several, those its synopsis
  /// names, and those no form's synopsis names (shared by all).
  func options(of form: Form) -> [OptionSpec] {
    guard forms.count > 1 else { return options }
    let named = Set(forms.flatMap { $0.options.map(\.name) })
    let own = Set(form.options.map(\.name))
    return options.filter { own.contains($0.name) || !named.contains($0.name) }
  }
}

// MARK: - Synopsis

/// One way to call a command: its synopsis, which also says which options the parser requires.
struct Form: Sendable {
  /// The option whose presence selects this form (`verify --manifest`); nil for the default form.
  let selector: OptionSpec?
  let terms: [Synopsis]

  init(_ terms: [Synopsis]) {
    selector = nil
    self.terms = terms
  }

  init(selectedBy selector: some DeclaredOption, _ terms: [Synopsis]) {
    self.selector = selector.spec
    self.terms = terms
  }

  /// Every option its terms name.
  var options: [OptionSpec] { terms.flatMap(\.options) }
  /// The options the parser requires: the top-level `.required` terms.
  var required: [OptionSpec] {
    terms.compactMap { if case .required(let o) = $0 { o.spec } else { nil } }
  }
}

/// A term of a synopsis.
indirect enum Synopsis: Sendable {
  /// `--name VALUE`: the parser requires it (at the top level of a form).
  case required(any DeclaredOption)
  /// `[--name VALUE]`.
  case optional(any DeclaredOption)
  /// `(a | b c)`, or `[a | b c]` when none is needed. Shown, not checked: the command checks it,
  /// with a message that can say why (the options' relations are its domain).
  case oneOf([[Synopsis]], required: Bool)
  /// Text as written: `[method options]`.
  case text(String)

  var options: [OptionSpec] {
    switch self {
    case .required(let o), .optional(let o): [o.spec]
    case .oneOf(let alternatives, _): alternatives.flatMap { $0.flatMap(\.options) }
    case .text: []
    }
  }

  var rendered: String {
    switch self {
    case .required(let o): o.spec.synopsis
    case .optional(let o): "[\(o.spec.synopsis)]"
    case .oneOf(let alternatives, let required):
      (required ? "(" : "[") + alternatives.map { $0.map(\.rendered).joined(separator: " ") }.joined(separator: " | ")
        + (required ? ")" : "]")
    case .text(let text): text
    }
  }
}

/// A group of options in the usage text, with an optional title and paragraph.
struct OptionSection: Sendable {
  enum Layout: Sendable {
    /// One line per option: `--name VALUE   help (default: …; also --alias)`.
    case table
    /// Their spellings in a paragraph, when another command's usage explains them.
    case list
  }

  let title: String?
  let text: String?
  let layout: Layout
  let options: [OptionSpec]

  /// Options under a title (which may span lines), with a paragraph after it.
  init(_ title: String, text: String? = nil, layout: Layout = .table, _ options: [any DeclaredOption]) {
    self.title = title
    self.text = text
    self.layout = layout
    self.options = options.map(\.spec)
  }

  /// Options without a title.
  init(_ options: [any DeclaredOption]) {
    title = nil
    text = nil
    layout = .table
    self.options = options.map(\.spec)
  }
}

// MARK: - Usage text

extension Command {
  /// The usage text (`prune help NAME`, `prune NAME --help`): synopsis, prose, options, prose.
  var usage: String {
    var text = ""
    for (f, form) in forms.enumerated() {
      let head = (f == 0 ? "Usage: " : "       ") + "prune \(name) "
      text += Self.wrapped(form.terms.map(\.rendered), first: head, indent: String(repeating: " ", count: head.count))
    }
    if !about.isEmpty { text += "\n\(about)\n" }
    for section in sections {
      text += "\n"
      if let title = section.title { text += "\(title)\n" }
      if let paragraph = section.text { text += "\(paragraph)\n" }
      switch section.layout {
      case .table: text += Self.table(section.options)
      case .list:
        let names = section.options.map { o in
          "--\(o.name)" + (o.aliases.isEmpty ? "" : " (\(o.aliases.map { "--\($0)" }.joined(separator: ", ")))")
        }
        let pieces = names.enumerated().map { $1 + ($0 + 1 < names.count ? "," : "") }
        text += Self.wrapped(pieces, first: "  ", indent: "  ")
      }
    }
    if !epilogue.isEmpty { text += "\n\(epilogue)\n" }
    return String(text.dropLast())
  }

  /// The option table: each entry padded to the widest (at most 26 characters), its help wrapped
  /// after it (each of its lines on lines of its own), with the default and the aliases appended.
  static func table(_ options: [OptionSpec]) -> String {
    let widest = 26
    let width = min(options.map(\.entry.count).max() ?? 0, widest) + 4
    let indent = String(repeating: " ", count: width)
    var text = ""
    for option in options {
      var notes: [String] = []
      if let d = option.value?.defaultText { notes.append("default: \(d)") }
      if !option.aliases.isEmpty { notes.append("also " + option.aliases.map { "--\($0)" }.joined(separator: ", ")) }
      let help = option.help + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))")
      let entry = "  \(option.entry)"
      var first = entry.padding(toLength: width, withPad: " ", startingAt: 0)
      if entry.count + 2 > width {
        text += entry + "\n"
        first = indent
      }
      for line in help.split(separator: "\n") {
        text += wrapped(String(line), first: first, indent: indent)
        first = indent
      }
    }
    return text
  }

  /// `pieces` joined by spaces on lines of at most 100 columns, the first line after `first`, the
  /// others after `indent`; a piece is never broken.
  static func wrapped(_ pieces: [String], first: String, indent: String) -> String {
    var out = ""
    var line = first
    var lineHasPiece = false
    for piece in pieces {
      if lineHasPiece && line.count + 1 + piece.count > 100 {
        out += line + "\n"
        line = indent
        lineHasPiece = false
      }
      line += (lineHasPiece ? " " : "") + piece
      lineHasPiece = true
    }
    return out + line + "\n"
  }

  /// `text` broken at spaces, as `wrapped(_:first:indent:)` does.
  static func wrapped(_ text: String, first: String, indent: String) -> String {
    wrapped(text.split(separator: " ", omittingEmptySubsequences: false).map(String.init), first: first, indent: indent)
  }

  /// `prune help`: every listed command with its summary.
  static var overview: String {
    var text = "prune: post-training pruning of LLM linear layers (PruneKit \(PruneKitVersion.current))\n\n"
    text += "Usage: prune <command> [options]\n\nCommands:\n"
    let rows =
      all.filter { !$0.hidden }.map { ($0.name, $0.summary) } + [
        ("help", "this text; 'prune help <command>' or 'prune <command> --help' (-h) for a command's options"),
        ("version", "the version of PruneKit (also --version)"),
      ]
    for (name, summary) in rows { text += "  \(name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(summary)\n" }
    return text
  }

  /// `prune --version`.
  static var version: String { "prune (PruneKit) \(PruneKitVersion.current)" }

  /// The error for an unknown command `name`, with the nearest command as a hint.
  static func unknown(_ name: String) -> CLIError {
    let names = all.filter { !$0.hidden }.map(\.name) + ["help", "version"]
    return CLIError(
      "unknown command '\(name)'",
      hint: suggesting(nearest(name, among: names), "'prune help' lists the commands.", quoted: true))
  }

  /// Whether `words` ask for the command's usage: `-h` or `--help` anywhere, whatever else is there.
  static func asksForHelp(_ words: [String]) -> Bool { words.contains("-h") || words.contains("--help") }
}

// MARK: - Options shared by several commands

/// Options with one meaning wherever they appear, declared once.
enum SharedOptions {
  static let threads = Option.integer(
    "threads", in: 1...4096, default: Parallelism.processorCount, defaultText: "all processors",
    help: "kernel threads; results do not depend on it")
  static let quiet = Flag("quiet", help: "no progress lines on standard error")
}
