// Method options on the command line, all from their declarations (`MethodOption.all`,
// PruneSolvers/MethodOptions.swift): their command-line declarations (name, aliases, help) for the
// commands that take them (layer, model, sweep), reading them, and setting them for a method.

import Foundation
import PruneKit

/// The command-line declaration of each method option, in `MethodOption.declared`'s order (the
/// methods' own options, then the refinements such as --refine): its CLI
/// name, its aliases and its help (the methods it applies to, what it means, its values and
/// defaults). Its value is read as text here and checked against the method by `methodOptions`,
/// since what it accepts depends on the method.
let methodOptionDeclarations: [(option: MethodOption, declaration: Option<String>)] = MethodOption.declared.map {
  option in
  let methods = option.methods.map(\.rawValue).joined(separator: ", ")
  let help = "[\(methods)] \(option.summary). Values: \(option.accepted). Default: \(option.defaults)"
  return (option, Option.text(option.cliName, aliases: option.aliases, placeholder: placeholder(option), help: help))
}

/// The declarations of the method options that apply to at least one of `methods`.
func methodOptionDeclarations(for methods: [PruningMethod]) -> [Option<String>] {
  methodOptionDeclarations.filter { $0.option.methods.contains(where: methods.contains) }.map(\.declaration)
}

/// The value's name in the usage text, from the kind of value its first method takes.
private func placeholder(_ option: MethodOption) -> String {
  switch option.routes[0].kind {
  case .integer: return "N"
  case .real: return "X"
  case .choice: return "NAME"
  case .bool: return "BOOL"
  }
}

/// The method options given on the command line, each with its value as typed, in declaration
/// order. (The parser has already rejected two spellings of one option.)
func readMethodOptions(_ args: Arguments) -> [(option: MethodOption, value: String)] {
  methodOptionDeclarations.compactMap { option, declaration in args[declaration].map { (option, $0) } }
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
    // A preset first (it replaces every option of its method), then the rest by name, so that the
    // options given beside a preset override it.
    for (option, value) in given.sorted(by: {
      ($0.option.name == MethodOption.preset.name ? 0 : 1, $0.option.cliName)
        < ($1.option.name == MethodOption.preset.name ? 0 : 1, $1.option.cliName)
    }) {
      try options.set(option, value, for: method)
      byKey[option.reportKey] = value
    }
  } catch {
    throw CLIError(error, exitCode: 2)
  }
  return ParsedMethod(method: method, options: options, given: byKey)
}

/// Reads every method option the user gave and sets it for `method`.
func parseMethodOptions(_ args: Arguments, for method: PruningMethod) throws -> ParsedMethod {
  try methodOptions(readMethodOptions(args), for: method)
}
