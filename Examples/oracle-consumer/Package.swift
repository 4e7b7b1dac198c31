// swift-tools-version:6.0
//
// oracle-consumer: a package that depends on PruneKit by version, as a pruning backend that uses
// PruneKit as its oracle would (Docs/using-prunekit.md). Its executable certifies a layer pruned
// with PruneKit's library API, and times one GEMM. scripts/check-consumer.sh builds and runs it
// against a tagged clone of the repository; CI runs that script.
//
// Where PruneKit comes from: the git URL in PRUNEKIT_GIT_URL (check-consumer.sh sets
// file://<temporary clone>), or else the repository this example sits in, which then needs a
// version tag (git tag 0.6.0) and must be a plain clone (SwiftPM does not clone from a
// `git worktree`, whose .git is a file). Either way SwiftPM takes the newest tag from 0.6.0 up to,
// not including, 1.0.0, as it would from any published repository.

import PackageDescription

/// The repository that holds this example: two folders up from Examples/oracle-consumer.
let enclosingRepository =
  "file://" + Context.packageDirectory.split(separator: "/").dropLast(2).map { "/" + $0 }.joined()
let prunekitURL = Context.environment["PRUNEKIT_GIT_URL"] ?? enclosingRepository

/// SwiftPM names a package after the last component of its URL, without ".git" (a clone in a folder
/// called PruneKit is "PruneKit"); `.product(package:)` needs that name.
let prunekitPackage: String = {
  let last = prunekitURL.split(separator: "/").last.map(String.init) ?? "PruneKit"
  return last.hasSuffix(".git") ? String(last.dropLast(4)) : last
}()

let package = Package(
  name: "oracle-consumer",
  dependencies: [
    .package(url: prunekitURL, from: "0.6.0")
  ],
  targets: [
    .executableTarget(
      name: "oracle-consumer",
      dependencies: [.product(name: "PruneKit", package: prunekitPackage)])
  ]
)
