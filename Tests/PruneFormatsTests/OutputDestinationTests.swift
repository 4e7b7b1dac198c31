import Foundation
import PruneFormats
import PruneTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What the one writer does with a destination that is not a regular file: a character device or
/// a FIFO is written through and stays what it was, a symbolic link is followed and stays a link
/// pointing where it did, a block device or a socket is refused, and a device is never a folder.
/// (Run as root, the writer of earlier versions turned such a device node into a regular file: the
/// device tests use a node of their own in a temporary folder, never /dev/null itself.)
@Suite struct OutputDestinationTests {
  /// The file type bits of `path`, not following a link (0 when it does not exist).
  static func type(_ path: URL) -> mode_t {
    var info = stat()
    return lstat(path.path, &info) == 0 ? info.st_mode & S_IFMT : 0
  }

  /// A character device that discards what is written: a null device node of our own when root
  /// may create one (so that a failure cannot replace the machine's /dev/null), else /dev/null
  /// (which a process that is not root cannot replace: /dev takes no new files).
  static func nullDevice(in folder: TemporaryFolder) -> URL {
    let own = folder.file("null")
    // Device 1:3, the null device (Linux's makedev for small numbers: major << 8 | minor).
    if getuid() == 0, mknod(own.path, S_IFCHR | 0o666, dev_t(1 << 8 | 3)) == 0 { return own }
    return URL(fileURLWithPath: "/dev/null")
  }

  @Test func aCharacterDeviceIsWrittenThroughAndStaysADevice() throws {
    let folder = TemporaryFolder("destination-device")
    defer { folder.remove() }
    let device = Self.nullDevice(in: folder)
    #expect(try AtomicOutput.destination(of: device) == .writeThrough(device))
    try AtomicOutput.write(Data("discarded".utf8), to: device)
    // With a regular file written in the same call: both are written, the device is still one.
    try AtomicOutput.write([(Data("a".utf8), folder.file("a.json")), (Data("b".utf8), device)])
    #expect(Self.type(device) == S_IFCHR)
    #expect(try Data(contentsOf: folder.file("a.json")) == Data("a".utf8))
    let names = try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted()
    #expect(names == (device.path == "/dev/null" ? ["a.json"] : ["a.json", "null"]))
  }

  @Test func aFIFOIsWrittenThroughToItsReader() throws {
    let folder = TemporaryFolder("destination-fifo")
    defer { folder.remove() }
    let fifo = folder.file("pipe")
    #expect(mkfifo(fifo.path, 0o600) == 0)
    let payload = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })  // more than a pipe holds
    final class Received: @unchecked Sendable { var data = Data() }
    let received = Received()
    let done = DispatchSemaphore(value: 0)
    let path = fifo.path
    DispatchQueue.global().async {
      if let handle = FileHandle(forReadingAtPath: path) {
        received.data = handle.readDataToEndOfFile()
        try? handle.close()
      }
      done.signal()
    }
    try AtomicOutput.write(payload, to: fifo)
    #expect(done.wait(timeout: .now() + 30) == .success)
    #expect(received.data == payload)
    #expect(Self.type(fifo) == S_IFIFO)
  }

  @Test func aSymbolicLinkIsFollowedAndStaysALink() throws {
    let folder = TemporaryFolder("destination-link")
    defer { folder.remove() }
    let manager = FileManager.default
    try manager.createDirectory(at: folder.file("real"), withIntermediateDirectories: false)
    try Data("old".utf8).write(to: folder.file("real/target.json"))
    try manager.createSymbolicLink(atPath: folder.file("link.json").path, withDestinationPath: "real/target.json")
    try AtomicOutput.write(Data("new".utf8), to: folder.file("link.json"))
    #expect(Self.type(folder.file("link.json")) == S_IFLNK)
    #expect(try manager.destinationOfSymbolicLink(atPath: folder.file("link.json").path) == "real/target.json")
    #expect(try Data(contentsOf: folder.file("real/target.json")) == Data("new".utf8))
    // A chain of links, the last one dangling: the file is created at the end of the chain.
    try manager.createSymbolicLink(atPath: folder.file("first").path, withDestinationPath: folder.file("second").path)
    try manager.createSymbolicLink(atPath: folder.file("second").path, withDestinationPath: "real/new.json")
    try AtomicOutput.write(Data("x".utf8), to: folder.file("first"))
    #expect(Self.type(folder.file("first")) == S_IFLNK && Self.type(folder.file("second")) == S_IFLNK)
    #expect(try Data(contentsOf: folder.file("real/new.json")) == Data("x".utf8))
    // No temporary is left beside the links or the targets.
    #expect(try manager.contentsOfDirectory(atPath: folder.file("real").path).sorted() == ["new.json", "target.json"])
    // A loop of links is an error naming the given path.
    try manager.createSymbolicLink(atPath: folder.file("loop").path, withDestinationPath: "loop")
    #expect(throws: WriteError(path: folder.file("loop").path, reason: String(cString: strerror(ELOOP)))) {
      try AtomicOutput.write(Data("x".utf8), to: folder.file("loop"))
    }
  }

  @Test func descriptorPathsAreWrittenThrough() throws {
    for path in ["/dev/stdout", "/dev/stderr", "/dev/fd/1", "/proc/self/fd/2"] {
      let url = URL(fileURLWithPath: path)
      #expect(try AtomicOutput.destination(of: url) == .writeThrough(url))
    }
  }

  @Test func aFolderOutputFollowsLinksAndRefusesDevices() throws {
    let folder = TemporaryFolder("destination-folder")
    defer { folder.remove() }
    let manager = FileManager.default
    try manager.createSymbolicLink(atPath: folder.file("out").path, withDestinationPath: "real-out")
    try AtomicOutput.writeFolder(folder.file("out"), name: .partial, replacing: true) {
      (temporary: URL) throws(WriteError) in
      try AtomicOutput.write(Data("x".utf8), to: temporary.appendingPathComponent("x.json"))
    }
    #expect(Self.type(folder.file("out")) == S_IFLNK)
    #expect(try manager.contentsOfDirectory(atPath: folder.file("real-out").path) == ["x.json"])
    let device = Self.nullDevice(in: folder)
    for refused in [device, URL(fileURLWithPath: "/dev/stdout")] {
      do {
        try AtomicOutput.writeFolder(refused, name: .partial, replacing: true) { (_: URL) throws(WriteError) in
          Issue.record("a folder was filled for \(refused.path)")
        }
        Issue.record("a folder was written over \(refused.path)")
      } catch {
        guard case .refused(let e) = error else {
          Issue.record("\(error)")
          continue
        }
        #expect(e.path == refused.path)
      }
    }
    #expect(Self.type(device) == S_IFCHR)
    #expect(OutputSafety.folderOutputProblem(of: device, option: "--out") != nil)
    #expect(OutputSafety.folderProblem(of: URL(fileURLWithPath: "/dev/stdout"), option: "--report") == nil)
  }
}
