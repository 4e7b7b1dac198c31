// Hugging Face `config.json` for the three model families PruneKit runs: LLaMA (model_type llama,
// and mistral and qwen2, which share its layout), OPT and GPT-2. The Swift fields carry the
// Hugging Face key names in camel case (`num_key_value_heads` → `numKeyValueHeads`) and their
// `CodingKeys` spell the keys exactly, so encoding a config writes keys transformers reads back.
// Keys that only set a size are required; every other key defaults to the value transformers uses
// when it is absent (noted on each field), except `tie_word_embeddings`, which stays nil when absent
// (the checkpoint then decides: tied unless it holds lm_head.weight). This is the only parser of
// config.json: the forward pass takes its `ForwardConfig` from a `ModelConfig`.

import Foundation

// MARK: - Errors

/// Why a config.json could not be used. Every description is one line naming the file (and key)
/// and ending with a `Hint:`.
public enum ModelConfigError: PruneKitError, Equatable {
  /// The file could not be read.
  case unreadable(path: String, reason: String)
  /// The bytes are not a JSON object.
  case invalidJSON(source: String, reason: String)
  /// `model_type` is absent (nil) or not one PruneKit supports.
  case unknownModelType(source: String, modelType: String?)
  /// A key the model needs is absent.
  case missingKey(source: String, modelType: String, key: String)
  /// A key holds a value of the wrong JSON type (or null).
  case wrongType(source: String, key: String, reason: String)
  /// A key holds a value of the right type that cannot be right (zero layers, heads that do not
  /// divide the width, ...).
  case invalidValue(source: String, key: String, reason: String)
  /// A value that is read but not run (a RoPE scaling type other than linear, llama3 and yarn, a
  /// scaling key the type does not read, an activation the forward pass does not implement);
  /// `hint` says what is.
  case unsupported(source: String, key: String, value: String, hint: String)

  public var message: String {
    switch self {
    case .unreadable(let path, let reason): return "config \(path): cannot read the file (\(reason))"
    case .invalidJSON(let source, let reason): return "config \(source): not a JSON object (\(reason))"
    case .unknownModelType(let source, let modelType):
      return "config \(source): "
        + (modelType.map { "model_type '\($0)' is not supported" } ?? "there is no model_type key")
    case .missingKey(let source, let modelType, let key):
      return "config \(source): '\(key)' is missing for model_type \(modelType)"
    case .wrongType(let source, let key, let reason), .invalidValue(let source, let key, let reason):
      return "config \(source): '\(key)' \(reason)"
    case .unsupported(let source, let key, let value, _): return "config \(source): \(key) = \(value) is not supported"
    }
  }

  public var hint: String? {
    switch self {
    case .unreadable: return "a Hugging Face model folder holds config.json next to model.safetensors."
    case .invalidJSON: return "the file is damaged or not a Hugging Face config.json."
    case .unknownModelType:
      return "PruneKit runs model_type " + ModelConfig.supportedModelTypes.joined(separator: ", ") + "."
    case .missingKey: return "add it from the model card or the original config.json; PruneKit does not guess sizes."
    case .wrongType, .invalidValue: return "compare with the original config.json."
    case .unsupported(_, _, _, let hint): return hint
    }
  }
}

// MARK: - The family switch

/// A Hugging Face model configuration, one case per supported family.
public enum ModelConfig: Sendable, Equatable {
  case llama(LlamaConfig)
  case opt(OPTConfig)
  case gpt2(GPT2Config)

  /// The model_type values PruneKit reads.
  public static let supportedModelTypes = ["llama", "mistral", "qwen2", "opt", "gpt2"]

  /// The model_type of the configuration.
  public var modelType: String {
    switch self {
    case .llama(let c): return c.modelType
    case .opt: return "opt"
    case .gpt2: return "gpt2"
    }
  }

  /// Reads `config.json`: `url` is the file or the model folder that holds it.
  public init(contentsOf url: URL) throws(ModelConfigError) {
    let file = try readFileOrFolderEntry(url, entry: "config.json") {
      ModelConfigError.unreadable(path: $0, reason: $1)
    }
    try self.init(json: file.data, source: file.path)
  }

  /// Parses config.json bytes; `source` names them in messages.
  public init(json data: Data, source: String = "config.json") throws(ModelConfigError) {
    let header: ModelTypeHeader
    do {
      header = try JSONDecoder().decode(ModelTypeHeader.self, from: data)
    } catch {
      throw Self.translate(error, data: data, source: source, modelType: "?")
    }
    guard let type = header.modelType, Self.supportedModelTypes.contains(type) else {
      throw ModelConfigError.unknownModelType(source: source, modelType: header.modelType)
    }
    do {
      switch type {
      case "opt": self = .opt(try JSONDecoder().decode(OPTConfig.self, from: data))
      case "gpt2": self = .gpt2(try JSONDecoder().decode(GPT2Config.self, from: data))
      default: self = .llama(try JSONDecoder().decode(LlamaConfig.self, from: data))
      }
    } catch {
      throw Self.translate(error, data: data, source: source, modelType: type)
    }
    try validate(source: source)
  }

  /// Throws `invalidValue` for sizes that cannot describe a model.
  public func validate(source: String) throws(ModelConfigError) {
    switch self {
    case .llama(let c): try c.validate(source: source)
    case .opt(let c): try c.validate(source: source)
    case .gpt2(let c): try c.validate(source: source)
    }
  }

  private struct ModelTypeHeader: Decodable {
    var modelType: String?
    enum CodingKeys: String, CodingKey { case modelType = "model_type" }
  }

  /// DecodingError → ModelConfigError, naming the key. Bytes that are not JSON at all get
  /// JSONSerialization's reason, which says where the parse failed (JSONDecoder's does not).
  static func translate(_ error: Error, data: Data, source: String, modelType: String) -> ModelConfigError {
    if case .dataCorrupted(let context)? = error as? DecodingError, context.codingPath.isEmpty {
      do { _ = try JSONSerialization.jsonObject(with: data) } catch {
        return .invalidJSON(source: source, reason: jsonErrorReason(error))
      }
    }
    return translate(error, source: source, modelType: modelType)
  }

  /// DecodingError → ModelConfigError, naming the key.
  static func translate(_ error: Error, source: String, modelType: String) -> ModelConfigError {
    func path(_ context: DecodingError.Context) -> String {
      context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
    guard let error = error as? DecodingError else {
      return .invalidJSON(source: source, reason: "\(error)")
    }
    switch error {
    case .keyNotFound(let key, let context):
      let parent = path(context)
      return .missingKey(
        source: source, modelType: modelType, key: parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)
    case .typeMismatch(let type, let context):
      if context.codingPath.isEmpty {
        return .invalidJSON(source: source, reason: "the top level is not a JSON object")
      }
      return .wrongType(source: source, key: path(context), reason: "is not of type \(type)")
    case .valueNotFound(let type, let context):
      return .wrongType(source: source, key: path(context), reason: "is null where a \(type) is needed")
    case .dataCorrupted(let context):
      if context.codingPath.isEmpty {
        return .invalidJSON(source: source, reason: context.debugDescription)
      }
      return .wrongType(source: source, key: path(context), reason: context.debugDescription)
    @unknown default:
      return .invalidJSON(source: source, reason: "\(error)")
    }
  }
}

// MARK: - Decoding helpers

/// One line saying which key a JSONDecoder error is about and what was wrong with it.
func summarize(_ error: DecodingError) -> String {
  func path(_ context: DecodingError.Context, _ last: CodingKey? = nil) -> String {
    let keys = context.codingPath + (last.map { [$0] } ?? [])
    return keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
  }
  switch error {
  case .keyNotFound(let key, let context): return "'\(path(context, key))' is missing"
  case .typeMismatch(let type, let context): return "'\(path(context))' is not of type \(type)"
  case .valueNotFound(let type, let context): return "'\(path(context))' is null where a \(type) is needed"
  case .dataCorrupted(let context):
    return context.codingPath.isEmpty ? context.debugDescription : "'\(path(context))': \(context.debugDescription)"
  @unknown default: return "\(error)"
  }
}

extension KeyedDecodingContainer {
  /// The value at `key`, or `fallback` when the key is absent or null.
  fileprivate func value<T: Decodable>(_ key: Key, default fallback: T) throws -> T {
    try decodeIfPresent(T.self, forKey: key) ?? fallback
  }

  /// The integer at `key`: `absent` when the key is missing, nil when it is null.
  fileprivate func optionalInt(_ key: Key, absent: Int?) throws -> Int? {
    guard contains(key) else { return absent }
    return try decodeIfPresent(Int.self, forKey: key)
  }

  /// An integer or a list of integers (`eos_token_id` is either), as a list; nil when absent or null.
  fileprivate func intList(_ key: Key) throws -> [Int]? {
    guard contains(key), try !decodeNil(forKey: key) else { return nil }
    if let one = try? decode(Int.self, forKey: key) { return [one] }
    return try decode([Int].self, forKey: key)
  }
}

// MARK: - Checks shared by the three families

/// Throws `invalidValue` for the first size that is not positive.
private func requirePositive(_ sizes: KeyValuePairs<String, Int>, source: String) throws(ModelConfigError) {
  for (key, value) in sizes where value <= 0 {
    throw .invalidValue(source: source, key: key, reason: "is \(value); it must be positive")
  }
}

/// Throws `invalidValue` (about `key`) unless `value` is positive and finite.
private func requirePositive(_ value: Double, _ key: String, source: String) throws(ModelConfigError) {
  guard value > 0, value.isFinite else {
    throw .invalidValue(source: source, key: key, reason: "is \(value); it must be positive")
  }
}

/// Throws `invalidValue` (about the divisor's key) unless `divisor` divides `dividend`.
private func requireDivides(
  _ divisor: (key: String, value: Int), _ dividend: (key: String, value: Int), source: String
) throws(ModelConfigError) {
  guard dividend.value % divisor.value == 0 else {
    throw .invalidValue(
      source: source, key: divisor.key,
      reason: "is \(divisor.value), which does not divide \(dividend.key) = \(dividend.value)")
  }
}

// MARK: - LLaMA

/// RoPE scaling (`rope_scaling`, or `rope_parameters` in transformers ≥ 5) when it is not the
/// plain "default" rotation: the keys as the file writes them. `frequencyScaling(...)` checks them
/// against the type and applies the defaults, giving the typed `RopeFrequencyScaling` the forward
/// pass runs (`LlamaConfig.validate` runs the same checks for the supported types, so a missing or
/// stray key is refused when the file is read).
public struct RopeScaling: Sendable, Equatable, Codable {
  /// The types the forward pass implements.
  public static let supportedTypes = ["linear", "llama3", "yarn"]

  /// `rope_type` (older files: `type`): "linear", "dynamic", "llama3", "yarn", ...
  public var ropeType: String
  /// `factor` (required by every supported type): how many times the context is stretched.
  public var factor: Double?
  /// llama3 `low_freq_factor` (required).
  public var lowFreqFactor: Double?
  /// llama3 `high_freq_factor` (required).
  public var highFreqFactor: Double?
  /// llama3 and yarn `original_max_position_embeddings`: the context the model was pre-trained
  /// on; absent, transformers fills in `max_position_embeddings`.
  public var originalMaxPositionEmbeddings: Int?
  /// yarn `beta_fast`: absent or null, `RopeFrequencyScaling.Yarn.defaultBetaFast`.
  public var betaFast: Double?
  /// yarn `beta_slow`: absent or null, `RopeFrequencyScaling.Yarn.defaultBetaSlow`.
  public var betaSlow: Double?
  /// yarn `attention_factor`: the factor on cos and sin; absent, derived from `factor` (and
  /// `mscale`, `mscale_all_dim`).
  public var attentionFactor: Double?
  /// yarn `mscale` (DeepSeek style), used with `mscale_all_dim` when `attention_factor` is absent.
  public var mscale: Double?
  /// yarn `mscale_all_dim`.
  public var mscaleAllDim: Double?
  /// yarn `truncate`: round the ramp's ends to whole dimensions; default true.
  public var truncate: Bool?
  /// `partial_rotary_factor`, when given (only 1, the whole head rotated, is run).
  public var partialRotaryFactor: Double?
  /// The keys of the object that none of the fields above reads (refused by
  /// `frequencyScaling`: a key PruneKit does not read could change the rotation).
  public var unknownKeys: [String]
  /// The config.json key that held the object, "rope_scaling" or "rope_parameters", for messages
  /// (not a key of the object; always encoded as rope_scaling).
  public var objectKey = "rope_scaling"

  public init(
    ropeType: String, factor: Double? = nil, lowFreqFactor: Double? = nil, highFreqFactor: Double? = nil,
    originalMaxPositionEmbeddings: Int? = nil, betaFast: Double? = nil, betaSlow: Double? = nil,
    attentionFactor: Double? = nil, mscale: Double? = nil, mscaleAllDim: Double? = nil, truncate: Bool? = nil,
    partialRotaryFactor: Double? = nil, unknownKeys: [String] = []
  ) {
    self.ropeType = ropeType
    self.factor = factor
    self.lowFreqFactor = lowFreqFactor
    self.highFreqFactor = highFreqFactor
    self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    self.betaFast = betaFast
    self.betaSlow = betaSlow
    self.attentionFactor = attentionFactor
    self.mscale = mscale
    self.mscaleAllDim = mscaleAllDim
    self.truncate = truncate
    self.partialRotaryFactor = partialRotaryFactor
    self.unknownKeys = unknownKeys
  }

  enum CodingKeys: String, CodingKey, CaseIterable {
    case ropeType = "rope_type"
    case type, factor
    case lowFreqFactor = "low_freq_factor"
    case highFreqFactor = "high_freq_factor"
    case originalMaxPositionEmbeddings = "original_max_position_embeddings"
    case betaFast = "beta_fast"
    case betaSlow = "beta_slow"
    case attentionFactor = "attention_factor"
    case mscale
    case mscaleAllDim = "mscale_all_dim"
    case truncate
    case partialRotaryFactor = "partial_rotary_factor"
    case ropeTheta = "rope_theta"
  }

  /// Any key of the object, to list the ones no field reads.
  private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    ropeType =
      try c.decodeIfPresent(String.self, forKey: .ropeType) ?? c.decodeIfPresent(String.self, forKey: .type)
      ?? "default"
    factor = try c.decodeIfPresent(Double.self, forKey: .factor)
    lowFreqFactor = try c.decodeIfPresent(Double.self, forKey: .lowFreqFactor)
    highFreqFactor = try c.decodeIfPresent(Double.self, forKey: .highFreqFactor)
    originalMaxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings)
    betaFast = try c.decodeIfPresent(Double.self, forKey: .betaFast)
    betaSlow = try c.decodeIfPresent(Double.self, forKey: .betaSlow)
    attentionFactor = try c.decodeIfPresent(Double.self, forKey: .attentionFactor)
    mscale = try c.decodeIfPresent(Double.self, forKey: .mscale)
    mscaleAllDim = try c.decodeIfPresent(Double.self, forKey: .mscaleAllDim)
    truncate = try c.decodeIfPresent(Bool.self, forKey: .truncate)
    partialRotaryFactor = try c.decodeIfPresent(Double.self, forKey: .partialRotaryFactor)
    let known = Set(CodingKeys.allCases.map(\.rawValue))
    unknownKeys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).filter { !known.contains($0) }
      .sorted()
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(ropeType, forKey: .ropeType)
    try c.encodeIfPresent(factor, forKey: .factor)
    try c.encodeIfPresent(lowFreqFactor, forKey: .lowFreqFactor)
    try c.encodeIfPresent(highFreqFactor, forKey: .highFreqFactor)
    try c.encodeIfPresent(originalMaxPositionEmbeddings, forKey: .originalMaxPositionEmbeddings)
    try c.encodeIfPresent(betaFast, forKey: .betaFast)
    try c.encodeIfPresent(betaSlow, forKey: .betaSlow)
    try c.encodeIfPresent(attentionFactor, forKey: .attentionFactor)
    try c.encodeIfPresent(mscale, forKey: .mscale)
    try c.encodeIfPresent(mscaleAllDim, forKey: .mscaleAllDim)
    try c.encodeIfPresent(truncate, forKey: .truncate)
    try c.encodeIfPresent(partialRotaryFactor, forKey: .partialRotaryFactor)
  }

  /// The typed scaling these keys describe, with the defaults applied. `maxPositionEmbeddings`
  /// stands in for an absent `original_max_position_embeddings` (as transformers fills it in);
  /// `objectKey` ("rope_scaling" or "rope_parameters") and `source` name the keys in messages.
  /// Throws `.unsupported` for a type other than linear, llama3 and yarn, for a key the type does
  /// not read and for a partial rotation; `.missingKey` for a required key; `.invalidValue` for a
  /// value that cannot be right (a factor below 1, low_freq_factor ≥ high_freq_factor, ...).
  public func frequencyScaling(
    maxPositionEmbeddings: Int, modelType: String = "llama", source: String = "config.json"
  ) throws(ModelConfigError) -> RopeFrequencyScaling {
    func key(_ k: CodingKeys) -> String { objectKey + "." + k.rawValue }
    func missing(_ k: CodingKeys) -> ModelConfigError {
      .missingKey(source: source, modelType: modelType + " with rope_type " + ropeType, key: key(k))
    }
    func invalid(_ k: CodingKeys, _ value: Double, _ reason: String) -> ModelConfigError {
      .invalidValue(source: source, key: key(k), reason: "is \(value); \(reason)")
    }
    let supported = "PruneKit runs rope_type " + Self.supportedTypes.joined(separator: ", ") + " and the default."
    guard Self.supportedTypes.contains(ropeType) else {
      throw .unsupported(source: source, key: key(.ropeType), value: ropeType, hint: supported)
    }
    // The keys each type reads (besides rope_type/type, rope_theta and partial_rotary_factor).
    let reads: [CodingKeys]
    switch ropeType {
    case "linear": reads = [.factor]
    case "llama3": reads = [.factor, .lowFreqFactor, .highFreqFactor, .originalMaxPositionEmbeddings]
    default:
      reads = [
        .factor, .originalMaxPositionEmbeddings, .betaFast, .betaSlow, .attentionFactor, .mscale, .mscaleAllDim,
        .truncate,
      ]
    }
    let present: [CodingKeys: Bool] = [
      .factor: factor != nil, .lowFreqFactor: lowFreqFactor != nil, .highFreqFactor: highFreqFactor != nil,
      .originalMaxPositionEmbeddings: originalMaxPositionEmbeddings != nil, .betaFast: betaFast != nil,
      .betaSlow: betaSlow != nil, .attentionFactor: attentionFactor != nil, .mscale: mscale != nil,
      .mscaleAllDim: mscaleAllDim != nil, .truncate: truncate != nil,
    ]
    let stray =
      present.filter { $0.value && !reads.contains($0.key) }.map { key($0.key) }
      + unknownKeys.map {
        objectKey + "." + $0
      }
    if let first = stray.sorted().first {
      throw .unsupported(
        source: source, key: first, value: "present",
        hint: "rope_type \(ropeType) reads " + reads.map(\.rawValue).joined(separator: ", ")
          + "; PruneKit refuses a key it would ignore.")
    }
    if let partial = partialRotaryFactor, partial != 1 {
      throw .unsupported(
        source: source, key: key(.partialRotaryFactor), value: "\(partial)",
        hint: "PruneKit rotates the whole head (partial_rotary_factor 1).")
    }
    guard let factor else { throw missing(.factor) }
    guard factor >= 1, factor.isFinite else { throw invalid(.factor, factor, "the context factor must be ≥ 1") }
    let original = originalMaxPositionEmbeddings ?? maxPositionEmbeddings
    guard original > 0 else {
      throw invalid(.originalMaxPositionEmbeddings, Double(original), "it must be positive")
    }
    switch ropeType {
    case "linear":
      return .linear(factor: factor)
    case "llama3":
      guard let low = lowFreqFactor else { throw missing(.lowFreqFactor) }
      guard let high = highFreqFactor else { throw missing(.highFreqFactor) }
      guard low > 0, low.isFinite else { throw invalid(.lowFreqFactor, low, "it must be positive") }
      guard high > low, high.isFinite else {
        throw invalid(.highFreqFactor, high, "it must be finite and above low_freq_factor = \(low)")
      }
      return .llama3(
        .init(factor: factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: original))
    default:
      let yarn = RopeFrequencyScaling.Yarn(
        factor: factor, originalMaxPositions: original, betaFast: betaFast, betaSlow: betaSlow,
        attentionFactor: attentionFactor, mscale: mscale, mscaleAllDim: mscaleAllDim, truncate: truncate)
      for (k, value) in [(CodingKeys.betaFast, yarn.betaFast), (.betaSlow, yarn.betaSlow)]
      where !(value > 0 && value.isFinite) {
        throw invalid(k, value, "it must be positive")
      }
      guard yarn.attentionFactor > 0, yarn.attentionFactor.isFinite else {
        throw invalid(.attentionFactor, yarn.attentionFactor, "the factor on cos and sin must be positive")
      }
      return .yarn(yarn)
    }
  }
}

/// How a RoPE scaling changes the rotation frequencies ωᵢ = θ^(−2i/d) of plain RoPE (i < d/2),
/// typed, with every default applied. The forward pass (PruneModels, RotaryTable) computes the
/// tables from it; the math of each case is written there.
public enum RopeFrequencyScaling: Sendable, Equatable {
  /// Position interpolation: every frequency divided by `factor` (positions p/factor).
  case linear(factor: Double)
  /// Llama 3.1: low frequencies divided by `factor`, high ones kept, a smooth blend between.
  case llama3(Llama3)
  /// YaRN: a ramp between interpolated and original frequencies by dimension, and cos/sin scaled
  /// by `attentionFactor`.
  case yarn(Yarn)

  /// The llama3 parameters.
  public struct Llama3: Sendable, Equatable {
    /// `factor`: the low-frequency divisor.
    public var factor: Double
    /// `low_freq_factor`: wavelengths above original/low are fully divided.
    public var lowFreqFactor: Double
    /// `high_freq_factor`: wavelengths below original/high are kept.
    public var highFreqFactor: Double
    /// `original_max_position_embeddings`.
    public var originalMaxPositions: Int

    public init(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int) {
      self.factor = factor
      self.lowFreqFactor = lowFreqFactor
      self.highFreqFactor = highFreqFactor
      self.originalMaxPositions = originalMaxPositions
    }
  }

  /// The YaRN parameters.
  public struct Yarn: Sendable, Equatable {
    /// β_fast when the file gives none (or null): the YaRN paper's 32 rotations.
    public static let defaultBetaFast = 32.0
    /// β_slow when the file gives none (or null): the paper's 1 rotation.
    public static let defaultBetaSlow = 1.0
    /// Whether the ramp's ends are rounded to whole dimensions when the file does not say.
    public static let defaultTruncate = true

    /// `factor`: the interpolation factor s.
    public var factor: Double
    /// `original_max_position_embeddings`: L, the pre-training context.
    public var originalMaxPositions: Int
    /// β_fast: dimensions rotating more than β_fast times over L keep their frequency.
    public var betaFast: Double
    /// β_slow: dimensions rotating fewer than β_slow times over L are fully interpolated.
    public var betaSlow: Double
    /// The factor on cos and sin (the paper's √(1/t)): the file's `attention_factor`, else
    /// mscale(s, mscale)/mscale(s, mscale_all_dim) when both are given and non-zero, else
    /// mscale(s) = 0.1·ln(s) + 1 (1 for s ≤ 1).
    public var attentionFactor: Double
    /// Whether the ramp's ends are rounded (low down, high up).
    public var truncate: Bool

    /// The parameters, with the defaults applied to the keys given as nil.
    public init(
      factor: Double, originalMaxPositions: Int, betaFast: Double? = nil, betaSlow: Double? = nil,
      attentionFactor: Double? = nil, mscale: Double? = nil, mscaleAllDim: Double? = nil, truncate: Bool? = nil
    ) {
      self.factor = factor
      self.originalMaxPositions = originalMaxPositions
      // A 0 counts as absent, as transformers' `or` does.
      self.betaFast = betaFast.flatMap { $0 == 0 ? nil : $0 } ?? Self.defaultBetaFast
      self.betaSlow = betaSlow.flatMap { $0 == 0 ? nil : $0 } ?? Self.defaultBetaSlow
      if let attentionFactor {
        self.attentionFactor = attentionFactor
      } else if let mscale, let mscaleAllDim, mscale != 0, mscaleAllDim != 0 {
        self.attentionFactor = Self.mscale(factor, mscale) / Self.mscale(factor, mscaleAllDim)
      } else {
        self.attentionFactor = Self.mscale(factor, 1)
      }
      self.truncate = truncate ?? Self.defaultTruncate
    }

    /// YaRN's attention temperature correction: 0.1·m·ln(s) + 1 for s > 1, else 1.
    public static func mscale(_ s: Double, _ m: Double) -> Double { s <= 1 ? 1 : 0.1 * m * Foundation.log(s) + 1 }
  }
}

/// The hyper-parameters of a LLaMA-family decoder (Hugging Face model_type llama, mistral, qwen2):
/// RMSNorm, rotate-half RoPE, grouped key/value heads, SwiGLU feed-forward.
public struct LlamaConfig: Sendable, Equatable, Codable {
  /// `model_type`: "llama", "mistral" or "qwen2".
  public var modelType: String
  /// `hidden_size` (required): the model width.
  public var hiddenSize: Int
  /// `intermediate_size` (required): the SwiGLU width.
  public var intermediateSize: Int
  /// `num_hidden_layers` (required).
  public var numHiddenLayers: Int
  /// `num_attention_heads` (required): query heads.
  public var numAttentionHeads: Int
  /// `num_key_value_heads`: key/value heads; default `num_attention_heads`.
  public var numKeyValueHeads: Int
  /// `head_dim`: default `hidden_size / num_attention_heads`.
  public var headDim: Int
  /// `rms_norm_eps`: default 1e-6.
  public var rmsNormEps: Double
  /// `rope_theta` (transformers ≥ 5: `rope_parameters.rope_theta`): default 10000.
  public var ropeTheta: Double
  /// `rope_parameters` (or, when it is absent, `rope_scaling`) when its type is not "default"; nil
  /// for plain RoPE.
  public var ropeScaling: RopeScaling?
  /// `max_position_embeddings`: default 2048.
  public var maxPositionEmbeddings: Int
  /// `vocab_size` (required).
  public var vocabSize: Int
  /// `tie_word_embeddings`: the head reuses the embedding; nil when absent (transformers then
  /// unties; PruneKit lets the checkpoint decide: tied unless it holds lm_head.weight).
  public var tieWordEmbeddings: Bool?
  /// `attention_bias`: biases on the attention projections; default false (qwen2: true, and it
  /// then means q, k and v only — see `queryKeyValueBias` and `outputProjectionBias`).
  public var attentionBias: Bool
  /// `mlp_bias`: biases on gate, up and down; default false.
  public var mlpBias: Bool
  /// `hidden_act`: default "silu".
  public var hiddenAct: String
  /// `bos_token_id`, when given.
  public var bosTokenId: Int?
  /// `eos_token_id` (an integer or a list in config.json), when given.
  public var eosTokenId: [Int]?
  /// `sliding_window` (mistral, qwen2): the attention window W; absent, transformers' default
  /// `defaultSlidingWindow` for mistral and qwen2 (nil for llama, which has no window); null: none.
  public var slidingWindow: Int?
  /// `use_sliding_window` (qwen2): whether `sliding_window` applies; default true for mistral
  /// (which has no such key) and false otherwise.
  public var useSlidingWindow: Bool
  /// `max_window_layers` (qwen2): blocks from this index on use the window (when `layer_types`
  /// is absent); default `defaultMaxWindowLayers`.
  public var maxWindowLayers: Int
  /// `layer_types` (qwen2): "full_attention" or "sliding_attention" per block, when given.
  public var layerTypes: [String]?

  /// transformers' `sliding_window` of mistral and qwen2 when config.json has no such key.
  public static let defaultSlidingWindow = 4096
  /// transformers' `max_window_layers` of qwen2 when config.json has no such key.
  public static let defaultMaxWindowLayers = 28

  /// The sliding window the attention runs, as transformers applies these keys: mistral windows
  /// every block when `sliding_window` is set; qwen2 windows the blocks `layer_types` marks
  /// "sliding_attention" (absent: blocks `max_window_layers`…) when `use_sliding_window` is true
  /// and `sliding_window` is set; llama never windows. nil: full causal attention everywhere.
  /// The windowed blocks must be one contiguous run (every released config's are); other
  /// patterns give `windowedLayers` nil with `size` set, which the forward pass refuses.
  public var activeSlidingWindow: (size: Int, windowedLayers: Range<Int>?)? {
    guard let size = slidingWindow, useSlidingWindow else { return nil }
    switch modelType {
    case "mistral": return (size, 0..<numHiddenLayers)
    case "qwen2":
      let sliding =
        layerTypes.map { types in types.indices.filter { types[$0] == "sliding_attention" } }
        ?? Array(max(0, min(maxWindowLayers, numHiddenLayers))..<max(numHiddenLayers, 0))
      guard let first = sliding.first, let last = sliding.last else { return nil }
      return (size, sliding.count == last - first + 1 ? first..<(last + 1) : nil)
    default: return nil
    }
  }

  /// True when q, k and v carry biases.
  public var queryKeyValueBias: Bool { attentionBias }
  /// True when the output projection carries a bias (never for qwen2).
  public var outputProjectionBias: Bool { attentionBias && modelType != "qwen2" }

  public init(
    modelType: String = "llama", hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
    numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil, rmsNormEps: Double = 1e-6,
    ropeTheta: Double = 10_000, ropeScaling: RopeScaling? = nil, maxPositionEmbeddings: Int = 2048,
    vocabSize: Int, tieWordEmbeddings: Bool? = nil, attentionBias: Bool = false, mlpBias: Bool = false,
    hiddenAct: String = "silu", bosTokenId: Int? = nil, eosTokenId: [Int]? = nil, slidingWindow: Int? = nil,
    useSlidingWindow: Bool? = nil, maxWindowLayers: Int = LlamaConfig.defaultMaxWindowLayers,
    layerTypes: [String]? = nil
  ) {
    self.modelType = modelType
    self.hiddenSize = hiddenSize
    self.intermediateSize = intermediateSize
    self.numHiddenLayers = numHiddenLayers
    self.numAttentionHeads = numAttentionHeads
    self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
    self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
    self.rmsNormEps = rmsNormEps
    self.ropeTheta = ropeTheta
    self.ropeScaling = ropeScaling
    self.maxPositionEmbeddings = maxPositionEmbeddings
    self.vocabSize = vocabSize
    self.tieWordEmbeddings = tieWordEmbeddings
    self.attentionBias = attentionBias
    self.mlpBias = mlpBias
    self.hiddenAct = hiddenAct
    self.bosTokenId = bosTokenId
    self.eosTokenId = eosTokenId
    self.slidingWindow = slidingWindow
    self.useSlidingWindow = useSlidingWindow ?? (modelType == "mistral")
    self.maxWindowLayers = maxWindowLayers
    self.layerTypes = layerTypes
  }

  enum CodingKeys: String, CodingKey {
    case modelType = "model_type"
    case hiddenSize = "hidden_size"
    case intermediateSize = "intermediate_size"
    case numHiddenLayers = "num_hidden_layers"
    case numAttentionHeads = "num_attention_heads"
    case numKeyValueHeads = "num_key_value_heads"
    case headDim = "head_dim"
    case rmsNormEps = "rms_norm_eps"
    case ropeTheta = "rope_theta"
    case ropeScaling = "rope_scaling"
    case ropeParameters = "rope_parameters"
    case maxPositionEmbeddings = "max_position_embeddings"
    case vocabSize = "vocab_size"
    case tieWordEmbeddings = "tie_word_embeddings"
    case attentionBias = "attention_bias"
    case mlpBias = "mlp_bias"
    case hiddenAct = "hidden_act"
    case bosTokenId = "bos_token_id"
    case eosTokenId = "eos_token_id"
    case slidingWindow = "sliding_window"
    case useSlidingWindow = "use_sliding_window"
    case maxWindowLayers = "max_window_layers"
    case layerTypes = "layer_types"
  }

  private struct RopeParameters: Decodable {
    var ropeTheta: Double?
    enum CodingKeys: String, CodingKey { case ropeTheta = "rope_theta" }
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    modelType = try c.value(.modelType, default: "llama")
    hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
    intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
    numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
    numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
    numKeyValueHeads = try c.value(.numKeyValueHeads, default: numAttentionHeads)
    headDim = try c.value(.headDim, default: numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
    rmsNormEps = try c.value(.rmsNormEps, default: 1e-6)
    // transformers 5 moved rope_theta (and the scaling) into rope_parameters; older files have
    // rope_theta and rope_scaling at the top level. The first of the two objects present is read.
    let ropeKey: CodingKeys =
      try c.contains(.ropeParameters) && !c.decodeNil(forKey: .ropeParameters) ? .ropeParameters : .ropeScaling
    let parameters = try c.decodeIfPresent(RopeParameters.self, forKey: ropeKey)
    ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? parameters?.ropeTheta ?? 10_000
    var scaling = try c.decodeIfPresent(RopeScaling.self, forKey: ropeKey)
    scaling?.objectKey = ropeKey.rawValue
    ropeScaling = scaling?.ropeType == "default" ? nil : scaling
    maxPositionEmbeddings = try c.value(.maxPositionEmbeddings, default: 2048)
    vocabSize = try c.decode(Int.self, forKey: .vocabSize)
    tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings)
    attentionBias = try c.value(.attentionBias, default: modelType == "qwen2")
    mlpBias = try c.value(.mlpBias, default: false)
    hiddenAct = try c.value(.hiddenAct, default: "silu")
    bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
    eosTokenId = try c.intList(.eosTokenId)
    let windowed = modelType == "mistral" || modelType == "qwen2"
    slidingWindow = try c.optionalInt(.slidingWindow, absent: windowed ? Self.defaultSlidingWindow : nil)
    useSlidingWindow = try c.value(.useSlidingWindow, default: modelType == "mistral")
    maxWindowLayers = try c.value(.maxWindowLayers, default: Self.defaultMaxWindowLayers)
    layerTypes = try c.decodeIfPresent([String].self, forKey: .layerTypes)
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(modelType, forKey: .modelType)
    try c.encode(hiddenSize, forKey: .hiddenSize)
    try c.encode(intermediateSize, forKey: .intermediateSize)
    try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
    try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
    try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
    try c.encode(headDim, forKey: .headDim)
    try c.encode(rmsNormEps, forKey: .rmsNormEps)
    try c.encode(ropeTheta, forKey: .ropeTheta)
    try c.encodeIfPresent(ropeScaling, forKey: .ropeScaling)
    try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
    try c.encode(vocabSize, forKey: .vocabSize)
    try c.encodeIfPresent(tieWordEmbeddings, forKey: .tieWordEmbeddings)
    try c.encode(attentionBias, forKey: .attentionBias)
    try c.encode(mlpBias, forKey: .mlpBias)
    try c.encode(hiddenAct, forKey: .hiddenAct)
    try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
    if let eos = eosTokenId {
      if eos.count == 1 { try c.encode(eos[0], forKey: .eosTokenId) } else { try c.encode(eos, forKey: .eosTokenId) }
    }
    if let slidingWindow {
      try c.encode(slidingWindow, forKey: .slidingWindow)
    } else if modelType == "mistral" || modelType == "qwen2" {
      try c.encodeNil(forKey: .slidingWindow)  // absent would read back as the default window
    }
    if useSlidingWindow != (modelType == "mistral") { try c.encode(useSlidingWindow, forKey: .useSlidingWindow) }
    if maxWindowLayers != Self.defaultMaxWindowLayers { try c.encode(maxWindowLayers, forKey: .maxWindowLayers) }
    try c.encodeIfPresent(layerTypes, forKey: .layerTypes)
  }

  /// Throws `invalidValue` for sizes that cannot describe a model.
  public func validate(source: String) throws(ModelConfigError) {
    try requirePositive(
      [
        "hidden_size": hiddenSize, "intermediate_size": intermediateSize, "num_hidden_layers": numHiddenLayers,
        "num_attention_heads": numAttentionHeads, "num_key_value_heads": numKeyValueHeads, "head_dim": headDim,
        "vocab_size": vocabSize, "max_position_embeddings": maxPositionEmbeddings,
      ], source: source)
    try requireDivides(
      ("num_key_value_heads", numKeyValueHeads), ("num_attention_heads", numAttentionHeads), source: source)
    guard headDim % 2 == 0 else {
      throw .invalidValue(source: source, key: "head_dim", reason: "is \(headDim); RoPE needs an even head size")
    }
    try requirePositive(rmsNormEps, "rms_norm_eps", source: source)
    try requirePositive(ropeTheta, "rope_theta", source: source)
    if let ropeScaling, RopeScaling.supportedTypes.contains(ropeScaling.ropeType) {
      _ = try ropeScaling.frequencyScaling(
        maxPositionEmbeddings: maxPositionEmbeddings, modelType: modelType, source: source)
    }
    if let window = activeSlidingWindow, window.size <= 0 {
      throw .invalidValue(source: source, key: "sliding_window", reason: "is \(window.size); it must be positive")
    }
  }
}

// MARK: - OPT

/// The hyper-parameters of an OPT decoder (Hugging Face model_type opt): learned positions offset
/// by 2, LayerNorm, ReLU feed-forward, biases everywhere.
public struct OPTConfig: Sendable, Equatable, Codable {
  /// `hidden_size` (required).
  public var hiddenSize: Int
  /// `ffn_dim` (required): the feed-forward width.
  public var ffnDim: Int
  /// `num_hidden_layers` (required).
  public var numHiddenLayers: Int
  /// `num_attention_heads` (required).
  public var numAttentionHeads: Int
  /// `max_position_embeddings`: default 2048 (the position table has 2 more rows).
  public var maxPositionEmbeddings: Int
  /// `vocab_size` (required).
  public var vocabSize: Int
  /// `word_embed_proj_dim`: the embedding width; default `hidden_size` (OPT-350m projects).
  public var wordEmbedProjDim: Int
  /// `do_layer_norm_before`: pre-LayerNorm; default true (false only for OPT-350m).
  public var doLayerNormBefore: Bool
  /// `_remove_final_layer_norm`: default false.
  public var removeFinalLayerNorm: Bool
  /// `activation_function`: default "relu".
  public var activationFunction: String
  /// `enable_bias`: default true.
  public var enableBias: Bool
  /// `layer_norm_elementwise_affine`: default true.
  public var layerNormElementwiseAffine: Bool
  /// `tie_word_embeddings`: nil when absent (transformers then ties; PruneKit lets the checkpoint
  /// decide: tied unless it holds lm_head.weight).
  public var tieWordEmbeddings: Bool?
  /// `bos_token_id`: default 2.
  public var bosTokenId: Int?
  /// `eos_token_id`: default 2.
  public var eosTokenId: Int?
  /// `pad_token_id`: default 1.
  public var padTokenId: Int?

  enum CodingKeys: String, CodingKey {
    case hiddenSize = "hidden_size"
    case ffnDim = "ffn_dim"
    case numHiddenLayers = "num_hidden_layers"
    case numAttentionHeads = "num_attention_heads"
    case maxPositionEmbeddings = "max_position_embeddings"
    case vocabSize = "vocab_size"
    case wordEmbedProjDim = "word_embed_proj_dim"
    case doLayerNormBefore = "do_layer_norm_before"
    case removeFinalLayerNorm = "_remove_final_layer_norm"
    case activationFunction = "activation_function"
    case enableBias = "enable_bias"
    case layerNormElementwiseAffine = "layer_norm_elementwise_affine"
    case tieWordEmbeddings = "tie_word_embeddings"
    case bosTokenId = "bos_token_id"
    case eosTokenId = "eos_token_id"
    case padTokenId = "pad_token_id"
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
    ffnDim = try c.decode(Int.self, forKey: .ffnDim)
    numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
    numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
    maxPositionEmbeddings = try c.value(.maxPositionEmbeddings, default: 2048)
    vocabSize = try c.decode(Int.self, forKey: .vocabSize)
    wordEmbedProjDim = try c.value(.wordEmbedProjDim, default: hiddenSize)
    doLayerNormBefore = try c.value(.doLayerNormBefore, default: true)
    removeFinalLayerNorm = try c.value(.removeFinalLayerNorm, default: false)
    activationFunction = try c.value(.activationFunction, default: "relu")
    enableBias = try c.value(.enableBias, default: true)
    layerNormElementwiseAffine = try c.value(.layerNormElementwiseAffine, default: true)
    tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings)
    bosTokenId = try c.optionalInt(.bosTokenId, absent: 2)
    eosTokenId = try c.optionalInt(.eosTokenId, absent: 2)
    padTokenId = try c.optionalInt(.padTokenId, absent: 1)
  }

  /// Throws `invalidValue` for sizes that cannot describe a model.
  public func validate(source: String) throws(ModelConfigError) {
    try requirePositive(
      [
        "hidden_size": hiddenSize, "ffn_dim": ffnDim, "num_hidden_layers": numHiddenLayers,
        "num_attention_heads": numAttentionHeads, "vocab_size": vocabSize,
        "max_position_embeddings": maxPositionEmbeddings, "word_embed_proj_dim": wordEmbedProjDim,
      ], source: source)
    try requireDivides(("num_attention_heads", numAttentionHeads), ("hidden_size", hiddenSize), source: source)
  }
}

// MARK: - GPT-2

/// The hyper-parameters of a GPT-2 decoder (Hugging Face model_type gpt2): learned positions,
/// LayerNorm, Conv1D weights stored [in, out], fused q/k/v, GELU (tanh) feed-forward.
public struct GPT2Config: Sendable, Equatable, Codable {
  /// `n_embd` (required): the model width.
  public var nEmbd: Int
  /// `n_layer` (required).
  public var nLayer: Int
  /// `n_head` (required).
  public var nHead: Int
  /// `n_inner`: the feed-forward width; null or absent means 4 × `n_embd`.
  public var nInner: Int
  /// `n_positions`: default 1024.
  public var nPositions: Int
  /// `vocab_size` (required).
  public var vocabSize: Int
  /// `activation_function`: default "gelu_new" (GELU, tanh approximation).
  public var activationFunction: String
  /// `layer_norm_epsilon`: default 1e-5.
  public var layerNormEpsilon: Double
  /// `scale_attn_weights`: divide scores by √head_dim; default true.
  public var scaleAttnWeights: Bool
  /// `scale_attn_by_inverse_layer_idx`: default false.
  public var scaleAttnByInverseLayerIdx: Bool
  /// `reorder_and_upcast_attn`: default false (numerically irrelevant in float32).
  public var reorderAndUpcastAttn: Bool
  /// `tie_word_embeddings`: nil when absent (transformers then ties; PruneKit lets the checkpoint
  /// decide: tied unless it holds lm_head.weight).
  public var tieWordEmbeddings: Bool?
  /// `bos_token_id`: default 50256.
  public var bosTokenId: Int?
  /// `eos_token_id`: default 50256.
  public var eosTokenId: Int?

  enum CodingKeys: String, CodingKey {
    case nEmbd = "n_embd"
    case nLayer = "n_layer"
    case nHead = "n_head"
    case nInner = "n_inner"
    case nPositions = "n_positions"
    case vocabSize = "vocab_size"
    case activationFunction = "activation_function"
    case layerNormEpsilon = "layer_norm_epsilon"
    case scaleAttnWeights = "scale_attn_weights"
    case scaleAttnByInverseLayerIdx = "scale_attn_by_inverse_layer_idx"
    case reorderAndUpcastAttn = "reorder_and_upcast_attn"
    case tieWordEmbeddings = "tie_word_embeddings"
    case bosTokenId = "bos_token_id"
    case eosTokenId = "eos_token_id"
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    nEmbd = try c.decode(Int.self, forKey: .nEmbd)
    nLayer = try c.decode(Int.self, forKey: .nLayer)
    nHead = try c.decode(Int.self, forKey: .nHead)
    if let inner = try c.decodeIfPresent(Int.self, forKey: .nInner) {
      nInner = inner
    } else {
      let (fourTimes, overflow) = nEmbd.multipliedReportingOverflow(by: 4)
      guard !overflow else {
        throw DecodingError.dataCorruptedError(
          forKey: .nEmbd, in: c, debugDescription: "\(nEmbd) is too large (4 × n_embd, the default n_inner, overflows)")
      }
      nInner = fourTimes
    }
    nPositions = try c.value(.nPositions, default: 1024)
    vocabSize = try c.decode(Int.self, forKey: .vocabSize)
    activationFunction = try c.value(.activationFunction, default: "gelu_new")
    layerNormEpsilon = try c.value(.layerNormEpsilon, default: 1e-5)
    scaleAttnWeights = try c.value(.scaleAttnWeights, default: true)
    scaleAttnByInverseLayerIdx = try c.value(.scaleAttnByInverseLayerIdx, default: false)
    reorderAndUpcastAttn = try c.value(.reorderAndUpcastAttn, default: false)
    tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings)
    bosTokenId = try c.optionalInt(.bosTokenId, absent: 50256)
    eosTokenId = try c.optionalInt(.eosTokenId, absent: 50256)
  }

  /// Throws `invalidValue` for sizes that cannot describe a model.
  public func validate(source: String) throws(ModelConfigError) {
    try requirePositive(
      [
        "n_embd": nEmbd, "n_layer": nLayer, "n_head": nHead, "n_inner": nInner, "n_positions": nPositions,
        "vocab_size": vocabSize,
      ], source: source)
    try requireDivides(("n_head", nHead), ("n_embd", nEmbd), source: source)
    try requirePositive(layerNormEpsilon, "layer_norm_epsilon", source: source)
  }
}
