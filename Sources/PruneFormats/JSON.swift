// JSON as PruneKit writes and quotes it: every report, certificate, manifest and table is written
// by `prettyJSON` (sorted keys, so the same value gives the same bytes), and every format that
// reads JSON (config.json, tokenizer.json, safetensors headers, manifests, reports read back)
// reports a parse failure through `jsonErrorReason` or `jsonDecodingReason`, one line. The JSON files of a model folder (config.json,
// tokenizer.json) are found by `readFileOrFolderEntry`.
//
// PruneKit's own files (the oracle's layer reports, certificates and manifests; the pipeline's
// pruning-report.json and sweep.json) share one form since 0.7.0: `reportJSON` writes them with
// snake_case keys and `prunekit_version`, `reportJSONDecoder` reads them back, and
// `reportWriterBeforeVersion` names the writer of an older file, which is refused rather than half
// read. A method's report inside them is written by `PruningReportJSON` (dampings named by unit,
// option values typed by `ReportedOptionValue`).

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
/// throws `unreadable(path, reason)`; a folder named `entry` is not looked into (a model folder
/// whose config.json is a folder reports that, not "config.json/config.json: no such file").
package func readFileOrFolderEntry<E: Error>(
  _ url: URL, entry: String, unreadable: (_ path: String, _ reason: String) -> E
) throws(E) -> (data: Data, path: String) {
  var file = url
  var isDirectory: ObjCBool = false
  if url.lastPathComponent != entry, FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory),
    isDirectory.boolValue
  {
    file = url.appendingPathComponent(entry)
  }
  do {
    return (try InputFiles.read(file), file.path)
  } catch {
    throw unreadable(file.path, error.reason)
  }
}

// MARK: - PruneKit's own files

/// The version of PruneKit recorded in its reports, certificates, tables and test-vector
/// manifests (`prunekit_version`). It is also the package's version: a release tag equals it
/// (scripts/check-consumer.sh tags its clone with it).
public enum PruneKitVersion {
  /// Bumped when a method's output or a file format changes.
  public static let current = "0.7.0"
  /// The first version whose files have snake_case keys and `prunekit_version`; files of earlier
  /// versions are refused (`reportWriterBeforeVersion`).
  public static let snakeCaseFiles = "0.7.0"
}

/// `value` as one of PruneKit's JSON files: the form of `prettyJSON` (pretty-printed, sorted keys,
/// unescaped slashes, non-finite numbers as the strings "Infinity", "-Infinity", "NaN", a final
/// newline) with every property name in snake_case (`relativeError` → `relative_error`).
/// Dictionary keys are names, not properties, and are written as they are ("BF16", an option's
/// report key).
package func reportJSON(_ value: some Encodable) -> Data {
  prettyJSON(value, keys: .convertToSnakeCase)
}

/// The decoder of `reportJSON`'s files. A property with an acronym (`maxKKT`) names its key
/// `maxKkt` so that both directions agree (snake_case `max_kkt` reads back as `maxKkt`).
/// `.convertFromSnakeCase` also reads a camelCase key as it is, so a file of the format before
/// 0.7.0 would half decode (its multi-word keys missing): check `reportWriterBeforeVersion` first.
package func reportJSONDecoder() -> JSONDecoder {
  let decoder = prettyJSONDecoder()
  decoder.keyDecodingStrategy = .convertFromSnakeCase
  return decoder
}

/// The decoder of `prettyJSON`'s files with their keys as written: non-finite numbers read from the
/// strings "Infinity", "-Infinity", "NaN" (and any JSON layout, compact or pretty-printed).
package func prettyJSONDecoder() -> JSONDecoder {
  let decoder = JSONDecoder()
  decoder.nonConformingFloatDecodingStrategy = .convertFromString(
    positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
  return decoder
}

/// Who wrote `data`, a JSON object without `prunekit_version` (a file in the format before 0.7.0,
/// or not PruneKit's): "PruneKit X" when it names its version in the old spelling, "PruneKit
/// 0.6.0 or earlier" when it has one of `olderKeys` (keys only the old format wrote), "another
/// program" otherwise. Nil when the object has `prunekit_version`, or when `data` is not a JSON
/// object (the decoder then says what is wrong).
package func reportWriterBeforeVersion(_ data: Data, olderKeys: Set<String> = []) -> String? {
  guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
    object["prunekit_version"] == nil
  else { return nil }
  if let version = object["prunekitVersion"] as? String { return "PruneKit \(version)" }
  if !olderKeys.isDisjoint(with: object.keys) { return "PruneKit 0.6.0 or earlier" }
  return "another program"
}

/// A method option's value in a report, as the JSON type of its kind (`MethodOption.Kind`): an
/// integer, a number, a boolean or a string (a choice, or a value no declaration reads).
public enum ReportedOptionValue: Sendable, Equatable, Codable, CustomStringConvertible {
  case integer(Int)
  case number(Double)
  case bool(Bool)
  case string(String)

  /// The value of the option reported under `key` for `method`, typed by its declaration in
  /// `MethodOption.declared`; an undeclared key's "true" or "false" as a boolean, any other text as it is.
  public init(key: String, text: String, method: PruningMethod?) {
    let route = MethodOption.declared.first { $0.reportKey == key }.flatMap { option in
      method.flatMap { option.route(for: $0) } ?? option.routes.first
    }
    switch route?.kind {
    case .integer?: self = Int(text).map(Self.integer) ?? .string(text)
    case .real?: self = Double(text).map(Self.number) ?? .string(text)
    case .bool?: self = Bool(text).map(Self.bool) ?? .string(text)
    case .choice?: self = .string(text)
    // A method's own record that no option declares (ADMM's `fixed_mask`): a boolean as a boolean.
    case nil: self = Bool(text).map(Self.bool) ?? .string(text)
    }
  }

  /// Every option of a report typed (`PruningReport.options`).
  public static func typed(_ options: [String: String], method: String) -> [String: ReportedOptionValue] {
    options.reduce(into: [:]) {
      $0[$1.key] = ReportedOptionValue(key: $1.key, text: $1.value, method: PruningMethod(rawValue: method))
    }
  }

  /// Options read back from a file, typed again by their declarations: a real option written as
  /// `1` (JSON drops the ".0") reads back as the number 1.0, as it was written.
  public static func retyped(_ options: [String: ReportedOptionValue], method: String) -> [String: ReportedOptionValue]
  {
    typed(options.mapValues(\.description), method: method)
  }

  /// The value as text: what the command line takes (`0.01`, `128`, `true`, `sparsegpt`).
  public var description: String {
    switch self {
    case .integer(let v): return "\(v)"
    case .number(let v): return "\(v)"
    case .bool(let v): return "\(v)"
    case .string(let v): return v
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .integer(let v): try c.encode(v)
    case .number(let v): try c.encode(v)
    case .bool(let v): try c.encode(v)
    case .string(let v): try c.encode(v)
    }
  }

  /// A JSON boolean, integer, number or string as it is (`retyped` types it by its declaration).
  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if let v = try? c.decode(Bool.self) {
      self = .bool(v)
    } else if let v = try? c.decode(Int.self) {
      self = .integer(v)
    } else if let v = try? c.decode(Double.self) {
      self = .number(v)
    } else {
      self = .string(try c.decode(String.self))
    }
  }
}

/// A method's report (`PruningReport`) as PruneKit's files write it: its fields with the dampings
/// named by unit (`damping_absolute`: the δ added to the Gram's diagonal; `damping_retry_absolute`:
/// what a Cholesky retry added; `damping_relative`: the `damping` option, a fraction of
/// mean(diag G*)) and the options typed by their declared kind. The layer report of `prune layer`
/// writes these fields at its top level, `pruning-report.json` once per layer.
package struct PruningReportJSON: Codable {
  package var report: PruningReport

  package init(_ report: PruningReport) { self.report = report }

  private enum Keys: String, CodingKey {
    case method, pattern, realisedSparsity, error, relativeError, lambda, lambdaPath
    case objectiveTrace, iterations, seconds, metrics, notes, options
    case dampingAbsolute, dampingRetryAbsolute, dampingRelative
  }

  package func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: Keys.self)
    let r = report
    try c.encode(r.method, forKey: .method)
    try c.encode(r.pattern, forKey: .pattern)
    try c.encode(r.realisedSparsity, forKey: .realisedSparsity)
    if r.errorMeasured {
      try c.encode(r.error, forKey: .error)
      try c.encode(r.relativeError, forKey: .relativeError)
    } else {
      try c.encodeNil(forKey: .error)
      try c.encodeNil(forKey: .relativeError)
    }
    try c.encodeIfPresent(r.damping, forKey: .dampingAbsolute)
    try c.encodeIfPresent(r.dampingRetry, forKey: .dampingRetryAbsolute)
    try c.encodeIfPresent(r.options["damping"].flatMap(Double.init), forKey: .dampingRelative)
    try c.encodeIfPresent(r.lambda, forKey: .lambda)
    try c.encode(r.lambdaPath, forKey: .lambdaPath)
    try c.encode(r.objectiveTrace, forKey: .objectiveTrace)
    try c.encode(r.iterations, forKey: .iterations)
    try c.encode(r.seconds, forKey: .seconds)
    try c.encode(r.metrics, forKey: .metrics)
    try c.encode(r.notes, forKey: .notes)
    try c.encode(ReportedOptionValue.typed(r.options, method: r.method), forKey: .options)
  }

  /// The report read back; an option's text is its typed value's (`0.01`, `128`), and
  /// `damping_relative` is the `damping` option's value again.
  package init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: Keys.self)
    let method = try c.decode(String.self, forKey: .method)
    let options = try c.decode([String: ReportedOptionValue].self, forKey: .options)
    let error = try c.decodeIfPresent(Double.self, forKey: .error)
    let relativeError = try c.decodeIfPresent(Double.self, forKey: .relativeError)
    report = PruningReport(
      method: method, pattern: try c.decode(String.self, forKey: .pattern),
      realisedSparsity: try c.decode(Double.self, forKey: .realisedSparsity),
      error: error ?? 0, relativeError: relativeError ?? 0,
      damping: try c.decodeIfPresent(Double.self, forKey: .dampingAbsolute),
      dampingRetry: try c.decodeIfPresent(Double.self, forKey: .dampingRetryAbsolute),
      lambda: try c.decodeIfPresent(Double.self, forKey: .lambda),
      lambdaPath: try c.decode([Double].self, forKey: .lambdaPath),
      objectiveTrace: try c.decode([Double].self, forKey: .objectiveTrace),
      iterations: try c.decode(Int.self, forKey: .iterations), seconds: try c.decode(Double.self, forKey: .seconds),
      metrics: try c.decode([String: Double].self, forKey: .metrics),
      notes: try c.decode([String].self, forKey: .notes),
      options: ReportedOptionValue.retyped(options, method: method).mapValues(\.description))
    report.errorMeasured = error != nil && relativeError != nil
  }
}

/// Why one of PruneKit's JSON files could not be read back (`readReportJSON`).
public enum ReportReadFailure: Error, Sendable {
  /// A file in the format before 0.7.0 (no `prunekit_version`), and who wrote it.
  case olderFormat(writer: String)
  /// Not JSON, or not this kind of file: the decoder's one-line reason.
  case invalid(String)

  /// The message for the file `path`, a `what` ("report", "sweep table"): "PATH was written by
  /// PruneKit 0.6.0 or earlier, in the report format before 0.7.0 (no 'prunekit_version')", or
  /// "PATH is not a PruneKit report (REASON)".
  public func message(path: String, what: String) -> String {
    switch self {
    case .olderFormat(let writer):
      return "\(path) was written by \(writer), in the \(what) format before \(PruneKitVersion.snakeCaseFiles)"
        + " (no 'prunekit_version')"
    case .invalid(let reason): return "\(path) is not a PruneKit \(what) (\(reason))"
    }
  }
}

/// A file of PruneKit's read back (`reportJSONDecoder`), after checking that it is in the current
/// form: a file without `prunekit_version` is refused, never half read (`reportWriterBeforeVersion`;
/// `olderKeys` are keys only the older format of this kind of file wrote).
package func readReportJSON<T: Decodable>(
  _ type: T.Type, from data: Data, olderKeys: Set<String>
) throws(ReportReadFailure) -> T {
  if let writer = reportWriterBeforeVersion(data, olderKeys: olderKeys) { throw .olderFormat(writer: writer) }
  do { return try reportJSONDecoder().decode(type, from: data) } catch { throw .invalid(jsonDecodingReason(error)) }
}
