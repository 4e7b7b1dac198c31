// How every PruneKit error reads: one line that says what went wrong and where (the file, block,
// layer, tensor or option), then `Hint:` and what to do about it. An error keeps the two parts
// apart (`message`, `hint`), so that an error wrapping another one adds its context to the inner
// message and keeps the inner hint, without ever reading either back out of a description. The
// description is put together here, once, for every error type of every module.
//
// It lives in the lowest module because the lowest error (`CholeskyError`) is wrapped by every
// module above it.

/// An error PruneKit reports to a person: `message` says what went wrong and where, `hint` what
/// to do about it. `description` is derived from the two (see `PruneKitError.description`).
///
/// An error that wraps another one (a layer's error inside a block, a reader's error inside a
/// model load) builds its message from its own context and the inner `message`, and takes the
/// inner `hint` when there is one.
public protocol PruneKitError: Error, CustomStringConvertible {
  /// What went wrong and where, as one sentence; its final period is added when it has none.
  var message: String { get }
  /// What to do about it, written out in full with its own final punctuation (it is printed as
  /// it is); nil when there is nothing to advise.
  var hint: String? { get }
}

extension PruneKitError {
  /// One line: "message. Hint: hint." (or "message." without a hint), with the control characters
  /// of names read from damaged files escaped (`oneLine`).
  public var description: String { errorLine(message: message, hint: hint) }
}

/// The one line of an error with `message` and `hint` (see `PruneKitError`).
package func errorLine(message: String, hint: String?) -> String {
  oneLine(sentence(message) + (hint.map { " Hint: " + $0 } ?? ""))
}

/// `text` ending with a full stop: one is added unless it already ends with ".", "?" or "!".
package func sentence(_ text: String) -> String {
  guard let last = text.last else { return text }
  return last == "." || last == "?" || last == "!" ? text : text + "."
}

/// A message with its control characters written as \u{…} escapes, so that names read from a
/// damaged file (which may hold any byte) cannot break it over several lines.
package func oneLine(_ s: String) -> String {
  var out = ""
  for u in s.unicodeScalars {
    if u.value < 0x20 || (0x7F...0x9F).contains(u.value) || u.value == 0x2028 || u.value == 0x2029 {
      out += "\\u{\(String(u.value, radix: 16))}"
    } else {
      out.unicodeScalars.append(u)
    }
  }
  return out
}
