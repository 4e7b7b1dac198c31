/// A subcommand: its name, one line of help, its full usage text, and its entry point.
struct Command: Sendable {
  let name: String
  let summary: String
  let usage: String
  let run: @Sendable (inout Arguments) throws -> Void
  /// Hidden commands (test helpers) run and have usage, but `prune help` does not list them.
  var hidden: Bool = false

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
}
