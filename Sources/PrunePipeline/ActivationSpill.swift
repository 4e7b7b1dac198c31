// The calibration activations on disk (Docs/pipeline.md#spill): when the hidden states of all
// calibration tokens do not fit the memory budget, `ModelPruner` keeps them in files of a scratch
// folder, written and read a chunk of windows at a time, so memory holds a chunk or two instead of
// every token. The bits are those the in-memory run holds: the same chunks, the same order.

import Foundation
import PruneKernels
import PruneSolvers

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The scratch folder a run spills its activations to: one file per block input
/// (`input-NNN.f32`, rows × columns little-endian Float, row-major), each removed as soon as no
/// block needs it. The folder itself is created and removed by its owner (`ModelJob`: `OUT.spill`).
public final class ActivationSpill: @unchecked Sendable {
  /// The folder the files go to.
  public let folder: URL
  private let lock = NSLock()
  private var ioSeconds = 0.0

  /// Spills into `folder`, which must exist (`create(_:)`).
  public init(folder: URL) { self.folder = folder }

  /// Whether `name` is a file this type writes.
  static func isSpillFile(_ name: String) -> Bool {
    name.hasPrefix("input-") && name.hasSuffix(".f32") && Int(name.dropFirst(6).dropLast(4)) != nil
  }

  /// Removes `folder` if a killed run left it: a folder holding nothing but spill files. Anything
  /// else of that name is left alone (`create` then refuses it).
  public static func removeStale(_ folder: URL) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path),
      names.allSatisfy(isSpillFile)
    else { return }
    try? FileManager.default.removeItem(at: folder)
  }

  /// Creates `folder` owner-only (0700), after removing one a killed run left there.
  public static func create(_ folder: URL) throws(ModelPruningError) -> ActivationSpill {
    removeStale(folder)
    if mkdir(folder.path, 0o700) != 0 {
      throw .spill(folder: folder.path, reason: "cannot create it: \(String(cString: strerror(errno)))")
    }
    return ActivationSpill(folder: folder)
  }

  /// Removes the folder and every file in it.
  public func remove() { try? FileManager.default.removeItem(at: folder) }

  /// Seconds spent reading and writing the files so far, over every thread.
  public var seconds: Double { lock.withLock { ioSeconds } }

  func addSeconds(_ s: Double) { lock.withLock { ioSeconds += s } }

  /// A new file for the input of `block`, `rows` × `columns`, filled by `SpillFile.write`.
  func file(block: Int, rows: Int, columns: Int) throws(ModelPruningError) -> SpillFile {
    let name = "input-" + String(repeating: "0", count: max(0, 3 - String(block).count)) + "\(block).f32"
    return try SpillFile(path: folder.appendingPathComponent(name).path, rows: rows, columns: columns, owner: self)
  }
}

/// One `[rows × columns]` Float matrix in a file of the spill folder; closed and deleted when the
/// last reference goes. Reads and writes name the file and the folder when they fail.
final class SpillFile: @unchecked Sendable {
  let path: String
  let rows: Int
  let columns: Int
  private let fd: Int32
  private let owner: ActivationSpill
  private let lock = NSLock()
  private var ioSeconds = 0.0

  init(path: String, rows: Int, columns: Int, owner: ActivationSpill) throws(ModelPruningError) {
    self.path = path
    self.rows = rows
    self.columns = columns
    self.owner = owner
    unlink(path)  // a file of an earlier run of this process under the same name
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
    if fd < 0 {
      throw .spill(folder: owner.folder.path, reason: "cannot create \(path): \(String(cString: strerror(errno)))")
    }
  }

  deinit {
    close(fd)
    unlink(path)
  }

  /// Seconds this file's reads and writes took.
  var seconds: Double { lock.withLock { ioSeconds } }

  private func account(_ start: ContinuousClock.Instant) {
    let s = secondsSince(start)
    lock.withLock { ioSeconds += s }
    owner.addSeconds(s)
  }

  /// Writes `m` as rows `first ..< first + m.rows`.
  func write(_ m: Matrix<Float>, at first: Int) throws(ModelPruningError) {
    precondition(
      m.columns == columns && first + m.rows <= rows, "SpillFile.write: \(m.shapeDescription) at row \(first)")
    let start = ContinuousClock.now
    defer { account(start) }
    let failure: Int32 = m.withUnsafeBufferPointer { p in
      let raw = UnsafeRawPointer(p.baseAddress!)
      let count = p.count * MemoryLayout<Float>.size
      let offset = first * columns * MemoryLayout<Float>.size
      var done = 0
      while done < count {
        let n = pwrite(fd, raw + done, count - done, off_t(offset + done))
        if n < 0 {
          if errno == EINTR { continue }
          return errno
        }
        done += n
      }
      return 0
    }
    if failure != 0 {
      throw .spill(folder: owner.folder.path, reason: "cannot write \(path): \(String(cString: strerror(failure)))")
    }
  }

  /// Rows `r` as a matrix.
  func read(_ r: Range<Int>) throws(ModelPruningError) -> Matrix<Float> {
    precondition(r.upperBound <= rows, "SpillFile.read: rows \(r) of \(rows)")
    let start = ContinuousClock.now
    defer { account(start) }
    var m = Matrix<Float>(rows: r.count, columns: columns)
    let count = r.count * columns * MemoryLayout<Float>.size
    let (done, failure) = m.withUnsafeMutableBufferPointer { p in
      preadFully(fd, into: UnsafeMutableRawPointer(p.baseAddress!), count: count, at: r.lowerBound * columns * 4)
    }
    if failure != 0 || done < count {
      let reason =
        failure != 0 ? String(cString: strerror(failure)) : "the file ends at byte \(r.lowerBound * columns * 4 + done)"
      throw .spill(folder: owner.folder.path, reason: "cannot read \(path): \(reason)")
    }
    return m
  }
}
