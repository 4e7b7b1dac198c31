// prune: the PruneKit command-line tool. Each command lives in its own file (`<Name>Command.swift`)
// and is listed once in Command.swift; library code never prints, the commands do.

import Foundation
import PruneKit

/// Runs the command line `argv` (without the program's name) and returns the exit status: 0, 1
/// for failures while running, 2 for usage errors.
func prune(_ argv: [String]) -> Int32 {
  switch argv.first {
  case nil, "help", "--help", "-h":
    // `prune help`, or `prune help NAME` for a command's usage (-h and --help after it change nothing).
    let names = argv.dropFirst().filter { !Command.asksForHelp([$0]) }
    guard let name = names.first else {
      print(Command.overview, terminator: "")
      return 0
    }
    guard let command = Command.named(name) else {
      printError("prune: \(Command.unknown(name))")
      return 2
    }
    if names.count > 1 {
      printError(
        "prune help: \(CLIError("unexpected argument '\(names[1])'", hint: "give one command: prune help \(name)."))")
      return 2
    }
    print(command.usage)
    return 0
  case "--version", "version":
    if argv.count > 1 {
      printError(
        "prune \(argv[0]): \(CLIError("unexpected argument '\(argv[1])'", hint: "prune --version takes none."))")
      return 2
    }
    print(Command.version)
    return 0
  default:
    break
  }
  let name = argv[0]
  guard let command = Command.named(name) else {
    printError("prune: \(Command.unknown(name))")
    return 2
  }
  let words = Array(argv.dropFirst())
  if Command.asksForHelp(words) {
    print(command.usage)
    return 0
  }
  do {
    try command.run(try Arguments(parsing: words, for: command))
    return 0
  } catch let error as CLIError {
    printError("prune \(name): \(error)")
    return error.exitCode
  } catch {
    printError("prune \(name): \(error)")
    return 1
  }
}

// A write beyond the file-size limit (ulimit -f) raises SIGXFSZ, which kills the process without a
// word. Ignored, the write fails with EFBIG instead, and the command reports which file could not
// be written and cleans up, as for a full disk.
signal(SIGXFSZ, SIG_IGN)
exit(prune(Array(CommandLine.arguments.dropFirst())))
