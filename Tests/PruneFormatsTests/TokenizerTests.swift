import Foundation
import PruneFormats
import PruneTestSupport
import Testing

/// GPT-2's bytes_to_unicode, written out again here (independently of the library's table) so the
/// small tokenizer below has the real byte-level alphabet: token id b is the character of byte b.
private let byteAlphabet: [String] = {
  var kept = Array(33...126) + Array(161...172) + Array(174...255)
  var chars = kept.map { UInt32($0) }
  var n: UInt32 = 0
  for b in 0..<256 where !kept.contains(b) {
    kept.append(b)
    chars.append(256 + n)
    n += 1
  }
  var table = [String](repeating: "", count: 256)
  for (b, c) in zip(kept, chars) { table[b] = String(Character(Unicode.Scalar(c)!)) }
  return table
}()

/// A small byte-level BPE: the 256 byte tokens, then merged tokens in merge order, one added token.
private enum Small {
  static let merges = ["Ġ t", "h e", "Ġt he", "l o", "lo w", "e r", "t h"]
  // 256 Ġt, 257 he, 258 Ġthe, 259 lo, 260 low, 261 er, 262 <|end|>, 263 th
  static let tokens = byteAlphabet + ["Ġt", "he", "Ġthe", "lo", "low", "er", "<|end|>", "th"]
  static let end = 262

  static func tokenizer(_ pre: BPETokenizer.PreTokenizer = .gpt2) throws -> BPETokenizer {
    try BPETokenizer(tokens: tokens, merges: merges, specialTokenIds: [end], preTokenizer: pre, eosTokenId: end)
  }

  /// The same tokenizer as tokenizer.json; `mergesAsPairs` picks the newer merge format.
  static func json(mergesAsPairs: Bool, preTokenizer: String? = nil, normalizer: String = "null") -> Data {
    func quote(_ s: String) -> String {
      String(data: try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed]), encoding: .utf8)!
        .dropFirst().dropLast().description
    }
    let vocab = tokens.enumerated().filter { $0.offset != end }.map { "\(quote($0.element)): \($0.offset)" }
      .joined(separator: ", ")
    let mergeList = merges.map { m -> String in
      if !mergesAsPairs { return quote(m) }
      let p = m.split(separator: " ").map(String.init)
      return "[\(quote(p[0])), \(quote(p[1]))]"
    }.joined(separator: ", ")
    let pre =
      preTokenizer ?? """
        {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true},
         {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}
        """
    return Data(
      """
      {"version": "1.0", "added_tokens": [{"id": 262, "content": "<|end|>", "special": true}],
       "normalizer": \(normalizer), "pre_tokenizer": \(pre),
       "model": {"type": "BPE", "vocab": {\(vocab)}, "merges": [\(mergeList)]}}
      """.utf8)
  }
}

@Suite struct TokenizerTests {
  @Test func smallBPEGivesHandComputedIds() throws {
    let t = try Small.tokenizer()
    // " the": (Ġ,t) has rank 0 → Ġt; then (h,e) rank 1 → he; then (Ġt,he) rank 2 → Ġthe.
    // " lower": lo (3), low (4), er (5) → Ġ low er. "<|end|>" is matched before BPE.
    // "the": (t,h) has rank 6 and (h,e) rank 1, so he wins: t he (left-to-right merging would
    // give th e).
    let text = " the lower<|end|>the"
    let ids = t.encode(text)
    #expect(ids == [258, 32, 260, 261, 262, 116, 257])
    #expect(try t.decode(ids) == text)
    // No merge applies to the two bytes of "é" (C3 A9).
    #expect(t.encode("é") == [0xC3, 0xA9])
    #expect(try t.decode([0xC3, 0xA9]) == "é")
    // A lone continuation byte decodes to U+FFFD, not a crash.
    #expect(try t.decode([0xA9]) == "\u{FFFD}")
    #expect(t.encode("") == [])
    #expect(t.encode("<|end|><|end|>") == [262, 262])
    #expect(throws: TokenizerError.unknownId(id: 264, vocabularySize: 264)) { try t.decode([264]) }
    #expect(throws: TokenizerError.unknownId(id: -1, vocabularySize: 264)) { try t.decode([-1]) }
    #expect(t.id(of: "Ġthe") == 258 && t.id(of: "nope") == nil)
  }

  @Test func specialTokensAreMatchedLeftmostLongest() throws {
    var tokens = byteAlphabet
    tokens += ["<a>", "<a><b>", "<b>"]  // 256, 257, 258
    let t = try BPETokenizer(tokens: tokens, merges: [], specialTokenIds: [256, 257, 258])
    #expect(t.encode("<a><b><b>") == [257, 258])
    #expect(t.encode("x<a>") == [120, 256])
    #expect(t.encode("<a") == [60, 97])
  }

  @Test(arguments: [
    ("Hello, world!", ["Hello", ",", " world", "!"]),
    (
      "  leading spaces and   runs\tof\ttabs\n\nnewlines",
      [" ", " leading", " spaces", " and", "  ", " runs", "\t", "of", "\t", "tabs", "\n", "\n", "newlines"]
    ),
    ("don't won't I'm you'll", ["don", "'t", " won", "'t", " I", "'m", " you", "'ll"]),
    ("she's 'S 're've'd", ["she", "'s", " '", "S", " '", "re", "'ve", "'d"]),
    ("a  ", ["a", "  "]),
    (" ", [" "]),
    ("x\u{00A0}y \u{3000}z", ["x", "\u{00A0}", "y", " ", "\u{3000}", "z"]),
    ("Ελληνικά 漢字 🙂!", ["Ελληνικά", " 漢字", " 🙂!"]),
    ("3.14 x12", ["3", ".", "14", " x", "12"]),
    ("½ Ⅻ", ["½", " Ⅻ"]),
  ])
  func gpt2PatternSplits(text: String, expected: [String]) throws {
    #expect(try Small.tokenizer().preTokenize(text) == expected)
  }

  @Test func individualDigitsSplitsEveryNumber() throws {
    let t = try Small.tokenizer(.smollm)
    #expect(t.preTokenize("3.14 x12") == ["3", ".", "1", "4", " x", "1", "2"])
    #expect(t.preTokenize("Numbers 1234 and") == ["Numbers", " ", "1", "2", "3", "4", " and"])
  }

  @Test func tokenizerJSONLoadsTheSameTokenizer() throws {
    let direct = try Small.tokenizer(.smollm)
    let text = " the lower<|end|>the 1811-10-30 naïve"
    for pairs in [false, true] {
      let loaded = try BPETokenizer(tokenizerJSON: Small.json(mergesAsPairs: pairs))
      #expect(loaded.preTokenizer == .smollm)
      #expect(loaded.specialTokenIds == [Small.end])
      #expect(loaded.encode(text) == direct.encode(text), "merges as pairs: \(pairs)")
      #expect(loaded.tokens == direct.tokens)
    }
    let plain = try BPETokenizer(
      tokenizerJSON: Small.json(
        mergesAsPairs: false, preTokenizer: #"{"type": "ByteLevel", "add_prefix_space": true}"#))
    #expect(plain.preTokenizer == BPETokenizer.PreTokenizer(individualDigits: false, addPrefixSpace: true))
    // add_prefix_space puts a space before the text (and after each added token).
    #expect(plain.encode("the") == [258])
  }

  @Test func tokenizerJSONErrorsAreTyped() throws {
    let s = "tokenizer.json"
    #expect(throws: TokenizerError.unsupported(source: s, what: "pre-tokenizer 'Metaspace'")) {
      try BPETokenizer(tokenizerJSON: Small.json(mergesAsPairs: false, preTokenizer: #"{"type": "Metaspace"}"#))
    }
    #expect(throws: TokenizerError.unsupported(source: s, what: "normalizer 'NFKC'")) {
      try BPETokenizer(tokenizerJSON: Small.json(mergesAsPairs: false, normalizer: #"{"type": "NFKC"}"#))
    }
    #expect(throws: TokenizerError.self) { try BPETokenizer(tokenizerJSON: Data("{}".utf8)) }
    #expect(throws: TokenizerError.self) { try BPETokenizer(tokenizerJSON: Data("[1, 2".utf8)) }
    #expect(
      throws: TokenizerError.invalidMerge(
        source: "m", index: 1, merge: "q z", reason: "names a token that is not in the vocabulary")
    ) {
      try BPETokenizer(tokens: ["q", "r", "qr"], merges: ["q r", "q z"], source: "m")
    }
    #expect(
      throws: TokenizerError.invalidMerge(
        source: "m", index: 0, merge: "q r", reason: "makes 'qr', which is not in the vocabulary")
    ) {
      try BPETokenizer(tokens: ["q", "r"], merges: ["q r"], source: "m")
    }
    #expect(throws: TokenizerError.self) { try BPETokenizer(tokens: ["q", "r", "qr"], merges: ["qr"], source: "m") }
    #expect(throws: TokenizerError.self) { try BPETokenizer(tokens: ["q"], merges: [], specialTokenIds: [1]) }
    #expect(throws: TokenizerError.self) { try BPETokenizer(tokens: ["q"], merges: [], eosTokenId: 5) }
    for e in [
      TokenizerError.unsupported(source: s, what: "x"), .invalidMerge(source: s, index: 0, merge: "a b", reason: "r"),
      .unknownId(id: 9, vocabularySize: 3), .invalidJSON(source: s, reason: "r"),
    ] {
      #expect(e.description.contains("Hint:") && !e.description.contains("\n"))
    }
  }
}

// MARK: - The real SmolLM2 tokenizer

/// The golden file's tokenizer part.
private struct Golden: Decodable {
  struct Sample: Decodable {
    var text: String
    var ids: [Int]
  }
  var tokenizer_samples: [Sample]
  var persuasion_token_count: Int
  var persuasion_first_2048_ids: [Int]
}

/// These need the model (scripts/fetch-model.sh) and the shared folder. No tokenizer.json for
/// SmolLM2 is available offline, so the tokenizer comes from the GGUF; without the file the tests
/// are reported as skipped, never as passed.
@Suite(
  .enabled(if: ModelFiles.hasSmolLM2, "SmolLM2 GGUF not fetched: run scripts/fetch-model.sh"),
  .enabled(if: ModelFiles.hasGolden, "shared/golden/smollm2-golden.json not found"))
struct SmolLM2TokenizerTests {
  fileprivate static func load() throws -> (BPETokenizer, Golden) {
    let tokenizer = try BPETokenizer(gguf: GGUFFile(contentsOf: ModelFiles.smolLM2))
    let url = try #require(ModelFiles.sharedFile("golden/smollm2-golden.json"))
    let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    return (tokenizer, golden)
  }

  @Test func tokenizerFacts() throws {
    let (t, _) = try Self.load()
    #expect(t.vocabularySize == 49152)
    #expect(t.specialTokenIds == Array(0...16))
    #expect(t.bosTokenId == 1 && t.eosTokenId == 2 && !t.addBOS)
    #expect(t.preTokenizer == .smollm)
  }

  @Test func goldenSamplesMatch() throws {
    let (t, golden) = try Self.load()
    #expect(golden.tokenizer_samples.count == 9)
    for s in golden.tokenizer_samples {
      #expect(t.encode(s.text) == s.ids, "\(s.text.debugDescription)")
      #expect(try t.decode(s.ids) == s.text, "decode \(s.text.debugDescription)")
    }
    // The reference prompts of Docs/evaluation.md#the-tokenizer.
    #expect(t.encode("It is a truth universally acknowledged") == [1589, 314, 253, 4569, 21902, 14494])
    #expect(t.encode("<|im_start|>user\nHi 2024!<|im_end|>") == [1, 4093, 198, 26843, 216, 34, 32, 34, 36, 17, 2])
  }

  @Test(
    .enabled(
      if: ModelFiles.sharedFile("data/janeausten/persuasion.txt") != nil,
      "shared/data/janeausten/persuasion.txt not found"))
  func persuasionMatches() throws {
    let (t, golden) = try Self.load()
    let url = try #require(ModelFiles.sharedFile("data/janeausten/persuasion.txt"))
    let text = try String(contentsOf: url, encoding: .utf8)
    let ids = t.encode(text)
    #expect(ids.count == golden.persuasion_token_count)
    let first = Array(ids.prefix(2048))
    if let k = first.indices.first(where: {
      $0 >= golden.persuasion_first_2048_ids.count || first[$0] != golden.persuasion_first_2048_ids[$0]
    }) {
      Issue.record("first difference at token \(k): \(first[k]) vs golden \(golden.persuasion_first_2048_ids[k])")
    }
    #expect(first == golden.persuasion_first_2048_ids)
    #expect(try t.decode(ids) == text)
  }

  /// Token counts of the six novels, measured with transformers (Docs/evaluation.md#the-corpus):
  /// about a million tokens through every branch of the pre-tokenizer.
  @Test(.enabled(if: ModelFiles.sharedFile("data/janeausten/emma.txt") != nil, "shared/data/janeausten not found"))
  func austenTokenCountsMatch() throws {
    let (t, _) = try Self.load()
    let counts = [
      "emma": 221_850, "mansfieldpark": 216_549, "northangerabbey": 105_509, "persuasion": 115_862,
      "prideprejudice": 167_892, "sensesensibility": 167_840,
    ]
    for (name, count) in counts.sorted(by: { $0.key < $1.key }) {
      let url = try #require(ModelFiles.sharedFile("data/janeausten/\(name).txt"))
      #expect(t.encode(try String(contentsOf: url, encoding: .utf8)).count == count, "\(name)")
    }
  }
}
