// JSON as PruneKit writes and quotes it: every report, certificate, manifest and table is written
// by `prettyJSON` (sorted keys, so the same value gives the same bytes), and every format that
// reads JSON (config.json, tokenizer.json, safetensors headers, manifests, reports read back)
// reports a parse failure through `jsonErrorReason` or `jsonDecodingReason`, one line. The JSON files of a model folder (config.json,
// tokenizer.json) are found by `readFileOrFolderEntry`.

import Foundation

/// The one-line reason JSONSerialization gives for bytes it cannot parse (its debug description
/// names the line and column when it knows them).
package func jsonErrorReason(_ error: any Error) -> String {
  let ns = error as NSError
  if let debug = ns.userInfo[NSDebugDescriptionErrorKey] as? String, !debug.isEmpty { return debug }
  if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError { return underlying.localizedDescription }
  return ns.localizedDescription
}

/// The one-line reason a JSONDecoder gives for bytes it cannot decode: the key and what is wrong
/// with it, or where the bytes stop being JSON (never Swift's `DecodingError.dataCorrupted(...)`).
package func jsonDecodingReason(_ error: any Error) -> String {
  guard let error = error as? DecodingError else { return jsonErrorReason(error) }
  if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
    return context.underlyingError.map { "not valid JSON: \(jsonErrorReason($0))" } ?? "not valid JSON"
  }
  return summarize(error)
}

/// `value` as pretty-printed JSON with sorted keys, unescaped slashes and non-finite numbers as the
/// strings "Infinity", "-Infinity", "NaN", ending with a newline: the form of every JSON report.
/// `keys` names the properties (`.convertToSnakeCase` for the oracle's files).
public func prettyJSON(
  _ value: some Encodable, keys: JSONEncoder.KeyEncodingStrategy = .useDefaultKeys
) -> Data {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
  encoder.keyEncodingStrategy = keys
  encoder.nonConformingFloatEncodingStrategy = .convertToString(
    positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
  var data = try! encoder.encode(value)
  data.append(0x0A)
  return data
}

/// The bytes of the file `url`, or of the file `entry` inside `url` when it is a folder (a model
/// folder holding config.json or tokenizer.json), and the path read. A file that cannot be read
/// throws `unreadable(path, reason)`.
package func readFileOrFolderEntry<E: Error>(
  _ url: URL, entry: String, unreadable: (_ path: String, _ reason: String) -> E
) throws(E) -> (data: Data, path: String) {
  var file = url
  var isDirectory: ObjCBool = false
  if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
    file = url.appendingPathComponent(entry)
  }
  do {
    return (try InputFiles.read(file), file.path)
  } catch {
    throw unreadable(file.path, error.reason)
  }
}
