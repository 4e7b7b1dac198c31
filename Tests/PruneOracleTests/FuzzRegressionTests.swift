import Foundation
import PruneOracle
import PruneTestSupport
import Testing

/// The fuzz corpus replayed through the normal (uninstrumented) parsers, and hand-written hostile
/// inputs. Fixtures/fuzz/<target>/corpus holds the seeds scripts/fuzz.sh starts from and
/// Fixtures/fuzz/<target>/regressions every input that once crashed a parser (Docs/reliability.md,
/// "Fuzzing", says what each was). Each file goes through FuzzHarness, the code the fuzz
/// executables run, which checks that the parsers either accept it or throw their typed error with
/// a one-line message that names the input and gives a hint. A crash ends the test run.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
  /// Fixtures/fuzz, found from this file's path (Tests/PruneOracleTests/ → package root).
  static let fuzzFixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/fuzz")

  /// The files of Fixtures/fuzz/<target>/<folder>, sorted (empty when the folder does not exist).
  static func files(_ target: FuzzHarness.Target, _ folder: String) -> [URL] {
    let dir = fuzzFixtures.appendingPathComponent(target.rawValue).appendingPathComponent(folder)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted().map { dir.appendingPathComponent($0) }
  }

  @Test(arguments: FuzzHarness.Target.allCases)
  func corpusAndRegressionsParseOrThrowTypedErrors(target: FuzzHarness.Target) throws {
    let corpus = Self.files(target, "corpus")
    #expect(corpus.count >= 3, "\(target.rawValue): the seed corpus is missing (Tests/Fuzz/make_seeds.py writes it)")
    var accepted = 0
    for url in corpus + Self.files(target, "regressions") {
      let outcome = FuzzHarness.run(target, try Data(contentsOf: url))
      #expect(outcome.violations.isEmpty, "\(target.rawValue) \(url.lastPathComponent): \(outcome.violations)")
      if outcome.errors.isEmpty { accepted += 1 }
    }
    // The seeds are mostly valid files: at least one must pass every parser of the target, or the
    // fuzzer would start from inputs that stop at the first check.
    #expect(accepted >= 1, "\(target.rawValue): no seed was accepted")
  }

  // MARK: - Hand-written hostile inputs

  /// The error `body` throws, or nil (recording an issue) when it throws none or another type.
  static func error<E: Error>(_: E.Type, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation)
    -> E?
  {
    do {
      try body()
      Issue.record("no error thrown", sourceLocation: sourceLocation)
    } catch let e as E {
      let message = "\(e)"
      #expect(message.contains("Hint: ") && !message.contains("\n"), "\(message)", sourceLocation: sourceLocation)
      return e
    } catch {
      Issue.record("untyped error \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
    return nil
  }

  /// A safetensors file: the 8-byte length, `header` bytes verbatim, `buffer`.
  static func safetensors(_ header: [UInt8], _ buffer: [UInt8] = [], claimedLength: UInt64? = nil) -> Data {
    var out = Data()
    withUnsafeBytes(of: (claimedLength ?? UInt64(header.count)).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: header)
    out.append(contentsOf: buffer)
    return out
  }

  static func open(_ data: Data) throws(SafetensorsError) { _ = try SafetensorsFile(data: data, name: "h.safetensors") }

  @Test func safetensorsHeaderLies() {
    let p = "h.safetensors"
    let good = Array(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
    // The length field points past the end of the file.
    let pastEnd = Self.error(SafetensorsError.self) {
      try Self.open(Self.safetensors(good, [], claimedLength: UInt64.max))
    }
    #expect(pastEnd == .headerLengthOutOfRange(path: p, headerLength: UInt64.max, fileSize: 8 + good.count))
    #expect(pastEnd?.description.contains("does not fit in a file of") == true)
    // A truncated header: 10 of its bytes.
    let cut = Self.safetensors(good, [UInt8](repeating: 0, count: 8)).prefix(18)
    #expect(
      Self.error(SafetensorsError.self) { try Self.open(cut) }
        == .headerLengthOutOfRange(
          path: p, headerLength: UInt64(good.count), fileSize: 18))
    // A dimension product that overflows Int: 2³² · 2³² · 4.
    let giant = Self.error(SafetensorsError.self) {
      try Self.open(
        Self.safetensors(
          Array(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}"#.utf8),
          [UInt8](repeating: 0, count: 8)))
    }
    #expect(giant == .invalidShape(path: p, tensor: "a", reason: "the element count overflows"))
    // The same dimensions behind a zero: the element count is 0, but the shape multiplied in
    // another order overflows, so it is refused too (the GGUF sibling trapped, found by fuzzing).
    let hidden = Self.error(SafetensorsError.self) {
      try Self.open(
        Self.safetensors(
          Array(#"{"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}"#.utf8)))
    }
    #expect(hidden == .invalidShape(path: p, tensor: "a", reason: "the element count overflows"))
    // Negative, huge and non-integer offsets.
    func offsets(_ o: String, _ shape: String = "[2]") -> SafetensorsError? {
      let header = Array(#"{"a":{"dtype":"F32","shape":\#(shape),"data_offsets":\#(o)}}"#.utf8)
      return Self.error(SafetensorsError.self) {
        try Self.open(Self.safetensors(header, [UInt8](repeating: 0, count: 8)))
      }
    }
    #expect(
      offsets("[-8,0]") == .invalidOffsets(path: p, tensor: "a", reason: "data_offsets [-8, 0] are not increasing"))
    #expect(
      offsets("[0,4611686018427387904]")
        == .invalidOffsets(
          path: p, tensor: "a", reason: "data_offsets [0, 4611686018427387904] reach beyond the data buffer of 8 bytes")
    )
    #expect(
      offsets("[0,1e300]")
        == .invalidOffsets(path: p, tensor: "a", reason: "'data_offsets' is missing or not two integers"))
    #expect(
      offsets("[0,18446744073709551615]")
        == .invalidOffsets(path: p, tensor: "a", reason: "'data_offsets' is missing or not two integers"))
    #expect(offsets("[0,8]", "[-2]") == .invalidShape(path: p, tensor: "a", reason: "-2 is not a non-negative integer"))
    // A wrong dtype: unknown, and not a string.
    let f17 = Self.error(SafetensorsError.self) {
      try Self.open(
        Self.safetensors(
          Array(#"{"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}"#.utf8), [UInt8](repeating: 0, count: 8)))
    }
    #expect(f17 == .unknownDType(path: p, tensor: "a", dtype: "F17"))
    #expect(f17?.description.contains("known dtypes are BOOL, U8") == true)
    let numeric = Self.error(SafetensorsError.self) {
      try Self.open(
        Self.safetensors(
          Array(#"{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}"#.utf8), [UInt8](repeating: 0, count: 8)))
    }
    #expect(numeric == .invalidHeader(path: p, reason: "entry 'a' has no string 'dtype'"))
  }

  @Test func safetensorsDuplicateNamesAndBadText() {
    let p = "h.safetensors"
    // The same tensor twice: JSONSerialization would keep one silently.
    let twice = Array(
      #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#.utf8
    )
    let duplicate = Self.error(SafetensorsError.self) { try Self.open(Self.safetensors(twice, [1, 2, 3, 4])) }
    #expect(duplicate == .duplicateTensor(path: p, tensor: "a"))
    #expect(
      duplicate?.description == "safetensors h.safetensors: the header lists tensor 'a' twice."
        + " Hint: the file is corrupt or was written by a non-conforming tool; re-export it.")
    // Spelled differently ("\u0061" is "a"), still the same name; nested keys do not count.
    let escaped = Array(
      #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"\u0061":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#
        .utf8)
    #expect(
      Self.error(SafetensorsError.self) { try Self.open(Self.safetensors(escaped, [1, 2, 3, 4])) }
        == .duplicateTensor(path: p, tensor: "a"))
    let nested = Array(#"{"__metadata__":{"a":"x","b":"y"},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#.utf8)
    #expect(throws: Never.self) { try Self.open(Self.safetensors(nested, [1, 2])) }
    // A header that is not UTF-8: a 0xFF byte inside a name, and a UTF-16 header.
    var latin = Array(#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#.utf8)
    latin[2] = 0xFF
    let notUTF8 = Self.error(SafetensorsError.self) { try Self.open(Self.safetensors(latin, [1, 2])) }
    #expect(notUTF8 == .invalidHeader(path: p, reason: "byte 10 of the file (in the header) is not valid UTF-8"))
    let utf16 = [UInt8](
      #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
    #expect(
      Self.error(SafetensorsError.self) { try Self.open(Self.safetensors(utf16, [1, 2])) }
        == .invalidHeader(
          path: p, reason: "byte 9 of the file (in the header) is NUL, which UTF-8 JSON never holds"))
    // Invalid JSON: the reason says where.
    let broken = Self.error(SafetensorsError.self) { try Self.open(Self.safetensors(Array(#"{"a": nonsense}"#.utf8))) }
    if case .invalidHeader(_, let reason) = broken {
      #expect(reason.hasPrefix("not valid JSON"), "\(reason)")
    } else {
      Issue.record("expected invalidHeader, got \(String(describing: broken))")
    }
    // A name holding a line break gives a one-line message (checked by `error`).
    let newline = Array(#"{"a\nb":{"dtype":"F17","shape":[2],"data_offsets":[0,2]}}"#.utf8)
    #expect(
      Self.error(SafetensorsError.self) { try Self.open(Self.safetensors(newline, [1, 2])) }
        == .unknownDType(
          path: p, tensor: "a\nb", dtype: "F17"))
  }

  @Test func ggufDeepNestingAndHugeHeadCounts() throws {
    let p = "fuzz.gguf"
    // 100 000 nested arrays, 12 bytes each: refused at depth 8 instead of recursing 100 000 times.
    var deep = GGUFBuilder()
    deep.metadata = [("general.architecture", .string("llama"))]
    var bytes = deep.build().bytes
    bytes.replaceSubrange(16..<24, with: GGUFBuilder.le(UInt64(2)))  // two metadata entries
    var value = GGUFBuilder.string("t.deep") + GGUFBuilder.le(GGUFValueType.array.rawValue)
    for _ in 0..<100_000 { value += GGUFBuilder.le(GGUFValueType.array.rawValue) + GGUFBuilder.le(UInt64(1)) }
    value += GGUFBuilder.le(GGUFValueType.uint8.rawValue) + GGUFBuilder.le(UInt64(0))
    bytes.insert(contentsOf: value, at: 24)
    let nested = Self.error(GGUFError.self) { _ = try GGUFFile(data: Data(bytes), path: p) }
    guard case .invalidMetadata(let path, let key, let reason) = nested else {
      Issue.record("expected invalidMetadata, got \(String(describing: nested))")
      return
    }
    #expect(path == p && key == "t.deep" && reason.hasPrefix("arrays nest more than 8 levels deep"), "\(reason)")

    // A head count of 2⁶² on a LLaMA q projection: rows % (2 · heads) used to overflow and trap.
    var b = GGUFBuilder()
    b.metadata = [("general.architecture", .string("llama")), ("llama.attention.head_count", .uint64(1 << 62))]
    b.tensors = [
      ("blk.0.attn_q.weight", [1, 2], 0, [Float](arrayLiteral: 1, 2).flatMap { GGUFBuilder.le($0.bitPattern) })
    ]
    let file = try b.file(path: p)
    let heads = Self.error(GGUFError.self) { _ = try file.floatTensor("model.layers.0.self_attn.q_proj.weight") }
    #expect(
      heads
        == .invalidTensor(
          path: p, tensor: "blk.0.attn_q.weight",
          reason: "2 rows cannot be split into \(1 << 62) heads of an even size for the RoPE un-permutation"))

    // Dimensions [0, 2³², 2³²]: the element count, multiplied from ne[0], is 0, but the shape is
    // the reverse, whose product 2³² · 2³² overflowed and trapped when the tensor was read. The
    // fuzzer found it with ne = (3·2³², 0, 4.1·10¹⁸, 31 520)
    // (Fixtures/fuzz/gguf/regressions/fuzz-zero-dimension-hides-overflow.gguf). The non-zero
    // dimensions are now bounded at open.
    var zero = GGUFBuilder()
    zero.metadata = [("general.architecture", .string("llama"))]
    zero.tensors = [("blk.0.attn_q.weight", [0, 1 << 32, 1 << 32], 0, [])]
    let hidden = Self.error(GGUFError.self) { _ = try zero.file(path: p) }
    #expect(
      hidden
        == .invalidTensor(
          path: p, tensor: "blk.0.attn_q.weight", reason: "dimensions [0, 4294967296, 4294967296] are too large"))
    // An empty tensor with small dimensions is still read, as an empty tensor.
    zero.tensors = [("blk.0.attn_q.weight", [0, 4], 0, [])]
    #expect(try zero.file(path: p).rawFloatTensor("blk.0.attn_q.weight") == FloatTensor(shape: [4, 0], values: []))
  }

  @Test func tokenizerHugeIdsAndBadText() {
    func load(_ json: String) throws { _ = try BPETokenizer(tokenizerJSON: Data(json.utf8), source: "t.json") }
    let pre = #""pre_tokenizer": {"type": "ByteLevel"}"#
    // Int.max as an id: `id + 1` used to overflow and trap.
    let maxIdJSON = #"{\#(pre), "model": {"vocab": {"a": 9223372036854775807}, "merges": []}}"#
    let maxId = Self.error(TokenizerError.self) { try load(maxIdJSON) }
    #expect(
      maxId
        == .invalidTokenId(
          source: "t.json", id: Int.max,
          reason: "is implausibly large for a file of \(maxIdJSON.utf8.count) bytes (ids must be below 65536)"))
    // An added token id of 10⁶ in a 100-byte file: refused before a table of 10⁶ strings is made.
    let added = Self.error(TokenizerError.self) {
      try load(
        #"{\#(pre), "added_tokens": [{"id": 1000000, "content": "x"}], "model": {"vocab": {"a": 0}, "merges": []}}"#)
    }
    guard case .invalidTokenId(_, let id, let reason) = added else {
      Issue.record("expected invalidTokenId, got \(String(describing: added))")
      return
    }
    #expect(id == 1_000_000 && reason.contains("ids must be below 65536"), "\(reason)")
    // Only negative ids (found by the fuzzer): the table size, largest id + 1, was −2 and
    // Array(repeating:count:) trapped.
    #expect(
      Self.error(TokenizerError.self) {
        try load(#"{\#(pre), "model": {"vocab": {"an": -3}, "merges": []}}"#)
      } == .invalidTokenId(source: "t.json", id: -3, reason: "is negative"))
    // Not UTF-8.
    let bytes = Array(#"{\#(pre), "model": {"vocab": {""#.utf8) + [0xFF] + Array(#"": 0}, "merges": []}}"#.utf8)
    let latin = Self.error(TokenizerError.self) { _ = try BPETokenizer(tokenizerJSON: Data(bytes), source: "t.json") }
    guard case .invalidJSON(source: "t.json", _) = latin else {
      Issue.record("expected invalidJSON, got \(String(describing: latin))")
      return
    }
  }

  @Test func configOverflowsAndBadText() {
    // GPT-2 without n_inner defaults it to 4 · n_embd, which used to overflow and trap.
    let json = Data(
      #"{"model_type": "gpt2", "n_embd": 4611686018427387904, "n_layer": 1, "n_head": 1, "vocab_size": 5, "n_positions": 8}"#
        .utf8)
    let model = Self.error(ModelConfigError.self) { _ = try ModelConfig(json: json, source: "c.json") }
    guard case .wrongType(let source, let key, let reason) = model else {
      Issue.record("expected wrongType, got \(String(describing: model))")
      return
    }
    #expect(source == "c.json" && key == "n_embd" && reason.contains("too large"), "\(reason)")
    // The forward config is derived from the one parser, so it fails the same way.
    let forward = Self.error(ModelConfigError.self) { _ = try ForwardConfig(data: json, source: "c.json") }
    #expect(forward == model)
    #expect(forward?.description.hasPrefix("config c.json: 'n_embd' 4611686018427387904 is too large") == true)
    // A missing key names the file and the key.
    let missing = Self.error(ModelConfigError.self) {
      _ = try ForwardConfig(data: Data(#"{"model_type": "opt"}"#.utf8), source: "c.json")
    }
    #expect(missing == .missingKey(source: "c.json", modelType: "opt", key: "hidden_size"))
    #expect(
      missing?.description.hasPrefix("config c.json: 'hidden_size' is missing for model_type opt. Hint: ") == true)
    // Not UTF-8, and not an object.
    let latin = Data([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D])  // {"\xFF":1}
    guard
      case .invalidJSON(source: "c.json", _) = Self.error(
        ModelConfigError.self, { _ = try ForwardConfig(data: latin, source: "c.json") })
    else {
      Issue.record("expected invalidJSON for bytes that are not UTF-8")
      return
    }
    guard
      case .invalidJSON(source: "c.json", _) = Self.error(
        ModelConfigError.self, { _ = try ForwardConfig(data: Data("[1]".utf8), source: "c.json") })
    else {
      Issue.record("expected invalidJSON for a top level that is not an object")
      return
    }
  }

  @Test func layerProblemSizesMustBeBackedByBytes() throws {
    let p = "l.safetensors"
    func open(_ header: String, _ buffer: [UInt8] = []) throws(LayerProblemFileError) {
      let file: SafetensorsFile
      do { file = try SafetensorsFile(data: Self.safetensors(Array(header.utf8), buffer), name: p) } catch {
        throw .file(error)
      }
      _ = try LayerProblemFile(file: file).problem(as: Float.self)
    }
    // A weight with no rows and no tokens, but 10¹² inputs: the [in, in] Gram would not fit.
    let huge = Self.error(LayerProblemFileError.self) {
      try open(
        #"{"inputs":{"dtype":"F32","shape":[0,1000000000000],"data_offsets":[0,0]},"weight":{"dtype":"F32","shape":[0,1000000000000],"data_offsets":[0,0]}}"#
      )
    }
    #expect(
      huge
        == .shapeMismatch(
          path: p, tensor: "weight", shape: [0, 1_000_000_000_000], expected: "[out, in] with out, in ≥ 1",
          reference: nil))
    // Inputs with no tokens.
    let noTokens = Self.error(LayerProblemFileError.self) {
      try open(
        #"{"inputs":{"dtype":"F32","shape":[0,2],"data_offsets":[0,0]},"weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#,
        [UInt8](repeating: 0, count: 8))
    }
    #expect(
      noTokens
        == .shapeMismatch(
          path: p, tensor: "inputs", shape: [0, 2], expected: "[tokens, 2] with tokens ≥ 1",
          reference: TensorShape(name: "weight", shape: [1, 2])))
  }
}
