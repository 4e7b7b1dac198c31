import Foundation

/// Where the tests find files that are not in the repository: the real model fetched by
/// scripts/fetch-model.sh, and the project's shared folder (golden files, corpus) that sits next
/// to the clone (CI and the main checkout) or a few levels up (worktrees).
public enum ModelFiles {
  /// The package root: this file is Tests/PruneTestSupport/ModelFiles.swift.
  public static let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// The SmolLM2 GGUF: $PRUNEKIT_SMOLLM2_GGUF, else .cache/models/ in the package.
  public static let smolLM2: URL = {
    if let path = ProcessInfo.processInfo.environment["PRUNEKIT_SMOLLM2_GGUF"], !path.isEmpty {
      return URL(fileURLWithPath: path)
    }
    return packageRoot.appendingPathComponent(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
  }()

  public static var hasSmolLM2: Bool { FileManager.default.fileExists(atPath: smolLM2.path) }

  /// The shared folder: $PRUNEKIT_SHARED, else the first `shared/` holding golden/ beside the
  /// package root or one of its parents (up to three levels).
  public static let shared: URL? = {
    if let path = ProcessInfo.processInfo.environment["PRUNEKIT_SHARED"], !path.isEmpty {
      return URL(fileURLWithPath: path)
    }
    var dir = packageRoot
    for _ in 0..<4 {
      let candidate = dir.deletingLastPathComponent().appendingPathComponent("shared")
      if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("golden").path) { return candidate }
      dir = dir.deletingLastPathComponent()
    }
    return nil
  }()

  /// A file of the shared folder: first the copy embedded in the repository's Fixtures/
  /// (`golden/...` and `janeausten/...` live there, with provenance in Fixtures/README.md), so a
  /// clean clone anywhere runs these tests; then the shared folder beside the clone.
  public static func sharedFile(_ relative: String) -> URL? {
    // shared/data/janeausten is embedded as Fixtures/janeausten.
    let inFixtures = relative.hasPrefix("data/") ? String(relative.dropFirst(5)) : relative
    let embedded = packageRoot.appendingPathComponent("Fixtures").appendingPathComponent(inFixtures)
    if FileManager.default.fileExists(atPath: embedded.path) { return embedded }
    guard let shared else { return nil }
    let url = shared.appendingPathComponent(relative)
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
  }

  public static var hasGolden: Bool { sharedFile("golden/smollm2-golden.json") != nil }
  public static var hasTinyConfigs: Bool {
    ["llama", "opt", "gpt2"].allSatisfy { sharedFile("golden/\($0)-tiny/config.json") != nil }
  }
}
