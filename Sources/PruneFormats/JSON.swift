// JSON as PruneKit writes and quotes it: every report, certificate, manifest and table is written
// by `prettyJSON` (sorted keys, so the same value gives the same bytes), and every format that
// reads JSON (config.json, tokenizer.json, safetensors headers, manifests) reports a parse failure
// through `jsonErrorReason`, one line.

import Foundation

/// The one-line reason JSONSerialization gives for bytes it cannot parse (its debug description
/// names the line and column when it knows them).
package func jsonErrorReason(_ error: any Error) -> String {
  let ns = error as NSError
  if let debug = ns.userInfo[NSDebugDescriptionErrorKey] as? String, !debug.isEmpty { return debug }
  if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError { return underlying.localizedDescription }
  return ns.localizedDescription
}

/// `value` as pretty-printed JSON with sorted keys, unescaped slashes and non-finite numbers as the
/// strings "Infinity", "-Infinity", "NaN", ending with a newline: the form of every JSON report.
public func prettyJSON(_ value: some Encodable) -> Data {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
  encoder.nonConformingFloatEncodingStrategy = .convertToString(
    positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
  var data = try! encoder.encode(value)
  data.append(0x0A)
  return data
}
