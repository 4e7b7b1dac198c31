import Foundation
import PruneFormats
import PruneTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The one writer of outputs: a file replaces its destination only when written in full; a folder
/// appears only when filled, never over anything when told not to replace, and a failed one leaves
/// no temporary behind. (FaultTests, Tests/fault-kill.sh and Tests/fault-disk.sh drive the same
/// writers through killed and starved runs.)
@Suite struct AtomicOutputTests {
  static func names(_ folder: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
  }

  @Test func aFileIsReplacedInOneStepAndItsTemporaryIsGone() throws {
    let folder = TemporaryFolder("atomic-file")
    defer { folder.remove() }
    let a = folder.file("a.json")
    try AtomicOutput.write(Data("old".utf8), to: a)
    try AtomicOutput.write(Data("new".utf8), to: a)
    #expect(try Data(contentsOf: a) == Data("new".utf8))
    #expect(Self.names(folder.url) == ["a.json"])
    // A destination in a missing folder: the error names the destination and the C library's reason.
    let missing = folder.file("none/b.json")
    #expect(throws: WriteError(path: missing.path, reason: String(cString: strerror(ENOENT)))) {
      try AtomicOutput.write(Data("b".utf8), to: missing)
    }
  }

  @Test func aFolderAppearsOnlyWhenFilled() throws {
    let folder = TemporaryFolder("atomic-folder")
    defer { folder.remove() }
    let final = folder.file("out")
    try AtomicOutput.writeFolder(final, name: .partial, replacing: true) { (temporary: URL) throws(WriteError) in
      #expect(temporary.lastPathComponent == ".out.partial-\(getpid())")
      #expect(!FileManager.default.fileExists(atPath: final.path))
      try AtomicOutput.write(Data("x".utf8), to: temporary.appendingPathComponent("x.json"))
    }
    #expect(Self.names(folder.url) == ["out"])
    #expect(Self.names(final) == ["x.json"])
  }

  @Test func aFailedFillLeavesNothingBehind() {
    let folder = TemporaryFolder("atomic-fill")
    defer { folder.remove() }
    let final = folder.file("out")
    do {
      try AtomicOutput.writeFolder(final, name: .export, replacing: false) { (temporary: URL) throws(WriteError) in
        #expect(temporary.lastPathComponent.hasPrefix(".out.export-\(getpid())-"))
        try AtomicOutput.write(Data("x".utf8), to: temporary.appendingPathComponent("x.json"))
        throw WriteError(path: final.appendingPathComponent("y.json").path, reason: String(cString: strerror(ENOSPC)))
      }
      Issue.record("the folder was written")
    } catch {
      guard case .fill(let e) = error else {
        Issue.record("\(error)")
        return
      }
      #expect(e.path == final.appendingPathComponent("y.json").path)
      #expect(e.description.contains("free space on that disk"), "\(e)")
    }
    #expect(Self.names(folder.url).isEmpty)
  }

  /// Without replacing, an existing destination (even an empty folder, which rename(2) would
  /// replace) is left alone and reported as existing.
  @Test func withoutReplacingNothingIsEverReplaced() throws {
    let folder = TemporaryFolder("atomic-noreplace")
    defer { folder.remove() }
    let final = folder.file("out")
    try FileManager.default.createDirectory(at: final, withIntermediateDirectories: false)
    do {
      try AtomicOutput.writeFolder(final, name: .export, replacing: false) { (temporary: URL) throws(WriteError) in
        try AtomicOutput.write(Data("x".utf8), to: temporary.appendingPathComponent("x.json"))
      }
      Issue.record("an existing folder was replaced")
    } catch {
      guard case .move(_, let exists) = error else {
        Issue.record("\(error)")
        return
      }
      #expect(exists)
    }
    #expect(Self.names(folder.url) == ["out"])
    #expect(Self.names(final).isEmpty)
  }

  /// The temporaries of a process that no longer runs are removed; this process's are kept.
  @Test func staleTemporariesOfDeadProcessesAreRemoved() throws {
    let folder = TemporaryFolder("atomic-stale")
    defer { folder.remove() }
    let dead = Int32.max - 1
    let names = [
      ".out.partial-\(dead)", "..out.partial-\(dead).export-\(dead)-7", ".out.tmp-\(dead)-3",
      ".out.checkpoint.partial-\(dead)",
      ".out.partial-\(getpid())", ".other.partial-\(dead)",
    ]
    for name in names { try Data().write(to: folder.file(name)) }
    let removed = AtomicOutput.removeStaleTemporaries(of: folder.file("out"))
    #expect(removed == Array(names.prefix(4)).sorted())
    #expect(Self.names(folder.url) == [".other.partial-\(dead)", ".out.partial-\(getpid())"])
  }
}
