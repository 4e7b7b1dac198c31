// Why an input cannot be read, in PruneKit's words: every reader of a file the user names (a
// safetensors or GGUF file, a manifest, a config, a report read back, a text) turns a failed read
// into one reason and one hint from here, never Foundation's wording ("NSCocoaErrorDomain error
// 256", "The file doesn't exist"). The reason is found by looking at what is at the path after the
// read failed: nothing, a folder where a file is expected, a name with a byte that is not UTF-8
// (which the command line cannot pass on unchanged), or the C library's reason.

import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file the user named could not be read: its path, the reason and a hint (see the file comment).
public struct InputFileError: PruneKitError, Equatable {
  public var path: String
  public var reason: String

  public init(path: String, reason: String) {
    self.path = path
    self.reason = reason
  }

  public var message: String { "cannot read \(path) (\(reason))" }
  public var hint: String? { InputFiles.hint(reason: reason) }
}

/// Reading the files the user names, and the reasons and hints of failed reads.
public enum InputFiles {
  /// The reason when the path holds a byte that is not UTF-8.
  public static let notUTF8 = "its name holds a byte that is not UTF-8, shown as \u{FFFD}"
  /// The reason when a folder is given where a file is expected.
  public static let isFolder = "it is a folder, not a file"
  /// The reason when nothing is at the path.
  public static let missing = "no such file"

  /// The whole file `url` (model weights are not read this way but by range: `ByteSource`).
  public static func read(_ url: URL) throws(InputFileError) -> Data {
    do { return try Data(contentsOf: url) } catch {
      throw InputFileError(path: url.path, reason: reason(url, error))
    }
  }

  /// Why `url` could not be read (`error`: the reader's error), in PruneKit's words.
  public static func reason(_ url: URL, _ error: (any Error)? = nil) -> String {
    let path = url.path
    var info = stat()
    if stat(path, &info) != 0 {
      let code = errno
      if path.contains("\u{FFFD}") { return notUTF8 }
      return code == ENOENT ? missing : String(cString: strerror(code))
    }
    if info.st_mode & S_IFMT == S_IFDIR { return isFolder }
    return error.map { OutputSafety.reason($0) } ?? "unknown reason"
  }

  /// The hint for a failed read whose reason is `reason` (a sentence with its final period).
  public static func hint(reason: String) -> String {
    switch reason {
    case notUTF8:
      return "the command line cannot pass such a name on unchanged: rename the file, or link to it with a UTF-8 name"
        + " (ln -s)."
    case isFolder: return "give the path of a file, not of the folder holding it."
    case missing: return "check the path (ls shows what is there)."
    default: return "check the path and its permissions."
    }
  }
}
