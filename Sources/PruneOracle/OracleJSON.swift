// The JSON the oracle writes and reads back: the layer report (`prune layer --report`), the
// certificate (`prune verify --json/--certificate`), the suite certificate and the test-vector
// manifest (`prune vectors`). Every key is snake_case, as the one-line `--json` summaries of the
// other commands; the one encoder and decoder of those files are here, so that the manifest
// `prune vectors` writes is the manifest `prune verify --manifest` reads.

import Foundation
import PruneFormats
import PruneSolvers

/// `value` as the oracle's JSON: the form of `prettyJSON` (pretty-printed, sorted keys, unescaped
/// slashes, non-finite numbers as the strings "Infinity", "-Infinity", "NaN", a final newline) with
/// every property name in snake_case (`relativeError` → `relative_error`). Dictionary keys are
/// names, not properties, and are written as they are ("BF16", an option's report key).
package func oracleJSON(_ value: some Encodable) -> Data {
  prettyJSON(value, keys: .convertToSnakeCase)
}

/// The decoder of `oracleJSON`'s files. A property with an acronym (`maxKKT`) names its key
/// `maxKkt` so that both directions agree (snake_case `max_kkt` reads back as `maxKkt`).
package func oracleJSONDecoder() -> JSONDecoder {
  let decoder = JSONDecoder()
  decoder.keyDecodingStrategy = .convertFromSnakeCase
  decoder.nonConformingFloatDecodingStrategy = .convertFromString(
    positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
  return decoder
}

/// A method option's value in a report, as the JSON type of its kind (`MethodOption.Kind`): an
/// integer, a number, a boolean or a string (a choice, or a value no declaration reads).
public enum ReportedOptionValue: Sendable, Equatable, Encodable {
  case integer(Int)
  case number(Double)
  case bool(Bool)
  case string(String)

  /// The value of the option reported under `key` for `method`, typed by its declaration in
  /// `MethodOption.all`; an undeclared key's "true" or "false" as a boolean, any other text as it is.
  public init(key: String, text: String, method: PruningMethod?) {
    let route = MethodOption.all.first { $0.reportKey == key }.flatMap { option in
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

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .integer(let v): try c.encode(v)
    case .number(let v): try c.encode(v)
    case .bool(let v): try c.encode(v)
    case .string(let v): try c.encode(v)
    }
  }
}
