// The one way PruneKit writes an output: all or nothing. Every file (safetensors weights and masks,
// JSON reports, certificates, manifests, tables, charts) and every folder (a pruned model, a
// checkpoint, an export) goes through the writers of this file, so that a failed or killed run
// leaves what was there before, or nothing, never a partial output:
//
//   - files (`write(_:to:)`, `write(_:)` for several at once): each is written to a temporary file
//     beside its destination, flushed to disk, and renamed over the destination only when every
//     one is written;
//   - folders (`writeFolder`): filled under a temporary name beside the destination, then renamed
//     into place in one step.
//
// Temporary names all carry the writer's process id:
//   `.FILE.tmp-PID-N`                 a file being written (N random)
//   `.DIR.partial-PID`                an output folder being assembled (prune model, merge, sweep)
//   `.DIR.checkpoint.partial-PID`     a checkpoint folder being created
//   `.DIR.export-PID-N`               a Hugging Face export being assembled
//   `..DIR.partial-PID.export-PID-N`  an export inside an output folder (left by earlier versions,
//                                     which assembled the export apart; still cleaned up)
// One whose process no longer runs belongs to a killed run and is removed by the next run on the
// same output (`removeStaleTemporaries`, `removeStaleAtomicWrites`).
//
// What happens to whatever is already at a destination is decided in one place, `destination(of:)`
// and `folderDestination(of:)` (what the path is) with `moveIntoPlace` (the rename):
//   - a regular file (or nothing) is replaced by rename as above;
//   - a character device or a FIFO (`/dev/null`, a terminal, a named pipe) and a descriptor path
//     (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`) are opened and written in place, never
//     replaced (a stream cannot be all or nothing; it gets the bytes once every file is ready);
//   - a symbolic link is followed, as `cp` and a shell's `>` follow it: the temporary is written
//     beside the link's final target and renamed over the target, so the link stays a link and
//     points where it did;
//   - a block device or a socket is refused, and so is a device or FIFO given as a folder.

import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// write(2) (the writers' own `write` hides its name inside `AtomicOutput`).
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int { write(fd, bytes, count) }

/// An output that could not be written: its final path (never the temporary's) and the C
/// library's reason ("No space left on device", "File too large", "Permission denied", ...).
public struct WriteError: PruneKitError, Equatable {
  /// The destination.
  public var path: String
  /// The C library's reason.
  public var reason: String

  /// The hint when the C library's reason does not give one (a refused destination).
  public var advice: String?

  public init(path: String, reason: String, advice: String? = nil) {
    self.path = path
    self.reason = reason
    self.advice = advice
  }

  public var message: String { "cannot write \(path) (\(reason))" }
  public var hint: String? { advice ?? OutputSafety.writeHint(reason: reason) }
}

/// Where the bytes of a file output go (see the file comment and `AtomicOutput.destination(of:)`).
public enum OutputDestination: Equatable, Sendable {
  /// A regular file or nothing yet: written beside this path (a symbolic link's final target) and
  /// renamed over it.
  case replace(URL)
  /// A character device, a FIFO or a descriptor path: opened and written in place.
  case writeThrough(URL)
}

/// Why `AtomicOutput.writeFolder` failed; on every failure the temporary folder is gone and the
/// destination is as it was.
public enum FolderWriteError<Fill: Error>: Error {
  /// The temporary folder could not be created in the destination's folder.
  case create(folder: String, reason: String)
  /// `fill` failed.
  case fill(Fill)
  /// The finished folder could not be renamed to the destination; `exists`: something is there
  /// already (only when not replacing).
  case move(reason: String, exists: Bool)
  /// The destination is not a place for a folder (a device, a FIFO, a socket); nothing was created.
  case refused(WriteError)
}

/// The writers of all-or-nothing outputs, their temporary names, and the clean-up of the
/// temporaries of killed runs (see the file comment).
public enum AtomicOutput {
  // MARK: - Files

  /// Writes `data` to `url` atomically: a temporary file beside it (`.NAME.tmp-PID-N`), flushed to
  /// disk, then renamed over `url`. On failure the temporary is removed and `url` keeps what it
  /// had; the error names `url`.
  public static func write(_ data: Data, to url: URL) throws(WriteError) {
    try write([(data, url)])
  }

  /// Writes several files all or nothing: each first to a temporary file beside it
  /// (`.NAME.tmp-PID-N`, flushed to disk), and only when every one is written are they renamed into
  /// place. On a failure (a full disk, a read-only folder) the temporaries are removed and every
  /// destination keeps what it had. The error names the destination that could not be written.
  public static func write(_ files: [(data: Data, url: URL)]) throws(WriteError) {
    var temporaries: [(temporary: URL, destination: URL, given: URL)] = []
    var streams: [(data: Data, destination: URL, given: URL)] = []
    func removeTemporaries() { for t in temporaries { _ = unlink(t.temporary.path) } }
    for (data, url) in files {
      let destination: URL
      do {
        switch try Self.destination(of: url) {
        case .replace(let target): destination = target
        case .writeThrough(let target):
          streams.append((data, target, url))
          continue
        }
      } catch {
        removeTemporaries()
        throw error
      }
      let temporary = destination.deletingLastPathComponent().appendingPathComponent(
        fileTemporaryPrefix(of: destination.lastPathComponent) + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
      // 0o666 less the umask, as for any file a program creates.
      let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o666)
      guard fd >= 0 else {
        let reason = String(cString: strerror(errno))
        removeTemporaries()
        throw WriteError(path: url.standardizedFileURL.path, reason: reason)
      }
      temporaries.append((temporary, destination, url))
      var failure = writeAll(data, to: fd)
      if failure == 0 && fsync(fd) != 0 { failure = errno }
      if close(fd) != 0 && failure == 0 { failure = errno }
      if failure != 0 {
        removeTemporaries()
        throw WriteError(path: url.standardizedFileURL.path, reason: String(cString: strerror(failure)))
      }
    }
    // Every file is ready: the streams get their bytes (a failure there still leaves every file as
    // it was), then the files are renamed into place.
    for s in streams {
      let fd = open(s.destination.path, O_WRONLY | O_APPEND | O_NOCTTY)
      var failure = fd >= 0 ? writeAll(s.data, to: fd) : errno
      if fd >= 0 && close(fd) != 0 && failure == 0 { failure = errno }
      if failure != 0 {
        removeTemporaries()
        throw WriteError(path: s.given.path, reason: String(cString: strerror(failure)))
      }
    }
    for (i, t) in temporaries.enumerated() {
      let failure = moveIntoPlace(t.temporary, to: t.destination, replacing: true)
      if failure != 0 {
        for u in temporaries[i...] { _ = unlink(u.temporary.path) }
        throw WriteError(path: t.given.standardizedFileURL.path, reason: String(cString: strerror(failure)))
      }
    }
  }

  /// Writes every byte of `data` to `fd` (retrying short writes and EINTR); 0 or the errno.
  private static func writeAll(_ data: Data, to fd: Int32) -> Int32 {
    data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> Int32 in
      var offset = 0
      while offset < bytes.count {
        let n = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
          if errno == EINTR { continue }
          return errno
        }
        offset += n
      }
      return 0
    }
  }

  // MARK: - Folders

  /// How the temporary folder of `writeFolder` is named (see the file comment).
  public enum FolderName: Sendable {
    /// `.NAME.partial-PID`: one per process; a leftover of this process is removed first.
    case partial
    /// `.NAME.export-PID-N`.
    case export
  }

  /// Writes the folder `final` all or nothing: creates a temporary folder beside it (named as
  /// `name` says), lets `fill` write into it, and renames it to `final`. With `replacing`, the
  /// rename replaces an empty folder at `final` (rename(2)); without, it fails when anything is
  /// there. On every failure the temporary folder is removed and `final` is as it was.
  public static func writeFolder<Fill: Error>(
    _ final: URL, name: FolderName, replacing: Bool, fill: (URL) throws(Fill) -> Void
  ) throws(FolderWriteError<Fill>) {
    let manager = FileManager.default
    let destination: URL
    do { destination = try folderDestination(of: final) } catch {
      throw .refused(error)
    }
    let parent = destination.deletingLastPathComponent()
    let temporary: URL
    switch name {
    case .partial:
      temporary = parent.appendingPathComponent(
        folderTemporaryPrefix(of: destination.lastPathComponent) + "\(getpid())")
      try? manager.removeItem(at: temporary)
    case .export:
      temporary = parent.appendingPathComponent(
        exportTemporaryPrefix(of: destination.lastPathComponent) + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    }
    do {
      try manager.createDirectory(at: temporary, withIntermediateDirectories: false)
    } catch {
      throw .create(folder: parent.path, reason: OutputSafety.reason(error))
    }
    do {
      try fill(temporary)
    } catch {
      try? manager.removeItem(at: temporary)
      throw .fill(error)
    }
    let failure = moveIntoPlace(temporary, to: destination, replacing: replacing)
    guard failure == 0 else {
      try? manager.removeItem(at: temporary)
      throw .move(reason: String(cString: strerror(failure)), exists: failure == EEXIST || failure == ENOTEMPTY)
    }
  }

  // MARK: - The destination

  /// The longest chain of symbolic links followed (as the kernel's own limit, 40 on Linux).
  static let maximumLinks = 40

  /// Where the file output `url` goes (see the file comment): nothing or a regular file at the end
  /// of its symbolic links is replaced there; a character device, a FIFO or a descriptor path
  /// (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`) is written through; a block device or a
  /// socket is refused. A folder is returned as `.replace` and fails at the rename (EISDIR).
  public static func destination(of url: URL) throws(WriteError) -> OutputDestination {
    let given = url.standardizedFileURL
    var path = given.path
    for _ in 0...maximumLinks {
      if isDescriptorPath(path) { return .writeThrough(given) }
      var info = stat()
      guard lstat(path, &info) == 0 else {
        // Nothing there (ENOTDIR: a file on the way; the up-front checks say which).
        if errno == ENOENT || errno == ENOTDIR { return .replace(URL(fileURLWithPath: path)) }
        throw WriteError(path: given.path, reason: String(cString: strerror(errno)))
      }
      switch info.st_mode & S_IFMT {
      case S_IFLNK:
        guard let next = linkTarget(path) else {
          throw WriteError(path: given.path, reason: String(cString: strerror(errno)))
        }
        path = next
      case S_IFCHR, S_IFIFO: return .writeThrough(URL(fileURLWithPath: path))
      case S_IFBLK:
        throw WriteError(
          path: given.path, reason: "it is a block device",
          advice: "PruneKit never writes to a disk device; give a file path (or /dev/null to discard the output)")
      case S_IFSOCK:
        throw WriteError(
          path: given.path, reason: "it is a socket", advice: "give a file path, a named pipe (mkfifo) or /dev/stdout")
      default: return .replace(URL(fileURLWithPath: path))
      }
    }
    throw WriteError(path: given.path, reason: String(cString: strerror(ELOOP)))
  }

  /// Where the folder output `url` goes: nothing or a folder at the end of its symbolic links
  /// (followed as for files: the link stays in place and the folder appears at its target). A
  /// device, a FIFO, a socket or a descriptor path is refused; a regular file is returned and fails
  /// later as an existing output.
  public static func folderDestination(of url: URL) throws(WriteError) -> URL {
    let given = url.standardizedFileURL
    var path = given.path
    for _ in 0...maximumLinks {
      if isDescriptorPath(path) {
        throw WriteError(
          path: given.path, reason: "it is a file descriptor, not a folder",
          advice: "give the path of a new folder; a folder output cannot be streamed")
      }
      var info = stat()
      guard lstat(path, &info) == 0 else {
        // Nothing there (ENOTDIR: a file on the way; the up-front checks say which).
        if errno == ENOENT || errno == ENOTDIR { return URL(fileURLWithPath: path) }
        throw WriteError(path: given.path, reason: String(cString: strerror(errno)))
      }
      switch info.st_mode & S_IFMT {
      case S_IFLNK:
        guard let next = linkTarget(path) else {
          throw WriteError(path: given.path, reason: String(cString: strerror(errno)))
        }
        path = next
      case S_IFCHR, S_IFIFO, S_IFBLK, S_IFSOCK:
        throw WriteError(
          path: given.path, reason: "it is a device, a FIFO or a socket, not a folder",
          advice: "give the path of a new folder; a folder output cannot be streamed")
      default: return URL(fileURLWithPath: path)
      }
    }
    throw WriteError(path: given.path, reason: String(cString: strerror(ELOOP)))
  }

  /// `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`, `/proc/PID/fd/N`: a name of an
  /// open descriptor, whose link target is not a path to rename over (a pipe, or the file the shell
  /// opened, which must be written through to keep what the shell redirected).
  static func isDescriptorPath(_ path: String) -> Bool {
    if ["/dev/stdin", "/dev/stdout", "/dev/stderr"].contains(path) || path.hasPrefix("/dev/fd/") { return true }
    let parts = path.split(separator: "/")
    return parts.count == 4 && parts[0] == "proc" && parts[2] == "fd"
  }

  /// The absolute path a symbolic link points to (relative targets taken from the link's folder),
  /// or nil (errno set).
  static func linkTarget(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n >= 0 else { return nil }
    let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    if target.hasPrefix("/") { return URL(fileURLWithPath: target).standardizedFileURL.path }
    return URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(target).standardizedFileURL
      .path
  }

  /// Moves a finished temporary file or folder onto `destination` in one step and returns 0, or
  /// the errno of the failure. This is the one place that decides what happens to whatever is at
  /// `destination`: with `replacing`, rename(2) replaces a file (or an empty folder) there;
  /// without, nothing is ever replaced (renameat2 RENAME_NOREPLACE on Linux, renamex_np
  /// RENAME_EXCL on Darwin; elsewhere a check just before the rename) and EEXIST is returned.
  package static func moveIntoPlace(_ temporary: URL, to destination: URL, replacing: Bool) -> Int32 {
    if replacing { return rename(temporary.path, destination.path) == 0 ? 0 : errno }
    #if canImport(Glibc)
      typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
      if let symbol = dlsym(nil, "renameat2") {
        let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
        if renameat2(AT_FDCWD, temporary.path, AT_FDCWD, destination.path, 1 /* RENAME_NOREPLACE */) == 0 { return 0 }
        if errno != EINVAL && errno != ENOSYS { return errno }
      }
      if FileManager.default.fileExists(atPath: destination.path) { return EEXIST }
      return rename(temporary.path, destination.path) == 0 ? 0 : errno
    #elseif canImport(Darwin)
      return renamex_np(temporary.path, destination.path, UInt32(RENAME_EXCL)) == 0 ? 0 : errno
    #endif
  }

  // MARK: - Temporary names and stale temporaries

  /// `.NAME.tmp-`: the prefix of the temporary files of the file `name`.
  public static func fileTemporaryPrefix(of name: String) -> String { ".\(name).tmp-" }

  /// `.NAME.partial-`: the prefix of the temporary folder of the folder `name`.
  public static func folderTemporaryPrefix(of name: String) -> String { ".\(name).partial-" }

  /// `.NAME.export-`: the prefix of the temporary folder of the export `name`.
  static func exportTemporaryPrefix(of name: String) -> String { ".\(name).export-" }

  /// The temporary-name prefixes of an output folder or file named `name`: its temporary files and
  /// folders, the exports left inside them by earlier versions, and its checkpoint's temporary
  /// folder.
  public static func temporaryPrefixes(of name: String) -> [String] {
    [
      folderTemporaryPrefix(of: name), "." + folderTemporaryPrefix(of: name), fileTemporaryPrefix(of: name),
      folderTemporaryPrefix(of: name + ".checkpoint"),
    ]
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

  /// Removes the stale temporaries (see `temporaryPrefixes`) of the output `url` from its folder.
  @discardableResult
  public static func removeStaleTemporaries(of url: URL) -> [String] {
    let u = (try? folderDestination(of: url)) ?? url.standardizedFileURL
    return removeStaleTemporaries(
      in: u.deletingLastPathComponent(), prefixes: temporaryPrefixes(of: u.lastPathComponent))
  }

  /// Removes the stale temporary files (`.NAME.tmp-PID-N`) of the file `url` from its folder.
  @discardableResult
  public static func removeStaleTemporaryFiles(of url: URL) -> [String] {
    guard case .replace(let u) = (try? destination(of: url)) ?? .replace(url.standardizedFileURL) else { return [] }
    return removeStaleTemporaries(
      in: u.deletingLastPathComponent(), prefixes: [fileTemporaryPrefix(of: u.lastPathComponent)])
  }

  /// Removes the leftovers of atomic file writes (`.NAME.tmp-PID-N`) of processes that no longer
  /// run from `folder`, whatever NAME. Returns the names removed.
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

  /// Whether process `pid` exists (kill with signal 0: EPERM means it exists but is not ours).
  static func isRunning(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
  }
}
