// Byte-level BPE, as GPT-2 introduced it and Hugging Face `tokenizers` runs it (SmolLM2, GPT-2,
// OPT, Qwen2 ...). Encoding a text:
//
//   1. Added (special) tokens are cut out first, leftmost-longest, and map to their ids directly.
//   2. Optionally (SmolLM) every numeric character becomes a piece of its own (`Digits` with
//      `individual_digits`).
//   3. Each remaining piece is split by the GPT-2 pattern
//          's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      written here as a scanner over Unicode scalars (\p{L}: letters, \p{N}: numbers, \s: the
//      Unicode White_Space property; the first alternative that matches at a position wins).
//   4. Each pre-token's UTF-8 bytes become symbols through GPT-2's byte → character table, and the
//      adjacent pair with the lowest merge rank is merged (the leftmost on ties) until no pair
//      has a rank.
//
// Decoding maps token strings back through the inverse byte table and reads the bytes as UTF-8.

import Foundation

/// Why a tokenizer could not be loaded or ids decoded. Every description is one line naming the
/// source and ending with a `Hint:`.
public enum TokenizerError: PruneKitError, Equatable {
  /// The file could not be read.
  case unreadable(path: String, reason: String)
  /// tokenizer.json is not JSON of the expected form.
  case invalidJSON(source: String, reason: String)
  /// A model, pre-tokenizer or normalizer other than byte-level BPE.
  case unsupported(source: String, what: String)
  /// A merge that is not two vocabulary tokens whose concatenation is a token.
  case invalidMerge(source: String, index: Int, merge: String, reason: String)
  /// A token id (special, BOS, EOS, in a vocabulary) out of range or repeated.
  case invalidTokenId(source: String, id: Int, reason: String)
  /// `decode` was given an id outside the vocabulary.
  case unknownId(id: Int, vocabularySize: Int)

  public var message: String {
    switch self {
    case .unreadable(let path, let reason): return "tokenizer \(path): cannot read the file (\(reason))"
    case .invalidJSON(let source, let reason): return "tokenizer \(source): not a tokenizer.json (\(reason))"
    case .unsupported(let source, let what): return "tokenizer \(source): \(what) is not supported"
    case .invalidMerge(let source, let index, let merge, let reason):
      return "tokenizer \(source): merge #\(index) '\(merge)' \(reason)"
    case .invalidTokenId(let source, let id, let reason): return "tokenizer \(source): token id \(id) \(reason)"
    case .unknownId(let id, let size): return "tokenizer: id \(id) is outside the vocabulary (0..<\(size))"
    }
  }

  public var hint: String? {
    switch self {
    case .unreadable:
      return "a Hugging Face model folder holds tokenizer.json; a GGUF file holds its tokenizer in its metadata."
    case .invalidJSON: return "the file is damaged or was written by another library."
    case .unsupported: return "PruneKit reads byte-level BPE tokenizers (GPT-2 style: GPT-2, OPT, SmolLM, Qwen2)."
    case .invalidMerge: return "the vocabulary and the merges come from different tokenizers, or the file is damaged."
    case .invalidTokenId: return "the file is damaged or inconsistent."
    case .unknownId: return "the ids come from a different tokenizer or model."
    }
  }
}

/// A byte-level BPE tokenizer (GPT-2 style pre-tokenisation, merges by rank, added tokens matched
/// first), loaded from `tokenizer.json`, from GGUF metadata or from lists.
public struct BPETokenizer: Sendable {
  /// How text is cut into pieces before BPE.
  public struct PreTokenizer: Sendable, Equatable {
    /// Every numeric character becomes a piece of its own before the GPT-2 pattern runs
    /// (`tokenizers`' `Digits(individual_digits: true)`, used by SmolLM).
    public var individualDigits: Bool
    /// A space is put before every piece that does not start with one (`add_prefix_space`).
    public var addPrefixSpace: Bool
    /// The GPT-2 pattern splits the pieces (`use_regex`); when false each piece is one pre-token.
    public var useRegex: Bool

    public init(individualDigits: Bool = false, addPrefixSpace: Bool = false, useRegex: Bool = true) {
      self.individualDigits = individualDigits
      self.addPrefixSpace = addPrefixSpace
      self.useRegex = useRegex
    }

    /// GPT-2's: the pattern only.
    public static let gpt2 = PreTokenizer()
    /// SmolLM's: single digits, then the pattern.
    public static let smollm = PreTokenizer(individualDigits: true)
  }

  /// The token string of each id (byte-level characters: "Ġthe" is " the"); "" for unused ids.
  public let tokens: [String]
  /// The pre-tokenizer.
  public let preTokenizer: PreTokenizer
  /// Ids of the added tokens matched in raw text before BPE (`<|im_start|>` ...), ascending.
  public let specialTokenIds: [Int]
  /// The beginning-of-sequence token, when the source names one.
  public let bosTokenId: Int?
  /// The end-of-sequence token, when the source names one.
  public let eosTokenId: Int?
  /// Whether the model expects a BOS before the text (`encode` never adds one; callers decide).
  public let addBOS: Bool
  /// When true, a pre-token that is itself a vocabulary token is taken whole (`ignore_merges`).
  public let ignoreMerges: Bool

  private let tokenToId: [String: Int32]
  /// (left id << 32 | right id) → (rank, merged id).
  private let merges: [UInt64: Merge]
  /// The id of each byte's single-character token, or -1 when the vocabulary lacks it (the byte
  /// is then dropped, as `tokenizers` does without an unknown token).
  private let byteIds: [Int32]
  /// Special tokens by their first scalar, longest first.
  private let specialsByFirst: [Unicode.Scalar: [(scalars: [Unicode.Scalar], id: Int32)]]
  private let isSpecial: [Bool]

  private struct Merge: Sendable {
    var rank: Int32
    var id: Int32
  }

  /// The number of ids.
  public var vocabularySize: Int { tokens.count }

  /// Builds a tokenizer from its parts. `merges` are "left right" strings in rank order (rank 0
  /// first); `specialTokenIds` are matched in raw text before BPE. `source` names the origin in
  /// errors.
  public init(
    tokens: [String], merges: [String], specialTokenIds: [Int] = [], preTokenizer: PreTokenizer = .gpt2,
    bosTokenId: Int? = nil, eosTokenId: Int? = nil, addBOS: Bool = false, ignoreMerges: Bool = false,
    source: String = "<memory>"
  ) throws {
    var pairs: [(String, String)] = []
    pairs.reserveCapacity(merges.count)
    for (i, m) in merges.enumerated() {
      let parts = m.split(separator: " ", omittingEmptySubsequences: false)
      guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw TokenizerError.invalidMerge(
          source: source, index: i, merge: m, reason: "is not two tokens separated by one space")
      }
      pairs.append((String(parts[0]), String(parts[1])))
    }
    try self.init(
      tokens: tokens, mergePairs: pairs, specialTokenIds: specialTokenIds, preTokenizer: preTokenizer,
      bosTokenId: bosTokenId, eosTokenId: eosTokenId, addBOS: addBOS, ignoreMerges: ignoreMerges, source: source)
  }

  /// Builds a tokenizer from its parts, with the merges as (left, right) pairs in rank order.
  public init(
    tokens: [String], mergePairs: [(String, String)], specialTokenIds: [Int] = [],
    preTokenizer: PreTokenizer = .gpt2, bosTokenId: Int? = nil, eosTokenId: Int? = nil, addBOS: Bool = false,
    ignoreMerges: Bool = false, source: String = "<memory>"
  ) throws {
    guard tokens.count < Int(Int32.max) else {
      throw TokenizerError.invalidTokenId(source: source, id: tokens.count, reason: "is beyond the 32-bit id range")
    }
    self.tokens = tokens
    self.preTokenizer = preTokenizer
    self.addBOS = addBOS
    self.ignoreMerges = ignoreMerges
    var index: [String: Int32] = [:]
    index.reserveCapacity(tokens.count)
    for (i, t) in tokens.enumerated() where !t.isEmpty {
      // The first id wins for a repeated string, as in tokenizers' vocabulary map.
      if index[t] == nil { index[t] = Int32(i) }
    }
    tokenToId = index
    var table: [UInt64: Merge] = [:]
    table.reserveCapacity(mergePairs.count)
    for (rank, (a, b)) in mergePairs.enumerated() {
      guard let ia = index[a], let ib = index[b] else {
        throw TokenizerError.invalidMerge(
          source: source, index: rank, merge: "\(a) \(b)", reason: "names a token that is not in the vocabulary")
      }
      guard let merged = index[a + b] else {
        throw TokenizerError.invalidMerge(
          source: source, index: rank, merge: "\(a) \(b)", reason: "makes '\(a + b)', which is not in the vocabulary")
      }
      let key = UInt64(UInt32(ia)) << 32 | UInt64(UInt32(ib))
      // A repeated pair keeps its first (lowest) rank.
      if table[key] == nil { table[key] = Merge(rank: Int32(rank), id: merged) }
    }
    merges = table
    byteIds = ByteLevel.byteToCharacter.map { index[String($0)] ?? -1 }
    var special = [Bool](repeating: false, count: tokens.count)
    var byFirst: [Unicode.Scalar: [(scalars: [Unicode.Scalar], id: Int32)]] = [:]
    for id in Set(specialTokenIds).sorted() {
      guard id >= 0, id < tokens.count, !tokens[id].isEmpty else {
        throw TokenizerError.invalidTokenId(
          source: source, id: id, reason: "is not a token of the vocabulary (size \(tokens.count))")
      }
      special[id] = true
      let scalars = Array(tokens[id].unicodeScalars)
      byFirst[scalars[0], default: []].append((scalars, Int32(id)))
    }
    for key in byFirst.keys {
      // Longest first; equal lengths by id so the order is deterministic.
      byFirst[key]!.sort { $0.scalars.count != $1.scalars.count ? $0.scalars.count > $1.scalars.count : $0.id < $1.id }
    }
    specialsByFirst = byFirst
    isSpecial = special
    self.specialTokenIds = Set(specialTokenIds).sorted()
    for (name, id) in [("BOS", bosTokenId), ("EOS", eosTokenId)] {
      if let id, !(0..<tokens.count).contains(id) {
        throw TokenizerError.invalidTokenId(
          source: source, id: id, reason: "(\(name)) is outside the vocabulary of \(tokens.count)")
      }
    }
    self.bosTokenId = bosTokenId
    self.eosTokenId = eosTokenId
  }

  /// The id of a token string ("Ġthe"), when it is in the vocabulary.
  public func id(of token: String) -> Int? { tokenToId[token].map(Int.init) }

  // MARK: Encoding

  /// The ids of `text` (no BOS or EOS added).
  public func encode(_ text: String) -> [Int] {
    var ids: [Int] = []
    var cache: [[UInt8]: [Int32]] = [:]
    var bytes: [UInt8] = []
    for piece in pieces(text) {
      switch piece {
      case .special(let id): ids.append(Int(id))
      case .text(let scalars):
        bytes.removeAll(keepingCapacity: true)
        for s in scalars { appendUTF8(s, to: &bytes) }
        if let known = cache[bytes] {
          for id in known { ids.append(Int(id)) }
        } else {
          let word = bpe(bytes)
          cache[bytes] = word
          for id in word { ids.append(Int(id)) }
        }
      }
    }
    return ids
  }

  /// The pre-tokens of `text` as strings (added tokens included as they are), in order: what BPE
  /// runs on. For tests and inspection.
  public func preTokenize(_ text: String) -> [String] {
    pieces(text).map { piece in
      switch piece {
      case .special(let id): return tokens[Int(id)]
      case .text(let scalars):
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s)
      }
    }
  }

  private enum Piece {
    case special(Int32)
    case text(ArraySlice<Unicode.Scalar>)
  }

  /// Steps 1–3: added tokens, digits, the GPT-2 pattern.
  private func pieces(_ text: String) -> [Piece] {
    let scalars = Array(text.unicodeScalars)
    var out: [Piece] = []
    var segmentStart = 0
    var i = 0
    let n = scalars.count
    func flush(_ end: Int) {
      if segmentStart < end { splitSegment(scalars[segmentStart..<end], into: &out) }
    }
    if !specialsByFirst.isEmpty {
      while i < n {
        if let candidates = specialsByFirst[scalars[i]],
          let match = candidates.first(where: { c in
            i + c.scalars.count <= n && scalars[i..<(i + c.scalars.count)].elementsEqual(c.scalars)
          })
        {
          flush(i)
          out.append(.special(match.id))
          i += match.scalars.count
          segmentStart = i
        } else {
          i += 1
        }
      }
    }
    flush(n)
    return out
  }

  /// Splits a run of text without added tokens: digits (optional), then the pattern.
  private func splitSegment(_ segment: ArraySlice<Unicode.Scalar>, into out: inout [Piece]) {
    guard preTokenizer.individualDigits else {
      byteLevelSplit(segment, into: &out)
      return
    }
    var start = segment.startIndex
    for j in segment.indices where ByteLevel.isNumber(segment[j]) {
      if start < j { byteLevelSplit(segment[start..<j], into: &out) }
      byteLevelSplit(segment[j..<(j + 1)], into: &out)
      start = j + 1
    }
    if start < segment.endIndex { byteLevelSplit(segment[start..<segment.endIndex], into: &out) }
  }

  private func byteLevelSplit(_ piece: ArraySlice<Unicode.Scalar>, into out: inout [Piece]) {
    var piece = piece
    if preTokenizer.addPrefixSpace, piece.first != " " {
      piece = ([" "] + piece)[...]
    }
    guard preTokenizer.useRegex else {
      out.append(.text(piece))
      return
    }
    var i = piece.startIndex
    while i < piece.endIndex {
      let end = ByteLevel.gpt2PatternMatch(piece, at: i)
      out.append(.text(piece[i..<end]))
      i = end
    }
  }

  private func appendUTF8(_ s: Unicode.Scalar, to bytes: inout [UInt8]) {
    let v = s.value
    if v < 0x80 {
      bytes.append(UInt8(v))
    } else {
      for b in UTF8.encode(s)! { bytes.append(b) }
    }
  }

  /// Step 4 for one pre-token.
  private func bpe(_ bytes: [UInt8]) -> [Int32] {
    if ignoreMerges {
      let whole = String(String.UnicodeScalarView(bytes.map { ByteLevel.byteToCharacter[Int($0)] }))
      if let id = tokenToId[whole] { return [id] }
    }
    var symbols: [Int32] = []
    symbols.reserveCapacity(bytes.count)
    for b in bytes where byteIds[Int(b)] >= 0 { symbols.append(byteIds[Int(b)]) }
    while symbols.count > 1 {
      var bestRank = Int32.max
      var bestPosition = -1
      var bestId: Int32 = 0
      for j in 0..<(symbols.count - 1) {
        let key = UInt64(UInt32(symbols[j])) << 32 | UInt64(UInt32(symbols[j + 1]))
        if let m = merges[key], m.rank < bestRank {
          bestRank = m.rank
          bestPosition = j
          bestId = m.id
        }
      }
      if bestPosition < 0 { break }
      symbols[bestPosition] = bestId
      symbols.remove(at: bestPosition + 1)
    }
    return symbols
  }

  // MARK: Decoding

  /// The text of `ids`: added tokens as written, other tokens through the inverse byte table;
  /// byte sequences that are not valid UTF-8 become U+FFFD.
  public func decode(_ ids: [Int]) throws -> String {
    var bytes: [UInt8] = []
    for id in ids {
      guard id >= 0, id < tokens.count else { throw TokenizerError.unknownId(id: id, vocabularySize: tokens.count) }
      if isSpecial[id] {
        bytes.append(contentsOf: Array(tokens[id].utf8))
        continue
      }
      for s in tokens[id].unicodeScalars {
        if let b = ByteLevel.characterToByte[s] { bytes.append(b) } else { appendUTF8(s, to: &bytes) }
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

// MARK: - Loading

extension BPETokenizer {
  /// The tokenizer in a GGUF file's metadata (`tokenizer.ggml.model` = "gpt2"): tokens, merges,
  /// token types (3 control and 4 user-defined are added tokens), BOS/EOS ids and `add_bos_token`.
  /// `tokenizer.ggml.pre` = "smollm" selects single-digit splitting.
  public init(gguf: GGUFFile) throws {
    let source = gguf.path
    let model = try gguf.string("tokenizer.ggml.model")
    guard model == "gpt2" else {
      throw TokenizerError.unsupported(source: source, what: "tokenizer.ggml.model '\(model)'")
    }
    let tokens = try gguf.array("tokenizer.ggml.tokens").enumerated().map { i, v -> String in
      guard let s = v.string else {
        throw GGUFError.invalidMetadata(
          path: source, key: "tokenizer.ggml.tokens", reason: "element \(i) is not a string")
      }
      return s
    }
    let merges = try gguf.array("tokenizer.ggml.merges").enumerated().map { i, v -> String in
      guard let s = v.string else {
        throw GGUFError.invalidMetadata(
          path: source, key: "tokenizer.ggml.merges", reason: "element \(i) is not a string")
      }
      return s
    }
    var specials: [Int] = []
    if gguf.metadata["tokenizer.ggml.token_type"] != nil {
      let types = try gguf.array("tokenizer.ggml.token_type")
      guard types.count == tokens.count else {
        throw GGUFError.invalidMetadata(
          path: source, key: "tokenizer.ggml.token_type", reason: "\(types.count) types for \(tokens.count) tokens")
      }
      for (i, t) in types.enumerated() where t.int == 3 || t.int == 4 { specials.append(i) }
    }
    let pre = gguf.metadata["tokenizer.ggml.pre"]?.string ?? "default"
    let preTokenizer: PreTokenizer
    switch pre {
    case "smollm": preTokenizer = .smollm
    case "default", "gpt2", "gpt-2": preTokenizer = .gpt2
    default: throw TokenizerError.unsupported(source: source, what: "tokenizer.ggml.pre '\(pre)'")
    }
    try self.init(
      tokens: tokens, merges: merges, specialTokenIds: specials, preTokenizer: preTokenizer,
      bosTokenId: try gguf.optionalInt("tokenizer.ggml.bos_token_id"),
      eosTokenId: try gguf.optionalInt("tokenizer.ggml.eos_token_id"),
      addBOS: gguf.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? false, source: source)
  }

  /// Reads a Hugging Face `tokenizer.json` (a file, or the model folder holding one).
  public init(contentsOf url: URL) throws {
    let file = try readFileOrFolderEntry(url, entry: "tokenizer.json") {
      TokenizerError.unreadable(path: $0, reason: $1)
    }
    try self.init(tokenizerJSON: file.data, source: file.path)
  }

  /// Parses `tokenizer.json` bytes: a BPE model with a ByteLevel pre-tokenizer (alone or after
  /// Digits in a Sequence), no normalizer or NFC, added tokens matched first.
  public init(tokenizerJSON data: Data, source: String = "tokenizer.json") throws {
    let file: TokenizerJSONFile
    do {
      file = try JSONDecoder().decode(TokenizerJSONFile.self, from: data)
    } catch let e as DecodingError {
      throw TokenizerError.invalidJSON(source: source, reason: summarize(e))
    }
    if let type = file.model.type, type != "BPE" {
      throw TokenizerError.unsupported(source: source, what: "model type '\(type)'")
    }
    if let normalizer = file.normalizer {
      throw TokenizerError.unsupported(source: source, what: "normalizer '\(normalizer.type)'")
    }
    var pre = PreTokenizer(individualDigits: false, addPrefixSpace: false, useRegex: true)
    var sawByteLevel = false
    func visit(_ p: TokenizerJSONFile.PreTokenizerJSON) throws {
      switch p.type {
      case "Sequence": for q in p.pretokenizers ?? [] { try visit(q) }
      case "ByteLevel":
        sawByteLevel = true
        pre.addPrefixSpace = p.addPrefixSpace ?? false
        pre.useRegex = p.useRegex ?? true
      case "Digits":
        guard p.individualDigits == true, !sawByteLevel else {
          throw TokenizerError.unsupported(
            source: source, what: "a Digits pre-tokenizer without individual_digits or after ByteLevel")
        }
        pre.individualDigits = true
      default:
        throw TokenizerError.unsupported(source: source, what: "pre-tokenizer '\(p.type)'")
      }
    }
    if let p = file.preTokenizer { try visit(p) }
    guard sawByteLevel else {
      throw TokenizerError.unsupported(source: source, what: "a pre-tokenizer without ByteLevel")
    }
    // The id table is allocated from the largest id, so that id is checked first: below 2²⁴ (no
    // tokenizer comes near), and below the file's size in bytes (each id of a real vocabulary takes
    // several bytes of JSON; a larger id means an almost empty table) or 65536 for small files.
    // (Starting from −1, so a vocabulary of negative ids gives an empty table, not a negative
    // count; the negative ids are reported below.)
    var largest = -1
    for id in file.model.vocab.values { largest = max(largest, id) }
    for a in file.addedTokens ?? [] { largest = max(largest, a.id) }
    let limit = min(16_777_216, max(65_536, data.count))
    guard largest < limit else {
      throw TokenizerError.invalidTokenId(
        source: source, id: largest,
        reason: "is implausibly large for a file of \(data.count) bytes (ids must be below \(limit))")
    }
    var tokens = [String](repeating: "", count: largest + 1)
    for (t, id) in file.model.vocab {
      guard id >= 0 else { throw TokenizerError.invalidTokenId(source: source, id: id, reason: "is negative") }
      guard tokens[id].isEmpty else {
        throw TokenizerError.invalidTokenId(
          source: source, id: id, reason: "is given to both '\(tokens[id])' and '\(t)'")
      }
      tokens[id] = t
    }
    for a in file.addedTokens ?? [] {
      guard a.id >= 0 else { throw TokenizerError.invalidTokenId(source: source, id: a.id, reason: "is negative") }
      guard tokens[a.id].isEmpty || tokens[a.id] == a.content else {
        throw TokenizerError.invalidTokenId(
          source: source, id: a.id,
          reason: "is '\(tokens[a.id])' in the vocabulary but '\(a.content)' as an added token")
      }
      tokens[a.id] = a.content
    }
    try self.init(
      tokens: tokens, mergePairs: file.model.merges.pairs, specialTokenIds: (file.addedTokens ?? []).map(\.id),
      preTokenizer: pre, ignoreMerges: file.model.ignoreMerges ?? false, source: source)
  }
}

/// The parts of tokenizer.json this reader uses.
private struct TokenizerJSONFile: Decodable {
  struct AddedToken: Decodable {
    var id: Int
    var content: String
  }
  struct Normalizer: Decodable { var type: String }
  struct PreTokenizerJSON: Decodable {
    var type: String
    var pretokenizers: [PreTokenizerJSON]?
    var individualDigits: Bool?
    var addPrefixSpace: Bool?
    var useRegex: Bool?
    enum CodingKeys: String, CodingKey {
      case type, pretokenizers
      case individualDigits = "individual_digits"
      case addPrefixSpace = "add_prefix_space"
      case useRegex = "use_regex"
    }
  }
  /// Merges are "a b" strings (tokenizers < 0.20) or ["a", "b"] pairs.
  struct Merges: Decodable {
    var pairs: [(String, String)]
    init(from decoder: Decoder) throws {
      let c = try decoder.singleValueContainer()
      if let strings = try? c.decode([String].self) {
        pairs = try strings.enumerated().map { i, m in
          let parts = m.split(separator: " ", omittingEmptySubsequences: false)
          guard parts.count == 2 else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "merge #\(i) '\(m)' is not two tokens")
          }
          return (String(parts[0]), String(parts[1]))
        }
      } else {
        let lists = try c.decode([[String]].self)
        pairs = try lists.enumerated().map { i, m in
          guard m.count == 2 else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "merge #\(i) has \(m.count) parts")
          }
          return (m[0], m[1])
        }
      }
    }
  }
  struct Model: Decodable {
    var type: String?
    var vocab: [String: Int]
    var merges: Merges
    var ignoreMerges: Bool?
    enum CodingKeys: String, CodingKey {
      case type, vocab, merges
      case ignoreMerges = "ignore_merges"
    }
  }
  var addedTokens: [AddedToken]?
  var normalizer: Normalizer?
  var preTokenizer: PreTokenizerJSON?
  var model: Model
  enum CodingKeys: String, CodingKey {
    case addedTokens = "added_tokens"
    case normalizer
    case preTokenizer = "pre_tokenizer"
    case model
  }
}

// MARK: - Byte-level tables and the GPT-2 pattern

/// GPT-2's byte ↔ character tables and its pre-tokenisation pattern.
package enum ByteLevel {
  /// Bytes 33–126, 161–172 and 174–255 map to the same code point; the other 68 bytes map, in
  /// increasing order, to U+0100, U+0101, ... (so a space, byte 32, is "Ġ" U+0120).
  package static let byteToCharacter: [Unicode.Scalar] = {
    var table = [Unicode.Scalar](repeating: " ", count: 256)
    var next: UInt32 = 256
    for b in 0..<256 {
      if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
        table[b] = Unicode.Scalar(UInt32(b))!
      } else {
        table[b] = Unicode.Scalar(next)!
        next += 1
      }
    }
    return table
  }()

  static let characterToByte: [Unicode.Scalar: UInt8] = {
    var map: [Unicode.Scalar: UInt8] = [:]
    for (b, c) in byteToCharacter.enumerated() { map[c] = UInt8(b) }
    return map
  }()

  /// Character classes of the pattern.
  enum Class { case letter, number, space, other }

  private static let asciiClasses: [Class] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

  private static func classify(_ s: Unicode.Scalar) -> Class {
    let p = s.properties
    if p.isWhitespace { return .space }
    switch p.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
    case .decimalNumber, .letterNumber, .otherNumber: return .number
    default: return .other
    }
  }

  @inline(__always)
  static func characterClass(_ s: Unicode.Scalar) -> Class {
    s.value < 128 ? asciiClasses[Int(s.value)] : classify(s)
  }

  static func isNumber(_ s: Unicode.Scalar) -> Bool { characterClass(s) == .number }

  /// The end of the GPT-2 pattern's match at `i` (always > i):
  /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
  static func gpt2PatternMatch(_ s: ArraySlice<Unicode.Scalar>, at i: Int) -> Int {
    let end = s.endIndex
    // 's 't 're 've 'm 'll 'd (lower case only, as in GPT-2's pattern)
    if s[i] == "'", i + 1 < end {
      let a = s[i + 1]
      if a == "s" || a == "t" || a == "m" || a == "d" { return i + 2 }
      if i + 2 < end {
        let b = s[i + 2]
        if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return i + 3 }
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
    let j = s[i] == " " ? i + 1 : i
    if j < end {
      let c = characterClass(s[j])
      if c != .space {
        var k = j + 1
        while k < end && characterClass(s[k]) == c { k += 1 }
        return k
      }
    }
    // `\s+(?!\S)`: a whitespace run, less its last character when a non-space follows (that
    // character then starts the next match, e.g. as the space of " word"); `\s+` otherwise.
    var k = i
    while k < end && characterClass(s[k]) == .space { k += 1 }
    if k == i { return i + 1 }  // unreachable: every class is handled above
    if k == end || k - i == 1 { return k }
    return k - 1
  }
}
