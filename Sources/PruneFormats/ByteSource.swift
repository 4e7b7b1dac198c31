// The bytes of a model file, read by range when a tensor is wanted: an open file read with `pread`
// (no mapping is kept, so the bytes of a tensor are resident only while it is decoded, and the
// kernel's page cache, which the process's resident memory does not count, holds the rest), or
// bytes already in memory (tests and fuzzing). The readers of safetensors and GGUF open the file,
// read its header through this type, validate every extent against `size`, and read a tensor's
// bytes only when it is decoded.

import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file (or bytes in memory) read by byte range on demand. Thread-safe: `pread` does not move a
/// shared file position.
public final class ByteSource: Sendable {
  private enum Storage: Sendable {
    case memory(Data)
    case file(descriptor: Int32)
  }

  private let storage: Storage
  /// The path of the file (or the label of bytes in memory), for messages.
  public let path: String
  /// The size in bytes, fixed when opened.
  public let size: Int

  /// Opens the file at `url` for reading; nothing is read yet.
  public init(contentsOf url: URL) throws(InputFileError) {
    let fd = open(url.path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      // Nothing there, a name that is not UTF-8 or a folder: the reasons every reader gives;
      // otherwise the C library's reason for the failed open (e.g. permission denied).
      let code = errno
      var info = stat()
      let found = stat(url.path, &info) == 0 && info.st_mode & S_IFMT != S_IFDIR
      throw InputFileError(path: url.path, reason: found ? String(cString: strerror(code)) : InputFiles.reason(url))
    }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
      let reason = String(cString: strerror(errno))
      close(fd)
      throw InputFileError(path: url.path, reason: reason)
    }
    if info.st_mode & S_IFMT == S_IFDIR {
      close(fd)
      throw InputFileError(path: url.path, reason: InputFiles.isFolder)
    }
    storage = .file(descriptor: fd)
    path = url.path
    size = Int(info.st_size)
  }

  /// Bytes held in memory; `name` labels messages.
  public init(data: Data, name: String) {
    // A zero-based copy of the indices (the bytes of a zero-based Data are not copied).
    storage = .memory(data.startIndex == 0 ? data : Data(data))
    path = name
    size = data.count
  }

  deinit {
    if case .file(let fd) = storage { close(fd) }
  }

  /// The bytes in `range` (which must lie in 0..<size), handed to `body`; for a file they are read
  /// into a buffer that lives only during the call. Throws when the read fails or the file has
  /// become shorter since it was opened.
  public func withBytes<R>(
    _ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R
  ) throws -> R {
    precondition(range.lowerBound >= 0 && range.upperBound <= size, "ByteSource: \(range) outside 0..<\(size)")
    switch storage {
    case .memory(let data):
      return try data.withUnsafeBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw[range])) }
    case .file(let fd):
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, range.count), alignment: 64)
      defer { buffer.deallocate() }
      try read(fd, range, into: buffer.baseAddress!)
      return try body(UnsafeRawBufferPointer(rebasing: buffer[0..<range.count]))
    }
  }

  /// The bytes in `range` as an array.
  public func bytes(_ range: Range<Int>) throws -> [UInt8] {
    try withBytes(range) { [UInt8]($0) }
  }

  /// Reads `range` of the file into `destination`, looping over short reads.
  private func read(_ fd: Int32, _ range: Range<Int>, into destination: UnsafeMutableRawPointer) throws {
    let (done, failure) = preadFully(fd, into: destination, count: range.count, at: range.lowerBound)
    if failure != 0 { throw InputFileError(path: path, reason: String(cString: strerror(failure))) }
    if done < range.count {
      throw InputFileError(
        path: path,
        reason: "the file ends at byte \(range.lowerBound + done), before byte \(range.upperBound) that was"
          + " there when it was opened (it changed while being read)")
    }
  }

}

/// Reads `count` bytes at `offset` of `fd` into `destination`, retrying short reads and EINTR: the
/// bytes read (fewer than `count` only when the file ends first) and 0, or errno.
package func preadFully(_ fd: Int32, into destination: UnsafeMutableRawPointer, count: Int, at offset: Int) -> (
  read: Int, errno: Int32
) {
  var done = 0
  while done < count {
    let n = pread(fd, destination + done, count - done, off_t(offset + done))
    if n < 0 {
      if errno == EINTR { continue }
      return (done, errno)
    }
    if n == 0 { break }
    done += n
  }
  return (done, 0)
}
