// prune: the PruneKit command-line tool. Each command lives in its own file (`<Name>Command.swift`)
// and is listed once in Command.swift; library code never prints, the commands do.

import Foundation

func printHelp() {
  var text = "prune: post-training pruning of LLM linear layers (PruneKit)\n\nUsage: prune <command> [options]\n\nCommands:\n"
  for c in Command.all where !c.hidden { text += "  \(c.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(c.summary)\n" }
  text += "  help       this text; 'prune help <command>' for a command's options\n"
  print(text, terminator: "")
}

// A write beyond the file-size limit (ulimit -f) raises SIGXFSZ, which kills the process without a
// word. Ignored, the write fails with EFBIG instead, and the command reports which file could not
// be written and cleans up, as for a full disk.
signal(SIGXFSZ, SIG_IGN)

var argv = Array(CommandLine.arguments.dropFirst())
guard let name = argv.first, name != "help", name != "--help", name != "-h" else {
  if argv.count >= 2, let c = Command.all.first(where: { $0.name == argv[1] }) {
    print(c.usage)
  } else {
    printHelp()
  }
  exit(0)
}
guard let command = Command.all.first(where: { $0.name == name }) else {
  printError("prune: unknown command '\(name)'. Hint: run 'prune help' for the list of commands")
  exit(2)
}
var arguments = Arguments(Array(argv.dropFirst()))
arguments.command = command.name
do {
  if arguments.flag("help") {
    print(command.usage)
    exit(0)
  }
  try command.run(&arguments)
} catch let error as CLIError {
  printError("prune \(name): \(error)")
  exit(error.exitCode)
} catch {
  printError("prune \(name): \(error)")
  exit(1)
}
