// What the commands do before and after writing, so that a failed run says why in words a person
// can act on: check up front that an output's folder exists, is writable and has room; and turn a
// failed write into the C library's reason ("No space left on device") and a hint that fits it (a
// full disk, the file-size limit, permissions). The writing itself is AtomicOutput.swift's.

import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Up-front checks of output folders, and the reasons and hints of failed writes.
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
    for preamble in ["The operation could not be completed. ", "The operation couldn’t be completed. "]
    where t.hasPrefix(preamble) {
      t.removeFirst(preamble.count)
    }
    while t.hasSuffix(".") { t.removeLast() }
    return t
  }

  /// The hint for a failed write whose reason is `reason`: free space when the disk is full, the
  /// file-size limit, otherwise permissions; `retry`, when given, says how to continue (e.g.
  /// "--resume continues from the checkpoint"). A sentence with its final period.
  public static func writeHint(reason: String, retry: String? = nil) -> String {
    let then = retry.map { "; \($0)." } ?? "."
    if reason.contains(String(cString: strerror(EFBIG))) {
      return "the file-size limit was reached: raise it (ulimit -f) or choose another output folder" + then
    }
    if isOutOfSpace(reason) {
      return "free space on that disk or choose another output folder" + then
    }
    return "check that the folder exists and is writable" + then
  }

  /// What stops `option path` from being created (its folder is missing, is a file, or takes no
  /// new files), as (message, hint); nil when nothing does. Checked before any work.
  /// A character device, a FIFO or a descriptor path has no folder to check (it is written
  /// through); a symbolic link is checked at its target's folder (see `AtomicOutput.destination`).
  public static func folderProblem(of path: URL, option: String) -> (message: String, hint: String)? {
    let target: URL
    do {
      switch try AtomicOutput.destination(of: path) {
      case .writeThrough: return nil
      case .replace(let url): target = url
      }
    } catch {
      return ("\(option) \(path.path): \(error.reason)", error.hint ?? "give a file path")
    }
    let parent = target.deletingLastPathComponent()
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDirectory) else {
      return (
        "the folder \(parent.path) for \(option) \(path.path) does not exist",
        "create it first (mkdir -p \(parent.path))"
      )
    }
    guard isDirectory.boolValue else {
      return ("\(option) \(path.path): \(parent.path) is a file, not a folder", "give a path inside a folder")
    }
    if let reason = unwritableReason(parent) {
      return (
        "cannot create files in \(parent.path) for \(option) \(path.path): \(reason)",
        "choose a path in a writable folder"
      )
    }
    return nil
  }

  /// What stops `option path` from being a folder output (it is a device, a FIFO, a socket or a
  /// descriptor path; see `AtomicOutput.folderDestination`), as (message, hint); nil when nothing
  /// does.
  public static func folderOutputProblem(of path: URL, option: String) -> (message: String, hint: String)? {
    do { _ = try AtomicOutput.folderDestination(of: path) } catch {
      return ("\(option) \(path.path): \(error.reason)", error.hint ?? "give the path of a new folder")
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

  /// "123.4 MiB" / "1.25 GiB", for messages: binary units, labelled as such, so that a figure
  /// typed back as a size (`--max-memory 1.25GiB`, read by `ByteSize.parse`) means the same bytes.
  public static func size(_ bytes: Int) -> String {
    bytes >= 1 << 30
      ? String(format: "%.2f GiB", Double(bytes) / Double(1 << 30))
      : String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
  }
}
