// Method options on the command line, all from their declarations (`MethodOption.all`,
// PruneSolvers/MethodOptions.swift): reading them under their names and aliases, setting them for
// a method (layer, model, sweep), and the help table of `prune help layer`.

import Foundation
import PruneKit

/// The method options given on the command line, each with its value as typed, in declaration
/// order. An option is read under its name (`--block-size`) or any alias (`--blocksize`); giving
/// two spellings of one option is a usage error.
func readMethodOptions(_ args: inout Arguments) throws -> [(option: MethodOption, value: String)] {
  var given: [(option: MethodOption, value: String)] = []
  for option in MethodOption.all {
    var found: [(spelling: String, value: String)] = []
    for spelling in [option.cliName] + option.aliases {
      if let value = args.string(spelling) { found.append((spelling, value)) }
    }
    if found.count > 1 {
      throw CLIError(
        "\(found.map { "--\($0.spelling)" }.joined(separator: " and ")) are the same option",
        hint: "give it once, as --\(option.cliName)")
    }
    if let first = found.first { given.append((option, first.value)) }
  }
  return given
}

/// The plan's method, options and the options as given (shared by layer, model and sweep).
struct ParsedMethod {
  var method: PruningMethod
  var options: MethodOptions
  /// The options as given, by report key (`block_size`), values as typed: what reports record.
  var given: [String: String]
}

/// Sets the `given` options for `method`; an option that does not apply to it, or a value it does
/// not accept, is a usage error.
func methodOptions(_ given: [(option: MethodOption, value: String)], for method: PruningMethod) throws -> ParsedMethod {
  var options = MethodOptions()
  var byKey: [String: String] = [:]
  do throws(PruningError) {
    for (option, value) in given.sorted(by: { $0.option.cliName < $1.option.cliName }) {
      try options.set(option, value, for: method)
      byKey[option.reportKey] = value
    }
  } catch {
    throw CLIError(error.description, exitCode: 2)
  }
  return ParsedMethod(method: method, options: options, given: byKey)
}

/// Reads every method option the user gave and sets it for `method`.
func parseMethodOptions(_ args: inout Arguments, for method: PruningMethod) throws -> ParsedMethod {
  try methodOptions(readMethodOptions(&args), for: method)
}

/// The table of `prune help layer`: each option with its methods, meaning, values, defaults (read
/// from `MethodOptions()`) and aliases, wrapped at 100 columns.
func methodOptionsHelp() -> String {
  let width = (MethodOption.all.map(\.cliName.count).max() ?? 0) + 6
  var text = ""
  for option in MethodOption.all {
    let name = "  --\(option.cliName)".padding(toLength: width, withPad: " ", startingAt: 0)
    let body = "[\(option.methods.map(\.rawValue).joined(separator: ", "))] \(option.help)"
    text += wrapped(body, first: name, indent: String(repeating: " ", count: width), columns: 100)
  }
  return text
}

/// `text` broken at spaces into lines of at most `columns` characters, the first after `first`,
/// the others after `indent`.
func wrapped(_ text: String, first: String, indent: String, columns: Int) -> String {
  var out = "", line = first, lineHasWord = false
  for word in text.split(separator: " ") {
    if lineHasWord && line.count + 1 + word.count > columns {
      out += line + "\n"
      line = indent
      lineHasWord = false
    }
    line += (lineHasWord ? " " : "") + word
    lineHasWord = true
  }
  return out + line + "\n"
}
