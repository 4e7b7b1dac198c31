// A small hand-rolled argument parser (no package dependencies): `--name value`, `--name=value`
// and boolean `--flag`. Every option a command reads is consumed; anything left over is an error
// that names it, so a typo never passes silently.

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

/// The options of one command invocation.
struct Arguments {
  private var options: [String: String] = [:]
  private var flags: Set<String> = []
  private(set) var positionals: [String] = []
  private var consumed: Set<String> = []
  /// Options given more than once (ambiguous: which value was meant?).
  private var repeated: Set<String> = []
  /// The command being parsed, for hints ("run 'prune help model'").
  var command: String? = nil

  /// Where the options of this command are listed.
  private var helpHint: String {
    command.map { "run 'prune help \($0)' for its options" } ?? "run 'prune help' for the options of each command"
  }

  /// Parses `args` (without the program and command names). An option followed by another option
  /// or by nothing is a boolean flag.
  init(_ args: [String]) {
    var i = 0
    while i < args.count {
      let a = args[i]
      if a.hasPrefix("--") && a.count > 2 {
        let body = String(a.dropFirst(2))
        let key = body.firstIndex(of: "=").map { String(body[..<$0]) } ?? body
        if options[key] != nil || flags.contains(key) { repeated.insert(key) }
        if let eq = body.firstIndex(of: "=") {
          options[String(body[..<eq])] = String(body[body.index(after: eq)...])
        } else if i + 1 < args.count && !(args[i + 1].hasPrefix("--") && args[i + 1].count > 2) {
          options[body] = args[i + 1]
          i += 1
        } else {
          flags.insert(body)
        }
      } else {
        positionals.append(a)
      }
      i += 1
    }
  }

  /// The value of `--name` (or of the first alias present), or nil.
  mutating func string(_ name: String, aliases: [String] = []) -> String? {
    for key in [name] + aliases {
      if let v = options[key] {
        consumed.insert(key)
        return v
      }
      if flags.contains(key) {
        consumed.insert(key)
        return ""  // present without a value; typed getters report it
      }
    }
    return nil
  }

  /// The value of `--name`, or a usage error.
  mutating func required(_ name: String, aliases: [String] = [], hint: String? = nil) throws -> String {
    guard let v = string(name, aliases: aliases), !v.isEmpty else {
      throw CLIError("missing --\(name)", hint: hint ?? helpHint)
    }
    return v
  }

  /// `--name` as an Int in `range`, or `default`.
  mutating func int(_ name: String, aliases: [String] = [], default d: Int, range: ClosedRange<Int>) throws -> Int {
    guard let s = string(name, aliases: aliases) else { return d }
    guard let v = Int(s), range.contains(v) else {
      throw CLIError(
        "--\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(s)'",
        hint: "write --\(name) followed by a whole number in that range")
    }
    return v
  }

  /// `--name` as a Double in `range`, or `default`.
  mutating func double(_ name: String, aliases: [String] = [], default d: Double, range: ClosedRange<Double>) throws -> Double {
    guard let s = string(name, aliases: aliases) else { return d }
    guard let v = Double(s), range.contains(v) else {
      throw CLIError(
        "--\(name) must be a number in \(range.lowerBound)...\(range.upperBound), got '\(s)'",
        hint: "write --\(name) followed by a number in that range")
    }
    return v
  }

  /// Whether the boolean `--name` is present.
  mutating func flag(_ name: String, aliases: [String] = []) -> Bool {
    for key in [name] + aliases where flags.contains(key) || options[key] != nil {
      consumed.insert(key)
      return true
    }
    return false
  }

  /// Fails on any option the command did not read, and on any positional argument (every input
  /// is given as --name value).
  func finish() throws {
    if let first = repeated.sorted().first {
      throw CLIError("--\(first) given more than once", hint: "give each option once")
    }
    let unknown = Set(options.keys).union(flags).subtracting(consumed)
    if let first = unknown.sorted().first {
      throw CLIError("unknown option --\(first)", hint: helpHint)
    }
    if let extra = positionals.first {
      throw CLIError("unexpected argument '\(extra)'", hint: "every input is given as --name value")
    }
  }
}

/// Writes a line to standard error (progress and diagnostics; results go to standard output).
func printError(_ text: String) {
  FileHandle.standardError.write(Data((text + "\n").utf8))
}
