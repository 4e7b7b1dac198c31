// What the pipeline does so that a failed or killed run loses nothing and leaves nothing behind:
// check up front that the output folder is writable and has room, recognise a full disk in a
// write error and say so, and remove the temporary files and folders of runs that were killed.
//
// Temporary names all carry the writer's process id: `.DIR.partial-PID` (an output folder being
// assembled), `..DIR.partial-PID.export-PID-N` (the export inside it), `.DIR.checkpoint.partial-PID`
// (a checkpoint folder being created) and `.FILE.tmp-PID-N` (an atomic file write). One whose
// process no longer runs belongs to a killed run and is removed by the next run on the same output.

import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Up-front checks and clean-up of output folders.
public enum OutputSafety {
  /// True when a write failure's reason (an strerror text, possibly inside a longer message) means
  /// that the disk, the quota or the file-size limit (`ulimit -f`) is exhausted.
  public static func isOutOfSpace(_ reason: String) -> Bool {
    [ENOSPC, EFBIG, EDQUOT].contains { reason.contains(String(cString: strerror($0))) }
  }

  /// The reason of a file error in the words of the C library ("No space left on device", "File
  /// too large", "Read-only file system"...): Foundation's errors often say only "The operation
  /// could not be completed" and keep the POSIX error underneath.
  public static func reason(_ error: any Error) -> String {
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSCocoaErrorDomain {
      switch CocoaError.Code(rawValue: ns.code) {
      case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
      case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
      case .fileWriteNoPermission, .fileReadNoPermission: return String(cString: strerror(EACCES))
      case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
      default: break
      }
    }
    return plain(ns.localizedDescription)
  }

  /// `text` without Foundation's "The operation could not be completed." preamble.
  public static func plain(_ text: String) -> String {
    var t = text
    for preamble in ["The operation could not be completed. ", "The operation couldn’t be completed. "] where t.hasPrefix(preamble) {
      t.removeFirst(preamble.count)
    }
    while t.hasSuffix(".") { t.removeLast() }
    return t
  }

  /// The hint for a failed write of `path`: free space when the disk is full, otherwise
  /// permissions. `retry` says how to continue (e.g. "--resume continues from the checkpoint").
  public static func writeHint(reason: String, retry: String) -> String {
    if reason.contains(String(cString: strerror(EFBIG))) {
      return "the file-size limit was reached: raise it (ulimit -f) or choose another output folder; \(retry)"
    }
    if isOutOfSpace(reason) {
      return "free space on that disk or choose another output folder; \(retry)"
    }
    return "check that the folder exists and is writable; \(retry)"
  }

  /// What stops `option path` from being created (its folder is missing, is a file, or takes no
  /// new files), as (message, hint); nil when nothing does. Checked before any work.
  public static func folderProblem(of path: URL, option: String) -> (message: String, hint: String)? {
    let parent = path.standardizedFileURL.deletingLastPathComponent()
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDirectory) else {
      return ("the folder \(parent.path) for \(option) \(path.path) does not exist", "create it first (mkdir -p \(parent.path))")
    }
    guard isDirectory.boolValue else {
      return ("\(option) \(path.path): \(parent.path) is a file, not a folder", "give a path inside a folder")
    }
    if let reason = unwritableReason(parent) {
      return ("cannot create files in \(parent.path) for \(option) \(path.path): \(reason)", "choose a path in a writable folder")
    }
    return nil
  }

  /// Why files cannot be created in `folder` (nil when they can): tries to create and delete a
  /// file there, which catches read-only mounts and permissions even for root.
  public static func unwritableReason(_ folder: URL) -> String? {
    let probe = folder.appendingPathComponent(".prunekit-probe-\(getpid())")
    let fd = open(probe.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    guard fd >= 0 else { return String(cString: strerror(errno)) }
    _ = close(fd)
    _ = unlink(probe.path)
    return nil
  }

  /// Bytes available to this process in the file system holding `folder` (nil when unknown).
  public static func availableBytes(_ folder: URL) -> Int? {
    var s = statvfs()
    guard statvfs(folder.path, &s) == 0 else { return nil }
    let (bytes, overflow) = Int(s.f_bavail).multipliedReportingOverflow(by: Int(s.f_frsize))
    return overflow ? Int.max : bytes
  }

  /// "123 MB" / "1.25 GB", for messages.
  public static func size(_ bytes: Int) -> String {
    bytes >= 1 << 30
      ? String(format: "%.2f GB", Double(bytes) / Double(1 << 30)) : String(format: "%.1f MB", Double(bytes) / Double(1 << 20))
  }

  /// Removes the entries of `folder` whose name starts with one of `prefixes` followed by the id
  /// of a process that no longer runs: the temporaries of killed runs. Entries of running
  /// processes (including this one) are kept. Returns the names removed.
  @discardableResult
  public static func removeStaleTemporaries(in folder: URL, prefixes: [String]) -> [String] {
    removeStale(in: folder) { name in
      prefixes.first(where: { name.hasPrefix($0) }).map { name.dropFirst($0.count) }
    }
  }

  /// Removes the leftovers of atomic file writes (`.NAME.tmp-PID-N`) of processes that no longer
  /// run from `folder`. Returns the names removed.
  @discardableResult
  public static func removeStaleAtomicWrites(in folder: URL) -> [String] {
    removeStale(in: folder) { name in
      guard name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards) else { return nil }
      return name[marker.upperBound...]
    }
  }

  /// Removes the entries for which `pidText` gives text starting with the id of a dead process.
  private static func removeStale(in folder: URL, pidText: (String) -> Substring?) -> [String] {
    let manager = FileManager.default
    guard let names = try? manager.contentsOfDirectory(atPath: folder.path) else { return [] }
    var removed: [String] = []
    for name in names.sorted() {
      guard let rest = pidText(name) else { continue }
      let digits = rest.prefix { $0.isASCII && $0.isNumber }
      guard let pid = Int32(digits), pid > 0, !isRunning(pid) else { continue }
      if (try? manager.removeItem(at: folder.appendingPathComponent(name))) != nil { removed.append(name) }
    }
    return removed
  }

  /// Writes several files all or nothing: each first to a temporary file beside it (`.NAME.tmp-PID-N`,
  /// flushed to disk), and only when every one is written are they renamed into place. On a
  /// failure (a full disk, a read-only folder) the temporaries are removed and every destination
  /// keeps what it had. The error names the destination that could not be written.
  public static func writeAll(_ files: [(data: Data, url: URL)]) throws(SafetensorsError) {
    var temporaries: [(temporary: URL, destination: URL)] = []
    func removeTemporaries() { for t in temporaries { _ = unlink(t.temporary.path) } }
    for (data, url) in files {
      let destination = url.standardizedFileURL
      let temporary = destination.deletingLastPathComponent().appendingPathComponent(
        ".\(destination.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
      let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
      guard fd >= 0 else {
        let reason = String(cString: strerror(errno))
        removeTemporaries()
        throw .writeFailed(path: destination.path, reason: reason)
      }
      temporaries.append((temporary, destination))
      var failure: Int32 = 0
      data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
        var offset = 0
        while offset < bytes.count {
          let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
          if n < 0 {
            if errno == EINTR { continue }
            failure = errno
            return
          }
          offset += n
        }
      }
      if failure == 0 && fsync(fd) != 0 { failure = errno }
      if close(fd) != 0 && failure == 0 { failure = errno }
      if failure != 0 {
        removeTemporaries()
        throw .writeFailed(path: destination.path, reason: String(cString: strerror(failure)))
      }
    }
    for (i, t) in temporaries.enumerated() where rename(t.temporary.path, t.destination.path) != 0 {
      let reason = String(cString: strerror(errno))
      for u in temporaries[i...] { _ = unlink(u.temporary.path) }
      throw .writeFailed(path: t.destination.path, reason: reason)
    }
  }

  /// The temporary-name prefixes of an output folder or file named `name` (see the file comment).
  package static func temporaryPrefixes(of name: String) -> [String] {
    [".\(name).partial-", "..\(name).partial-", ".\(name).tmp-", ".\(name).checkpoint.partial-"]
  }

  /// Whether process `pid` exists (kill with signal 0: EPERM means it exists but is not ours).
  static func isRunning(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
  }
}
